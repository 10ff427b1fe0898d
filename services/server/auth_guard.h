// Authentication and authorization at the gRPC edge (services/auth holds the rules): every
// leadflow RPC (RawService in unary_call.h) asks the guard who is calling before it reads the
// request. Health checking does not pass through it (it stays open); reflection is off unless
// configured.
#ifndef LEADFLOW_SERVICES_SERVER_AUTH_GUARD_H_
#define LEADFLOW_SERVICES_SERVER_AUTH_GUARD_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/auth/policy.h"
#include "services/auth/principal.h"
#include "services/auth/token.h"

namespace leadflow::server {

class AuthGuard {
 public:
  // `tokens` may be null (no bearer tokens: client certificates only).
  AuthGuard(std::unique_ptr<auth::TokenVerifier> tokens, std::shared_ptr<auth::PolicyStore> policy);

  // The caller of `ctx`: the bearer token in the `authorization` metadata ("Bearer <jwt>"), else
  // a client certificate verified by the TLS handshake whose common name the policy maps to a
  // role. UNAUTHENTICATED (saying what is missing or wrong) without either.
  absl::StatusOr<auth::Principal> Authenticate(const grpc::ServerContextBase& ctx) const;

  std::shared_ptr<const auth::Policy> policy() const { return policy_->current(); }
  auth::PolicyStore& policy_store() const { return *policy_; }

 private:
  std::unique_ptr<auth::TokenVerifier> tokens_;
  std::shared_ptr<auth::PolicyStore> policy_;
};

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_AUTH_GUARD_H_

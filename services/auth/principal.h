// Who is calling: the identity a verified bearer token or a client certificate gives a call, and
// the role the authorization policy (policy.h) judges it by. No gRPC here: services/server turns
// a call's metadata and TLS peer into one of these.
#ifndef LEADFLOW_SERVICES_AUTH_PRINCIPAL_H_
#define LEADFLOW_SERVICES_AUTH_PRINCIPAL_H_

#include <string>

namespace leadflow::auth {

struct Principal {
  enum class Via { kToken, kCertificate };
  std::string subject;  // the token's `sub`, or the client certificate's common name
  std::string role;     // admin, sales, intake, import, analyst, downstream, auditor, ...
  Via via = Via::kToken;
};

}  // namespace leadflow::auth

#endif  // LEADFLOW_SERVICES_AUTH_PRINCIPAL_H_

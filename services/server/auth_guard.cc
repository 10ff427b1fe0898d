#include "services/server/auth_guard.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace leadflow::server {

AuthGuard::AuthGuard(std::unique_ptr<auth::TokenVerifier> tokens,
                     std::shared_ptr<auth::PolicyStore> policy)
    : tokens_(std::move(tokens)), policy_(std::move(policy)) {}

absl::StatusOr<auth::Principal> AuthGuard::Authenticate(const grpc::ServerContextBase& ctx) const {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    const absl::string_view value(it->second.data(), it->second.size());
    if (!absl::StartsWithIgnoreCase(value, "bearer ")) {
      return absl::UnauthenticatedError(
          "authorization: expected 'Bearer <token>' (leadctl: --token, $LEADFLOW_TOKEN or "
          "--token-file)");
    }
    if (tokens_ == nullptr) {
      return absl::UnauthenticatedError(
          "authorization: this server takes no bearer tokens (auth.token_key_file is not set); "
          "use a client certificate");
    }
    return tokens_->Verify(absl::StripAsciiWhitespace(value.substr(7)), absl::Now());
  }
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
    if (!names.empty()) {
      const std::string cn(names.front().data(), names.front().size());
      if (std::optional<std::string> role = policy_->current()->RoleOfCertificate(cn)) {
        return auth::Principal{
            .subject = cn, .role = *role, .via = auth::Principal::Via::kCertificate};
      }
      return absl::UnauthenticatedError(absl::StrCat(
          "client certificate '", cn.substr(0, 64),
          "' has no role in the authorization policy (certificates:) and the call carries no "
          "bearer token"));
    }
  }
  return absl::UnauthenticatedError(
      "no credentials: send a bearer token (authorization: Bearer <token>; leadctl: --token, "
      "$LEADFLOW_TOKEN or --token-file) or a client certificate the policy knows");
}

}  // namespace leadflow::server

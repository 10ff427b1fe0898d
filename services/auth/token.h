// Bearer tokens: JSON Web Tokens signed with the deployment's key (libjwt over OpenSSL).
//
// A token is accepted only if its header's `alg` is the configured one (never `none`, never
// another family: an HS256 token is not checked with an RSA public key as a secret), its
// signature verifies, `iss` and `aud` are the configured ones, `exp` is in the future and `nbf`
// (if present) is not (both with a small leeway for clock skew), and it names a subject (`sub`)
// and a role (`role`). Refusals are UNAUTHENTICATED with a reason that quotes neither the key nor
// the token. Verified tokens are cached (by their SHA-256) until they expire, at most five
// minutes, so a call does not pay a signature check.
#ifndef LEADFLOW_SERVICES_AUTH_TOKEN_H_
#define LEADFLOW_SERVICES_AUTH_TOKEN_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/auth/principal.h"

namespace leadflow::auth {

struct TokenOptions {
  // HS256, HS384, HS512 (a shared secret), RS256/384/512 or ES256/384/512 (PEM: the public key
  // verifies, the private key issues).
  std::string algorithm = "HS256";
  std::string key;  // the secret or the PEM text
  std::string issuer = "leadflow";
  std::string audience = "leadflow";
  absl::Duration leeway = absl::Seconds(30);
};

// Checks the options (algorithm known and not `none`, a key of a usable size: 32 bytes at
// least for a shared secret). INVALID_ARGUMENT naming the option.
absl::Status ValidateTokenOptions(const TokenOptions& options);

class TokenVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> Create(TokenOptions options);

  // The principal the token names, or UNAUTHENTICATED saying why (never quoting the token).
  absl::StatusOr<Principal> Verify(absl::string_view token, absl::Time now) const;

  // Entries in the cache of verified tokens (for tests).
  size_t cached() const;

 private:
  explicit TokenVerifier(TokenOptions options) : options_(std::move(options)) {}
  absl::StatusOr<Principal> VerifySignatureAndClaims(const std::string& token, absl::Time now,
                                                     absl::Time* expires) const;
  struct Cached {
    Principal principal;
    absl::Time until;  // the token's expiry, or five minutes after it was verified
  };
  TokenOptions options_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

// A token for `subject` with `role`, valid from `now` for `ttl`, signed with `options` (for HS*
// the secret; for RS*/ES* the private key in PEM).
absl::StatusOr<std::string> IssueToken(const TokenOptions& options, const std::string& subject,
                                       const std::string& role, absl::Duration ttl, absl::Time now);

}  // namespace leadflow::auth

#endif  // LEADFLOW_SERVICES_AUTH_TOKEN_H_

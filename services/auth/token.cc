#include "services/auth/token.h"

#include <jwt.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/common/ids.h"

namespace leadflow::auth {
namespace {

constexpr size_t kMaxTokenBytes = 8192;
constexpr size_t kMaxCached = 10000;
constexpr absl::Duration kCacheAtMost = absl::Minutes(5);

absl::Status Refuse(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("bearer token: ", why));
}

bool IsSharedSecret(jwt_alg_t alg) {
  return alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
}

// A subject or role: 1-128 printable ASCII characters (they end up in events and logs).
bool Printable(absl::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

// errno-reporting libjwt getters: a missing claim is ENOENT.
bool IntClaim(jwt_t* j, const char* name, long* out) {
  errno = 0;
  const long v = jwt_get_grant_int(j, name);
  if (errno != 0) return false;
  *out = v;
  return true;
}

bool AudienceMatches(jwt_t* j, const std::string& audience) {
  if (const char* single = jwt_get_grant(j, "aud"); single != nullptr) return single == audience;
  char* json = jwt_get_grants_json(j, "aud");
  if (json == nullptr) return false;
  nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  std::free(json);
  if (!parsed.is_array()) return false;
  for (const auto& a : parsed) {
    if (a.is_string() && a.get<std::string>() == audience) return true;
  }
  return false;
}

}  // namespace

absl::Status ValidateTokenOptions(const TokenOptions& options) {
  const jwt_alg_t alg = jwt_str_alg(options.algorithm.c_str());
  if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auth.token_algorithm: '", options.algorithm.substr(0, 16),
        "' is not one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512"));
  }
  if (IsSharedSecret(alg) && options.key.size() < 32) {
    return absl::InvalidArgumentError(absl::StrCat("auth.token_key_file: a ", options.algorithm,
                                                   " secret must have at least 32 bytes (has ",
                                                   options.key.size(), ")"));
  }
  if (!IsSharedSecret(alg) && options.key.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth.token_key_file: ", options.algorithm, " needs a key in PEM form"));
  }
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError("auth.token_issuer and auth.token_audience: required");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::Create(TokenOptions options) {
  if (absl::Status st = ValidateTokenOptions(options); !st.ok()) return st;
  return std::unique_ptr<TokenVerifier>(new TokenVerifier(std::move(options)));
}

size_t TokenVerifier::cached() const {
  absl::MutexLock lock(&mu_);
  return cache_.size();
}

absl::StatusOr<Principal> TokenVerifier::Verify(absl::string_view token, absl::Time now) const {
  if (token.empty()) return Refuse("empty");
  if (token.size() > kMaxTokenBytes) return Refuse("longer than 8 KiB");
  const std::string digest = common::Sha256Hex(token, 64);
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(digest);
    if (it != cache_.end()) {
      if (now < it->second.until) return it->second.principal;
      cache_.erase(it);
    }
  }
  absl::Time expires;
  absl::StatusOr<Principal> principal = VerifySignatureAndClaims(std::string(token), now, &expires);
  if (!principal.ok()) return principal;
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();  // simple and bounded; refilled by use
  cache_[digest] = Cached{*principal, std::min(expires, now + kCacheAtMost)};
  return principal;
}

absl::StatusOr<Principal> TokenVerifier::VerifySignatureAndClaims(const std::string& token,
                                                                  absl::Time now,
                                                                  absl::Time* expires) const {
  // The header first, by hand: only the configured algorithm goes to libjwt at all.
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Refuse("malformed (not three base64url parts)");
  std::string header_json;
  if (!absl::WebSafeBase64Unescape(parts[0], &header_json)) {
    return Refuse("malformed header (not base64url)");
  }
  nlohmann::json header = nlohmann::json::parse(header_json, nullptr, false);
  if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string()) {
    return Refuse("malformed header (no alg)");
  }
  const std::string alg = header["alg"].get<std::string>();
  if (alg != options_.algorithm) {
    return Refuse(absl::StrCat("algorithm ", alg.substr(0, 16), " is not the configured ",
                               options_.algorithm));
  }
  jwt_t* raw = nullptr;
  const int rc =
      jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(options_.key.data()),
                 static_cast<int>(options_.key.size()));
  Jwt jwt(raw);
  if (rc != 0 || jwt == nullptr) return Refuse("signature does not verify (or malformed)");
  if (jwt_get_alg(jwt.get()) != jwt_str_alg(options_.algorithm.c_str())) {
    return Refuse("algorithm is not the configured one");
  }
  const char* iss = jwt_get_grant(jwt.get(), "iss");
  if (iss == nullptr || options_.issuer != iss) return Refuse("wrong or missing issuer (iss)");
  if (!AudienceMatches(jwt.get(), options_.audience)) {
    return Refuse("wrong or missing audience (aud)");
  }
  long exp = 0;
  if (!IntClaim(jwt.get(), "exp", &exp)) return Refuse("no expiry (exp)");
  if (absl::FromUnixSeconds(exp) + options_.leeway <= now) return Refuse("expired");
  long nbf = 0;
  if (IntClaim(jwt.get(), "nbf", &nbf) && absl::FromUnixSeconds(nbf) - options_.leeway > now) {
    return Refuse("not valid yet (nbf)");
  }
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (sub == nullptr || !Printable(sub)) {
    return Refuse("no subject (sub: 1-128 printable characters)");
  }
  const char* role = jwt_get_grant(jwt.get(), "role");
  if (role == nullptr || !Printable(role)) {
    return Refuse("no role (role: 1-128 printable characters)");
  }
  *expires = absl::FromUnixSeconds(exp) + options_.leeway;
  return Principal{.subject = sub, .role = role, .via = Principal::Via::kToken};
}

absl::StatusOr<std::string> IssueToken(const TokenOptions& options, const std::string& subject,
                                       const std::string& role, absl::Duration ttl,
                                       absl::Time now) {
  if (absl::Status st = ValidateTokenOptions(options); !st.ok()) return st;
  if (!Printable(subject)) {
    return absl::InvalidArgumentError("--subject: 1-128 printable characters, no spaces");
  }
  if (!Printable(role)) return absl::InvalidArgumentError("--role: 1-128 printable characters");
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("--ttl: must be positive");
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return absl::InternalError("token: out of memory");
  Jwt jwt(raw);
  const long iat = static_cast<long>(absl::ToUnixSeconds(now));
  const long exp = static_cast<long>(absl::ToUnixSeconds(now + ttl));
  if (jwt_add_grant(jwt.get(), "iss", options.issuer.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "aud", options.audience.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "sub", subject.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "role", role.c_str()) != 0 ||
      jwt_add_grant_int(jwt.get(), "iat", iat) != 0 ||
      jwt_add_grant_int(jwt.get(), "nbf", iat) != 0 ||
      jwt_add_grant_int(jwt.get(), "exp", exp) != 0) {
    return absl::InternalError("token: cannot set its claims");
  }
  if (jwt_set_alg(jwt.get(), jwt_str_alg(options.algorithm.c_str()),
                  reinterpret_cast<const unsigned char*>(options.key.data()),
                  static_cast<int>(options.key.size())) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth.token_key_file: not a usable ", options.algorithm, " signing key"));
  }
  char* encoded = jwt_encode_str(jwt.get());
  if (encoded == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth.token_key_file: not a usable ", options.algorithm, " signing key"));
  }
  std::string token(encoded);
  std::free(encoded);
  return token;
}

}  // namespace leadflow::auth

// Bearer tokens: every defect a caller (or an attacker) can put in a token is UNAUTHENTICATED
// with a reason that quotes neither the token nor the key.
#include "services/auth/token.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

TokenOptions Hs256() {
  TokenOptions o;
  o.key = kSecret;
  return o;
}

// A token with exactly the claims `fill` adds, signed with `alg` and `key`.
std::string Craft(jwt_alg_t alg, const std::string& key, const std::function<void(jwt_t*)>& fill) {
  jwt_t* j = nullptr;
  EXPECT_EQ(jwt_new(&j), 0);
  fill(j);
  EXPECT_EQ(jwt_set_alg(j, alg,
                        key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())),
            0);
  char* s = jwt_encode_str(j);
  std::string out = s != nullptr ? s : "";
  std::free(s);
  jwt_free(j);
  return out;
}

// Every claim a good token has, minus `skip`, with overrides.
std::function<void(jwt_t*)> Claims(const std::string& skip = "",
                                   std::map<std::string, std::string> strings = {},
                                   std::map<std::string, long> ints = {}) {
  return [=](jwt_t* j) {
    std::map<std::string, std::string> s = {
        {"iss", "leadflow"}, {"aud", "leadflow"}, {"sub", "alice"}, {"role", "sales"}};
    std::map<std::string, long> i = {{"exp", absl::ToUnixSeconds(kNow + absl::Hours(1))},
                                     {"nbf", absl::ToUnixSeconds(kNow - absl::Minutes(1))}};
    for (const auto& [k, v] : strings) s[k] = v;
    for (const auto& [k, v] : ints) i[k] = v;
    for (const auto& [k, v] : s) {
      if (k != skip) jwt_add_grant(j, k.c_str(), v.c_str());
    }
    for (const auto& [k, v] : i) {
      if (k != skip) jwt_add_grant_int(j, k.c_str(), v);
    }
  };
}

void ExpectRefused(const TokenVerifier& v, const std::string& token, const std::string& why,
                   const std::string& key = kSecret) {
  absl::StatusOr<Principal> p = v.Verify(token, kNow);
  ASSERT_FALSE(p.ok()) << why;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << why << ": " << p.status();
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(why));
  // Neither the token (nor a piece of its signature) nor the key leaks into the reason.
  if (token.size() > 12) {
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr(token.substr(token.size() - 12))));
  }
  EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr(key.substr(0, 12))));
}

TEST(TokenTest, AnIssuedTokenVerifiesAndNamesItsSubjectAndRole) {
  auto v = TokenVerifier::Create(Hs256());
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<std::string> token = IssueToken(Hs256(), "alice", "sales", absl::Hours(1), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  absl::StatusOr<Principal> p = (*v)->Verify(*token, kNow + absl::Minutes(5));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "alice");
  EXPECT_EQ(p->role, "sales");
  EXPECT_EQ(p->via, Principal::Via::kToken);
}

TEST(TokenTest, EveryDefectIsUnauthenticatedWithoutQuotingTokenOrKey) {
  auto made = TokenVerifier::Create(Hs256());
  ASSERT_TRUE(made.ok());
  const TokenVerifier& v = **made;
  const long past = absl::ToUnixSeconds(kNow - absl::Hours(1));
  const long future = absl::ToUnixSeconds(kNow + absl::Hours(1));
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("", {}, {{"exp", past}})), "expired");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("", {}, {{"nbf", future}})),
                "not valid yet");
  ExpectRefused(v, Craft(JWT_ALG_HS256, "another-secret-of-at-least-32-bytes!!", Claims()),
                "signature does not verify");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("", {{"aud", "someone-else"}})),
                "audience");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("aud")), "audience");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("", {{"iss", "evil"}})), "issuer");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("exp")), "no expiry");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("sub")), "no subject");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("role")), "no role");
  ExpectRefused(v, Craft(JWT_ALG_HS256, kSecret, Claims("", {{"sub", "has space"}})), "no subject");
  // alg: none, unsigned, with every claim right.
  ExpectRefused(v, Craft(JWT_ALG_NONE, "", Claims()), "algorithm none");
  // Another algorithm of the same family is not the configured one either.
  ExpectRefused(v, Craft(JWT_ALG_HS512, kSecret, Claims()), "algorithm HS512");
  // Malformed.
  ExpectRefused(v, "", "empty");
  ExpectRefused(v, "abc", "malformed");
  ExpectRefused(v, "a.b", "malformed");
  ExpectRefused(v, "!!!.@@@.###", "malformed header");
  ExpectRefused(v, "e30.e30.e30", "malformed header (no alg)");  // {} {} {}
  ExpectRefused(v, std::string(9000, 'a'), "longer than 8 KiB");
  // A good token with its payload swapped for another's (the signature no longer matches).
  const std::string good = Craft(JWT_ALG_HS256, kSecret, Claims());
  const std::string admin =
      Craft(JWT_ALG_HS256, "x-another-secret-of-32-bytes-or-more", Claims("", {{"role", "admin"}}));
  const std::string spliced = good.substr(0, good.find('.')) +
                              admin.substr(admin.find('.'), admin.rfind('.') - admin.find('.')) +
                              good.substr(good.rfind('.'));
  ExpectRefused(v, spliced, "signature does not verify");
  EXPECT_TRUE(v.Verify(good, kNow).ok());
}

// PEM text of a new key pair of `type` (EVP_PKEY_EC P-256 or RSA 2048).
std::pair<std::string, std::string> KeyPair(bool ec) {
  EVP_PKEY* key = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  auto pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv) {
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio, key);
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, n);
    BIO_free(bio);
    return out;
  };
  std::pair<std::string, std::string> out = {pem(true), pem(false)};
  EVP_PKEY_free(key);
  return out;
}

TEST(TokenTest, PublicKeyAlgorithmsVerifyAndRefuseTheSecretConfusion) {
  const auto [priv, pub] = KeyPair(/*ec=*/false);
  TokenOptions issue;
  issue.algorithm = "RS256";
  issue.key = priv;
  TokenOptions verify = issue;
  verify.key = pub;
  auto v = TokenVerifier::Create(verify);
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<std::string> token = IssueToken(issue, "crm", "intake", absl::Hours(1), kNow);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE((*v)->Verify(*token, kNow).ok());
  // The classic confusion: HS256 "signed" with the public key as the secret.
  ExpectRefused(**v, Craft(JWT_ALG_HS256, pub, Claims()), "algorithm HS256", pub);
  // Signed by another key pair.
  const auto [other_priv, other_pub] = KeyPair(false);
  issue.key = other_priv;
  ExpectRefused(**v, *IssueToken(issue, "crm", "intake", absl::Hours(1), kNow),
                "signature does not verify", pub);

  const auto [ec_priv, ec_pub] = KeyPair(/*ec=*/true);
  TokenOptions es;
  es.algorithm = "ES256";
  es.key = ec_priv;
  absl::StatusOr<std::string> es_token = IssueToken(es, "bot", "downstream", absl::Hours(1), kNow);
  ASSERT_TRUE(es_token.ok()) << es_token.status();
  es.key = ec_pub;
  auto ev = TokenVerifier::Create(es);
  ASSERT_TRUE(ev.ok()) << ev.status();
  absl::StatusOr<Principal> p = (*ev)->Verify(*es_token, kNow);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->role, "downstream");
}

TEST(TokenTest, VerifiedTokensAreCachedUntilTheyExpire) {
  auto v = TokenVerifier::Create(Hs256());
  ASSERT_TRUE(v.ok());
  const std::string token = *IssueToken(Hs256(), "alice", "sales", absl::Minutes(2), kNow);
  ASSERT_TRUE((*v)->Verify(token, kNow).ok());
  ASSERT_TRUE((*v)->Verify(token, kNow + absl::Seconds(1)).ok());
  EXPECT_EQ((*v)->cached(), 1u);
  // Past its expiry (and the leeway) the cached entry does not keep it alive.
  absl::StatusOr<Principal> late = (*v)->Verify(token, kNow + absl::Minutes(3));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenTest, BadOptionsNameTheOption) {
  TokenOptions o = Hs256();
  o.key = "short";
  EXPECT_THAT(std::string(ValidateTokenOptions(o).message()), HasSubstr("at least 32 bytes"));
  o = Hs256();
  o.algorithm = "none";
  EXPECT_THAT(std::string(ValidateTokenOptions(o).message()), HasSubstr("auth.token_algorithm"));
  o.algorithm = "XYZ1";
  EXPECT_FALSE(ValidateTokenOptions(o).ok());
  o.algorithm = "RS256";
  EXPECT_THAT(std::string(ValidateTokenOptions(o).message()), HasSubstr("PEM"));
  EXPECT_FALSE(IssueToken(Hs256(), "has space", "sales", absl::Hours(1), kNow).ok());
  EXPECT_FALSE(IssueToken(Hs256(), "alice", "sales", absl::ZeroDuration(), kNow).ok());
}

}  // namespace
}  // namespace leadflow::auth

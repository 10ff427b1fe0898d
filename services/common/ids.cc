#include "services/common/ids.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <phonenumbers/phonenumberutil.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/common/text.h"

namespace leadflow::common {
namespace {

constexpr size_t kIdHexDigits = 20;

bool IsEmailLocalChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != absl::string_view::npos;
}

bool IsDomainLabelValid(absl::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

std::string HashedId(absl::string_view prefix, absl::string_view kind, absl::string_view value) {
  return absl::StrCat(prefix, Sha256Hex(absl::StrCat(kind, ":", value), kIdHexDigits));
}

bool HasHexSuffix(absl::string_view id, absl::string_view prefix) {
  if (id.size() != prefix.size() + kIdHexDigits || id.substr(0, prefix.size()) != prefix) {
    return false;
  }
  for (char c : id.substr(prefix.size())) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> NormalizeEmail(absl::string_view raw) {
  std::string email = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid email address (", why, ")"));
  };
  if (email.empty()) return bad("empty");
  if (email.size() > 254) return bad("longer than 254 characters");
  size_t at = email.find('@');
  if (at == std::string::npos) return bad("no '@'");
  if (email.find('@', at + 1) != std::string::npos) return bad("more than one '@'");
  absl::string_view local = absl::string_view(email).substr(0, at);
  absl::string_view domain = absl::string_view(email).substr(at + 1);
  if (local.empty() || local.size() > 64) return bad("the part before '@' must be 1-64 characters");
  if (local.front() == '.' || local.back() == '.' || local.find("..") != absl::string_view::npos) {
    return bad("misplaced '.' before '@'");
  }
  for (char c : local) {
    if (!IsEmailLocalChar(c)) return bad("invalid character before '@'");
  }
  if (domain.find('.') == absl::string_view::npos) return bad("the domain has no '.'");
  size_t start = 0;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    absl::string_view label = domain.substr(
        start, dot == absl::string_view::npos ? absl::string_view::npos : dot - start);
    if (!IsDomainLabelValid(label)) return bad("invalid domain");
    if (dot == absl::string_view::npos) break;
    start = dot + 1;
  }
  return email;
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view raw,
                                           absl::string_view default_region) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  std::string s(absl::StripAsciiWhitespace(raw));
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid phone number (", why, ")"));
  };
  if (s.empty()) return bad("empty");
  if (s.size() > 64) return bad("longer than 64 characters");
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        absl::string_view(" +-.()/").find(c) == absl::string_view::npos) {
      return bad("only digits, spaces and + - . ( ) / are allowed; write an extension apart");
    }
  }
  // 00 is the international prefix in most of the world: "0044 ..." is "+44 ...".
  if (s.size() > 2 && s[0] == '0' && s[1] == '0') s = "+" + s.substr(2);
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  const std::string region = default_region.empty() ? "ZZ" : std::string(default_region);
  const PhoneNumberUtil::ErrorType parsed = util->Parse(s, region, &number);
  if (parsed != PhoneNumberUtil::NO_PARSING_ERROR) {
    if (s[0] != '+' && default_region.empty()) {
      return bad("must start with '+' or '00' and a country code (no default region is set)");
    }
    return bad(parsed == PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR ? "unknown country code"
                                                                     : "not a number");
  }
  if (!util->IsValidNumber(number)) return bad("not a number of its country's numbering plan");
  std::string e164;
  util->Format(number, PhoneNumberUtil::E164, &e164);
  return e164;
}

bool IsPhoneRegion(absl::string_view region) {
  std::set<std::string> regions;
  i18n::phonenumbers::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
  return regions.contains(std::string(region));
}

namespace {

std::string KeyedId(const std::string& key, absl::string_view kind, absl::string_view value,
                    int attempt) {
  std::string data = absl::StrCat(kind, ":", value);
  if (attempt > 0) absl::StrAppend(&data, "#", attempt);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(kLeadIdPrefix);
  for (size_t i = 0; i < kIdHexDigits; ++i) {
    const unsigned char byte = digest[i / 2];
    id.push_back(kHex[i % 2 == 0 ? byte >> 4 : byte & 0xf]);
  }
  return id;
}

}  // namespace

std::string LeadIdScheme::ForEmail(absl::string_view normalized_email, int attempt) const {
  return KeyedId(key_, "email", normalized_email, attempt);
}

std::string LeadIdScheme::ForPhone(absl::string_view e164_phone, int attempt) const {
  return KeyedId(key_, "phone", e164_phone, attempt);
}

std::string NewIdKey() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's generator failed (no entropy source): fall back to the random device.
    std::random_device rd;
    for (unsigned char& b : bytes) b = static_cast<unsigned char>(rd());
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

std::string LeadIdForEmail(absl::string_view normalized_email) {
  return HashedId(kLeadIdPrefix, "email", normalized_email);
}

std::string LeadIdForPhone(absl::string_view e164_phone) {
  return HashedId(kLeadIdPrefix, "phone", e164_phone);
}

bool IsLeadId(absl::string_view id) { return HasHexSuffix(id, kLeadIdPrefix); }
bool IsCustomerId(absl::string_view id) { return HasHexSuffix(id, kCustomerIdPrefix); }

absl::Status CheckLeadId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!IsLeadId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuotePrefix(id), " is not a lead id (ld_ and 20 hex digits)"));
  }
  return absl::OkStatus();
}

absl::Status CheckCustomerId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!IsCustomerId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", QuotePrefix(id), " is not a customer id (cu_ and 20 hex digits)"));
  }
  return absl::OkStatus();
}

CustomerId CustomerIdForLead(const LeadId& lead_id) {
  return CustomerId(absl::StrCat(kCustomerIdPrefix,
                                 absl::string_view(lead_id.value()).substr(kLeadIdPrefix.size())));
}

LeadId LeadIdForCustomer(const CustomerId& customer_id) {
  return LeadId(absl::StrCat(
      kLeadIdPrefix, absl::string_view(customer_id.value()).substr(kCustomerIdPrefix.size())));
}

std::string Sha256Hex(absl::string_view data, size_t hex_digits) {
  // OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; fetch it once.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, kSha256, nullptr);
  // Only the digits asked for, straight from the digest (one allocation).
  static constexpr char kHex[] = "0123456789abcdef";
  hex_digits = std::min(hex_digits, 2 * digest.size());
  std::string hex(hex_digits, '0');
  for (size_t i = 0; i < hex_digits; ++i) {
    const unsigned char byte = digest[i / 2];
    hex[i] = kHex[i % 2 == 0 ? byte >> 4 : byte & 0xf];
  }
  return hex;
}

std::string NewEventId() {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  return absl::StrCat(absl::Hex(hi, absl::kZeroPad16), absl::Hex(lo, absl::kZeroPad16));
}

}  // namespace leadflow::common

#include "services/common/ids.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

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
    absl::string_view label =
        domain.substr(start, dot == absl::string_view::npos ? absl::string_view::npos : dot - start);
    if (!IsDomainLabelValid(label)) return bad("invalid domain");
    if (dot == absl::string_view::npos) break;
    start = dot + 1;
  }
  return email;
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view raw) {
  absl::string_view s = absl::StripAsciiWhitespace(raw);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a valid phone number (", why, ")"));
  };
  if (s.empty()) return bad("empty");
  std::string digits;
  bool international = false;
  size_t i = 0;
  if (s[0] == '+') {
    international = true;
    i = 1;
  } else if (s.size() >= 2 && s[0] == '0' && s[1] == '0') {
    international = true;
    i = 2;
  }
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digits.push_back(c);
    } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
      continue;
    } else {
      return bad(absl::StrCat("unexpected character at position ", i + 1));
    }
  }
  if (!international) return bad("must start with '+' or '00' and a country code");
  if (digits.size() < 8 || digits.size() > 15) return bad("E.164 numbers have 8 to 15 digits");
  if (digits[0] == '0') return bad("country codes do not start with 0");
  return absl::StrCat("+", digits);
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
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuotePrefix(id), " is not a customer id (cu_ and 20 hex digits)"));
  }
  return absl::OkStatus();
}

std::string CustomerIdForLead(absl::string_view lead_id) {
  return absl::StrCat(kCustomerIdPrefix, lead_id.substr(kLeadIdPrefix.size()));
}

std::string LeadIdForCustomer(absl::string_view customer_id) {
  return absl::StrCat(kLeadIdPrefix, customer_id.substr(kCustomerIdPrefix.size()));
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

// Identifiers and contact normalization.
//
// Lead ids are derived from the lead's normalized email, else its E.164 phone, with a keyed hash
// (scheme 2, LeadIdScheme): the id of a new contact lands on a fixed partition, and reveals
// nothing about the contact to whoever lacks the deployment's key. Leads captured under scheme 1
// (an unkeyed SHA-256 of the contact, before) keep their ids; the writer finds a returning contact
// by its contact, whatever the id. Customer ids are derived from their originating lead id, so a
// customer's events share the lead's partition key.
#ifndef LEADFLOW_SERVICES_COMMON_IDS_H_
#define LEADFLOW_SERVICES_COMMON_IDS_H_

#include <cstdint>
#include <string>
#include <utility>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::common {

// Strong id types. A lead id and a customer id are both strings, and so are the keys and
// contacts passed beside them: a function that takes two of them is easy to call swapped. These
// wrap the string; the string comes back explicitly (value()), never by conversion. Where a
// string becomes one (a request field, an event's aggregate id) the code says which id it is.
template <typename Tag>
class StrongId {
 public:
  StrongId() = default;
  explicit StrongId(std::string value) : value_(std::move(value)) {}
  explicit StrongId(absl::string_view value) : value_(value) {}
  explicit StrongId(const char* value) : value_(value) {}
  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend bool operator==(const StrongId& a, const StrongId& b) { return a.value_ == b.value_; }

 private:
  std::string value_;
};
using LeadId = StrongId<struct LeadIdTag>;
using CustomerId = StrongId<struct CustomerIdTag>;
// A command's meta.command_id (the idempotency key a client chose).
using CommandId = StrongId<struct CommandIdTag>;

inline constexpr absl::string_view kLeadIdPrefix = "ld_";
inline constexpr absl::string_view kCustomerIdPrefix = "cu_";

// Trims surrounding white space and lower-cases. Refuses anything that is not a plausible
// single mailbox address (local@domain.tld, at most 254 characters). The error message does not
// name a field; callers prefix it.
absl::StatusOr<std::string> NormalizeEmail(absl::string_view raw);

// The E.164 form ("+442079460958") of a phone number written the usual ways: with spaces, dots,
// dashes, parentheses, a "(0)" trunk prefix, starting with '+' or '00'; a national number
// ("020 7946 0958") only if `default_region` (an ISO 3166 code such as "GB") is given. The number
// must be valid in its country's numbering plan (libphonenumber): "+1 2 3 4 5 6 7 8" is not.
// The error message does not name a field (callers prefix it) and never quotes the number.
absl::StatusOr<std::string> NormalizePhone(absl::string_view raw,
                                           absl::string_view default_region = "");
// True if `region` is a region code libphonenumber knows ("GB", "PL", "US", ...).
bool IsPhoneRegion(absl::string_view region);

// Lead ids, scheme 2: "ld_" + 20 lower-case hex digits of HMAC-SHA-256(key, "email:" + the
// normalized email), else of "phone:" + the E.164 phone. `attempt` > 0 gives further ids for the
// same contact (for a contact whose first id belongs to a lead that no longer holds it).
class LeadIdScheme {
 public:
  static constexpr uint32_t kVersion = 2;
  // `key`: the deployment's secret (bytes; NewIdKey makes one). Must not be empty.
  explicit LeadIdScheme(std::string key) : key_(std::move(key)) {}
  std::string ForEmail(absl::string_view normalized_email, int attempt = 0) const;
  std::string ForPhone(absl::string_view e164_phone, int attempt = 0) const;

 private:
  std::string key_;
};

// 32 random bytes from a cryptographic generator, as 64 hex digits: a new deployment's id key.
std::string NewIdKey();

// Scheme 1 (leads captured before scheme 2 keep these ids): "ld_" + 20 lower-case hex digits of
// SHA-256("email:" + normalized_email), or of "phone:" + e164_phone.
std::string LeadIdForEmail(absl::string_view normalized_email);
std::string LeadIdForPhone(absl::string_view e164_phone);

bool IsLeadId(absl::string_view id);
bool IsCustomerId(absl::string_view id);

// INVALID_ARGUMENT naming `field` ("qualify_lead.lead_id", "lead_id", ...) when `id` is empty
// ("<field>: required") or malformed ("<field>: 'x' is not a lead id (ld_ and 20 hex digits)").
absl::Status CheckLeadId(absl::string_view field, absl::string_view id);
absl::Status CheckCustomerId(absl::string_view field, absl::string_view id);

// "cu_" + the lead id's digits. Requires IsLeadId(lead_id).
CustomerId CustomerIdForLead(const LeadId& lead_id);
// The originating lead id of a customer id. Requires IsCustomerId(customer_id).
LeadId LeadIdForCustomer(const CustomerId& customer_id);

// The first `hex_digits` (<= 64) lower-case hex digits of SHA-256(data). Stable forever: lead ids,
// command fingerprints and default batch command ids depend on it.
std::string Sha256Hex(absl::string_view data, size_t hex_digits);

// 32 lower-case hex digits from a cryptographically seeded generator.
std::string NewEventId();

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_IDS_H_

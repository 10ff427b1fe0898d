// Identifiers and contact normalization.
//
// Lead ids are deterministic: derived from the normalized email, else from the E.164 phone, so a
// returning contact maps to the same lead, the same Kafka key and therefore the same partition
// and writer. Customer ids are derived from their originating lead id, so a customer's events
// share the lead's partition key.
#ifndef LEADFLOW_SERVICES_COMMON_IDS_H_
#define LEADFLOW_SERVICES_COMMON_IDS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::common {

inline constexpr absl::string_view kLeadIdPrefix = "ld_";
inline constexpr absl::string_view kCustomerIdPrefix = "cu_";

// Trims surrounding white space and lower-cases. Refuses anything that is not a plausible
// single mailbox address (local@domain.tld, at most 254 characters). The error message does not
// name a field; callers prefix it.
absl::StatusOr<std::string> NormalizeEmail(absl::string_view raw);

// Accepts international numbers written with spaces, dashes, dots or parentheses, starting with
// '+' or '00', and returns E.164 ("+" and 8 to 15 digits, first digit not 0). National numbers
// without a country code are refused: the id of a lead must not depend on where it was typed.
absl::StatusOr<std::string> NormalizePhone(absl::string_view raw);

// "ld_" + 20 lower-case hex digits of SHA-256("email:" + normalized_email).
std::string LeadIdForEmail(absl::string_view normalized_email);
// "ld_" + 20 lower-case hex digits of SHA-256("phone:" + e164_phone).
std::string LeadIdForPhone(absl::string_view e164_phone);

bool IsLeadId(absl::string_view id);
bool IsCustomerId(absl::string_view id);

// INVALID_ARGUMENT naming `field` ("qualify_lead.lead_id", "lead_id", ...) when `id` is empty
// ("<field>: required") or malformed ("<field>: 'x' is not a lead id (ld_ and 20 hex digits)").
absl::Status CheckLeadId(absl::string_view field, absl::string_view id);
absl::Status CheckCustomerId(absl::string_view field, absl::string_view id);

// "cu_" + the lead id's digits. Requires IsLeadId(lead_id).
std::string CustomerIdForLead(absl::string_view lead_id);
// The originating lead id of a customer id. Requires IsCustomerId(customer_id).
std::string LeadIdForCustomer(absl::string_view customer_id);

// The first `hex_digits` (<= 64) lower-case hex digits of SHA-256(data). Stable forever: lead ids,
// command fingerprints and default batch command ids depend on it.
std::string Sha256Hex(absl::string_view data, size_t hex_digits);

// 32 lower-case hex digits from a cryptographically seeded generator.
std::string NewEventId();

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_IDS_H_

// One contact, one live lead: the rule, and the one way to pick the lead that answers for a
// contact. An email or phone identifies at most one live (not MERGED) lead. A capture from a
// known contact is recorded on the lead holding it; a change to a contact another live lead
// holds is refused; a lead gives a contact up only when it changes it. The writer keeps who
// holds what (derived from the events, so a replay rebuilds it) and the lead view keeps the same
// index; older logs may hold a contact twice (from before the rule), and then both pick the same
// holder (AnsweringHolder).
#ifndef LEADFLOW_SERVICES_LEAD_CONTACTS_H_
#define LEADFLOW_SERVICES_LEAD_CONTACTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "services/common/ids.h"
#include "services/lead/state.h"

namespace leadflow::lead {

// "e:<normalized email>", "p:<E.164 phone>".
std::string EmailKey(absl::string_view normalized_email);
std::string PhoneKey(absl::string_view e164_phone);

// What of a lead the contact rule looks at.
struct ContactHolder {
  std::string lead_id;
  bool merged = false;  // a MERGED lead keeps its contacts but answers only if no live lead does
  absl::Time captured_at = absl::InfinitePast();
};

// A lead's holder entry and the contact keys it holds now (none if it does not exist).
struct LeadContacts {
  ContactHolder holder;
  std::vector<std::string> keys;
  static LeadContacts Of(const LeadState& lead);
};

// The holder that answers for a contact: a live one before a merged one, then the one captured
// first, then the smallest id. nullptr if `holders` is empty.
const ContactHolder* AnsweringHolder(absl::Span<const ContactHolder> holders);

// What the reducer asks before a lead takes a contact (lead.h DecideContext::contacts).
class ContactDirectory {
 public:
  virtual ~ContactDirectory() = default;
  // A live lead other than `lead_id` that holds `key` (EmailKey/PhoneKey), if any.
  virtual std::optional<std::string> LiveHolderOtherThan(const std::string& key,
                                                         const common::LeadId& lead_id) const = 0;
};

}  // namespace leadflow::lead

#endif  // LEADFLOW_SERVICES_LEAD_CONTACTS_H_

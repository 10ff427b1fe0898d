#include "services/lead/contacts.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace leadflow::lead {

std::string EmailKey(absl::string_view normalized_email) {
  return absl::StrCat("e:", normalized_email);
}

std::string PhoneKey(absl::string_view e164_phone) { return absl::StrCat("p:", e164_phone); }

LeadContacts LeadContacts::Of(const LeadState& lead) {
  LeadContacts c;
  if (!lead.exists) return c;
  c.holder.lead_id = lead.lead_id;
  c.holder.merged = lead.status == v1::LEAD_STATUS_MERGED;
  c.holder.captured_at = lead.captured_at;
  if (!lead.email.empty()) c.keys.push_back(EmailKey(lead.email));
  if (!lead.phone.empty()) c.keys.push_back(PhoneKey(lead.phone));
  return c;
}

const ContactHolder* AnsweringHolder(absl::Span<const ContactHolder> holders) {
  const ContactHolder* best = nullptr;
  for (const ContactHolder& h : holders) {
    if (best == nullptr || std::tie(h.merged, h.captured_at, h.lead_id) <
                               std::tie(best->merged, best->captured_at, best->lead_id)) {
      best = &h;
    }
  }
  return best;
}

}  // namespace leadflow::lead

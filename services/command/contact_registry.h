// The writer's record of which leads hold which contact (the rule: services/lead/contacts.h),
// derived from the events (captures, contact changes, merges), so the start-up replay rebuilds
// it. A capture of a known contact is routed to the lead that answers for it; a contact change
// asks it whether another live lead holds the contact. One writer process owns every partition
// today, so one registry sees every lead (docs/reliability.md: what several writers would need).
#ifndef LEADFLOW_SERVICES_COMMAND_CONTACT_REGISTRY_H_
#define LEADFLOW_SERVICES_COMMAND_CONTACT_REGISTRY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "services/lead/contacts.h"

namespace leadflow::command {

class ContactRegistry {
 public:
  // Thread-safe.
  std::optional<std::string> Answering(const std::string& key) const;
  std::optional<std::string> LiveHolderOtherThan(const std::string& key,
                                                 const common::LeadId& lead_id) const;
  bool LeadExists(const std::string& lead_id) const;
  // Records one lead's change: its contacts before and after (LeadContacts::Of of its states).
  void Apply(const lead::LeadContacts& before, const lead::LeadContacts& after);
  void Clear();

  using Holders = std::vector<lead::ContactHolder>;

 private:
  friend class ContactOverlay;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Holders> holders_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> leads_ ABSL_GUARDED_BY(mu_);
};

// A commit group's changes, seen by the group's later decisions (on any partition) and written
// to the registry only when the group's append succeeded. Used by one thread.
class ContactOverlay final : public lead::ContactDirectory {
 public:
  explicit ContactOverlay(ContactRegistry* registry) : registry_(registry) {}
  std::optional<std::string> Answering(const std::string& key) const;
  std::optional<std::string> LiveHolderOtherThan(const std::string& key,
                                                 const common::LeadId& lead_id) const override;
  bool LeadExists(const std::string& lead_id) const;
  void Apply(const lead::LeadContacts& before, const lead::LeadContacts& after);
  void Commit();

 private:
  // The holders of `key`: the group's own list if it touched the key, else the registry's.
  ContactRegistry::Holders Holders(const std::string& key) const;
  ContactRegistry* registry_;
  absl::flat_hash_map<std::string, ContactRegistry::Holders> changed_;
  absl::flat_hash_set<std::string> new_leads_;
};

}  // namespace leadflow::command

#endif  // LEADFLOW_SERVICES_COMMAND_CONTACT_REGISTRY_H_

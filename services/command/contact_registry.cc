#include "services/command/contact_registry.h"

#include <algorithm>

namespace leadflow::command {
namespace {

using Holders = ContactRegistry::Holders;

std::optional<std::string> AnsweringOf(const Holders& holders) {
  const lead::ContactHolder* h = lead::AnsweringHolder(holders);
  if (h == nullptr) return std::nullopt;
  return h->lead_id;
}

std::optional<std::string> LiveOtherOf(const Holders& holders, const std::string& lead_id) {
  for (const lead::ContactHolder& h : holders) {
    if (!h.merged && h.lead_id != lead_id) return h.lead_id;
  }
  return std::nullopt;
}

// Applies one lead's change to the holder lists `get(key)` returns (creating them as needed).
template <typename Get>
void ApplyTo(const lead::LeadContacts& before, const lead::LeadContacts& after, Get get) {
  const std::string& id =
      !after.holder.lead_id.empty() ? after.holder.lead_id : before.holder.lead_id;
  if (id.empty()) return;
  // Dropped contacts: only the lead itself leaves their lists.
  for (const std::string& key : before.keys) {
    if (std::find(after.keys.begin(), after.keys.end(), key) != after.keys.end()) continue;
    Holders& list = get(key);
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const lead::ContactHolder& h) { return h.lead_id == id; }),
               list.end());
  }
  // Held contacts: added, or their entry refreshed (a merge marks it merged).
  for (const std::string& key : after.keys) {
    Holders& list = get(key);
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const lead::ContactHolder& h) { return h.lead_id == id; });
    if (it == list.end()) {
      list.push_back(after.holder);
    } else {
      *it = after.holder;
    }
  }
}

}  // namespace

std::optional<std::string> ContactRegistry::Answering(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = holders_.find(key);
  return it == holders_.end() ? std::nullopt : AnsweringOf(it->second);
}

std::optional<std::string> ContactRegistry::LiveHolderOtherThan(
    const std::string& key, const common::LeadId& lead_id) const {
  absl::MutexLock lock(&mu_);
  auto it = holders_.find(key);
  return it == holders_.end() ? std::nullopt : LiveOtherOf(it->second, lead_id.value());
}

bool ContactRegistry::LeadExists(const std::string& lead_id) const {
  absl::MutexLock lock(&mu_);
  return leads_.contains(lead_id);
}

void ContactRegistry::Apply(const lead::LeadContacts& before, const lead::LeadContacts& after) {
  absl::MutexLock lock(&mu_);
  if (!after.holder.lead_id.empty()) leads_.insert(after.holder.lead_id);
  ApplyTo(before, after, [&](const std::string& key) -> Holders& {
    mu_.AssertHeld();  // locked above (the analysis does not look into lambdas)
    return holders_[key];
  });
  for (const std::string& key : before.keys) {
    if (auto it = holders_.find(key); it != holders_.end() && it->second.empty())
      holders_.erase(it);
  }
}

void ContactRegistry::Clear() {
  absl::MutexLock lock(&mu_);
  holders_.clear();
  leads_.clear();
}

Holders ContactOverlay::Holders(const std::string& key) const {
  if (auto it = changed_.find(key); it != changed_.end()) return it->second;
  absl::MutexLock lock(&registry_->mu_);
  auto it = registry_->holders_.find(key);
  return it == registry_->holders_.end() ? ContactRegistry::Holders() : it->second;
}

std::optional<std::string> ContactOverlay::Answering(const std::string& key) const {
  return AnsweringOf(Holders(key));
}

std::optional<std::string> ContactOverlay::LiveHolderOtherThan(
    const std::string& key, const common::LeadId& lead_id) const {
  return LiveOtherOf(Holders(key), lead_id.value());
}

bool ContactOverlay::LeadExists(const std::string& lead_id) const {
  return new_leads_.contains(lead_id) || registry_->LeadExists(lead_id);
}

void ContactOverlay::Apply(const lead::LeadContacts& before, const lead::LeadContacts& after) {
  if (!after.holder.lead_id.empty()) new_leads_.insert(after.holder.lead_id);
  ApplyTo(before, after, [&](const std::string& key) -> ContactRegistry::Holders& {
    auto it = changed_.find(key);
    if (it == changed_.end()) it = changed_.emplace(key, Holders(key)).first;
    return it->second;
  });
}

void ContactOverlay::Commit() {
  absl::MutexLock lock(&registry_->mu_);
  for (const std::string& id : new_leads_) registry_->leads_.insert(id);
  for (auto& [key, list] : changed_) {
    if (list.empty()) {
      registry_->holders_.erase(key);
    } else {
      registry_->holders_[key] = std::move(list);
    }
  }
  changed_.clear();
  new_leads_.clear();
}

}  // namespace leadflow::command

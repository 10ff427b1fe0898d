#include "projections/lead/lead_view.h"

#include <algorithm>
#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/auth/redact.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "services/lead/contacts.h"
#include "services/lead/reducer.h"

namespace leadflow::projections {
namespace {

absl::string_view Key(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

using common::FromProto;
using common::ToProto;
using google::protobuf::Timestamp;

constexpr char kEmailPrefix[] = "e/";
constexpr char kPhonePrefix[] = "p/";
constexpr char kCapturedPrefix[] = "c/";
constexpr char kActivityPrefix[] = "a/";
constexpr char kFollowUpPrefix[] = "f/";
constexpr char kMergedPrefix[] = "m/";
// i/ <filter code> <value> <capture time> <lead id>: one index per ListLeads filter.
constexpr char kFilterPrefix[] = "i/";
// n/ <filter codes> : <values> <partition>: how many leads have those values (each partition
// thread keeps its own counters, so no two threads write one key; a query sums them).
constexpr char kCounterPrefix[] = "n/";

// The filters ListLeads and CountLeads offer. A row's value of each, as a key part; empty: the
// row has none (an unset enum, no owner), which no request can ask for, so it is not indexed.
enum FilterKind { kStatusFilter, kStageFilter, kOwnerFilter, kSourceFilter, kTemperatureFilter };
constexpr int kFilterKinds = 5;
constexpr char kFilterCode[kFilterKinds] = {'s', 'g', 'o', 'r', 't'};
using FilterValues = std::array<std::string, kFilterKinds>;

std::string EnumValue(int v) { return v == 0 ? std::string() : absl::StrCat(v); }

FilterValues RowFilterValues(const v1::LeadView& v) {
  return {EnumValue(v.status()), EnumValue(v.stage()), v.owner(), EnumValue(v.source_channel()),
          EnumValue(v.temperature())};
}

template <typename Request>
FilterValues RequestFilterValues(const Request& q) {
  return {EnumValue(q.status()), EnumValue(q.stage()), q.owner(), EnumValue(q.source_channel()),
          EnumValue(q.temperature())};
}

// The index prefix of one filter value: i/ <code> <value>.
std::string FilterIndexPrefix(int kind, absl::string_view value) {
  std::string key = absl::StrCat(kFilterPrefix, absl::string_view(&kFilterCode[kind], 1));
  AppendKeyPart(&key, value);
  return key;
}

// A counter's key without its partition: n/ <codes> : <values>.
std::string CounterKey(std::initializer_list<int> kinds, const FilterValues& values) {
  std::string key = kCounterPrefix;
  for (int k : kinds) key.push_back(kFilterCode[k]);
  key.push_back(':');
  for (int k : kinds) AppendKeyPart(&key, values[k]);
  return key;
}

std::string EncodeBigEndian32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  return std::string{static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
}

bool IsSet(const Timestamp& ts) { return ts.seconds() != 0 || ts.nanos() != 0; }

int64_t Micros(const Timestamp& ts) { return absl::ToUnixMicros(FromProto(ts)); }

// Sets `field` to `at` if unset or later (earliest own time), and its record-time twin.
void Earliest(Timestamp* field, Timestamp* recorded_field, const v1::Event& e) {
  if (!IsSet(*field) || Micros(e.occurred_at()) < Micros(*field)) {
    *field = e.occurred_at();
    *recorded_field = e.recorded_at();
  }
}

void Latest(Timestamp* field, Timestamp* recorded_field, const v1::Event& e) {
  *field = e.occurred_at();
  *recorded_field = e.recorded_at();
}

lead::LeadState ToState(const v1::LeadView& v) {
  lead::LeadState s;
  if (v.lead_id().empty()) return s;
  s.exists = true;
  s.lead_id = v.lead_id();
  s.version = v.version();
  s.status = v.status();
  s.stage = v.stage();
  s.status_before_exit = v.status_before_exit();
  s.stage_before_exit = v.stage_before_exit();
  s.captured_at = FromProto(v.milestones().captured());
  s.status_changed_at = FromProto(v.status_changed_at());
  s.full_name = v.person().full_name();
  s.company = v.company();
  s.title = v.title();
  s.email = v.email();
  s.phone = v.phone();
  s.source_channel = v.source_channel();
  s.origin_type = v.origin_type();
  s.campaign = v.campaign();
  s.temperature = v.temperature();
  s.owner = v.owner();
  s.team = v.team();
  s.interaction_count = v.touches_total();
  for (const v1::FollowUp& f : v.open_follow_ups()) {
    s.open_follow_ups[f.follow_up_id()] = lead::FollowUpState{.due_at = FromProto(f.due_at()),
                                                              .kind = f.kind(),
                                                              .note = f.note(),
                                                              .assignee = f.assignee()};
  }
  if (IsSet(v.revisit_at())) s.revisit_at = FromProto(v.revisit_at());
  s.customer_id = v.customer_id();
  s.merged_into = v.merged_into();
  return s;
}

void FromState(const lead::LeadState& s, v1::LeadView& v) {
  v.set_lead_id(s.lead_id);
  v.set_version(s.version);
  v.set_status(s.status);
  v.set_stage(s.stage);
  v.set_status_before_exit(s.status_before_exit);
  v.set_stage_before_exit(s.stage_before_exit);
  *v.mutable_status_changed_at() = ToProto(s.status_changed_at);
  v.mutable_person()->set_full_name(s.full_name);
  v.set_company(s.company);
  v.set_title(s.title);
  v.set_email(s.email);
  v.set_phone(s.phone);
  v.set_source_channel(s.source_channel);
  v.set_origin_type(s.origin_type);
  v.set_campaign(s.campaign);
  v.set_temperature(s.temperature);
  v.set_owner(s.owner);
  v.set_team(s.team);
  v.set_touches_total(s.interaction_count);
  // Open follow-ups by due time, then id (deterministic bytes for equal rows).
  std::vector<std::pair<std::string, const lead::FollowUpState*>> fus;
  for (const auto& [id, f] : s.open_follow_ups) fus.emplace_back(id, &f);
  std::stable_sort(fus.begin(), fus.end(), [](const auto& a, const auto& b) {
    return a.second->due_at < b.second->due_at;
  });
  v.clear_open_follow_ups();
  for (const auto& [id, f] : fus) {
    v1::FollowUp* out = v.add_open_follow_ups();
    out->set_follow_up_id(id);
    *out->mutable_due_at() = ToProto(f->due_at);
    out->set_kind(f->kind);
    out->set_note(f->note);
    out->set_assignee(f->assignee);
  }
  if (s.status == v1::LEAD_STATUS_POSTPONED) {
    *v.mutable_revisit_at() = ToProto(s.revisit_at);
  } else {
    v.clear_revisit_at();
  }
  v.set_customer_id(s.customer_id);
  v.set_merged_into(s.merged_into);
}

void CountTouch(v1::LeadView& v, v1::InteractionKind kind, v1::Direction direction) {
  v1::TouchCount* t = nullptr;
  for (auto& existing : *v.mutable_touches()) {
    if (existing.kind() == kind) t = &existing;
  }
  if (t == nullptr) {
    t = v.add_touches();
    t->set_kind(kind);
    std::sort(v.mutable_touches()->begin(), v.mutable_touches()->end(),
              [](const v1::TouchCount& a, const v1::TouchCount& b) { return a.kind() < b.kind(); });
    for (auto& existing : *v.mutable_touches()) {
      if (existing.kind() == kind) t = &existing;
    }
  }
  if (direction == v1::DIRECTION_INBOUND) {
    t->set_inbound(t->inbound() + 1);
  } else {
    t->set_outbound(t->outbound() + 1);
  }
}

std::string LeadIdAfter(absl::string_view key, size_t prefix_len) {
  return std::string(key.substr(prefix_len));
}

}  // namespace

namespace {

// The view-only part of applying an event (lifecycle state comes from the reducer). Cannot fail.
void ApplyViewOnly(const v1::Event& e, const v1::LogPosition& position, v1::LeadView& v) {
  v1::Milestones* m = v.mutable_milestones();
  v1::Milestones* r = v.mutable_milestones_recorded();
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured: {
      const auto& b = e.lead_captured();
      if (b.has_acquisition_cost()) *v.mutable_acquisition_cost() = b.acquisition_cost();
      v.set_temperature_at_capture(b.temperature());
      v.set_interest_note(b.interest_note());
      Latest(m->mutable_captured(), r->mutable_captured(), e);
      break;
    }
    case v1::Event::kInquiryReceived:
      v.set_inquiries(v.inquiries() + 1);
      break;
    case v1::Event::kInteractionLogged: {
      const auto& b = e.interaction_logged();
      CountTouch(v, b.kind(), b.direction());
      if (!IsSet(v.last_interaction_at()) ||
          Micros(e.occurred_at()) >= Micros(v.last_interaction_at())) {
        *v.mutable_last_interaction_at() = e.occurred_at();
        v.set_last_interaction_kind(b.kind());
      }
      const uint32_t reached = lead::MilestonesReached(e);
      if (lead::Reaches(reached, lead::kContacted)) {
        Earliest(m->mutable_contacted(), r->mutable_contacted(), e);
      }
      if (lead::Reaches(reached, lead::kPresented)) {
        Earliest(m->mutable_presented(), r->mutable_presented(), e);
      }
      if (lead::Reaches(reached, lead::kProposal)) {
        Earliest(m->mutable_proposal(), r->mutable_proposal(), e);
      }
      break;
    }
    case v1::Event::kLeadQualified: {
      const auto& b = e.lead_qualified();
      v1::Bant* bant = v.mutable_bant();
      *bant->mutable_budget() = b.budget();
      bant->set_decision_maker(b.decision_maker());
      bant->set_need(b.need());
      *bant->mutable_expected_decision_at() = b.expected_decision_at();
      Earliest(m->mutable_qualified(), r->mutable_qualified(), e);
      break;
    }
    case v1::Event::kLeadRejected:
      v.set_rejection_reason(e.lead_rejected().reason());
      v.set_exit_text(e.lead_rejected().text());
      Latest(m->mutable_last_rejected(), r->mutable_last_rejected(), e);
      break;
    case v1::Event::kLeadPostponed:
      v.set_exit_text(e.lead_postponed().reason());
      Latest(m->mutable_last_postponed(), r->mutable_last_postponed(), e);
      break;
    case v1::Event::kLeadDisqualified:
      v.set_disqualification_reason(e.lead_disqualified().reason());
      v.set_exit_text(e.lead_disqualified().text());
      Latest(m->mutable_last_disqualified(), r->mutable_last_disqualified(), e);
      break;
    case v1::Event::kLeadReactivated:
      v.clear_rejection_reason();
      v.clear_disqualification_reason();
      v.clear_exit_text();
      Latest(m->mutable_last_reactivated(), r->mutable_last_reactivated(), e);
      break;
    case v1::Event::kLeadConverted:
      Earliest(m->mutable_converted(), r->mutable_converted(), e);
      break;
    case v1::Event::kLeadErased:
      // Every personal field of the row goes (the contact index entries with them, FinishBatch);
      // status, milestones and counts stay.
      auth::RedactPersonal(&v);
      v.set_erased(true);
      break;
    default:
      break;
  }
  if (!IsSet(v.last_activity_at()) || Micros(e.occurred_at()) > Micros(v.last_activity_at())) {
    *v.mutable_last_activity_at() = e.occurred_at();
  }
  *v.mutable_last_position() = position;
}

}  // namespace

absl::Status ApplyToLeadView(const v1::Event& e, const v1::LogPosition& position, v1::LeadView& v) {
  lead::LeadState state = ToState(v);
  LEADFLOW_RETURN_IF_ERROR(lead::EvolveLead(state, e));
  FromState(state, v);
  ApplyViewOnly(e, position, v);
  return absl::OkStatus();
}

namespace {

// The index keys of a row but its filter indexes'.
std::set<std::string> CoreIndexKeys(const v1::LeadView& v) {
  std::set<std::string> keys;
  if (v.lead_id().empty()) return keys;
  // e/ <email> <lead id> (a contact may be held by several leads in an older log; FindLead
  // picks one by the rule of lead/contacts.h).
  if (!v.email().empty()) keys.insert(absl::StrCat(kEmailPrefix, KeyPart(v.email()), v.lead_id()));
  if (!v.phone().empty()) keys.insert(absl::StrCat(kPhonePrefix, KeyPart(v.phone()), v.lead_id()));
  keys.insert(absl::StrCat(kCapturedPrefix, EncodeBigEndian64(Micros(v.milestones().captured())),
                           v.lead_id()));
  keys.insert(
      absl::StrCat(kActivityPrefix, EncodeBigEndian64(Micros(v.last_activity_at())), v.lead_id()));
  for (const v1::FollowUp& f : v.open_follow_ups()) {
    // f/ <assignee> <due> <lead id> <follow-up id>, the free-text parts escaped (KeyPart).
    const std::string& who = f.assignee().empty() ? v.owner() : f.assignee();
    std::string key =
        absl::StrCat(kFollowUpPrefix, KeyPart(who), EncodeBigEndian64(Micros(f.due_at())));
    AppendKeyPart(&key, v.lead_id());
    AppendKeyPart(&key, f.follow_up_id());
    keys.insert(std::move(key));
  }
  if (!v.merged_into().empty()) {
    keys.insert(absl::StrCat(kMergedPrefix, v.merged_into(), "/", v.lead_id()));
  }
  return keys;
}

// The filter index keys of a lead with `values`, captured at `captured` (micros).
std::vector<std::string> FilterIndexKeys(const FilterValues& values, int64_t captured,
                                         const std::string& lead_id) {
  std::vector<std::string> keys;
  const std::string at = EncodeBigEndian64(captured);
  for (int k = 0; k < kFilterKinds; ++k) {
    if (!values[k].empty())
      keys.push_back(absl::StrCat(FilterIndexPrefix(k, values[k]), at, lead_id));
  }
  return keys;
}

// The counters (without their partition) a lead with `values` counts in: all leads, each value
// it has, and each pair of them.
std::vector<std::string> CounterKeys(const FilterValues& values) {
  std::vector<std::string> keys;
  keys.push_back(CounterKey({}, values));
  for (int a = 0; a < kFilterKinds; ++a) {
    if (values[a].empty()) continue;
    keys.push_back(CounterKey({a}, values));
    for (int b = a + 1; b < kFilterKinds; ++b) {
      if (!values[b].empty()) keys.push_back(CounterKey({a, b}, values));
    }
  }
  return keys;
}

}  // namespace

std::set<std::string> LeadIndexKeys(const v1::LeadView& v) {
  std::set<std::string> keys = CoreIndexKeys(v);
  if (v.lead_id().empty()) return keys;
  for (std::string& k :
       FilterIndexKeys(RowFilterValues(v), Micros(v.milestones().captured()), v.lead_id())) {
    keys.insert(std::move(k));
  }
  return keys;
}

struct LeadProjection::Cached {
  v1::LeadView view;      // view-only fields current; state fields as loaded
  lead::LeadState state;  // reducer state, current
  // As loaded: the row's index keys but the filter indexes', and (if the row existed) its
  // filter values and capture time, which give its filter index keys and counters.
  std::set<std::string> loaded_keys;
  std::optional<FilterValues> loaded_filters;
  int64_t loaded_captured = 0;
  int32_t partition = 0;
};

absl::Status LeadProjection::Apply(const v1::Event& e, const log::Record& record, ViewTxn& txn) {
  const std::string& lead_id = e.partition_key();
  // Every event of the lead and of its customer goes to the lead's timeline, in log order; it is
  // written last, once nothing can fail any more (AppliesAtomically).
  auto timeline = [&] {
    txn.PutWriteOnly(kTimeline, absl::StrCat(lead_id, "/", EncodeBigEndian64(record.offset)),
                     record.value);
  };
  if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) {
    timeline();
    return absl::OkStatus();
  }

  Batch& batch = txn.Scratch<Batch>();
  auto [it, inserted] = batch.try_emplace(e.aggregate_id());
  if (inserted) {
    auto cached = std::make_unique<Cached>();
    absl::StatusOr<std::optional<std::string>> row = txn.Get(kLeads, e.aggregate_id());
    if (!row.ok()) {
      batch.erase(it);
      return row.status();
    }
    if (row->has_value() && !cached->view.ParseFromString(**row)) {
      batch.erase(it);
      return absl::DataLossError(
          absl::StrCat("lead view row of ", e.aggregate_id(), " is corrupt"));
    }
    cached->state = ToState(cached->view);
    cached->loaded_keys = CoreIndexKeys(cached->view);
    if (!cached->view.lead_id().empty()) {
      cached->loaded_filters = RowFilterValues(cached->view);
      cached->loaded_captured = Micros(cached->view.milestones().captured());
    }
    cached->partition = record.partition;
    it->second = std::move(cached);
  }
  Cached& c = *it->second;
  // EvolveLead checks before it changes anything, and the view-only part cannot fail: on error
  // the cached row and state are exactly as before this event.
  LEADFLOW_RETURN_IF_ERROR(lead::EvolveLead(c.state, e));
  v1::LogPosition position;
  position.set_partition(record.partition);
  position.set_offset(record.offset);
  ApplyViewOnly(e, position, c.view);
  timeline();
  return absl::OkStatus();
}

absl::Status LeadProjection::FinishBatch(ViewTxn& txn) {
  Batch& batch = txn.Scratch<Batch>();
  // Counter changes of the batch's rows, summed first: one read and one write per counter.
  absl::flat_hash_map<std::string, int64_t> deltas;
  for (auto& [id, c] : batch) {
    if (!c->state.exists) continue;  // loaded for an event that then failed
    FromState(c->state, c->view);
    txn.Put(kLeads, id, c->view.SerializeAsString());
    const std::set<std::string> keys = CoreIndexKeys(c->view);
    for (const std::string& k : c->loaded_keys) {
      if (!keys.contains(k)) txn.Delete(kIndex, k);
    }
    for (const std::string& k : keys) {
      if (!c->loaded_keys.contains(k)) txn.Put(kIndex, k, "");  // the lead is in the key
    }
    // Filter indexes and counters change only with a filter value (or the capture time): most
    // batches leave them alone.
    const FilterValues filters = RowFilterValues(c->view);
    const int64_t captured = Micros(c->view.milestones().captured());
    if (c->loaded_filters == filters && c->loaded_captured == captured) continue;
    std::vector<std::string> old_keys, old_counters;
    if (c->loaded_filters.has_value()) {
      old_keys = FilterIndexKeys(*c->loaded_filters, c->loaded_captured, id);
      old_counters = CounterKeys(*c->loaded_filters);
    }
    const std::vector<std::string> new_keys = FilterIndexKeys(filters, captured, id);
    for (const std::string& k : old_keys) {
      if (std::find(new_keys.begin(), new_keys.end(), k) == new_keys.end()) {
        txn.Delete(kIndex, k);
      }
    }
    for (const std::string& k : new_keys) {
      if (std::find(old_keys.begin(), old_keys.end(), k) == old_keys.end()) txn.Put(kIndex, k, "");
    }
    const std::string partition = EncodeBigEndian32(c->partition);
    for (const std::string& k : old_counters) --deltas[absl::StrCat(k, partition)];
    for (const std::string& k : CounterKeys(filters)) ++deltas[absl::StrCat(k, partition)];
  }
  batch.clear();
  for (const auto& [key, delta] : deltas) {
    if (delta == 0) continue;
    LEADFLOW_ASSIGN_OR_RETURN(std::optional<std::string> stored, txn.Get(kIndex, key));
    int64_t n = delta;
    if (stored.has_value()) {
      if (stored->size() != 8) return absl::DataLossError("lead view: corrupt counter");
      n += DecodeBigEndian64(stored->data());
    }
    if (n == 0) {
      txn.Delete(kIndex, key);
    } else {
      txn.Put(kIndex, key, EncodeBigEndian64(n));
    }
  }
  return absl::OkStatus();
}

// ---- Queries --------------------------------------------------------------------------------

namespace {

// A lead view row as read from the store: NOT_FOUND naming the lead, DATA_LOSS if corrupt.
absl::StatusOr<v1::LeadView> ParseRow(const std::string& lead_id,
                                      const absl::StatusOr<std::string>& row) {
  if (absl::IsNotFound(row.status())) {
    return absl::NotFoundError(absl::StrCat("lead ", lead_id, " not found"));
  }
  if (!row.ok()) return row.status();
  v1::LeadView view;
  if (!view.ParseFromString(*row)) {
    return absl::DataLossError(absl::StrCat("lead view row of ", lead_id, " is corrupt"));
  }
  return view;
}

}  // namespace

absl::StatusOr<v1::LeadView> LeadQueries::Get(const std::string& lead_id) const {
  LEADFLOW_RETURN_IF_ERROR(common::CheckLeadId("lead_id", lead_id));
  return ParseRow(lead_id, store_->Get(LeadProjection::kLeads, lead_id));
}

absl::StatusOr<v1::LeadView> LeadQueries::Find(const v1::FindLeadRequest& req) const {
  if (req.email().empty() && req.phone().empty()) {
    return absl::InvalidArgumentError("email: set email or phone");
  }
  if (!req.email().empty() && !req.phone().empty()) {
    return absl::InvalidArgumentError("phone: set only one of email or phone");
  }
  std::string prefix;
  if (!req.email().empty()) {
    auto email = common::NormalizeEmail(req.email());
    if (!email.ok())
      return absl::InvalidArgumentError(absl::StrCat("email: ", email.status().message()));
    prefix = absl::StrCat(kEmailPrefix, KeyPart(*email));
  } else {
    auto phone = common::NormalizePhone(req.phone(), phone_region_);
    if (!phone.ok())
      return absl::InvalidArgumentError(absl::StrCat("phone: ", phone.status().message()));
    prefix = absl::StrCat(kPhonePrefix, KeyPart(*phone));
  }
  // The leads holding the contact: one, or (older logs) several; the same rule as the writer's
  // picks the one that answers for it.
  std::vector<v1::LeadView> views;
  std::vector<lead::ContactHolder> holders;
  auto it = store_->NewIterator(LeadProjection::kIndex);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    LEADFLOW_ASSIGN_OR_RETURN(v1::LeadView view,
                              Get(std::string(Key(it->key()).substr(prefix.size()))));
    holders.push_back({.lead_id = view.lead_id(),
                       .merged = view.status() == v1::LEAD_STATUS_MERGED,
                       .captured_at = FromProto(view.milestones().captured())});
    views.push_back(std::move(view));
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("lead view: ", it->status().ToString()));
  }
  const lead::ContactHolder* answering = lead::AnsweringHolder(holders);
  if (answering == nullptr) {
    return absl::NotFoundError(req.email().empty() ? "no lead with this phone"
                                                   : "no lead with this email");
  }
  return std::move(views[answering - holders.data()]);
}

absl::StatusOr<v1::LeadTimeline> LeadQueries::Timeline(const std::string& lead_id) const {
  LEADFLOW_ASSIGN_OR_RETURN(v1::LeadView view, Get(lead_id));
  v1::LeadTimeline out;
  out.set_lead_id(lead_id);
  auto add_events = [&](const std::string& id) -> absl::Status {
    const std::string prefix = absl::StrCat(id, "/");
    auto it = store_->NewIterator(LeadProjection::kTimeline);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      v1::Event* e = out.add_events();
      if (!e->ParseFromString(it->value().ToString())) {
        return absl::DataLossError(absl::StrCat("timeline of ", id, " has a corrupt event"));
      }
      if (vault_ != nullptr) LEADFLOW_RETURN_IF_ERROR(vault_->Open(e));
      // Never hand out a sealed blob (no use to a client, and not to be kept by one).
      e->clear_sealed_personal();
    }
    return absl::OkStatus();
  };
  LEADFLOW_RETURN_IF_ERROR(add_events(lead_id));
  const std::string merged = absl::StrCat(kMergedPrefix, lead_id, "/");
  auto it = store_->NewIterator(LeadProjection::kIndex);
  for (it->Seek(merged); it->Valid() && it->key().starts_with(merged); it->Next()) {
    out.add_merged_lead_ids(LeadIdAfter(Key(it->key()), merged.size()));
  }
  for (const std::string& dup : out.merged_lead_ids()) LEADFLOW_RETURN_IF_ERROR(add_events(dup));
  return out;
}

namespace {

// True if the row has every filter value `wanted` sets (the values its filter indexes hold).
bool Matches(const FilterValues& wanted, const v1::LeadView& v) {
  const FilterValues has = RowFilterValues(v);
  for (int k = 0; k < kFilterKinds; ++k) {
    if (!wanted[k].empty() && has[k] != wanted[k]) return false;
  }
  return true;
}

bool InCapturedRange(const v1::ListLeadsRequest& q, const v1::LeadView& v) {
  const int64_t captured = Micros(v.milestones().captured());
  if (q.has_captured_from() && captured < Micros(q.captured_from())) return false;
  if (q.has_captured_to() && captured >= Micros(q.captured_to())) return false;
  return true;
}

template <typename IsValid>
absl::Status CheckEnum(absl::string_view field, int value, IsValid valid) {
  if (!valid(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": unknown value ", value));
  }
  return absl::OkStatus();
}

// The filter enums of a ListLeads or CountLeads request.
template <typename Request>
absl::Status CheckFilters(const Request& q) {
  LEADFLOW_RETURN_IF_ERROR(CheckEnum("status", q.status(), v1::LeadStatus_IsValid));
  LEADFLOW_RETURN_IF_ERROR(CheckEnum("stage", q.stage(), v1::SalesStage_IsValid));
  LEADFLOW_RETURN_IF_ERROR(
      CheckEnum("source_channel", q.source_channel(), v1::SourceChannel_IsValid));
  return CheckEnum("temperature", q.temperature(), v1::Temperature_IsValid);
}

}  // namespace

namespace {

absl::StatusOr<int64_t> SumCounter(const ViewStore* store, const std::string& key) {
  int64_t n = 0;
  auto it = store->NewIterator(LeadProjection::kIndex);
  for (it->Seek(key); it->Valid() && it->key().starts_with(key); it->Next()) {
    if (it->key().size() != key.size() + 4 || it->value().size() != 8) {
      return absl::DataLossError("lead view: corrupt counter");
    }
    n += DecodeBigEndian64(it->value().data());
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("lead view: ", it->status().ToString()));
  }
  return n;
}

struct Selective {
  int kind;       // the filter
  int64_t leads;  // how many leads have its value
};

// The set filter with the fewest leads (by its counters), if any filter is set.
absl::StatusOr<std::optional<Selective>> MostSelective(const ViewStore* store,
                                                       const FilterValues& wanted) {
  std::optional<Selective> best;
  for (int k = 0; k < kFilterKinds; ++k) {
    if (wanted[k].empty()) continue;
    LEADFLOW_ASSIGN_OR_RETURN(int64_t n, SumCounter(store, CounterKey({k}, wanted)));
    if (!best.has_value() || n < best->leads) best = Selective{.kind = k, .leads = n};
  }
  return best;
}

}  // namespace

absl::StatusOr<v1::CountLeadsResponse> LeadQueries::Count(const v1::CountLeadsRequest& q) const {
  LEADFLOW_RETURN_IF_ERROR(CheckFilters(q));
  const FilterValues wanted = RequestFilterValues(q);
  std::vector<int> set;
  for (int k = 0; k < kFilterKinds; ++k) {
    if (!wanted[k].empty()) set.push_back(k);
  }
  v1::CountLeadsResponse out;
  if (set.size() <= 2) {
    const std::string key = set.empty()       ? CounterKey({}, wanted)
                            : set.size() == 1 ? CounterKey({set[0]}, wanted)
                                              : CounterKey({set[0], set[1]}, wanted);
    LEADFLOW_ASSIGN_OR_RETURN(int64_t n, SumCounter(store_, key));
    out.set_count(n);
    return out;
  }
  // Three or more filters: read the most selective one's index and check the rest on each row.
  LEADFLOW_ASSIGN_OR_RETURN(std::optional<Selective> chosen, MostSelective(store_, wanted));
  const std::string prefix = FilterIndexPrefix(chosen->kind, wanted[chosen->kind]);
  if (chosen->leads > max_scan_) {
    // Bounded like a listing: a query must not read without limit on a server thread.
    return absl::FailedPreconditionError(absl::StrCat(
        "count: with three or more filters the most selective one is checked row by row, and it "
        "matches ",
        chosen->leads, " leads (at most ", max_scan_,
        "); count with at most two filters (answered from counters) instead"));
  }
  int64_t n = 0;
  auto it = store_->NewIterator(LeadProjection::kIndex);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const absl::string_view key = Key(it->key());
    if (key.size() <= prefix.size() + 8) return absl::DataLossError("lead view: corrupt index");
    LEADFLOW_ASSIGN_OR_RETURN(v1::LeadView view, Get(LeadIdAfter(key, prefix.size() + 8)));
    if (Matches(wanted, view)) ++n;
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("lead view: ", it->status().ToString()));
  }
  out.set_count(n);
  return out;
}

absl::StatusOr<v1::ListLeadsResponse> LeadQueries::List(const v1::ListLeadsRequest& q) const {
  LEADFLOW_RETURN_IF_ERROR(CheckFilters(q));
  LEADFLOW_RETURN_IF_ERROR(CheckEnum("sort", q.sort(), v1::ListLeadsRequest::Sort_IsValid));
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(q.page_size(), 50));
  if (q.has_captured_from() && !common::IsValidTimestamp(q.captured_from())) {
    return absl::InvalidArgumentError("captured_from: invalid timestamp");
  }
  if (q.has_captured_to() && !common::IsValidTimestamp(q.captured_to())) {
    return absl::InvalidArgumentError("captured_to: invalid timestamp");
  }
  if (q.has_captured_from() && q.has_captured_to() &&
      Micros(q.captured_to()) <= Micros(q.captured_from())) {
    return absl::InvalidArgumentError("captured_to: must be after captured_from");
  }
  const bool by_activity = q.sort() == v1::ListLeadsRequest::SORT_LAST_ACTIVITY;
  // The token is the last index key returned, tagged with the listing's sort and direction.
  const std::string tag = absl::StrCat(by_activity ? "a" : "c", q.descending() ? "d" : "u");
  std::string resume;
  if (!q.page_token().empty()) {
    if (!absl::WebSafeBase64Unescape(q.page_token(), &resume) || !resume.starts_with(tag)) {
      return absl::InvalidArgumentError(
          "page_token: not a token of this listing (same sort and direction required)");
    }
    resume.erase(0, tag.size());
  }
  // Which index to read: by capture time with a filter, the filter's own index (each page of a
  // listing keeps the one its first page chose: the token names it); otherwise the capture or
  // activity index of every lead, the other filters checked on each row.
  std::string prefix = by_activity ? kActivityPrefix : kCapturedPrefix;
  const FilterValues wanted = RequestFilterValues(q);
  if (!by_activity) {
    if (!resume.empty()) {
      for (int k = 0; k < kFilterKinds; ++k) {
        if (wanted[k].empty()) continue;
        std::string p = FilterIndexPrefix(k, wanted[k]);
        if (resume.starts_with(p)) prefix = std::move(p);
      }
    } else {
      LEADFLOW_ASSIGN_OR_RETURN(std::optional<Selective> chosen, MostSelective(store_, wanted));
      if (chosen.has_value()) prefix = FilterIndexPrefix(chosen->kind, wanted[chosen->kind]);
    }
  }
  if (!resume.empty() && (!resume.starts_with(prefix) || resume.size() < prefix.size() + 8)) {
    return absl::InvalidArgumentError(
        "page_token: not a token of this listing (same sort, direction and filters required)");
  }
  // Key range: an index by capture time can be bounded by the captured range directly.
  std::string lower = prefix, upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);
  if (!by_activity && q.has_captured_from()) {
    lower = absl::StrCat(prefix, EncodeBigEndian64(Micros(q.captured_from())));
  }
  if (!by_activity && q.has_captured_to()) {
    upper = absl::StrCat(prefix, EncodeBigEndian64(Micros(q.captured_to())));
  }
  v1::ListLeadsResponse out;
  auto it = store_->NewIterator(LeadProjection::kIndex);
  if (!q.descending()) {
    if (resume.empty()) {
      it->Seek(lower);
    } else {
      it->Seek(resume);
      if (it->Valid() && Key(it->key()) == resume) it->Next();
    }
  } else {
    if (resume.empty()) {
      it->SeekForPrev(upper);
      if (it->Valid() && Key(it->key()) >= upper) it->Prev();
    } else {
      it->SeekForPrev(resume);
      if (it->Valid() && Key(it->key()) == resume) it->Prev();
    }
  }
  // The index is read in chunks of at most the rows still missing, whose rows are fetched in one
  // MultiGet; the token is the last index key examined when the page is full.
  int scanned = 0;
  bool more = true;
  std::vector<std::string> keys, ids;
  while (more && out.leads_size() < page_size) {
    keys.clear();
    ids.clear();
    const size_t want = std::min(page_size - out.leads_size(), max_scan_ - scanned);
    while (keys.size() < want && it->Valid()) {
      const absl::string_view key = Key(it->key());
      if (key < lower || key >= upper || key.size() <= prefix.size() + 8) break;
      keys.emplace_back(key);
      ids.push_back(LeadIdAfter(key, prefix.size() + 8));
      if (q.descending()) {
        it->Prev();
      } else {
        it->Next();
      }
    }
    if (!it->status().ok()) {
      return absl::UnavailableError(absl::StrCat("lead view: ", it->status().ToString()));
    }
    more = keys.size() == want;
    const std::vector<absl::StatusOr<std::string>> rows =
        store_->MultiGet(LeadProjection::kLeads, ids);
    for (size_t i = 0; i < ids.size(); ++i) {
      LEADFLOW_ASSIGN_OR_RETURN(v1::LeadView view, ParseRow(ids[i], rows[i]));
      if (Matches(wanted, view) && InCapturedRange(q, view)) *out.add_leads() = std::move(view);
    }
    scanned += static_cast<int>(keys.size());
    if (!keys.empty() && (out.leads_size() == page_size || scanned == max_scan_)) {
      out.set_next_page_token(absl::WebSafeBase64Escape(absl::StrCat(tag, keys.back())));
      break;
    }
  }
  return out;
}

absl::StatusOr<v1::ListOverdueFollowUpsResponse> LeadQueries::Overdue(
    const v1::ListOverdueFollowUpsRequest& q, absl::Time now) const {
  if (q.owner().empty()) return absl::InvalidArgumentError("owner: required");
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(q.page_size(), 100));
  const absl::Time as_of = q.has_as_of() ? FromProto(q.as_of()) : now;
  const std::string prefix = absl::StrCat(kFollowUpPrefix, KeyPart(q.owner()));
  v1::ListOverdueFollowUpsResponse out;
  auto it = store_->NewIterator(LeadProjection::kIndex);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const absl::string_view rest = Key(it->key()).substr(prefix.size());
    if (rest.size() < 8) return absl::DataLossError("lead view: corrupt follow-up index key");
    const int64_t due = DecodeBigEndian64(rest.data());
    if (due >= absl::ToUnixMicros(as_of) || out.follow_ups_size() == page_size) break;
    absl::string_view tail = rest.substr(8);
    std::string lead_id, fu_id;
    if (!ReadKeyPart(&tail, &lead_id) || !ReadKeyPart(&tail, &fu_id) || !tail.empty()) {
      return absl::DataLossError("lead view: corrupt follow-up index key");
    }
    LEADFLOW_ASSIGN_OR_RETURN(v1::LeadView view, Get(lead_id));
    for (const v1::FollowUp& f : view.open_follow_ups()) {
      if (f.follow_up_id() != fu_id) continue;
      v1::OverdueFollowUp* o = out.add_follow_ups();
      o->set_lead_id(lead_id);
      o->set_lead_name(view.person().full_name());
      *o->mutable_follow_up() = f;
    }
  }
  return out;
}

}  // namespace leadflow::projections

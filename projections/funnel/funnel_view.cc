#include "projections/funnel/funnel_view.h"

#include "services/common/money.h"

#include <algorithm>
#include <map>
#include <thread>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "projections/runner/rows.h"
#include "services/common/enum_names.h"
#include "services/common/text.h"
#include "services/common/money.h"
#include "services/common/status_util.h"
#include "services/lead/reducer.h"
#include "services/common/time_util.h"

namespace leadflow::projections {
namespace {

constexpr int64_t kDayMs = 86'400'000;

int64_t Ms(const google::protobuf::Timestamp& ts) {
  return absl::ToUnixMillis(common::FromProto(ts));
}

// ---- Splits ---------------------------------------------------------------------------------

enum class Split { kNone, kSource, kOrigin, kCampaign, kTemperature, kOwner };

absl::StatusOr<Split> ParseSplit(const std::string& s) {
  if (s.empty()) return Split::kNone;
  if (s == "source_channel") return Split::kSource;
  if (s == "origin_type") return Split::kOrigin;
  if (s == "campaign") return Split::kCampaign;
  if (s == "temperature") return Split::kTemperature;
  if (s == "owner") return Split::kOwner;
  return absl::InvalidArgumentError(absl::StrCat(
      "split: unknown split ", common::QuotePrefix(s),
      "; one of: source_channel, origin_type, campaign, temperature, owner (or empty)"));
}

// The split key of a lead for the splits fixed at capture (and the current owner).
uint32_t SplitKey(Split split, const FunnelRec& r) {
  switch (split) {
    case Split::kSource:
      return r.source;
    case Split::kOrigin:
      return r.origin;
    case Split::kCampaign:
      return r.campaign;
    case Split::kTemperature:
      return r.temperature;
    case Split::kOwner:
      return r.owner;
    case Split::kNone:
      break;
  }
  return 0;
}

// ---- Mergeable partial results ----------------------------------------------------------------

constexpr int kTimings = 6;  // five consecutive steps, then captured->converted

struct GroupAcc {
  std::array<int64_t, kMilestones> reached{};
  std::array<std::vector<int64_t>, kTimings> timings;
  std::vector<int64_t> touches;
  int64_t contacted_own = 0, responded = 0;
  // currency -> (total, leads); a handful of currencies, so a flat list. Totals in 128 bits:
  // they never wrap, and one that does not fit the report's int64 is OUT_OF_RANGE.
  std::vector<std::pair<uint32_t, std::pair<common::Total, int64_t>>> cost;
  std::pair<common::Total, int64_t>& Cost(uint32_t currency) {
    for (auto& [c, v] : cost) {
      if (c == currency) return v;
    }
    return cost.emplace_back(currency, std::pair<common::Total, int64_t>{{}, 0}).second;
  }
  int64_t ever_rejected = 0, ever_postponed = 0, ever_disqualified = 0;
  int64_t reactivated = 0, reactivated_converted = 0;
  int64_t assigned = 0, meetings_demos = 0;

  void Merge(GroupAcc& o) {
    for (int m = 0; m < kMilestones; ++m) reached[m] += o.reached[m];
    for (int t = 0; t < kTimings; ++t) {
      timings[t].insert(timings[t].end(), o.timings[t].begin(), o.timings[t].end());
    }
    touches.insert(touches.end(), o.touches.begin(), o.touches.end());
    contacted_own += o.contacted_own;
    responded += o.responded;
    for (const auto& [c, v] : o.cost) {
      Cost(c).first.Add(v.first);
      Cost(c).second += v.second;
    }
    ever_rejected += o.ever_rejected;
    ever_postponed += o.ever_postponed;
    ever_disqualified += o.ever_disqualified;
    reactivated += o.reactivated;
    reactivated_converted += o.reactivated_converted;
    assigned += o.assigned;
    meetings_demos += o.meetings_demos;
  }
};

// Groups by split key. Keys are small (enum numbers, interned campaign and owner ids), so a
// vector indexed by key replaces a hash lookup per milestone of every lead.
template <typename T>
class DenseGroups {
 public:
  T& operator[](uint32_t key) {
    if (key >= items_.size()) items_.resize(key + 1);
    if (!items_[key]) items_[key] = std::make_unique<T>();
    return *items_[key];
  }
  template <typename F>
  void ForEach(F f) {
    for (uint32_t k = 0; k < items_.size(); ++k) {
      if (items_[k]) f(k, *items_[k]);
    }
  }

 private:
  std::vector<std::unique_ptr<T>> items_;
};

struct CohortAcc {
  GroupAcc total;
  DenseGroups<GroupAcc> groups;
  void Merge(CohortAcc& o) {
    total.Merge(o.total);
    o.groups.ForEach([&](uint32_t k, GroupAcc& g) { groups[k].Merge(g); });
  }
};

// Which milestones of a lead count in a cohort: reached, and within the limit after capture.
using Counted = std::array<bool, kMilestones>;

Counted CountedMilestones(const FunnelRec& r, int64_t limit_ms) {
  Counted counted;
  for (int m = 0; m < kMilestones; ++m) {
    counted[m] = m == kCaptured || (r.reached[m] != FunnelRec::kNever &&
                                    r.reached[m] - r.reached[kCaptured] <= limit_ms);
  }
  return counted;
}

void AddTiming(GroupAcc& g, const FunnelRec& r, int m) {
  g.timings[m - 1].push_back(r.reached[m] - r.reached[m - 1]);
  if (m == kConverted) {
    g.timings[5].push_back(r.reached[kConverted] - r.reached[kCaptured]);
    g.touches.push_back(r.touches_before_conversion);
  }
}

// Adds a lead to a group with the group's own semantics (all of its figures).
void AddLead(GroupAcc& g, const FunnelRec& r, const Counted& counted) {
  for (int m = 0; m < kMilestones; ++m) {
    if (!counted[m]) continue;
    ++g.reached[m];
    if (m > 0) AddTiming(g, r, m);
  }
  if (r.own_contacted) {
    ++g.contacted_own;
    if (r.responded) ++g.responded;
  }
  if (r.cost_currency != 0) {
    auto& c = g.Cost(r.cost_currency);
    c.first.Add(r.cost_micros);
    ++c.second;
  }
  const bool rejected = r.exit_kinds & (1u << v1::EXIT_KIND_REJECTED);
  const bool postponed = r.exit_kinds & (1u << v1::EXIT_KIND_POSTPONED);
  const bool disqualified = r.exit_kinds & (1u << v1::EXIT_KIND_DISQUALIFIED);
  const bool reactivated = r.exit_kinds & (1u << v1::EXIT_KIND_UNSPECIFIED);
  g.ever_rejected += rejected;
  g.ever_postponed += postponed;
  g.ever_disqualified += disqualified;
  g.reactivated += reactivated;
  // Conversion is terminal, so a reactivated lead that converted converted after it.
  g.reactivated_converted += reactivated && r.reached[kConverted] != FunnelRec::kNever;
  g.assigned += r.assigned_any;
  g.meetings_demos += r.meetings_demos_total;
}

// Owner split: each figure goes to the owner credited with it.
void AddLeadByOwner(CohortAcc& acc, const FunnelRec& r, const Counted& counted) {
  for (uint32_t o : r.assigned) ++acc.groups[o].assigned;
  for (int m = 1; m < kMilestones; ++m) {
    if (!counted[m]) continue;
    GroupAcc& g = acc.groups[r.credit[r.ReachedBy(m)]];
    ++g.reached[m];
    AddTiming(g, r, m);
  }
  if (r.own_contacted) {
    GroupAcc& g = acc.groups[r.credit[kContacted]];
    ++g.contacted_own;
    if (r.responded) ++g.responded;
  }
  for (const auto& [owner, n] : r.meetings_demos) acc.groups[owner].meetings_demos += n;
}

double Ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; }

absl::StatusOr<v1::FunnelGroup> Finish(GroupAcc& g, std::string split_value, bool owner_group,
                                       const Interner& currencies) {
  v1::FunnelGroup out;
  out.set_split_value(std::move(split_value));
  out.set_captured(g.reached[kCaptured]);
  out.set_contacted(g.reached[kContacted]);
  out.set_qualified(g.reached[kQualified]);
  out.set_presented(g.reached[kPresented]);
  out.set_proposal(g.reached[kProposal]);
  out.set_converted(g.reached[kConverted]);
  if (!owner_group) {
    for (int m = 1; m < kMilestones; ++m) {
      v1::StepRate* s = out.add_steps();
      s->set_from(kMilestoneNames[m - 1]);
      s->set_to(kMilestoneNames[m]);
      s->set_from_count(g.reached[m - 1]);
      s->set_to_count(g.reached[m]);
      s->set_rate(Ratio(g.reached[m], g.reached[m - 1]));
    }
    out.set_conversion_rate(Ratio(g.reached[kConverted], g.reached[kCaptured]));
  }
  for (int t = 0; t < kTimings; ++t) {
    const std::string name =
        t < 5 ? absl::StrCat(kMilestoneNames[t], "->", kMilestoneNames[t + 1])
              : absl::StrCat(kMilestoneNames[kCaptured], "->", kMilestoneNames[kConverted]);
    LEADFLOW_ASSIGN_OR_RETURN(*out.add_timings(), MakeDistribution(name, "ms", g.timings[t]));
  }
  LEADFLOW_ASSIGN_OR_RETURN(*out.mutable_touches_before_conversion(),
                            MakeDistribution("touches_before_conversion", "touches", g.touches));
  out.set_contacted_own(g.contacted_own);
  out.set_responded(g.responded);
  out.set_response_rate(Ratio(g.responded, g.contacted_own));
  std::vector<std::pair<std::string, std::pair<common::Total, int64_t>>> costs;
  for (const auto& [c, v] : g.cost) costs.emplace_back(currencies.Name(c), v);
  std::sort(costs.begin(), costs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [code, v] : costs) {
    v1::CostFigure* c = out.add_costs();
    c->set_currency_code(code);
    const std::string what = absl::StrCat("acquisition cost in ", code);
    LEADFLOW_ASSIGN_OR_RETURN(const int64_t total, v.first.Get(what));
    c->set_total_micros(total);
    c->set_leads_with_cost(v.second);
    if (g.reached[kCaptured] > 0) c->set_per_lead_micros(total / g.reached[kCaptured]);
    if (g.reached[kConverted] > 0) c->set_per_customer_micros(total / g.reached[kConverted]);
  }
  out.set_ever_rejected(g.ever_rejected);
  out.set_ever_postponed(g.ever_postponed);
  out.set_ever_disqualified(g.ever_disqualified);
  out.set_reactivated(g.reactivated);
  out.set_reactivated_converted(g.reactivated_converted);
  out.set_assigned(g.assigned);
  out.set_meetings_demos(g.meetings_demos);
  out.set_meetings_demos_per_conversion(Ratio(g.meetings_demos, g.reached[kConverted]));
  out.set_owner_conversion_rate(Ratio(g.reached[kConverted], g.assigned));
  return out;
}

std::string SplitName(Split split, uint32_t key, const Interner& owners,
                      const Interner& campaigns) {
  switch (split) {
    case Split::kSource:
      return common::EnumShortName(v1::SourceChannel_descriptor(), static_cast<int>(key));
    case Split::kOrigin:
      return common::EnumShortName(v1::OriginType_descriptor(), static_cast<int>(key));
    case Split::kTemperature:
      return common::EnumShortName(v1::Temperature_descriptor(), static_cast<int>(key));
    case Split::kCampaign:
      return campaigns.Name(key);
    case Split::kOwner:
      return owners.Name(key);
    case Split::kNone:
      break;
  }
  return "";
}

// Groups in split-value order.
template <typename Acc>
std::vector<std::pair<std::string, Acc*>> Sorted(absl::flat_hash_map<uint32_t, Acc>& groups,
                                                 Split split, const Interner& owners,
                                                 const Interner& campaigns) {
  std::vector<std::pair<std::string, Acc*>> out;
  for (auto& [k, g] : groups) out.emplace_back(SplitName(split, k, owners, campaigns), &g);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

template <typename Acc>
std::vector<std::pair<std::string, Acc*>> Sorted(DenseGroups<Acc>& groups, Split split,
                                                 const Interner& owners,
                                                 const Interner& campaigns) {
  std::vector<std::pair<std::string, Acc*>> out;
  groups.ForEach(
      [&](uint32_t k, Acc& g) { out.emplace_back(SplitName(split, k, owners, campaigns), &g); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// ---- Activity ---------------------------------------------------------------------------------

constexpr int kActivityCounts = 10;  // six milestones, three exits, reactivations
using Counts = std::array<int64_t, kActivityCounts>;

int CountIndex(v1::ExitKind kind) {
  switch (kind) {
    case v1::EXIT_KIND_REJECTED:
      return 6;
    case v1::EXIT_KIND_POSTPONED:
      return 7;
    case v1::EXIT_KIND_DISQUALIFIED:
      return 8;
    default:
      return 9;
  }
}

struct ActivityAcc {
  std::vector<Counts> totals;
  std::vector<absl::flat_hash_map<uint32_t, Counts>> groups;
  explicit ActivityAcc(size_t buckets) : totals(buckets, Counts{}), groups(buckets) {}
  void Merge(ActivityAcc& o) {
    for (size_t b = 0; b < totals.size(); ++b) {
      for (int i = 0; i < kActivityCounts; ++i) totals[b][i] += o.totals[b][i];
      for (auto& [k, c] : o.groups[b]) {
        auto [it, inserted] = groups[b].try_emplace(k, Counts{});
        for (int i = 0; i < kActivityCounts; ++i) it->second[i] += c[i];
      }
    }
  }
};

void SetCounts(const Counts& c, v1::ActivityCounts& out) {
  out.set_captured(c[0]);
  out.set_contacted(c[1]);
  out.set_qualified(c[2]);
  out.set_presented(c[3]);
  out.set_proposal(c[4]);
  out.set_converted(c[5]);
  out.set_rejected(c[6]);
  out.set_postponed(c[7]);
  out.set_disqualified(c[8]);
  out.set_reactivated(c[9]);
}

// Bucket boundaries covering [from, to): starts[i] .. starts[i + 1] (ms); the last entry is the
// end of the last bucket.
std::vector<int64_t> BucketBounds(absl::Time from, absl::Time to,
                                  v1::ActivityRequest::Bucket bucket) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  std::vector<int64_t> bounds;
  if (from >= to) return bounds;
  if (bucket == v1::ActivityRequest::BUCKET_MONTH) {
    absl::CivilMonth m = absl::ToCivilMonth(from, utc);
    for (;; ++m) {
      bounds.push_back(absl::ToUnixMillis(absl::FromCivil(m, utc)));
      if (absl::FromCivil(m, utc) >= to) break;
    }
    return bounds;
  }
  absl::CivilDay d = absl::ToCivilDay(from, utc);
  int step = 1;
  if (bucket == v1::ActivityRequest::BUCKET_WEEK) {
    d -= static_cast<int>(absl::GetWeekday(d));  // absl::Weekday::monday == 0
    step = 7;
  }
  for (;; d += step) {
    bounds.push_back(absl::ToUnixMillis(absl::FromCivil(d, utc)));
    if (absl::FromCivil(d, utc) >= to) break;
  }
  return bounds;
}

}  // namespace

// ---- Distributions --------------------------------------------------------------------------

// The k-th smallest (1-based) of `values`, all in [lo, hi]. Exact. Large lists are first counted
// into 65,536 buckets by value; only the bucket holding rank k is then selected in, which is
// much cheaper than nth_element over the whole list.
int64_t NthSmallest(std::vector<int64_t>& values, int64_t lo, int64_t hi, int64_t k) {
  const size_t n = values.size();
  if (n <= 4096) {
    std::nth_element(values.begin(), values.begin() + (k - 1), values.end());
    return values[k - 1];
  }
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  int shift = 0;
  while ((range >> shift) >= 65536) ++shift;
  std::vector<int64_t> counts((range >> shift) + 1, 0);
  for (int64_t v : values)
    ++counts[(static_cast<uint64_t>(v) - static_cast<uint64_t>(lo)) >> shift];
  size_t bucket = 0;
  int64_t before = 0;
  while (before + counts[bucket] < k) before += counts[bucket++];
  std::vector<int64_t> in_bucket;
  in_bucket.reserve(counts[bucket]);
  for (int64_t v : values) {
    if (((static_cast<uint64_t>(v) - static_cast<uint64_t>(lo)) >> shift) == bucket) {
      in_bucket.push_back(v);
    }
  }
  const int64_t rank = k - before;  // 1-based within the bucket
  std::nth_element(in_bucket.begin(), in_bucket.begin() + (rank - 1), in_bucket.end());
  return in_bucket[rank - 1];
}

absl::StatusOr<v1::Distribution> MakeDistribution(std::string name, std::string unit,
                                                  std::vector<int64_t>& values) {
  v1::Distribution d;
  d.set_name(std::move(name));
  d.set_unit(std::move(unit));
  const int64_t n = static_cast<int64_t>(values.size());
  d.set_count(n);
  if (n == 0) return d;
  absl::int128 sum = 0;
  int64_t lo = values[0], hi = values[0];
  for (int64_t v : values) {
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (sum > std::numeric_limits<int64_t>::max() || sum < std::numeric_limits<int64_t>::min()) {
    return absl::OutOfRangeError(absl::StrCat(d.name(), ": the sum of ", n, " values in ", d.unit(),
                                              " does not fit 64 bits; narrow the query"));
  }
  d.set_sum(static_cast<int64_t>(sum));
  d.set_mean(static_cast<double>(sum) / static_cast<double>(n));
  d.set_min(lo);
  d.set_max(hi);
  // Nearest rank: the ceil(p*n/100)-th smallest (1-based).
  const int64_t k90 = (90 * n + 99) / 100;
  const int64_t k50 = (50 * n + 99) / 100;
  d.set_p50(NthSmallest(values, lo, hi, k50));
  d.set_p90(NthSmallest(values, lo, hi, k90));
  return d;
}

// ---- Interner -------------------------------------------------------------------------------

Interner::Interner() {
  ids_[""] = 0;
  names_.push_back("");
}

uint32_t Interner::Id(const std::string& s) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = ids_.try_emplace(s, static_cast<uint32_t>(names_.size()));
  if (inserted) names_.push_back(s);
  return it->second;
}

std::string Interner::Name(uint32_t id) const {
  absl::MutexLock lock(&mu_);
  return id < names_.size() ? names_[id] : "";
}

// ---- Per-lead row -------------------------------------------------------------------------------

void FunnelRec::Derive() {
  // From the last milestone back: reached[m] = min(own[m], reached[m + 1]); ties go to the
  // earlier milestone.
  reached[kMilestones - 1] = own[kMilestones - 1];
  reached_by[kMilestones - 1] = kMilestones - 1;
  for (int m = kMilestones - 2; m >= 0; --m) {
    if (own[m] <= reached[m + 1]) {
      reached[m] = own[m];
      reached_by[m] = static_cast<uint8_t>(m);
    } else {
      reached[m] = reached[m + 1];
      reached_by[m] = reached_by[m + 1];
    }
  }
  exit_kinds = 0;
  for (const auto& x : exits) exit_kinds |= static_cast<uint8_t>(1u << x.kind);
  own_contacted = own[kContacted] != kNever;
  assigned_any = !assigned.empty();
  meetings_demos_total = 0;
  for (const auto& [o, n] : meetings_demos) meetings_demos_total += static_cast<int32_t>(n);
}

absl::Status ApplyToFunnelRow(const v1::Event& e, v1::FunnelLeadRow& row) {
  LEADFLOW_RETURN_IF_ERROR(CheckNextLeadVersion("funnel", e, row.version()));
  // Nothing below fails.
  row.set_version(e.aggregate_version());
  const int64_t t = Ms(e.occurred_at());
  auto add_exit = [&](v1::ExitKind kind) {
    v1::FunnelExitMark* x = row.add_exits();
    x->set_kind(kind);
    x->set_at_ms(t);
    x->set_owner(row.owner());
  };
  // The lead's status after this event: the lifecycle's rule (lead::StatusAfter), not a copy.
  row.set_status(lead::StatusAfter(row.status(), e));
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured: {
      const auto& b = e.lead_captured();
      row.set_lead_id(e.aggregate_id());
      row.set_captured_ms(t);
      row.set_source_channel(b.source_channel());
      row.set_origin_type(b.origin_type());
      row.set_campaign(b.campaign());
      row.set_temperature_at_capture(b.temperature());
      if (!b.acquisition_cost().currency_code().empty()) {
        *row.mutable_acquisition_cost() = b.acquisition_cost();
      }
      break;
    }
    case v1::Event::kLeadAssigned: {
      const std::string& owner = e.lead_assigned().owner();
      row.set_owner(owner);
      if (!owner.empty() && std::find(row.assigned_owners().begin(), row.assigned_owners().end(),
                                      owner) == row.assigned_owners().end()) {
        row.add_assigned_owners(owner);
      }
      break;
    }
    case v1::Event::kInteractionLogged: {
      const auto& b = e.interaction_logged();
      row.add_interaction_ms(t);
      const uint32_t reached = lead::MilestonesReached(e);
      if (lead::Reaches(reached, lead::kContacted)) {
        if (!row.has_contacted_ms() || t < row.contacted_ms()) {
          row.set_contacted_ms(t);
          row.set_contacted_owner(row.owner());
        }
      }
      if (lead::Reaches(reached, lead::kPresented)) {
        if (!row.has_presented_ms() || t < row.presented_ms()) {
          row.set_presented_ms(t);
          row.set_presented_owner(row.owner());
        }
      }
      if (lead::Reaches(reached, lead::kProposal)) {
        if (!row.has_proposal_ms() || t < row.proposal_ms()) {
          row.set_proposal_ms(t);
          row.set_proposal_owner(row.owner());
        }
      }
      if (b.direction() == v1::DIRECTION_INBOUND || b.outcome() == v1::OUTCOME_CONNECTED ||
          b.outcome() == v1::OUTCOME_REPLIED || b.outcome() == v1::OUTCOME_POSITIVE) {
        if (!row.has_last_response_ms() || t > row.last_response_ms()) {
          row.set_last_response_ms(t);
        }
      }
      if (b.kind() == v1::INTERACTION_KIND_MEETING || b.kind() == v1::INTERACTION_KIND_DEMO) {
        v1::FunnelOwnerCount* c = nullptr;
        for (auto& m : *row.mutable_meetings_demos()) {
          if (m.owner() == row.owner()) c = &m;
        }
        if (c == nullptr) {
          c = row.add_meetings_demos();
          c->set_owner(row.owner());
        }
        c->set_count(c->count() + 1);
      }
      break;
    }
    case v1::Event::kLeadQualified: {
      const auto& b = e.lead_qualified();
      if (!row.has_qualified_ms() || t < row.qualified_ms()) {
        row.set_qualified_ms(t);
        row.set_qualified_owner(row.owner());
      }
      row.set_stage(b.stage() == v1::SALES_STAGE_UNSPECIFIED ? v1::SALES_STAGE_QUALIFICATION
                                                             : b.stage());
      if (!b.budget().currency_code().empty()) {
        *row.mutable_budget() = b.budget();
      } else {
        row.clear_budget();
      }
      break;
    }
    case v1::Event::kStageChanged:
      row.set_stage(e.stage_changed().stage());
      break;
    case v1::Event::kLeadRejected:
      add_exit(v1::EXIT_KIND_REJECTED);
      break;
    case v1::Event::kLeadPostponed:
      add_exit(v1::EXIT_KIND_POSTPONED);
      break;
    case v1::Event::kLeadDisqualified:
      add_exit(v1::EXIT_KIND_DISQUALIFIED);
      break;
    case v1::Event::kLeadReactivated:
      row.set_stage(e.lead_reactivated().restored_stage());
      add_exit(v1::EXIT_KIND_UNSPECIFIED);
      break;
    case v1::Event::kLeadConverted:
      row.set_converted_ms(t);
      row.set_converted_owner(row.owner());
      break;
    case v1::Event::kLeadMerged:
      row.set_merged(true);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

// ---- Projection -------------------------------------------------------------------------------

struct FunnelProjection::Shard {
  mutable absl::Mutex mu;
  std::vector<FunnelRec> recs ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, uint32_t> slots ABSL_GUARDED_BY(mu);
};

struct FunnelProjection::Batch {
  absl::flat_hash_map<std::string, v1::FunnelLeadRow> rows;  // rows the batch touched
  std::vector<std::pair<std::string, FunnelRec>> prepared;   // for Committed
};

FunnelProjection::FunnelProjection(FunnelOptions options) : options_(options) {
  for (auto& s : shards_) s = std::make_unique<Shard>();
}

FunnelProjection::~FunnelProjection() = default;

FunnelRec FunnelProjection::ToRec(const v1::FunnelLeadRow& row) {
  FunnelRec r;
  r.own = {row.captured_ms(),
           row.has_contacted_ms() ? row.contacted_ms() : FunnelRec::kNever,
           row.has_qualified_ms() ? row.qualified_ms() : FunnelRec::kNever,
           row.has_presented_ms() ? row.presented_ms() : FunnelRec::kNever,
           row.has_proposal_ms() ? row.proposal_ms() : FunnelRec::kNever,
           row.has_converted_ms() ? row.converted_ms() : FunnelRec::kNever};
  r.credit = {0,
              owners_.Id(row.contacted_owner()),
              owners_.Id(row.qualified_owner()),
              owners_.Id(row.presented_owner()),
              owners_.Id(row.proposal_owner()),
              owners_.Id(row.converted_owner())};
  r.campaign = campaigns_.Id(row.campaign());
  r.owner = owners_.Id(row.owner());
  r.source = static_cast<uint8_t>(row.source_channel());
  r.origin = static_cast<uint8_t>(row.origin_type());
  r.temperature = static_cast<uint8_t>(row.temperature_at_capture());
  r.status = row.status();
  r.stage = row.stage();
  r.merged = row.merged();
  r.responded = row.has_contacted_ms() && row.has_last_response_ms() &&
                row.last_response_ms() >= row.contacted_ms();
  if (row.has_converted_ms()) {
    for (int64_t i : row.interaction_ms()) r.touches_before_conversion += i <= row.converted_ms();
  }
  if (row.has_acquisition_cost()) {
    r.cost_currency = currencies_.Id(row.acquisition_cost().currency_code());
    r.cost_micros = row.acquisition_cost().amount_micros();
  }
  if (row.has_budget()) {
    r.budget_currency = currencies_.Id(row.budget().currency_code());
    r.budget_micros = row.budget().amount_micros();
  }
  for (const auto& x : row.exits()) {
    r.exits.push_back({x.at_ms(), owners_.Id(x.owner()), x.kind()});
  }
  for (const auto& o : row.assigned_owners()) r.assigned.push_back(owners_.Id(o));
  for (const auto& m : row.meetings_demos()) {
    r.meetings_demos.emplace_back(owners_.Id(m.owner()), m.count());
  }
  r.Derive();
  return r;
}

void FunnelProjection::Upsert(const std::string& lead_id, FunnelRec rec) {
  Shard& s = *shards_[absl::Hash<std::string>{}(lead_id) % kShards];
  absl::MutexLock lock(&s.mu);
  auto [it, inserted] = s.slots.try_emplace(lead_id, static_cast<uint32_t>(s.recs.size()));
  if (inserted) {
    s.recs.push_back(std::move(rec));
  } else {
    s.recs[it->second] = std::move(rec);
  }
}

size_t FunnelProjection::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    absl::ReaderMutexLock lock(&s->mu);
    n += s->recs.size();
  }
  return n;
}

absl::Status FunnelProjection::Apply(const v1::Event& e, const log::Record&, ViewTxn& txn) {
  if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(v1::FunnelLeadRow * row, BatchRow(txn, txn.Scratch<Batch>().rows,
                                                              kLeads, e.aggregate_id(), "funnel"));
  return ApplyToFunnelRow(e, *row);
}

absl::Status FunnelProjection::FinishBatch(ViewTxn& txn) {
  Batch& batch = txn.Scratch<Batch>();
  for (auto& [id, row] : batch.rows) {
    if (row.version() == 0) continue;  // loaded for an event that then failed
    txn.Put(kLeads, id, row.SerializeAsString());
    batch.prepared.emplace_back(id, ToRec(row));
  }
  batch.rows.clear();
  return absl::OkStatus();
}

void FunnelProjection::Committed(ViewTxn& txn) {
  Batch& batch = txn.Scratch<Batch>();
  for (auto& [id, rec] : batch.prepared) Upsert(id, std::move(rec));
  batch.prepared.clear();
}

absl::Status FunnelProjection::Load(const ViewStore& store) {
  auto it = store.NewIterator(kLeads);
  v1::FunnelLeadRow row;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!row.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("funnel row of ", it->key().ToString(), " is corrupt"));
    }
    Upsert(row.lead_id(), ToRec(row));
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("funnel: loading rows: ", it->status().ToString()));
  }
  return absl::OkStatus();
}

void FunnelProjection::ForEachShard(
    const std::function<void(int, const std::vector<FunnelRec>&)>& scan) const {
  auto work = [&](int worker) {
    for (int s = worker; s < kShards; s += 2) {
      absl::ReaderMutexLock lock(&shards_[s]->mu);
      scan(worker, shards_[s]->recs);
    }
  };
  std::thread other(work, 1);
  work(0);
  other.join();
}

// ---- Queries ----------------------------------------------------------------------------------

absl::StatusOr<v1::CohortFunnelReport> FunnelProjection::Cohort(
    const v1::CohortFunnelRequest& req) const {
  LEADFLOW_ASSIGN_OR_RETURN(
      const TimeRange range,
      QueryRange("captured_from", req.has_captured_from() ? &req.captured_from() : nullptr,
                 "captured_to", req.has_captured_to() ? &req.captured_to() : nullptr));
  LEADFLOW_ASSIGN_OR_RETURN(const Split split, ParseSplit(req.split()));
  if (req.has_within_days() && (req.within_days() < 1 || req.within_days() > kMaxRangeDays)) {
    return absl::InvalidArgumentError(absl::StrCat("within_days: must be 1 to ", kMaxRangeDays,
                                                   " (got ", req.within_days(), ")"));
  }
  const int64_t from = absl::ToUnixMillis(range.from), to = absl::ToUnixMillis(range.to);
  const int64_t limit = req.has_within_days() ? req.within_days() * kDayMs : FunnelRec::kNever;
  std::array<CohortAcc, 2> acc;
  ForEachShard([&](int worker, const std::vector<FunnelRec>& recs) {
    CohortAcc& a = acc[worker];
    for (const FunnelRec& r : recs) {
      if (r.merged || r.reached[kCaptured] < from || r.reached[kCaptured] >= to) continue;
      const Counted f = CountedMilestones(r, limit);
      if (split == Split::kNone) {
        AddLead(a.total, r, f);
      } else if (split == Split::kOwner) {
        AddLead(a.total, r, f);
        AddLeadByOwner(a, r, f);
      } else {
        // A split fixed at capture partitions the cohort: the total is the merge of the groups.
        AddLead(a.groups[SplitKey(split, r)], r, f);
      }
    }
  });
  acc[0].Merge(acc[1]);
  if (split != Split::kNone && split != Split::kOwner) {
    acc[0].groups.ForEach([&](uint32_t, GroupAcc& g) { acc[0].total.Merge(g); });
  }
  v1::CohortFunnelReport out;
  *out.mutable_captured_from() = common::ToProto(range.from);
  *out.mutable_captured_to() = common::ToProto(range.to);
  out.set_split(req.split());
  out.set_within_days(req.within_days());
  LEADFLOW_ASSIGN_OR_RETURN(*out.mutable_total(), Finish(acc[0].total, "", false, currencies_));
  for (auto& [name, g] : Sorted(acc[0].groups, split, owners_, campaigns_)) {
    LEADFLOW_ASSIGN_OR_RETURN(*out.add_groups(),
                              Finish(*g, name, split == Split::kOwner, currencies_));
  }
  return out;
}

absl::StatusOr<v1::ActivityReport> FunnelProjection::Activity(
    const v1::ActivityRequest& req) const {
  LEADFLOW_ASSIGN_OR_RETURN(const TimeRange range,
                            QueryRange("from", req.has_from() ? &req.from() : nullptr, "to",
                                       req.has_to() ? &req.to() : nullptr));
  LEADFLOW_ASSIGN_OR_RETURN(const Split split, ParseSplit(req.split()));
  if (!v1::ActivityRequest::Bucket_IsValid(req.bucket())) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket: unknown bucket ", req.bucket(), "; one of: day, week, month"));
  }
  const int64_t from = absl::ToUnixMillis(range.from), to = absl::ToUnixMillis(range.to);
  const std::vector<int64_t> bounds = BucketBounds(range.from, range.to, req.bucket());
  const size_t buckets = bounds.empty() ? 0 : bounds.size() - 1;
  std::array<ActivityAcc, 2> acc = {ActivityAcc(buckets), ActivityAcc(buckets)};
  ForEachShard([&](int worker, const std::vector<FunnelRec>& recs) {
    ActivityAcc& a = acc[worker];
    auto count = [&](int64_t t, int index, bool grouped, uint32_t key) {
      if (t < from || t >= to) return;
      const size_t b = std::upper_bound(bounds.begin(), bounds.end(), t) - bounds.begin() - 1;
      ++a.totals[b][index];
      if (grouped) {
        auto [it, inserted] = a.groups[b].try_emplace(key, Counts{});
        ++it->second[index];
      }
    };
    for (const FunnelRec& r : recs) {
      if (r.merged || buckets == 0) continue;
      const bool fixed = split != Split::kNone && split != Split::kOwner;
      const uint32_t key = SplitKey(split, r);
      count(r.reached[kCaptured], kCaptured, fixed, key);
      for (int m = 1; m < kMilestones; ++m) {
        const int64_t t = r.Reached(m);
        if (t == FunnelRec::kNever) continue;
        count(t, m, split != Split::kNone, split == Split::kOwner ? r.credit[r.ReachedBy(m)] : key);
      }
      for (const auto& x : r.exits) {
        count(x.at_ms, CountIndex(x.kind), split != Split::kNone,
              split == Split::kOwner ? x.owner : key);
      }
    }
  });
  acc[0].Merge(acc[1]);
  v1::ActivityReport out;
  Counts total{};
  for (size_t b = 0; b < buckets; ++b) {
    v1::ActivityBucket* bucket = out.add_buckets();
    *bucket->mutable_start() = common::ToProto(absl::FromUnixMillis(bounds[b]));
    *bucket->mutable_end() = common::ToProto(absl::FromUnixMillis(bounds[b + 1]));
    SetCounts(acc[0].totals[b], *bucket->mutable_total());
    for (int i = 0; i < kActivityCounts; ++i) total[i] += acc[0].totals[b][i];
    for (auto& [name, c] : Sorted(acc[0].groups[b], split, owners_, campaigns_)) {
      v1::ActivityCounts* g = bucket->add_groups();
      g->set_split_value(name);
      SetCounts(*c, *g);
    }
  }
  SetCounts(total, *out.mutable_total());
  return out;
}

absl::StatusOr<v1::PipelineReport> FunnelProjection::Pipeline(
    const v1::PipelineRequest& req) const {
  LEADFLOW_ASSIGN_OR_RETURN(const Split split, ParseSplit(req.split()));
  constexpr int kStages = 6;  // SalesStage numbers 0..5
  struct StageAcc {
    int64_t leads = 0, without_budget = 0;
    std::map<uint32_t, common::Total> budget;  // currency -> micros, in 128 bits
  };
  using GroupAcc = std::array<StageAcc, kStages>;
  struct Acc {
    GroupAcc total;
    absl::flat_hash_map<uint32_t, GroupAcc> groups;
  };
  std::array<Acc, 2> acc;
  auto add = [](GroupAcc& g, const FunnelRec& r) {
    StageAcc& s = g[std::clamp<int>(r.stage, 1, kStages - 1)];  // no stage = QUALIFICATION
    ++s.leads;
    if (r.budget_currency == 0) {
      ++s.without_budget;
    } else {
      s.budget[r.budget_currency].Add(r.budget_micros);
    }
  };
  ForEachShard([&](int worker, const std::vector<FunnelRec>& recs) {
    for (const FunnelRec& r : recs) {
      if (r.merged || r.status != v1::LEAD_STATUS_QUALIFIED) continue;
      add(acc[worker].total, r);
      if (split != Split::kNone) add(acc[worker].groups[SplitKey(split, r)], r);
    }
  });
  auto merge = [](GroupAcc& into, const GroupAcc& from) {
    for (int s = 0; s < kStages; ++s) {
      into[s].leads += from[s].leads;
      into[s].without_budget += from[s].without_budget;
      for (const auto& [c, v] : from[s].budget) into[s].budget[c].Add(v);
    }
  };
  merge(acc[0].total, acc[1].total);
  for (auto& [k, g] : acc[1].groups) merge(acc[0].groups[k], g);
  auto finish = [&](const GroupAcc& g, std::string name) -> absl::StatusOr<v1::PipelineGroup> {
    v1::PipelineGroup out;
    out.set_split_value(std::move(name));
    std::map<std::string, std::pair<common::Total, common::Total>> totals;
    for (int s = 1; s < kStages; ++s) {
      v1::PipelineStage* stage = out.add_stages();
      stage->set_stage(static_cast<v1::SalesStage>(s));
      const int pct = options_.stage_probability_percent[s];
      stage->set_probability_percent(pct);
      stage->set_leads(g[s].leads);
      stage->set_leads_without_budget(g[s].without_budget);
      out.set_leads(out.leads() + g[s].leads);
      std::vector<std::pair<std::string, common::Total>> money;
      for (const auto& [c, v] : g[s].budget) money.emplace_back(currencies_.Name(c), v);
      std::sort(money.begin(), money.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [code, sum] : money) {
        const std::string what = absl::StrCat("pipeline budget in ", code);
        LEADFLOW_ASSIGN_OR_RETURN(const int64_t budget, sum.Get(what));
        LEADFLOW_ASSIGN_OR_RETURN(const int64_t weighted, sum.Scaled(pct, 100, what));
        v1::PipelineMoney* m = stage->add_money();
        m->set_currency_code(code);
        m->set_budget_micros(budget);
        m->set_weighted_micros(weighted);
        totals[code].first.Add(budget);
        totals[code].second.Add(weighted);
      }
    }
    for (const auto& [code, v] : totals) {
      const std::string what = absl::StrCat("pipeline budget in ", code);
      v1::PipelineMoney* m = out.add_money();
      m->set_currency_code(code);
      LEADFLOW_ASSIGN_OR_RETURN(const int64_t budget, v.first.Get(what));
      LEADFLOW_ASSIGN_OR_RETURN(const int64_t weighted, v.second.Get(what));
      m->set_budget_micros(budget);
      m->set_weighted_micros(weighted);
    }
    return out;
  };
  v1::PipelineReport out;
  LEADFLOW_ASSIGN_OR_RETURN(*out.mutable_total(), finish(acc[0].total, ""));
  for (auto& [name, g] : Sorted(acc[0].groups, split, owners_, campaigns_)) {
    LEADFLOW_ASSIGN_OR_RETURN(*out.add_groups(), finish(*g, name));
  }
  return out;
}

}  // namespace leadflow::projections

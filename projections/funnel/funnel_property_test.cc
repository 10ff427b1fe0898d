// Property: for random sales histories (random commands through the real reducer; refused ones
// dropped), every funnel figure equals a brute-force recomputation from the raw events. The
// brute force below shares no code with the view: it scans each lead's events, sorts whole
// lists for percentiles and rebuilds every reply message from scratch.
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "projections/funnel/funnel_view.h"
#include "services/common/enum_names.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "tests/support/sales_script.h"

namespace leadflow::projections {
namespace {

constexpr int64_t kNone = INT64_MAX;
const absl::Time kT0 = absl::FromCivil(absl::CivilDay(2026, 3, 2), absl::UTCTimeZone());

int64_t Ms(const google::protobuf::Timestamp& ts) {
  return absl::ToUnixMillis(common::FromProto(ts));
}

// ---- Brute force ------------------------------------------------------------------------------

struct Interaction {
  int64_t at;
  v1::InteractionKind kind;
  v1::Direction direction;
  v1::Outcome outcome;
  std::string owner;
};

struct Lead {
  bool merged = false;
  int64_t captured = 0;
  std::string source, origin, temperature, campaign;
  std::string cost_currency;
  int64_t cost = 0;
  std::array<int64_t, 6> own = {0, kNone, kNone, kNone, kNone, kNone};
  std::array<std::string, 6> credit;
  std::vector<Interaction> interactions;
  std::vector<std::string> assigned;
  std::vector<std::tuple<int64_t, int, std::string>> exits;  // at, 6..9 (activity index), owner
  v1::LeadStatus status = v1::LEAD_STATUS_NEW;
  int stage = 0;
  std::string owner;
  std::string budget_currency;
  int64_t budget = 0;
};

std::map<std::string, Lead> Replay(const std::vector<v1::Event>& events) {
  std::map<std::string, Lead> leads;
  for (const v1::Event& e : events) {
    if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) continue;
    Lead& l = leads[e.aggregate_id()];
    const int64_t t = Ms(e.occurred_at());
    auto lower = [&](int m) {
      if (t < l.own[m]) {
        l.own[m] = t;
        l.credit[m] = l.owner;
      }
    };
    switch (e.payload_case()) {
      case v1::Event::kLeadCaptured: {
        const auto& b = e.lead_captured();
        l.captured = t;
        l.own[0] = t;
        l.source = common::EnumShortName(v1::SourceChannel_descriptor(), b.source_channel());
        l.origin = common::EnumShortName(v1::OriginType_descriptor(), b.origin_type());
        l.temperature = common::EnumShortName(v1::Temperature_descriptor(), b.temperature());
        l.campaign = b.campaign();
        l.cost_currency = b.acquisition_cost().currency_code();
        l.cost = b.acquisition_cost().amount_micros();
        break;
      }
      case v1::Event::kLeadAssigned:
        l.owner = e.lead_assigned().owner();
        if (std::find(l.assigned.begin(), l.assigned.end(), l.owner) == l.assigned.end()) {
          l.assigned.push_back(l.owner);
        }
        break;
      case v1::Event::kInteractionLogged: {
        const auto& b = e.interaction_logged();
        l.interactions.push_back({t, b.kind(), b.direction(), b.outcome(), l.owner});
        if (b.direction() == v1::DIRECTION_OUTBOUND) lower(1);
        if (b.kind() == v1::INTERACTION_KIND_DEMO || b.kind() == v1::INTERACTION_KIND_FREE_TRIAL) {
          lower(3);
        }
        if (b.kind() == v1::INTERACTION_KIND_OFFER_SENT) lower(4);
        break;
      }
      case v1::Event::kLeadQualified:
        lower(2);
        l.status = v1::LEAD_STATUS_QUALIFIED;
        l.stage = e.lead_qualified().stage();
        l.budget_currency = e.lead_qualified().budget().currency_code();
        l.budget = e.lead_qualified().budget().amount_micros();
        break;
      case v1::Event::kStageChanged:
        l.stage = e.stage_changed().stage();
        break;
      case v1::Event::kLeadRejected:
        l.status = v1::LEAD_STATUS_REJECTED;
        l.exits.emplace_back(t, 6, l.owner);
        break;
      case v1::Event::kLeadPostponed:
        l.status = v1::LEAD_STATUS_POSTPONED;
        l.exits.emplace_back(t, 7, l.owner);
        break;
      case v1::Event::kLeadDisqualified:
        l.status = v1::LEAD_STATUS_DISQUALIFIED;
        l.exits.emplace_back(t, 8, l.owner);
        break;
      case v1::Event::kLeadReactivated:
        l.status = e.lead_reactivated().restored_status();
        l.stage = e.lead_reactivated().restored_stage();
        l.exits.emplace_back(t, 9, l.owner);
        break;
      case v1::Event::kLeadConverted:
        lower(5);
        l.status = v1::LEAD_STATUS_CONVERTED;
        break;
      case v1::Event::kLeadMerged:
        l.merged = true;
        break;
      default:
        break;
    }
  }
  return leads;
}

int64_t Reached(const Lead& l, int m) {
  int64_t t = kNone;
  for (int k = m; k < 6; ++k) t = std::min(t, l.own[k]);
  return t;
}

std::string ReachedByOwner(const Lead& l, int m) {
  int by = m;
  for (int k = m; k < 6; ++k) {
    if (l.own[k] < l.own[by]) by = k;
  }
  return l.credit[by];
}

v1::Distribution Dist(const std::string& name, const std::string& unit, std::vector<int64_t> v) {
  v1::Distribution d;
  d.set_name(name);
  d.set_unit(unit);
  d.set_count(static_cast<int64_t>(v.size()));
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  int64_t sum = 0;
  for (int64_t x : v) sum += x;
  const size_t n = v.size();
  auto rank = [&](int p) {
    size_t k = (p * n) / 100;
    if (k * 100 < p * n) ++k;  // ceil
    return v[k - 1];
  };
  d.set_sum(sum);
  d.set_mean(static_cast<double>(sum) / static_cast<double>(n));
  d.set_p50(rank(50));
  d.set_p90(rank(90));
  d.set_min(v.front());
  d.set_max(v.back());
  return d;
}

double Ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; }

const char* kNames[] = {"captured", "contacted", "qualified", "presented", "proposal", "converted"};

bool Responded(const Lead& l) {
  if (l.own[1] == kNone) return false;
  for (const auto& i : l.interactions) {
    const bool response = i.direction == v1::DIRECTION_INBOUND ||
                          i.outcome == v1::OUTCOME_CONNECTED || i.outcome == v1::OUTCOME_REPLIED ||
                          i.outcome == v1::OUTCOME_POSITIVE;
    if (response && i.at >= l.own[1]) return true;
  }
  return false;
}

int64_t Touches(const Lead& l) {
  int64_t n = 0;
  for (const auto& i : l.interactions) n += i.at <= l.own[5];
  return n;
}

int64_t MeetingsDemos(const Lead& l, const std::string* owner) {
  int64_t n = 0;
  for (const auto& i : l.interactions) {
    if ((i.kind == v1::INTERACTION_KIND_MEETING || i.kind == v1::INTERACTION_KIND_DEMO) &&
        (owner == nullptr || i.owner == *owner)) {
      ++n;
    }
  }
  return n;
}

// One group of a cohort, from the leads in it (for the owner split: the leads of the cohort and
// the owner whose credits to count).
v1::FunnelGroup Group(const std::vector<const Lead*>& leads, int64_t limit, const std::string& name,
                      const std::string* owner) {
  v1::FunnelGroup g;
  g.set_split_value(name);
  std::array<int64_t, 6> count{};
  std::array<std::vector<int64_t>, 6> timings;
  std::vector<int64_t> touches;
  int64_t contacted_own = 0, responded = 0, rejected = 0, postponed = 0, disqualified = 0;
  int64_t reactivated = 0, reactivated_converted = 0, assigned = 0, md = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> cost;
  for (const Lead* l : leads) {
    std::array<int64_t, 6> r;
    std::array<bool, 6> in;
    for (int m = 0; m < 6; ++m) {
      r[m] = Reached(*l, m);
      in[m] = m == 0 || (r[m] != kNone && r[m] - l->captured <= limit);
    }
    for (int m = owner == nullptr ? 0 : 1; m < 6; ++m) {
      if (!in[m] || (owner != nullptr && ReachedByOwner(*l, m) != *owner)) continue;
      ++count[m];
      if (m > 0) timings[m - 1].push_back(r[m] - r[m - 1]);
      if (m == 5) {
        timings[5].push_back(r[5] - r[0]);
        touches.push_back(Touches(*l));
      }
    }
    if (l->own[1] != kNone && (owner == nullptr || l->credit[1] == *owner)) {
      ++contacted_own;
      responded += Responded(*l);
    }
    if (owner != nullptr) {
      assigned += std::count(l->assigned.begin(), l->assigned.end(), *owner);
      md += MeetingsDemos(*l, owner);
      continue;
    }
    assigned += !l->assigned.empty();
    md += MeetingsDemos(*l, nullptr);
    if (!l->cost_currency.empty()) {
      cost[l->cost_currency].first += l->cost;
      ++cost[l->cost_currency].second;
    }
    std::set<int> kinds;
    for (const auto& x : l->exits) kinds.insert(std::get<1>(x));
    rejected += kinds.contains(6);
    postponed += kinds.contains(7);
    disqualified += kinds.contains(8);
    reactivated += kinds.contains(9);
    reactivated_converted += kinds.contains(9) && l->own[5] != kNone;
  }
  g.set_captured(count[0]);
  g.set_contacted(count[1]);
  g.set_qualified(count[2]);
  g.set_presented(count[3]);
  g.set_proposal(count[4]);
  g.set_converted(count[5]);
  if (owner == nullptr) {
    for (int m = 1; m < 6; ++m) {
      v1::StepRate* s = g.add_steps();
      s->set_from(kNames[m - 1]);
      s->set_to(kNames[m]);
      s->set_from_count(count[m - 1]);
      s->set_to_count(count[m]);
      s->set_rate(Ratio(count[m], count[m - 1]));
    }
    g.set_conversion_rate(Ratio(count[5], count[0]));
  }
  for (int t = 0; t < 6; ++t) {
    *g.add_timings() =
        Dist(t < 5 ? absl::StrCat(kNames[t], "->", kNames[t + 1]) : "captured->converted", "ms",
             timings[t]);
  }
  *g.mutable_touches_before_conversion() = Dist("touches_before_conversion", "touches", touches);
  g.set_contacted_own(contacted_own);
  g.set_responded(responded);
  g.set_response_rate(Ratio(responded, contacted_own));
  for (const auto& [code, v] : cost) {
    v1::CostFigure* c = g.add_costs();
    c->set_currency_code(code);
    c->set_total_micros(v.first);
    c->set_leads_with_cost(v.second);
    if (count[0] > 0) c->set_per_lead_micros(v.first / count[0]);
    if (count[5] > 0) c->set_per_customer_micros(v.first / count[5]);
  }
  g.set_ever_rejected(rejected);
  g.set_ever_postponed(postponed);
  g.set_ever_disqualified(disqualified);
  g.set_reactivated(reactivated);
  g.set_reactivated_converted(reactivated_converted);
  g.set_assigned(assigned);
  g.set_meetings_demos(md);
  g.set_meetings_demos_per_conversion(Ratio(md, count[5]));
  g.set_owner_conversion_rate(Ratio(count[5], assigned));
  return g;
}

std::string FixedSplit(const Lead& l, const std::string& split) {
  if (split == "source_channel") return l.source;
  if (split == "origin_type") return l.origin;
  if (split == "temperature") return l.temperature;
  if (split == "campaign") return l.campaign;
  return l.owner;  // pipeline: current owner
}

v1::CohortFunnelReport BruteCohort(const std::map<std::string, Lead>& leads,
                                   const v1::CohortFunnelRequest& req) {
  const int64_t from = Ms(req.captured_from()), to = Ms(req.captured_to());
  const int64_t limit = req.has_within_days() ? req.within_days() * 86'400'000LL : kNone;
  std::vector<const Lead*> cohort;
  for (const auto& [id, l] : leads) {
    if (!l.merged && l.captured >= from && l.captured < to) cohort.push_back(&l);
  }
  v1::CohortFunnelReport out;
  *out.mutable_captured_from() = req.captured_from();
  *out.mutable_captured_to() = req.captured_to();
  out.set_split(req.split());
  out.set_within_days(req.within_days());
  *out.mutable_total() = Group(cohort, limit, "", nullptr);
  if (req.split() == "owner") {
    std::set<std::string> owners;
    for (const Lead* l : cohort) {
      for (const auto& o : l->assigned) owners.insert(o);
      for (int m = 1; m < 6; ++m) {
        const int64_t r = Reached(*l, m);
        if (r != kNone && r - l->captured <= limit) owners.insert(ReachedByOwner(*l, m));
      }
      if (l->own[1] != kNone) owners.insert(l->credit[1]);
      for (const auto& i : l->interactions) {
        if (i.kind == v1::INTERACTION_KIND_MEETING || i.kind == v1::INTERACTION_KIND_DEMO) {
          owners.insert(i.owner);
        }
      }
    }
    for (const std::string& o : owners) *out.add_groups() = Group(cohort, limit, o, &o);
  } else if (!req.split().empty()) {
    std::map<std::string, std::vector<const Lead*>> groups;
    for (const Lead* l : cohort) groups[FixedSplit(*l, req.split())].push_back(l);
    for (const auto& [name, members] : groups) {
      *out.add_groups() = Group(members, limit, name, nullptr);
    }
  }
  return out;
}

// Activity by UTC day over [from, to): per day, totals only.
std::vector<std::array<int64_t, 10>> BruteActivity(const std::map<std::string, Lead>& leads,
                                                   int64_t from, int days) {
  std::vector<std::array<int64_t, 10>> out(days, std::array<int64_t, 10>{});
  const int64_t to = from + days * 86'400'000LL;
  auto add = [&](int64_t t, int index) {
    if (t >= from && t < to) ++out[(t - from) / 86'400'000LL][index];
  };
  for (const auto& [id, l] : leads) {
    if (l.merged) continue;
    for (int m = 0; m < 6; ++m) {
      if (Reached(l, m) != kNone) add(Reached(l, m), m);
    }
    for (const auto& x : l.exits) add(std::get<0>(x), std::get<1>(x));
  }
  return out;
}

// ---- Random histories ---------------------------------------------------------------------------

std::vector<v1::Event> RandomHistory(uint32_t seed, int leads) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  testing::SalesScript s(kT0);
  const char* owners[] = {"ann", "bob", "carl", "dave"};
  const char* campaigns[] = {"", "spring", "summer"};
  std::vector<std::string> names;
  std::map<std::string, double> clock;  // hours after capture of the lead's latest event
  for (int i = 0; i < leads; ++i) {
    const std::string name = absl::StrCat("lead", i);
    std::optional<v1::Money> cost;
    if (pick(3) > 0) cost = pick(4) == 0 ? testing::Usd(5 + pick(20)) : testing::Eur(5 + pick(20));
    // Captures spread over 30 days, on minute boundaries plus odd milliseconds.
    s.Capture(name, pick(30 * 24 * 60) / 60.0 + pick(1000) / 3.6e6,
              static_cast<v1::SourceChannel>(1 + pick(10)),
              static_cast<v1::OriginType>(1 + pick(3)), static_cast<v1::Temperature>(pick(4)),
              campaigns[pick(3)], cost);
    names.push_back(name);
    clock[name] = 0;
  }
  EXPECT_TRUE(s.error().ok()) << s.error();
  int64_t id = 0;
  for (int step = 0; step < leads * 12; ++step) {
    const std::string& name = names[pick(leads)];
    double& now = clock[name];
    now += pick(72 * 60) / 60.0;  // up to three days later
    // Interactions are sometimes backdated (before earlier events of the lead).
    const double at = pick(5) == 0 ? pick(static_cast<int>(now * 60) + 1) / 60.0 : now;
    v1::Command c;
    v1::CommandMeta meta;
    meta.set_command_id(absl::StrCat("p", ++id));
    meta.mutable_actor()->set_kind(v1::Actor::KIND_SYSTEM);
    meta.mutable_actor()->set_id("property-test");
    *meta.mutable_occurred_at() = common::ToProto(s.Time(name, now));
    const std::string lead_id = s.Id(name);
    switch (pick(12)) {
      case 0:
      case 1:
        *c.mutable_assign_lead()->mutable_meta() = meta;
        c.mutable_assign_lead()->set_lead_id(lead_id);
        c.mutable_assign_lead()->set_owner(owners[pick(4)]);
        break;
      case 2:
      case 3:
      case 4: {
        v1::LogInteraction* b = c.mutable_log_interaction();
        *b->mutable_meta() = meta;
        *b->mutable_meta()->mutable_occurred_at() = common::ToProto(s.Time(name, at));
        b->set_lead_id(lead_id);
        b->set_kind(static_cast<v1::InteractionKind>(1 + pick(10)));
        b->set_direction(static_cast<v1::Direction>(1 + pick(2)));
        b->set_outcome(static_cast<v1::Outcome>(pick(7)));
        break;
      }
      case 5: {
        v1::QualifyLead* b = c.mutable_qualify_lead();
        *b->mutable_meta() = meta;
        b->set_lead_id(lead_id);
        *b->mutable_budget() =
            pick(4) == 0 ? testing::Usd(100 * pick(50)) : testing::Eur(100 * (1 + pick(50)));
        b->set_stage(static_cast<v1::SalesStage>(pick(6)));
        b->set_decision_maker("CEO");
        b->set_need("leads");
        *b->mutable_expected_decision_at() = common::ToProto(s.Time(name, now + 24 * 30));
        break;
      }
      case 6:
        *c.mutable_change_stage()->mutable_meta() = meta;
        c.mutable_change_stage()->set_lead_id(lead_id);
        c.mutable_change_stage()->set_stage(static_cast<v1::SalesStage>(1 + pick(5)));
        break;
      case 7:
        *c.mutable_reject_lead()->mutable_meta() = meta;
        c.mutable_reject_lead()->set_lead_id(lead_id);
        c.mutable_reject_lead()->set_reason(static_cast<v1::RejectionReason>(1 + pick(7)));
        break;
      case 8:
        *c.mutable_postpone_lead()->mutable_meta() = meta;
        c.mutable_postpone_lead()->set_lead_id(lead_id);
        *c.mutable_postpone_lead()->mutable_revisit_at() =
            common::ToProto(s.Time(name, now + 24 * (1 + pick(60))));
        break;
      case 9:
        *c.mutable_reactivate_lead()->mutable_meta() = meta;
        c.mutable_reactivate_lead()->set_lead_id(lead_id);
        break;
      case 10: {
        if (pick(4) == 0) {
          *c.mutable_merge_lead()->mutable_meta() = meta;
          c.mutable_merge_lead()->set_lead_id(lead_id);
          c.mutable_merge_lead()->set_survivor_lead_id(s.Id(names[pick(leads)]));
          break;
        }
        *c.mutable_disqualify_lead()->mutable_meta() = meta;
        c.mutable_disqualify_lead()->set_lead_id(lead_id);
        c.mutable_disqualify_lead()->set_reason(
            static_cast<v1::DisqualificationReason>(1 + pick(5)));
        break;
      }
      default:
        *c.mutable_convert_lead()->mutable_meta() = meta;
        c.mutable_convert_lead()->set_lead_id(lead_id);
        c.mutable_convert_lead()->set_invoice_ref("INV");
        *c.mutable_convert_lead()->mutable_deal_value() = testing::Eur(1000);
        break;
    }
    (void)s.Try(std::move(c));  // refused commands are simply not part of the history
  }
  return s.events();
}

google::protobuf::Timestamp Hours(double h) {
  return common::ToProto(kT0 + absl::Milliseconds(static_cast<int64_t>(h * 3.6e6)));
}

TEST(FunnelPropertyTest, EveryFigureEqualsBruteForce) {
  const std::string splits[] = {"",         "source_channel", "origin_type",
                                "campaign", "temperature",    "owner"};
  int compared = 0, converted_seen = 0;
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const std::vector<v1::Event> events = RandomHistory(seed, 80);
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) / absl::StrCat("funnel_prop_", seed);
    std::filesystem::remove_all(dir);
    auto log =
        log::EmbeddedLog::Open({.dir = (dir / "log").string(), .partitions = 3, .sync = false});
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(testing::AppendAll(**log, events).ok());
    FunnelProjection funnel;
    auto store = testing::BuildView(**log, funnel, (dir / "view").string());
    ASSERT_TRUE(store.ok()) << store.status();
    const std::map<std::string, Lead> leads = Replay(events);
    std::mt19937 rng(seed * 7919);
    for (int q = 0; q < 30; ++q) {
      v1::CohortFunnelRequest req;
      const double from = static_cast<double>(rng() % (40 * 24)) - 5 * 24;
      *req.mutable_captured_from() = Hours(from);
      *req.mutable_captured_to() = Hours(from + rng() % (40 * 24));
      req.set_split(splits[rng() % 6]);
      if (rng() % 3 == 0) req.set_within_days(1 + rng() % 20);
      auto got = funnel.Cohort(req);
      ASSERT_TRUE(got.ok()) << got.status();
      const v1::CohortFunnelReport want = BruteCohort(leads, req);
      std::string diff;
      google::protobuf::util::MessageDifferencer d;
      d.ReportDifferencesToString(&diff);
      EXPECT_TRUE(d.Compare(want, *got)) << req.ShortDebugString() << "\n" << diff;
      converted_seen += got->total().converted();
      ++compared;
    }
    // Activity by day over the whole history.
    v1::ActivityRequest a;
    *a.mutable_from() = Hours(0);
    *a.mutable_to() = Hours(24 * 60);
    auto act = funnel.Activity(a);
    ASSERT_TRUE(act.ok());
    const auto want = BruteActivity(leads, Ms(a.from()), 60);
    ASSERT_EQ(act->buckets_size(), 60);
    for (int day = 0; day < 60; ++day) {
      const v1::ActivityCounts& c = act->buckets(day).total();
      const std::array<int64_t, 10> got = {
          c.captured(),  c.contacted(), c.qualified(), c.presented(),    c.proposal(),
          c.converted(), c.rejected(),  c.postponed(), c.disqualified(), c.reactivated()};
      EXPECT_EQ(got, want[day]) << "day " << day;
    }
    // Pipeline: QUALIFIED now, by stage, by current owner.
    v1::PipelineRequest p;
    p.set_split("owner");
    auto pipeline = funnel.Pipeline(p);
    ASSERT_TRUE(pipeline.ok());
    std::map<std::pair<std::string, int>, std::pair<int64_t, int64_t>> want_pipe;
    for (const auto& [id, l] : leads) {
      if (l.merged || l.status != v1::LEAD_STATUS_QUALIFIED) continue;
      auto& w = want_pipe[{l.owner, std::max(l.stage, 1)}];
      ++w.first;
      if (!l.budget_currency.empty()) w.second += l.budget;
    }
    std::map<std::pair<std::string, int>, std::pair<int64_t, int64_t>> got_pipe;
    for (const auto& g : pipeline->groups()) {
      for (const auto& st : g.stages()) {
        if (st.leads() == 0) continue;
        int64_t budget = 0;
        for (const auto& m : st.money()) budget += m.budget_micros();
        got_pipe[{g.split_value(), st.stage()}] = {st.leads(), budget};
      }
    }
    EXPECT_EQ(got_pipe, want_pipe);
    store->reset();
    log->reset();
    std::filesystem::remove_all(dir);
  }
  EXPECT_EQ(compared, 180);
  EXPECT_GT(converted_seen, 100);  // the histories are not trivially empty
}

}  // namespace
}  // namespace leadflow::projections

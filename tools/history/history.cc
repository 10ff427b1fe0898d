#include "tools/history/history.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"

namespace leadflow::history {
namespace {

// splitmix64: small, fast and the same everywhere (std distributions are not portable across
// standard libraries, and the history must be the same bytes for the same seed).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Uniform() < p; }
  int64_t Between(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  absl::Duration Minutes(int64_t lo, int64_t hi) { return absl::Minutes(Between(lo, hi)); }
  absl::Duration Days(int64_t lo, int64_t hi) {
    return absl::Hours(24 * Between(lo, hi)) + absl::Minutes(Between(0, 8 * 60));
  }
  template <size_t N>
  size_t Weighted(const std::array<double, N>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = Uniform() * total;
    for (size_t i = 0; i < N; ++i) {
      if ((x -= weights[i]) < 0) return i;
    }
    return N - 1;
  }

 private:
  uint64_t state_;
};

uint64_t Mix(uint64_t seed, int64_t index) {
  Rng r(seed * 0x2545f4914f6cdd1dULL ^ static_cast<uint64_t>(index));
  r.Next();
  return r.Next();
}

constexpr int kReps = 40;
constexpr int kTeams = 5;

struct Source {
  v1::SourceChannel channel;
  v1::OriginType origin;
  double weight;
  const char* campaign;  // marketing sources carry a campaign
  int64_t cost_eur;      // acquisition cost
};
constexpr std::array<Source, 10> kSources = {{
    {v1::SOURCE_CHANNEL_WEB_FORM, v1::ORIGIN_TYPE_NET, 28, "spring-search", 35},
    {v1::SOURCE_CHANNEL_INBOUND_CALL, v1::ORIGIN_TYPE_NET, 10, "", 20},
    {v1::SOURCE_CHANNEL_INBOUND_EMAIL, v1::ORIGIN_TYPE_NET, 8, "", 15},
    {v1::SOURCE_CHANNEL_REFERRAL, v1::ORIGIN_TYPE_SEED, 12, "", 50},
    {v1::SOURCE_CHANNEL_EVENT, v1::ORIGIN_TYPE_NET, 8, "trade-fair", 120},
    {v1::SOURCE_CHANNEL_COLD_CALL, v1::ORIGIN_TYPE_SPEAR, 12, "", 60},
    {v1::SOURCE_CHANNEL_THIRD_PARTY, v1::ORIGIN_TYPE_NET, 6, "partner-list", 25},
    {v1::SOURCE_CHANNEL_SOCIAL, v1::ORIGIN_TYPE_NET, 6, "social-q2", 30},
    {v1::SOURCE_CHANNEL_WEBINAR, v1::ORIGIN_TYPE_NET, 5, "webinar-series", 40},
    {v1::SOURCE_CHANNEL_CONTENT_DOWNLOAD, v1::ORIGIN_TYPE_NET, 5, "whitepaper", 10},
}};

// Builds one lead's commands; every command moves business time forward and nothing is
// generated at or after `end`.
class LeadWriter {
 public:
  LeadWriter(const HistoryOptions& o, int64_t index)
      : o_(o), index_(index), r_(Mix(o.seed, index)) {}

  std::vector<v1::Command> Build() {
    const absl::Time start = o_.end - absl::Hours(24 * o_.days);
    // Capture: a day in the range (weekends mostly moved to the Friday before), office hours.
    absl::Time day = start + absl::Hours(24 * r_.Between(0, std::max(0, o_.days - 1)));
    const absl::Weekday wd = absl::GetWeekday(absl::ToCivilDay(day, absl::UTCTimeZone()));
    if ((wd == absl::Weekday::saturday || wd == absl::Weekday::sunday) && r_.Chance(0.75)) {
      day -= absl::Hours(24 * (wd == absl::Weekday::saturday ? 1 : 2));
      if (day < start) day += absl::Hours(24 * 3);
    }
    t_ = day + absl::Hours(8) + r_.Minutes(0, 9 * 60);
    if (t_ >= o_.end) t_ = o_.end - absl::Hours(1);
    const Source& src = kSources[r_.Weighted(std::array<double, 10>{
        kSources[0].weight, kSources[1].weight, kSources[2].weight, kSources[3].weight,
        kSources[4].weight, kSources[5].weight, kSources[6].weight, kSources[7].weight,
        kSources[8].weight, kSources[9].weight})];
    const auto temperature = static_cast<v1::Temperature>(
        1 + r_.Weighted(std::array<double, 3>{50, 35, 15}));  // cold, warm, hot
    email_ = absl::StrCat("lead", index_, "@company", index_ % 9973, ".example");
    static const common::LeadIdScheme kIds(kHistoryIdKey);
    lead_id_ = kIds.ForEmail(email_);
    owner_ = absl::StrCat("rep-", r_.Between(1, kReps));
    {
      v1::CaptureLead* c = New(&v1::Command::mutable_capture_lead, system("web-form-importer"));
      c->mutable_person()->set_full_name(absl::StrCat("Lead ", index_));
      c->set_company(absl::StrCat("Company ", index_ % 9973));
      c->set_email(email_);
      c->set_source_channel(src.channel);
      c->set_origin_type(src.origin);
      c->set_campaign(src.campaign);
      c->set_temperature(temperature);
      c->mutable_acquisition_cost()->set_currency_code("EUR");
      c->mutable_acquisition_cost()->set_amount_micros(src.cost_eur * 1000000);
    }
    if (!Step(r_.Minutes(10, 6 * 60))) return Done();
    {
      v1::AssignLead* a = New(&v1::Command::mutable_assign_lead, user("sales-ops"));
      a->set_lead_id(lead_id_);
      a->set_owner(owner_);
      a->set_team(absl::StrCat("team-", (std::stoi(owner_.substr(4)) - 1) % kTeams + 1));
    }
    // Touches, then one path.
    const double qualify_chance = temperature == v1::TEMPERATURE_HOT    ? 0.60
                                  : temperature == v1::TEMPERATURE_WARM ? 0.42
                                                                        : 0.22;
    const int touches = std::min<int>(30, 2 + static_cast<int>(-std::log(1 - r_.Uniform()) * 4));
    // At least two touches before the decision (every lead is worked 2-30 times); the rest of
    // the budget only if the lead is qualified.
    const int before_decision = std::max(2, touches / 2);
    for (int k = 0; k < before_decision; ++k) {
      if (!Touch(k == 0)) return Done();
    }
    if (r_.Chance(0.05) && !Reassign()) return Done();
    if (r_.Chance(qualify_chance)) {
      if (!Qualified(touches - before_decision)) return Done();
    } else if (!NotQualified()) {
      return Done();
    }
    if (r_.Chance(0.04)) ComesBack();
    return Done();
  }

 private:
  v1::Actor user(const std::string& id) {
    v1::Actor a;
    a.set_kind(v1::Actor::KIND_USER);
    a.set_id(id);
    return a;
  }
  v1::Actor system(const std::string& id) {
    v1::Actor a;
    a.set_kind(v1::Actor::KIND_SYSTEM);
    a.set_id(id);
    return a;
  }

  // Moves business time on; false (and nothing more for this lead) if that reaches the end.
  bool Step(absl::Duration d) {
    t_ += std::max(d, absl::Minutes(1));
    return t_ < o_.end - absl::Minutes(1);
  }

  std::vector<v1::Command> Done() { return std::move(out_); }

  // A new command of the body `mutable_body` selects, at the current business time.
  template <typename Body>
  Body* New(Body* (v1::Command::*mutable_body)(), const v1::Actor& actor) {
    v1::Command& c = out_.emplace_back();
    Body* body = (c.*mutable_body)();
    v1::CommandMeta* meta = lead::MutableMetaOf(&c);
    meta->set_command_id(absl::StrCat("h", o_.seed, "-", index_, "-", out_.size()));
    *meta->mutable_actor() = actor;
    *meta->mutable_occurred_at() = common::ToProto(t_);
    return body;
  }

  bool Touch(bool first) {
    if (!Step(first ? r_.Minutes(30, 3 * 24 * 60) : r_.Days(1, 9))) return false;
    static constexpr std::array<v1::InteractionKind, 6> kinds = {
        v1::INTERACTION_KIND_CALL,       v1::INTERACTION_KIND_EMAIL,
        v1::INTERACTION_KIND_MEETING,    v1::INTERACTION_KIND_DEMO,
        v1::INTERACTION_KIND_OFFER_SENT, v1::INTERACTION_KIND_PRICE_LIST_SENT};
    v1::LogInteraction* i = New(&v1::Command::mutable_log_interaction, user(owner_));
    i->set_lead_id(lead_id_);
    const size_t kind = first ? 0 : r_.Weighted(std::array<double, 6>{40, 30, 10, 8, 7, 5});
    i->set_kind(kinds[kind]);
    const bool inbound = !first && r_.Chance(0.25);
    i->set_direction(inbound ? v1::DIRECTION_INBOUND : v1::DIRECTION_OUTBOUND);
    if (kinds[kind] == v1::INTERACTION_KIND_CALL) {
      i->set_outcome(r_.Chance(0.6) ? v1::OUTCOME_CONNECTED : v1::OUTCOME_NO_ANSWER);
      i->set_duration_seconds(r_.Between(30, 1800));
    } else if (kinds[kind] == v1::INTERACTION_KIND_EMAIL) {
      i->set_outcome(r_.Chance(0.5) ? v1::OUTCOME_REPLIED : v1::OUTCOME_NO_REPLY);
    }
    return true;
  }

  bool Reassign() {
    if (!Step(r_.Days(0, 5))) return false;
    owner_ = absl::StrCat("rep-", r_.Between(1, kReps));
    v1::AssignLead* a = New(&v1::Command::mutable_assign_lead, user("sales-ops"));
    a->set_lead_id(lead_id_);
    a->set_owner(owner_);
    a->set_reason("territory change");
    return true;
  }

  bool Qualified(int more_touches) {
    if (!Step(r_.Days(0, 7))) return false;
    {
      v1::QualifyLead* q = New(&v1::Command::mutable_qualify_lead, user(owner_));
      q->set_lead_id(lead_id_);
      q->mutable_budget()->set_currency_code("EUR");
      q->mutable_budget()->set_amount_micros(r_.Between(5, 250) * 1000 * 1000000);
      q->set_decision_maker(r_.Chance(0.5) ? "CFO" : "Head of Operations");
      q->set_need(r_.Chance(0.5) ? "replace spreadsheets" : "pipeline reporting");
      *q->mutable_expected_decision_at() = common::ToProto(t_ + r_.Days(20, 120));
    }
    static constexpr std::array<v1::SalesStage, 4> stages = {
        v1::SALES_STAGE_NEEDS_ANALYSIS, v1::SALES_STAGE_SOLUTION_PRESENTATION,
        v1::SALES_STAGE_OBJECTION_HANDLING, v1::SALES_STAGE_CLOSING};
    const bool wins = r_.Chance(0.5);
    const size_t reach = wins ? stages.size() : static_cast<size_t>(r_.Between(0, 3));
    for (size_t s = 0; s < reach; ++s) {
      for (int k = 0; k < more_touches / 4; ++k) {
        if (!Touch(false)) return false;
      }
      if (!Step(r_.Days(1, 14))) return false;
      v1::ChangeStage* c = New(&v1::Command::mutable_change_stage, user(owner_));
      c->set_lead_id(lead_id_);
      c->set_stage(stages[s]);
    }
    if (!wins) {
      if (!Step(r_.Days(2, 30))) return false;
      static constexpr std::array<v1::RejectionReason, 3> lost = {
          v1::REJECTION_REASON_CHOSE_COMPETITOR, v1::REJECTION_REASON_NO_BUDGET,
          v1::REJECTION_REASON_BAD_TIMING};
      v1::RejectLead* j = New(&v1::Command::mutable_reject_lead, user(owner_));
      j->set_lead_id(lead_id_);
      j->set_reason(lost[r_.Weighted(std::array<double, 3>{50, 30, 20})]);
      return true;
    }
    if (!Step(r_.Days(1, 60))) return false;
    {
      v1::ConvertLead* c = New(&v1::Command::mutable_convert_lead, user(owner_));
      c->set_lead_id(lead_id_);
      c->mutable_deal_value()->set_currency_code("EUR");
      c->mutable_deal_value()->set_amount_micros(r_.Between(3, 200) * 1000 * 1000000);
      c->set_invoice_ref(absl::StrCat("INV-", o_.seed, "-", index_));
    }
    const std::string customer = common::CustomerIdForLead(common::LeadId(lead_id_)).value();
    const int purchases = static_cast<int>(r_.Weighted(std::array<double, 4>{45, 30, 15, 10}));
    for (int p = 0; p < purchases; ++p) {
      if (!Step(r_.Days(20, 180))) return false;
      v1::RecordPurchase* rp = New(&v1::Command::mutable_record_purchase, user(owner_));
      rp->set_customer_id(customer);
      rp->set_kind(
          static_cast<v1::PurchaseKind>(2 + r_.Weighted(std::array<double, 3>{60, 25, 15})));
      rp->mutable_amount()->set_currency_code("EUR");
      rp->mutable_amount()->set_amount_micros(r_.Between(1, 80) * 1000 * 1000000);
      rp->set_reference(absl::StrCat("INV-", o_.seed, "-", index_, "-", p + 1));
    }
    if (r_.Chance(0.6)) {
      if (!Step(r_.Days(14, 90))) return false;
      v1::RecordNps* n = New(&v1::Command::mutable_record_nps, system("nps-survey"));
      n->set_customer_id(customer);
      // Skewed towards promoters, as surveys of paying customers tend to be.
      n->set_score(static_cast<int32_t>(
          r_.Weighted(std::array<double, 11>{1, 1, 1, 2, 2, 3, 4, 8, 12, 14, 12})));
    }
    return true;
  }

  bool NotQualified() {
    if (!Step(r_.Days(1, 21))) return false;
    const size_t path = r_.Weighted(std::array<double, 3>{55, 30, 15});  // reject, postpone, DQ
    if (path == 0) {
      static constexpr std::array<v1::RejectionReason, 5> reasons = {
          v1::REJECTION_REASON_NO_NEED, v1::REJECTION_REASON_UNRESPONSIVE,
          v1::REJECTION_REASON_NO_BUDGET, v1::REJECTION_REASON_NO_AUTHORITY,
          v1::REJECTION_REASON_OTHER};
      v1::RejectLead* j = New(&v1::Command::mutable_reject_lead, user(owner_));
      j->set_lead_id(lead_id_);
      j->set_reason(reasons[r_.Weighted(std::array<double, 5>{30, 30, 20, 10, 10})]);
      if (j->reason() == v1::REJECTION_REASON_OTHER) j->set_text("went quiet after the merger");
      return true;
    }
    if (path == 2) {
      v1::DisqualifyLead* d = New(&v1::Command::mutable_disqualify_lead, user(owner_));
      d->set_lead_id(lead_id_);
      d->set_reason(r_.Chance(0.6) ? v1::DISQUALIFICATION_REASON_NOT_TARGET_MARKET
                                   : v1::DISQUALIFICATION_REASON_INVALID_CONTACT);
      return true;
    }
    const absl::Duration wait = r_.Days(30, 120);
    {
      v1::PostponeLead* p = New(&v1::Command::mutable_postpone_lead, user(owner_));
      p->set_lead_id(lead_id_);
      *p->mutable_revisit_at() = common::ToProto(t_ + wait);
      p->set_reason(r_.Chance(0.5) ? "budget next quarter" : "after their reorganisation");
    }
    if (!r_.Chance(0.45)) return true;  // still waiting (or forgotten: the win-back list)
    if (!Step(wait + r_.Days(0, 10))) return false;
    {
      v1::ReactivateLead* a = New(&v1::Command::mutable_reactivate_lead, user(owner_));
      a->set_lead_id(lead_id_);
      a->set_note("revisit date reached");
    }
    for (int k = 0, n = static_cast<int>(r_.Between(1, 4)); k < n; ++k) {
      if (!Touch(false)) return false;
    }
    if (r_.Chance(0.35)) return Qualified(2);
    if (!Step(r_.Days(1, 20))) return false;
    v1::RejectLead* j = New(&v1::Command::mutable_reject_lead, user(owner_));
    j->set_lead_id(lead_id_);
    j->set_reason(v1::REJECTION_REASON_BAD_TIMING);
    return true;
  }

  // The contact comes back through another channel: a capture of a known contact.
  void ComesBack() {
    if (!Step(r_.Days(10, 200))) return;
    v1::CaptureLead* c = New(&v1::Command::mutable_capture_lead, system("web-form-importer"));
    c->mutable_person()->set_full_name(absl::StrCat("Lead ", index_));
    c->set_email(email_);
    c->set_source_channel(r_.Chance(0.5) ? v1::SOURCE_CHANNEL_WEBINAR
                                         : v1::SOURCE_CHANNEL_INBOUND_EMAIL);
  }

  const HistoryOptions& o_;
  int64_t index_;
  Rng r_;
  absl::Time t_;
  std::string email_, lead_id_, owner_;
  std::vector<v1::Command> out_;
};

}  // namespace

std::vector<v1::Command> LeadHistory(const HistoryOptions& options, int64_t index) {
  return LeadWriter(options, index).Build();
}

void Generate(const HistoryOptions& options,
              const std::function<bool(int64_t, std::vector<v1::Command>&)>& sink) {
  for (int64_t i = 0; i < options.leads; ++i) {
    std::vector<v1::Command> commands = LeadHistory(options, i);
    if (!sink(i, commands)) return;
  }
}

}  // namespace leadflow::history

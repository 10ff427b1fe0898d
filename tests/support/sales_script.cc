#include "tests/support/sales_script.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"

namespace leadflow::testing {

v1::Money Eur(int64_t units) {
  v1::Money m;
  m.set_currency_code("EUR");
  m.set_amount_micros(units * 1'000'000);
  return m;
}

v1::Money Usd(int64_t units) {
  v1::Money m = Eur(units);
  m.set_currency_code("USD");
  return m;
}

const lead::Identity& ScriptIdentity() {
  static const common::LeadIdScheme ids(kScriptIdKey);
  static const lead::Identity identity{.ids = &ids, .phone_region = ""};
  return identity;
}

std::string SalesScript::Id(const std::string& name) const {
  return ScriptIdentity().ids->ForEmail(absl::AsciiStrToLower(absl::StrCat(name, "@example.com")));
}

absl::Time SalesScript::Time(const std::string& name, double at) const {
  auto it = leads_.find(Id(name));
  const absl::Time base = it == leads_.end() ? t0_ : it->second.captured_at;
  return base + absl::Milliseconds(static_cast<int64_t>(at * 3'600'000));
}

const lead::LeadState* SalesScript::Lead(const std::string& lead_id) const {
  auto it = leads_.find(lead_id);
  return it == leads_.end() ? nullptr : &it->second;
}

v1::CommandMeta SalesScript::Meta(const std::string& name, double at) {
  v1::CommandMeta m;
  m.set_command_id(absl::StrCat("cmd-", ++next_command_));
  m.mutable_actor()->set_kind(v1::Actor::KIND_USER);
  m.mutable_actor()->set_id("fixture");
  *m.mutable_occurred_at() = common::ToProto(Time(name, at));
  return m;
}

absl::Status SalesScript::Try(v1::Command command) {
  LEADFLOW_ASSIGN_OR_RETURN(const lead::CommandTarget target,
                            lead::ResolveTarget(command, ScriptIdentity()));
  const absl::Time occurred = common::FromProto(lead::MetaOf(command).occurred_at());
  lead::LeadState& lead = leads_[target.lead_id];
  lead::CustomerState& customer =
      customers_[common::CustomerIdForLead(common::LeadId(target.lead_id)).value()];
  lead::DecideContext ctx;
  ctx.now = occurred + absl::Minutes(1);
  if (command.has_merge_lead()) {
    ctx.merge_survivor = Lead(command.merge_lead().survivor_lead_id());
  }
  ctx.target = &target;
  ctx.identity = &ScriptIdentity();
  absl::StatusOr<std::vector<v1::Event>> events = lead::Decide(lead, customer, command, ctx);
  if (!events.ok()) {
    if (!lead.exists) leads_.erase(target.lead_id);
    return events.status();
  }
  for (v1::Event& e : *events) {
    e.set_event_id(common::NewEventId());
    *e.mutable_recorded_at() = common::ToProto(ctx.now);
    absl::Status st = e.aggregate_type() == v1::AGGREGATE_TYPE_LEAD
                          ? lead::EvolveLead(lead, e)
                          : lead::EvolveCustomer(customer, e);
    if (!st.ok()) return st;  // a reducer bug: Decide's events must evolve
    events_.push_back(std::move(e));
  }
  return absl::OkStatus();
}

void SalesScript::Must(v1::Command command, const std::string& what) {
  if (!error_.ok()) return;
  absl::Status st = Try(std::move(command));
  if (!st.ok()) error_ = absl::Status(st.code(), absl::StrCat(what, ": ", st.message()));
}

std::string SalesScript::Capture(const std::string& name, double at, v1::SourceChannel source,
                                 v1::OriginType origin, v1::Temperature temperature,
                                 const std::string& campaign, std::optional<v1::Money> cost) {
  v1::Command c;
  v1::CaptureLead* b = c.mutable_capture_lead();
  *b->mutable_meta() = Meta("", at);
  b->mutable_person()->set_full_name(absl::StrCat("Person ", name));
  b->set_company(absl::StrCat(name, " Ltd"));
  b->set_email(absl::StrCat(name, "@example.com"));
  b->set_source_channel(source);
  b->set_origin_type(origin);
  b->set_temperature(temperature);
  b->set_campaign(campaign);
  if (cost.has_value()) *b->mutable_acquisition_cost() = *cost;
  Must(std::move(c), absl::StrCat("capture ", name));
  return Id(name);
}

void SalesScript::Assign(const std::string& name, double at, const std::string& owner) {
  v1::Command c;
  *c.mutable_assign_lead()->mutable_meta() = Meta(name, at);
  c.mutable_assign_lead()->set_lead_id(Id(name));
  c.mutable_assign_lead()->set_owner(owner);
  Must(std::move(c), absl::StrCat("assign ", name));
}

void SalesScript::Touch(const std::string& name, double at, v1::InteractionKind kind,
                        v1::Direction direction, v1::Outcome outcome) {
  v1::Command c;
  v1::LogInteraction* b = c.mutable_log_interaction();
  *b->mutable_meta() = Meta(name, at);
  b->set_lead_id(Id(name));
  b->set_kind(kind);
  b->set_direction(direction);
  b->set_outcome(outcome);
  Must(std::move(c), absl::StrCat("touch ", name));
}

void SalesScript::Qualify(const std::string& name, double at, std::optional<v1::Money> budget,
                          v1::SalesStage stage) {
  v1::Command c;
  v1::QualifyLead* b = c.mutable_qualify_lead();
  *b->mutable_meta() = Meta(name, at);
  b->set_lead_id(Id(name));
  *b->mutable_budget() = budget.value_or(Eur(5000));
  b->set_decision_maker("CFO");
  b->set_need("CRM");
  *b->mutable_expected_decision_at() = common::ToProto(Time(name, at + 30 * 24));
  b->set_stage(stage);
  Must(std::move(c), absl::StrCat("qualify ", name));
}

void SalesScript::Stage(const std::string& name, double at, v1::SalesStage stage) {
  v1::Command c;
  *c.mutable_change_stage()->mutable_meta() = Meta(name, at);
  c.mutable_change_stage()->set_lead_id(Id(name));
  c.mutable_change_stage()->set_stage(stage);
  Must(std::move(c), absl::StrCat("stage ", name));
}

void SalesScript::Reject(const std::string& name, double at, v1::RejectionReason reason,
                         const std::string& text) {
  v1::Command c;
  *c.mutable_reject_lead()->mutable_meta() = Meta(name, at);
  c.mutable_reject_lead()->set_lead_id(Id(name));
  c.mutable_reject_lead()->set_reason(reason);
  c.mutable_reject_lead()->set_text(text);
  Must(std::move(c), absl::StrCat("reject ", name));
}

void SalesScript::Postpone(const std::string& name, double at, double revisit_at,
                           const std::string& reason) {
  v1::Command c;
  *c.mutable_postpone_lead()->mutable_meta() = Meta(name, at);
  c.mutable_postpone_lead()->set_lead_id(Id(name));
  *c.mutable_postpone_lead()->mutable_revisit_at() = common::ToProto(Time(name, revisit_at));
  c.mutable_postpone_lead()->set_reason(reason);
  Must(std::move(c), absl::StrCat("postpone ", name));
}

void SalesScript::Disqualify(const std::string& name, double at,
                             v1::DisqualificationReason reason) {
  v1::Command c;
  *c.mutable_disqualify_lead()->mutable_meta() = Meta(name, at);
  c.mutable_disqualify_lead()->set_lead_id(Id(name));
  c.mutable_disqualify_lead()->set_reason(reason);
  Must(std::move(c), absl::StrCat("disqualify ", name));
}

void SalesScript::Reactivate(const std::string& name, double at) {
  v1::Command c;
  *c.mutable_reactivate_lead()->mutable_meta() = Meta(name, at);
  c.mutable_reactivate_lead()->set_lead_id(Id(name));
  Must(std::move(c), absl::StrCat("reactivate ", name));
}

void SalesScript::Convert(const std::string& name, double at) {
  v1::Command c;
  *c.mutable_convert_lead()->mutable_meta() = Meta(name, at);
  c.mutable_convert_lead()->set_lead_id(Id(name));
  *c.mutable_convert_lead()->mutable_deal_value() = Eur(1000);
  c.mutable_convert_lead()->set_contract_ref(absl::StrCat("C-", name));
  Must(std::move(c), absl::StrCat("convert ", name));
}

void SalesScript::Merge(const std::string& name, double at, const std::string& survivor) {
  v1::Command c;
  *c.mutable_merge_lead()->mutable_meta() = Meta(name, at);
  c.mutable_merge_lead()->set_lead_id(Id(name));
  c.mutable_merge_lead()->set_survivor_lead_id(Id(survivor));
  Must(std::move(c), absl::StrCat("merge ", name));
}

void WriteFixtureHistory(SalesScript& s) {
  using v1::DIRECTION_INBOUND;
  using v1::DIRECTION_OUTBOUND;
  const auto kCall = v1::INTERACTION_KIND_CALL;
  const auto kEmail = v1::INTERACTION_KIND_EMAIL;
  const auto kDemo = v1::INTERACTION_KIND_DEMO;
  const auto kOffer = v1::INTERACTION_KIND_OFFER_SENT;
  const auto kMeeting = v1::INTERACTION_KIND_MEETING;
  const auto web = v1::SOURCE_CHANNEL_WEB_FORM;
  const auto referral = v1::SOURCE_CHANNEL_REFERRAL;
  const auto event = v1::SOURCE_CHANNEL_EVENT;
  s.Capture("W1", 0, web, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_HOT, "spring", Eur(10));
  s.Assign("W1", 0.5, "ann");
  s.Touch("W1", 1, kCall, DIRECTION_OUTBOUND);
  s.Touch("W1", 2, kEmail, DIRECTION_INBOUND);
  s.Qualify("W1", 5);
  s.Touch("W1", 6, kDemo, DIRECTION_OUTBOUND);
  s.Touch("W1", 8, kOffer, DIRECTION_OUTBOUND);
  s.Convert("W1", 10);

  s.Capture("W2", 2, web, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_HOT, "spring", Eur(10));
  s.Assign("W2", 0.5, "ann");
  s.Touch("W2", 2, kCall, DIRECTION_OUTBOUND);
  s.Qualify("W2", 4);
  s.Touch("W2", 10, kDemo, DIRECTION_OUTBOUND);
  s.Assign("W2", 12, "bob");
  s.Touch("W2", 15, kOffer, DIRECTION_OUTBOUND);
  s.Convert("W2", 20);

  s.Capture("W3", 1 * kDay, web, v1::ORIGIN_TYPE_SPEAR, v1::TEMPERATURE_WARM, "spring", Eur(10));
  s.Assign("W3", 0.5, "bob");
  s.Touch("W3", 3, kCall, DIRECTION_OUTBOUND, v1::OUTCOME_CONNECTED);
  s.Qualify("W3", 6);
  s.Touch("W3", 12, kOffer, DIRECTION_OUTBOUND);
  s.Convert("W3", 20);

  s.Capture("W4", 1 * kDay + 6, web, v1::ORIGIN_TYPE_SPEAR, v1::TEMPERATURE_WARM, "spring",
            Eur(10));
  s.Assign("W4", 0.5, "bob");
  s.Touch("W4", 1, kCall, DIRECTION_OUTBOUND);
  s.Qualify("W4", 2);
  s.Touch("W4", 4, kDemo, DIRECTION_OUTBOUND);
  s.Touch("W4", 25, kOffer, DIRECTION_OUTBOUND);
  s.Touch("W4", 35, kEmail, DIRECTION_OUTBOUND);  // after the conversion's business time
  s.Convert("W4", 30);

  s.Capture("W5", 2 * kDay, web, v1::ORIGIN_TYPE_SPEAR, v1::TEMPERATURE_HOT, "spring", Eur(10));
  s.Assign("W5", 0.5, "ann");
  s.Qualify("W5", 4);
  s.Convert("W5", 40);

  s.Capture("W6", 2 * kDay + 12, web, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_COLD, "spring", Eur(10));
  s.Assign("W6", 0.5, "ann");
  s.Touch("W6", 5, kCall, DIRECTION_OUTBOUND, v1::OUTCOME_NO_ANSWER);
  s.Reject("W6", 10, v1::REJECTION_REASON_NO_BUDGET, "too pricey");

  s.Capture("W7", 3 * kDay, web, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_COLD, "spring", Eur(10));

  s.Capture("R1", 12, referral, v1::ORIGIN_TYPE_SEED, v1::TEMPERATURE_WARM);
  s.Assign("R1", 0.25, "carl");
  s.Touch("R1", 0.5, kCall, DIRECTION_INBOUND, v1::OUTCOME_CONNECTED);
  s.Touch("R1", 1, kCall, DIRECTION_OUTBOUND);
  s.Touch("R1", 2, kMeeting, DIRECTION_OUTBOUND);
  s.Qualify("R1", 3);
  s.Convert("R1", 10);

  s.Capture("R2", 1 * kDay + 12, referral, v1::ORIGIN_TYPE_SEED, v1::TEMPERATURE_WARM);
  s.Assign("R2", 0.25, "carl");
  s.Touch("R2", 2, kCall, DIRECTION_OUTBOUND, v1::OUTCOME_NO_ANSWER);
  s.Postpone("R2", 5, 20 * kDay - (1 * kDay + 12), "budget next quarter");
  s.Reactivate("R2", 48);
  s.Touch("R2", 49, kCall, DIRECTION_OUTBOUND, v1::OUTCOME_NO_ANSWER);
  s.Qualify("R2", 50);
  s.Convert("R2", 60);

  s.Capture("R3", 3 * kDay + 12, referral, v1::ORIGIN_TYPE_SEED, v1::TEMPERATURE_COLD);
  s.Assign("R3", 0.25, "dave");
  s.Touch("R3", 24, kEmail, DIRECTION_OUTBOUND);
  s.Disqualify("R3", 30, v1::DISQUALIFICATION_REASON_NOT_TARGET_MARKET);

  s.Capture("R4", 4 * kDay, referral, v1::ORIGIN_TYPE_SEED, v1::TEMPERATURE_COLD);
  s.Reject("R4", 1, v1::REJECTION_REASON_UNRESPONSIVE);
  s.Merge("R4", 2, "R1");

  const std::optional<v1::Money> budgets[] = {Eur(1000), Eur(500), Usd(200), Eur(300)};
  const v1::SalesStage stages[] = {v1::SALES_STAGE_NEEDS_ANALYSIS, v1::SALES_STAGE_CLOSING,
                                   v1::SALES_STAGE_CLOSING, v1::SALES_STAGE_UNSPECIFIED};
  for (int i = 0; i < 4; ++i) {
    const std::string q = absl::StrCat("Q", i + 1);
    s.Capture(q, 10 * kDay + i, event);
    s.Touch(q, 1, kCall, DIRECTION_OUTBOUND);
    s.Qualify(q, 2, budgets[i], stages[i]);
  }
  s.Capture("P1", 10 * kDay + 4, event);
  s.Postpone("P1", 1, 15 * kDay - (10 * kDay + 4), "call back in spring");
  s.Capture("P2", 10 * kDay + 5, event);
  s.Postpone("P2", 1, 12 * kDay - (10 * kDay + 5), "after holidays");
  s.Capture("X1", 10 * kDay + 6, event);
  s.Touch("X1", 1, kCall, DIRECTION_OUTBOUND);
  s.Reject("X1", 2, v1::REJECTION_REASON_NO_NEED);
  s.Touch("X1", 5, kEmail, DIRECTION_OUTBOUND);
}

absl::Status AppendAll(log::EventLog& log, const std::vector<v1::Event>& events) {
  std::vector<log::Message> run;
  int32_t run_partition = -1;
  auto flush = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    LEADFLOW_RETURN_IF_ERROR(log.Append(run_partition, run).status());
    run.clear();
    return absl::OkStatus();
  };
  for (const v1::Event& e : events) {
    const int32_t p = log::PartitionForKey(e.partition_key(), log.partition_count());
    if (p != run_partition) {
      LEADFLOW_RETURN_IF_ERROR(flush());
      run_partition = p;
    }
    run.push_back({e.partition_key(), e.SerializeAsString()});
  }
  return flush();
}

absl::StatusOr<std::unique_ptr<projections::ViewStore>> BuildView(
    log::EventLog& log, projections::Projection& projection, const std::string& dir) {
  LEADFLOW_ASSIGN_OR_RETURN(std::unique_ptr<projections::ViewStore> store,
                            projections::OpenProjectionStore(dir, projection));
  LEADFLOW_RETURN_IF_ERROR(projection.Load(*store));
  projections::ProjectionRunner runner(&log, store.get(), &projection);
  LEADFLOW_RETURN_IF_ERROR(runner.CatchUp());
  return store;
}

}  // namespace leadflow::testing

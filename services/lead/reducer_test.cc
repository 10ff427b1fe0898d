#include "services/lead/reducer.h"

#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"

namespace leadflow::lead {
namespace {

using common::ToProto;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 0, 0), absl::UTCTimeZone());
const common::LeadIdScheme kIds("reducer-test-key");
const Identity kIdentity{.ids = &kIds, .phone_region = ""};
const std::string kAdaEmail = "ada@example.com";
const std::string kAda = kIds.ForEmail(kAdaEmail);
const std::string kBob = kIds.ForEmail("bob@example.com");

int next_command = 0;

v1::CommandMeta Meta(absl::Time at) {
  v1::CommandMeta m;
  m.set_command_id(absl::StrCat("cmd-", ++next_command));
  m.mutable_actor()->set_kind(v1::Actor::KIND_USER);
  m.mutable_actor()->set_id("alice");
  *m.mutable_occurred_at() = ToProto(at);
  return m;
}

v1::Money Eur(int64_t units) {
  v1::Money m;
  m.set_currency_code("EUR");
  m.set_amount_micros(units * 1'000'000);
  return m;
}

// ---- Valid commands, one builder each (tests then break one field at a time) ---------------

v1::Command Capture(absl::Time at, const std::string& email = kAdaEmail) {
  v1::Command c;
  auto* b = c.mutable_capture_lead();
  *b->mutable_meta() = Meta(at);
  b->mutable_person()->set_full_name("Ada Lovelace");
  b->set_company("Analytical Engines Ltd");
  b->set_email(email);
  b->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  b->set_temperature(v1::TEMPERATURE_WARM);
  return c;
}
v1::Command Inquiry(absl::Time at) {
  v1::Command c;
  *c.mutable_record_inquiry()->mutable_meta() = Meta(at);
  c.mutable_record_inquiry()->set_lead_id(kAda);
  c.mutable_record_inquiry()->set_note("asked for a price list");
  return c;
}
v1::Command UpdateContact(absl::Time at) {
  v1::Command c;
  *c.mutable_update_contact_details()->mutable_meta() = Meta(at);
  c.mutable_update_contact_details()->set_lead_id(kAda);
  c.mutable_update_contact_details()->set_title("CTO");
  return c;
}
v1::Command Assign(absl::Time at, const std::string& owner = "bob") {
  v1::Command c;
  *c.mutable_assign_lead()->mutable_meta() = Meta(at);
  c.mutable_assign_lead()->set_lead_id(kAda);
  c.mutable_assign_lead()->set_owner(owner);
  c.mutable_assign_lead()->set_team("emea");
  return c;
}
v1::Command SetTemp(absl::Time at) {
  v1::Command c;
  *c.mutable_set_temperature()->mutable_meta() = Meta(at);
  c.mutable_set_temperature()->set_lead_id(kAda);
  c.mutable_set_temperature()->set_temperature(v1::TEMPERATURE_HOT);
  return c;
}
v1::Command Interaction(absl::Time at, v1::Direction dir = v1::DIRECTION_OUTBOUND,
                        v1::InteractionKind kind = v1::INTERACTION_KIND_CALL) {
  v1::Command c;
  auto* b = c.mutable_log_interaction();
  *b->mutable_meta() = Meta(at);
  b->set_lead_id(kAda);
  b->set_kind(kind);
  b->set_direction(dir);
  b->set_outcome(v1::OUTCOME_CONNECTED);
  b->set_duration_seconds(300);
  return c;
}
v1::Command Schedule(absl::Time at, const std::string& id = "fu-1") {
  v1::Command c;
  auto* b = c.mutable_schedule_follow_up();
  *b->mutable_meta() = Meta(at);
  b->set_lead_id(kAda);
  b->set_follow_up_id(id);
  *b->mutable_due_at() = ToProto(at + absl::Hours(48));
  b->set_kind(v1::INTERACTION_KIND_CALL);
  return c;
}
v1::Command Complete(absl::Time at, const std::string& id = "fu-1") {
  v1::Command c;
  *c.mutable_complete_follow_up()->mutable_meta() = Meta(at);
  c.mutable_complete_follow_up()->set_lead_id(kAda);
  c.mutable_complete_follow_up()->set_follow_up_id(id);
  return c;
}
v1::Command Qualify(absl::Time at) {
  v1::Command c;
  auto* b = c.mutable_qualify_lead();
  *b->mutable_meta() = Meta(at);
  b->set_lead_id(kAda);
  *b->mutable_budget() = Eur(50'000);
  b->set_decision_maker("Ada Lovelace (CTO)");
  b->set_need("replace spreadsheets");
  *b->mutable_expected_decision_at() = ToProto(at + absl::Hours(24 * 30));
  return c;
}
v1::Command Stage(absl::Time at, v1::SalesStage stage = v1::SALES_STAGE_NEEDS_ANALYSIS) {
  v1::Command c;
  *c.mutable_change_stage()->mutable_meta() = Meta(at);
  c.mutable_change_stage()->set_lead_id(kAda);
  c.mutable_change_stage()->set_stage(stage);
  return c;
}
v1::Command Reject(absl::Time at) {
  v1::Command c;
  *c.mutable_reject_lead()->mutable_meta() = Meta(at);
  c.mutable_reject_lead()->set_lead_id(kAda);
  c.mutable_reject_lead()->set_reason(v1::REJECTION_REASON_NO_BUDGET);
  return c;
}
v1::Command Postpone(absl::Time at) {
  v1::Command c;
  *c.mutable_postpone_lead()->mutable_meta() = Meta(at);
  c.mutable_postpone_lead()->set_lead_id(kAda);
  *c.mutable_postpone_lead()->mutable_revisit_at() = ToProto(at + absl::Hours(24 * 90));
  c.mutable_postpone_lead()->set_reason("budget next quarter");
  return c;
}
v1::Command Disqualify(absl::Time at) {
  v1::Command c;
  *c.mutable_disqualify_lead()->mutable_meta() = Meta(at);
  c.mutable_disqualify_lead()->set_lead_id(kAda);
  c.mutable_disqualify_lead()->set_reason(v1::DISQUALIFICATION_REASON_NOT_TARGET_MARKET);
  return c;
}
v1::Command Reactivate(absl::Time at) {
  v1::Command c;
  *c.mutable_reactivate_lead()->mutable_meta() = Meta(at);
  c.mutable_reactivate_lead()->set_lead_id(kAda);
  return c;
}
v1::Command Merge(absl::Time at) {
  v1::Command c;
  *c.mutable_merge_lead()->mutable_meta() = Meta(at);
  c.mutable_merge_lead()->set_lead_id(kAda);
  c.mutable_merge_lead()->set_survivor_lead_id(kBob);
  return c;
}
v1::Command Convert(absl::Time at) {
  v1::Command c;
  auto* b = c.mutable_convert_lead();
  *b->mutable_meta() = Meta(at);
  b->set_lead_id(kAda);
  *b->mutable_deal_value() = Eur(42'000);
  b->set_contract_ref("C-2026-17");
  b->set_account_owner("carol");
  return c;
}
v1::Command Purchase(absl::Time at, v1::PurchaseKind kind) {
  v1::Command c;
  auto* b = c.mutable_record_purchase();
  *b->mutable_meta() = Meta(at);
  b->set_customer_id(common::CustomerIdForLead(common::LeadId(kAda)).value());
  b->set_kind(kind);
  *b->mutable_amount() = Eur(1'000);
  return c;
}
v1::Command Nps(absl::Time at, int score) {
  v1::Command c;
  *c.mutable_record_nps()->mutable_meta() = Meta(at);
  c.mutable_record_nps()->set_customer_id(common::CustomerIdForLead(common::LeadId(kAda)).value());
  c.mutable_record_nps()->set_score(score);
  return c;
}
v1::Command Profile(absl::Time at) {
  v1::Command c;
  *c.mutable_update_customer_profile()->mutable_meta() = Meta(at);
  c.mutable_update_customer_profile()->set_customer_id(
      common::CustomerIdForLead(common::LeadId(kAda)).value());
  c.mutable_update_customer_profile()->set_tax_id("PL1234567890");
  return c;
}

// ---- Given / when / then --------------------------------------------------------------------

class Aggregate {
 public:
  // Given: commands that must succeed; their events are applied.
  Aggregate& Given(const v1::Command& cmd) {
    auto events = When(cmd);
    EXPECT_TRUE(events.ok()) << "given " << cmd.ShortDebugString() << ": " << events.status();
    if (events.ok()) Apply(*events);
    return *this;
  }
  absl::StatusOr<std::vector<v1::Event>> When(const v1::Command& cmd,
                                              absl::Time now = kT0 + absl::Hours(24 * 365)) {
    DecideContext ctx{.now = now, .merge_survivor = &survivor, .identity = &kIdentity};
    return Decide(lead, customer, cmd, ctx);
  }
  void Apply(const std::vector<v1::Event>& events) {
    for (const auto& e : events) {
      absl::Status st = e.aggregate_type() == v1::AGGREGATE_TYPE_LEAD ? EvolveLead(lead, e)
                                                                      : EvolveCustomer(customer, e);
      ASSERT_TRUE(st.ok()) << st;
    }
  }
  LeadState lead;
  CustomerState customer;
  LeadState survivor;  // kBob, for merges
};

Aggregate InStatus(v1::LeadStatus status) {
  Aggregate a;
  {
    Aggregate bob;
    bob.Given(Capture(kT0, "bob@example.com"));
    a.survivor = bob.lead;
  }
  absl::Time t = kT0;
  auto next = [&t] { return t += absl::Hours(1); };
  a.Given(Capture(t));
  switch (status) {
    case v1::LEAD_STATUS_NEW:
      break;
    case v1::LEAD_STATUS_CONTACTED:
      a.Given(Interaction(next()));
      break;
    case v1::LEAD_STATUS_QUALIFIED:
      a.Given(Interaction(next())).Given(Qualify(next()));
      break;
    case v1::LEAD_STATUS_CONVERTED:
      a.Given(Interaction(next())).Given(Qualify(next())).Given(Convert(next()));
      break;
    case v1::LEAD_STATUS_REJECTED:
      a.Given(Interaction(next())).Given(Reject(next()));
      break;
    case v1::LEAD_STATUS_POSTPONED:
      a.Given(Interaction(next())).Given(Postpone(next()));
      break;
    case v1::LEAD_STATUS_DISQUALIFIED:
      a.Given(Disqualify(next()));
      break;
    case v1::LEAD_STATUS_MERGED:
      a.Given(Merge(next()));
      break;
    default:
      ADD_FAILURE() << "no recipe for " << StatusName(status);
  }
  EXPECT_EQ(a.lead.status, status);
  return a;
}

// ---- The full status x command table ---------------------------------------------------------

using v1::LEAD_STATUS_CONTACTED;
using v1::LEAD_STATUS_CONVERTED;
using v1::LEAD_STATUS_DISQUALIFIED;
using v1::LEAD_STATUS_MERGED;
using v1::LEAD_STATUS_NEW;
using v1::LEAD_STATUS_POSTPONED;
using v1::LEAD_STATUS_QUALIFIED;
using v1::LEAD_STATUS_REJECTED;

const std::vector<v1::LeadStatus> kAllStatuses = {
    LEAD_STATUS_NEW,      LEAD_STATUS_CONTACTED, LEAD_STATUS_QUALIFIED,    LEAD_STATUS_CONVERTED,
    LEAD_STATUS_REJECTED, LEAD_STATUS_POSTPONED, LEAD_STATUS_DISQUALIFIED, LEAD_STATUS_MERGED};

struct Row {
  std::string name;
  v1::Command (*make)(absl::Time);
  std::vector<v1::LeadStatus> allowed;
  // For a refusal from a non-terminal status: "<action> is allowed only from <list>".
  std::string rule;
};

const std::vector<v1::LeadStatus> kNonTerminal = {LEAD_STATUS_NEW,       LEAD_STATUS_CONTACTED,
                                                  LEAD_STATUS_QUALIFIED, LEAD_STATUS_REJECTED,
                                                  LEAD_STATUS_POSTPONED, LEAD_STATUS_DISQUALIFIED};

std::vector<Row> Table() {
  return {
      {"record_inquiry", Inquiry, kAllStatuses, ""},
      {"update_contact_details", UpdateContact, kNonTerminal, ""},
      {"assign_lead", [](absl::Time t) { return Assign(t); }, kNonTerminal, ""},
      {"set_temperature", SetTemp, kNonTerminal, ""},
      {"log_interaction", [](absl::Time t) { return Interaction(t); }, kNonTerminal, ""},
      {"schedule_follow_up", [](absl::Time t) { return Schedule(t); }, kNonTerminal, ""},
      {"qualify_lead",
       Qualify,
       {LEAD_STATUS_NEW, LEAD_STATUS_CONTACTED},
       "qualify is allowed only from NEW or CONTACTED"},
      {"change_stage",
       [](absl::Time t) { return Stage(t); },
       {LEAD_STATUS_QUALIFIED},
       "a stage change is allowed only from QUALIFIED"},
      {"reject_lead",
       Reject,
       {LEAD_STATUS_NEW, LEAD_STATUS_CONTACTED, LEAD_STATUS_QUALIFIED},
       "reject is allowed only from NEW, CONTACTED or QUALIFIED"},
      {"postpone_lead",
       Postpone,
       {LEAD_STATUS_NEW, LEAD_STATUS_CONTACTED, LEAD_STATUS_QUALIFIED},
       "postpone is allowed only from NEW, CONTACTED or QUALIFIED"},
      {"disqualify_lead",
       Disqualify,
       {LEAD_STATUS_NEW, LEAD_STATUS_CONTACTED},
       "disqualify is allowed only from NEW or CONTACTED"},
      {"reactivate_lead",
       Reactivate,
       {LEAD_STATUS_REJECTED, LEAD_STATUS_POSTPONED, LEAD_STATUS_DISQUALIFIED},
       "reactivate is allowed only from REJECTED, POSTPONED or DISQUALIFIED"},
      {"merge_lead", Merge, kNonTerminal, ""},
      {"convert_lead", Convert, {LEAD_STATUS_QUALIFIED}, "convert is allowed only from QUALIFIED"},
  };
}

v1::LeadStatus ExpectedStatusAfter(const std::string& name, v1::LeadStatus before,
                                   v1::LeadStatus before_exit) {
  if (name == "qualify_lead") return LEAD_STATUS_QUALIFIED;
  if (name == "reject_lead") return LEAD_STATUS_REJECTED;
  if (name == "postpone_lead") return LEAD_STATUS_POSTPONED;
  if (name == "disqualify_lead") return LEAD_STATUS_DISQUALIFIED;
  if (name == "reactivate_lead") return before_exit;
  if (name == "merge_lead") return LEAD_STATUS_MERGED;
  if (name == "convert_lead") return LEAD_STATUS_CONVERTED;
  if (name == "log_interaction" && before == LEAD_STATUS_NEW) return LEAD_STATUS_CONTACTED;
  return before;
}

TEST(LifecycleTableTest, EveryStatusTimesEveryCommand) {
  int allowed = 0, refused = 0;
  for (const Row& row : Table()) {
    for (v1::LeadStatus status : kAllStatuses) {
      SCOPED_TRACE(absl::StrCat(row.name, " from ", StatusName(status)));
      Aggregate a = InStatus(status);
      const v1::LeadStatus before_exit = a.lead.status_before_exit;
      const int64_t version = a.lead.version;
      v1::Command cmd = row.make(kT0 + absl::Hours(100));
      ASSERT_EQ(CommandName(cmd), row.name);
      auto events = a.When(cmd);
      bool should_allow =
          std::find(row.allowed.begin(), row.allowed.end(), status) != row.allowed.end();
      if (should_allow) {
        ++allowed;
        ASSERT_TRUE(events.ok()) << events.status();
        ASSERT_FALSE(events->empty());
        a.Apply(*events);
        EXPECT_EQ(StatusName(a.lead.status),
                  StatusName(ExpectedStatusAfter(row.name, status, before_exit)));
        continue;
      }
      ++refused;
      ASSERT_FALSE(events.ok());
      EXPECT_EQ(events.status().code(), absl::StatusCode::kFailedPrecondition);
      std::string expected;
      if (status == LEAD_STATUS_CONVERTED) {
        expected = absl::StrCat(row.name, ": lead ", kAda,
                                " is CONVERTED, a terminal status; record later business on "
                                "customer ",
                                common::CustomerIdForLead(common::LeadId(kAda)).value());
      } else if (status == LEAD_STATUS_MERGED) {
        expected = absl::StrCat(row.name, ": lead ", kAda,
                                " is MERGED, a terminal status; it was folded into lead ", kBob);
      } else {
        expected =
            absl::StrCat(row.name, ": lead ", kAda, " is ", StatusName(status), "; ", row.rule);
      }
      EXPECT_EQ(events.status().message(), expected);
      EXPECT_EQ(a.lead.version, version);
    }
  }
  // 14 commands x 8 statuses; the split is fixed by design §3.
  EXPECT_EQ(allowed + refused, 14 * 8);
  EXPECT_EQ(allowed, 8 + 6 * 5 + 2 + 1 + 3 + 3 + 2 + 3 + 6 + 1);
}

TEST(LifecycleTableTest, CompleteFollowUpNeedsAnOpenFollowUp) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  auto refused = a.When(Complete(kT0 + absl::Hours(5), "fu-9"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            absl::StrCat("complete_follow_up: lead ", kAda, " has no open follow-up 'fu-9'"));

  a.Given(Schedule(kT0 + absl::Hours(5)));
  ASSERT_EQ(a.lead.open_follow_ups.size(), 1u);
  auto again = a.When(Schedule(kT0 + absl::Hours(6)));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  a.Given(Complete(kT0 + absl::Hours(7)));
  EXPECT_TRUE(a.lead.open_follow_ups.empty());
}

// ---- Capture and deduplication ---------------------------------------------------------------

TEST(CaptureTest, EmitsNormalizedCaptureWithFullEnvelope) {
  Aggregate a;
  v1::Command cmd = Capture(kT0, "  Ada@Example.com ");
  cmd.mutable_capture_lead()->mutable_meta()->set_correlation_id("import-7");
  auto target = ResolveTarget(cmd, kIdentity);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->lead_id, kAda);
  auto events = a.When(cmd);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const v1::Event& e = (*events)[0];
  EXPECT_EQ(e.schema_version(), kCurrentSchemaVersion);
  EXPECT_EQ(e.aggregate_type(), v1::AGGREGATE_TYPE_LEAD);
  EXPECT_EQ(e.aggregate_id(), kAda);
  EXPECT_EQ(e.partition_key(), kAda);
  EXPECT_EQ(e.aggregate_version(), 1);
  EXPECT_EQ(common::FromProto(e.occurred_at()), kT0);
  EXPECT_EQ(e.actor().id(), "alice");
  EXPECT_EQ(e.command_id(), cmd.capture_lead().meta().command_id());
  EXPECT_EQ(e.correlation_id(), "import-7");
  EXPECT_EQ(e.command_type(), "capture_lead");
  EXPECT_TRUE(e.event_id().empty()) << "the writer stamps event ids";
  EXPECT_FALSE(e.has_recorded_at()) << "the writer stamps record time";
  EXPECT_EQ(e.lead_captured().email(), "ada@example.com");
  EXPECT_EQ(e.lead_captured().origin_type(), v1::ORIGIN_TYPE_NET) << "derived from web form";
  a.Apply(*events);
  EXPECT_EQ(a.lead.status, LEAD_STATUS_NEW);
  EXPECT_EQ(a.lead.captured_at, kT0);
}

TEST(CaptureTest, PhoneOnlyLeadGetsPhoneId) {
  v1::Command cmd = Capture(kT0);
  cmd.mutable_capture_lead()->clear_email();
  cmd.mutable_capture_lead()->set_phone("+48 123 456 789");
  auto target = ResolveTarget(cmd, kIdentity);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->lead_id, kIds.ForPhone("+48123456789"));
}

TEST(CaptureTest, OriginDefaultsFollowTheChannel) {
  for (auto [channel, origin] : std::vector<std::pair<v1::SourceChannel, v1::OriginType>>{
           {v1::SOURCE_CHANNEL_REFERRAL, v1::ORIGIN_TYPE_SEED},
           {v1::SOURCE_CHANNEL_COLD_CALL, v1::ORIGIN_TYPE_SPEAR},
           {v1::SOURCE_CHANNEL_EVENT, v1::ORIGIN_TYPE_SPEAR},
           {v1::SOURCE_CHANNEL_WEBINAR, v1::ORIGIN_TYPE_NET}}) {
    Aggregate a;
    v1::Command cmd = Capture(kT0);
    cmd.mutable_capture_lead()->set_source_channel(channel);
    auto events = a.When(cmd);
    ASSERT_TRUE(events.ok());
    EXPECT_EQ((*events)[0].lead_captured().origin_type(), origin);
  }
}

TEST(CaptureTest, KnownContactBecomesInquiryForTheOwner) {
  Aggregate a;
  a.Given(Capture(kT0)).Given(Assign(kT0 + absl::Hours(1), "bob"));
  v1::Command again = Capture(kT0 + absl::Hours(2), "ADA@example.com");
  again.mutable_capture_lead()->set_source_channel(v1::SOURCE_CHANNEL_WEBINAR);
  auto events = a.When(again);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].aggregate_version(), 3);
  ASSERT_TRUE((*events)[0].has_inquiry_received());
  EXPECT_EQ((*events)[0].inquiry_received().notify_owner(), "bob");
  EXPECT_EQ((*events)[0].inquiry_received().source_channel(), v1::SOURCE_CHANNEL_WEBINAR);
}

TEST(CaptureTest, KnownConvertedContactGoesToTheCustomer) {
  Aggregate a = InStatus(LEAD_STATUS_CONVERTED);
  auto events = a.When(Capture(kT0 + absl::Hours(50)));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const v1::Event& e = (*events)[0];
  EXPECT_EQ(e.aggregate_type(), v1::AGGREGATE_TYPE_CUSTOMER);
  EXPECT_EQ(e.aggregate_id(), common::CustomerIdForLead(common::LeadId(kAda)).value());
  EXPECT_EQ(e.partition_key(), kAda);
  EXPECT_EQ(e.aggregate_version(), 2);
  EXPECT_EQ(e.inquiry_received().notify_owner(), "carol");
  a.Apply(*events);
  EXPECT_EQ(a.customer.version, 2);
}

struct BadInput {
  std::string label;
  std::function<void(v1::Command&)> mutate;
  absl::StatusCode code;
  std::string message;
};

void ExpectRefusals(Aggregate& a, const std::function<v1::Command()>& make,
                    const std::vector<BadInput>& cases) {
  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.label);
    v1::Command cmd = make();
    c.mutate(cmd);
    const int64_t version = a.lead.version;
    auto events = a.When(cmd);
    ASSERT_FALSE(events.ok());
    EXPECT_EQ(events.status().code(), c.code) << events.status();
    EXPECT_EQ(events.status().message(), c.message);
    EXPECT_EQ(a.lead.version, version);
  }
}

TEST(CaptureTest, RefusesBadInputNamingTheField) {
  Aggregate a;
  using C = absl::StatusCode;
  auto cap = [](v1::Command& c) { return c.mutable_capture_lead(); };
  ExpectRefusals(
      a, [] { return Capture(kT0); },
      {
          {"no person", [&](v1::Command& c) { cap(c)->mutable_person()->set_full_name("  "); },
           C::kInvalidArgument,
           "capture_lead.person.full_name: required: a lead is a specific person (a company "
           "name alone is not a lead)"},
          {"switchboard only", [&](v1::Command& c) { cap(c)->clear_email(); }, C::kInvalidArgument,
           "capture_lead.email: a lead needs a personal channel: set email or phone (a company "
           "switchboard alone is not a lead)"},
          {"bad email", [&](v1::Command& c) { cap(c)->set_email("ada@"); }, C::kInvalidArgument,
           "capture_lead.email: not a valid email address (the domain has no '.')"},
          {"bad phone", [&](v1::Command& c) { cap(c)->set_phone("555-0100"); }, C::kInvalidArgument,
           "capture_lead.phone: not a valid phone number (must start with '+' or '00' and a "
           "country code (no default region is set))"},
          {"no source", [&](v1::Command& c) { cap(c)->clear_source_channel(); },
           C::kInvalidArgument, "capture_lead.source_channel: required"},
          {"unknown source",
           [&](v1::Command& c) { cap(c)->set_source_channel(static_cast<v1::SourceChannel>(99)); },
           C::kInvalidArgument, "capture_lead.source_channel: unknown value 99"},
          {"unknown temperature",
           [&](v1::Command& c) { cap(c)->set_temperature(static_cast<v1::Temperature>(7)); },
           C::kInvalidArgument, "capture_lead.temperature: unknown value 7"},
          {"negative cost", [&](v1::Command& c) { *cap(c)->mutable_acquisition_cost() = Eur(-5); },
           C::kInvalidArgument,
           "capture_lead.acquisition_cost.amount_micros: must not be negative (got -5000000)"},
          {"bad currency",
           [&](v1::Command& c) {
             *cap(c)->mutable_acquisition_cost() = Eur(5);
             cap(c)->mutable_acquisition_cost()->set_currency_code("euro");
           },
           C::kInvalidArgument,
           "capture_lead.acquisition_cost.currency_code: 'euro' is not an ISO 4217 currency "
           "code (e.g. EUR, USD, PLN)"},
          {"oversized note",
           [&](v1::Command& c) { cap(c)->set_interest_note(std::string(5000, 'x')); },
           C::kInvalidArgument,
           "capture_lead.interest_note: too long: 5000 bytes, the limit is 4096"},
          {"no command id", [&](v1::Command& c) { cap(c)->mutable_meta()->clear_command_id(); },
           C::kInvalidArgument, "capture_lead.meta.command_id: required"},
          {"command id with space",
           [&](v1::Command& c) { cap(c)->mutable_meta()->set_command_id("a b"); },
           C::kInvalidArgument,
           "capture_lead.meta.command_id: must be 1-128 printable ASCII characters without "
           "spaces"},
          {"no actor", [&](v1::Command& c) { cap(c)->mutable_meta()->clear_actor(); },
           C::kInvalidArgument, "capture_lead.meta.actor.id: required"},
          {"invalid timestamp",
           [&](v1::Command& c) { cap(c)->mutable_meta()->mutable_occurred_at()->set_nanos(-1); },
           C::kInvalidArgument,
           "capture_lead.meta.occurred_at: invalid timestamp (seconds=1772442000, nanos=-1)"},
          {"expected version of a new lead",
           [&](v1::Command& c) { cap(c)->mutable_meta()->set_expected_version(3); }, C::kAborted,
           absl::StrCat("capture_lead: expected version 3 but lead ", kAda, " is at version 0")},
          {"empty command", [&](v1::Command& c) { c.Clear(); }, C::kInvalidArgument,
           "command.body: no command set"},
      });
}

TEST(CaptureTest, RefusesBusinessTimeTooFarAhead) {
  Aggregate a;
  auto ok = a.When(Capture(kT0 + absl::Minutes(5)), /*now=*/kT0);
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto refused = a.When(Capture(kT0 + absl::Minutes(5) + absl::Seconds(1)), /*now=*/kT0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "capture_lead.meta.occurred_at: 2026-03-02T09:05:01.000Z is more than 5 minutes "
            "ahead of the server clock (2026-03-02T09:00:00.000Z)");
}

TEST(CaptureTest, UnsetBusinessTimeMeansNow) {
  Aggregate a;
  v1::Command cmd = Capture(kT0);
  cmd.mutable_capture_lead()->mutable_meta()->clear_occurred_at();
  auto events = a.When(cmd, /*now=*/kT0 + absl::Minutes(3));
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(common::FromProto((*events)[0].occurred_at()), kT0 + absl::Minutes(3));
}

// ---- Time rules ------------------------------------------------------------------------------

TEST(TimeRulesTest, NoLeadEventBeforeCapture) {
  Aggregate a;
  a.Given(Capture(kT0));
  auto refused = a.When(Interaction(kT0 - absl::Seconds(1)));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "log_interaction.meta.occurred_at: 2026-03-02T08:59:59.000Z is before the lead was "
            "captured (2026-03-02T09:00:00.000Z)");
}

TEST(TimeRulesTest, StatusChangesNeverGoBackButInteractionsMayBeLate) {
  Aggregate a;
  a.Given(Capture(kT0))
      .Given(Interaction(kT0 + absl::Hours(2)))  // CONTACTED at +2h
      .Given(Qualify(kT0 + absl::Hours(5)));     // QUALIFIED at +5h
  // A call logged late, for +3h, is fine: it does not change the status.
  auto late = a.When(Interaction(kT0 + absl::Hours(3)));
  EXPECT_TRUE(late.ok()) << late.status();
  // Rejecting at +4h would put REJECTED before QUALIFIED in business time.
  auto back = a.When(Reject(kT0 + absl::Hours(4)));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.status().message(),
            "reject_lead.meta.occurred_at: 2026-03-02T13:00:00.000Z is before "
            "2026-03-02T14:00:00.000Z, when the lead became QUALIFIED; a status change cannot "
            "go back in business time");
  auto same_instant = a.When(Reject(kT0 + absl::Hours(5)));
  EXPECT_TRUE(same_instant.ok()) << "at or after is allowed";
}

TEST(TimeRulesTest, PostponeNeedsARevisitAfterItself) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  v1::Command cmd = Postpone(kT0 + absl::Hours(10));
  *cmd.mutable_postpone_lead()->mutable_revisit_at() = ToProto(kT0 + absl::Hours(10));
  auto refused = a.When(cmd);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "postpone_lead.revisit_at: 2026-03-02T19:00:00.000Z must be after the postponement "
            "itself (2026-03-02T19:00:00.000Z)");
  cmd.mutable_postpone_lead()->clear_revisit_at();
  EXPECT_EQ(a.When(cmd).status().message(), "postpone_lead.revisit_at: required");
}

// ---- Other refusals ----------------------------------------------------------------------------

TEST(RefusalTest, UnknownLeadIsNotFound) {
  Aggregate a;
  auto refused = a.When(Qualify(kT0));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(refused.status().message(), absl::StrCat("qualify_lead: lead ", kAda, " not found"));
}

TEST(RefusalTest, MalformedLeadIdIsInvalid) {
  Aggregate a;
  v1::Command cmd = Qualify(kT0);
  cmd.mutable_qualify_lead()->set_lead_id("42");
  EXPECT_EQ(a.When(cmd).status().message(),
            "qualify_lead.lead_id: '42' is not a lead id (ld_ and 20 hex digits)");
  cmd.mutable_qualify_lead()->clear_lead_id();
  EXPECT_EQ(a.When(cmd).status().message(), "qualify_lead.lead_id: required");
}

TEST(RefusalTest, ExpectedVersionMismatchIsAborted) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);  // version 2
  v1::Command cmd = Qualify(kT0 + absl::Hours(9));
  cmd.mutable_qualify_lead()->mutable_meta()->set_expected_version(1);
  auto refused = a.When(cmd);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(refused.status().message(),
            absl::StrCat("qualify_lead: expected version 1 but lead ", kAda, " is at version 2"));
  auto payload = refused.status().GetPayload(kVersionConflictTypeUrl);
  ASSERT_TRUE(payload.has_value());
  v1::VersionConflict conflict;
  ASSERT_TRUE(conflict.ParseFromString(std::string(*payload)));
  EXPECT_EQ(conflict.current_version(), 2);
  EXPECT_EQ(conflict.expected_version(), 1);
  cmd.mutable_qualify_lead()->mutable_meta()->set_expected_version(2);
  EXPECT_TRUE(a.When(cmd).ok());
}

TEST(RefusalTest, QualificationNeedsBant) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  using C = absl::StatusCode;
  auto q = [](v1::Command& c) { return c.mutable_qualify_lead(); };
  ExpectRefusals(a, [] { return Qualify(kT0 + absl::Hours(9)); },
                 {
                     {"no budget", [&](v1::Command& c) { q(c)->clear_budget(); },
                      C::kInvalidArgument, "qualify_lead.budget: required"},
                     {"negative budget", [&](v1::Command& c) { *q(c)->mutable_budget() = Eur(-1); },
                      C::kInvalidArgument,
                      "qualify_lead.budget.amount_micros: must not be negative (got -1000000)"},
                     {"no authority", [&](v1::Command& c) { q(c)->clear_decision_maker(); },
                      C::kInvalidArgument, "qualify_lead.decision_maker: required"},
                     {"no need", [&](v1::Command& c) { q(c)->clear_need(); }, C::kInvalidArgument,
                      "qualify_lead.need: required"},
                     {"no timeline", [&](v1::Command& c) { q(c)->clear_expected_decision_at(); },
                      C::kInvalidArgument, "qualify_lead.expected_decision_at: required"},
                     {"unknown stage",
                      [&](v1::Command& c) { q(c)->set_stage(static_cast<v1::SalesStage>(42)); },
                      C::kInvalidArgument, "qualify_lead.stage: unknown value 42"},
                 });
}

TEST(RefusalTest, ConversionNeedsContractOrInvoiceAndAnOwner) {
  Aggregate a = InStatus(LEAD_STATUS_QUALIFIED);
  using C = absl::StatusCode;
  auto cv = [](v1::Command& c) { return c.mutable_convert_lead(); };
  ExpectRefusals(
      a, [] { return Convert(kT0 + absl::Hours(9)); },
      {
          {"no paper", [&](v1::Command& c) { cv(c)->clear_contract_ref(); }, C::kInvalidArgument,
           "convert_lead.contract_ref: a conversion needs a signed contract or an invoice: set "
           "contract_ref or invoice_ref"},
          {"negative deal", [&](v1::Command& c) { *cv(c)->mutable_deal_value() = Eur(-3); },
           C::kInvalidArgument,
           "convert_lead.deal_value.amount_micros: must not be negative (got -3000000)"},
          {"no owner anywhere", [&](v1::Command& c) { cv(c)->clear_account_owner(); },
           C::kInvalidArgument,
           "convert_lead.account_owner: required: the lead has no owner to inherit"},
      });
}

TEST(RefusalTest, MergeChecksTheSurvivor) {
  Aggregate a = InStatus(LEAD_STATUS_NEW);
  v1::Command self = Merge(kT0 + absl::Hours(3));
  self.mutable_merge_lead()->set_survivor_lead_id(kAda);
  EXPECT_EQ(a.When(self).status().message(),
            "merge_lead.survivor_lead_id: a lead cannot be merged into itself");
  Aggregate unknown_survivor = InStatus(LEAD_STATUS_NEW);
  unknown_survivor.survivor = LeadState{};
  auto nf = unknown_survivor.When(Merge(kT0 + absl::Hours(3)));
  EXPECT_EQ(nf.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(nf.status().message(), absl::StrCat("merge_lead: survivor lead ", kBob, " not found"));
}

TEST(RefusalTest, NoOpChangesAreRefused) {
  Aggregate a = InStatus(LEAD_STATUS_QUALIFIED);
  a.Given(Assign(kT0 + absl::Hours(10), "bob"));
  EXPECT_EQ(a.When(Assign(kT0 + absl::Hours(11), "bob")).status().message(),
            absl::StrCat("assign_lead: lead ", kAda, " is already assigned to 'bob'"));
  EXPECT_EQ(a.When(Stage(kT0 + absl::Hours(11), v1::SALES_STAGE_QUALIFICATION)).status().message(),
            absl::StrCat("change_stage: lead ", kAda, " is already in stage QUALIFICATION"));
}

// ---- Full paths ---------------------------------------------------------------------------------

TEST(PathTest, CaptureToCustomerWithPurchasesAndNps) {
  Aggregate a;
  absl::Time t = kT0;
  auto at = [&t] { return t += absl::Hours(6); };
  a.Given(Capture(t))
      .Given(Assign(at(), "bob"))
      .Given(Interaction(at()))
      .Given(Qualify(at()))
      .Given(Stage(at(), v1::SALES_STAGE_NEEDS_ANALYSIS))
      .Given(Interaction(at(), v1::DIRECTION_OUTBOUND, v1::INTERACTION_KIND_DEMO))
      .Given(Stage(at(), v1::SALES_STAGE_CLOSING));
  auto events = a.When(Convert(at()));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u) << "conversion is one atomic pair";
  EXPECT_TRUE((*events)[0].has_lead_converted());
  EXPECT_TRUE((*events)[1].has_customer_created());
  EXPECT_EQ((*events)[1].partition_key(), kAda) << "customer lives beside its lead";
  EXPECT_EQ((*events)[1].aggregate_version(), 1);
  EXPECT_EQ((*events)[1].customer_created().converted_at().seconds(),
            (*events)[0].occurred_at().seconds());
  a.Apply(*events);
  EXPECT_EQ(a.lead.status, LEAD_STATUS_CONVERTED);
  EXPECT_EQ(a.customer.customer_id, common::CustomerIdForLead(common::LeadId(kAda)).value());
  EXPECT_EQ(a.customer.account_owner, "carol");

  a.Given(Purchase(at(), v1::PURCHASE_KIND_FIRST)).Given(Profile(at()));
  auto second_first = a.When(Purchase(at(), v1::PURCHASE_KIND_FIRST));
  EXPECT_EQ(second_first.status().code(), absl::StatusCode::kFailedPrecondition);
  a.Given(Purchase(at(), v1::PURCHASE_KIND_UPSELL));
  auto nps = a.When(Nps(at(), 8));
  ASSERT_TRUE(nps.ok());
  EXPECT_EQ((*nps)[0].nps_recorded().category(), v1::NPS_CATEGORY_PASSIVE);
  EXPECT_EQ(a.When(Nps(at(), 11)).status().message(), "record_nps.score: must be 0 to 10 (got 11)");
  EXPECT_EQ(a.customer.version, 4);

  auto before = a.When(Nps(kT0, 9));
  EXPECT_EQ(before.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(before.status().message()),
              HasSubstr("record_nps.meta.occurred_at: 2026-03-02T09:00:00.000Z is before the "
                        "customer was created"));
}

TEST(PathTest, NpsCategoriesFollowTheStandardBands) {
  Aggregate a = InStatus(LEAD_STATUS_CONVERTED);
  std::map<int, v1::NpsCategory> expected = {
      {0, v1::NPS_CATEGORY_DETRACTOR}, {6, v1::NPS_CATEGORY_DETRACTOR},
      {7, v1::NPS_CATEGORY_PASSIVE},   {8, v1::NPS_CATEGORY_PASSIVE},
      {9, v1::NPS_CATEGORY_PROMOTER},  {10, v1::NPS_CATEGORY_PROMOTER}};
  for (auto [score, category] : expected) {
    auto e = a.When(Nps(kT0 + absl::Hours(50), score));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ((*e)[0].nps_recorded().category(), category) << score;
  }
}

TEST(PathTest, ReactivationRestoresStatusAndStage) {
  Aggregate a;
  absl::Time t = kT0;
  auto at = [&t] { return t += absl::Hours(1); };
  a.Given(Capture(t))
      .Given(Interaction(at()))
      .Given(Qualify(at()))
      .Given(Stage(at(), v1::SALES_STAGE_OBJECTION_HANDLING))
      .Given(Reject(at()));
  EXPECT_EQ(a.lead.stage, v1::SALES_STAGE_UNSPECIFIED);
  auto events = a.When(Reactivate(at()));
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].lead_reactivated().restored_status(), LEAD_STATUS_QUALIFIED);
  EXPECT_EQ((*events)[0].lead_reactivated().exited_from(), LEAD_STATUS_REJECTED);
  a.Apply(*events);
  EXPECT_EQ(a.lead.status, LEAD_STATUS_QUALIFIED);
  EXPECT_EQ(a.lead.stage, v1::SALES_STAGE_OBJECTION_HANDLING);
  // And again through a postponement: the revisit date is kept while postponed.
  a.Given(Postpone(at()));
  EXPECT_EQ(a.lead.revisit_at, t + absl::Hours(24 * 90));
  a.Given(Reactivate(at()));
  EXPECT_EQ(a.lead.status, LEAD_STATUS_QUALIFIED);
  EXPECT_EQ(a.lead.revisit_at, absl::InfinitePast());
}

TEST(PathTest, InboundInteractionDoesNotMakeContacted) {
  Aggregate a;
  a.Given(Capture(kT0)).Given(Interaction(kT0 + absl::Hours(1), v1::DIRECTION_INBOUND));
  EXPECT_EQ(a.lead.status, LEAD_STATUS_NEW);
  EXPECT_EQ(a.lead.interaction_count, 1);
  a.Given(Interaction(kT0 + absl::Hours(2)));
  EXPECT_EQ(a.lead.status, LEAD_STATUS_CONTACTED);
  EXPECT_EQ(a.lead.status_changed_at, kT0 + absl::Hours(2));
}

// ---- Evolve guards ------------------------------------------------------------------------------

TEST(EvolveTest, RefusesVersionGapsAndForeignEvents) {
  Aggregate a;
  a.Given(Capture(kT0));
  auto events = a.When(Interaction(kT0 + absl::Hours(1)));
  ASSERT_TRUE(events.ok());
  v1::Event gap = (*events)[0];
  gap.set_aggregate_version(5);
  LeadState before = a.lead;
  absl::Status st = EvolveLead(a.lead, gap);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("has version 5, expected 2"));
  EXPECT_EQ(a.lead.version, before.version) << "state untouched on error";

  v1::Event customer_event = gap;
  customer_event.set_aggregate_version(2);
  customer_event.set_aggregate_type(v1::AGGREGATE_TYPE_CUSTOMER);
  EXPECT_EQ(EvolveLead(a.lead, customer_event).code(), absl::StatusCode::kDataLoss);

  Aggregate other;
  auto other_capture = other.When(Capture(kT0, "bob@example.com"));
  ASSERT_TRUE(other_capture.ok());
  v1::Event recapture = (*other_capture)[0];
  recapture.set_aggregate_id(kAda);
  recapture.set_aggregate_version(2);
  EXPECT_THAT(std::string(EvolveLead(a.lead, recapture).message()), HasSubstr("captured twice"));
}

// ---- Hostile input: amounts, text, errors (integrity issue) ---------------------------------

absl::StatusOr<std::vector<v1::Event>> CaptureWith(const std::function<void(v1::CaptureLead*)>& f) {
  Aggregate a;
  v1::Command c = Capture(kT0);
  f(c.mutable_capture_lead());
  return a.When(c);
}

TEST(HostileInputTest, AmountsAreBoundedAtTenToTheFifteenMicros) {
  constexpr int64_t kBound = 1'000'000'000'000'000;  // 10^15 micros = 10^9 units
  auto cost = [](int64_t micros) {
    return CaptureWith([micros](v1::CaptureLead* b) {
      b->mutable_acquisition_cost()->set_currency_code("EUR");
      b->mutable_acquisition_cost()->set_amount_micros(micros);
    });
  };
  EXPECT_TRUE(cost(kBound).ok()) << cost(kBound).status();
  for (int64_t bad : {kBound + 1, std::numeric_limits<int64_t>::max()}) {
    auto refused = cost(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(),
                HasSubstr("capture_lead.acquisition_cost.amount_micros: more than"));
    EXPECT_THAT(refused.status().message(), HasSubstr("1000000000000000 micros"));
  }
  // Every other money field has the same bound.
  Aggregate q = InStatus(LEAD_STATUS_CONTACTED);
  v1::Command qualify = Qualify(kT0 + absl::Hours(10));
  qualify.mutable_qualify_lead()->mutable_budget()->set_amount_micros(kBound + 1);
  EXPECT_THAT(std::string(q.When(qualify).status().message()),
              HasSubstr("qualify_lead.budget.amount_micros: more than"));
  Aggregate c = InStatus(LEAD_STATUS_QUALIFIED);
  v1::Command convert = Convert(kT0 + absl::Hours(10));
  convert.mutable_convert_lead()->mutable_deal_value()->set_amount_micros(kBound + 1);
  EXPECT_THAT(std::string(c.When(convert).status().message()),
              HasSubstr("convert_lead.deal_value.amount_micros: more than"));
  Aggregate p = InStatus(LEAD_STATUS_CONVERTED);
  v1::Command purchase = Purchase(kT0 + absl::Hours(10), v1::PURCHASE_KIND_FIRST);
  purchase.mutable_record_purchase()->mutable_amount()->set_amount_micros(kBound + 1);
  EXPECT_THAT(std::string(p.When(purchase).status().message()),
              HasSubstr("record_purchase.amount.amount_micros: more than"));
}

TEST(HostileInputTest, CurrencyCodesMustBeIso4217) {
  for (const char* ok : {"EUR", "USD", "PLN", "MYR", "TRY", "JPY", "CHF"}) {
    auto r = CaptureWith([ok](v1::CaptureLead* b) {
      *b->mutable_acquisition_cost() = Eur(5);
      b->mutable_acquisition_cost()->set_currency_code(ok);
    });
    EXPECT_TRUE(r.ok()) << ok << ": " << r.status();
  }
  for (const char* bad : {"XYZ", "ABC", "EUX", "eur", "EURO", ""}) {
    auto r = CaptureWith([bad](v1::CaptureLead* b) {
      *b->mutable_acquisition_cost() = Eur(5);
      b->mutable_acquisition_cost()->set_currency_code(bad);
    });
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("capture_lead.acquisition_cost.currency_code:"));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("ISO 4217"));
  }
}

TEST(HostileInputTest, ARevisitMoreThanTenYearsAheadIsRefused) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  const absl::Time at = kT0 + absl::Hours(10);
  v1::Command ok = Postpone(at);
  *ok.mutable_postpone_lead()->mutable_revisit_at() = ToProto(at + absl::Hours(24 * 365 * 9));
  EXPECT_TRUE(a.When(ok).ok());
  v1::Command far = Postpone(at);
  *far.mutable_postpone_lead()->mutable_revisit_at() = ToProto(at + absl::Hours(24 * 3660));
  auto refused = a.When(far);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("postpone_lead.revisit_at: "));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("more than 10 years after"));
}

TEST(HostileInputTest, ControlCharactersAreRefusedInIdentifiersAndSingleLineText) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  const absl::Time at = kT0 + absl::Hours(10);
  struct Case {
    std::string label;
    v1::Command command;
    std::string field;
  };
  std::vector<Case> cases;
  for (const std::string& bad :
       {std::string("Qz\0Qz", 5), std::string("Qz\x01Qz"), std::string("Qz\tQz"),
        std::string("Qz\nQz"), std::string("Qz\x7fQz"), std::string("Qz\xc2\x85Qz"),  // U+0085
        std::string("Qz\xe2\x80\xaeQz"),                                              // U+202E RLO
        std::string("Qz\xe2\x81\xa6Qz")}) {                                           // U+2066 LRI
    v1::Command assign = Assign(at, bad);
    cases.push_back({"owner", assign, "assign_lead.owner"});
    v1::Command team = Assign(at, "bob");
    team.mutable_assign_lead()->set_team(bad);
    cases.push_back({"team", team, "assign_lead.team"});
    v1::Command actor = Assign(at, "bob");
    actor.mutable_assign_lead()->mutable_meta()->mutable_actor()->set_id(bad);
    cases.push_back({"actor", actor, "assign_lead.meta.actor.id"});
    v1::Command name = UpdateContact(at);
    name.mutable_update_contact_details()->set_full_name(bad);
    cases.push_back({"full_name", name, "update_contact_details.full_name"});
    v1::Command follow = Schedule(at);
    follow.mutable_schedule_follow_up()->set_assignee(bad);
    cases.push_back({"assignee", follow, "schedule_follow_up.assignee"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label + ": " + absl::CHexEscape(c.command.ShortDebugString()));
    auto refused = a.When(c.command);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr(c.field + ": "));
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("control"));
    EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("Qz")))
        << "the value is not quoted";
  }
}

TEST(HostileInputTest, NotesKeepNewlinesAndTabsButNoOtherControls) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  const absl::Time at = kT0 + absl::Hours(10);
  v1::Command ok = Interaction(at);
  ok.mutable_log_interaction()->set_notes("line one\nline two\r\n\tindented");
  EXPECT_TRUE(a.When(ok).ok());
  for (const std::string& bad : {std::string("a\0b", 3), std::string("a\x1b[31mb"),
                                 std::string("a\xe2\x80\xae"
                                             "b")}) {
    v1::Command note = Interaction(at);
    note.mutable_log_interaction()->set_notes(bad);
    auto refused = a.When(note);
    ASSERT_FALSE(refused.ok()) << absl::CHexEscape(bad);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("log_interaction.notes: "));
  }
}

TEST(HostileInputTest, EvolveStillReplaysOldEventsHoldingControlCharacters) {
  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  auto events = a.When(Assign(kT0 + absl::Hours(10), "bob"));
  ASSERT_TRUE(events.ok());
  (*events)[0].mutable_lead_assigned()->set_owner(std::string("bo\0b", 4));
  a.Apply(*events);
  EXPECT_EQ(a.lead.owner, std::string("bo\0b", 4));
}

TEST(HostileInputTest, ErrorsNeverQuotePersonalValuesAndQuoteOthersOnlyAsAShortPrefix) {
  const std::string huge_email = std::string(100'000, 'a') + "@";
  auto email = CaptureWith([&](v1::CaptureLead* b) { b->set_email(huge_email); });
  ASSERT_FALSE(email.ok());
  EXPECT_THAT(std::string(email.status().message()), HasSubstr("capture_lead.email: "));
  EXPECT_LT(email.status().message().size(), 200u);
  auto named = CaptureWith([](v1::CaptureLead* b) { b->set_email("ada.lovelace@"); });
  EXPECT_THAT(std::string(named.status().message()), Not(HasSubstr("lovelace")));
  auto phone = CaptureWith([](v1::CaptureLead* b) { b->set_phone("555-0100-call-me"); });
  ASSERT_FALSE(phone.ok());
  EXPECT_THAT(std::string(phone.status().message()), HasSubstr("capture_lead.phone: "));
  EXPECT_THAT(std::string(phone.status().message()), Not(HasSubstr("555")));

  Aggregate a = InStatus(LEAD_STATUS_CONTACTED);
  v1::Command bad_id = Assign(kT0 + absl::Hours(10), "bob");
  bad_id.mutable_assign_lead()->set_lead_id(std::string(100'000, 'z'));
  auto id = a.When(bad_id);
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("assign_lead.lead_id: "));
  EXPECT_LT(id.status().message().size(), 200u);
  v1::Command long_owner = Assign(kT0 + absl::Hours(10), std::string(100'000, 'o'));
  auto owner = a.When(long_owner);
  ASSERT_FALSE(owner.ok());
  EXPECT_LT(owner.status().message().size(), 200u);
}

TEST(HostileInputTest, AReturningContactBeforeTheConversionIsRecordedOnTheLead) {
  // InStatus: captured at t0, contacted +1h, qualified +2h, converted +3h.
  Aggregate a = InStatus(LEAD_STATUS_CONVERTED);
  auto late_form = a.When(Capture(kT0 + absl::Minutes(150)));  // a web form imported late
  ASSERT_TRUE(late_form.ok()) << late_form.status();
  ASSERT_EQ(late_form->size(), 1u);
  const v1::Event& e = (*late_form)[0];
  EXPECT_TRUE(e.has_inquiry_received());
  EXPECT_EQ(e.aggregate_type(), v1::AGGREGATE_TYPE_LEAD);
  EXPECT_EQ(e.aggregate_id(), kAda);
  a.Apply(*late_form);
  EXPECT_EQ(a.lead.status, LEAD_STATUS_CONVERTED) << "an inquiry changes no status";
  // The same through RecordInquiry; and after the conversion it goes to the customer.
  v1::Command inquiry = Inquiry(kT0 + absl::Minutes(170));
  EXPECT_TRUE(a.When(inquiry).ok()) << a.When(inquiry).status();
  auto after = a.When(Capture(kT0 + absl::Hours(50)));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)[0].aggregate_type(), v1::AGGREGATE_TYPE_CUSTOMER);
  // Before the capture itself there was no lead to inquire about.
  auto before = a.When(Capture(kT0 - absl::Minutes(1)));
  ASSERT_FALSE(before.ok());
  EXPECT_THAT(std::string(before.status().message()), HasSubstr("before the lead was captured"));
}

// ---- Contract shape -----------------------------------------------------------------------------

TEST(ContractTest, EveryCommandHasMetaFirstAndATarget) {
  const auto* oneof = v1::Command::descriptor()->FindOneofByName("body");
  ASSERT_EQ(oneof->field_count(), 20);
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* body = oneof->field(i)->message_type();
    SCOPED_TRACE(body->full_name());
    const auto* meta = body->FindFieldByNumber(1);
    ASSERT_NE(meta, nullptr);
    EXPECT_EQ(meta->name(), "meta");
    EXPECT_EQ(meta->message_type(), v1::CommandMeta::descriptor());
    if (body != v1::CaptureLead::descriptor()) {
      EXPECT_TRUE(body->FindFieldByName("lead_id") != nullptr ||
                  body->FindFieldByName("customer_id") != nullptr);
    }
  }
}

// The lifecycle rules the views share: which event moves the status where, and which marks
// which milestone.
TEST(LifecycleRulesTest, StatusAfterAndMilestonesReached) {
  auto event = [](auto set) {
    v1::Event e;
    set(e);
    return e;
  };
  const v1::Event captured = event([](v1::Event& e) { e.mutable_lead_captured(); });
  const v1::Event outbound = event([](v1::Event& e) {
    e.mutable_interaction_logged()->set_direction(v1::DIRECTION_OUTBOUND);
    e.mutable_interaction_logged()->set_kind(v1::INTERACTION_KIND_DEMO);
  });
  const v1::Event inbound_offer = event([](v1::Event& e) {
    e.mutable_interaction_logged()->set_direction(v1::DIRECTION_INBOUND);
    e.mutable_interaction_logged()->set_kind(v1::INTERACTION_KIND_OFFER_SENT);
  });
  const v1::Event qualified = event([](v1::Event& e) { e.mutable_lead_qualified(); });
  const v1::Event reactivated = event([](v1::Event& e) {
    e.mutable_lead_reactivated()->set_restored_status(v1::LEAD_STATUS_CONTACTED);
  });
  const v1::Event assigned = event([](v1::Event& e) { e.mutable_lead_assigned(); });

  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_UNSPECIFIED, captured), v1::LEAD_STATUS_NEW);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_NEW, outbound), v1::LEAD_STATUS_CONTACTED);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_QUALIFIED, outbound), v1::LEAD_STATUS_QUALIFIED);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_NEW, inbound_offer), v1::LEAD_STATUS_NEW);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_CONTACTED, qualified), v1::LEAD_STATUS_QUALIFIED);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_REJECTED, reactivated), v1::LEAD_STATUS_CONTACTED);
  EXPECT_EQ(StatusAfter(v1::LEAD_STATUS_QUALIFIED, assigned), v1::LEAD_STATUS_QUALIFIED);

  EXPECT_EQ(MilestonesReached(captured), 1u << kCaptured);
  EXPECT_EQ(MilestonesReached(outbound), (1u << kContacted) | (1u << kPresented));
  EXPECT_EQ(MilestonesReached(inbound_offer), 1u << kProposal);
  EXPECT_EQ(MilestonesReached(qualified), 1u << kQualified);
  EXPECT_EQ(MilestonesReached(assigned), 0u);
  EXPECT_TRUE(Reaches(MilestonesReached(outbound), kPresented));
}

}  // namespace
}  // namespace leadflow::lead

// Views fed events that the reducer refuses today but that an older log may hold: amounts up to
// int64 max and control characters in identifiers (the reducer's bounds came later; Evolve still
// replays such events). Totals never wrap, and no value can collide with a key separator.
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "tests/support/sales_script.h"

namespace leadflow {
namespace {

using testing::Eur;
using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
const absl::Time kT0 = absl::FromCivil(absl::CivilDay(2026, 1, 5), absl::UTCTimeZone());

class HostileRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(::testing::TempDir()) /
        absl::StrCat("hostile_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto log =
        log::EmbeddedLog::Open({.dir = (dir_ / "log").string(), .partitions = 4, .sync = false});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
  }
  void TearDown() override {
    stores_.clear();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Appends `events` (once) and builds `projection`'s view from the log.
  void Build(const std::vector<v1::Event>& events, projections::Projection& projection) {
    if (!appended_) {
      ASSERT_TRUE(testing::AppendAll(*log_, events).ok());
    }
    appended_ = true;
    auto store = testing::BuildView(*log_, projection, (dir_ / projection.name()).string());
    ASSERT_TRUE(store.ok()) << store.status();
    stores_.push_back(std::move(*store));
  }
  projections::ViewStore* store(size_t i) { return stores_[i].get(); }

  std::filesystem::path dir_;
  std::unique_ptr<log::EventLog> log_;
  std::vector<std::unique_ptr<projections::ViewStore>> stores_;
  bool appended_ = false;
};

v1::Command Command(testing::SalesScript& s, const std::string& name, double at) {
  v1::Command c;
  v1::CommandMeta* m = c.mutable_schedule_follow_up()->mutable_meta();
  m->set_command_id(absl::StrCat("hostile-", name, "-", at));
  m->mutable_actor()->set_id("fixture");
  *m->mutable_occurred_at() = common::ToProto(s.Time(name, at));
  return c;
}

TEST_F(HostileRowsTest, PipelineAndCostTotalsThatDoNotFitAreOutOfRangeNeverWrapped) {
  testing::SalesScript s(kT0);
  for (const char* name : {"a", "b"}) {
    s.Capture(name, 0, v1::SOURCE_CHANNEL_WEB_FORM, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_WARM, "",
              Eur(10));
    s.Qualify(name, 1, Eur(5000));
  }
  ASSERT_TRUE(s.error().ok()) << s.error();
  std::vector<v1::Event> events = s.events();
  for (v1::Event& e : events) {
    if (e.has_lead_captured())
      e.mutable_lead_captured()->mutable_acquisition_cost()->set_amount_micros(kMax);
    if (e.has_lead_qualified())
      e.mutable_lead_qualified()->mutable_budget()->set_amount_micros(kMax);
  }
  projections::FunnelProjection funnel;
  Build(events, funnel);

  auto pipeline = funnel.Pipeline(v1::PipelineRequest());
  ASSERT_FALSE(pipeline.ok()) << pipeline->ShortDebugString();
  EXPECT_EQ(pipeline.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr("EUR"));

  v1::CohortFunnelRequest cohort;
  *cohort.mutable_captured_from() = common::ToProto(kT0);
  *cohort.mutable_captured_to() = common::ToProto(kT0 + absl::Hours(24));
  auto report = funnel.Cohort(cohort);
  ASSERT_FALSE(report.ok()) << report->ShortDebugString();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("EUR"));
}

TEST_F(HostileRowsTest, ATotalThatFitsIsExactEvenNearTheLimit) {
  testing::SalesScript s(kT0);
  s.Capture("a", 0, v1::SOURCE_CHANNEL_WEB_FORM, v1::ORIGIN_TYPE_NET, v1::TEMPERATURE_WARM, "",
            Eur(10));
  s.Qualify("a", 1, Eur(5000));
  ASSERT_TRUE(s.error().ok()) << s.error();
  std::vector<v1::Event> events = s.events();
  for (v1::Event& e : events) {
    if (e.has_lead_qualified())
      e.mutable_lead_qualified()->mutable_budget()->set_amount_micros(kMax);
  }
  projections::FunnelProjection funnel;
  Build(events, funnel);
  auto pipeline = funnel.Pipeline(v1::PipelineRequest());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  ASSERT_EQ(pipeline->total().money_size(), 1);
  EXPECT_EQ(pipeline->total().money(0).budget_micros(), kMax);
  EXPECT_EQ(pipeline->total().money(0).weighted_micros(), kMax / 10);  // QUALIFICATION: 10 %
}

TEST_F(HostileRowsTest, PurchaseTotalsThatDoNotFitAreOutOfRangeNeverWrapped) {
  testing::SalesScript s(kT0);
  s.Capture("a", 0, v1::SOURCE_CHANNEL_WEB_FORM);
  s.Assign("a", 1, "ann");
  s.Qualify("a", 2);
  s.Convert("a", 3);
  for (int i = 0; i < 2; ++i) {
    v1::Command c = Command(s, "a", 4 + i);
    v1::CommandMeta meta = c.schedule_follow_up().meta();
    v1::RecordPurchase* p = c.mutable_record_purchase();
    *p->mutable_meta() = meta;
    p->set_customer_id(common::CustomerIdForLead(common::LeadId(s.Id("a"))).value());
    p->set_kind(i == 0 ? v1::PURCHASE_KIND_FIRST : v1::PURCHASE_KIND_REPEAT);
    *p->mutable_amount() = Eur(100);
    ASSERT_TRUE(s.Try(c).ok());
  }
  ASSERT_TRUE(s.error().ok()) << s.error();
  std::vector<v1::Event> events = s.events();
  for (v1::Event& e : events) {
    if (e.has_purchase_recorded()) {
      e.mutable_purchase_recorded()->set_kind(v1::PURCHASE_KIND_REPEAT);
      e.mutable_purchase_recorded()->mutable_amount()->set_amount_micros(kMax);
    }
  }
  projections::CustomerProjection customers;
  Build(events, customers);
  projections::CustomerQueries queries(store(0));
  v1::GetCustomerRequest get;
  get.set_lead_id(s.Id("a"));
  auto customer = queries.Get(get);
  ASSERT_FALSE(customer.ok()) << customer->ShortDebugString();
  EXPECT_EQ(customer.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(customer.status().message()), HasSubstr("EUR"));
}

TEST_F(HostileRowsTest, AControlCharacterInAnOwnerNeverBreaksAnotherOwnersListing) {
  testing::SalesScript s(kT0);
  // "alice" has an overdue follow-up and a customer; another lead's assignee and another
  // customer's account owner start with "alice" and hold a NUL (an old event).
  for (const char* name : {"a", "b"}) {
    s.Capture(name, 0, v1::SOURCE_CHANNEL_WEB_FORM);
    s.Assign(name, 1, "alice");
    v1::Command c = Command(s, name, 2);
    v1::ScheduleFollowUp* f = c.mutable_schedule_follow_up();
    f->set_lead_id(s.Id(name));
    f->set_follow_up_id("call-back");
    *f->mutable_due_at() = common::ToProto(s.Time(name, 3));
    f->set_assignee("alice");
    ASSERT_TRUE(s.Try(c).ok());
    s.Qualify(name, 4);
    s.Convert(name, 5);
  }
  ASSERT_TRUE(s.error().ok()) << s.error();
  const std::string evil = std::string("alice\0", 6) + std::string(8, '\x7f') + "ld_zz";
  std::vector<v1::Event> events = s.events();
  for (v1::Event& e : events) {
    if (e.partition_key() != s.Id("b")) continue;
    if (e.has_follow_up_scheduled()) e.mutable_follow_up_scheduled()->set_assignee(evil);
    if (e.has_lead_converted()) e.mutable_lead_converted()->set_account_owner(evil);
    if (e.has_customer_created()) e.mutable_customer_created()->set_account_owner(evil);
  }
  projections::LeadProjection leads;
  projections::CustomerProjection customers;
  Build(events, leads);
  Build(events, customers);

  projections::LeadQueries lead_queries(store(0));
  v1::ListOverdueFollowUpsRequest overdue;
  overdue.set_owner("alice");
  auto due = lead_queries.Overdue(overdue, kT0 + absl::Hours(24 * 30));
  ASSERT_TRUE(due.ok()) << due.status();
  ASSERT_EQ(due->follow_ups_size(), 1);
  EXPECT_EQ(due->follow_ups(0).lead_id(), s.Id("a"));
  overdue.set_owner(evil);
  due = lead_queries.Overdue(overdue, kT0 + absl::Hours(24 * 30));
  ASSERT_TRUE(due.ok()) << due.status();
  ASSERT_EQ(due->follow_ups_size(), 1);
  EXPECT_EQ(due->follow_ups(0).lead_id(), s.Id("b"));

  projections::CustomerQueries customer_queries(store(1));
  v1::ListCustomersRequest list;
  list.set_account_owner("alice");
  auto owned = customer_queries.List(list);
  ASSERT_TRUE(owned.ok()) << owned.status();
  ASSERT_EQ(owned->customers_size(), 1);
  EXPECT_EQ(owned->customers(0).lead_id(), s.Id("a"));
  list.set_account_owner(evil);
  owned = customer_queries.List(list);
  ASSERT_TRUE(owned.ok()) << owned.status();
  ASSERT_EQ(owned->customers_size(), 1);
  EXPECT_EQ(owned->customers(0).lead_id(), s.Id("b"));
}

// An old log in which lead B took lead A's email and then changed it again (the writer now
// refuses the first step): the email still finds A, the lead that holds it.
TEST_F(HostileRowsTest, AContactIndexEntryIsOnlyRemovedByTheLeadThatOwnsIt) {
  testing::SalesScript s(kT0);
  s.Capture("a", 0, v1::SOURCE_CHANNEL_WEB_FORM);
  s.Capture("b", 1, v1::SOURCE_CHANNEL_WEB_FORM);
  for (const std::string& email : {std::string("a@example.com"), std::string("b2@example.com")}) {
    v1::Command c = Command(s, "b", email == "a@example.com" ? 2 : 3);
    v1::CommandMeta meta = c.schedule_follow_up().meta();
    v1::UpdateContactDetails* u = c.mutable_update_contact_details();
    *u->mutable_meta() = meta;
    u->set_lead_id(s.Id("b"));
    u->set_email(email);
    ASSERT_TRUE(s.Try(c).ok());
  }
  ASSERT_TRUE(s.error().ok()) << s.error();
  // Each event in a batch of its own, as a live view that keeps up would apply them.
  projections::LeadProjection leads;
  std::vector<v1::Event> events = s.events();
  ASSERT_TRUE(testing::AppendAll(*log_, {events.front()}).ok());
  appended_ = true;
  Build({}, leads);
  for (size_t i = 1; i < events.size(); ++i) {
    ASSERT_TRUE(testing::AppendAll(*log_, {events[i]}).ok());
    projections::ProjectionRunner runner(log_.get(), store(0), &leads);
    ASSERT_TRUE(runner.CatchUp().ok());
  }
  projections::LeadQueries queries(store(0));
  v1::FindLeadRequest find;
  find.set_email("a@example.com");
  auto found = queries.Find(find);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->lead_id(), s.Id("a"));
  find.set_email("b2@example.com");
  found = queries.Find(find);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->lead_id(), s.Id("b"));
}

}  // namespace
}  // namespace leadflow

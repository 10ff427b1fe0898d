// The funnel view against the hand-computed fixture (tests/support/sales_script.h has the lead
// table; the arithmetic is written next to each expectation), its bad inputs, and rebuilds.
#include "projections/funnel/funnel_view.h"

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "tests/support/sales_script.h"

namespace leadflow::projections {
namespace {

using ::testing::HasSubstr;
using testing::kDay;

constexpr int64_t kHour = 3'600'000;  // ms

const absl::Time kT0 = absl::FromCivil(absl::CivilDay(2026, 1, 5), absl::UTCTimeZone());

google::protobuf::Timestamp Day(double d) { return common::ToProto(kT0 + absl::Hours(24 * d)); }

// A distribution in hours: count, sum, p50, p90, min, max.
void ExpectHours(const v1::Distribution& d, int64_t count, int64_t sum, int64_t p50, int64_t p90,
                 int64_t min, int64_t max) {
  SCOPED_TRACE(d.name());
  EXPECT_EQ(d.unit(), "ms");
  EXPECT_EQ(d.count(), count);
  EXPECT_EQ(d.sum(), sum * kHour);
  EXPECT_DOUBLE_EQ(d.mean(), count == 0 ? 0.0 : static_cast<double>(sum * kHour) / count);
  EXPECT_EQ(d.p50(), p50 * kHour);
  EXPECT_EQ(d.p90(), p90 * kHour);
  EXPECT_EQ(d.min(), min * kHour);
  EXPECT_EQ(d.max(), max * kHour);
}

void ExpectCounts(const v1::FunnelGroup& g, std::array<int64_t, 6> want) {
  SCOPED_TRACE(g.split_value());
  EXPECT_EQ(g.captured(), want[0]);
  EXPECT_EQ(g.contacted(), want[1]);
  EXPECT_EQ(g.qualified(), want[2]);
  EXPECT_EQ(g.presented(), want[3]);
  EXPECT_EQ(g.proposal(), want[4]);
  EXPECT_EQ(g.converted(), want[5]);
}

class FunnelFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("funnel_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    testing::SalesScript script(kT0);
    testing::WriteFixtureHistory(script);
    ASSERT_TRUE(script.error().ok()) << script.error();
    auto log =
        log::EmbeddedLog::Open({.dir = (dir_ / "log").string(), .partitions = 4, .sync = false});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    ASSERT_TRUE(testing::AppendAll(*log_, script.events()).ok());
    auto store = testing::BuildView(*log_, funnel_, (dir_ / "view").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::CohortFunnelReport Cohort(const std::string& split = "",
                                std::optional<int> within_days = std::nullopt) {
    v1::CohortFunnelRequest req;
    *req.mutable_captured_from() = Day(0);
    *req.mutable_captured_to() = Day(5);
    req.set_split(split);
    if (within_days.has_value()) req.set_within_days(*within_days);
    auto report = funnel_.Cohort(req);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : v1::CohortFunnelReport();
  }

  std::filesystem::path dir_;
  std::unique_ptr<log::EventLog> log_;
  FunnelProjection funnel_;
  std::unique_ptr<ViewStore> store_;
};

TEST_F(FunnelFixtureTest, CohortTotals) {
  const v1::FunnelGroup t = Cohort().total();
  // Captured in [d0, d5): W1-W7, R1-R3 = 10 (R4 merged: left out). Reached (hours after
  // capture): W1 1/5/6/8/10, W2 2/4/10/15/20, W3 3/6/12*/12/20, W4 1/2/4/25/30,
  // W5 4*/4/40*/40*/40, W6 5, R1 1/3/10*/10*/10, R2 2/50/60*/60*/60, R3 24 (* = reached
  // through a later milestone).
  ExpectCounts(t, {10, 9, 7, 7, 7, 7});
  ASSERT_EQ(t.steps_size(), 5);
  EXPECT_EQ(t.steps(0).from(), "captured");
  EXPECT_EQ(t.steps(0).to(), "contacted");
  EXPECT_DOUBLE_EQ(t.steps(0).rate(), 9.0 / 10);
  EXPECT_DOUBLE_EQ(t.steps(1).rate(), 7.0 / 9);
  EXPECT_DOUBLE_EQ(t.steps(2).rate(), 1.0);
  EXPECT_DOUBLE_EQ(t.conversion_rate(), 0.7);
  ASSERT_EQ(t.timings_size(), 6);
  // captured->contacted: 1,1,1,2,2,3,4,5,24 (n=9, sum 43): p50 = 5th = 2, p90 = 9th = 24.
  EXPECT_EQ(t.timings(0).name(), "captured->contacted");
  ExpectHours(t.timings(0), 9, 43, 2, 24, 1, 24);
  // contacted->qualified: 0,1,2,2,3,4,48 (n=7, sum 60): p50 = 4th = 2, p90 = 7th = 48.
  ExpectHours(t.timings(1), 7, 60, 2, 48, 0, 48);
  // qualified->presented: 1,2,6,6,7,10,36 (sum 68): p50 = 6, p90 = 36.
  ExpectHours(t.timings(2), 7, 68, 6, 36, 1, 36);
  // presented->proposal: 0,0,0,0,2,5,21 (sum 28): p50 = 0, p90 = 21.
  ExpectHours(t.timings(3), 7, 28, 0, 21, 0, 21);
  // proposal->converted: 0,0,0,2,5,5,8 (sum 20): p50 = 2, p90 = 8.
  ExpectHours(t.timings(4), 7, 20, 2, 8, 0, 8);
  // captured->converted: 10,10,20,20,30,40,60 (sum 190, ties): p50 = 4th = 20, p90 = 7th = 60.
  EXPECT_EQ(t.timings(5).name(), "captured->converted");
  ExpectHours(t.timings(5), 7, 190, 20, 60, 10, 60);
}

TEST_F(FunnelFixtureTest, TouchesResponseCostsExits) {
  const v1::FunnelGroup t = Cohort().total();
  // Touches at or before the conversion: W1 4, W2 3, W3 2, W4 3 (the email at +35 is after the
  // conversion at +30), W5 0, R1 3, R2 2 -> 0,2,2,3,3,3,4: sum 17, p50 = 4th = 3, p90 = 4.
  const v1::Distribution& touches = t.touches_before_conversion();
  EXPECT_EQ(touches.unit(), "touches");
  EXPECT_EQ(touches.count(), 7);
  EXPECT_EQ(touches.sum(), 17);
  EXPECT_EQ(touches.p50(), 3);
  EXPECT_EQ(touches.p90(), 4);
  EXPECT_EQ(touches.min(), 0);
  EXPECT_EQ(touches.max(), 4);
  // Own contacted: W1 W2 W3 W4 W6 R1 R2 R3 = 8 (W5 was qualified without an outbound touch).
  // Responded at or after it: W1 (inbound email 2 >= 1), W3 (connected 3 >= 3); R1's inbound
  // call (0.5) came before its first outbound touch (1): not a response.
  EXPECT_EQ(t.contacted_own(), 8);
  EXPECT_EQ(t.responded(), 2);
  EXPECT_DOUBLE_EQ(t.response_rate(), 0.25);
  // Cost: 7 web leads x EUR 10 = EUR 70; per lead 70/10 = 7, per customer 70/7 = 10.
  ASSERT_EQ(t.costs_size(), 1);
  EXPECT_EQ(t.costs(0).currency_code(), "EUR");
  EXPECT_EQ(t.costs(0).total_micros(), 70'000'000);
  EXPECT_EQ(t.costs(0).leads_with_cost(), 7);
  EXPECT_EQ(t.costs(0).per_lead_micros(), 7'000'000);
  EXPECT_EQ(t.costs(0).per_customer_micros(), 10'000'000);
  // Exits: W6 rejected, R2 postponed and reactivated (then converted), R3 disqualified; R4's
  // rejection left with its merge.
  EXPECT_EQ(t.ever_rejected(), 1);
  EXPECT_EQ(t.ever_postponed(), 1);
  EXPECT_EQ(t.ever_disqualified(), 1);
  EXPECT_EQ(t.reactivated(), 1);
  EXPECT_EQ(t.reactivated_converted(), 1);
  // Assigned: all but W7 = 9; meetings+demos: W1, W2, W4 demos + R1 meeting = 4 per 7 conversions.
  EXPECT_EQ(t.assigned(), 9);
  EXPECT_EQ(t.meetings_demos(), 4);
  EXPECT_DOUBLE_EQ(t.meetings_demos_per_conversion(), 4.0 / 7);
}

TEST_F(FunnelFixtureTest, SplitBySourceOddAndEvenCounts) {
  const v1::CohortFunnelReport r = Cohort("source_channel");
  ASSERT_EQ(r.groups_size(), 2);
  const v1::FunnelGroup& referral = r.groups(0);
  const v1::FunnelGroup& web = r.groups(1);
  EXPECT_EQ(referral.split_value(), "referral");
  EXPECT_EQ(web.split_value(), "web-form");
  ExpectCounts(web, {7, 6, 5, 5, 5, 5});
  // 10,20,20,30,40 (odd n=5, sum 120): p50 = 3rd = 20, p90 = ceil(4.5) = 5th = 40.
  ExpectHours(web.timings(5), 5, 120, 20, 40, 10, 40);
  ExpectCounts(referral, {3, 3, 2, 2, 2, 2});
  // 10,60 (even n=2): p50 = 1st = 10, p90 = ceil(1.8) = 2nd = 60.
  ExpectHours(referral.timings(5), 2, 70, 10, 60, 10, 60);
  EXPECT_EQ(referral.costs_size(), 0);
  // The total does not depend on the split.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r.total(), Cohort().total()));
}

TEST_F(FunnelFixtureTest, OtherFixedSplits) {
  const v1::CohortFunnelReport temp = Cohort("temperature");
  ASSERT_EQ(temp.groups_size(), 3);  // cold: W6 W7 R3; hot: W1 W2 W5; warm: W3 W4 R1 R2
  EXPECT_EQ(temp.groups(0).split_value(), "cold");
  ExpectCounts(temp.groups(0), {3, 2, 0, 0, 0, 0});
  EXPECT_EQ(temp.groups(1).split_value(), "hot");
  ExpectCounts(temp.groups(1), {3, 3, 3, 3, 3, 3});
  EXPECT_EQ(temp.groups(2).split_value(), "warm");
  // 20,30,10,60 -> 10,20,30,60 (even, sum 120): p50 = 2nd = 20, p90 = 4th = 60.
  ExpectHours(temp.groups(2).timings(5), 4, 120, 20, 60, 10, 60);
  const v1::CohortFunnelReport campaign = Cohort("campaign");
  ASSERT_EQ(campaign.groups_size(), 2);
  EXPECT_EQ(campaign.groups(0).split_value(), "");  // no campaign: R1-R3
  EXPECT_EQ(campaign.groups(0).captured(), 3);
  EXPECT_EQ(campaign.groups(1).split_value(), "spring");
  EXPECT_EQ(campaign.groups(1).captured(), 7);
  const v1::CohortFunnelReport origin = Cohort("origin_type");
  ASSERT_EQ(origin.groups_size(), 3);  // net: W1 W2 W6 W7; seed: R1-R3; spear: W3 W4 W5
  EXPECT_EQ(origin.groups(0).split_value(), "net");
  EXPECT_EQ(origin.groups(0).captured(), 4);
  EXPECT_EQ(origin.groups(2).split_value(), "spear");
  EXPECT_EQ(origin.groups(2).converted(), 3);
}

TEST_F(FunnelFixtureTest, WithinDaysEvenCountWithTies) {
  const v1::FunnelGroup t = Cohort("", 1).total();
  // Within 24 h of capture: contacted all 9 (R3 at exactly 24 h counts), qualified 6 (not R2 at
  // 50), presented 5 (not W5 40, R2 60), proposal 4 (not W4 25), converted 4: W1 10, W2 20,
  // W3 20, R1 10.
  ExpectCounts(t, {10, 9, 6, 5, 4, 4});
  // 10,10,20,20 (even, ties): p50 = 2nd = 10, p90 = ceil(3.6) = 4th = 20.
  ExpectHours(t.timings(5), 4, 60, 10, 20, 10, 20);
  EXPECT_DOUBLE_EQ(t.conversion_rate(), 0.4);
  // Cost per customer uses the converted count within the limit: 70 / 4 = 17.5.
  EXPECT_EQ(t.costs(0).per_customer_micros(), 17'500'000);
  EXPECT_EQ(Cohort("", 1).within_days(), 1);
}

TEST_F(FunnelFixtureTest, OwnerCredits) {
  const v1::CohortFunnelReport r = Cohort("owner");
  ASSERT_EQ(r.groups_size(), 4);
  const v1::FunnelGroup& ann = r.groups(0);
  const v1::FunnelGroup& bob = r.groups(1);
  const v1::FunnelGroup& carl = r.groups(2);
  const v1::FunnelGroup& dave = r.groups(3);
  EXPECT_EQ(ann.split_value(), "ann");
  EXPECT_EQ(dave.split_value(), "dave");
  // W2 moved from ann to bob at +12: its contact, qualification and demo are ann's, its offer
  // and conversion bob's. W5's contact is its qualification's (ann), its presentation and
  // proposal its conversion's (ann).
  EXPECT_EQ(ann.assigned(), 4);  // W1 W2 W5 W6
  ExpectCounts(ann, {0, 4, 3, 3, 2, 2});
  EXPECT_EQ(bob.assigned(), 3);  // W2 W3 W4
  ExpectCounts(bob, {0, 2, 2, 2, 3, 3});
  EXPECT_DOUBLE_EQ(ann.owner_conversion_rate(), 0.5);
  EXPECT_DOUBLE_EQ(bob.owner_conversion_rate(), 1.0);
  // Demos while held: ann W1 and W2 (at +10, before the move) = 2 per 2 conversions; bob W4.
  EXPECT_EQ(ann.meetings_demos(), 2);
  EXPECT_DOUBLE_EQ(ann.meetings_demos_per_conversion(), 1.0);
  EXPECT_EQ(bob.meetings_demos(), 1);
  EXPECT_DOUBLE_EQ(bob.meetings_demos_per_conversion(), 1.0 / 3);
  // Conversions credited to bob: W2 20, W3 20, W4 30 -> p50 = 2nd = 20, p90 = 3rd = 30.
  ExpectHours(bob.timings(5), 3, 70, 20, 30, 20, 30);
  // Responses: ann's own contacts W1 W2 W6, W1 replied; bob's W3 W4, W3 connected.
  EXPECT_EQ(ann.contacted_own(), 3);
  EXPECT_EQ(ann.responded(), 1);
  EXPECT_EQ(bob.contacted_own(), 2);
  EXPECT_EQ(bob.responded(), 1);
  ExpectCounts(carl, {0, 2, 2, 2, 2, 2});
  EXPECT_EQ(carl.meetings_demos(), 1);
  ExpectCounts(dave, {0, 1, 0, 0, 0, 0});
  EXPECT_EQ(r.groups(0).steps_size(), 0);  // step rates make no sense per owner
}

TEST_F(FunnelFixtureTest, ActivityByDayWeekMonth) {
  v1::ActivityRequest req;
  *req.mutable_from() = Day(0);
  *req.mutable_to() = Day(7);
  req.set_bucket(v1::ActivityRequest::BUCKET_DAY);
  auto days = funnel_.Activity(req);
  ASSERT_TRUE(days.ok()) << days.status();
  ASSERT_EQ(days->buckets_size(), 7);
  // Captured per day: d0 W1 W2 R1, d1 W3 W4 R2, d2 W5 W6, d3 W7 R3 (R4 on d4 is merged).
  std::vector<int64_t> captured, converted, contacted;
  for (const auto& b : days->buckets()) {
    captured.push_back(b.total().captured());
    contacted.push_back(b.total().contacted());
    converted.push_back(b.total().converted());
  }
  EXPECT_THAT(captured, ::testing::ElementsAre(3, 3, 2, 2, 0, 0, 0));
  // Contacted (reached, absolute hours): W1 1, W2 4, R1 13 | W3 27, W4 31, R2 38 | W5 52, W6 65
  // | - | R3 108.
  EXPECT_THAT(contacted, ::testing::ElementsAre(3, 3, 2, 0, 1, 0, 0));
  // Converted: W1 10, W2 22, R1 22 | W3 44 | W4 60 | W5 88 | R2 96.
  EXPECT_THAT(converted, ::testing::ElementsAre(3, 1, 1, 1, 1, 0, 0));
  EXPECT_EQ(days->buckets(2).total().rejected(), 1);      // W6 at 70 h
  EXPECT_EQ(days->buckets(1).total().postponed(), 1);     // R2 at 41 h
  EXPECT_EQ(days->buckets(3).total().reactivated(), 1);   // R2 at 84 h
  EXPECT_EQ(days->buckets(4).total().disqualified(), 1);  // R3 at 114 h
  EXPECT_EQ(days->total().converted(), 7);
  EXPECT_EQ(days->total().captured(), 10);

  req.set_bucket(v1::ActivityRequest::BUCKET_WEEK);  // d0 is a Monday: one ISO week
  auto weeks = funnel_.Activity(req);
  ASSERT_TRUE(weeks.ok());
  ASSERT_EQ(weeks->buckets_size(), 1);
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(weeks->buckets(0).total(), days->total()));
  req.set_bucket(v1::ActivityRequest::BUCKET_MONTH);
  *req.mutable_from() = Day(-10);  // 2025-12-26: December and January
  auto months = funnel_.Activity(req);
  ASSERT_TRUE(months.ok());
  ASSERT_EQ(months->buckets_size(), 2);
  EXPECT_EQ(common::Rfc3339(common::FromProto(months->buckets(0).start())),
            "2025-12-01T00:00:00.000Z");
  EXPECT_EQ(common::Rfc3339(common::FromProto(months->buckets(1).end())),
            "2026-02-01T00:00:00.000Z");
  EXPECT_EQ(months->buckets(0).total().captured(), 0);
  EXPECT_EQ(months->buckets(1).total().converted(), 7);

  // By owner: W2's conversion (d0) is bob's.
  req.set_bucket(v1::ActivityRequest::BUCKET_DAY);
  *req.mutable_from() = Day(0);
  req.set_split("owner");
  auto owners = funnel_.Activity(req);
  ASSERT_TRUE(owners.ok());
  int64_t bob_d0 = -1;
  for (const auto& g : owners->buckets(0).groups()) {
    if (g.split_value() == "bob") bob_d0 = g.converted();
  }
  EXPECT_EQ(bob_d0, 1);
}

TEST_F(FunnelFixtureTest, Pipeline) {
  auto r = funnel_.Pipeline({});
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::PipelineGroup& t = r->total();
  // QUALIFIED now: Q1 (needs analysis, EUR 1000), Q2 (closing, EUR 500), Q3 (closing, USD 200),
  // Q4 (qualification, EUR 300). Every other qualified lead converted.
  EXPECT_EQ(t.leads(), 4);
  ASSERT_EQ(t.stages_size(), 5);
  EXPECT_EQ(t.stages(0).stage(), v1::SALES_STAGE_QUALIFICATION);
  EXPECT_EQ(t.stages(0).leads(), 1);
  EXPECT_EQ(t.stages(0).leads_without_budget(), 0);
  EXPECT_EQ(t.stages(0).probability_percent(), 10);
  EXPECT_EQ(t.stages(0).money(0).weighted_micros(), 30'000'000);  // 10 % of 300
  EXPECT_EQ(t.stages(1).probability_percent(), 20);
  ASSERT_EQ(t.stages(1).money_size(), 1);
  EXPECT_EQ(t.stages(1).money(0).budget_micros(), 1000'000'000);
  EXPECT_EQ(t.stages(1).money(0).weighted_micros(), 200'000'000);  // 20 %
  const v1::PipelineStage& closing = t.stages(4);
  EXPECT_EQ(closing.leads(), 2);
  ASSERT_EQ(closing.money_size(), 2);
  EXPECT_EQ(closing.money(0).currency_code(), "EUR");
  EXPECT_EQ(closing.money(0).weighted_micros(), 400'000'000);  // 80 % of 500
  EXPECT_EQ(closing.money(1).currency_code(), "USD");
  EXPECT_EQ(closing.money(1).weighted_micros(), 160'000'000);
  ASSERT_EQ(t.money_size(), 2);
  EXPECT_EQ(t.money(0).budget_micros(), 1800'000'000);   // 1000 + 500 + 300
  EXPECT_EQ(t.money(0).weighted_micros(), 630'000'000);  // 200 + 400 + 30

  FunnelOptions options;
  options.stage_probability_percent[v1::SALES_STAGE_CLOSING] = 50;
  FunnelProjection custom(options);
  auto store = testing::BuildView(*log_, custom, (dir_ / "custom").string());
  ASSERT_TRUE(store.ok());
  auto r2 = custom.Pipeline({});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->total().stages(4).money(0).weighted_micros(), 250'000'000);
}

TEST_F(FunnelFixtureTest, EmptyRangeIsZeros) {
  v1::CohortFunnelRequest req;
  *req.mutable_captured_from() = Day(3);
  *req.mutable_captured_to() = Day(3);
  auto r = funnel_.Cohort(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->total().captured(), 0);
  EXPECT_EQ(r->total().timings(5).count(), 0);
  EXPECT_EQ(r->total().conversion_rate(), 0.0);
  *req.mutable_captured_from() = Day(100);  // a range with no leads
  *req.mutable_captured_to() = Day(200);
  r = funnel_.Cohort(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total().captured(), 0);
  v1::ActivityRequest a;
  *a.mutable_from() = Day(1);
  *a.mutable_to() = Day(1);
  auto act = funnel_.Activity(a);
  ASSERT_TRUE(act.ok());
  EXPECT_EQ(act->buckets_size(), 0);
  EXPECT_EQ(act->total().captured(), 0);
}

TEST_F(FunnelFixtureTest, BadInputNamesTheField) {
  struct Case {
    std::function<void(v1::CohortFunnelRequest&)> edit;
    std::string message;
  } cases[] = {
      {[](auto& r) { r.clear_captured_from(); }, "captured_from: required"},
      {[](auto& r) { r.clear_captured_to(); }, "captured_to: required"},
      {[](auto& r) { *r.mutable_captured_to() = Day(-1); }, "captured_to: 2026-01-04"},
      {[](auto& r) { *r.mutable_captured_to() = Day(4000); }, "longer than 3660 days"},
      {[](auto& r) { r.mutable_captured_from()->set_nanos(-5); },
       "captured_from: not a valid timestamp"},
      {[](auto& r) { r.set_split("region"); }, "split: unknown split 'region'"},
      {[](auto& r) { r.set_within_days(0); }, "within_days: must be 1 to 3660 (got 0)"},
      {[](auto& r) { r.set_within_days(-3); }, "within_days: must be 1 to 3660 (got -3)"},
  };
  for (const auto& c : cases) {
    v1::CohortFunnelRequest req;
    *req.mutable_captured_from() = Day(0);
    *req.mutable_captured_to() = Day(5);
    c.edit(req);
    auto r = funnel_.Cohort(req);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  v1::ActivityRequest a;
  *a.mutable_from() = Day(0);
  auto act = funnel_.Activity(a);
  EXPECT_EQ(act.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(act.status().message()), HasSubstr("to: required"));
  *a.mutable_to() = Day(1);
  a.set_bucket(static_cast<v1::ActivityRequest::Bucket>(9));
  act = funnel_.Activity(a);
  EXPECT_THAT(std::string(act.status().message()), HasSubstr("bucket: unknown bucket 9"));
  v1::PipelineRequest p;
  p.set_split("planet");
  EXPECT_THAT(std::string(funnel_.Pipeline(p).status().message()),
              HasSubstr("split: unknown split 'planet'"));
}

TEST_F(FunnelFixtureTest, ReloadAndRebuildGiveIdenticalAnswers) {
  const v1::CohortFunnelReport before = Cohort("owner");
  // A new process: the index is loaded from the stored rows.
  FunnelProjection reloaded;
  ASSERT_TRUE(reloaded.Load(*store_).ok());
  EXPECT_EQ(reloaded.size(), funnel_.size());
  v1::CohortFunnelRequest req;
  *req.mutable_captured_from() = Day(0);
  *req.mutable_captured_to() = Day(5);
  req.set_split("owner");
  auto after_load = reloaded.Cohort(req);
  ASSERT_TRUE(after_load.ok());
  EXPECT_EQ(after_load->SerializeAsString(), before.SerializeAsString());
  // A rebuild from offset zero into a fresh store.
  FunnelProjection rebuilt;
  auto store = testing::BuildView(*log_, rebuilt, (dir_ / "rebuilt").string());
  ASSERT_TRUE(store.ok());
  auto after_rebuild = rebuilt.Cohort(req);
  ASSERT_TRUE(after_rebuild.ok());
  EXPECT_EQ(after_rebuild->SerializeAsString(), before.SerializeAsString());
}

TEST(FunnelRowTest, RefusesGapsRepeatsAndOrphans) {
  v1::FunnelLeadRow row;
  v1::Event e;
  e.set_aggregate_id("ld_00000000000000000001");
  e.set_aggregate_version(2);
  e.mutable_lead_assigned()->set_owner("ann");
  absl::Status st = ApplyToFunnelRow(e, row);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("event version 2 follows version 0"));
  e.set_aggregate_version(1);
  st = ApplyToFunnelRow(e, row);
  EXPECT_THAT(std::string(st.message()), HasSubstr("is not a capture"));
  EXPECT_EQ(row.version(), 0);  // unchanged
  e.mutable_lead_captured();
  ASSERT_TRUE(ApplyToFunnelRow(e, row).ok());
  st = ApplyToFunnelRow(e, row);  // the same event again
  EXPECT_THAT(std::string(st.message()), HasSubstr("event version 1 follows version 1"));
}

TEST(DistributionTest, NearestRank) {
  std::vector<int64_t> v = {7, 5, 7, 5};  // even with ties: p50 = 2nd = 5, p90 = 4th = 7
  v1::Distribution d = *MakeDistribution("x", "ms", v);
  EXPECT_EQ(d.p50(), 5);
  EXPECT_EQ(d.p90(), 7);
  EXPECT_DOUBLE_EQ(d.mean(), 6.0);
  v = {3};
  d = *MakeDistribution("x", "ms", v);
  EXPECT_EQ(d.p50(), 3);
  EXPECT_EQ(d.p90(), 3);
  v.clear();
  d = *MakeDistribution("x", "ms", v);
  EXPECT_EQ(d.count(), 0);
  EXPECT_EQ(d.p50(), 0);
  // n = 10: p50 = 5th, p90 = 9th.
  v = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  d = *MakeDistribution("x", "ms", v);
  EXPECT_EQ(d.p50(), 5);
  EXPECT_EQ(d.p90(), 9);
  EXPECT_EQ(d.sum(), 55);
}

TEST(DistributionTest, LargeListsMatchAFullSort) {
  // Above 4,096 values the percentiles come from a bucketed selection: compare with sorting.
  std::mt19937_64 rng(42);
  for (int round = 0; round < 20; ++round) {
    const size_t n = 4097 + rng() % 200000;
    std::vector<int64_t> v(n);
    const int64_t spread = round % 3 == 0   ? 10
                           : round % 3 == 1 ? 86'400'000LL * 365
                                            : (int64_t{1} << 40);
    for (auto& x : v) x = static_cast<int64_t>(rng() % static_cast<uint64_t>(spread)) - spread / 3;
    std::vector<int64_t> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    const v1::Distribution d = *MakeDistribution("x", "ms", v);
    SCOPED_TRACE(absl::StrCat("n=", n, " spread=", spread));
    EXPECT_EQ(d.p50(), sorted[(50 * n + 99) / 100 - 1]);
    EXPECT_EQ(d.p90(), sorted[(90 * n + 99) / 100 - 1]);
    EXPECT_EQ(d.min(), sorted.front());
    EXPECT_EQ(d.max(), sorted.back());
  }
}

}  // namespace
}  // namespace leadflow::projections

// The reprocessing view against the fixture of tests/support/sales_script.h: exits, counts by
// reason, the re-contact queue, win-back candidates, reactivations, paging, bad input.
#include "projections/reprocessing/reprocessing_view.h"

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "services/log/embedded_log.h"
#include "tests/support/sales_script.h"

namespace leadflow::projections {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromCivil(absl::CivilDay(2026, 1, 5), absl::UTCTimeZone());

google::protobuf::Timestamp Day(double d) { return common::ToProto(kT0 + absl::Hours(24 * d)); }

class ReprocessingFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("reproc_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    testing::WriteFixtureHistory(script_);
    ASSERT_TRUE(script_.error().ok()) << script_.error();
    auto log =
        log::EmbeddedLog::Open({.dir = (dir_ / "log").string(), .partitions = 4, .sync = false});
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    ASSERT_TRUE(testing::AppendAll(*log_, script_.events()).ok());
    auto store = testing::BuildView(*log_, projection_, (dir_ / "view").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    queries_ = std::make_unique<ReprocessingQueries>(store_.get());
  }
  void TearDown() override {
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The fixture names of the listed leads; a lead that is not in the fixture shows as its id, so
  // an unexpected entry fails the comparison instead of vanishing.
  std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<v1::ExitRecord>& r) {
    std::vector<std::string> out;
    for (const auto& x : r) {
      std::string name = x.lead_id();
      for (const char* n : {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "R1", "R2", "R3", "R4", "Q1",
                            "Q2", "Q3", "Q4", "P1", "P2", "X1"}) {
        if (x.lead_id() == script_.Id(n)) name = n;
      }
      out.push_back(name);
    }
    return out;
  }

  testing::SalesScript script_{kT0};
  std::filesystem::path dir_;
  std::unique_ptr<log::EventLog> log_;
  ReprocessingProjection projection_;
  std::unique_ptr<ViewStore> store_;
  std::unique_ptr<ReprocessingQueries> queries_;
};

TEST_F(ReprocessingFixtureTest, ExitsOldestFirstWithDetailsAndPaging) {
  v1::ListExitsRequest req;
  *req.mutable_from() = Day(0);
  *req.mutable_to() = Day(30);
  auto all = queries_->ListExits(req);
  ASSERT_TRUE(all.ok()) << all.status();
  // R2 41 h, W6 70 h, R3 114 h, P1 245 h, P2 246 h, X1 248 h; R4's rejection left with its merge.
  EXPECT_THAT(Names(all->exits()), ElementsAre("R2", "W6", "R3", "P1", "P2", "X1"));
  const v1::ExitRecord& w6 = all->exits(1);
  EXPECT_EQ(w6.kind(), v1::EXIT_KIND_REJECTED);
  EXPECT_EQ(w6.reason(), "no-budget");
  EXPECT_EQ(w6.text(), "too pricey");
  EXPECT_EQ(w6.owner(), "ann");
  EXPECT_EQ(w6.lead_name(), "Person W6");
  EXPECT_EQ(common::Rfc3339(common::FromProto(w6.exited_at())), "2026-01-07T22:00:00.000Z");
  const v1::ExitRecord& r2 = all->exits(0);
  EXPECT_EQ(r2.kind(), v1::EXIT_KIND_POSTPONED);
  EXPECT_EQ(r2.reason(), "budget next quarter");
  EXPECT_EQ(common::Rfc3339(common::FromProto(r2.revisit_at())), "2026-01-25T00:00:00.000Z");
  EXPECT_EQ(common::Rfc3339(common::FromProto(r2.reactivated_at())), "2026-01-08T12:00:00.000Z");
  EXPECT_TRUE(r2.converted_after());
  EXPECT_EQ(r2.sequence(), 1);
  EXPECT_EQ(all->next_page_token(), "");

  req.set_page_size(2);
  std::vector<std::string> paged;
  for (int page = 0; page < 5; ++page) {
    auto r = queries_->ListExits(req);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& n : Names(r->exits())) paged.push_back(n);
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  EXPECT_THAT(paged, ElementsAre("R2", "W6", "R3", "P1", "P2", "X1"));

  v1::ListExitsRequest rejected;
  *rejected.mutable_from() = Day(0);
  *rejected.mutable_to() = Day(30);
  rejected.set_kind(v1::EXIT_KIND_REJECTED);
  auto r = queries_->ListExits(rejected);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Names(r->exits()), ElementsAre("W6", "X1"));
}

TEST_F(ReprocessingFixtureTest, SummaryByReasonWithReactivations) {
  v1::ExitSummaryRequest req;
  *req.mutable_from() = Day(0);
  *req.mutable_to() = Day(30);
  auto s = queries_->Summary(req);
  ASSERT_TRUE(s.ok()) << s.status();
  // 6 exits; R2's postponement was reactivated and R2 converted afterwards.
  EXPECT_EQ(s->total().exits(), 6);
  EXPECT_EQ(s->total().reactivated(), 1);
  EXPECT_EQ(s->total().converted_after(), 1);
  EXPECT_DOUBLE_EQ(s->total().reactivation_rate(), 1.0 / 6);
  ASSERT_EQ(s->by_kind_size(), 3);
  EXPECT_EQ(s->by_kind(0).kind(), v1::EXIT_KIND_REJECTED);
  EXPECT_EQ(s->by_kind(0).exits(), 2);  // W6, X1
  EXPECT_EQ(s->by_kind(1).exits(), 3);  // R2, P1, P2
  EXPECT_EQ(s->by_kind(1).reactivated(), 1);
  EXPECT_EQ(s->by_kind(2).exits(), 1);  // R3
  std::vector<std::string> reasons;
  for (const auto& r : s->by_reason()) reasons.push_back(absl::StrCat(r.reason(), "=", r.exits()));
  EXPECT_THAT(reasons,
              ElementsAre("no-budget=1", "no-need=1", "after holidays=1", "budget next quarter=1",
                          "call back in spring=1", "not-target-market=1"));
  // The first five days only: W6, R2, R3.
  *req.mutable_to() = Day(5);
  s = queries_->Summary(req);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->total().exits(), 3);
  // Empty range: zeros.
  *req.mutable_to() = Day(0);
  s = queries_->Summary(req);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->total().exits(), 0);
  EXPECT_EQ(s->by_reason_size(), 0);
}

TEST_F(ReprocessingFixtureTest, RecontactQueueByRevisitDate) {
  v1::RecontactQueueRequest req;
  auto at = [&](double day) {
    *req.mutable_as_of() = Day(day);
    auto r = queries_->Queue(req, absl::InfinitePast());
    EXPECT_TRUE(r.ok()) << r.status();
    return Names(r->leads());
  };
  // R2 was reactivated (left the queue); P2 revisits on d12, P1 on d15.
  EXPECT_THAT(at(11), ElementsAre());
  EXPECT_THAT(at(13), ElementsAre("P2"));
  EXPECT_THAT(at(15), ElementsAre("P2", "P1"));  // revisit_at <= as_of
  EXPECT_THAT(at(400), ElementsAre("P2", "P1"));
  req.set_page_size(1);
  *req.mutable_as_of() = Day(20);
  auto page = queries_->Queue(req, absl::InfinitePast());
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(page->leads()), ElementsAre("P2"));
  ASSERT_FALSE(page->next_page_token().empty());
  req.set_page_token(page->next_page_token());
  page = queries_->Queue(req, absl::InfinitePast());
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(page->leads()), ElementsAre("P1"));
  EXPECT_EQ(page->next_page_token(), "");
  // Default as_of is "now".
  v1::RecontactQueueRequest now;
  auto r = queries_->Queue(now, kT0 + absl::Hours(24 * 13));
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Names(r->leads()), ElementsAre("P2"));
}

TEST_F(ReprocessingFixtureTest, WinBackSkipsLeadsContactedSince) {
  v1::WinBackRequest req;
  *req.mutable_as_of() = Day(6);
  req.set_rejected_more_than_days(3);
  auto r = queries_->WinBack(req, absl::InfinitePast());
  ASSERT_TRUE(r.ok()) << r.status();
  // W6 rejected at d2 22:00 < d6 - 3 days; X1 was emailed after its rejection; R4 merged.
  EXPECT_THAT(Names(r->leads()), ElementsAre("W6"));
  req.set_rejected_more_than_days(4);  // cutoff d2 00:00: W6 is too recent
  r = queries_->WinBack(req, absl::InfinitePast());
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Names(r->leads()), ElementsAre());
  *req.mutable_as_of() = Day(60);
  r = queries_->WinBack(req, absl::InfinitePast());
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Names(r->leads()), ElementsAre("W6"));
}

TEST_F(ReprocessingFixtureTest, BadInputNamesTheField) {
  v1::WinBackRequest wb;
  EXPECT_THAT(std::string(queries_->WinBack(wb, kT0).status().message()),
              HasSubstr("rejected_more_than_days: required"));
  wb.set_rejected_more_than_days(0);
  auto st = queries_->WinBack(wb, kT0).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("rejected_more_than_days: must be 1 to 3660 (got 0)"));
  wb.set_rejected_more_than_days(-2);
  EXPECT_THAT(std::string(queries_->WinBack(wb, kT0).status().message()), HasSubstr("(got -2)"));

  v1::ListExitsRequest le;
  *le.mutable_from() = Day(5);
  *le.mutable_to() = Day(1);
  st = queries_->ListExits(le).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("to: 2026-01-06T00:00:00.000Z is before from"));
  *le.mutable_to() = Day(5000);
  EXPECT_THAT(std::string(queries_->ListExits(le).status().message()),
              HasSubstr("longer than 3660 days"));
  *le.mutable_to() = Day(6);
  le.set_page_token("not-a-token");
  EXPECT_THAT(std::string(queries_->ListExits(le).status().message()),
              HasSubstr("page_token: not a token of this listing"));
  le.clear_page_token();
  le.set_page_size(5000);
  EXPECT_THAT(std::string(queries_->ListExits(le).status().message()),
              HasSubstr("page_size: must be 1 to 1000"));
  le.set_page_size(0);
  le.set_kind(static_cast<v1::ExitKind>(7));
  EXPECT_THAT(std::string(queries_->ListExits(le).status().message()),
              HasSubstr("kind: unknown exit kind 7"));

  v1::ExitSummaryRequest sum;
  EXPECT_THAT(std::string(queries_->Summary(sum).status().message()), HasSubstr("from: required"));
  v1::RecontactQueueRequest q;
  q.mutable_as_of()->set_seconds(-99999999999999);
  EXPECT_THAT(std::string(queries_->Queue(q, kT0).status().message()),
              HasSubstr("as_of: not a valid timestamp"));
}

// A row's status is the lead's status as the lifecycle (EvolveLead) has it after the same events,
// for every lead of the fixture (format 1 kept NEW after a contact or a qualification).
TEST_F(ReprocessingFixtureTest, RowStatusIsTheLifecycleStatus) {
  std::map<std::string, lead::LeadState> states;
  for (const v1::Event& e : script_.events()) {
    if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) continue;
    ASSERT_TRUE(lead::EvolveLead(states[e.aggregate_id()], e).ok());
  }
  ASSERT_GT(states.size(), 10u);
  std::set<v1::LeadStatus> seen;
  for (const auto& [id, state] : states) {
    absl::StatusOr<std::string> raw = store_->Get(ReprocessingProjection::kLeads, id);
    ASSERT_TRUE(raw.ok()) << raw.status();
    v1::ReprocessingLeadRow row;
    ASSERT_TRUE(row.ParseFromString(*raw));
    EXPECT_EQ(v1::LeadStatus_Name(row.status()), v1::LeadStatus_Name(state.status)) << id;
    seen.insert(state.status);
  }
  // The fixture walks leads through contact and qualification (where format 1 lied).
  EXPECT_TRUE(seen.count(v1::LEAD_STATUS_CONTACTED) || seen.count(v1::LEAD_STATUS_QUALIFIED));
}

TEST_F(ReprocessingFixtureTest, RebuildGivesIdenticalRows) {
  ReprocessingProjection again;
  auto rebuilt = testing::BuildView(*log_, again, (dir_ / "rebuilt").string());
  ASSERT_TRUE(rebuilt.ok());
  for (int cf : {ReprocessingProjection::kLeads, ReprocessingProjection::kExits,
                 ReprocessingProjection::kQueue, ReprocessingProjection::kWinBack}) {
    auto a = store_->NewIterator(cf);
    auto b = (*rebuilt)->NewIterator(cf);
    a->SeekToFirst();
    b->SeekToFirst();
    int rows = 0;
    for (; a->Valid() && b->Valid(); a->Next(), b->Next(), ++rows) {
      EXPECT_EQ(a->key().ToString(), b->key().ToString());
      EXPECT_EQ(a->value().ToString(), b->value().ToString());
    }
    EXPECT_FALSE(a->Valid());
    EXPECT_FALSE(b->Valid());
    EXPECT_GT(rows, 0) << "family " << cf;
  }
}

}  // namespace
}  // namespace leadflow::projections

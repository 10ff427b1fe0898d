#include "tools/history/history.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "services/command/writer.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "services/log/embedded_log.h"

namespace leadflow::history {
namespace {

HistoryOptions Options(int64_t leads) {
  HistoryOptions o;
  o.seed = 42;
  o.leads = leads;
  o.days = 365;
  o.end = absl::FromCivil(absl::CivilDay(2026, 6, 1), absl::UTCTimeZone());
  return o;
}

std::string Kind(const v1::Command& c) { return lead::CommandName(c); }

absl::Time OccurredAt(const v1::Command& c) {
  return common::FromProto(lead::MetaOf(c).occurred_at());
}

TEST(HistoryTest, TheSameSeedGivesTheSameHistoryAndAnotherSeedAnother) {
  HistoryOptions a = Options(50);
  for (int64_t i = 0; i < a.leads; ++i) {
    std::vector<v1::Command> x = LeadHistory(a, i), y = LeadHistory(a, i);
    ASSERT_EQ(x.size(), y.size());
    for (size_t k = 0; k < x.size(); ++k) {
      EXPECT_EQ(x[k].SerializeAsString(), y[k].SerializeAsString()) << i << " " << k;
    }
  }
  HistoryOptions b = a;
  b.seed = 43;
  int differing = 0;
  for (int64_t i = 0; i < a.leads; ++i) {
    differing +=
        LeadHistory(a, i).size() != LeadHistory(b, i).size() ||
        LeadHistory(a, i)[0].SerializeAsString() != LeadHistory(b, i)[0].SerializeAsString();
  }
  EXPECT_GT(differing, 40);
}

TEST(HistoryTest, ShapeLooksLikeASalesOrg) {
  const HistoryOptions o = Options(20000);
  std::map<std::string, int64_t> kinds;
  std::map<int, int64_t> sources;
  int64_t captures = 0, commands = 0, max_touches = 0, min_touches = 1000;
  Generate(o, [&](int64_t, std::vector<v1::Command>& lead) {
    absl::Time previous = absl::InfinitePast();
    int64_t touches = 0;
    for (const v1::Command& c : lead) {
      ++kinds[Kind(c)];
      ++commands;
      const absl::Time at = OccurredAt(c);
      EXPECT_GE(at, previous) << "business time goes forward within a lead";
      EXPECT_LT(at, o.end) << "nothing after the end";
      EXPECT_GE(at, o.end - absl::Hours(24 * (o.days + 3)));
      previous = at;
      touches += c.has_log_interaction();
    }
    EXPECT_TRUE(lead.front().has_capture_lead());
    ++sources[lead.front().capture_lead().source_channel()];
    ++captures;
    // Leads captured near the end are cut short by it; the others have at least two touches
    // before the decision and at most 30.
    if (lead.size() > 8) max_touches = std::max(max_touches, touches);
    if (OccurredAt(lead.front()) < o.end - absl::Hours(24 * 90) && lead.size() > 2) {
      min_touches = std::min(min_touches, touches);
    }
    return true;
  });
  const double n = static_cast<double>(captures);
  EXPECT_EQ(captures, 20000);
  // Source mix within 1.5 points of its weights (web form 28 %, cold call 12 %, webinar 5 %).
  EXPECT_NEAR(sources[v1::SOURCE_CHANNEL_WEB_FORM] / n, 0.28, 0.015);
  EXPECT_NEAR(sources[v1::SOURCE_CHANNEL_COLD_CALL] / n, 0.12, 0.015);
  EXPECT_NEAR(sources[v1::SOURCE_CHANNEL_WEBINAR] / n, 0.05, 0.015);
  EXPECT_EQ(sources.size(), 10u) << "every source appears";
  ASSERT_LT(min_touches, 1000) << "no lead was old enough to count";
  EXPECT_GE(min_touches, 2);
  EXPECT_LE(max_touches, 30);
  EXPECT_GT(max_touches, 15) << "some leads are worked hard";
  // Every part of the lifecycle is there, in plausible proportions.
  EXPECT_NEAR(kinds["convert_lead"] / n, 0.12, 0.05);
  EXPECT_GT(kinds["reject_lead"] / n, 0.25);
  EXPECT_GT(kinds["postpone_lead"] / n, 0.10);
  EXPECT_GT(kinds["reactivate_lead"] / n, 0.04);
  EXPECT_GT(kinds["disqualify_lead"] / n, 0.04);
  EXPECT_GT(kinds["change_stage"], kinds["convert_lead"] * 3);
  // Purchases and surveys follow conversions by months, so the end cuts many off.
  EXPECT_GT(kinds["record_purchase"], kinds["convert_lead"] / 3);
  EXPECT_GT(kinds["record_nps"], kinds["convert_lead"] / 4);
  EXPECT_GT(kinds["assign_lead"], captures * 9 / 10);
  // Returning contacts: captures beyond the first per lead.
  EXPECT_NEAR((kinds["capture_lead"] - captures) / n, 0.04, 0.02);
  EXPECT_GT(commands / n, 6.0);
}

TEST(HistoryTest, TheWriterAcceptsEveryCommand) {
  const std::string dir = ::testing::TempDir() + "/history_writer";
  std::filesystem::remove_all(dir);
  log::EmbeddedLogOptions lo;
  lo.dir = dir;
  lo.partitions = 4;
  lo.sync = false;
  auto log = log::EmbeddedLog::Open(lo);
  ASSERT_TRUE(log.ok()) << log.status();
  common::SystemClock clock;
  command::WriterOptions wo;
  wo.id_key = kHistoryIdKey;  // the history names its leads by their ids under it
  auto writer = command::CommandWriter::Open(log->get(), &clock, wo);
  ASSERT_TRUE(writer.ok()) << writer.status();
  int64_t applied = 0, deduplicated = 0, refused = 0;
  Generate(Options(3000), [&](int64_t lead, std::vector<v1::Command>& commands) {
    std::vector<const v1::Command*> batch;
    for (const v1::Command& c : commands) batch.push_back(&c);
    auto results = (*writer)->ExecuteBatch(absl::MakeConstSpan(batch));
    for (size_t k = 0; k < results.size(); ++k) {
      if (!results[k].ok()) {
        if (++refused <= 5) {
          ADD_FAILURE() << "lead " << lead << " command " << k << " (" << Kind(commands[k])
                        << ") refused: " << results[k].status();
        }
        continue;
      }
      ++applied;
      deduplicated += results[k]->deduplicated();
    }
    return true;
  });
  EXPECT_EQ(refused, 0);
  EXPECT_GT(applied, 3000 * 6);
  EXPECT_GT(deduplicated, 30) << "returning contacts are recorded as inquiries";
}

}  // namespace
}  // namespace leadflow::history

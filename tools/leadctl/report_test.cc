#include "tools/leadctl/report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::leadctl {
namespace {

using ::testing::HasSubstr;

TEST(ReportTest, DurationsAndPercentages) {
  EXPECT_EQ(HumanDuration(250), "0.250s");
  EXPECT_EQ(HumanDuration(3'600'000), "01:00:00");
  EXPECT_EQ(HumanDuration(93'784'000), "1d 02:03:04");
  EXPECT_EQ(Percent(5.0 / 6), "83.3%");
  EXPECT_EQ(Percent(0), "0.0%");
}

v1::CohortFunnelReport Report() {
  v1::CohortFunnelReport r;
  r.mutable_captured_from()->set_seconds(1767571200);  // 2026-01-05
  r.mutable_captured_to()->set_seconds(1768003200);    // 2026-01-10
  r.set_split("campaign");
  v1::FunnelGroup* t = r.mutable_total();
  t->set_captured(10);
  t->set_converted(7);
  t->set_conversion_rate(0.7);
  for (int i = 0; i < 5; ++i) t->add_steps()->set_rate(0.5);
  for (int i = 0; i < 6; ++i) t->add_timings()->set_name(i == 5 ? "captured->converted" : "x");
  t->mutable_timings(5)->set_count(7);
  t->mutable_timings(5)->set_p50(20 * 3'600'000);
  v1::FunnelGroup* g = r.add_groups();
  *g = *t;
  g->set_split_value("spring, \"early\"");
  v1::FunnelGroup* none = r.add_groups();
  *none = *t;
  none->set_split_value("");
  return r;
}

TEST(ReportTest, CohortTableIsReadable) {
  const std::string out = RenderCohort(Report(), Format::kTable);
  EXPECT_THAT(out, HasSubstr("Cohort: leads captured 2026-01-05 .. 2026-01-10"));
  EXPECT_THAT(out, HasSubstr("split by campaign"));
  EXPECT_THAT(out, HasSubstr("(all)"));
  EXPECT_THAT(out, HasSubstr("(none)"));  // leads without a campaign
  EXPECT_THAT(out, HasSubstr("7 (50.0%)"));
  EXPECT_THAT(out, HasSubstr("70.0%"));
  EXPECT_THAT(out, HasSubstr("20:00:00"));  // p50 to convert
}

TEST(ReportTest, CohortCsvQuotesAndKeepsExactNumbers) {
  const std::string out = RenderCohort(Report(), Format::kCsv);
  EXPECT_THAT(out, HasSubstr("split,group,captured,contacted"));
  EXPECT_THAT(out, HasSubstr("captured->converted.p50_ms"));
  EXPECT_THAT(out, HasSubstr("campaign,\"spring, \"\"early\"\"\",10,"));
  EXPECT_THAT(out, HasSubstr(",72000000,"));  // 20 h in ms
  EXPECT_THAT(out, HasSubstr("0.700000"));
}

TEST(ReportTest, ExitsAndSummary) {
  google::protobuf::RepeatedPtrField<v1::ExitRecord> exits;
  v1::ExitRecord* x = exits.Add();
  x->set_lead_id("ld_1");
  x->set_lead_name("Ada");
  x->set_kind(v1::EXIT_KIND_POSTPONED);
  x->set_reason("after holidays");
  x->mutable_exited_at()->set_seconds(1767571200);
  const std::string table = RenderExits(exits, "tok", "Re-contact queue", Format::kTable);
  EXPECT_THAT(table, HasSubstr("Re-contact queue"));
  EXPECT_THAT(table, HasSubstr("2026-01-05 00:00"));
  EXPECT_THAT(table, HasSubstr("postponed"));
  EXPECT_THAT(table, HasSubstr("more: --page-token tok"));
  const std::string csv = RenderExits(exits, "", "", Format::kCsv);
  EXPECT_THAT(csv, HasSubstr("2026-01-05T00:00:00.000Z,postponed,ld_1,Ada"));
  v1::ExitSummary s;
  s.mutable_total()->set_exits(6);
  s.mutable_total()->set_converted_after(1);
  EXPECT_THAT(RenderExitSummary(s, Format::kTable), HasSubstr("Second-chance conversions"));
}

}  // namespace
}  // namespace leadflow::leadctl

namespace leadflow::leadctl {
namespace {

TEST(CsvTest, FieldsFollowRfc4180) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(CsvField(""), "");
}

TEST(CsvTest, FormulasAreDefusedAndReadBackUnchanged) {
  for (const std::string cell :
       {"=HYPERLINK(\"http://x\")", "+1", "-5", "@SUM(A1)", "\tx", "\rx"}) {
    const std::string field = CsvField(cell);
    ASSERT_FALSE(field.empty());
    const size_t start = field[0] == '"' ? 1 : 0;
    EXPECT_EQ(field[start], '\'') << cell;
    // Unquoted (RFC 4180), then the guard removed: the original cell.
    std::string unquoted = field;
    if (field[0] == '"') {
      unquoted.clear();
      for (size_t i = 1; i + 1 < field.size(); ++i) {
        unquoted += field[i];
        if (field[i] == '"') ++i;
      }
    }
    EXPECT_EQ(CsvCellValue(unquoted), cell);
  }
  EXPECT_EQ(CsvCellValue("'quoted on purpose"), "'quoted on purpose");
  EXPECT_EQ(CsvField("a-b"), "a-b");  // only a leading sign is a formula
}

TEST(TableTest, ColumnsAreAlignedByDisplayWidth) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("Zoë"), 3u);        // one column for ë
  EXPECT_EQ(DisplayWidth("e\xCC\x81"), 1u);  // e + combining acute
  EXPECT_EQ(DisplayWidth("東京"), 4u);       // wide characters
  EXPECT_EQ(DisplayWidth("\xff"), 1u);       // not UTF-8: a column per byte
}

}  // namespace
}  // namespace leadflow::leadctl

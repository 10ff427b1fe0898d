#include "tools/leadctl/parse.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace leadflow::leadctl {
namespace {

TEST(ParseMoneyTest, ExactAmountsEitherOrder) {
  auto m = ParseMoney("--budget", "EUR 1200.5");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->currency_code(), "EUR");
  EXPECT_EQ(m->amount_micros(), 1'200'500'000);
  EXPECT_EQ(ParseMoney("--budget", "0.000001 usd")->amount_micros(), 1);
  EXPECT_EQ(ParseMoney("--budget", "try 7")->currency_code(), "TRY");
  EXPECT_EQ(FormatMoney(*m), "EUR 1200.50");
  EXPECT_EQ(FormatMoney(*ParseMoney("x", "PLN 3")), "PLN 3.00");
  EXPECT_EQ(FormatMoney(*ParseMoney("x", "PLN 3.125")), "PLN 3.125");
}

TEST(ParseMoneyTest, RefusesWhatIsNotAnAmount) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"1200", "currency and amount separated by a space"},
      {"EURO 5", "3-letter ISO 4217"},
      {"EUR -5", "never negative"},
      {"EUR 1.2345678", "1 to 6 decimals"},
      {"EUR 1,200", "malformed or too large"},
      {"EUR 1.", "1 to 6 decimals"},
      {"EUR 1.2x", "malformed number"},
  };
  for (const auto& c : cases) {
    auto m = ParseMoney("--deal", c.in);
    ASSERT_FALSE(m.ok()) << c.in;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(m.status().message()).find(std::string("--deal: '") + c.in),
              std::string::npos)
        << m.status();
    EXPECT_NE(std::string(m.status().message()).find(c.why), std::string::npos) << m.status();
  }
}

TEST(ParseTimeTest, AcceptsRfc3339AndDates) {
  EXPECT_EQ(ParseTime("--at", "2026-11-23T14:05:00Z")->seconds(), 1795442700);
  EXPECT_EQ(ParseTime("--at", "2026-11-23T15:05:00+01:00")->seconds(), 1795442700);
  EXPECT_EQ(ParseTime("--until", "2026-11-23")->seconds(), 1795392000);
  auto bad = ParseTime("--until", "next tuesday");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--until: 'next tuesday' is not a time like 2026-11-23T14:05:00Z or a date like "
            "2026-11-23");
}

TEST(ParsePositionTest, PartitionColonOffset) {
  auto at = ParsePosition("--after", "3:1042");
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->partition(), 3);
  EXPECT_EQ(at->offset(), 1042);
}

TEST(ParsePositionTest, RefusalsNameTheFlagAndQuoteAShortPrefix) {
  for (const char* bad : {"", "3", "3:", ":7", "a:1", "1:2:3", "1:x"}) {
    auto at = ParsePosition("--from", bad);
    ASSERT_FALSE(at.ok()) << bad;
    EXPECT_EQ(at.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(at.status().message(),
              absl::StrCat("--from: '", bad, "' is not PARTITION:OFFSET, e.g. 3:1042"));
  }
  const std::string huge(5000, '9');
  auto at = ParsePosition("--after", huge);
  ASSERT_FALSE(at.ok());
  EXPECT_LT(at.status().message().size(), 100u) << "quotes a short prefix only";
}

TEST(ParseEnumTest, ShortNamesBothWays) {
  const auto* e = v1::SourceChannel_descriptor();
  EXPECT_EQ(*ParseEnum("--source", e, "web-form"), v1::SOURCE_CHANNEL_WEB_FORM);
  EXPECT_EQ(*ParseEnum("--source", e, "Cold Call"), v1::SOURCE_CHANNEL_COLD_CALL);
  EXPECT_EQ(*ParseEnum("--source", e, "SOURCE_CHANNEL_REFERRAL"), v1::SOURCE_CHANNEL_REFERRAL);
  EXPECT_EQ(EnumShortName(e, v1::SOURCE_CHANNEL_CONTENT_DOWNLOAD), "content-download");
  EXPECT_EQ(EnumShortName(e, 0), "-");
  auto bad = ParseEnum("--source", e, "webform");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--source: unknown value 'webform'; one of: web-form, inbound-call, inbound-email, "
            "third-party, referral, event, cold-call, social, webinar, content-download");
  EXPECT_FALSE(ParseEnum("--temperature", v1::Temperature_descriptor(), "unspecified").ok());
}

}  // namespace
}  // namespace leadflow::leadctl

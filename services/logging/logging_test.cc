#include "services/logging/logging.h"

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace leadflow::logging {
namespace {

TEST(LoggingTest, TextLinesCarryKeyValueFieldsQuotedOnlyWhenNeeded) {
  EXPECT_EQ(Format(false, "command refused",
                   {{"lead_id", "L-abc"},
                    {"partition", int32_t{3}},
                    {"offset", int64_t{42}},
                    {"reason", "status is REJECTED"}}),
            "command refused lead_id=L-abc partition=3 offset=42 reason=\"status is REJECTED\"");
}

TEST(LoggingTest, JsonLinesAreValidJsonWithTypedFields) {
  const std::string body =
      Format(true, "view failed \"lead\"", {{"view", "lead"}, {"offset", int64_t{7}}});
  // The pattern wraps the body in braces with the time and level.
  nlohmann::json j = nlohmann::json::parse("{\"ts\":\"t\",\"level\":\"error\"," + body + "}");
  EXPECT_EQ(j["msg"], "view failed \"lead\"");
  EXPECT_EQ(j["view"], "lead");
  EXPECT_EQ(j["offset"], 7);
}

TEST(LoggingTest, ConfigureRefusesUnknownFormatAndLevel) {
  absl::Status s = Configure("xml", "info");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "log.format: expected text or json, got 'xml'");
  s = Configure("text", "verbose");
  EXPECT_EQ(s.message(), "log.level: expected debug, info, warn or error, got 'verbose'");
  ASSERT_TRUE(Configure("text", "warn").ok());
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  ASSERT_TRUE(Configure("text", "info").ok());
}

}  // namespace
}  // namespace leadflow::logging

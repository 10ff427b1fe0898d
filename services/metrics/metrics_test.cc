#include "services/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace leadflow::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CountsCommandsAppendsAndCallsByLabel) {
  auto m = Metrics::Start("");
  ASSERT_TRUE(m.ok()) << m.status();
  (*m)->CommandDone("capture_lead", "ok", absl::Milliseconds(2));
  (*m)->CommandDone("capture_lead", "ok", absl::Milliseconds(3));
  (*m)->CommandDone("reject_lead", "failed_precondition", absl::Milliseconds(1));
  (*m)->Appended(3, absl::Microseconds(700));
  (*m)->Synced(absl::Microseconds(300));
  (*m)->RpcDone("/leadflow.v1.LeadQueryService/GetLead", "OK", absl::Microseconds(300));
  const std::string text = (*m)->Render();
  EXPECT_THAT(text, HasSubstr("leadflow_commands_total{result=\"ok\",type=\"capture_lead\"} 2"));
  EXPECT_THAT(
      text,
      HasSubstr("leadflow_commands_total{result=\"failed_precondition\",type=\"reject_lead\"} 1"));
  EXPECT_THAT(text, HasSubstr("leadflow_appended_records_total 3"));
  EXPECT_THAT(text, HasSubstr("leadflow_append_seconds_count 1"));
  // 700 us falls in the 1 ms bucket, not in the 500 us one.
  EXPECT_THAT(text, HasSubstr("leadflow_append_seconds_bucket{le=\"0.0005\"} 0"));
  EXPECT_THAT(text, HasSubstr("leadflow_append_seconds_bucket{le=\"0.001\"} 1"));
  EXPECT_THAT(text, HasSubstr("leadflow_log_sync_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("leadflow_log_sync_seconds_bucket{le=\"0.00025\"} 0"));
  EXPECT_THAT(text, HasSubstr("leadflow_log_sync_seconds_bucket{le=\"0.0005\"} 1"));
  EXPECT_THAT(text, HasSubstr("leadflow_command_seconds_count{type=\"capture_lead\"} 2"));
  EXPECT_THAT(text, HasSubstr("leadflow_grpc_server_handling_seconds_count{code=\"OK\",method=\"/"
                              "leadflow.v1.LeadQueryService/GetLead\"} 1"));
}

TEST(MetricsTest, CollectorsAreReadAtEveryScrape) {
  auto m = Metrics::Start("");
  ASSERT_TRUE(m.ok());
  int lag = 5;
  (*m)->AddCollector([&lag] {
    return std::vector<Family>{{.name = "leadflow_view_lag_events",
                                .help = "Events behind",
                                .samples = {{.labels = {{"view", "lead"}}, .value = double(lag)}}}};
  });
  EXPECT_THAT((*m)->Render(), HasSubstr("leadflow_view_lag_events{view=\"lead\"} 5"));
  lag = 0;
  EXPECT_THAT((*m)->Render(), HasSubstr("leadflow_view_lag_events{view=\"lead\"} 0"));
}

TEST(MetricsTest, ServesOnAFreePortAndRefusesABusyOne) {
  auto first = Metrics::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  ASSERT_GT(port, 0);
  auto second = Metrics::Start("127.0.0.1:" + std::to_string(port));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(
      std::string(second.status().message()),
      HasSubstr("metrics.listen: cannot serve metrics on 127.0.0.1:" + std::to_string(port)));
}

}  // namespace
}  // namespace leadflow::metrics

#include "services/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

namespace leadflow::config {
namespace {

using ::testing::HasSubstr;
// The views of a build like the shipped one (the server's registry is above this module; the
// server's own test checks docs/configuration.md against the real registry).
const std::vector<std::string> kViews = {"lead", "customer", "funnel", "reprocessing"};

std::function<const char*(const char*)> Env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(ConfigTest, DefaultsAreTheDocumentedOnes) {
  ConfigLoader loader(kViews);
  auto c = loader.Finish();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.role, Role::All());
  EXPECT_EQ(c->node.listen, "127.0.0.1:50051");
  EXPECT_EQ(c->node.data_dir, "./leadflow-data");
  EXPECT_TRUE(c->node.sync);
  EXPECT_EQ(c->node.storage.block_cache_bytes, size_t{256} << 20);
  EXPECT_EQ(c->node.storage.memtable_bytes, size_t{128} << 20);
  EXPECT_EQ(c->log.format, "text");
  EXPECT_EQ(c->shutdown_grace, absl::Seconds(10));
  EXPECT_TRUE(c->node.metrics_listen.empty());
}

TEST(ConfigTest, FileThenEnvironmentThenFlagsEachWin) {
  ConfigLoader loader(kViews);
  ASSERT_TRUE(loader
                  .ApplyYaml(R"(
role: funnel-view
listen: 0.0.0.0:6000
partitions: 12
kafka:
  brokers: kafka-0:9092,kafka-1:9092
  properties:
    security.protocol: ssl
    ssl.ca.location: /etc/ca.pem
storage.memtable_mb: 64
metrics:
  listen: 0.0.0.0:9464
funnel:
  stage_probability_percent: [0, 5, 15, 30, 50, 90]
log: {format: json, level: debug}
)",
                             "leadflow.yaml")
                  .ok());
  ASSERT_TRUE(loader
                  .ApplyEnvironment(Env({{"LEADFLOW_LISTEN", "0.0.0.0:7000"},
                                         {"LEADFLOW_KAFKA_TOPIC", "sales.events"}}))
                  .ok());
  ASSERT_TRUE(loader.ApplyFlag("listen", "127.0.0.1:8000").ok());
  auto c = loader.Finish();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.role, Role::View("funnel"));
  EXPECT_EQ(c->node.listen, "127.0.0.1:8000");     // flag over environment over file
  EXPECT_EQ(c->node.kafka_topic, "sales.events");  // environment over default
  EXPECT_EQ(c->node.partitions, 12);
  EXPECT_EQ(c->node.kafka_brokers, "kafka-0:9092,kafka-1:9092");
  ASSERT_EQ(c->node.kafka_properties.size(), 2u);
  EXPECT_EQ(c->node.kafka_properties[0],
            (std::pair<std::string, std::string>{"security.protocol", "ssl"}));
  EXPECT_EQ(c->node.storage.memtable_bytes, size_t{64} << 20);
  EXPECT_EQ(c->node.metrics_listen, "0.0.0.0:9464");
  EXPECT_EQ(c->node.funnel.stage_probability_percent[5], 90);
  EXPECT_EQ(c->log.format, "json");
  EXPECT_EQ(c->log.level, "debug");
}

struct BadCase {
  std::string yaml;
  std::string message;
};

TEST(ConfigTest, BadFilesAreRefusedNamingTheOptionAndTheLine) {
  const std::vector<BadCase> cases = {
      {"partitions: 0\n",
       "partitions (f.yaml line 1): expected a whole number from 1 to 4096, "
       "got '0'"},
      {"listen: localhost\n",
       "listen (f.yaml line 1): expected HOST:PORT (e.g. 127.0.0.1:50051), got 'localhost'"},
      {"\nkafka:\n  broker: x:1\n",
       "f.yaml line 3: unknown option 'kafka.broker' (did you mean 'kafka.brokers'?)"},
      {"sync: maybe\n", "sync (f.yaml line 1): expected true or false, got 'maybe'"},
      {"role: reader\n",
       "role (f.yaml line 1): unknown role 'reader'; one of: all, writer, views, lead-view, "
       "customer-view, funnel-view, reprocessing-view, gateway"},
      {"log:\n  format: xml\n", "log.format (f.yaml line 2): expected text or json, got 'xml'"},
      {"funnel.stage_probability_percent: [0, 10]\n",
       "funnel.stage_probability_percent (f.yaml line 1): expected 6 comma-separated "
       "percentages, got 2"},
      {"storage:\n  memtable_mb: 1\n",
       "storage.memtable_mb (f.yaml line 2): expected a whole number from 4 to 1048576, got '1'"},
      {"kafka:\n  properties: [a]\n",
       "kafka.properties (f.yaml line 2): expected a mapping of KEY: VALUE"},
      {"listen:\n  port: 1\n", "listen (f.yaml line 1): expected a single value, got a mapping"},
      {"- a\n- b\n", "f.yaml: expected a mapping of options (key: value) at the top"},
      {"role: [\n", "f.yaml: line 2, column 1: not valid YAML"},
  };
  for (const BadCase& c : cases) {
    ConfigLoader loader(kViews);
    absl::Status s = loader.ApplyYaml(c.yaml, "f.yaml");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.yaml;
  }
}

TEST(ConfigTest, BadEnvironmentAndFlagsNameTheirSource) {
  ConfigLoader loader(kViews);
  absl::Status s = loader.ApplyEnvironment(Env({{"LEADFLOW_PARTITIONS", "many"}}));
  EXPECT_EQ(s.message(),
            "partitions (environment LEADFLOW_PARTITIONS): expected a whole number from 1 to "
            "4096, got 'many'");
  s = loader.ApplyFlag("kafka.properties", "no-equals-sign");
  EXPECT_EQ(s.message(),
            "kafka.properties (flag --kafka-property): expected KEY=VALUE, got 'no-equals-sign'");
  s = loader.ApplyFlag("metrics.listen", "9464");
  EXPECT_EQ(s.message(),
            "metrics.listen (flag --metrics-listen): expected HOST:PORT (e.g. 127.0.0.1:50051), "
            "got '9464'");
}

TEST(ConfigTest, MissingFileIsRefused) {
  ConfigLoader loader(kViews);
  absl::Status s = loader.ApplyFile("/nonexistent/leadflow.yaml");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "config file /nonexistent/leadflow.yaml: cannot be read (missing or not readable)");
}

TEST(ConfigTest, CrossOptionRulesAreCheckedAtTheEnd) {
  struct Case {
    std::map<std::string, std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"role", "lead-view"}},
       "role=lead-view: needs a shared log, kafka.brokers (--kafka-brokers) or kafka.mock"},
      {{{"kafka.mock", "true"}, {"kafka.brokers", "k:9092"}},
       "kafka.mock and kafka.brokers exclude each other"},
      {{{"role", "gateway"}}, "role=gateway: set at least one of gateway.writer"},
      {{{"role", "gateway"}, {"gateway.writer", "w:1"}, {"kafka.brokers", "k:9092"}},
       "role=gateway: does not read the log"},
      {{{"gateway.funnel_view", "f:1"}},
       "gateway.* addresses are only for role=gateway (role is all)"},
  };
  for (const Case& c : cases) {
    ConfigLoader loader(kViews);
    for (const auto& [k, v] : c.flags) ASSERT_TRUE(loader.ApplyFlag(k, v).ok()) << k;
    auto result = loader.Finish();
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.message));
  }
  ConfigLoader ok(kViews);
  ASSERT_TRUE(ok.ApplyFlag("role", "gateway").ok());
  ASSERT_TRUE(ok.ApplyFlag("gateway.funnel_view", "127.0.0.1:7001").ok());
  EXPECT_TRUE(ok.Finish().ok());
}

// A gateway forwarding to its own address would call itself forever, growing memory.
TEST(ConfigTest, AGatewayThatForwardsToItselfIsRefused) {
  for (const auto& [listen, upstream] :
       std::vector<std::pair<std::string, std::string>>{{"127.0.0.1:7000", "127.0.0.1:7000"},
                                                        {"127.0.0.1:7000", "localhost:7000"},
                                                        {"0.0.0.0:7000", "127.0.0.1:7000"},
                                                        {"[::]:7000", "[::1]:7000"},
                                                        {"0.0.0.0:7000", "localhost:7000"}}) {
    ConfigLoader loader(kViews);
    ASSERT_TRUE(loader.ApplyFlag("role", "gateway").ok());
    ASSERT_TRUE(loader.ApplyFlag("listen", listen).ok()) << listen;
    ASSERT_TRUE(loader.ApplyFlag("gateway.lead_view", "127.0.0.1:7100").ok());
    ASSERT_TRUE(loader.ApplyFlag("gateway.writer", upstream).ok()) << upstream;
    auto result = loader.Finish();
    ASSERT_FALSE(result.ok()) << listen << " -> " << upstream;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr("gateway.writer: " + upstream + " is this gateway's own address"));
  }
  // Another port, or another loopback address than the one it listens on, is not a loop.
  ConfigLoader other(kViews);
  ASSERT_TRUE(other.ApplyFlag("role", "gateway").ok());
  ASSERT_TRUE(other.ApplyFlag("listen", "127.0.0.1:7000").ok());
  ASSERT_TRUE(other.ApplyFlag("gateway.writer", "127.0.0.2:7000").ok());
  ASSERT_TRUE(other.ApplyFlag("gateway.lead_view", "localhost:7001").ok());
  EXPECT_TRUE(other.Finish().ok());
}

TEST(ConfigTest, EveryOptionHasAFlagAnEnvironmentNameAndHelp) {
  ConfigLoader loader(kViews);
  for (const OptionSpec& spec : loader.options()) {
    EXPECT_EQ(spec.flag.rfind("--", 0), 0u) << spec.key;
    EXPECT_EQ(spec.env.rfind("LEADFLOW_", 0), 0u) << spec.key;
    EXPECT_FALSE(spec.help.empty()) << spec.key;
  }
}

}  // namespace
}  // namespace leadflow::config

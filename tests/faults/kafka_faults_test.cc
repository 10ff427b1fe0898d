// Kafka faults on the librdkafka mock cluster (loopback TCP): while every broker is down the
// writer answers UNAVAILABLE within its append timeout (never success), it recovers by itself
// when they are back, a retry with the same command id lands exactly once, and a view tailing the
// topic resumes where it stopped. What the mock cannot show (transaction atomicity, fencing) is
// in docs/log.md and docs/reliability.md.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "projections/lead/lead_view.h"
#include "projections/runner/runner.h"
#include "services/command/writer.h"
#include "services/common/ids.h"
#include "services/log/event_codec.h"
#include "services/log/kafka_log.h"

namespace leadflow {
namespace {

constexpr int kBrokers = 3;
constexpr int kPartitions = 4;

v1::Command Capture(const std::string& id, const std::string& email) {
  v1::Command c;
  auto* b = c.mutable_capture_lead();
  b->mutable_meta()->set_command_id(id);
  b->mutable_meta()->mutable_actor()->set_id("fault-test");
  b->mutable_person()->set_full_name("Person " + email);
  b->set_email(email);
  b->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  return c;
}

// Every event of the topic, read committed, by command id.
std::map<std::string, int> EventsByCommand(log::EventLog& log) {
  std::map<std::string, int> out;
  for (int32_t p = 0; p < log.partition_count(); ++p) {
    auto end = log.EndOffset(p);
    EXPECT_TRUE(end.ok()) << end.status();
    auto st = log::ReadToEnd(log, p, 0, *end, 1000,
                             [&](std::vector<log::Record>& records, int64_t) -> absl::Status {
                               for (const auto& r : records) {
                                 auto e = log::DecodeEvent(r);
                                 if (!e.ok()) return e.status();
                                 ++out[e->command_id()];
                               }
                               return absl::OkStatus();
                             });
    EXPECT_TRUE(st.ok()) << st.status();
  }
  return out;
}

// A writer over a transactional Kafka log on a fresh mock cluster.
struct KafkaWriter {
  std::unique_ptr<log::MockKafkaCluster> cluster;
  std::unique_ptr<log::EventLog> writer_log, reader_log;
  common::SystemClock clock;
  std::unique_ptr<command::CommandWriter> writer;

  KafkaWriter() {
    cluster = std::move(*log::MockKafkaCluster::Start(kBrokers));
    EXPECT_TRUE(cluster->CreateTopic(std::string(log::kEventsTopic), kPartitions).ok());
    writer_log = Open("fault-test-writer");
    reader_log = Open("");
    writer = std::move(*command::CommandWriter::Open(writer_log.get(), &clock, {}));
  }
  std::unique_ptr<log::EventLog> Open(const std::string& transactional_id) {
    log::KafkaLogOptions o;
    o.bootstrap_servers = cluster->bootstrap_servers();
    o.transactional_id = transactional_id;
    o.expected_partitions = kPartitions;
    o.timeout = absl::Seconds(3);
    auto log = log::KafkaLog::Open(o);
    EXPECT_TRUE(log.ok()) << log.status();
    return std::move(*log);
  }
};

TEST(KafkaFaultTest, TransientProduceErrorsAreRetriedWithoutDuplicates) {
  KafkaWriter s;
  // The next five Produce requests fail with retriable broker errors (NOT_LEADER_OR_FOLLOWER,
  // REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS): the idempotent producer retries them.
  s.cluster->PushRequestErrors(0, {6, 7, 19, 6, 7});
  auto reply = s.writer->Execute(Capture("c1", "c1@example.com"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto second = s.writer->Execute(Capture("c2", "c2@example.com"));
  ASSERT_TRUE(second.ok()) << second.status();
  // The injection reaches the writer: a non-retriable error (MESSAGE_TOO_LARGE) fails the
  // append, which is reported, not acknowledged; the retry then lands once.
  s.cluster->PushRequestErrors(0, {10});
  auto refused = s.writer->Execute(Capture("c3", "c3@example.com"));
  EXPECT_FALSE(refused.ok()) << "an append the broker refused was acknowledged";
  absl::StatusOr<v1::CommandReply> retried = absl::UnavailableError("not tried");
  for (int i = 0; i < 20 && !retried.ok(); ++i) {
    retried = s.writer->Execute(Capture("c3", "c3@example.com"));
    if (!retried.ok()) absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_TRUE(retried.ok()) << retried.status();
  const std::map<std::string, int> events = EventsByCommand(*s.reader_log);
  EXPECT_EQ(events.at("c1"), 1);
  EXPECT_EQ(events.at("c2"), 1);
  EXPECT_EQ(events.at("c3"), 1);
  EXPECT_EQ(events.size(), 3u);
}

TEST(KafkaFaultTest, SlowBrokersDelayAppendsAndTooSlowMeansUnavailable) {
  KafkaWriter s;
  ASSERT_TRUE(s.writer->Execute(Capture("warm", "warm@example.com")).ok());
  ASSERT_TRUE(s.cluster->SetRoundTripTime(-1, absl::Milliseconds(100)).ok());
  absl::Time start = absl::Now();
  auto slow = s.writer->Execute(Capture("slow", "slow@example.com"));
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100)) << "the RTT was applied";
  // Slower than the append timeout: refused as UNAVAILABLE in bounded time, then recovered.
  ASSERT_TRUE(s.cluster->SetRoundTripTime(-1, absl::Seconds(5)).ok());
  start = absl::Now();
  auto too_slow = s.writer->Execute(Capture("too-slow", "too-slow@example.com"));
  EXPECT_FALSE(too_slow.ok());
  EXPECT_EQ(too_slow.status().code(), absl::StatusCode::kUnavailable) << too_slow.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(12));
  ASSERT_TRUE(s.cluster->SetRoundTripTime(-1, absl::ZeroDuration()).ok());
  absl::StatusOr<v1::CommandReply> retried;
  for (int i = 0; i < 30; ++i) {
    retried = s.writer->Execute(Capture("too-slow", "too-slow@example.com"));
    if (retried.ok()) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_TRUE(retried.ok()) << retried.status();
  const std::map<std::string, int> events = EventsByCommand(*s.reader_log);
  EXPECT_EQ(events.at("warm"), 1);
  EXPECT_EQ(events.at("slow"), 1);
  EXPECT_EQ(events.at("too-slow"), 1);
}

TEST(KafkaFaultTest, BrokersDownMeansUnavailableThenRecoveryWithoutLossOrDuplicates) {
  auto cluster = log::MockKafkaCluster::Start(kBrokers);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(log::kEventsTopic), kPartitions).ok());
  auto open = [&](const std::string& transactional_id) {
    log::KafkaLogOptions o;
    o.bootstrap_servers = (*cluster)->bootstrap_servers();
    o.transactional_id = transactional_id;
    o.expected_partitions = kPartitions;
    o.timeout = absl::Seconds(3);  // the bound on one append while brokers are unreachable
    auto log = log::KafkaLog::Open(o);
    EXPECT_TRUE(log.ok()) << log.status();
    return std::move(*log);
  };
  auto writer_log = open("fault-test-writer");
  auto reader_log = open("");
  common::SystemClock clock;
  command::WriterOptions wo;
  wo.id_key = "kafka-faults-test";
  auto writer = command::CommandWriter::Open(writer_log.get(), &clock, wo);
  ASSERT_TRUE(writer.ok()) << writer.status();

  // A view tails the topic throughout.
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "kafka_fault_view";
  std::filesystem::remove_all(dir);
  projections::LeadProjection projection;
  auto store = projections::ViewStore::Open(
      {.dir = dir.string(), .column_families = projection.column_families()});
  ASSERT_TRUE(store.ok());
  projections::ProjectionRunner runner(reader_log.get(), store->get(), &projection);
  runner.Start();

  auto before = (*writer)->Execute(Capture("before", "before@example.com"));
  ASSERT_TRUE(before.ok()) << before.status();

  for (int b = 1; b <= kBrokers; ++b) ASSERT_TRUE((*cluster)->SetBrokerDown(b, true).ok());
  const absl::Time start = absl::Now();
  auto during = (*writer)->Execute(Capture("during", "during@example.com"));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(during.ok()) << "acknowledged while no broker was reachable";
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable) << during.status();
  EXPECT_LT(took, absl::Seconds(10)) << "the append timeout (3 s) bounds the wait";

  for (int b = 1; b <= kBrokers; ++b) ASSERT_TRUE((*cluster)->SetBrokerDown(b, false).ok());
  // The writer recovers by itself: the retry (same command id) succeeds, exactly once, whether
  // the first attempt's records were committed or not.
  absl::StatusOr<v1::CommandReply> retried;
  for (int i = 0; i < 20; ++i) {
    retried = (*writer)->Execute(Capture("during", "during@example.com"));
    if (retried.ok()) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_TRUE(retried.ok()) << retried.status();
  auto again = (*writer)->Execute(Capture("during", "during@example.com"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed());
  auto after = (*writer)->Execute(Capture("after", "after@example.com"));
  ASSERT_TRUE(after.ok()) << after.status();

  const std::map<std::string, int> events = EventsByCommand(*reader_log);
  EXPECT_EQ(events.at("before"), 1);
  EXPECT_EQ(events.at("during"), 1) << "the command that failed, then was retried, is in once";
  EXPECT_EQ(events.at("after"), 1);

  // The view resumes where it stopped and sees all three leads.
  ASSERT_TRUE(runner.WaitForLogEnd({}, absl::Seconds(20)).ok());
  projections::LeadQueries queries(store->get());
  for (const char* email : {"before@example.com", "during@example.com", "after@example.com"}) {
    EXPECT_TRUE(queries.Get(common::LeadIdScheme("kafka-faults-test").ForEmail(email)).ok())
        << email;
  }
  runner.Stop();
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace leadflow

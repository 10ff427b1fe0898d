// The Kafka backend of EventLog (librdkafka). Appends use an idempotent producer (acks=all,
// murmur2_random partitioner, explicitly: librdkafka's defaults differ from Java's) and, when a
// transactional id is set, one Kafka transaction per Append so a batch is atomic and a stale
// writer with the same transactional id is fenced by the broker. Readers are read_committed
// consumers assigned to one partition (no consumer group join). See docs/log.md.
#ifndef LEADFLOW_SERVICES_LOG_KAFKA_LOG_H_
#define LEADFLOW_SERVICES_LOG_KAFKA_LOG_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "services/log/event_log.h"

namespace leadflow::log {

struct KafkaLogOptions {
  // Comma-separated host:port list. Required.
  std::string bootstrap_servers;
  // Topic holding the events; it must exist (deploy/kafka/create-topics.sh creates it).
  std::string topic = std::string(kEventsTopic);
  // Compacted topic holding the data keys (key: lead id; value: the wrapped key; a tombstone
  // destroys it), written in the same transaction as the events. Empty, or a topic that does
  // not exist: no key store (HasKeyStore() false).
  std::string keys_topic = std::string(kKeysTopic);
  // Transactional id of this writer; binds the producer to the partitions it owns. Empty = no
  // transactions: appends are idempotent but a failed batch may be partly written.
  std::string transactional_id;
  // If > 0, the topic must have exactly this many partitions: a different count would move
  // leads to other partitions (and other writers). 0 = adopt the topic's count.
  int32_t expected_partitions = 0;
  // Largest key+value accepted per record (also sets the producer's message.max.bytes).
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Bound on metadata look-ups, transaction init/commit and delivery of one Append.
  absl::Duration timeout = absl::Seconds(30);
  // Further librdkafka properties for both producer and consumers (security.protocol, sasl.*,
  // ssl.*, ...). Applied after leadflow's own settings, so they can override them.
  std::vector<std::pair<std::string, std::string>> properties;
};

class KafkaLog final : public EventLog {
 public:
  // Connects, checks the topic exists and learns its partition count, and (if transactional)
  // initializes transactions, which fences any older producer with the same transactional id.
  static absl::StatusOr<std::unique_ptr<KafkaLog>> Open(const KafkaLogOptions& options);
  ~KafkaLog() override;

  std::string Describe() const override;
  int32_t partition_count() const override;
  absl::StatusOr<std::vector<AppendResult>> AppendMany(
      absl::Span<const PartitionAppend> appends) override;
  absl::StatusOr<int64_t> EndOffset(int32_t partition) override;
  absl::StatusOr<int64_t> KnownEndOffset(int32_t partition) override;
  void FreshEndOffsets(
      absl::Duration timeout,
      std::function<void(const std::vector<int64_t>& ends, bool inline_call)> done) override;
  absl::StatusOr<std::unique_ptr<LogReader>> OpenReader(int32_t partition,
                                                        int64_t from_offset) override;
  // The keys topic: this process's map of it, caught up to the topic's end (read_committed) on a
  // miss, so a key committed with an event this process read is always found.
  bool HasKeyStore() const override;
  absl::StatusOr<std::string> ReadKey(const std::string& lead_id) override;
  void ForgetKey(const std::string& lead_id) override;

  struct Impl;

 private:
  explicit KafkaLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An in-process librdkafka mock cluster listening on loopback TCP, for tests and
// `leadflow serve --kafka-mock`. Its limits (docs/log.md): ~5 MiB kept per partition, no
// transaction enforcement (aborted records are visible to read_committed readers), no
// CreateTopics admin call (use CreateTopic here).
class MockKafkaCluster {
 public:
  static absl::StatusOr<std::unique_ptr<MockKafkaCluster>> Start(int brokers = 1);
  ~MockKafkaCluster();
  std::string bootstrap_servers() const;
  absl::Status CreateTopic(const std::string& topic, int partitions);
  absl::Status SetBrokerDown(int32_t broker_id, bool down);
  // The next `errors.size()` requests of Kafka protocol type `api_key` (0 = Produce) fail with
  // these broker error codes, in order (fault injection for tests).
  void PushRequestErrors(int16_t api_key, const std::vector<int>& errors);
  // Adds `rtt` of round-trip delay to every broker (-1) or one broker.
  absl::Status SetRoundTripTime(int32_t broker_id, absl::Duration rtt);

  struct Impl;

 private:
  explicit MockKafkaCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leadflow::log

#endif  // LEADFLOW_SERVICES_LOG_KAFKA_LOG_H_

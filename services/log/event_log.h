// The event log: one interface, two backends (embedded RocksDB log, Kafka), one conformance
// suite (log_conformance_test.cc). Records are opaque bytes here; services/log/event_codec.h
// turns them into leadflow.v1.Event.
//
// Guarantees every backend gives (and the conformance suite checks):
//  - Per partition, records are read back in append order with strictly increasing offsets.
//    Offsets may have gaps (Kafka transaction markers take offsets); the embedded log has none.
//  - Append(partition, batch) is all-or-nothing and contiguous: no other append interleaves.
//  - A batch that fails validation (empty, empty key/value, oversized) writes nothing.
//  - A reader opened at offset N sees exactly the records at offsets >= N.
#ifndef LEADFLOW_SERVICES_LOG_EVENT_LOG_H_
#define LEADFLOW_SERVICES_LOG_EVENT_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace leadflow::log {

// The topic every leadflow event lives on (docs/events.md).
inline constexpr absl::string_view kEventsTopic = "leadflow.events.v1";
// The Kafka topic of the data keys (compacted; docs/security.md).
inline constexpr absl::string_view kKeysTopic = "leadflow.keys.v1";
// Default partition count of a new log.
inline constexpr int32_t kDefaultPartitions = 8;
// Largest single record value accepted (Kafka's default message.max.bytes is ~1 MB).
inline constexpr size_t kDefaultMaxMessageBytes = 1 << 20;

// A record to append.
struct Message {
  std::string key;    // partition key (the lead id); never empty
  std::string value;  // serialized event; never empty
};

// A record read back.
struct Record {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  absl::Time timestamp;  // when the log stored it
};

struct AppendResult {
  int32_t partition = 0;
  int64_t first_offset = 0;  // offset of batch[0]
  int64_t last_offset = 0;   // offset of batch.back()
};

// Reads one partition in order from a start offset. Not thread-safe; one reader per thread.
class LogReader {
 public:
  virtual ~LogReader() = default;
  // Up to `max_records` records at or after position(). Blocks up to `timeout` for the first
  // one (without sleep-polling: woken by the append, or by the broker's long poll); returns an
  // empty vector if none arrived in time.
  virtual absl::StatusOr<std::vector<Record>> Read(size_t max_records, absl::Duration timeout) = 0;
  // The next offset this reader will return a record at or after.
  virtual int64_t position() const = 0;
};

// A lead's data key (services/privacy/vault.h), wrapped under the key-encryption key, written in
// the same atomic append as the lead's first sealed event. An empty `wrapped` destroys the key
// (erasure).
struct KeyRecord {
  std::string lead_id;
  std::string wrapped;
};

// One partition's share of an AppendMany, and the data keys that must land with it.
struct PartitionAppend {
  int32_t partition = 0;
  absl::Span<const Message> batch;
  absl::Span<const KeyRecord> keys = {};
};

class EventLog {
 public:
  virtual ~EventLog() = default;
  // "embedded:<dir>" or "kafka:<brokers>/<topic>", for logs and status output.
  virtual std::string Describe() const = 0;
  virtual int32_t partition_count() const = 0;
  // Appends to several distinct partitions at once, all or nothing across them (embedded: one
  // RocksDB write batch and one fsync; Kafka: one transaction). Each batch lands contiguously
  // and in order on its partition. One result per element, in order. Durable when it returns OK
  // (embedded: fsync'd unless Options.sync is false; Kafka: acks=all, committed).
  virtual absl::StatusOr<std::vector<AppendResult>> AppendMany(
      absl::Span<const PartitionAppend> appends) = 0;
  // Two-step append, for a writer that decides its next commands while the last ones are made
  // durable. AppendManyDeferred writes like AppendMany (same offsets, same all-or-nothing) but
  // may return before the records are durable; readers (OpenReader, EndOffset) do not see them
  // yet. Sync() makes every record appended before it durable and visible; after a failed Sync
  // the outcome of those appends is unknown and the log refuses further appends (reopen it).
  // A log whose appends are durable on return keeps these defaults (Kafka: a committed
  // transaction): AppendManyDeferred is AppendMany and Sync() has nothing to do.
  virtual absl::StatusOr<std::vector<AppendResult>> AppendManyDeferred(
      absl::Span<const PartitionAppend> appends) {
    return AppendMany(appends);
  }
  virtual absl::Status Sync() { return absl::OkStatus(); }
  // OK if the log takes appends now; else why not (a full disk, a failed write: UNAVAILABLE).
  virtual absl::Status Writable() const { return absl::OkStatus(); }
  // Reopens a log whose storage stopped taking appends (a full disk, an I/O error) once the
  // cause is gone; OK if it takes appends again, else why not (it keeps serving reads). What
  // reached the disk before the failure is there after it; appends whose outcome was unknown
  // may or may not be. Logs that recover by themselves (Kafka) keep this default.
  virtual absl::Status Recover() { return absl::OkStatus(); }
  // A consistent copy of the log as of now in `dir` (which must not exist), while appends go
  // on (leadflow backup). Kafka: UNIMPLEMENTED (the cluster keeps and replicates the log).
  virtual absl::Status Checkpoint(const std::string& dir) {
    return absl::UnimplementedError(
        absl::StrCat(Describe(), ": back up the Kafka topic with the cluster's own tools"));
  }
  // AppendMany of one partition.
  absl::StatusOr<AppendResult> Append(int32_t partition, absl::Span<const Message> batch);
  // The offset after the last record of the partition (Kafka: the high watermark).
  virtual absl::StatusOr<int64_t> EndOffset(int32_t partition) = 0;
  // The end as this process last learned it, without a request that could block: for health
  // and metrics, which must not hang while the cluster is away. Kafka: the high watermark from
  // this process's readers' latest fetch (UNAVAILABLE until one answered; librdkafka 2.0's
  // watermark query can hang forever when a broker is down, librdkafka #2588). Embedded: EndOffset.
  virtual absl::StatusOr<int64_t> KnownEndOffset(int32_t partition) { return EndOffset(partition); }
  // The end of every partition as of now, without blocking the caller: `done` runs once, with
  // one end per partition (-1 where it could not be learned within `timeout`), and `fresh` true
  // if it ran on the caller's thread before FreshEndOffsets returned. Embedded: at once (the
  // ends are exact). Kafka: one ListOffsets request for all partitions on a thread of the log's,
  // shared by the callers that ask meanwhile and bounded by `timeout` (never the watermark
  // query, which can hang while a broker is away: librdkafka #2588).
  virtual void FreshEndOffsets(
      absl::Duration timeout,
      std::function<void(const std::vector<int64_t>& ends, bool inline_call)> done);
  virtual absl::StatusOr<std::unique_ptr<LogReader>> OpenReader(int32_t partition,
                                                                int64_t from_offset) = 0;

  // The key store beside the log (docs/security.md). A backend without one refuses appends that
  // carry keys (FAILED_PRECONDITION) and says so here.
  virtual bool HasKeyStore() const { return false; }
  // The wrapped data key of `lead_id` as of the last append this process can see: NOT_FOUND if
  // it has none (never had one, or destroyed by an erasure); UNAVAILABLE if the store cannot be
  // read now (retry: never treat that as "no key").
  virtual absl::StatusOr<std::string> ReadKey(const std::string& lead_id) {
    return absl::NotFoundError(absl::StrCat(Describe(), " has no key store"));
  }
  // This process learned (from a LeadErased event) that `lead_id`'s key is destroyed: forget any
  // copy held in memory (Kafka: the map of the keys topic), so it is never used again here.
  virtual void ForgetKey(const std::string& lead_id) {}
  // Makes destroyed keys physically gone from the store's files (embedded: flush and compact;
  // Kafka: the keys topic's compaction does it). Slow; call after an erasure, off the hot path.
  virtual absl::Status PurgeDestroyedKeys() { return absl::OkStatus(); }
};

// Reads `partition` from `from` until the reader reaches `end` (an EndOffset() taken earlier, or
// where another copy stopped), never delivering a record at or past `end`, calling
// `chunk(records, position)` for each read of up to `max_records` (records may be empty
// when only Kafka transaction markers were passed; `position` is the reader's position after it).
// Stops at the first error `chunk` returns. UNAVAILABLE if no record arrives for `stall` before
// `end`, so a replay is never mistaken for complete. Returns the final position.
absl::StatusOr<int64_t> ReadToEnd(
    EventLog& log, int32_t partition, int64_t from, int64_t end, size_t max_records,
    const std::function<absl::Status(std::vector<Record>& records, int64_t position)>& chunk,
    absl::Duration stall = absl::Seconds(5));

// Kafka's default partitioner, bit for bit (Java's Utils.murmur2, librdkafka's "murmur2"):
// (murmur2(key) & 0x7fffffff) % partition_count. Both backends route keys with it, so a lead
// lives on the same partition number in the embedded log and on Kafka.
int32_t PartitionForKey(absl::string_view key, int32_t partition_count);
uint32_t Murmur2(absl::string_view data);

// INVALID_ARGUMENT "<field>: <partition> is out of range [0, <count>)" unless 0 <= partition <
// count.
absl::Status CheckPartition(absl::string_view field, int32_t partition, int32_t count);

// Shared validation of Append arguments; the error names the offending batch element.
absl::Status ValidateAppend(int32_t partition, int32_t partition_count,
                            absl::Span<const Message> batch, size_t max_message_bytes);
// Validation of AppendMany: every element as above, and no partition twice.
absl::Status ValidateAppendMany(absl::Span<const PartitionAppend> appends, int32_t partition_count,
                                size_t max_message_bytes);

}  // namespace leadflow::log

#endif  // LEADFLOW_SERVICES_LOG_EVENT_LOG_H_

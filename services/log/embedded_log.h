// The embedded log: the default backend for a single machine. A RocksDB database in the data
// directory holds every record under (partition, offset); an Append is one WriteBatch, so it is
// atomic, and it is fsync'd before Append returns unless `sync` is off. See docs/log.md.
#ifndef LEADFLOW_SERVICES_LOG_EMBEDDED_LOG_H_
#define LEADFLOW_SERVICES_LOG_EMBEDDED_LOG_H_

#include <memory>
#include <string>

#include "services/log/event_log.h"
#include "services/storage/storage_budget.h"

namespace leadflow::log {

struct EmbeddedLogOptions {
  // Directory of the log; created if missing.
  std::string dir;
  // Partitions of a new log. An existing log keeps the count it was created with, and opening it
  // with a different count is refused (records would move between partitions). 0 with
  // read_only: the stored count.
  int32_t partitions = kDefaultPartitions;
  // An existing log keeps its stored count without a word when `partitions` was not chosen by
  // the user (a default): only an explicit, different count is refused.
  bool adopt_stored_partitions = false;
  // If true, every Append is fsync'd before it returns (survives power loss). If false, a
  // process crash still loses nothing acknowledged (the write-ahead log is written), but a
  // machine crash may lose the last appends.
  bool sync = true;
  // Open it read-only: no appends, no lock on the directory (leadflow verify beside a running
  // leadflow), what was written until now is read (its write-ahead log is replayed in memory).
  bool read_only = false;
  // Largest key+value accepted per record.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // RocksDB block cache for reads, in bytes, when no shared budget is given.
  size_t block_cache_bytes = 32 << 20;
  // The process's shared block cache and memtable budget (storage_budget.h); empty: own cache.
  storage::StorageBudget budget = {};
};

class EmbeddedLog final : public EventLog {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedLog>> Open(const EmbeddedLogOptions& options);
  // Readers opened from this log must be destroyed before it.
  ~EmbeddedLog() override;

  std::string Describe() const override;
  int32_t partition_count() const override;
  absl::StatusOr<std::vector<AppendResult>> AppendMany(
      absl::Span<const PartitionAppend> appends) override;
  // Written to RocksDB (its write-ahead log is in the OS: a process crash keeps the records), not
  // fsync'd, not visible to readers until Sync().
  absl::StatusOr<std::vector<AppendResult>> AppendManyDeferred(
      absl::Span<const PartitionAppend> appends) override;
  // One fsync of the write-ahead log (unless Options.sync is false), then the records appended
  // before it become visible.
  absl::Status Sync() override;
  // Not after a failed write or sync, a background error, or a read-only open (there was no
  // room on the disk to open it for writing).
  absl::Status Writable() const override;
  // Closes and reopens the database for writing (reads wait meanwhile); if that fails it stays
  // (or becomes) open read-only.
  absl::Status Recover() override;
  // RocksDB's checkpoint (hard links to the table files, a copy of the write-ahead log as of now,
  // no flush: it needs little room).
  absl::Status Checkpoint(const std::string& dir) override;
  absl::StatusOr<int64_t> EndOffset(int32_t partition) override;
  // The key store: the log database's "keys" column family, written in the appends' batch.
  bool HasKeyStore() const override { return true; }
  absl::StatusOr<std::string> ReadKey(const std::string& lead_id) override;
  absl::Status PurgeDestroyedKeys() override;
  absl::StatusOr<std::unique_ptr<LogReader>> OpenReader(int32_t partition,
                                                        int64_t from_offset) override;

  struct Impl;

 private:
  explicit EmbeddedLog(std::unique_ptr<Impl> impl);
  absl::StatusOr<std::vector<AppendResult>> Write(absl::Span<const PartitionAppend> appends,
                                                  bool durable);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leadflow::log

#endif  // LEADFLOW_SERVICES_LOG_EMBEDDED_LOG_H_

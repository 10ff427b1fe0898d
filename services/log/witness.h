// Witnesses of a log: what a reader of the log (the writer, a view) knows it held. A log whose
// partition ends before a witness's offset, or holds another record just before it, lost
// acknowledged events: a truncated write-ahead log that ends exactly on a record boundary passes
// every recovery check of the log itself, so the damage is found from outside it.
//
// The writer keeps its witness in a small file (WitnessFile) rewritten after each sync; each
// view keeps its own in its store, in the same write as its rows (projections/runner).
#ifndef LEADFLOW_SERVICES_LOG_WITNESS_H_
#define LEADFLOW_SERVICES_LOG_WITNESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/log/event_log.h"

namespace leadflow::log {

// One partition as a witness saw it: the log's end (next offset), and the offset and digest
// (RecordDigest) of the last record before that end (-1 and empty if none is known; on Kafka the
// end may lie past the last record, after transaction markers).
struct PartitionMark {
  int64_t end = 0;
  int64_t record_offset = -1;
  std::string digest;
};

// 16 hex digits of SHA-256 of a record's value: enough to tell one record from another.
std::string RecordDigest(absl::string_view value);

// Checks `partition` of `log` against `mark` seen by `witness` (for messages: "the writer",
// "view lead"). OK if the log holds at least the mark's end and its record at record_offset has
// the mark's digest; else DATA_LOSS naming the partition, the last good offset and the witness.
absl::Status CheckMark(EventLog& log, int32_t partition, const PartitionMark& mark,
                       const std::string& witness);

// The writer's witness: per partition the end of what it made durable. Two slots written in
// turn, each with a checksum, so a write torn by a crash leaves the other one whole; not fsync'd
// (a witness that lags after a power failure only checks less: it can never be ahead of the log,
// being written after the log's sync). Thread-safe.
class WitnessFile {
 public:
  // Reads `path` (a missing file: no marks yet; a file with no whole slot: no marks, and
  // `damaged()` says so).
  static absl::StatusOr<std::unique_ptr<WitnessFile>> Open(const std::string& path,
                                                           int32_t partitions);
  // The marks in `path` without opening it for writing (leadflow verify); no file: none.
  static absl::StatusOr<std::vector<PartitionMark>> Read(const std::string& path,
                                                         int32_t partitions);
  ~WitnessFile();
  // The marks read at Open and advanced since.
  std::vector<PartitionMark> marks() const;
  bool damaged() const { return damaged_; }
  const std::string& path() const { return path_; }
  // Raises partition marks (a lower end is ignored) and writes the file.
  absl::Status Advance(const std::vector<std::pair<int32_t, PartitionMark>>& marks);
  // Sets every mark (after the operator accepted a loss) and writes the file.
  absl::Status Reset(const std::vector<PartitionMark>& marks);

 private:
  WitnessFile() = default;
  absl::Status WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string path_;
  int fd_ = -1;
  bool damaged_ = false;
  mutable absl::Mutex mu_;
  std::vector<PartitionMark> marks_ ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leadflow::log

#endif  // LEADFLOW_SERVICES_LOG_WITNESS_H_

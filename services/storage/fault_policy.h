// How every RocksDB database of leadflow meets faults (a full disk, an I/O error):
//  - its info log goes to leadflow's own log, never to a LOG file beside the data: Debian's
//    RocksDB 7.8 is built with assertions, and after ENOSPC it writes its own LOG again and
//    aborts (writable_file_writer.h `sync_without_flush_called_`);
//  - a background error (a failed flush, compaction or MANIFEST write) is recorded in the
//    store's StoreHealth and RocksDB's in-place auto-recovery is off (7.8's resume can reuse a
//    failed WAL writer, another assertion): the owner reopens the database instead, once the
//    cause is gone (docs/reliability.md).
#ifndef LEADFLOW_SERVICES_STORAGE_FAULT_POLICY_H_
#define LEADFLOW_SERVICES_STORAGE_FAULT_POLICY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace rocksdb {
struct DBOptions;
class Status;
}  // namespace rocksdb

namespace leadflow::storage {

// What went wrong with one database, as far as its owner must know: OK, or the error that made
// it stop taking writes (the owner reopens it). Thread-safe.
class StoreHealth {
 public:
  absl::Status error() const;
  // Keeps the first error until Clear().
  void Fail(absl::Status why);
  void Clear();

 private:
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Applies the policy above to `db` (which is about to be opened): info log, paranoid checks,
// no flush of recovered data at open (a reopen on a nearly full disk needs little room), and a
// listener that reports background errors to `health` (if given).
void ApplyFaultPolicy(rocksdb::DBOptions* db, const std::shared_ptr<StoreHealth>& health = nullptr);

// RocksDB's log lines go here (severity: 0 debug .. 4 fatal; messages are RocksDB's own, never
// leadflow data). Default: warnings and worse to standard error. Set once at start-up.
void SetRocksLogSink(std::function<void(int severity, const std::string& message)> sink);

// True for RocksDB warnings that are expected in leadflow and say nothing to an operator: the
// file-deletion pause a checkpoint (leadflow backup) nests, and table files the command index
// ingests (written by SstFileWriter, which gives them no unique id). Logged at debug level.
bool IsExpectedRocksWarning(const std::string& message);

// The one mapping of a RocksDB status to leadflow's codes (every store uses it): corruption
// DATA_LOSS; the database's LOCK held by another process FAILED_PRECONDITION (with a hint);
// IOError, NoSpace, Busy, TryAgain, TimedOut (a full disk, a disk gone read-only) UNAVAILABLE;
// InvalidArgument, NotSupported FAILED_PRECONDITION; anything else UNAVAILABLE. `what` prefixes
// the message ("embedded log: append").
absl::Status FromRocks(const rocksdb::Status& s, const std::string& what);

// True if an Open failed because another process (or this one) holds the database's LOCK file;
// false for a LOCK file that cannot be created (a read-only or full disk: UNAVAILABLE).
bool IsLockHeld(const rocksdb::Status& s);

}  // namespace leadflow::storage

#endif  // LEADFLOW_SERVICES_STORAGE_FAULT_POLICY_H_

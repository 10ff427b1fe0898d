#include "services/storage/fault_policy.h"

#include <cstdarg>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "rocksdb/env.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"

namespace leadflow::storage {
namespace {

absl::Mutex sink_mu;
std::function<void(int, const std::string&)>* sink ABSL_GUARDED_BY(sink_mu) = nullptr;

class ForwardingLogger final : public rocksdb::Logger {
 public:
  ForwardingLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), format, ap);
    const int severity = static_cast<int>(level);  // DEBUG 0 .. FATAL 4 (HEADER 5)
    absl::MutexLock lock(&sink_mu);
    if (sink != nullptr) {
      (*sink)(std::min(severity, 4), buf);
    } else if (severity >= static_cast<int>(rocksdb::InfoLogLevel::WARN_LEVEL) &&
               severity <= static_cast<int>(rocksdb::InfoLogLevel::FATAL_LEVEL)) {
      std::cerr << "rocksdb: " << buf << "\n";
    }
  }
};

// Records hard background errors and keeps RocksDB from resuming in place.
class HealthListener final : public rocksdb::EventListener {
 public:
  explicit HealthListener(std::shared_ptr<StoreHealth> health) : health_(std::move(health)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    if (error->severity() >= rocksdb::Status::Severity::kHardError ||
        reason == rocksdb::BackgroundErrorReason::kWriteCallback ||
        reason == rocksdb::BackgroundErrorReason::kMemTable) {
      health_->Fail(FromRocks(*error, "background write"));
    }
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    // A compaction that ran out of room is retried by RocksDB itself (a soft error); anything
    // that stopped writes is recovered by reopening the database.
    if (bg_error.severity() >= rocksdb::Status::Severity::kHardError) *auto_recovery = false;
  }

 private:
  std::shared_ptr<StoreHealth> health_;
};

}  // namespace

absl::Status StoreHealth::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

void StoreHealth::Fail(absl::Status why) {
  absl::MutexLock lock(&mu_);
  if (error_.ok()) error_ = std::move(why);
}

void StoreHealth::Clear() {
  absl::MutexLock lock(&mu_);
  error_ = absl::OkStatus();
}

void ApplyFaultPolicy(rocksdb::DBOptions* db, const std::shared_ptr<StoreHealth>& health) {
  static const std::shared_ptr<rocksdb::Logger> logger = std::make_shared<ForwardingLogger>();
  db->info_log = logger;
  db->paranoid_checks = true;
  db->avoid_flush_during_recovery = true;
  // No preallocation: RocksDB reserves about write_buffer_size x 1.1 (tens of MB) for every new
  // WAL and table file with fallocate, which a small disk counts as used. Each store reopened
  // after a full disk then took the room just freed, so writing never resumed (the crash loop's
  // disk-full phase on 96 MB), and the free space the disk guard reads was not the truth.
  db->allow_fallocate = false;
  if (health != nullptr) db->listeners.push_back(std::make_shared<HealthListener>(health));
}

void SetRocksLogSink(std::function<void(int, const std::string&)> f) {
  absl::MutexLock lock(&sink_mu);
  delete sink;
  sink = f ? new std::function<void(int, const std::string&)>(std::move(f)) : nullptr;
}

bool IsExpectedRocksWarning(const std::string& message) {
  return message.find("File Deletions") != std::string::npos ||
         message.find("opened without unique ID to verify") != std::string::npos;
}

bool IsLockHeld(const rocksdb::Status& s) {
  // RocksDB's PosixFileSystem::LockFile: "While lock file: <path>: <strerror>" when fcntl finds
  // the lock taken, "lock hold by current process" when this process holds it; a LOCK file
  // that cannot be opened is "while open a file for lock" (EROFS, ENOSPC, EACCES).
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("While lock file") != std::string::npos ||
         text.find("lock hold by current process") != std::string::npos;
}

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (IsLockHeld(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat(msg, " (is another leadflow process using this data directory?)"));
  }
  if (s.IsNoSpace() || s.IsIOError() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsInvalidArgument() || s.IsNotSupported()) return absl::FailedPreconditionError(msg);
  return absl::UnavailableError(msg);
}

}  // namespace leadflow::storage

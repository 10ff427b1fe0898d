#include "services/command/command_index.h"

#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "services/common/status_util.h"

namespace leadflow::command {

v1::CommandReply CommandRecord::Replayed() const {
  v1::CommandReply r;
  r.ParseFromString(reply);
  r.set_replayed(true);
  return r;
}

namespace {

class MemoryCommandIndex final : public CommandIndex {
 public:
  absl::Status PutMany(const std::vector<std::pair<std::string, CommandRecord>>& records) override {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, record] : records) records_[key] = record;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<CommandRecord>> Get(const std::string& key) const override {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(key);
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, CommandRecord> records_ ABSL_GUARDED_BY(mu_);
};

// The hash memtable reads a key's first kCommandIndexPrefixLength bytes: shorter keys are a bug.
absl::Status CheckKey(const std::string& key) {
  if (key.size() > kCommandIndexPrefixLength) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("command index: key '", key,
                                          "' does not start with a lead id"));
}

// Value: fingerprint '\0' type '\0' reply (fingerprints are hex, types are names: no NULs).
class DiskCommandIndex final : public CommandIndex {
 public:
  explicit DiskCommandIndex(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {
    write_.disableWAL = true;
  }
  absl::Status PutMany(const std::vector<std::pair<std::string, CommandRecord>>& records) override {
    size_t bytes = 12;
    for (const auto& [key, record] : records) {
      bytes += 11 + key.size() + record.fingerprint.size() + record.type.size() +
               record.reply.size() + 2;
    }
    rocksdb::WriteBatch batch(bytes);
    for (const auto& [key, record] : records) {
      LEADFLOW_RETURN_IF_ERROR(CheckKey(key));
      // fingerprint \0 type \0 reply, from its parts (Get splits it).
      const rocksdb::Slice key_slice(key);
      const rocksdb::Slice parts[] = {record.fingerprint, rocksdb::Slice("\0", 1), record.type,
                                      rocksdb::Slice("\0", 1), record.reply};
      rocksdb::Status s =
          batch.Put(rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(parts, 5));
      if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
    }
    rocksdb::Status s = db_->Write(write_, &batch);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<CommandRecord>> Get(const std::string& key) const override {
    LEADFLOW_RETURN_IF_ERROR(CheckKey(key));
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
    const size_t a = value.find('\0');
    const size_t b = a == std::string::npos ? a : value.find('\0', a + 1);
    if (b == std::string::npos) {
      return absl::DataLossError(absl::StrCat("command index: corrupt record for ", key));
    }
    return CommandRecord{value.substr(0, a), value.substr(a + 1, b - a - 1), value.substr(b + 1)};
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_;
};

}  // namespace

std::unique_ptr<CommandIndex> NewMemoryCommandIndex() {
  return std::make_unique<MemoryCommandIndex>();
}

absl::StatusOr<std::unique_ptr<CommandIndex>> OpenDiskCommandIndex(
    const std::string& dir, const storage::StorageBudget& budget, size_t cache_bytes) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // derived data: the replay rebuilds it
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("command index: cannot create ", dir, ": ", ec.message()));
  }
  rocksdb::Options o;
  o.create_if_missing = true;
  o.max_background_jobs = 1;
  o.write_buffer_size = 32 << 20;
  // Keys are "<lead id>/<command id>" and lead ids are hashes, so inserts land anywhere in the
  // key space: in the default skip-list memtable each insert walked ~17 levels of cold nodes
  // (9-13 % of the batched write path, perf). A hash of skip lists by lead id makes an insert
  // and a Get one bucket lookup; the index never iterates (flushes sort in the background).
  o.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kCommandIndexPrefixLength));
  o.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(/*bucket_count=*/1 << 18));
  o.allow_concurrent_memtable_write = false;  // not supported by the hash memtable
  rocksdb::BlockBasedTableOptions table;
  storage::ApplyStorageBudget(budget, cache_bytes, &o, &table);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;  // bounded by the cache, not by the data size
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
  return std::unique_ptr<CommandIndex>(new DiskCommandIndex(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace leadflow::command

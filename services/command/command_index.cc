#include "services/command/command_index.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/storage/fault_policy.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
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

// Keys are "<lead id>/<command id>": anything shorter is a bug.
absl::Status CheckKey(const std::string& key) {
  if (key.size() > kCommandIndexPrefixLength) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("command index: key '", key, "' does not start with a lead id"));
}

// Value: fingerprint '\0' type '\0' reply (fingerprints are hex, types are names: no NULs).
absl::StatusOr<CommandRecord> DecodeValue(const std::string& key, absl::string_view value) {
  const size_t a = value.find('\0');
  const size_t b = a == absl::string_view::npos ? a : value.find('\0', a + 1);
  if (b == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat("command index: corrupt record for ", key));
  }
  return CommandRecord{std::string(value.substr(0, a)), std::string(value.substr(a + 1, b - a - 1)),
                       std::string(value.substr(b + 1))};
}

// Records are kept in a hash map until they reach `spill_bytes`, then sorted and written by a
// background thread as one table file that RocksDB ingests (no memtable). Keys are lead-id
// hashes, so they arrive in random order: in a RocksDB memtable every insert (skip list) or every
// flush (hash memtable) paid a cold skip-list walk per record, 13 % of all CPU while loading
// batches (perf); sorting a vector here costs a fraction of that. Reads look in the map, then in
// the batch being spilled, then in RocksDB.
class DiskCommandIndex final : public CommandIndex {
 public:
  // Records waiting for a spill: keys and values copied into 1 MiB blocks (one allocation per
  // block, not two per record), looked up through a map of views into them.
  class Map {
   public:
    void Put(const std::string& key, const CommandRecord& record) {
      const absl::string_view k = Copy({key});
      const absl::string_view v = Copy({record.fingerprint, absl::string_view("\0", 1), record.type,
                                        absl::string_view("\0", 1), record.reply});
      map_[k] = v;
    }
    const absl::string_view* Find(absl::string_view key) const {
      auto it = map_.find(key);
      return it == map_.end() ? nullptr : &it->second;
    }
    // What the batch holds: the records' bytes and the map's slots.
    size_t bytes() const {
      return copied_ +
             map_.capacity() * (sizeof(std::pair<absl::string_view, absl::string_view>) + 1);
    }
    const absl::flat_hash_map<absl::string_view, absl::string_view>& entries() const {
      return map_;
    }

   private:
    static constexpr size_t kBlock = 1 << 20;
    absl::string_view Copy(std::initializer_list<absl::string_view> parts) {
      size_t n = 0;
      for (absl::string_view p : parts) n += p.size();
      if (blocks_.empty() || used_ + n > block_size_) {
        block_size_ = std::max(kBlock, n);
        blocks_.push_back(std::make_unique<char[]>(block_size_));
        used_ = 0;
      }
      char* start = blocks_.back().get() + used_;
      char* out = start;
      for (absl::string_view p : parts) out = std::copy(p.begin(), p.end(), out);
      used_ += n;
      copied_ += n;
      return absl::string_view(start, n);
    }
    std::vector<std::unique_ptr<char[]>> blocks_;
    size_t used_ = 0, block_size_ = 0, copied_ = 0;
    absl::flat_hash_map<absl::string_view, absl::string_view> map_;
  };

  DiskCommandIndex(std::unique_ptr<rocksdb::DB> db, rocksdb::Options options, std::string dir,
                   size_t spill_bytes)
      : db_(std::move(db)),
        options_(std::move(options)),
        dir_(std::move(dir)),
        spill_bytes_(spill_bytes) {}

  ~DiskCommandIndex() override {
    std::thread spiller;
    {
      absl::MutexLock lock(&mu_);
      spiller.swap(spiller_);
    }
    if (spiller.joinable()) spiller.join();
  }

  absl::Status PutMany(const std::vector<std::pair<std::string, CommandRecord>>& records) override {
    for (const auto& [key, record] : records) LEADFLOW_RETURN_IF_ERROR(CheckKey(key));
    std::thread previous;
    {
      absl::MutexLock lock(&mu_);
      LEADFLOW_RETURN_IF_ERROR(spill_status_);
      for (const auto& [key, record] : records) recent_.Put(key, record);
      if (recent_.bytes() < spill_bytes_) return absl::OkStatus();
      // One spill at a time: wait for the last one (it is usually long done).
      mu_.Await(absl::Condition(this, &DiskCommandIndex::SpillIdleOrFailed));
      LEADFLOW_RETURN_IF_ERROR(spill_status_);
      frozen_ = std::make_shared<const Map>(std::move(recent_));
      recent_ = Map();
      previous.swap(spiller_);
      spiller_ = std::thread([this, frozen = frozen_, n = spills_++] { Spill(*frozen, n); });
    }
    if (previous.joinable()) previous.join();  // finished: it cleared frozen_ as its last step
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<CommandRecord>> Get(const std::string& key) const override {
    LEADFLOW_RETURN_IF_ERROR(CheckKey(key));
    {
      absl::MutexLock lock(&mu_);
      if (const absl::string_view* v = recent_.Find(key)) return DecodeValue(key, *v);
      if (frozen_ != nullptr) {
        if (const absl::string_view* v = frozen_->Find(key)) return DecodeValue(key, *v);
      }
    }
    // Not in memory: a spill that was running has been ingested (frozen_ is cleared only after
    // a successful ingestion).
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
    return DecodeValue(key, value);
  }

 private:
  bool SpillIdleOrFailed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return frozen_ == nullptr || !spill_status_.ok();
  }

  void Spill(const Map& records, int64_t n) {
    const absl::Status done = WriteAndIngest(records, n);
    absl::MutexLock lock(&mu_);
    if (done.ok()) {
      frozen_ = nullptr;
    } else {
      // The records stay readable from memory, so a retry of one of these commands is still
      // answered from its record; every later PutMany reports the failure, and the writer
      // refuses commands until a restart rebuilds the index from the log.
      spill_status_ = done;
    }
  }

  absl::Status WriteAndIngest(const Map& records, int64_t n) const {
    // Sorted by key, exactly as RocksDB orders them (bytewise): the key's first 8 bytes, loaded
    // big-endian, decide most comparisons without touching the strings; equal ones compare the
    // keys. (CheckKey: every key is longer than 8 bytes.)
    struct Entry {
      uint64_t head;
      absl::string_view key;
      absl::string_view value;
    };
    std::vector<Entry> entries;
    entries.reserve(records.entries().size());
    for (const auto& [key, value] : records.entries()) {
      uint64_t head = 0;
      for (size_t i = 0; i < 8; ++i) head = (head << 8) | static_cast<unsigned char>(key[i]);
      entries.push_back({head, key, value});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.head != b.head ? a.head < b.head : a.key < b.key;
    });
    const std::string path = absl::StrCat(dir_, "/spill-", n, ".sst.tmp");
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options_);
    rocksdb::Status s = writer.Open(path);
    for (size_t i = 0; s.ok() && i < entries.size(); ++i) {
      s = writer.Put(rocksdb::Slice(entries[i].key.data(), entries[i].key.size()),
                     rocksdb::Slice(entries[i].value.data(), entries[i].value.size()));
    }
    if (s.ok()) s = writer.Finish();
    if (s.ok()) {
      rocksdb::IngestExternalFileOptions ingest;
      ingest.move_files = true;
      s = db_->IngestExternalFile({path}, ingest);
    }
    std::error_code ec;
    std::filesystem::remove(path, ec);  // moved into the store, or abandoned
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("command index: writing ", entries.size(),
                                                 " records to ", path, ": ", s.ToString()));
    }
    return absl::OkStatus();
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const rocksdb::Options options_;
  const std::string dir_;
  const size_t spill_bytes_;
  mutable absl::Mutex mu_;
  Map recent_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Map> frozen_ ABSL_GUARDED_BY(mu_);  // being spilled
  absl::Status spill_status_ ABSL_GUARDED_BY(mu_);
  std::thread spiller_ ABSL_GUARDED_BY(mu_);
  int64_t spills_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::unique_ptr<CommandIndex> NewMemoryCommandIndex() {
  return std::make_unique<MemoryCommandIndex>();
}

absl::StatusOr<std::unique_ptr<CommandIndex>> OpenDiskCommandIndex(
    const std::string& dir, const storage::StorageBudget& budget, size_t cache_bytes,
    size_t spill_bytes) {
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
  o.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  storage::ApplyStorageBudget(budget, cache_bytes, &o, &table);
  storage::ApplyFaultPolicy(&o);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;  // bounded by the cache, not by the data size
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("command index: ", s.ToString()));
  return std::unique_ptr<CommandIndex>(
      new DiskCommandIndex(std::unique_ptr<rocksdb::DB>(raw), o, dir, spill_bytes));
}

}  // namespace leadflow::command

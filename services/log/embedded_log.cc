#include "services/log/embedded_log.h"

#include <algorithm>
#include <optional>
#include <filesystem>
#include <limits>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "services/common/mutex_set.h"
#include "services/common/status_util.h"
#include "services/storage/fault_policy.h"

namespace leadflow::log {
namespace {

constexpr char kRecordPrefix = 'r';
constexpr char kPartitionsKey[] = "m:partitions";
constexpr size_t kKeySize = 1 + 4 + 8;
constexpr size_t kHeaderSize = 8 + 4;  // timestamp micros, key length

std::string RecordKey(int32_t partition, int64_t offset) {
  std::string key(kKeySize, '\0');
  key[0] = kRecordPrefix;
  absl::big_endian::Store32(&key[1], static_cast<uint32_t>(partition));
  absl::big_endian::Store64(&key[5], static_cast<uint64_t>(offset));
  return key;
}

// A record's value is header (timestamp micros, key length), key, value; written from its
// parts, without building it first.
void EncodeHeader(const Message& m, absl::Time ts, char (&header)[kHeaderSize]) {
  absl::big_endian::Store64(header, static_cast<uint64_t>(absl::ToUnixMicros(ts)));
  absl::big_endian::Store32(header + 8, static_cast<uint32_t>(m.key.size()));
}

// Bytes a WriteBatch needs for these appends (RocksDB's record: tag, two varint lengths, key,
// value; plus the batch header), so it is allocated once.
size_t BatchBytes(absl::Span<const PartitionAppend> appends) {
  size_t bytes = 12;
  for (const PartitionAppend& a : appends) {
    for (const Message& m : a.batch) {
      bytes += 1 + 5 + kKeySize + 5 + kHeaderSize + m.key.size() + m.value.size();
    }
  }
  return bytes;
}

// Maps a RocksDB failure to our codes: I/O trouble (a full disk) is UNAVAILABLE; corruption is
// DATA_LOSS.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  return storage::FromRocks(s, absl::StrCat("embedded log: ", what));
}

// The end (next offset) of `partition` in `db`.
absl::StatusOr<int64_t> ScanEnd(rocksdb::DB& db, int32_t partition) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(RecordKey(partition, std::numeric_limits<int64_t>::max()));
  int64_t next = 0;
  if (it->Valid() && it->key().size() == kKeySize && it->key()[0] == kRecordPrefix &&
      absl::big_endian::Load32(it->key().data() + 1) == static_cast<uint32_t>(partition)) {
    next = static_cast<int64_t>(absl::big_endian::Load64(it->key().data() + 5)) + 1;
  }
  LEADFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "scan partition end"));
  return next;
}

}  // namespace

struct PartitionState {
  absl::Mutex mu;
  // The end readers see: every record before it is durable (fsync'd when Options.sync).
  int64_t next_offset ABSL_GUARDED_BY(mu) = 0;
  // The end of what was written, visible or not (AppendManyDeferred before its Sync).
  int64_t written_next ABSL_GUARDED_BY(mu) = 0;
  absl::CondVar appended;
};

struct EmbeddedLog::Impl {
  EmbeddedLogOptions options;
  // The database. Appends, syncs and reads hold db_mu shared while they use it; Recover holds it
  // exclusively to close and reopen the database. Lock order: db_mu, then a partition's mu.
  absl::Mutex db_mu;
  std::unique_ptr<rocksdb::DB> db;
  // The "keys" column family: the key store (lead id -> wrapped data key), written in the same
  // batch as the events (docs/security.md). Owned by `db`'s lifetime: closed before it.
  rocksdb::ColumnFamilyHandle* keys = nullptr;
  bool read_only = false;  // opened read-only (the disk had no room to open it for writing)
  std::vector<std::unique_ptr<PartitionState>> partitions;
  std::atomic<bool> closed{false};
  // Why the log takes no appends (a failed write or sync: whether the last deferred records
  // reached the disk is unknown, and RocksDB stops after a failed WAL write; a background error;
  // a read-only open). Recover() reopens the database and clears it.
  std::shared_ptr<storage::StoreHealth> health = std::make_shared<storage::StoreHealth>();
  absl::Status Failed() const { return health->error(); }
  void Fail(absl::Status why) { health->Fail(std::move(why)); }

  // Opens the database in options.dir (read-only or not) and checks its partition count,
  // storing it for a new log. Sets `keys` (null for a read-only open of a log made before the
  // key store).
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenDb(bool for_reading_only);
  absl::Status CheckPartitions(rocksdb::DB& db, bool for_reading_only);
  ~Impl() { CloseDb(); }
  // Closes `db` (and the keys handle).
  void CloseDb() {
    if (db == nullptr) return;
    if (keys != nullptr) db->DestroyColumnFamilyHandle(keys).PermitUncheckedError();
    keys = nullptr;
    db->Close().PermitUncheckedError();
    db.reset();
  }
};

namespace {
constexpr char kKeysFamily[] = "keys";
}  // namespace

absl::StatusOr<std::unique_ptr<rocksdb::DB>> EmbeddedLog::Impl::OpenDb(bool for_reading_only) {
  rocksdb::Options db_options;
  db_options.create_if_missing = !for_reading_only;
  db_options.compression = rocksdb::kLZ4Compression;
  db_options.max_background_jobs = 2;
  // A partition's records are appended in key order (prefix and partition, then the offset):
  // the memtable remembers where each partition's last insert went and starts the next one
  // there, instead of searching the skip list from the top (insert hints; reads unaffected).
  db_options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(1 + 4));
  rocksdb::BlockBasedTableOptions table;
  storage::ApplyStorageBudget(options.budget, options.block_cache_bytes, &db_options, &table);
  storage::ApplyFaultPolicy(&db_options, health);
  // Index and filter blocks live in the block cache, so memory is bounded by it however long
  // the log grows (the newest files' stay pinned).
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db_options.create_missing_column_families = !for_reading_only;
  // The column families: the records (default) and the key store. A read-only open of a log
  // made before the key store opens what is there.
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(db_options)}};
  {
    std::vector<std::string> existing;
    const bool listed = rocksdb::DB::ListColumnFamilies(db_options, options.dir, &existing).ok();
    if (!for_reading_only ||
        (listed && std::find(existing.begin(), existing.end(), kKeysFamily) != existing.end())) {
      families.push_back({kKeysFamily, rocksdb::ColumnFamilyOptions(db_options)});
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status opened =
      for_reading_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options.dir, families, &handles, &raw)
          : rocksdb::DB::Open(db_options, options.dir, families, &handles, &raw);
  if (opened.ok()) {
    // The default family's handle is owned by the database; the keys one is ours.
    keys = handles.size() > 1 ? handles[1] : nullptr;
    if (handles[0] != nullptr) raw->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();
  }
  if (storage::IsLockHeld(opened)) {
    return absl::FailedPreconditionError(
        absl::StrCat("embedded log ", options.dir,
                     " is in use by another process (is leadflow serve "
                     "running on this data directory? stop it first): ",
                     opened.ToString()));
  }
  LEADFLOW_RETURN_IF_ERROR(FromRocks(opened, absl::StrCat("open ", options.dir)));
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::Status checked = CheckPartitions(*db, for_reading_only);
  if (!checked.ok()) {
    if (keys != nullptr) db->DestroyColumnFamilyHandle(keys).PermitUncheckedError();
    keys = nullptr;
    return checked;
  }
  return db;
}

absl::Status EmbeddedLog::Impl::CheckPartitions(rocksdb::DB& db_ref, bool for_reading_only) {
  rocksdb::DB* db = &db_ref;

  std::string stored;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kPartitionsKey, &stored);
  if (s.ok()) {
    if (stored.size() != 4) return absl::DataLossError("embedded log: corrupt partition count");
    const auto partitions = static_cast<int32_t>(absl::big_endian::Load32(stored.data()));
    if ((options.partitions == 0 && for_reading_only) || options.adopt_stored_partitions) {
      options.partitions = partitions;  // a read-only open (or a default count) adopts it
    } else if (partitions != options.partitions) {
      return absl::FailedPreconditionError(
          absl::StrCat("embedded log: ", options.dir, " was created with ", partitions,
                       " partitions; opening it with ", options.partitions,
                       " would move leads between partitions. Use --partitions=", partitions, "."));
    }
  } else if (s.IsNotFound() && !for_reading_only) {
    std::string value(4, '\0');
    absl::big_endian::Store32(value.data(), static_cast<uint32_t>(options.partitions));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    LEADFLOW_RETURN_IF_ERROR(
        FromRocks(db->Put(wo, kPartitionsKey, value), "store partition count"));
  } else if (s.IsNotFound()) {
    return absl::FailedPreconditionError(
        absl::StrCat("embedded log: ", options.dir, " holds no log"));
  } else {
    return FromRocks(s, "read partition count");
  }
  return absl::OkStatus();
}

namespace {

class EmbeddedReader final : public LogReader {
 public:
  EmbeddedReader(EmbeddedLog::Impl* log, int32_t partition, int64_t from)
      : log_(log), partition_(partition), position_(from) {}

  absl::StatusOr<std::vector<Record>> Read(size_t max_records, absl::Duration timeout) override {
    std::vector<Record> out;
    if (max_records == 0) return out;
    PartitionState& p = *log_->partitions[partition_];
    int64_t end;
    {
      absl::MutexLock lock(&p.mu);
      const absl::Time deadline = absl::Now() + timeout;
      while (p.next_offset <= position_ && !log_->closed.load()) {
        if (p.appended.WaitWithDeadline(&p.mu, deadline)) break;  // timed out
      }
      end = p.next_offset;
    }
    if (end <= position_) return out;

    absl::ReaderMutexLock db_lock(&log_->db_mu);
    if (log_->db == nullptr) {
      return absl::UnavailableError("embedded log: closed for a reopen; retry");
    }
    const std::string upper = RecordKey(partition_, end);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(log_->db->NewIterator(ro));
    for (it->Seek(RecordKey(partition_, position_)); it->Valid() && out.size() < max_records;
         it->Next()) {
      const rocksdb::Slice k = it->key();
      const rocksdb::Slice v = it->value();
      const int64_t offset =
          k.size() == kKeySize ? static_cast<int64_t>(absl::big_endian::Load64(k.data() + 5)) : -1;
      if (offset != position_ || v.size() < kHeaderSize) {
        return absl::DataLossError(absl::StrCat("embedded log partition ", partition_, " offset ",
                                                position_, ": record missing or corrupt"));
      }
      const uint32_t key_len = absl::big_endian::Load32(v.data() + 8);
      if (v.size() < kHeaderSize + key_len) {
        return absl::DataLossError(absl::StrCat("embedded log partition ", partition_, " offset ",
                                                offset, ": truncated record"));
      }
      Record r;
      r.partition = partition_;
      r.offset = offset;
      r.timestamp = absl::FromUnixMicros(static_cast<int64_t>(absl::big_endian::Load64(v.data())));
      r.key.assign(v.data() + kHeaderSize, key_len);
      r.value.assign(v.data() + kHeaderSize + key_len, v.size() - kHeaderSize - key_len);
      out.push_back(std::move(r));
      ++position_;
    }
    LEADFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read"));
    if (out.empty() && position_ < end) {
      return absl::DataLossError(absl::StrCat("embedded log partition ", partition_, " offset ",
                                              position_, ": record missing"));
    }
    return out;
  }

  int64_t position() const override { return position_; }

 private:
  EmbeddedLog::Impl* log_;
  int32_t partition_;
  int64_t position_;
};

}  // namespace

EmbeddedLog::EmbeddedLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EmbeddedLog::~EmbeddedLog() {
  impl_->closed.store(true);
  for (auto& p : impl_->partitions) {
    absl::MutexLock lock(&p->mu);
    p->appended.SignalAll();
  }
  absl::MutexLock lock(&impl_->db_mu);
  impl_->CloseDb();
}

absl::StatusOr<std::unique_ptr<EmbeddedLog>> EmbeddedLog::Open(const EmbeddedLogOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("log dir: required");
  if ((options.partitions < 1 && !(options.read_only && options.partitions == 0)) ||
      options.partitions > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("partitions: must be 1 to 4096 (got ", options.partitions, ")"));
  }
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::is_directory(options.dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("embedded log: ", options.dir, " holds no log"));
    }
  } else {
    std::filesystem::create_directories(options.dir, ec);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("embedded log: cannot create ", options.dir, ": ", ec.message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db = impl->OpenDb(options.read_only);
  if (options.read_only && db.ok()) {
    impl->read_only = true;
    impl->Fail(absl::FailedPreconditionError("embedded log: opened read-only"));
  }
  if (!db.ok() && absl::IsUnavailable(db.status()) && !options.read_only) {
    // No room (or no permission) to open it for writing, e.g. a full disk: open it read-only,
    // so what it holds is served, and take appends again after Recover().
    absl::StatusOr<std::unique_ptr<rocksdb::DB>> ro = impl->OpenDb(/*for_reading_only=*/true);
    if (ro.ok()) {
      impl->read_only = true;
      impl->Fail(absl::UnavailableError(absl::StrCat(
          "embedded log ", options.dir, " is open read-only: ", db.status().message())));
      db = std::move(ro);
    }
  }
  if (!db.ok()) return db.status();
  impl->db = *std::move(db);
  for (int32_t p = 0; p < impl->options.partitions; ++p) {
    auto state = std::make_unique<PartitionState>();
    LEADFLOW_ASSIGN_OR_RETURN(const int64_t next, ScanEnd(*impl->db, p));
    {
      absl::MutexLock lock(&state->mu);
      state->next_offset = next;
      state->written_next = next;
    }
    impl->partitions.push_back(std::move(state));
  }
  return std::unique_ptr<EmbeddedLog>(new EmbeddedLog(std::move(impl)));
}

std::string EmbeddedLog::Describe() const { return absl::StrCat("embedded:", impl_->options.dir); }

int32_t EmbeddedLog::partition_count() const {
  return static_cast<int32_t>(impl_->partitions.size());
}

absl::StatusOr<std::vector<AppendResult>> EmbeddedLog::AppendMany(
    absl::Span<const PartitionAppend> appends) {
  return Write(appends, /*durable=*/true);
}

absl::StatusOr<std::vector<AppendResult>> EmbeddedLog::AppendManyDeferred(
    absl::Span<const PartitionAppend> appends) {
  return Write(appends, /*durable=*/false);
}

absl::Status EmbeddedLog::Sync() {
  absl::ReaderMutexLock db_lock(&impl_->db_mu);
  LEADFLOW_RETURN_IF_ERROR(impl_->Failed());
  // What was written before this point is what the sync covers (each partition's lock is held
  // for the whole of a write, so no write is half counted).
  std::vector<int64_t> written(impl_->partitions.size());
  for (size_t p = 0; p < written.size(); ++p) {
    absl::MutexLock lock(&impl_->partitions[p]->mu);
    written[p] = impl_->partitions[p]->written_next;
  }
  LEADFLOW_RETURN_IF_ERROR(impl_->Failed());  // a write that failed while we counted
  if (impl_->options.sync) {
    absl::Status synced = FromRocks(impl_->db->SyncWAL(), "sync");
    if (!synced.ok()) {
      impl_->Fail(absl::UnavailableError(
          absl::StrCat(synced.message(), "; the last appends may or may not be on disk")));
      return impl_->Failed();
    }
  }
  for (size_t p = 0; p < written.size(); ++p) {
    PartitionState& state = *impl_->partitions[p];
    absl::MutexLock lock(&state.mu);
    if (written[p] > state.next_offset) {
      state.next_offset = written[p];
      state.appended.SignalAll();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AppendResult>> EmbeddedLog::Write(
    absl::Span<const PartitionAppend> appends, bool durable) {
  LEADFLOW_RETURN_IF_ERROR(
      ValidateAppendMany(appends, partition_count(), impl_->options.max_message_bytes));
  absl::ReaderMutexLock db_lock(&impl_->db_mu);
  LEADFLOW_RETURN_IF_ERROR(impl_->Failed());
  // Lock the partitions in ascending order (no deadlock between concurrent AppendMany calls);
  // holding them keeps each batch contiguous and the offsets known until the write is done.
  std::vector<size_t> order(appends.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return appends[a].partition < appends[b].partition; });
  std::vector<absl::Mutex*> mutexes;
  mutexes.reserve(order.size());
  for (size_t i : order) mutexes.push_back(&impl_->partitions[appends[i].partition]->mu);
  std::optional<common::MutexSet> locked(std::in_place, mutexes);
  const absl::Time now = absl::Now();
  rocksdb::WriteBatch wb(BatchBytes(appends));
  std::vector<AppendResult> results(appends.size());
  char header[kHeaderSize];
  for (size_t i = 0; i < appends.size(); ++i) {
    const PartitionAppend& a = appends[i];
    PartitionState& p = *impl_->partitions[a.partition];
    p.mu.AssertHeld();  // locked above (MutexSet)
    const int64_t first = p.written_next;
    for (size_t j = 0; j < a.batch.size(); ++j) {
      const Message& m = a.batch[j];
      EncodeHeader(m, now, header);
      const std::string key = RecordKey(a.partition, first + static_cast<int64_t>(j));
      const rocksdb::Slice key_slice(key);
      const rocksdb::Slice value_parts[] = {rocksdb::Slice(header, kHeaderSize), m.key, m.value};
      rocksdb::Status s =
          wb.Put(rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(value_parts, 3));
      if (!s.ok()) {
        return FromRocks(s, "build batch");
      }
    }
    results[i] = AppendResult{a.partition, first, first + static_cast<int64_t>(a.batch.size()) - 1};
    for (const KeyRecord& k : a.keys) {
      if (impl_->keys == nullptr) {
        return absl::FailedPreconditionError("embedded log: no key store (opened read-only)");
      }
      rocksdb::Status s = k.wrapped.empty() ? wb.Delete(impl_->keys, k.lead_id)
                                            : wb.Put(impl_->keys, k.lead_id, k.wrapped);
      if (!s.ok()) {
        return FromRocks(s, "build batch");
      }
    }
  }
  rocksdb::WriteOptions wo;
  // A durable write's fsync also covers earlier deferred writes of its partitions (one WAL).
  wo.sync = durable && impl_->options.sync;
  absl::Status written = FromRocks(impl_->db->Write(wo, &wb), "append");
  if (written.ok()) {
    for (size_t i = 0; i < appends.size(); ++i) {
      PartitionState& p = *impl_->partitions[appends[i].partition];
      p.mu.AssertHeld();  // locked above (MutexSet)
      p.written_next = results[i].last_offset + 1;
      if (durable) {
        p.next_offset = p.written_next;
        p.appended.SignalAll();
      }
    }
  } else {
    // Earlier deferred records may be unsynced, and RocksDB stops after a failed WAL write (7.8
    // even asserts on syncing it): the log takes nothing more until it is reopened, and Sync()
    // reports this write's error. Set before the partitions are unlocked, so a Sync that counts
    // them sees it.
    impl_->Fail(written);
  }
  locked.reset();
  if (!written.ok()) return written;
  return results;
}

absl::Status EmbeddedLog::Recover() {
  if (impl_->Failed().ok() && !impl_->read_only) return absl::OkStatus();
  absl::MutexLock db_lock(&impl_->db_mu);  // no append, sync or read runs now
  if (impl_->Failed().ok() && !impl_->read_only) return absl::OkStatus();
  const absl::Status cause = impl_->Failed();
  impl_->CloseDb();
  impl_->health->Clear();
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db = impl_->OpenDb(/*for_reading_only=*/false);
  if (!db.ok()) {
    // Still no room: serve what is there, read-only, and try again later.
    absl::StatusOr<std::unique_ptr<rocksdb::DB>> ro = impl_->OpenDb(/*for_reading_only=*/true);
    if (ro.ok()) impl_->db = *std::move(ro);
    impl_->read_only = true;
    impl_->Fail(absl::UnavailableError(absl::StrCat(
        "embedded log ", impl_->options.dir, " is open read-only: ", db.status().message())));
    return impl_->Failed();
  }
  impl_->db = *std::move(db);
  impl_->read_only = false;
  // The log as it is on disk now: whatever reached the write-ahead log before the failure.
  for (int32_t p = 0; p < partition_count(); ++p) {
    absl::StatusOr<int64_t> end = ScanEnd(*impl_->db, p);
    if (!end.ok()) {
      impl_->Fail(end.status());
      return end.status();
    }
    PartitionState& state = *impl_->partitions[p];
    absl::MutexLock lock(&state.mu);
    state.next_offset = std::max(state.next_offset, *end);
    state.written_next = state.next_offset;
    state.appended.SignalAll();
  }
  (void)cause;
  return absl::OkStatus();
}

absl::Status EmbeddedLog::Checkpoint(const std::string& dir) {
  absl::ReaderMutexLock db_lock(&impl_->db_mu);
  if (impl_->db == nullptr) return absl::UnavailableError("embedded log: not open");
  rocksdb::Checkpoint* raw = nullptr;
  LEADFLOW_RETURN_IF_ERROR(
      FromRocks(rocksdb::Checkpoint::Create(impl_->db.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir, std::numeric_limits<uint64_t>::max()),
                   absl::StrCat("checkpoint into ", dir));
}

absl::StatusOr<std::string> EmbeddedLog::ReadKey(const std::string& lead_id) {
  absl::ReaderMutexLock db_lock(&impl_->db_mu);
  if (impl_->db == nullptr) return absl::UnavailableError("embedded log: closed for a reopen");
  if (impl_->keys == nullptr) return absl::NotFoundError("embedded log: no key store");
  std::string wrapped;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->keys, lead_id, &wrapped);
  if (s.IsNotFound()) return absl::NotFoundError("no data key");
  LEADFLOW_RETURN_IF_ERROR(FromRocks(s, "read a data key"));
  return wrapped;
}

absl::Status EmbeddedLog::PurgeDestroyedKeys() {
  absl::ReaderMutexLock db_lock(&impl_->db_mu);
  if (impl_->db == nullptr || impl_->keys == nullptr || impl_->read_only) {
    return absl::OkStatus();
  }
  // Flush both families (so no write-ahead log file still holds a destroyed key once RocksDB
  // deletes the obsolete ones), then rewrite the key store's files without the deleted keys.
  rocksdb::FlushOptions flush;
  LEADFLOW_RETURN_IF_ERROR(
      FromRocks(impl_->db->Flush(flush, {impl_->db->DefaultColumnFamily(), impl_->keys}), "flush"));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(impl_->db->CompactRange(compact, impl_->keys, nullptr, nullptr),
                   "compact the key store");
}

absl::Status EmbeddedLog::Writable() const {
  if (impl_->read_only) {
    absl::Status why = impl_->Failed();
    return why.ok() ? absl::UnavailableError("embedded log: open read-only") : why;
  }
  return impl_->Failed();
}

absl::StatusOr<int64_t> EmbeddedLog::EndOffset(int32_t partition) {
  LEADFLOW_RETURN_IF_ERROR(CheckPartition("partition", partition, partition_count()));
  PartitionState& p = *impl_->partitions[partition];
  absl::MutexLock lock(&p.mu);
  return p.next_offset;
}

absl::StatusOr<std::unique_ptr<LogReader>> EmbeddedLog::OpenReader(int32_t partition,
                                                                   int64_t from_offset) {
  LEADFLOW_ASSIGN_OR_RETURN(int64_t end, EndOffset(partition));
  if (from_offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_offset: must not be negative (got ", from_offset, ")"));
  }
  if (from_offset > end) {
    return absl::OutOfRangeError(absl::StrCat(
        "from_offset: ", from_offset, " is past the end of partition ", partition, " (", end, ")"));
  }
  return std::unique_ptr<LogReader>(new EmbeddedReader(impl_.get(), partition, from_offset));
}

}  // namespace leadflow::log

#include "projections/runner/view_store.h"

#include <filesystem>
#include <limits>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "services/storage/fault_policy.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "rocksdb/write_batch.h"

namespace leadflow::projections {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  return storage::FromRocks(s, absl::StrCat("view store: ", what));
}

constexpr char kFormatKey[] = "format";

// The last record a partition's batches applied: its offset (8 bytes) and digest.
std::string LastKey(int32_t partition) {
  std::string key = "last/    ";
  absl::big_endian::Store32(&key[5], static_cast<uint32_t>(partition));
  return key;
}

std::string OffsetKey(int32_t partition) {
  std::string key = "offset/    ";
  absl::big_endian::Store32(&key[7], static_cast<uint32_t>(partition));
  return key;
}

}  // namespace

absl::StatusOr<int> PageSize(int32_t requested, int default_size) {
  if (requested < 0 || requested > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be 1 to 1000 (got ", requested, ")"));
  }
  return requested == 0 ? default_size : requested;
}

absl::StatusOr<TimeRange> QueryRange(absl::string_view from_field,
                                     const google::protobuf::Timestamp* from,
                                     absl::string_view to_field,
                                     const google::protobuf::Timestamp* to) {
  for (auto [field, ts] : {std::pair{from_field, from}, std::pair{to_field, to}}) {
    if (ts == nullptr) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
    if (!common::IsValidTimestamp(*ts)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": not a valid timestamp"));
    }
  }
  TimeRange r{common::FromProto(*from), common::FromProto(*to)};
  if (r.to < r.from) {
    return absl::InvalidArgumentError(absl::StrCat(to_field, ": ", common::Rfc3339(r.to),
                                                   " is before ", from_field, " ",
                                                   common::Rfc3339(r.from)));
  }
  if (r.to - r.from > absl::Hours(24) * kMaxRangeDays) {
    return absl::InvalidArgumentError(absl::StrCat(
        to_field, ": the range ", common::Rfc3339(r.from), " .. ", common::Rfc3339(r.to),
        " is longer than ", kMaxRangeDays, " days; split the query"));
  }
  return r;
}

std::string EncodeBigEndian64(int64_t v) {
  std::string out(8, '\0');
  // Flip the sign bit so negative values (times before 1970) sort before positive ones.
  absl::big_endian::Store64(out.data(), static_cast<uint64_t>(v) ^ (uint64_t{1} << 63));
  return out;
}

int64_t DecodeBigEndian64(const char* p) {
  return static_cast<int64_t>(absl::big_endian::Load64(p) ^ (uint64_t{1} << 63));
}

void AppendKeyPart(std::string* key, absl::string_view part) {
  for (char c : part) {
    key->push_back(c);
    if (c == '\0') key->push_back('\xff');
  }
  key->push_back('\0');
  key->push_back('\x01');
}

std::string KeyPart(absl::string_view part) {
  std::string out;
  out.reserve(part.size() + 2);
  AppendKeyPart(&out, part);
  return out;
}

bool ReadKeyPart(absl::string_view* rest, std::string* part) {
  part->clear();
  for (size_t i = 0; i < rest->size(); ++i) {
    if ((*rest)[i] != '\0') {
      part->push_back((*rest)[i]);
      continue;
    }
    if (i + 1 >= rest->size()) return false;
    const char next = (*rest)[i + 1];
    if (next == '\x01') {
      rest->remove_prefix(i + 2);
      return true;
    }
    if (next != '\xff') return false;
    part->push_back('\0');
    ++i;
  }
  return false;
}

namespace {

// An iterator that holds its store open (a Recover waits until it is gone).
class HeldIterator final : public rocksdb::Iterator {
 public:
  HeldIterator(std::shared_lock<std::shared_timed_mutex> lock, rocksdb::Iterator* it)
      : lock_(std::move(lock)), it_(it) {}
  bool Valid() const override { return it_->Valid(); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  void SeekToLast() override { it_->SeekToLast(); }
  void Seek(const rocksdb::Slice& target) override { it_->Seek(target); }
  void SeekForPrev(const rocksdb::Slice& target) override { it_->SeekForPrev(target); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  rocksdb::Slice key() const override { return it_->key(); }
  rocksdb::Slice value() const override { return it_->value(); }
  rocksdb::Status status() const override { return it_->status(); }

 private:
  std::shared_lock<std::shared_timed_mutex> lock_;  // released after it_ (declared first)
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace

absl::Status ViewStore::OpenDb(bool for_reading_only) {
  const ViewStoreOptions& options = options_;
  rocksdb::Options db_options;
  db_options.create_if_missing = !for_reading_only;
  db_options.create_missing_column_families = !for_reading_only;
  db_options.max_background_jobs = 2;
  // Rows and offsets live in different column families: flush them together, so even a store
  // written without the WAL is always a consistent prefix of the log on disk.
  db_options.atomic_flush = true;
  // Views are rewritten heavily (rebuilds, busy leads) and compaction shares the cores with the
  // projections: no compression for the small upper levels, LZ4 (cheaper than the default
  // Snappy) below them.
  db_options.compression_per_level = {rocksdb::kNoCompression,  rocksdb::kNoCompression,
                                      rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression};
  rocksdb::BlockBasedTableOptions table;
  storage::ApplyStorageBudget(options.budget, options.block_cache_bytes, &db_options, &table);
  storage::ApplyFaultPolicy(&db_options, health_);
  // Projections look up many rows that do not exist yet (a new lead's row): a Bloom filter
  // answers those without reading data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks in the block cache: a view's memory is bounded by the cache however
  // many rows it holds (the newest files' stay pinned).
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  auto factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));
  db_options.table_factory = factory;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const std::string& name : options.column_families) cfs.emplace_back(name, cf_options);
  cfs.emplace_back("meta", cf_options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      for_reading_only ? rocksdb::DB::OpenForReadOnly(db_options, options.dir, cfs, &handles, &raw)
                       : rocksdb::DB::Open(db_options, options.dir, cfs, &handles, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", options.dir));
  db_.reset(raw);
  // handles[0] is "default" (unused); keep view CFs then meta.
  db_->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();
  handles_.assign(handles.begin() + 1, handles.end());
  read_only_ = for_reading_only;
  return absl::OkStatus();
}

void ViewStore::CloseDb() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  handles_.clear();
  db_->Close().PermitUncheckedError();
  db_.reset();
}

absl::StatusOr<std::unique_ptr<ViewStore>> ViewStore::Open(const ViewStoreOptions& options) {
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::is_directory(options.dir, ec)) {
      return absl::NotFoundError(absl::StrCat("view store: ", options.dir, " does not exist"));
    }
  } else {
    std::filesystem::create_directories(options.dir, ec);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("view store: cannot create ", options.dir, ": ", ec.message()));
  }
  std::unique_ptr<ViewStore> store(new ViewStore());
  store->options_ = options;
  if (options.read_only) {
    LEADFLOW_RETURN_IF_ERROR(store->OpenDb(/*for_reading_only=*/true));
    store->health_->Fail(absl::FailedPreconditionError("view store: opened read-only"));
    return store;
  }
  absl::Status opened = store->OpenDb(/*for_reading_only=*/false);
  if (absl::IsUnavailable(opened) && !options.without_wal) {
    // No room to open it for writing (a full disk): serve what it holds, read-only, and catch
    // up after Recover().
    if (store->OpenDb(/*for_reading_only=*/true).ok()) {
      store->health_->Fail(absl::UnavailableError(
          absl::StrCat("view store ", options.dir, " is open read-only: ", opened.message())));
      opened = absl::OkStatus();
    }
  }
  LEADFLOW_RETURN_IF_ERROR(opened);
  if (options.format_version > 0) {
    std::string value;
    rocksdb::Status got =
        store->db_->Get(rocksdb::ReadOptions(), store->meta(), kFormatKey, &value);
    if (!got.ok() && !got.IsNotFound()) return FromRocks(got, "read format");
    int stored = 0;
    if (got.ok()) {
      if (value.size() != 8) return absl::DataLossError("view store: corrupt format version");
      stored = static_cast<int>(DecodeBigEndian64(value.data()));
    } else {
      LEADFLOW_ASSIGN_OR_RETURN(const bool has_rows, store->HasOffsets());
      stored = has_rows ? 1 : options.format_version;
      if (!has_rows && !store->read_only_) {
        rocksdb::WriteOptions wo;
        wo.disableWAL = options.without_wal;
        LEADFLOW_RETURN_IF_ERROR(
            FromRocks(store->db_->Put(wo, store->meta(), kFormatKey, EncodeBigEndian64(stored)),
                      "write format"));
      }
    }
    if (stored != options.format_version) {
      absl::Status mismatch = absl::FailedPreconditionError(
          absl::StrCat("view store ", options.dir, " holds format ", stored,
                       "; this build writes format ", options.format_version));
      mismatch.SetPayload(kFormatMismatch, absl::Cord(std::to_string(stored)));
      return mismatch;
    }
  }
  return store;
}

absl::StatusOr<std::vector<std::string>> ViewStore::ListViewFamilies(const std::string& dir) {
  std::vector<std::string> names;
  LEADFLOW_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names),
                absl::StrCat("list column families of ", dir)));
  std::vector<std::string> view;
  for (std::string& n : names) {
    if (n != rocksdb::kDefaultColumnFamilyName && n != "meta") view.push_back(std::move(n));
  }
  return view;
}

absl::Status ViewStore::Checkpoint(const std::string& dir) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return absl::UnavailableError("view store: not open");
  rocksdb::Checkpoint* raw = nullptr;
  LEADFLOW_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir, std::numeric_limits<uint64_t>::max()),
                   absl::StrCat("checkpoint into ", dir));
}

bool ViewStore::IsOwnDamage(const absl::Status& error) const {
  if (!absl::IsDataLoss(error) || options_.dir.empty()) return false;
  const std::string dir = options_.dir.back() == '/' ? options_.dir : options_.dir + "/";
  return error.message().find(dir) != absl::string_view::npos;
}

absl::Status ViewStore::Writable() const {
  absl::Status why = health_->error();
  if (why.ok() && read_only_) return absl::UnavailableError("view store: open read-only");
  return why;
}

absl::Status ViewStore::Recover(absl::Duration wait) {
  if (Writable().ok()) return absl::OkStatus();
  std::unique_lock<std::shared_timed_mutex> lock(mu_, std::defer_lock);
  if (!lock.try_lock_for(absl::ToChronoNanoseconds(wait))) {
    return absl::UnavailableError(
        absl::StrCat("view store ", options_.dir, ": busy, will reopen it later"));
  }
  if (Writable().ok()) return absl::OkStatus();
  CloseDb();
  health_->Clear();
  absl::Status opened = OpenDb(/*for_reading_only=*/false);
  if (!opened.ok()) {
    // Still no room: serve what is there, read-only, and try again later.
    if (!OpenDb(/*for_reading_only=*/true).ok()) read_only_ = true;
    health_->Fail(absl::UnavailableError(
        absl::StrCat("view store ", options_.dir, " is open read-only: ", opened.message())));
    return health_->error();
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ViewStore::HasOffsets() const {
  std::unique_ptr<rocksdb::Iterator> it = NewIterator(view_family_count());  // meta
  it->Seek("offset/");
  const bool found = it->Valid() && it->key().starts_with("offset/");
  LEADFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "scan offsets"));
  return found;
}

absl::Status ViewStore::Flush() {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return absl::UnavailableError("view store: not open");
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

ViewStore::~ViewStore() {
  if (db_ && options_.without_wal && !read_only_) Flush().IgnoreError();
  std::unique_lock<std::shared_timed_mutex> lock(mu_);
  CloseDb();
}

absl::StatusOr<int64_t> ViewStore::StoredOffset(int32_t partition) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return absl::UnavailableError("view store: not open");
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta(), OffsetKey(partition), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "read offset");
  if (value.size() != 8) return absl::DataLossError("view store: corrupt offset");
  return DecodeBigEndian64(value.data());
}

absl::StatusOr<log::PartitionMark> ViewStore::StoredMark(int32_t partition) const {
  log::PartitionMark mark;
  LEADFLOW_ASSIGN_OR_RETURN(mark.end, StoredOffset(partition));
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return absl::UnavailableError("view store: not open");
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta(), LastKey(partition), &value);
  if (s.IsNotFound()) return mark;
  if (!s.ok()) return FromRocks(s, "read last record");
  if (value.size() < 8) return absl::DataLossError("view store: corrupt last record");
  mark.record_offset = DecodeBigEndian64(value.data());
  mark.digest = value.substr(8);
  return mark;
}

absl::StatusOr<std::string> ViewStore::Get(int cf, const std::string& key) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return absl::UnavailableError("view store: not open");
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[cf], key, &value);
  if (s.IsNotFound()) return absl::NotFoundError(key);
  if (!s.ok()) return FromRocks(s, "get");
  return value;
}

std::vector<absl::StatusOr<std::string>> ViewStore::MultiGet(
    int cf, const std::vector<std::string>& keys) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  std::vector<absl::StatusOr<std::string>> out;
  out.reserve(keys.size());
  if (!db_) {
    out.assign(keys.size(), absl::UnavailableError("view store: not open"));
    return out;
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), handles_[cf], keys.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      out.push_back(absl::NotFoundError(keys[i]));
    } else if (!statuses[i].ok()) {
      out.push_back(FromRocks(statuses[i], "get"));
    } else {
      out.push_back(values[i].ToString());
    }
  }
  return out;
}

std::unique_ptr<rocksdb::Iterator> ViewStore::NewIterator(int cf) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  rocksdb::Iterator* it =
      db_ ? db_->NewIterator(rocksdb::ReadOptions(), handles_[cf])
          : rocksdb::NewErrorIterator(rocksdb::Status::IOError("view store: not open"));
  return std::make_unique<HeldIterator>(std::move(lock), it);
}

absl::Status ViewStore::Write(rocksdb::WriteBatch* batch) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  LEADFLOW_RETURN_IF_ERROR(Writable());
  rocksdb::WriteOptions wo;
  // No fsync: if the machine crashes, rows and offset are lost together and re-applied.
  wo.disableWAL = options_.without_wal;
  absl::Status st = FromRocks(db_->Write(wo, batch), "write");
  if (!st.ok()) health_->Fail(st);  // RocksDB takes no more writes after a failed one
  return st;
}

uint64_t ViewStore::IntProperty(const std::string& name, bool aggregated) const {
  std::shared_lock<std::shared_timed_mutex> lock(mu_);
  if (!db_) return 0;
  uint64_t value = 0;
  if (aggregated) {
    db_->GetAggregatedIntProperty(name, &value);
    return value;
  }
  uint64_t sum = 0;
  for (int cf = 0; cf < view_family_count(); ++cf) {
    if (db_->GetIntProperty(handles_[cf], name, &value)) sum += value;
  }
  return sum;
}

absl::StatusOr<std::optional<std::string>> ViewTxn::Get(int cf, const std::string& key) const {
  if (auto it = changes_.find({cf, key}); it != changes_.end()) return it->second;
  if (parent_ != nullptr) return parent_->Get(cf, key);
  absl::StatusOr<std::string> v = store_->Get(cf, key);
  if (absl::IsNotFound(v.status())) return std::optional<std::string>();
  if (!v.ok()) return v.status();
  return std::optional<std::string>(std::move(*v));
}

void ViewTxn::Put(int cf, const std::string& key, std::string value) {
  changes_[{cf, key}] = std::move(value);
}

void ViewTxn::Delete(int cf, const std::string& key) { changes_[{cf, key}] = std::nullopt; }

void ViewTxn::PutWriteOnly(int cf, const std::string& key, const std::string& value) {
  if (parent_ != nullptr) {
    Put(cf, key, value);  // in a child: discarded with it if its event fails
    return;
  }
  appended_.Put(store_->cf(cf), key, value).PermitUncheckedError();
}

void ViewTxn::MergeIntoParent() {
  for (auto& [k, v] : changes_) parent_->changes_[k] = std::move(v);
  changes_.clear();
}

absl::Status ViewTxn::Commit(const std::map<int32_t, log::PartitionMark>& marks) {
  rocksdb::WriteBatch& wb = appended_;
  for (const auto& [k, v] : changes_) {
    rocksdb::Status s = v.has_value() ? wb.Put(store_->cf(k.first), k.second, *v)
                                      : wb.Delete(store_->cf(k.first), k.second);
    if (!s.ok()) return FromRocks(s, "build batch");
  }
  for (const auto& [partition, mark] : marks) {
    rocksdb::Status s = wb.Put(store_->meta(), OffsetKey(partition), EncodeBigEndian64(mark.end));
    if (s.ok() && mark.record_offset >= 0) {
      s = wb.Put(store_->meta(), LastKey(partition),
                 absl::StrCat(EncodeBigEndian64(mark.record_offset), mark.digest));
    }
    if (!s.ok()) return FromRocks(s, "build batch");
  }
  absl::Status st = store_->Write(&wb);
  if (st.ok()) changes_.clear();
  wb.Clear();
  return st;
}

// Compares every family (the view's rows and its meta: offsets, marks, format) of two stores
// with the same families, row by row. The keys hold personal data (emails, names): a difference
// is named by family and row number, never by its key.
absl::StatusOr<int64_t> CompareStores(const ViewStore& live, const ViewStore& rebuilt,
                                      const std::string& view) {
  int64_t rows = 0;
  for (int cf = 0; cf <= live.view_family_count(); ++cf) {
    const std::string family =
        cf < live.view_family_count() ? absl::StrCat("family ", cf) : std::string("meta");
    std::unique_ptr<rocksdb::Iterator> a = live.NewIterator(cf);
    std::unique_ptr<rocksdb::Iterator> b = rebuilt.NewIterator(cf);
    a->SeekToFirst();
    b->SeekToFirst();
    int64_t row = 0;
    for (; a->Valid() && b->Valid(); a->Next(), b->Next(), ++row) {
      if (a->key() != b->key()) {
        return absl::DataLossError(absl::StrCat("view ", view, ": ", family, " row ", row,
                                                ": the view and a rebuild from the log "
                                                "hold different keys (",
                                                a->key().compare(b->key()) < 0
                                                    ? "the view has a row the log does not explain"
                                                    : "the view lacks a row the log implies",
                                                ")"));
      }
      if (a->value() != b->value()) {
        return absl::DataLossError(absl::StrCat("view ", view, ": ", family, " row ", row,
                                                ": its value differs from a rebuild from the log"));
      }
    }
    LEADFLOW_RETURN_IF_ERROR(FromRocks(a->status(), absl::StrCat("read view ", view)));
    LEADFLOW_RETURN_IF_ERROR(FromRocks(b->status(), absl::StrCat("read rebuilt view ", view)));
    if (a->Valid() || b->Valid()) {
      return absl::DataLossError(absl::StrCat("view ", view, ": ", family, " after row ", row, ": ",
                                              a->Valid()
                                                  ? "the view has rows the log does not explain"
                                                  : "the view lacks rows the log implies"));
    }
    rows += row;
  }
  return rows;
}

}  // namespace leadflow::projections

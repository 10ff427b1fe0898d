#include "projections/runner/view_store.h"

#include <filesystem>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "rocksdb/write_batch.h"

namespace leadflow::projections {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("view store: ", what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(msg, " (is another leadflow process using this data directory?)"));
  }
  return absl::UnavailableError(msg);
}

constexpr char kFormatKey[] = "format";

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

absl::StatusOr<std::unique_ptr<ViewStore>> ViewStore::Open(const ViewStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("view store: cannot create ", options.dir, ": ", ec.message()));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Rows and offsets live in different column families: flush them together, so even a store
  // written without the WAL is always a consistent prefix of the log on disk.
  db_options.atomic_flush = true;
  // Views are rewritten heavily (rebuilds, busy leads) and compaction shares the cores with the
  // projections: no compression for the small upper levels, LZ4 (cheaper than the default
  // Snappy) below them.
  db_options.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                                      rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                                      rocksdb::kLZ4Compression};
  rocksdb::BlockBasedTableOptions table;
  storage::ApplyStorageBudget(options.budget, options.block_cache_bytes, &db_options, &table);
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
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.dir, cfs, &handles, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", options.dir));
  std::unique_ptr<ViewStore> store(new ViewStore());
  store->dir_ = options.dir;
  store->without_wal_ = options.without_wal;
  store->db_.reset(raw);
  // handles[0] is "default" (unused); keep view CFs then meta.
  store->db_->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();
  store->handles_.assign(handles.begin() + 1, handles.end());
  if (options.format_version > 0) {
    std::string value;
    rocksdb::Status got = store->db_->Get(rocksdb::ReadOptions(), store->meta(), kFormatKey, &value);
    if (!got.ok() && !got.IsNotFound()) return FromRocks(got, "read format");
    int stored = 0;
    if (got.ok()) {
      if (value.size() != 8) return absl::DataLossError("view store: corrupt format version");
      stored = static_cast<int>(DecodeBigEndian64(value.data()));
    } else {
      LEADFLOW_ASSIGN_OR_RETURN(const bool has_rows, store->HasOffsets());
      stored = has_rows ? 1 : options.format_version;
      if (!has_rows) {
        rocksdb::WriteOptions wo;
        wo.disableWAL = options.without_wal;
        LEADFLOW_RETURN_IF_ERROR(FromRocks(
            store->db_->Put(wo, store->meta(), kFormatKey, EncodeBigEndian64(stored)),
            "write format"));
      }
    }
    if (stored != options.format_version) {
      absl::Status mismatch = absl::FailedPreconditionError(absl::StrCat(
          "view store ", options.dir, " holds format ", stored, "; this build writes format ",
          options.format_version));
      mismatch.SetPayload(kFormatMismatch, absl::Cord(std::to_string(stored)));
      return mismatch;
    }
  }
  return store;
}

absl::StatusOr<bool> ViewStore::HasOffsets() const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta()));
  it->Seek("offset/");
  const bool found = it->Valid() && it->key().starts_with("offset/");
  LEADFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "scan offsets"));
  return found;
}

absl::Status ViewStore::Flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

ViewStore::~ViewStore() {
  if (db_ && without_wal_) Flush().IgnoreError();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<int64_t> ViewStore::StoredOffset(int32_t partition) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta(), OffsetKey(partition), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "read offset");
  if (value.size() != 8) return absl::DataLossError("view store: corrupt offset");
  return DecodeBigEndian64(value.data());
}

absl::StatusOr<std::string> ViewStore::Get(int cf, const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[cf], key, &value);
  if (s.IsNotFound()) return absl::NotFoundError(key);
  if (!s.ok()) return FromRocks(s, "get");
  return value;
}

std::unique_ptr<rocksdb::Iterator> ViewStore::NewIterator(int cf) const {
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), handles_[cf]));
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

void ViewTxn::Append(int cf, const std::string& key, const std::string& value) {
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

absl::Status ViewTxn::Commit(const std::map<int32_t, int64_t>& next_offsets) {
  rocksdb::WriteBatch& wb = appended_;
  for (const auto& [k, v] : changes_) {
    rocksdb::Status s = v.has_value() ? wb.Put(store_->cf(k.first), k.second, *v)
                                      : wb.Delete(store_->cf(k.first), k.second);
    if (!s.ok()) return FromRocks(s, "build batch");
  }
  for (const auto& [partition, offset] : next_offsets) {
    rocksdb::Status s = wb.Put(store_->meta(), OffsetKey(partition), EncodeBigEndian64(offset));
    if (!s.ok()) return FromRocks(s, "build batch");
  }
  // No fsync: if the machine crashes, rows and offset are lost together and re-applied.
  rocksdb::WriteOptions wo;
  wo.disableWAL = store_->without_wal();
  absl::Status st = FromRocks(store_->db()->Write(wo, &wb), "write");
  if (st.ok()) changes_.clear();
  wb.Clear();
  return st;
}

}  // namespace leadflow::projections

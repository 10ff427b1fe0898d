#include "services/storage/compact.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "services/storage/fault_policy.h"

namespace leadflow::storage {
namespace {

namespace fs = std::filesystem;

struct Opened {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<std::string> names;
  ~Opened() {
    for (auto* h : handles) {
      if (db && h != nullptr) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (db) db->Close().PermitUncheckedError();
  }
};

absl::Status Open(const std::string& dir, bool read_only, Opened* out) {
  rocksdb::Options options;
  options.create_if_missing = false;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &out->names);
  if (!s.ok()) return FromRocks(s, absl::StrCat("list the column families of ", dir));
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : out->names) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
  }
  rocksdb::DB* raw = nullptr;
  s = read_only ? rocksdb::DB::OpenForReadOnly(options, dir, families, &out->handles, &raw)
                : rocksdb::DB::Open(options, dir, families, &out->handles, &raw);
  if (IsLockHeld(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is in use by another process (stop leadflow serve first)"));
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", dir));
  out->db.reset(raw);
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> FindDatabases(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(data_dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().filename() == "CURRENT") {
      out.push_back(it->path().parent_path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status CompactEverything(const std::string& data_dir,
                               const std::function<void(const std::string&)>& say) {
  for (const std::string& dir : FindDatabases(data_dir)) {
    {
      Opened db;
      if (absl::Status st = Open(dir, /*read_only=*/false, &db); !st.ok()) return st;
      rocksdb::FlushOptions flush;
      rocksdb::Status s = db.db->Flush(flush, db.handles);
      rocksdb::CompactRangeOptions compact;
      compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      for (size_t i = 0; s.ok() && i < db.handles.size(); ++i) {
        s = db.db->CompactRange(compact, db.handles[i], nullptr, nullptr);
      }
      if (!s.ok()) return FromRocks(s, absl::StrCat("compact ", dir));
      if (say) say(absl::StrCat("compacted ", dir, " (", db.handles.size(), " column families)"));
    }
    // Opened once more: RocksDB starts a new MANIFEST holding only the live files (the old one
    // also recorded the first and last keys of every file ever deleted), and drops the old one.
    Opened again;
    if (absl::Status st = Open(dir, /*read_only=*/false, &again); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ScanDatabase(
    const std::string& dir,
    const std::function<void(const std::string&, const std::string&, const std::string&)>& visit) {
  Opened db;
  if (absl::Status st = Open(dir, /*read_only=*/true, &db); !st.ok()) return st;
  for (size_t i = 0; i < db.handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(
        db.db->NewIterator(rocksdb::ReadOptions(), db.handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      visit(db.names[i], it->key().ToString(), it->value().ToString());
    }
    if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("scan ", dir));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::storage

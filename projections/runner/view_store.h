// A view's store: its own RocksDB database (data/views/<name>/) with the view's column families
// and a `meta` family holding, per partition, the next log offset to apply. View rows and that
// offset are always written in one WriteBatch (ViewTxn::Commit), so a crash at any point neither
// skips nor applies an event twice.
#ifndef LEADFLOW_PROJECTIONS_RUNNER_VIEW_STORE_H_
#define LEADFLOW_PROJECTIONS_RUNNER_VIEW_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "services/log/witness.h"
#include "services/storage/fault_policy.h"
#include "services/storage/storage_budget.h"

namespace leadflow::projections {

struct ViewStoreOptions {
  // Directory of this view's database; created if missing.
  std::string dir;
  // The view's column families (besides "meta", which the store owns).
  std::vector<std::string> column_families;
  // Block cache for reads, in bytes, when no shared budget is given.
  size_t block_cache_bytes = 64 << 20;
  // Open an existing store read-only (leadflow verify): no writes, no lock on the directory.
  bool read_only = false;
  // For a store being rebuilt from scratch (discarded if the rebuild does not finish): skip the
  // write-ahead log; Close() flushes everything to disk. Never for a live store.
  bool without_wal = false;
  // The process's shared block cache and memtable budget (storage_budget.h); empty: this store
  // has its own cache of block_cache_bytes and RocksDB's per-family memtables.
  storage::StorageBudget budget = {};
  // The layout of the view's rows and keys (Projection::format_version). A new store records
  // it; opening a store recorded with another format (a store without one that holds rows is
  // format 1) fails with FAILED_PRECONDITION and a kFormatMismatch payload: the view must be
  // rebuilt (OpenProjectionStore in runner.h does that). 0: not checked.
  int format_version = 0;
};

// Payload type URL of the FAILED_PRECONDITION of a store in another format.
inline constexpr char kFormatMismatch[] = "leadflow.view_store.format_mismatch";

// Thread-safe. A write that fails for want of room (or any I/O error) stops the store taking
// writes (Writable() says why) until Recover() has reopened it; reads go on. A store that could
// not be opened for writing (a full disk at start) is opened read-only and reopened the same way.
class ViewStore {
 public:
  static absl::StatusOr<std::unique_ptr<ViewStore>> Open(const ViewStoreOptions& options);
  // The view column families of the store in `dir` (all but RocksDB's default and meta), to open
  // a store without knowing its projection (backups, verify).
  static absl::StatusOr<std::vector<std::string>> ListViewFamilies(const std::string& dir);
  ~ViewStore();

  // Next offset to apply for `partition` (0 if never written).
  absl::StatusOr<int64_t> StoredOffset(int32_t partition) const;
  // The view's witness of `partition`: its next offset and the last record it applied.
  absl::StatusOr<log::PartitionMark> StoredMark(int32_t partition) const;
  // True if any partition's offset was ever written (the store holds rows).
  absl::StatusOr<bool> HasOffsets() const;
  // NOT_FOUND if absent.
  absl::StatusOr<std::string> Get(int cf, const std::string& key) const;
  // Several keys of one family in one call (RocksDB batches the block reads): one result per
  // key, in order, each NOT_FOUND if absent.
  std::vector<absl::StatusOr<std::string>> MultiGet(int cf,
                                                    const std::vector<std::string>& keys) const;
  // Holds the store open (Recover waits) until it is destroyed.
  std::unique_ptr<rocksdb::Iterator> NewIterator(int cf) const;
  // Writes `batch` (rows and offsets); a failure stops the store taking writes.
  absl::Status Write(rocksdb::WriteBatch* batch) const;
  // A RocksDB integer property summed over the view's families (metrics); 0 if unknown.
  uint64_t IntProperty(const std::string& name, bool aggregated = false) const;
  // Only where no Recover can run (tools, benchmarks).
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(int index) const { return handles_[index]; }
  rocksdb::ColumnFamilyHandle* meta() const { return handles_.back(); }
  // The view's own column families (cf(0) .. cf(n-1); meta comes after them).
  int view_family_count() const { return static_cast<int>(handles_.size()) - 1; }
  const std::string& dir() const { return options_.dir; }
  bool without_wal() const { return options_.without_wal; }
  // Flushes memtables (all families at once) to disk; needed before a store opened
  // `without_wal` is handed over. Also done by the destructor.
  absl::Status Flush();

  // A consistent copy of the store as of now in `dir` (which must not exist), while it is used.
  absl::Status Checkpoint(const std::string& dir) const;

  // True if `error` is damage of this store's own files (DATA_LOSS from a RocksDB corruption,
  // whose message names the damaged file in this store's directory): a view then has to be
  // rebuilt from the log, while DATA_LOSS from elsewhere (a bad record, the log) does not.
  bool IsOwnDamage(const absl::Status& error) const;

  // OK if the store takes writes; else why not (a failed write, a background error, open
  // read-only).
  absl::Status Writable() const;
  // Reopens a store that does not take writes, if nothing uses it for a moment (it waits at
  // most `wait` for readers and batches to finish); OK if it takes writes again.
  absl::Status Recover(absl::Duration wait = absl::Seconds(2));
  // Held by the projection runner for the whole of a batch (its transaction refers to the
  // store's column families), so a Recover happens between batches.
  std::shared_lock<std::shared_timed_mutex> Use() const {
    return std::shared_lock<std::shared_timed_mutex>(mu_);
  }

 private:
  ViewStore() = default;
  // Opens options_.dir into db_ and handles_ (caller holds mu_ exclusively or is Open).
  absl::Status OpenDb(bool for_reading_only);
  void CloseDb();

  ViewStoreOptions options_;
  // Readers and writers hold it shared (nested: glibc's rwlock prefers readers, so a reader
  // never waits for a waiting Recover); Recover holds it exclusively to close and reopen.
  mutable std::shared_timed_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // view CFs in order, then meta
  bool read_only_ = false;
  std::shared_ptr<storage::StoreHealth> health_ = std::make_shared<storage::StoreHealth>();
};

// Compares every family (the view's rows and its meta: offsets, marks, format) of two stores of
// the view `view` with the same families, row by row (leadflow verify: a live view against a
// rebuild). The number of rows compared, or DATA_LOSS naming the first difference by family and
// row number, never by its key (keys hold personal data).
absl::StatusOr<int64_t> CompareStores(const ViewStore& live, const ViewStore& rebuilt,
                                      const std::string& view);

// The changes of one batch: reads see the batch's own writes. Child transactions (for one event)
// are merged into their parent only if the event applied cleanly.
class ViewTxn {
 public:
  explicit ViewTxn(const ViewStore* store, ViewTxn* parent = nullptr)
      : store_(store), parent_(parent) {}
  absl::StatusOr<std::optional<std::string>> Get(int cf, const std::string& key) const;
  void Put(int cf, const std::string& key, std::string value);
  // Write-only: on a root transaction it goes straight into the batch, is NOT visible to Get in
  // this batch, and must not be used for a key that is also Put/Deleted in it. For rows never
  // read back (timelines). On a child transaction it is a Put (discarded if the event fails).
  void PutWriteOnly(int cf, const std::string& key, const std::string& value);
  void Delete(int cf, const std::string& key);
  // Child only: moves its changes into the parent.
  void MergeIntoParent();
  // Root only: writes every change and each partition's mark (its next offset, and the offset
  // and digest of the last record applied, if the batch had one) in one WriteBatch: the marks
  // are the view's witness of the log (services/log/witness.h).
  absl::Status Commit(const std::map<int32_t, log::PartitionMark>& marks);
  bool empty() const { return changes_.empty(); }

  // Scratch state a projection keeps for the length of one batch (one root transaction, i.e. one
  // partition thread): created on first use, shared by the batch's child transactions.
  template <typename T>
  T& Scratch() {
    ViewTxn* root = this;
    while (root->parent_ != nullptr) root = root->parent_;
    if (!root->scratch_) root->scratch_ = std::make_shared<T>();
    return *static_cast<T*>(root->scratch_.get());
  }

 private:
  const ViewStore* store_;
  ViewTxn* parent_;
  std::shared_ptr<void> scratch_;
  rocksdb::WriteBatch appended_;                                               // root only
  std::map<std::pair<int, std::string>, std::optional<std::string>> changes_;  // nullopt = delete
};

// The page size of a listing query: `requested`, or `default_size` if 0; INVALID_ARGUMENT
// "page_size: must be 1 to 1000 (got N)" otherwise.
absl::StatusOr<int> PageSize(int32_t requested, int default_size);

// Longest [from, to) range a view query accepts, in days (about ten years).
inline constexpr int kMaxRangeDays = 3660;

struct TimeRange {
  absl::Time from;
  absl::Time to;
};
// A query's [from, to) range. Both ends are required (`nullptr` = unset): INVALID_ARGUMENT
// naming the field if one is missing or invalid, if `to` is before `from`, or if the range is
// longer than kMaxRangeDays. An empty range (from == to) is fine.
absl::StatusOr<TimeRange> QueryRange(absl::string_view from_field,
                                     const google::protobuf::Timestamp* from,
                                     absl::string_view to_field,
                                     const google::protobuf::Timestamp* to);

// Big-endian fixed-width encodings, so byte order is numeric order in keys.
std::string EncodeBigEndian64(int64_t v);
int64_t DecodeBigEndian64(const char* p);

// A free-text component of a key (an owner, an id from an event): every NUL byte is written as
// 00 FF and the part ends with 00 01, so no value can run into the next component, a part is a
// prefix of no other part, and byte order of encoded parts is the order of the values.
void AppendKeyPart(std::string* key, absl::string_view part);
std::string KeyPart(absl::string_view part);
// Reads one part written by AppendKeyPart from the front of `*rest` and advances it; false if
// `*rest` does not start with a complete part.
bool ReadKeyPart(absl::string_view* rest, std::string* part);

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_RUNNER_VIEW_STORE_H_

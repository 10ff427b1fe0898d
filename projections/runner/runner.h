// The projection runner shared by every view: one thread per log partition reads events in
// order, applies them through the view's Projection into one ViewTxn per batch, and commits the
// rows with the partition's next offset in a single write. A record that cannot be decoded or
// applied stops that partition (reported with partition, offset and reason in Status() and in
// health) instead of being skipped; the other partitions go on.
#ifndef LEADFLOW_PROJECTIONS_RUNNER_RUNNER_H_
#define LEADFLOW_PROJECTIONS_RUNNER_RUNNER_H_

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "leadflow/v1/events.pb.h"
#include "leadflow/v1/views.pb.h"
#include "projections/runner/view_store.h"
#include "services/log/event_log.h"
#include "services/log/witness.h"
#include "services/privacy/vault.h"
#include "services/storage/disk_guard.h"

namespace leadflow::projections {

class Projection {
 public:
  virtual ~Projection() = default;
  virtual std::string name() const = 0;
  // Column families the view needs (opened by its ViewStore).
  virtual std::vector<std::string> column_families() const = 0;
  // Applies one event. On error it may have written to `txn`; the runner discards those writes,
  // and the projection must leave any state it keeps across events of a batch unchanged.
  virtual absl::Status Apply(const v1::Event& event, const log::Record& record, ViewTxn& txn) = 0;
  // True if Apply writes to `txn` only after everything that can fail succeeded (so a failed
  // event wrote nothing); the runner then skips the per-event child transaction.
  virtual bool AppliesAtomically() const { return false; }
  // False if the view reads no personal field of `event`: it is then applied unopened (it
  // keeps its sealed blob, which the view ignores), which saves a decryption.
  virtual bool ReadsPersonalData(const v1::Event& event) const { return true; }
  // Called once per batch, before the batch is committed, to flush state the projection kept
  // across the batch's events (e.g. rows it updated in memory). `txn` is the batch transaction.
  virtual absl::Status FinishBatch(ViewTxn& txn) { return absl::OkStatus(); }
  // Called after the batch's rows and offsets are durably committed, before the runner reports
  // the new offset as applied (so a query that waited for it sees the change). For projections
  // that keep an in-memory index of their rows; must not fail.
  virtual void Committed(ViewTxn& txn) {}
  // Called once when the view's store is opened, before any event is applied: projections with
  // an in-memory index load it from their rows here.
  virtual absl::Status Load(const ViewStore& store) { return absl::OkStatus(); }
  // The layout of the rows and keys this projection writes. Raise it when they change: a store
  // written in another format is rebuilt from the log when it is opened (OpenProjectionStore).
  virtual int format_version() const { return 1; }
};

// The view's witness of each of `partitions` partitions (its stored marks).
absl::StatusOr<std::vector<log::PartitionMark>> StoredMarks(const ViewStore& store,
                                                            int32_t partitions);
// The view's marks checked against the log: OK, or the DATA_LOSS of the first partition where
// the log no longer holds what the view applied (a damaged or replaced log): the view must then
// be rebuilt from the log as it is (the node does, saying so), never skip or count twice.
absl::Status CheckViewAgainstLog(log::EventLog& log, const ViewStore& store,
                                 const std::string& view);

// Opens `projection`'s store in `dir` (`options` completed with the projection's column families
// and format version; its dir is `dir`). A store written in another format is discarded and
// opened empty, so the runner rebuilds it from offset zero; `rebuilt_because`, if given, is then
// set to why (for the start-up log).
absl::StatusOr<std::unique_ptr<ViewStore>> OpenProjectionStore(
    const std::string& dir, const Projection& projection, ViewStoreOptions options = {},
    std::string* rebuilt_because = nullptr);

struct RunnerOptions {
  // Most records applied (and committed) in one write.
  size_t max_batch = 2000;
  // How long a tailing read waits for new records before checking for shutdown.
  absl::Duration poll = absl::Milliseconds(200);
  // Threads CatchUp (rebuild) replays partitions on; 0 = one per core. Partitions are
  // independent, so they replay in parallel.
  int catch_up_threads = 0;
  // The data directory's free space (storage/disk_guard.h): while it is below its reserve, a
  // partition stalls instead of writing, and resumes by itself. Not owned; may be null.
  storage::DiskGuard* disk = nullptr;
  // Called (once) when a partition stops because the view's own store is damaged (a RocksDB
  // corruption in one of its files, not a bad record): the view must be rebuilt from the log.
  std::function<void(const absl::Status&)> on_store_damage;
  // Opens sealed personal fields (services/privacy/vault.h) before a view applies an event;
  // null: events are applied as stored. Not owned.
  privacy::Vault* vault = nullptr;
};

// A record as the views see it: decoded, and opened with `vault` (may be null) if `wanted`
// says so: an erased lead's events come without their personal fields. UNAVAILABLE if the key
// store cannot be read now.
absl::StatusOr<v1::Event> DecodeAndOpen(
    const log::Record& record, privacy::Vault* vault,
    const std::function<bool(const v1::Event&)>& wanted = nullptr);

class SharedTail;

class ProjectionRunner {
 public:
  ProjectionRunner(log::EventLog* log, ViewStore* store, Projection* projection,
                   RunnerOptions options = {});
  ~ProjectionRunner();  // stops the threads

  // Starts one tailing thread per partition, from the stored offsets.
  void Start();
  void Stop();

  // Applies every partition up to the log's end as of the call (for rebuilds), partitions in
  // parallel on RunnerOptions::catch_up_threads threads; returns when all are done.
  // `progress(applied_events, total_events)` is called after each batch, never concurrently.
  absl::Status CatchUp(const std::function<void(int64_t, int64_t)>& progress = nullptr);

  // CatchUp of several views of the same log in one pass: each partition is read and each
  // record decoded once, then applied to every view (each still commits its own rows with its
  // own offsets). `progress(read_events, total_events)` counts log records read.
  // `until`, if given, is where to stop on each partition instead of the log's end (leadflow
  // verify rebuilds a view up to the offsets the live view has applied).
  static absl::Status CatchUpAll(absl::Span<ProjectionRunner* const> runners,
                                 const std::function<void(int64_t, int64_t)>& progress = nullptr,
                                 const std::vector<int64_t>* until = nullptr);

  // Read-your-writes: waits until the view has applied `position` (offset < applied offset of
  // its partition). UNAVAILABLE on timeout, naming where the view is.
  absl::Status WaitFor(const v1::LogPosition& position, absl::Duration timeout) const;

  // Fresh reads: waits until the view has applied each listed partition (all if empty) up to
  // the log's end as of this call. UNAVAILABLE on timeout.
  absl::Status WaitForLogEnd(const std::vector<int32_t>& partitions, absl::Duration timeout) const;

  // The same without a waiting thread, for servers: `targets` are (partition, offset) pairs the
  // view must have applied. Returns kReady if it already has (`ready` is never called), the
  // partition's error if one has failed, or an id: `ready` will then run once, on a runner
  // thread, with OK when every target is applied or with the error of a partition that fails
  // (or UNAVAILABLE when the runner stops), unless CancelAwait(id) returned true first. `ready`
  // must not block.
  static constexpr uint64_t kReady = 0;
  absl::StatusOr<uint64_t> Await(std::vector<std::pair<int32_t, int64_t>> targets,
                                 std::function<void(absl::Status)> ready) const;
  // True if the wait was removed before its `ready` ran (it never will); false if `ready` has
  // run or is running.
  bool CancelAwait(uint64_t id) const;
  // Where the view is on `partition`, for a message: "view lead has applied partition 2 up to
  // offset 41".
  std::string Progress(int32_t partition) const;
  // The first of `targets` the view has not applied yet (for a message), if any.
  std::optional<std::pair<int32_t, int64_t>> FirstUnapplied(
      const std::vector<std::pair<int32_t, int64_t>>& targets) const;

  std::vector<v1::ViewPartitionStatus> Status() const;
  // The same against end offsets the caller already has (index = partition; -1 = unknown).
  std::vector<v1::ViewPartitionStatus> StatusAt(const std::vector<int64_t>& ends) const;
  // OK if every partition is healthy; else the first failure.
  absl::Status Health() const;
  // Log records this runner has applied and committed since it was created (for the apply-rate
  // metric; a rebuild's are included).
  int64_t applied_records() const { return applied_records_.load(std::memory_order_relaxed); }
  // Log records this runner's own threads have read (a view tailing alone, or catching up to
  // the others of a SharedTail); records a SharedTail hands it are not counted here.
  int64_t records_read_alone() const { return read_alone_.load(std::memory_order_relaxed); }
  // True while a SharedTail's reader applies `partition` for this view (in step with the
  // other views); false while the view reads alone, or without a SharedTail.
  bool InStep(int32_t partition) const;
  std::string name() const;
  ViewStore* store() const { return store_; }

  struct Partition;

 private:
  friend class SharedTail;
  void Tail(Partition& p);
  // Back in step with its SharedTail's reader of p if it can be (applied at or past the shared
  // position, and healthy): from then on the shared reader hands p its batches.
  void TryJoin(Partition& p);
  // For records read once for several views: the vault they share (any one's) and whether any
  // of them reads `event`'s personal fields (then it is opened for all).
  static privacy::Vault* SharedVault(absl::Span<ProjectionRunner* const> runners);
  static bool AnyReadsPersonalData(absl::Span<ProjectionRunner* const> runners,
                                   const v1::Event& event);
  struct Waiter;
  // Calls `ready` of the waiters parked on `p` that are now satisfied (every target applied) or
  // failed (`error`, or the partition's error); the others wait on. Call without holding p.mu.
  void WakeWaiters(Partition& p, const absl::Status& error) const;
  // Moves w->next to its first unapplied target; false if every target is applied or one's
  // partition failed (its error in `failed`). Caller holds waiters_mu_ (lock order: waiters_mu_,
  // then a partition's mu).
  bool Park(const std::shared_ptr<Waiter>& w, absl::Status* failed) const;
  // Applies `records` and commits them with `next_offset`; returns false if the partition failed.
  // `decoded`, if not empty, holds DecodeEvent of each record (decoded once for several views).
  bool ApplyBatch(Partition& p, absl::Span<const log::Record> records, int64_t next_offset,
                  absl::Span<const absl::StatusOr<v1::Event>> decoded = {});

  log::EventLog* log_;
  ViewStore* store_;
  Projection* projection_;
  RunnerOptions options_;
  std::vector<std::unique_ptr<Partition>> partitions_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> applied_records_{0};
  std::atomic<int64_t> read_alone_{0};
  std::atomic<bool> store_damage_reported_{false};
  // Calls options_.on_store_damage (once) if `error` is damage of the view's own store.
  void ReportStoreDamage(const absl::Status& error);
  mutable std::atomic<uint64_t> next_waiter_{1};
  // Servers' waits (Await) by id; each is parked on the partition of its next target.
  mutable absl::Mutex waiters_mu_;
  mutable std::map<uint64_t, std::shared_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(waiters_mu_);
};

// The live views of one process read the log once. Per partition, one thread reads each record
// once, decodes and opens it once, and hands the batch to every view that is at that position
// (in step); each view's own thread applies it and commits its rows with its own offsets, in
// parallel with the others. A view that is not in step is not waited for: one that stalls (a
// full disk, the key store unavailable now), fails, is slow to take its batches (its queue of
// handed batches stays full for 2 s), or starts behind the others (rebuilt from the log) reads
// the log on its own thread from its own position until it reaches the shared one, then
// rejoins; one that fails stops alone. Rebuilds (CatchUpAll) share their decoding too.
class SharedTail {
 public:
  // `runners`: views of one log, not started, not owned; they must outlive this. Start starts
  // them; stop this (Stop or the destructor) before destroying them.
  explicit SharedTail(std::vector<ProjectionRunner*> runners);
  ~SharedTail();
  SharedTail(const SharedTail&) = delete;
  SharedTail& operator=(const SharedTail&) = delete;

  void Start();
  // Stops the shared readers, then the runners (once; later calls do nothing).
  void Stop();
  // Log records the shared readers have read (each once, whatever the number of views).
  int64_t records_read() const { return records_read_.load(std::memory_order_relaxed); }

  struct Lane;  // one partition's shared reader

 private:
  void Run(Lane& lane);
  // A read error that is not transient: the views in step on lane fail with it.
  void Fail(Lane& lane, const absl::Status& error);

  std::vector<ProjectionRunner*> runners_;
  log::EventLog* log_ = nullptr;
  privacy::Vault* vault_ = nullptr;
  RunnerOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<int64_t> records_read_{0};
};

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_RUNNER_RUNNER_H_

#include "projections/runner/runner.h"

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "services/common/kill_point.h"
#include "services/common/status_util.h"
#include "services/log/event_codec.h"

namespace leadflow::projections {

struct ProjectionRunner::Waiter {
  uint64_t id = 0;
  std::vector<std::pair<int32_t, int64_t>> targets;  // (partition, offset) to have applied
  size_t next = 0;                                   // first target not known to be applied
  std::function<void(absl::Status)> ready;
};

// Records the shared reader read and decoded once, handed to each view in step.
struct SharedBatch {
  std::vector<log::Record> records;
  std::vector<absl::StatusOr<v1::Event>> decoded;  // one per record
  int64_t next = 0;                                // the log position after them
};

// Batches handed to a view in step and not applied yet, at most; when its queue stays full (a
// slow or stuck store) the view drops out of step and reads alone.
constexpr size_t kHandOffBatches = 4;
// How long the shared reader waits for a view in step to take a batch before it drops out.
constexpr absl::Duration kHandOffWait = absl::Seconds(2);

struct ProjectionRunner::Partition {
  int32_t id = 0;
  mutable absl::Mutex mu;
  int64_t applied ABSL_GUARDED_BY(mu) = 0;  // next offset to apply
  absl::Status error ABSL_GUARDED_BY(mu);
  // Not OK: the store takes no writes now (a full disk); the partition waits and retries.
  absl::Status stalled ABSL_GUARDED_BY(mu);
  mutable absl::CondVar advanced;
  std::atomic<bool> stop{false};
  // Set while a SharedTail runs this view: its reader of this partition.
  SharedTail::Lane* lane = nullptr;
  // In step: the lane's reader hands this partition's batches to Tail (`handed`) instead of
  // Tail reading them. Set by Tail (TryJoin, holding the lane's mu too); cleared by Tail when a
  // handed batch fails, or by the lane when the view does not take a batch in time.
  bool joined ABSL_GUARDED_BY(mu) = false;
  std::deque<std::shared_ptr<const SharedBatch>> handed ABSL_GUARDED_BY(mu);
};

namespace {
// Tail has something to do while in step: a handed batch, or it is out of step (or stopping).
bool HasWork(ProjectionRunner::Partition* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu) {
  return !p->handed.empty() || !p->joined || p->stop.load();
}
// The lane may hand `p` a batch (or `p` is no longer in step).
bool HasRoom(ProjectionRunner::Partition* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu) {
  return p->handed.size() < kHandOffBatches || !p->joined || p->stop.load();
}
}  // namespace

struct SharedTail::Lane {
  int32_t partition = 0;
  absl::Mutex mu;  // before any Partition::mu
  // Where the shared reader is: every view in step has applied the records before it.
  int64_t position ABSL_GUARDED_BY(mu) = 0;
  // False once the lane has stopped (or failed): a view catching up then tails alone.
  bool running ABSL_GUARDED_BY(mu) = false;
  std::atomic<bool> stop{false};
  std::thread thread;
};

absl::StatusOr<std::vector<log::PartitionMark>> StoredMarks(const ViewStore& store,
                                                            int32_t partitions) {
  std::vector<log::PartitionMark> marks;
  for (int32_t p = 0; p < partitions; ++p) {
    LEADFLOW_ASSIGN_OR_RETURN(marks.emplace_back(), store.StoredMark(p));
  }
  return marks;
}

absl::Status CheckViewAgainstLog(log::EventLog& log, const ViewStore& store,
                                 const std::string& view) {
  LEADFLOW_ASSIGN_OR_RETURN(std::vector<log::PartitionMark> marks,
                            StoredMarks(store, log.partition_count()));
  for (int32_t p = 0; p < log.partition_count(); ++p) {
    LEADFLOW_RETURN_IF_ERROR(log::CheckMark(log, p, marks[p], absl::StrCat("view ", view)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ViewStore>> OpenProjectionStore(const std::string& dir,
                                                               const Projection& projection,
                                                               ViewStoreOptions options,
                                                               std::string* rebuilt_because) {
  options.dir = dir;
  options.column_families = projection.column_families();
  options.format_version = projection.format_version();
  absl::StatusOr<std::unique_ptr<ViewStore>> store = ViewStore::Open(options);
  if (store.ok() || !store.status().GetPayload(kFormatMismatch).has_value() || options.read_only) {
    return store;
  }
  if (rebuilt_because != nullptr) {
    *rebuilt_because = absl::StrCat(store.status().message(), "; rebuilding view ",
                                    projection.name(), " from the log");
  }
  std::error_code ec;
  std::filesystem::remove_all(options.dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("view ", projection.name(), ": cannot remove ",
                                               options.dir, " to rebuild it: ", ec.message()));
  }
  return ViewStore::Open(options);
}

ProjectionRunner::ProjectionRunner(log::EventLog* log, ViewStore* store, Projection* projection,
                                   RunnerOptions options)
    : log_(log), store_(store), projection_(projection), options_(std::move(options)) {
  for (int32_t p = 0; p < log_->partition_count(); ++p) {
    auto part = std::make_unique<Partition>();
    part->id = p;
    absl::StatusOr<int64_t> stored = store_->StoredOffset(p);
    absl::MutexLock lock(&part->mu);
    if (stored.ok()) {
      part->applied = *stored;
    } else {
      part->error = stored.status();
    }
    partitions_.push_back(std::move(part));
  }
}

ProjectionRunner::~ProjectionRunner() { Stop(); }

void ProjectionRunner::Start() {
  for (auto& p : partitions_) {
    threads_.emplace_back([this, part = p.get()] { Tail(*part); });
  }
}

void ProjectionRunner::Stop() {
  for (auto& p : partitions_) p->stop = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& p : partitions_) {
    WakeWaiters(*p, absl::UnavailableError(
                        absl::StrCat("view ", projection_->name(), " is stopping; retry")));
  }
}

absl::StatusOr<v1::Event> DecodeAndOpen(const log::Record& record, privacy::Vault* vault,
                                        const std::function<bool(const v1::Event&)>& wanted) {
  absl::StatusOr<v1::Event> event = log::DecodeEvent(record);
  if (!event.ok() || vault == nullptr) return event;
  vault->Observe(*event);
  if (wanted && !wanted(*event)) return event;
  // Sealed personal fields come back with the lead's key; an erased lead's are dropped.
  if (absl::Status opened = vault->Open(&*event); !opened.ok()) return opened;
  return event;
}

bool ProjectionRunner::ApplyBatch(Partition& p, absl::Span<const log::Record> records,
                                  int64_t next_offset,
                                  absl::Span<const absl::StatusOr<v1::Event>> decoded) {
  // The store stays open (no Recover) while the batch refers to it.
  const auto in_use = store_->Use();
  ViewTxn txn(store_);
  absl::Status failure;
  int64_t commit_offset = next_offset;
  absl::StatusOr<v1::Event> own;
  for (size_t i = 0; i < records.size(); ++i) {
    const log::Record& r = records[i];
    if (decoded.empty()) {
      own = DecodeAndOpen(r, options_.vault,
                          [this](const v1::Event& e) { return projection_->ReadsPersonalData(e); });
    }
    const absl::StatusOr<v1::Event>& event = decoded.empty() ? own : decoded[i];
    absl::Status st = event.status();
    if (event.ok() && projection_->AppliesAtomically()) {
      st = projection_->Apply(*event, r, txn);
      if (!st.ok()) {
        st = absl::Status(st.code(), absl::StrCat("partition ", r.partition, " offset ", r.offset,
                                                  ": ", st.message()));
      }
    } else if (event.ok()) {
      ViewTxn one(store_, &txn);
      st = projection_->Apply(*event, r, one);
      if (st.ok()) {
        one.MergeIntoParent();
      } else {
        st = absl::Status(st.code(), absl::StrCat("partition ", r.partition, " offset ", r.offset,
                                                  ": ", st.message()));
      }
    }
    if (!st.ok()) {
      // Keep what came before the bad record; stop exactly at it.
      failure = absl::Status(
          st.code(), absl::StrCat("view ", projection_->name(), " stopped: ", st.message()));
      commit_offset = r.offset;
      break;
    }
  }
  absl::Status finished = projection_->FinishBatch(txn);
  if (!finished.ok()) {
    {
      absl::MutexLock lock(&p.mu);
      p.error = absl::Status(finished.code(), absl::StrCat("view ", projection_->name(),
                                                           " stopped: ", finished.message()));
    }
    ReportStoreDamage(finished);
    WakeWaiters(p, absl::OkStatus());
    return false;
  }
  // A store that takes no writes now (a full disk) stalls the partition, which retries by
  // itself once there is room (Tail); nothing of this batch was written.
  absl::Status writable =
      options_.disk != nullptr ? options_.disk->CheckWritable() : absl::OkStatus();
  if (writable.ok()) writable = store_->Writable();
  absl::Status committed = writable;
  if (writable.ok()) {
    common::KillPoint("projection.before_commit");
    // The view's witness of the log: its next offset and the last record applied.
    log::PartitionMark mark{.end = commit_offset, .record_offset = -1, .digest = ""};
    for (auto r = records.rbegin(); r != records.rend(); ++r) {
      if (r->offset < commit_offset) {
        mark.record_offset = r->offset;
        mark.digest = log::RecordDigest(r->value);
        break;
      }
    }
    committed = txn.Commit({{p.id, mark}});
    common::KillPoint("projection.after_commit");
  }
  if (committed.ok()) projection_->Committed(txn);
  if (absl::IsUnavailable(committed)) {
    absl::MutexLock lock(&p.mu);
    p.stalled = absl::UnavailableError(
        absl::StrCat("view ", projection_->name(), " waits: ", committed.message()));
    return false;
  }
  {
    absl::MutexLock lock(&p.mu);
    if (!committed.ok()) {
      p.error = committed;
    } else {
      applied_records_.fetch_add(commit_offset - p.applied, std::memory_order_relaxed);
      p.applied = commit_offset;
      if (absl::IsUnavailable(failure)) {
        // The key store could not be read now: wait and retry at the record (never applied
        // without its personal fields on a guess).
        p.stalled = failure;
      } else if (!failure.ok()) {
        p.error = failure;
      }
    }
    p.advanced.SignalAll();
  }
  ReportStoreDamage(!committed.ok() ? committed : failure);
  WakeWaiters(p, absl::OkStatus());
  return committed.ok() && failure.ok();
}

void ProjectionRunner::ReportStoreDamage(const absl::Status& error) {
  if (error.ok() || !store_->IsOwnDamage(error) || !options_.on_store_damage) return;
  if (store_damage_reported_.exchange(true)) return;
  options_.on_store_damage(error);
}

void ProjectionRunner::Tail(Partition& p) {
  std::unique_ptr<log::LogReader> reader;  // opened at p.applied when needed
  absl::Duration backoff = options_.poll;
  auto fail = [&](const absl::Status& error) {
    {
      absl::MutexLock lock(&p.mu);
      p.error = error;
    }
    WakeWaiters(p, absl::OkStatus());
  };
  while (!p.stop) {
    absl::Status stalled;
    std::shared_ptr<const SharedBatch> batch;
    int64_t applied = 0;
    {
      absl::MutexLock lock(&p.mu);
      if (!p.error.ok()) return;
      if (p.joined) {
        // In step: apply what the shared reader hands over (read and decoded once).
        reader.reset();  // the position moves on without this thread's reader
        p.mu.AwaitWithTimeout(absl::Condition(&HasWork, &p), options_.poll);
        if (!p.joined || p.handed.empty()) continue;
        batch = std::move(p.handed.front());
        p.handed.pop_front();
        applied = p.applied;
      } else {
        p.handed.clear();  // out of step: read from its own position
        stalled = p.stalled;
      }
    }
    if (batch != nullptr) {
      if (batch->next <= applied) continue;  // it read past the batch on its own
      size_t first = 0;                      // skip what it applied on its own
      while (first < batch->records.size() && batch->records[first].offset < applied) ++first;
      if (!ApplyBatch(p, absl::MakeConstSpan(batch->records).subspan(first), batch->next,
                      absl::MakeConstSpan(batch->decoded).subspan(first))) {
        absl::MutexLock lock(&p.mu);
        p.joined = false;  // out of step: retry alone (a stall) or stop (a failure)
        p.handed.clear();
      }
      continue;
    }
    if (!stalled.ok()) {
      // Retry by itself: once the disk has room, reopen the store (if a write failed) and read
      // again from the last committed offset.
      for (absl::Time until = absl::Now() + backoff; !p.stop && absl::Now() < until;) {
        absl::SleepFor(absl::Milliseconds(50));
      }
      backoff = std::min(backoff * 2, absl::Seconds(5));
      if (options_.disk != nullptr) {
        options_.disk->Refresh();
        if (!options_.disk->CheckWritable().ok()) continue;
      }
      if (!store_->Recover().ok()) continue;
      {
        absl::MutexLock lock(&p.mu);
        p.stalled = absl::OkStatus();
      }
      reader.reset();
      backoff = options_.poll;
      continue;
    }
    if (reader == nullptr) {
      int64_t from;
      {
        absl::MutexLock lock(&p.mu);
        from = p.applied;
      }
      absl::StatusOr<std::unique_ptr<log::LogReader>> opened = log_->OpenReader(p.id, from);
      if (!opened.ok()) return fail(opened.status());
      reader = *std::move(opened);
    }
    absl::StatusOr<std::vector<log::Record>> records =
        reader->Read(options_.max_batch, options_.poll);
    if (!records.ok()) {
      if (absl::IsUnavailable(records.status())) {
        absl::SleepFor(options_.poll);  // transient: the log comes back by itself
        continue;
      }
      return fail(absl::Status(
          records.status().code(),
          absl::StrCat("view ", projection_->name(), " stopped: ", records.status().message())));
    }
    read_alone_.fetch_add(static_cast<int64_t>(records->size()), std::memory_order_relaxed);
    const int64_t next = reader->position();
    bool idle = false;
    if (records->empty()) {
      absl::MutexLock lock(&p.mu);
      idle = next == p.applied;  // nothing new (or only transaction markers)
    }
    if (!idle && !ApplyBatch(p, *records, next)) {
      absl::MutexLock lock(&p.mu);
      if (p.stalled.ok()) return;  // failed for good (reported in Status)
      continue;
    }
    TryJoin(p);
  }
}

void ProjectionRunner::TryJoin(Partition& p) {
  if (p.lane == nullptr) return;
  absl::MutexLock lane_lock(&p.lane->mu);
  absl::MutexLock lock(&p.mu);
  p.joined = p.lane->running && p.error.ok() && p.stalled.ok() && p.applied >= p.lane->position;
}

privacy::Vault* ProjectionRunner::SharedVault(absl::Span<ProjectionRunner* const> runners) {
  for (ProjectionRunner* r : runners) {
    if (r->options_.vault != nullptr) return r->options_.vault;
  }
  return nullptr;
}

bool ProjectionRunner::AnyReadsPersonalData(absl::Span<ProjectionRunner* const> runners,
                                            const v1::Event& event) {
  for (ProjectionRunner* r : runners) {
    if (r->projection_->ReadsPersonalData(event)) return true;
  }
  return false;
}

absl::Status ProjectionRunner::CatchUp(const std::function<void(int64_t, int64_t)>& progress) {
  ProjectionRunner* self = this;
  return CatchUpAll(absl::MakeConstSpan(&self, 1), progress);
}

absl::Status ProjectionRunner::CatchUpAll(absl::Span<ProjectionRunner* const> runners,
                                          const std::function<void(int64_t, int64_t)>& progress,
                                          const std::vector<int64_t>* until) {
  if (runners.empty()) return absl::OkStatus();
  log::EventLog* log = runners[0]->log_;
  const size_t partitions = runners[0]->partitions_.size();
  for (ProjectionRunner* r : runners) {
    if (r->log_ != log) return absl::InternalError("CatchUpAll: views of different logs");
  }
  // Per partition: where each view is, and the log's end now.
  std::vector<int64_t> ends(partitions), starts(partitions);
  int64_t total = 0;
  for (size_t i = 0; i < partitions; ++i) {
    LEADFLOW_ASSIGN_OR_RETURN(ends[i], log->EndOffset(static_cast<int32_t>(i)));
    if (until != nullptr && i < until->size()) ends[i] = std::min(ends[i], (*until)[i]);
    starts[i] = ends[i];
    for (ProjectionRunner* r : runners) {
      Partition& p = *r->partitions_[i];
      absl::MutexLock lock(&p.mu);
      LEADFLOW_RETURN_IF_ERROR(p.error);
      starts[i] = std::min(starts[i], p.applied);
    }
    total += std::max<int64_t>(0, ends[i] - starts[i]);
  }
  std::atomic<size_t> next{0};
  absl::Mutex mu;  // guards `read`, `failure` and calls to `progress`
  int64_t read = 0;
  absl::Status failure;
  // Decoded once for all the views: opened if any of them reads its personal fields.
  privacy::Vault* vault = SharedVault(runners);
  auto wanted = [&runners](const v1::Event& e) { return AnyReadsPersonalData(runners, e); };
  auto replay = [&](size_t i) -> absl::Status {
    std::vector<absl::StatusOr<v1::Event>> decoded;
    auto chunk = [&](std::vector<log::Record>& records, int64_t position) -> absl::Status {
      decoded.clear();
      for (const log::Record& r : records) decoded.push_back(DecodeAndOpen(r, vault, wanted));
      for (ProjectionRunner* runner : runners) {
        Partition& p = *runner->partitions_[i];
        int64_t applied;
        {
          absl::MutexLock lock(&p.mu);
          applied = p.applied;
        }
        if (position <= applied) continue;  // this view is already past the chunk
        size_t first = 0;                   // skip what this view applied before
        while (first < records.size() && records[first].offset < applied) ++first;
        if (!runner->ApplyBatch(p, absl::MakeConstSpan(records).subspan(first), position,
                                absl::MakeConstSpan(decoded).subspan(first))) {
          absl::MutexLock lock(&p.mu);
          return p.error.ok() ? p.stalled : p.error;
        }
      }
      absl::MutexLock lock(&mu);
      if (!failure.ok()) return failure;  // another partition failed: stop early
      read += static_cast<int64_t>(records.size());
      if (progress) progress(read, total);
      return absl::OkStatus();
    };
    absl::StatusOr<int64_t> last = log::ReadToEnd(*log, static_cast<int32_t>(i), starts[i], ends[i],
                                                  runners[0]->options_.max_batch, chunk);
    if (!last.ok() && absl::IsUnavailable(last.status())) {
      std::vector<std::string> names;
      for (ProjectionRunner* r : runners) names.push_back(r->projection_->name());
      return absl::Status(last.status().code(), absl::StrCat("view ", absl::StrJoin(names, ", "),
                                                             ": ", last.status().message()));
    }
    return last.status();
  };
  auto worker = [&] {
    for (size_t i = next++; i < partitions; i = next++) {
      absl::Status st = replay(i);
      if (!st.ok()) {
        absl::MutexLock lock(&mu);
        if (failure.ok()) failure = st;
        return;
      }
    }
  };
  const int configured = runners[0]->options_.catch_up_threads;
  const int threads = std::max<int>(
      1, std::min<int>(
             configured > 0 ? configured : static_cast<int>(std::thread::hardware_concurrency()),
             static_cast<int>(partitions)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return failure;
}

bool ProjectionRunner::Park(const std::shared_ptr<Waiter>& w, absl::Status* failed) const {
  for (; w->next < w->targets.size(); ++w->next) {
    const auto [partition, offset] = w->targets[w->next];
    Partition& p = *partitions_[partition];
    absl::MutexLock lock(&p.mu);
    if (!p.error.ok()) {
      *failed = p.error;
      return false;
    }
    if (p.applied <= offset && !p.stalled.ok()) {
      *failed = p.stalled;  // it applies nothing until its store takes writes again
      return false;
    }
    if (p.applied <= offset) return true;
  }
  return false;
}

void ProjectionRunner::WakeWaiters(Partition& p, const absl::Status& error) const {
  std::vector<std::shared_ptr<Waiter>> done;
  std::vector<absl::Status> why;
  {
    absl::MutexLock lock(&waiters_mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      std::shared_ptr<Waiter>& w = it->second;
      if (w->targets[w->next].first != p.id) {
        ++it;
        continue;
      }
      absl::Status failed = error;
      if (failed.ok() && Park(w, &failed)) {  // still waiting (here or on a later target)
        ++it;
        continue;
      }
      done.push_back(std::move(w));
      why.push_back(std::move(failed));
      it = waiters_.erase(it);
    }
  }
  for (size_t i = 0; i < done.size(); ++i) done[i]->ready(why[i]);
}

absl::StatusOr<uint64_t> ProjectionRunner::Await(std::vector<std::pair<int32_t, int64_t>> targets,
                                                 std::function<void(absl::Status)> ready) const {
  for (const auto& [partition, offset] : targets) {
    LEADFLOW_RETURN_IF_ERROR(log::CheckPartition("min_position.partition", partition,
                                                 static_cast<int32_t>(partitions_.size())));
  }
  auto w = std::make_shared<Waiter>();
  w->id = next_waiter_++;
  w->targets = std::move(targets);
  w->ready = std::move(ready);
  absl::Status failed;
  // Checked and registered under waiters_mu_: a partition that advances meanwhile wakes it.
  absl::MutexLock lock(&waiters_mu_);
  if (!Park(w, &failed)) return failed.ok() ? absl::StatusOr<uint64_t>(kReady) : failed;
  waiters_[w->id] = w;
  return w->id;
}

bool ProjectionRunner::CancelAwait(uint64_t id) const {
  absl::MutexLock lock(&waiters_mu_);
  return waiters_.erase(id) > 0;
}

std::optional<std::pair<int32_t, int64_t>> ProjectionRunner::FirstUnapplied(
    const std::vector<std::pair<int32_t, int64_t>>& targets) const {
  for (const auto& [partition, offset] : targets) {
    if (partition < 0 || partition >= static_cast<int32_t>(partitions_.size())) continue;
    const Partition& p = *partitions_[partition];
    absl::MutexLock lock(&p.mu);
    if (p.applied <= offset) return std::make_pair(partition, offset);
  }
  return std::nullopt;
}

std::string ProjectionRunner::Progress(int32_t partition) const {
  if (partition < 0 || partition >= static_cast<int32_t>(partitions_.size())) return "";
  const Partition& p = *partitions_[partition];
  absl::MutexLock lock(&p.mu);
  return absl::StrCat("view ", projection_->name(), " has applied partition ", p.id,
                      " up to offset ", p.applied - 1);
}

absl::Status ProjectionRunner::WaitFor(const v1::LogPosition& position,
                                       absl::Duration timeout) const {
  LEADFLOW_RETURN_IF_ERROR(log::CheckPartition("min_position.partition", position.partition(),
                                               static_cast<int32_t>(partitions_.size())));
  const Partition& p = *partitions_[position.partition()];
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&p.mu);
  while (p.applied <= position.offset() && p.error.ok()) {
    if (p.advanced.WaitWithDeadline(&p.mu, deadline)) break;
  }
  if (!p.error.ok()) return p.error;
  if (p.applied <= position.offset()) {
    return absl::UnavailableError(
        absl::StrCat("view ", projection_->name(), " has applied partition ", p.id,
                     " up to offset ", p.applied - 1, ", not yet ", position.offset(), "; retry"));
  }
  return absl::OkStatus();
}

absl::Status ProjectionRunner::WaitForLogEnd(const std::vector<int32_t>& partitions,
                                             absl::Duration timeout) const {
  std::vector<int32_t> which = partitions;
  if (which.empty()) {
    for (const auto& p : partitions_) which.push_back(p->id);
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (int32_t id : which) {
    LEADFLOW_ASSIGN_OR_RETURN(int64_t end, log_->EndOffset(id));
    if (end == 0) continue;
    v1::LogPosition position;
    position.set_partition(id);
    position.set_offset(end - 1);
    LEADFLOW_RETURN_IF_ERROR(
        WaitFor(position, std::max(deadline - absl::Now(), absl::ZeroDuration())));
  }
  return absl::OkStatus();
}

std::vector<v1::ViewPartitionStatus> ProjectionRunner::Status() const {
  std::vector<int64_t> ends;
  for (const auto& p : partitions_) {
    absl::StatusOr<int64_t> end = log_->KnownEndOffset(p->id);  // never a blocking request
    ends.push_back(end.ok() ? *end : -1);
  }
  return StatusAt(ends);
}

std::vector<v1::ViewPartitionStatus> ProjectionRunner::StatusAt(
    const std::vector<int64_t>& ends) const {
  std::vector<v1::ViewPartitionStatus> out;
  for (const auto& p : partitions_) {
    const int64_t end = static_cast<size_t>(p->id) < ends.size() ? ends[p->id] : -1;
    absl::MutexLock lock(&p->mu);
    v1::ViewPartitionStatus s;
    s.set_view(projection_->name());
    s.set_partition(p->id);
    s.set_applied_offset(p->applied);
    s.set_end_offset(end);
    if (!p->error.ok()) {
      s.set_state("failed");
      s.set_error(std::string(p->error.message()));
    } else if (!p->stalled.ok()) {
      s.set_state("stalled");
      s.set_error(std::string(p->stalled.message()));
    } else {
      s.set_state(end >= 0 && p->applied >= end ? "serving" : "catching up");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string ProjectionRunner::name() const { return projection_->name(); }

bool ProjectionRunner::InStep(int32_t partition) const {
  if (partition < 0 || partition >= static_cast<int32_t>(partitions_.size())) return false;
  const Partition& p = *partitions_[partition];
  absl::MutexLock lock(&p.mu);
  return p.joined;
}

absl::Status ProjectionRunner::Health() const {
  for (const auto& p : partitions_) {
    absl::MutexLock lock(&p->mu);
    if (!p->error.ok()) return p->error;
    if (!p->stalled.ok()) return p->stalled;
  }
  return absl::OkStatus();
}

SharedTail::SharedTail(std::vector<ProjectionRunner*> runners) : runners_(std::move(runners)) {
  if (runners_.empty()) return;
  log_ = runners_[0]->log_;
  options_ = runners_[0]->options_;
  vault_ = ProjectionRunner::SharedVault(runners_);
}

SharedTail::~SharedTail() { Stop(); }

void SharedTail::Start() {
  if (runners_.empty()) return;
  const size_t partitions = runners_[0]->partitions_.size();
  for (size_t i = 0; i < partitions; ++i) {
    auto lane = std::make_unique<Lane>();
    lane->partition = static_cast<int32_t>(i);
    absl::MutexLock lane_lock(&lane->mu);
    // The shared reader starts where the furthest healthy view is; the views there are in step,
    // the others catch up alone and join it.
    int64_t position = -1;
    for (ProjectionRunner* r : runners_) {
      ProjectionRunner::Partition& p = *r->partitions_[i];
      absl::MutexLock lock(&p.mu);
      if (p.error.ok()) position = std::max(position, p.applied);
    }
    lane->position = std::max<int64_t>(position, 0);
    lane->running = position >= 0;
    for (ProjectionRunner* r : runners_) {
      ProjectionRunner::Partition& p = *r->partitions_[i];
      p.lane = lane.get();
      absl::MutexLock lock(&p.mu);
      p.joined = lane->running && p.error.ok() && p.applied == lane->position;
    }
    lanes_.push_back(std::move(lane));
  }
  for (auto& lane : lanes_) {
    bool running;
    {
      absl::MutexLock lock(&lane->mu);
      running = lane->running;
    }
    if (running) lane->thread = std::thread([this, l = lane.get()] { Run(*l); });
  }
  for (ProjectionRunner* r : runners_) r->Start();
}

void SharedTail::Stop() {
  for (auto& lane : lanes_) lane->stop = true;
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
  for (auto& lane : lanes_) {
    absl::MutexLock lock(&lane->mu);
    lane->running = false;
  }
  for (ProjectionRunner* r : runners_) r->Stop();
  for (ProjectionRunner* r : runners_) {
    for (auto& p : r->partitions_) p->lane = nullptr;  // the runners' threads have stopped
  }
  lanes_.clear();
  runners_.clear();  // stopped: a second Stop (the destructor's) does nothing
}

void SharedTail::Fail(Lane& lane, const absl::Status& error) {
  std::vector<std::pair<ProjectionRunner*, ProjectionRunner::Partition*>> failed;
  {
    absl::MutexLock lane_lock(&lane.mu);
    lane.running = false;
    for (ProjectionRunner* r : runners_) {
      ProjectionRunner::Partition& p = *r->partitions_[lane.partition];
      absl::MutexLock lock(&p.mu);
      if (!p.joined) continue;
      p.joined = false;
      p.error = absl::Status(error.code(),
                             absl::StrCat("view ", r->name(), " stopped: ", error.message()));
      failed.emplace_back(r, &p);
    }
  }
  for (auto& [r, p] : failed) r->WakeWaiters(*p, absl::OkStatus());
}

void SharedTail::Run(Lane& lane) {
  int64_t from;
  {
    absl::MutexLock lock(&lane.mu);
    from = lane.position;
  }
  absl::StatusOr<std::unique_ptr<log::LogReader>> reader = log_->OpenReader(lane.partition, from);
  if (!reader.ok()) return Fail(lane, reader.status());
  auto wanted = [this](const v1::Event& e) {
    return ProjectionRunner::AnyReadsPersonalData(runners_, e);
  };
  std::vector<ProjectionRunner::Partition*> in_step;
  while (!lane.stop) {
    absl::StatusOr<std::vector<log::Record>> records =
        (*reader)->Read(options_.max_batch, options_.poll);
    if (!records.ok()) {
      if (absl::IsUnavailable(records.status())) {
        absl::SleepFor(options_.poll);  // transient: the log comes back by itself
        continue;
      }
      return Fail(lane, records.status());
    }
    records_read_.fetch_add(static_cast<int64_t>(records->size()), std::memory_order_relaxed);
    const int64_t next = (*reader)->position();
    // Held until the position moves on: a view joins either before this batch is handed out
    // (and gets it) or after (and has read it alone).
    absl::MutexLock lane_lock(&lane.mu);
    if (records->empty() && next == lane.position) continue;
    in_step.clear();
    for (ProjectionRunner* r : runners_) {
      ProjectionRunner::Partition& p = *r->partitions_[lane.partition];
      absl::MutexLock lock(&p.mu);
      if (p.joined) in_step.push_back(&p);
    }
    if (!in_step.empty()) {
      auto batch = std::make_shared<SharedBatch>();
      batch->decoded.reserve(records->size());
      for (const log::Record& rec : *records) {
        batch->decoded.push_back(DecodeAndOpen(rec, vault_, wanted));
      }
      batch->records = *std::move(records);
      batch->next = next;
      const absl::Time deadline = absl::Now() + kHandOffWait;
      for (ProjectionRunner::Partition* p : in_step) {
        absl::MutexLock lock(&p->mu);
        // A view that has not taken its earlier batches in time reads alone from now on: a
        // slow or stuck store does not hold up the others.
        p->mu.AwaitWithDeadline(absl::Condition(&HasRoom, p), deadline);
        if (!p->joined || p->stop) continue;
        if (p->handed.size() >= kHandOffBatches) {
          p->joined = false;
          p->handed.clear();
          continue;
        }
        p->handed.push_back(batch);
      }
    }
    lane.position = next;
  }
}

}  // namespace leadflow::projections

#include "projections/runner/runner.h"

#include <atomic>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/schema.h"
#include "services/log/embedded_log.h"
#include "services/log/event_codec.h"

namespace leadflow::projections {
namespace {

using ::testing::HasSubstr;

// Counts events per aggregate. Fails on events whose actor is `poison`, after writing, to show
// that a failing event's writes are discarded. While `gate` is closed, an event whose actor is
// "gated" is refused as UNAVAILABLE (as when the key store cannot be read now): the partition
// stalls there and retries by itself.
class CountingProjection final : public Projection {
 public:
  explicit CountingProjection(std::string name = "count", std::string poison = "poison")
      : name_(std::move(name)), poison_(std::move(poison)) {}
  std::string name() const override { return name_; }
  std::vector<std::string> column_families() const override { return {"counts"}; }
  absl::Status Apply(const v1::Event& e, const log::Record&, ViewTxn& txn) override {
    auto current = txn.Get(0, e.aggregate_id());
    if (!current.ok()) return current.status();
    int64_t n = 0;
    if (current->has_value()) (void)absl::SimpleAtoi(**current, &n);
    txn.Put(0, e.aggregate_id(), absl::StrCat(n + 1));
    if (e.actor().id() == poison_) return absl::InvalidArgumentError("poisoned event");
    if (e.actor().id() == "gated" && gate_closed) return absl::UnavailableError("gate closed");
    // A store that does not answer: the event's commit hangs until released.
    while (e.actor().id() == "held" && held) absl::SleepFor(absl::Milliseconds(5));
    return absl::OkStatus();
  }
  std::atomic<bool> gate_closed{false};
  std::atomic<bool> held{false};

 private:
  std::string name_;
  std::string poison_;
};

log::Message EventFor(const std::string& key, const std::string& actor = "alice") {
  v1::Event e;
  e.set_schema_version(common::kEventSchemaVersion);
  e.set_aggregate_type(v1::AGGREGATE_TYPE_LEAD);
  e.set_aggregate_id(key);
  e.set_partition_key(key);
  e.mutable_actor()->set_id(actor);
  e.mutable_lead_captured();
  return *log::EncodeEvent(e);
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-runner-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    log::EmbeddedLogOptions o;
    o.dir = dir_ + "/log";
    o.partitions = 2;
    log_ = std::move(*log::EmbeddedLog::Open(o));
    OpenStore();
  }
  void TearDown() override {
    runner_.reset();
    store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenStore() {
    runner_.reset();
    store_.reset();
    auto store = ViewStore::Open({.dir = dir_ + "/view", .column_families = {"counts"}});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    runner_ = std::make_unique<ProjectionRunner>(log_.get(), store_.get(), &projection_);
  }
  int64_t Count(const std::string& key) {
    auto v = store_->Get(0, key);
    int64_t n = 0;
    if (v.ok()) (void)absl::SimpleAtoi(*v, &n);
    return n;
  }

  std::string dir_;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<ViewStore> store_;
  CountingProjection projection_;
  std::unique_ptr<ProjectionRunner> runner_;
};

TEST_F(RunnerTest, AppliesEachEventExactlyOnceAcrossRestarts) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), EventFor("a"), EventFor("b")}).ok());
  ASSERT_TRUE(log_->Append(1, {EventFor("c")}).ok());
  ASSERT_TRUE(runner_->CatchUp().ok());
  EXPECT_EQ(Count("a"), 2);
  EXPECT_EQ(Count("b"), 1);
  EXPECT_EQ(Count("c"), 1);
  EXPECT_EQ(*store_->StoredOffset(0), 3);
  EXPECT_EQ(*store_->StoredOffset(1), 1);

  OpenStore();  // restart: offsets come from the store, nothing is applied twice
  ASSERT_TRUE(runner_->CatchUp().ok());
  EXPECT_EQ(Count("a"), 2);
  ASSERT_TRUE(log_->Append(0, {EventFor("a")}).ok());
  ASSERT_TRUE(runner_->CatchUp().ok());
  EXPECT_EQ(Count("a"), 3);
}

TEST_F(RunnerTest, CatchUpAllReadsOnceAndRespectsEachViewsOffset) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), EventFor("a"), EventFor("b")}).ok());
  ASSERT_TRUE(log_->Append(1, {EventFor("c")}).ok());
  ASSERT_TRUE(runner_->CatchUp().ok());  // the first view is at the end of the log
  ASSERT_TRUE(log_->Append(0, {EventFor("a")}).ok());
  // A second view, empty, and the first one (one event behind) caught up in one pass.
  CountingProjection second_projection;
  auto second = ViewStore::Open({.dir = dir_ + "/second", .column_families = {"counts"}});
  ASSERT_TRUE(second.ok());
  ProjectionRunner second_runner(log_.get(), second->get(), &second_projection);
  int64_t last_read = 0, last_total = 0;
  ProjectionRunner* both[] = {runner_.get(), &second_runner};
  ASSERT_TRUE(ProjectionRunner::CatchUpAll(both, [&](int64_t read, int64_t total) {
                last_read = read;
                last_total = total;
              }).ok());
  EXPECT_EQ(last_total, 5);  // from the furthest-behind view's offsets: 4 + 1 records
  EXPECT_EQ(last_read, 5);
  EXPECT_EQ(Count("a"), 3) << "the first view applies only the event it had not seen";
  auto a = (*second)->Get(0, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "3");
  EXPECT_EQ(*(*second)->StoredOffset(0), 4);
  EXPECT_EQ(*store_->StoredOffset(0), 4);
  EXPECT_EQ(*(*second)->StoredOffset(1), 1);
}

TEST_F(RunnerTest, TailingThreadsFollowTheLogAndWaitForServesReadYourWrites) {
  runner_->Start();
  v1::LogPosition pos;
  pos.set_partition(1);
  pos.set_offset(0);
  absl::Status not_yet = runner_->WaitFor(pos, absl::Milliseconds(50));
  EXPECT_EQ(not_yet.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(not_yet.message(),
            "view count has applied partition 1 up to offset -1, not yet 0; retry");
  auto r = log_->Append(1, {EventFor("x")});
  ASSERT_TRUE(r.ok());
  pos.set_offset(r->last_offset);
  EXPECT_TRUE(runner_->WaitFor(pos, absl::Seconds(10)).ok());
  EXPECT_EQ(Count("x"), 1);
  pos.set_partition(7);
  EXPECT_EQ(runner_->WaitFor(pos, absl::Seconds(1)).message(),
            "min_position.partition: 7 is out of range [0, 2)");
  auto status = runner_->Status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[1].state(), "serving");
  EXPECT_EQ(status[1].applied_offset(), 1);
}

TEST_F(RunnerTest, BadRecordStopsItsPartitionExactlyThere) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), {"a", "not an event"}, EventFor("a")}).ok());
  ASSERT_TRUE(log_->Append(1, {EventFor("b")}).ok());
  absl::Status st = runner_->CatchUp();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("view count stopped: partition 0 offset 1: undecodable event"));
  EXPECT_EQ(Count("a"), 1) << "the record before the bad one is applied and committed";
  EXPECT_EQ(*store_->StoredOffset(0), 1) << "stopped exactly at the bad record";
  auto status = runner_->Status();
  EXPECT_EQ(status[0].state(), "failed");
  EXPECT_THAT(status[0].error(), HasSubstr("partition 0 offset 1"));
  EXPECT_FALSE(runner_->Health().ok());
  // The other partition is independent.
  runner_->Start();
  v1::LogPosition pos;
  pos.set_partition(1);
  pos.set_offset(0);
  EXPECT_TRUE(runner_->WaitFor(pos, absl::Seconds(10)).ok());
  EXPECT_EQ(Count("b"), 1);
}

TEST_F(RunnerTest, FailingEventLeavesNoPartialWrites) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), EventFor("a", "poison")}).ok());
  absl::Status st = runner_->CatchUp();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "view count stopped: partition 0 offset 1: poisoned event");
  EXPECT_EQ(Count("a"), 1) << "the poisoned event's own write was discarded";
}

// A store written in another format is rebuilt from offset zero when its projection opens it;
// the same format reopens as it was. A store from before formats were recorded is format 1.
class FormattedProjection final : public Projection {
 public:
  explicit FormattedProjection(int format) : format_(format) {}
  std::string name() const override { return "formatted"; }
  std::vector<std::string> column_families() const override { return {"counts"}; }
  int format_version() const override { return format_; }
  absl::Status Apply(const v1::Event& e, const log::Record&, ViewTxn& txn) override {
    return inner_.Apply(e, {}, txn);
  }

 private:
  int format_;
  CountingProjection inner_;
};

TEST_F(RunnerTest, AStoreInAnotherFormatIsRebuiltFromTheLog) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), EventFor("a")}).ok());
  const std::string dir = dir_ + "/formatted";
  {
    auto legacy = ViewStore::Open({.dir = dir, .column_families = {"counts"}});  // no format
    ASSERT_TRUE(legacy.ok());
    FormattedProjection v1(1);
    ProjectionRunner runner(log_.get(), legacy->get(), &v1);
    ASSERT_TRUE(runner.CatchUp().ok());
    EXPECT_EQ(*(*legacy)->StoredOffset(0), 2);
  }
  FormattedProjection v1(1), v2(2);
  std::string why;
  auto same = OpenProjectionStore(dir, v1, {}, &why);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(why, "") << "a store without a format that holds rows is format 1";
  EXPECT_EQ(*(*same)->StoredOffset(0), 2);
  same->reset();

  auto rebuilt = OpenProjectionStore(dir, v2, {}, &why);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_THAT(why, HasSubstr("holds format 1; this build writes format 2"));
  EXPECT_EQ(*(*rebuilt)->StoredOffset(0), 0) << "emptied, to be rebuilt from the log";
  ProjectionRunner runner(log_.get(), rebuilt->get(), &v2);
  ASSERT_TRUE(runner.CatchUp().ok());
  EXPECT_EQ(*(*rebuilt)->Get(0, "a"), "2");
  rebuilt->reset();
  why.clear();
  auto again = OpenProjectionStore(dir, v2, {}, &why);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(why, "");
  EXPECT_EQ(*(*again)->StoredOffset(0), 2);
}

// Await: a server's wait without a thread. Ready at once, later, or failed; cancellable.
TEST_F(RunnerTest, AwaitWakesWithoutAThreadWaiting) {
  ASSERT_TRUE(log_->Append(0, {EventFor("a")}).ok());
  ASSERT_TRUE(runner_->CatchUp().ok());
  std::atomic<int> woken{0};
  absl::Status woken_with = absl::UnknownError("not yet");
  absl::Mutex mu;
  auto ready = [&](absl::Status s) {
    absl::MutexLock lock(&mu);
    woken_with = s;
    ++woken;
  };
  // Applied already: no wait.
  auto now = runner_->Await({{0, 0}}, ready);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, ProjectionRunner::kReady);
  // Two partitions, one not yet there: parked, then woken by the catch-up.
  auto later = runner_->Await({{0, 0}, {1, 1}}, ready);
  ASSERT_TRUE(later.ok());
  EXPECT_NE(*later, ProjectionRunner::kReady);
  ASSERT_TRUE(log_->Append(1, {EventFor("b"), EventFor("c")}).ok());
  auto cancelled = runner_->Await({{1, 5}}, ready);
  ASSERT_TRUE(cancelled.ok());
  ASSERT_TRUE(runner_->CatchUp().ok());
  EXPECT_EQ(woken.load(), 1);
  EXPECT_TRUE(woken_with.ok()) << woken_with;
  EXPECT_TRUE(runner_->CancelAwait(*cancelled)) << "offset 5 is not applied: still parked";
  EXPECT_FALSE(runner_->CancelAwait(*later)) << "already woken";
  // A partition that fails wakes its waits with the error.
  auto failing = runner_->Await({{1, 10}}, ready);
  ASSERT_TRUE(failing.ok());
  ASSERT_TRUE(log_->Append(1, {EventFor("d", "poison")}).ok());
  EXPECT_FALSE(runner_->CatchUp().ok());
  EXPECT_EQ(woken.load(), 2);
  EXPECT_THAT(std::string(woken_with.message()), HasSubstr("poisoned event"));
  EXPECT_FALSE(runner_->Await({{1, 10}}, ready).ok()) << "a failed partition refuses new waits";
  EXPECT_EQ(runner_->Await({{7, 0}}, ready).status().code(), absl::StatusCode::kInvalidArgument);
}

// A disk without room: the partition stalls (reported, not failed), waits raise its error at
// once instead of waiting, and it resumes by itself once there is room, nothing lost.
TEST_F(RunnerTest, WithoutRoomOnTheDiskAPartitionWaitsAndResumesByItself) {
  storage::DiskGuard disk(dir_, /*reserve_bytes=*/uint64_t{1} << 62);  // "the disk is full"
  ASSERT_FALSE(disk.CheckWritable().ok());
  RunnerOptions o;
  o.disk = &disk;
  o.poll = absl::Milliseconds(20);
  runner_.reset();
  runner_ = std::make_unique<ProjectionRunner>(log_.get(), store_.get(), &projection_, o);
  runner_->Start();
  ASSERT_TRUE(log_->Append(0, {EventFor("a"), EventFor("a")}).ok());
  std::string state;
  for (int i = 0; i < 200 && state != "stalled"; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    state = runner_->Status()[0].state();
  }
  ASSERT_EQ(state, "stalled");
  EXPECT_THAT(runner_->Status()[0].error(), HasSubstr("disk full"));
  EXPECT_FALSE(runner_->Health().ok());
  auto wait = runner_->Await({{0, 1}}, [](absl::Status) {});
  EXPECT_EQ(wait.status().code(), absl::StatusCode::kUnavailable) << "refused at once";
  EXPECT_EQ(Count("a"), 0);

  disk.set_reserve_bytes(1);  // room again
  for (int i = 0; i < 1000 && runner_->Status()[0].applied_offset() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(runner_->Status()[0].applied_offset(), 2);
  EXPECT_EQ(runner_->Status()[0].state(), "serving");
  EXPECT_EQ(Count("a"), 2) << "each event once";
  runner_->Stop();
}

// Live views of one process through a SharedTail: each record read once for all of them.
class SharedTailTest : public RunnerTest {
 protected:
  struct View {
    std::unique_ptr<CountingProjection> projection;
    std::unique_ptr<ViewStore> store;
    std::unique_ptr<ProjectionRunner> runner;
    int64_t Count(const std::string& key) const {
      auto v = store->Get(0, key);
      int64_t n = 0;
      if (v.ok()) (void)absl::SimpleAtoi(*v, &n);
      return n;
    }
  };
  View& AddView(const std::string& name, const std::string& poison = "poison") {
    auto v = std::make_unique<View>();
    v->projection = std::make_unique<CountingProjection>(name, poison);
    auto store = ViewStore::Open({.dir = dir_ + "/" + name, .column_families = {"counts"}});
    EXPECT_TRUE(store.ok()) << store.status();
    v->store = std::move(*store);
    RunnerOptions o;
    o.poll = absl::Milliseconds(20);
    v->runner =
        std::make_unique<ProjectionRunner>(log_.get(), v->store.get(), v->projection.get(), o);
    views_.push_back(std::move(v));
    return *views_.back();
  }
  void StartTail() {
    std::vector<ProjectionRunner*> runners;
    for (auto& v : views_) runners.push_back(v->runner.get());
    tail_ = std::make_unique<SharedTail>(runners);
    tail_->Start();
  }
  // Appends `n` events on partition 0 for key `key` by `actor`; returns the last offset.
  int64_t Append(int n, const std::string& key = "k", const std::string& actor = "alice") {
    std::vector<log::Message> batch;
    for (int i = 0; i < n; ++i) batch.push_back(EventFor(key, actor));
    auto r = log_->Append(0, batch);
    EXPECT_TRUE(r.ok());
    return r->last_offset;
  }
  static absl::Status WaitFor(const View& v, int64_t offset) {
    v1::LogPosition pos;
    pos.set_partition(0);
    pos.set_offset(offset);
    return v.runner->WaitFor(pos, absl::Seconds(20));
  }
  static bool EventuallyInStep(const View& v) {
    for (int i = 0; i < 1000; ++i) {
      if (v.runner->InStep(0)) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  void TearDown() override {
    tail_.reset();
    views_.clear();
    RunnerTest::TearDown();
  }
  std::vector<std::unique_ptr<View>> views_;
  std::unique_ptr<SharedTail> tail_;
};

TEST_F(SharedTailTest, EachRecordIsReadOnceForEveryView) {
  View& a = AddView("a");
  View& b = AddView("b");
  View& c = AddView("c");
  StartTail();
  const int64_t last = Append(50);
  for (View* v : {&a, &b, &c}) {
    ASSERT_TRUE(WaitFor(*v, last).ok()) << v->runner->name();
    EXPECT_EQ(v->Count("k"), 50) << v->runner->name();
    EXPECT_EQ(v->runner->records_read_alone(), 0) << v->runner->name() << " read on its own";
    EXPECT_TRUE(v->runner->InStep(0));
  }
  EXPECT_EQ(tail_->records_read(), 50) << "read once, not once per view";
}

TEST_F(SharedTailTest, AViewThatStartsBehindCatchesUpAloneThenRejoins) {
  // Two views at the log's end, a third one empty (as after a rebuild).
  Append(30);
  View& a = AddView("a");
  View& b = AddView("b");
  ASSERT_TRUE(a.runner->CatchUp().ok());
  ASSERT_TRUE(b.runner->CatchUp().ok());
  View& behind = AddView("behind");
  StartTail();
  EXPECT_TRUE(a.runner->InStep(0));
  ASSERT_TRUE(WaitFor(behind, 29).ok());
  ASSERT_TRUE(EventuallyInStep(behind)) << "it never rejoined the shared reader";
  EXPECT_EQ(behind.runner->records_read_alone(), 30) << "it caught up on its own";
  EXPECT_EQ(a.runner->records_read_alone(), 0);
  const int64_t last = Append(20);
  for (View* v : {&a, &b, &behind}) {
    ASSERT_TRUE(WaitFor(*v, last).ok()) << v->runner->name();
    EXPECT_EQ(v->Count("k"), 50) << v->runner->name();
  }
  EXPECT_EQ(behind.runner->records_read_alone(), 30) << "after rejoining, it reads nothing alone";
  EXPECT_EQ(tail_->records_read(), 20);
}

TEST_F(SharedTailTest, AStalledViewDoesNotHoldUpTheOthersAndCatchesUpByItself) {
  View& a = AddView("a");
  View& stalled = AddView("stalled");
  View& c = AddView("c");
  stalled.projection->gate_closed = true;
  StartTail();
  Append(5);
  const int64_t gated = Append(1, "k", "gated");
  int64_t last = Append(40);
  for (View* v : {&a, &c}) {
    ASSERT_TRUE(WaitFor(*v, last).ok()) << v->runner->name() << " was held up";
    EXPECT_EQ(v->Count("k"), 46);
  }
  // The stalled view applied what came before the record it cannot apply now, and waits there.
  ASSERT_EQ(WaitFor(stalled, gated - 1).code(), absl::StatusCode::kOk);
  EXPECT_EQ(stalled.runner->Status()[0].state(), "stalled");
  EXPECT_EQ(stalled.runner->Status()[0].applied_offset(), gated);
  EXPECT_FALSE(stalled.runner->InStep(0));
  last = Append(10);  // the others go on while it waits
  ASSERT_TRUE(WaitFor(a, last).ok());
  stalled.projection->gate_closed = false;
  ASSERT_TRUE(WaitFor(stalled, last).ok());
  EXPECT_EQ(stalled.Count("k"), 56) << "every event once";
  ASSERT_TRUE(EventuallyInStep(stalled));
  const int64_t alone = stalled.runner->records_read_alone();
  EXPECT_GT(alone, 0);
  last = Append(5);
  for (View* v : {&a, &stalled, &c}) {
    ASSERT_TRUE(WaitFor(*v, last).ok()) << v->runner->name();
    EXPECT_EQ(v->Count("k"), 61) << v->runner->name();
  }
  EXPECT_EQ(stalled.runner->records_read_alone(), alone) << "back in step";
}

TEST_F(SharedTailTest, AViewWhoseStoreHangsDoesNotHoldUpTheOthers) {
  View& a = AddView("a");
  View& stuck = AddView("stuck");
  stuck.projection->held = true;
  StartTail();
  const int64_t first = Append(1, "k", "held");
  ASSERT_TRUE(WaitFor(a, first).ok());
  // Many batches while the stuck view hangs in its first one: the shared reader hands it a few,
  // then drops it out of step and goes on for the others.
  int64_t last = first;
  for (int i = 0; i < 10; ++i) {
    last = Append(3);
    ASSERT_TRUE(WaitFor(a, last).ok()) << "held up by the stuck view at batch " << i;
  }
  EXPECT_EQ(a.Count("k"), 31);
  EXPECT_EQ(stuck.runner->Status()[0].applied_offset(), 0) << "still hanging in its first batch";
  EXPECT_FALSE(stuck.runner->InStep(0));
  stuck.projection->held = false;
  ASSERT_TRUE(WaitFor(stuck, last).ok());
  EXPECT_EQ(stuck.Count("k"), 31) << "every event once";
  ASSERT_TRUE(EventuallyInStep(stuck));
}

TEST_F(SharedTailTest, AViewThatFailsStopsAloneAndExactlyAtTheRecord) {
  View& a = AddView("a");
  View& failing = AddView("failing", /*poison=*/"bad-for-failing");
  View& c = AddView("c");
  StartTail();
  Append(3);
  const int64_t bad = Append(1, "k", "bad-for-failing");
  const int64_t last = Append(10);
  for (View* v : {&a, &c}) {
    ASSERT_TRUE(WaitFor(*v, last).ok()) << v->runner->name();
    EXPECT_EQ(v->Count("k"), 14);
  }
  absl::Status st = WaitFor(failing, last);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()),
              HasSubstr(absl::StrCat("view failing stopped: partition 0 offset ", bad)));
  EXPECT_EQ(failing.runner->Status()[0].state(), "failed");
  EXPECT_EQ(failing.runner->Status()[0].applied_offset(), bad);
  EXPECT_EQ(failing.Count("k"), 3);
  EXPECT_TRUE(a.runner->Health().ok());
}

}  // namespace
}  // namespace leadflow::projections

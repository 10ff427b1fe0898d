// The write path's parts, one Google Benchmark each, in CPU time per command: what a capture
// costs in every step the writer takes, and the same commands through the whole writer, beside
// two baselines measured in the same run (a copy of the command; raw embedded-log appends of
// the same records). No fsync and no gRPC here: write_bench measures those end to end. This one
// is for comparing builds (Google Benchmark's repetitions and CPU time are steadier than
// wall-clock rates on a shared machine).
//
//   build/bin/write_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/command/writer.h"
#include "services/common/ids.h"
#include "services/common/mutex_mode.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "services/lead/state.h"
#include "services/log/embedded_log.h"
#include "services/log/event_codec.h"
#include "services/privacy/sealer.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/heap_pages.h"

namespace leadflow::bench {
namespace {

const lead::Identity& BenchIdentity() {
  static const common::LeadIdScheme ids("write-micro-bench");
  static const lead::Identity identity{.ids = &ids, .phone_region = ""};
  return identity;
}

constexpr int kBatch = 1000;
constexpr int32_t kPartitions = 8;

// Set by Fail: Google Benchmark's SkipWithError alone leaves the exit code at 0, and the smoke
// test must fail when a step or the writer does.
std::atomic<bool> failed{false};

void Fail(benchmark::State& state, const absl::Status& status) {
  failed = true;
  state.SkipWithError(status.ToString().c_str());
}

v1::Command Capture(int64_t n) {
  v1::Command command;
  v1::CaptureLead* c = command.mutable_capture_lead();
  c->mutable_meta()->set_command_id(absl::StrCat("bench-", n));
  c->mutable_meta()->mutable_actor()->set_kind(v1::Actor::KIND_SYSTEM);
  c->mutable_meta()->mutable_actor()->set_id("write-micro-bench");
  c->mutable_person()->set_full_name(absl::StrCat("Bench Lead ", n));
  c->set_company("Example Industries");
  c->set_email(absl::StrCat("lead", n, "@bench.example.com"));
  c->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  c->set_temperature(v1::TEMPERATURE_WARM);
  c->set_interest_note("asked for pricing of the analytics module");
  return command;
}

std::vector<v1::Command> Captures(int64_t first, int n) {
  std::vector<v1::Command> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(Capture(first + i));
  return out;
}

// The events of kBatch captures of new contacts, with the fields the writer adds.
absl::StatusOr<std::vector<v1::Event>> CapturedEvents() {
  const absl::Time now = absl::Now();
  std::vector<v1::Event> out;
  for (const v1::Command& command : Captures(0, kBatch)) {
    absl::StatusOr<lead::CommandTarget> target = lead::ResolveTarget(command, BenchIdentity());
    if (!target.ok()) return target.status();
    lead::DecideContext ctx{.now = now, .merge_survivor = nullptr, .target = &*target};
    auto events = lead::Decide(lead::LeadState{}, lead::CustomerState{}, command, ctx);
    if (!events.ok()) return events.status();
    v1::Event e = std::move(events->front());
    e.set_event_id(common::NewEventId());
    *e.mutable_recorded_at() = common::ToProto(now);
    e.set_command_fingerprint(command::CommandFingerprint(command));
    out.push_back(std::move(e));
  }
  return out;
}

// An embedded log without fsync in a scratch directory, removed again at the end.
class ScratchLog {
 public:
  explicit ScratchLog(const std::string& name) : dir_(TempDir(name)) {
    std::filesystem::remove_all(dir_);
    log::EmbeddedLogOptions lo;
    lo.dir = dir_;
    lo.partitions = kPartitions;
    lo.sync = false;
    auto log = log::EmbeddedLog::Open(lo);
    if (log.ok()) {
      log_ = std::move(*log);
    } else {
      status_ = log.status();
    }
  }
  ~ScratchLog() {
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  const absl::Status& status() const { return status_; }
  log::EmbeddedLog* get() const { return log_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<log::EmbeddedLog> log_;
  absl::Status status_;
};

// ---- baselines ---------------------------------------------------------------------------

void BM_Baseline_CopyCommand(benchmark::State& state) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  size_t i = 0;
  for (auto _ : state) {
    v1::Command copy = commands[i++ % commands.size()];
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_Baseline_CopyCommand);

// Raw appends of encoded capture events, kBatch per append over the partitions, no fsync: the
// log's own cost per command (the writer's Append step).
void BM_Baseline_RawAppend(benchmark::State& state) {
  ScratchLog log("leadflow-micro-raw");
  if (!log.status().ok()) return Fail(state, log.status());
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  std::vector<std::vector<log::Message>> per_partition(kPartitions);
  for (size_t i = 0; i < events->size(); ++i) {
    absl::StatusOr<log::Message> m = log::EncodeEvent((*events)[i]);
    if (!m.ok()) return Fail(state, m.status());
    per_partition[i % kPartitions].push_back(std::move(*m));
  }
  std::vector<log::PartitionAppend> appends;
  for (int32_t p = 0; p < kPartitions; ++p) appends.push_back({p, per_partition[p]});
  for (auto _ : state) {
    auto r = log.get()->AppendMany(appends);
    if (!r.ok()) return Fail(state, r.status());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_Baseline_RawAppend)->Unit(benchmark::kMicrosecond);

// ---- the steps -----------------------------------------------------------------------------

void BM_Step_ResolveTarget(benchmark::State& state) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  size_t i = 0;
  for (auto _ : state) {
    auto t = lead::ResolveTarget(commands[i++ % commands.size()], BenchIdentity());
    if (!t.ok()) return Fail(state, t.status());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_Step_ResolveTarget);

void BM_Step_Fingerprint(benchmark::State& state) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  size_t i = 0;
  for (auto _ : state) {
    std::string fp = command::CommandFingerprint(commands[i++ % commands.size()]);
    benchmark::DoNotOptimize(fp);
  }
}
BENCHMARK(BM_Step_Fingerprint);

// ResolveTarget of each command, as the writer does at admission.
absl::StatusOr<std::vector<lead::CommandTarget>> TargetsOf(
    const std::vector<v1::Command>& commands) {
  std::vector<lead::CommandTarget> targets;
  for (const v1::Command& c : commands) {
    absl::StatusOr<lead::CommandTarget> t = lead::ResolveTarget(c, BenchIdentity());
    if (!t.ok()) return t.status();
    targets.push_back(*std::move(t));
  }
  return targets;
}

// Deciding captures of new contacts. heap: `Decide`, the form tests and tools use
// (DecideOnArena plus a copy of each event). arena: as the writer decides, events on an arena per
// group of kBatch / 8 commands (a partition's share of a batch), dropped with the group.
void BM_Step_DecideCapture(benchmark::State& state, bool on_arena) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  absl::StatusOr<std::vector<lead::CommandTarget>> targets = TargetsOf(commands);
  if (!targets.ok()) return Fail(state, targets.status());
  const lead::LeadState none;
  const lead::CustomerState no_customer;
  const absl::Time now = absl::Now();
  auto arena = std::make_unique<google::protobuf::Arena>();
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % commands.size();
    lead::DecideContext ctx{.now = now, .merge_survivor = nullptr, .target = &(*targets)[k]};
    if (on_arena) {
      if (k % (kBatch / 8) == 0) arena = std::make_unique<google::protobuf::Arena>();
      auto events = lead::DecideOnArena(none, no_customer, commands[k], ctx, arena.get());
      if (!events.ok()) return Fail(state, events.status());
      benchmark::DoNotOptimize(events);
    } else {
      auto events = lead::Decide(none, no_customer, commands[k], ctx);
      if (!events.ok()) return Fail(state, events.status());
      benchmark::DoNotOptimize(events);
    }
  }
}
BENCHMARK_CAPTURE(BM_Step_DecideCapture, heap, false);
BENCHMARK_CAPTURE(BM_Step_DecideCapture, arena, true);

void BM_Step_EvolveCapture(benchmark::State& state) {
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  size_t i = 0;
  for (auto _ : state) {
    lead::LeadState lead;
    absl::Status st = lead::EvolveLead(lead, (*events)[i++ % events->size()]);
    if (!st.ok()) return Fail(state, st);
    benchmark::DoNotOptimize(lead);
  }
}
BENCHMARK(BM_Step_EvolveCapture);

void BM_Step_EncodeEvent(benchmark::State& state) {
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  size_t i = 0;
  for (auto _ : state) {
    auto m = log::EncodeEvent((*events)[i++ % events->size()]);
    if (!m.ok()) return Fail(state, m.status());
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_Step_EncodeEvent);

// Crypto-shredding's steps per event (docs/security.md): sealing a capture's personal fields
// with a data key (the writer, before encoding), and opening them again (each view that reads
// personal fields, when it applies the event).
void BM_Step_SealCapture(benchmark::State& state) {
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  const std::string key = privacy::NewDataKey();
  size_t i = 0;
  for (auto _ : state) {
    v1::Event e = (*events)[i++ % events->size()];
    absl::Status st = privacy::Seal(&e, key);
    if (!st.ok()) return Fail(state, st);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_Step_SealCapture);

void BM_Step_OpenCapture(benchmark::State& state) {
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  const std::string key = privacy::NewDataKey();
  for (v1::Event& e : *events) {
    if (absl::Status st = privacy::Seal(&e, key); !st.ok()) return Fail(state, st);
  }
  size_t i = 0;
  for (auto _ : state) {
    v1::Event e = (*events)[i++ % events->size()];
    absl::Status st = privacy::Open(&e, key);
    if (!st.ok()) return Fail(state, st);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_Step_OpenCapture);

// The baseline of the two above: the copy of the event each iteration makes.
void BM_Baseline_CopyEvent(benchmark::State& state) {
  absl::StatusOr<std::vector<v1::Event>> events = CapturedEvents();
  if (!events.ok()) return Fail(state, events.status());
  size_t i = 0;
  for (auto _ : state) {
    v1::Event e = (*events)[i++ % events->size()];
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_Baseline_CopyEvent);

void BM_Step_NewEventId(benchmark::State& state) {
  for (auto _ : state) {
    std::string id = common::NewEventId();
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_Step_NewEventId);

// ---- the whole writer ----------------------------------------------------------------------

// CommandWriter::ExecuteBatch of kBatch captures of new contacts (in-memory command index, no
// fsync). Items: commands.
void BM_Writer_ExecuteBatch(benchmark::State& state) {
  ScratchLog log("leadflow-micro-writer");
  if (!log.status().ok()) return Fail(state, log.status());
  common::SystemClock clock;
  auto writer = command::CommandWriter::Open(log.get(), &clock, {});
  if (!writer.ok()) return Fail(state, writer.status());
  int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<v1::Command> batch = Captures(next, kBatch);
    next += kBatch;
    state.ResumeTiming();
    for (const auto& r : (*writer)->ExecuteBatch(batch)) {
      if (!r.ok()) return Fail(state, r.status());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
// Real time: the writer's RocksDB has background threads of its own.
BENCHMARK(BM_Writer_ExecuteBatch)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

bool Failed() { return failed.load(); }

}  // namespace leadflow::bench

int main(int argc, char** argv) {
  leadflow::common::UseReleaseMutexes();  // as in leadflow serve; see mutex_mode.h
  benchmark::AddCustomContext("machine", leadflow::bench::Machine());
  const absl::StatusOr<std::string> heap_pages = leadflow::bench::HeapPagesFromEnv();
  if (!heap_pages.ok()) {
    std::cerr << heap_pages.status() << "\n";
    return 1;
  }
  benchmark::AddCustomContext("heap", *heap_pages);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (leadflow::bench::Failed()) {
    std::cerr << "write_micro_bench: a benchmark failed (see its error above); the figures are "
                 "not valid\n";
    return 1;
  }
  return 0;
}

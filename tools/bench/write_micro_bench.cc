// The write path's parts, one Google Benchmark each, in CPU time per command: what a capture
// costs in every step the writer takes, and the same commands through the whole writer, beside
// two baselines measured in the same run (a copy of the command; raw embedded-log appends of
// the same records). No fsync and no gRPC here: write_bench measures those end to end. This one
// is for comparing builds (Google Benchmark's repetitions and CPU time are steadier than
// wall-clock rates on a shared machine).
//
//   build/bin/write_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <filesystem>
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
#include "tools/bench/bench_util.h"

namespace leadflow::bench {
namespace {

constexpr int kBatch = 1000;

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

// The decision a capture of a new contact produces, with the fields the writer adds.
v1::Event CapturedEvent(const v1::Command& command, absl::Time now) {
  auto target = lead::ResolveTarget(command);
  lead::DecideContext ctx{.now = now, .merge_survivor = nullptr, .target = &*target};
  auto events = lead::Decide(lead::LeadState{}, lead::CustomerState{}, command, ctx);
  v1::Event e = std::move(events->front());
  e.set_event_id(common::NewEventId());
  *e.mutable_recorded_at() = common::ToProto(now);
  e.set_command_fingerprint(command::CommandFingerprint(command));
  return e;
}

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

// Raw appends of encoded capture events, kBatch per append over 8 partitions, no fsync: the
// log's own cost per command (the writer's Append step).
void BM_Baseline_RawAppend(benchmark::State& state) {
  const std::string dir = TempDir("leadflow-micro-raw");
  std::filesystem::remove_all(dir);
  log::EmbeddedLogOptions lo;
  lo.dir = dir;
  lo.sync = false;
  auto log = log::EmbeddedLog::Open(lo);
  if (!log.ok()) return state.SkipWithError(log.status().ToString().c_str());
  std::vector<std::vector<log::Message>> per_partition(8);
  const absl::Time now = absl::Now();
  for (int i = 0; i < kBatch; ++i) {
    auto m = log::EncodeEvent(CapturedEvent(Capture(i), now));
    per_partition[i % 8].push_back(*m);
  }
  std::vector<log::PartitionAppend> appends;
  for (int32_t p = 0; p < 8; ++p) appends.push_back({p, per_partition[p]});
  for (auto _ : state) {
    auto r = (*log)->AppendMany(appends);
    if (!r.ok()) return state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  log->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Baseline_RawAppend)->Unit(benchmark::kMicrosecond);

// ---- the steps -----------------------------------------------------------------------------

void BM_Step_ResolveTarget(benchmark::State& state) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  size_t i = 0;
  for (auto _ : state) {
    auto t = lead::ResolveTarget(commands[i++ % commands.size()]);
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

void BM_Step_DecideCapture(benchmark::State& state) {
  const std::vector<v1::Command> commands = Captures(0, kBatch);
  std::vector<lead::CommandTarget> targets;
  for (const v1::Command& c : commands) targets.push_back(*lead::ResolveTarget(c));
  const lead::LeadState none;
  const lead::CustomerState no_customer;
  const absl::Time now = absl::Now();
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ % commands.size();
    lead::DecideContext ctx{.now = now, .merge_survivor = nullptr, .target = &targets[k]};
    auto events = lead::Decide(none, no_customer, commands[k], ctx);
    benchmark::DoNotOptimize(events);
  }
}
BENCHMARK(BM_Step_DecideCapture);

void BM_Step_EvolveCapture(benchmark::State& state) {
  const absl::Time now = absl::Now();
  std::vector<v1::Event> events;
  for (int i = 0; i < kBatch; ++i) events.push_back(CapturedEvent(Capture(i), now));
  size_t i = 0;
  for (auto _ : state) {
    lead::LeadState lead;
    absl::Status st = lead::EvolveLead(lead, events[i++ % events.size()]);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(lead);
  }
}
BENCHMARK(BM_Step_EvolveCapture);

void BM_Step_EncodeEvent(benchmark::State& state) {
  const absl::Time now = absl::Now();
  std::vector<v1::Event> events;
  for (int i = 0; i < kBatch; ++i) events.push_back(CapturedEvent(Capture(i), now));
  size_t i = 0;
  for (auto _ : state) {
    auto m = log::EncodeEvent(events[i++ % events.size()]);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_Step_EncodeEvent);

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
  const std::string dir = TempDir("leadflow-micro-writer");
  std::filesystem::remove_all(dir);
  log::EmbeddedLogOptions lo;
  lo.dir = dir;
  lo.sync = false;
  auto log = log::EmbeddedLog::Open(lo);
  if (!log.ok()) return state.SkipWithError(log.status().ToString().c_str());
  common::SystemClock clock;
  auto writer = command::CommandWriter::Open(log->get(), &clock, {});
  if (!writer.ok()) return state.SkipWithError(writer.status().ToString().c_str());
  int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<v1::Command> batch = Captures(next, kBatch);
    next += kBatch;
    state.ResumeTiming();
    for (const auto& r : (*writer)->ExecuteBatch(batch)) {
      if (!r.ok()) return state.SkipWithError(r.status().ToString().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  writer->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}
// Real time: the writer's RocksDB has background threads of its own.
BENCHMARK(BM_Writer_ExecuteBatch)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace leadflow::bench

int main(int argc, char** argv) {
  leadflow::common::UseReleaseMutexes();  // as in leadflow serve; see mutex_mode.h
  benchmark::AddCustomContext("machine", leadflow::bench::Machine());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

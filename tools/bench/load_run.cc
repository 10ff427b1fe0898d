// Sustained load: a leadflow node (all roles, embedded log, fsync on) in this process, driven over
// gRPC at a steady rate for minutes: writers log interactions and reassign leads of a fixed pool
// (so the data the views hold does not grow without bound), readers get leads and ask for the
// cohort funnel at the same time. Every window it prints throughput, latency percentiles and the
// process's resident memory. RocksDB's memtables and block caches fill during the first minutes
// (several hundred MiB, bounded); so the run's first half is the warm-up, and at the end it
// compares memory at half time with memory at the end: exit 1 if it grew by more than
// --max-growth (default 15 %), or if any call failed.
// Usage: load_run [--seconds 600] [--write-rate 1000] [--read-rate 500] [--leads 20000]
#include <grpcpp/grpcpp.h>
#ifdef LEADFLOW_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/common/ids.h"
#include "services/common/malloc_release.h"
#include "services/common/mutex_mode.h"
#include "services/common/time_util.h"
#include "services/server/node.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/heap_pages.h"

namespace leadflow::bench {
namespace {

// The allocator's view: bytes the program holds, and bytes tcmalloc keeps free for reuse (part
// of RSS, not in use). Tells a leak (the first grows) from allocator retention (the second).
std::pair<double, double> HeapMiB() {
#ifdef LEADFLOW_TCMALLOC
  size_t allocated = 0, free_bytes = 0;
  MallocExtension::instance()->GetNumericProperty("generic.current_allocated_bytes", &allocated);
  MallocExtension::instance()->GetNumericProperty("tcmalloc.pageheap_free_bytes", &free_bytes);
  return {allocated / 1048576.0, free_bytes / 1048576.0};
#else
  return {0, 0};
#endif
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Latencies of one window, in microseconds, measured from each call's scheduled time.
struct Window {
  absl::Mutex mu;
  std::vector<int64_t> writes, reads, funnels;
  int64_t errors = 0;
  std::atomic<int64_t>* total_errors = nullptr;  // every failed call of the run
  void Add(std::vector<int64_t>& to, int64_t us) {
    absl::MutexLock lock(&mu);
    to.push_back(us);
  }
  void Failed() {
    ++*total_errors;
    absl::MutexLock lock(&mu);
    ++errors;
  }
};

v1::CommandMeta Meta(const std::string& id) {
  v1::CommandMeta m;
  m.set_command_id(id);
  m.mutable_actor()->set_kind(v1::Actor::KIND_SYSTEM);
  m.mutable_actor()->set_id("load-run");
  return m;
}

}  // namespace
}  // namespace leadflow::bench

int main(int argc, char** argv) {
  leadflow::common::UseReleaseMutexes();  // see mutex_mode.h
  const absl::StatusOr<std::string> heap_pages =
      leadflow::bench::HeapPagesFromEnv();  // no threads yet
  if (!heap_pages.ok()) {
    std::cerr << heap_pages.status() << "\n";
    return 1;
  }
  using namespace leadflow;
  using namespace leadflow::bench;
  CLI::App app{"leadflow sustained load run"};
  double seconds = 600, write_rate = 1000, read_rate = 500, window_s = 30, max_growth = 15;
  int leads = 20000;
  app.add_option("--seconds", seconds, "Duration of the load")->capture_default_str();
  app.add_option("--write-rate", write_rate, "Commands per second")->capture_default_str();
  app.add_option("--read-rate", read_rate, "GetLead calls per second")->capture_default_str();
  app.add_option("--leads", leads, "Leads in the pool")->capture_default_str();
  app.add_option("--window", window_s, "Seconds per report line")->capture_default_str();
  int memtable_mb = 128, block_cache_mb = 256;
  bool release = true;
  app.add_flag("!--no-release", release,
               "Do not return free memory to the OS (what leadflow serve does every 10 s)");
  app.add_option("--memtable-mb", memtable_mb, "RocksDB memtable budget of the node, MiB")
      ->capture_default_str();
  app.add_option("--block-cache-mb", block_cache_mb, "RocksDB block cache of the node, MiB")
      ->capture_default_str();
  app.add_option("--max-growth", max_growth, "Allowed memory growth over the second half, %")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string dir = TempDir("leadflow-load");
  server::NodeOptions no;
  no.data_dir = dir;
  no.listen = "127.0.0.1:0";
  no.id_key = "load-run";  // the run names the leads it loaded by id
  // As `leadflow serve` does: free memory back to the OS every 10 s (--no-release: never).
  if (release) {
    no.on_tick = [n = 0]() mutable {
      if (++n % 10 == 0) common::ReleaseFreeMemory();
    };
  }
  no.storage.memtable_bytes = static_cast<size_t>(memtable_mb) << 20;
  no.storage.block_cache_bytes = static_cast<size_t>(block_cache_mb) << 20;
  auto node = server::Node::Start(no);
  if (!node.ok()) {
    std::cerr << node.status() << "\n";
    return 1;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*node)->port()),
                                     grpc::InsecureChannelCredentials());
  auto commands = v1::LeadCommandService::NewStub(channel);
  auto queries = v1::LeadQueryService::NewStub(channel);
  auto funnel = v1::FunnelQueryService::NewStub(channel);
  std::cout << "machine: " << Machine() << "\n";
  std::cout << "heap: " << *heap_pages << "\n";

  // The pool of leads, loaded in batches.
  std::vector<std::string> ids;
  for (int i = 0; i < leads; i += 1000) {
    v1::CommandBatch batch;
    for (int j = i; j < std::min(leads, i + 1000); ++j) {
      auto* c = batch.add_commands()->mutable_capture_lead();
      *c->mutable_meta() = Meta(absl::StrCat("capture-", j));
      const std::string email = absl::StrCat("load", j, "@example.com");
      c->mutable_person()->set_full_name(absl::StrCat("Load Lead ", j));
      c->set_email(email);
      c->set_source_channel(static_cast<v1::SourceChannel>(1 + j % 10));
      ids.push_back(common::LeadIdScheme(no.id_key).ForEmail(email));
    }
    grpc::ClientContext ctx;
    v1::CommandBatchReply reply;
    grpc::Status st = commands->ExecuteBatch(&ctx, batch, &reply);
    if (!st.ok()) {
      std::cerr << "load: " << st.error_message() << "\n";
      return 1;
    }
  }
  std::cout << absl::StrFormat(
      "pool: %d leads; load: %.0f commands/s (interactions, reassignments), %.0f GetLead/s, "
      "1 cohort funnel/s, for %.0f s\n\n",
      leads, write_rate, read_rate, seconds);
  std::cout << absl::StrFormat("%8s %10s %10s %10s %10s %10s %10s %8s %10s %10s %10s %10s %10s\n",
                               "t (s)", "cmds/s", "cmd p50", "cmd p99", "reads/s", "get p99",
                               "funnel p99", "errors", "RSS MiB", "memtab MiB", "cache MiB",
                               "heap MiB", "free MiB");

  std::atomic<bool> stop{false};
  std::atomic<int64_t> total_errors{0}, inflight{0};
  Window window;
  window.total_errors = &total_errors;
  const absl::Time start = absl::Now();
  // Open-loop senders: each call is scheduled at a fixed rate and timed from that schedule.
  auto sender = [&](double rate, auto issue) {
    const absl::Duration interval = absl::Seconds(1) / rate;
    for (int64_t i = 0; !stop.load(); ++i) {
      const absl::Time scheduled = start + interval * i;
      const absl::Duration wait = scheduled - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
      issue(i, scheduled);
    }
  };
  std::mt19937_64 seed(7);
  std::thread writer([&] {
    std::mt19937_64 rng(seed());
    sender(write_rate, [&](int64_t i, absl::Time scheduled) {
      struct Call {
        grpc::ClientContext ctx;
        v1::Command req;
        v1::CommandReply resp;
      };
      auto* call = new Call;
      const std::string& id = ids[rng() % ids.size()];
      if (i % 10 == 0) {
        auto* a = call->req.mutable_assign_lead();
        *a->mutable_meta() = Meta(absl::StrCat("assign-", i));
        a->set_lead_id(id);
        a->set_owner(absl::StrCat("rep", i % 37));
      } else {
        auto* x = call->req.mutable_log_interaction();
        *x->mutable_meta() = Meta(absl::StrCat("touch-", i));
        x->set_lead_id(id);
        x->set_kind(i % 3 == 0 ? v1::INTERACTION_KIND_EMAIL : v1::INTERACTION_KIND_CALL);
        x->set_direction(i % 2 == 0 ? v1::DIRECTION_OUTBOUND : v1::DIRECTION_INBOUND);
        x->set_outcome(v1::OUTCOME_CONNECTED);
      }
      ++inflight;
      commands->async()->Execute(
          &call->ctx, &call->req, &call->resp, [&, call, scheduled](grpc::Status st) {
            // An assignment to the owner the lead already has is refused: a valid answer.
            if (!st.ok() && st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
              window.Failed();
            }
            window.Add(window.writes, absl::ToInt64Microseconds(absl::Now() - scheduled));
            delete call;
            --inflight;
          });
    });
  });
  std::thread reader([&] {
    std::mt19937_64 rng(seed());
    sender(read_rate, [&](int64_t, absl::Time scheduled) {
      struct Call {
        grpc::ClientContext ctx;
        v1::GetLeadRequest req;
        v1::LeadView resp;
      };
      auto* call = new Call;
      call->req.set_lead_id(ids[rng() % ids.size()]);
      ++inflight;
      queries->async()->GetLead(
          &call->ctx, &call->req, &call->resp, [&, call, scheduled](grpc::Status st) {
            if (!st.ok()) window.Failed();
            window.Add(window.reads, absl::ToInt64Microseconds(absl::Now() - scheduled));
            delete call;
            --inflight;
          });
    });
  });
  std::thread analyst([&] {
    sender(1.0, [&](int64_t, absl::Time scheduled) {
      grpc::ClientContext ctx;
      v1::CohortFunnelRequest req;
      *req.mutable_captured_from() = common::ToProto(absl::Now() - absl::Hours(24));
      *req.mutable_captured_to() = common::ToProto(absl::Now() + absl::Hours(1));
      req.set_split("owner");
      v1::CohortFunnelReport resp;
      grpc::Status st = funnel->GetCohortFunnel(&ctx, req, &resp);
      if (!st.ok()) window.Failed();
      window.Add(window.funnels, absl::ToInt64Microseconds(absl::Now() - scheduled));
    });
  });

  int64_t rss_after_warmup = 0, rss_end = 0;
  const int windows = std::max(1, static_cast<int>(seconds / window_s));
  for (int w = 1; w <= windows; ++w) {
    absl::SleepFor(start + absl::Seconds(window_s * w) - absl::Now());
    std::vector<int64_t> writes, reads, funnels;
    int64_t errors = 0;
    {
      absl::MutexLock lock(&window.mu);
      writes.swap(window.writes);
      reads.swap(window.reads);
      funnels.swap(window.funnels);
      errors = window.errors;
      window.errors = 0;
    }
    const int64_t rss = RssBytes();
    if (w == (windows + 1) / 2) rss_after_warmup = rss;  // half time
    rss_end = rss;
    // Read together, once per line: the figures of one line describe one moment.
    const server::Node::StorageUsage storage = (*node)->storage_usage();
    const auto [heap_mib, free_mib] = HeapMiB();
    std::cout << absl::StrFormat(
        "%8.0f %10.0f %8.2fms %8.2fms %10.0f %8.2fms %8.2fms %8d %10.1f %10.1f %10.1f %10.1f "
        "%10.1f\n",
        window_s * w, writes.size() / window_s, NearestRank(writes, 50) / 1000.0,
        NearestRank(writes, 99) / 1000.0, reads.size() / window_s, NearestRank(reads, 99) / 1000.0,
        NearestRank(funnels, 99) / 1000.0, errors, rss / 1048576.0,
        storage.memtable_bytes / 1048576.0, storage.block_cache_bytes / 1048576.0, heap_mib,
        free_mib);
    std::cout.flush();
  }
  stop = true;
  writer.join();
  reader.join();
  analyst.join();
  while (inflight.load() > 0) absl::SleepFor(absl::Milliseconds(1));
  const double growth =
      100.0 * (rss_end - rss_after_warmup) / std::max<int64_t>(1, rss_after_warmup);
  std::cout << absl::StrFormat(
      "\nmemory: %.1f MiB at half time, %.1f MiB at the end (%+.1f %%; limit %.0f %%); "
      "%lld failed calls\n",
      rss_after_warmup / 1048576.0, rss_end / 1048576.0, growth, max_growth,
      static_cast<long long>(total_errors.load()));
  node->reset();
  std::filesystem::remove_all(dir);
  if (total_errors.load() > 0) return 1;
  return growth > max_growth ? 1 : 0;
}

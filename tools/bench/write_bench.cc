// Write-side benchmark. Every figure is printed beside a baseline measured in the same run on the
// same machine:
//   unary:   CaptureLead over gRPC vs a trivial Echo RPC (same client, payload of the same size,
//            same number of calls in flight, servers in this process), and CaptureLead answered
//            at once without a writer (the ceiling the message shapes leave), with the process
//            CPU each call costs
//   batched: ExecuteBatch over gRPC, and the writer without gRPC, into the embedded log with
//            fsync on (durable), vs raw EmbeddedLog appends of the same bytes
// Usage: write_bench [--seconds 5] [--inflight 64] [--batch 1000] [--batch-commands 200000]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/command/writer.h"
#include "services/common/mutex_mode.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "services/server/node.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/heap_pages.h"
#include "tools/bench/echo_util.h"

namespace leadflow::bench {
namespace {

v1::CaptureLead MakeCapture(int64_t n) {
  v1::CaptureLead c;
  c.mutable_meta()->set_command_id(absl::StrCat("bench-", n));
  c.mutable_meta()->mutable_actor()->set_kind(v1::Actor::KIND_SYSTEM);
  c.mutable_meta()->mutable_actor()->set_id("write-bench");
  c.mutable_person()->set_full_name(absl::StrCat("Bench Lead ", n));
  c.set_company("Example Industries");
  c.set_email(absl::StrCat("lead", n, "@bench.example.com"));
  c.set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  c.set_temperature(v1::TEMPERATURE_WARM);
  c.set_interest_note("asked for pricing of the analytics module");
  return c;
}

// CaptureLead with no writer behind it: parses the request and sends a reply of the usual shape at
// once. What gRPC and the message shapes alone cost: no server that stores the lead can beat it,
// so it shows how much of the echo rate is left for the write path.
class NoWriterCaptureService final : public v1::LeadCommandService::CallbackService {
  grpc::ServerUnaryReactor* CaptureLead(grpc::CallbackServerContext* ctx,
                                        const v1::CaptureLead* req,
                                        v1::CommandReply* reply) override {
    reply->set_lead_id("ld_0123456789abcdefghijk");
    reply->set_lead_version(1);
    reply->add_event_ids("ev_0123456789abcdefghijk_000001");
    reply->mutable_last_position()->set_partition(3);
    reply->mutable_last_position()->set_offset(req->email().size());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace
}  // namespace leadflow::bench

int main(int argc, char** argv) {
  leadflow::common::UseReleaseMutexes();  // see mutex_mode.h
  using namespace leadflow;
  using namespace leadflow::bench;
  CLI::App app{"leadflow write-side benchmark"};
  double seconds = 5;
  int inflight = 64;
  int batch = 1000;
  int64_t batch_commands = 200000;
  std::string json_path;
  int rounds = 1;
  int batch_inflight = 2;
  bool no_sync = false;
  app.add_flag("--no-sync", no_sync,
               "Node without fsync (NOT durable; to show what the fsyncs cost, never a result)");
  app.add_option("--batch-inflight", batch_inflight, "Batch RPCs in flight")->capture_default_str();
  app.add_option("--rounds", rounds,
                 "Rounds of every measurement, interleaved; the report gives median and range")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each unary measurement")->capture_default_str();
  app.add_option("--inflight", inflight, "Unary calls in flight")->capture_default_str();
  app.add_option("--batch", batch, "Commands per batch")->capture_default_str();
  app.add_option("--batch-commands", batch_commands, "Commands in the batched runs")
      ->capture_default_str();
  app.add_option("--json", json_path, "Also write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  const absl::Duration duration = absl::Seconds(seconds);

  std::cout << "machine: " << bench::Machine() << "\n";
  const absl::StatusOr<std::string> heap_pages = bench::HeapPagesFromEnv();
  if (!heap_pages.ok()) {
    std::cerr << heap_pages.status() << "\n";
    return 1;
  }
  std::cout << "heap: " << *heap_pages << "\n";
  std::cout << "log: embedded, "
            << (no_sync ? "node WITHOUT fsync (not durable; the direct writer and raw appends "
                          "still fsync)"
                        : "fsync on every append (durable)")
            << ", 8 partitions\n\n";

  // ---- unary: echo baseline vs CaptureLead, same client ------------------------------------
  EchoService echo;
  NoWriterCaptureService no_writer;
  grpc::ServerBuilder eb;
  int echo_port = 0;
  eb.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &echo_port);
  eb.RegisterService(&echo);
  eb.RegisterService(&no_writer);
  auto echo_server = eb.BuildAndStart();

  const std::string dir = TempDir("leadflow-bench");
  server::NodeOptions no;
  no.data_dir = dir + "/node";
  no.listen = "127.0.0.1:0";
  // The write side alone: views would tail the log on the same two cores (view_bench measures
  // them).
  no.role = server::Role::Writer();
  no.sync = !no_sync;
  auto node = server::Node::Start(no);
  if (!node.ok()) {
    std::cerr << node.status() << "\n";
    return 1;
  }
  const size_t payload = MakeCapture(1).ByteSizeLong();
  std::vector<Rate> echo_rates, no_writer_rates, capture_rates, grpc_batches, writer_batches, raws;
  std::vector<double> ratios;            // capture / echo within each round
  std::vector<double> no_writer_ratios;  // the same without a writer
  int per_append = std::max(1, batch / 8);
  for (int round = 0; round < rounds; ++round) {
    const int64_t round_base = int64_t{round} * 100'000'000;

    auto echo_stub = leadflowbench::Echo::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", echo_port), grpc::InsecureChannelCredentials()));
    auto measure_echo = [&] { return EchoRate(echo_stub.get(), inflight, duration, payload); };
    Rate echo_rate = measure_echo();

    auto lead_stub = v1::LeadCommandService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", (*node)->port()), grpc::InsecureChannelCredentials()));
    // The same client code for both CaptureLead measurements.
    auto drive_capture = [&](v1::LeadCommandService::Stub* stub, int64_t base) {
      return Drive(inflight, duration, [stub, base](int64_t n, std::function<void(bool)> done) {
        struct Call {
          grpc::ClientContext ctx;
          v1::CaptureLead req;
          v1::CommandReply resp;
        };
        auto* call = new Call;
        call->req = MakeCapture(base + n);
        stub->async()->CaptureLead(&call->ctx, &call->req, &call->resp,
                                   [call, done](grpc::Status st) {
                                     delete call;
                                     done(st.ok());
                                   });
      });
    };
    auto no_writer_stub = v1::LeadCommandService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", echo_port), grpc::InsecureChannelCredentials()));
    Rate no_writer_rate = drive_capture(no_writer_stub.get(), round_base + 60'000'000);
    Rate capture_rate = drive_capture(lead_stub.get(), round_base + 50'000'000);

    // Echo again, so the baseline brackets the capture measurement in time.
    Rate echo_after = measure_echo();
    echo_rate.calls += echo_after.calls;
    echo_rate.errors += echo_after.errors;
    echo_rate.seconds += echo_after.seconds;
    echo_rate.cpu_seconds += echo_after.cpu_seconds;
    ratios.push_back(capture_rate.per_second() / echo_rate.per_second());
    no_writer_ratios.push_back(no_writer_rate.per_second() / echo_rate.per_second());

    // ---- batched over gRPC, a few batches in flight (as a bulk loader would) ----------------
    std::atomic<int64_t> batch_errors{0};
    std::atomic<int64_t> next_batch{0};
    const int64_t total_batches = (batch_commands + batch - 1) / batch;
    // The loader's requests are made before the clock starts (a bulk loader prepares its data
    // elsewhere); sending them, and reading the replies, is measured.
    std::vector<v1::CommandBatch> requests(total_batches);
    for (int64_t b = 0; b < total_batches; ++b) {
      for (int64_t i = b * batch; i < std::min(batch_commands, (b + 1) * batch); ++i) {
        *requests[b].add_commands()->mutable_capture_lead() =
            MakeCapture(round_base + 10'000'000 + i);
      }
    }
    const absl::Time b0 = absl::Now();
    {
      absl::Notification batches_done;
      std::atomic<int> running{batch_inflight};
      std::function<void()> send;
      send = [&] {
        const int64_t b = next_batch++;
        if (b >= total_batches) {
          if (--running == 0) batches_done.Notify();
          return;
        }
        struct Call {
          grpc::ClientContext ctx;
          const v1::CommandBatch* req;
          v1::CommandBatchReply resp;
        };
        auto* call = new Call;
        call->req = &requests[b];
        lead_stub->async()->ExecuteBatch(
            &call->ctx, call->req, &call->resp, [call, &batch_errors, &send](grpc::Status st) {
              batch_errors += st.ok() ? call->resp.refused() : call->req->commands_size();
              delete call;
              send();
            });
      };
      for (int i = 0; i < batch_inflight; ++i) send();
      batches_done.WaitForNotification();
    }
    Rate grpc_batch{batch_commands, batch_errors.load(), absl::ToDoubleSeconds(absl::Now() - b0)};

    // ---- batched into the writer directly, and raw log appends of the same bytes -------------
    log::EmbeddedLogOptions lo;
    lo.dir = dir + "/direct";
    std::filesystem::remove_all(lo.dir);
    auto direct_log = log::EmbeddedLog::Open(lo);
    if (!direct_log.ok()) {
      std::cerr << direct_log.status() << "\n";
      return 1;
    }
    common::SystemClock clock;
    auto writer = command::CommandWriter::Open(direct_log->get(), &clock, {});
    if (!writer.ok()) {
      std::cerr << writer.status() << "\n";
      return 1;
    }
    // The same prepared batches as over gRPC (into a log of its own), handed over as the server
    // hands them over.
    int64_t direct_errors = 0;
    const absl::Time w0 = absl::Now();
    for (const v1::CommandBatch& request : requests) {
      const std::vector<const v1::Command*> commands(request.commands().pointer_begin(),
                                                     request.commands().pointer_end());
      for (const auto& r : (*writer)->ExecuteBatch(absl::MakeConstSpan(commands))) {
        direct_errors += !r.ok();
      }
    }
    Rate writer_batch{batch_commands, direct_errors, absl::ToDoubleSeconds(absl::Now() - w0)};
    writer->reset();

    // Raw appends: the same number of records of the same size, grouped per partition like the
    // writer's appends (batch / 8 records each), with no decide/encode work.
    lo.dir = dir + "/raw";
    std::filesystem::remove_all(lo.dir);
    auto raw_log = log::EmbeddedLog::Open(lo);
    if (!raw_log.ok()) {
      std::cerr << raw_log.status() << "\n";
      return 1;
    }
    const std::string value(payload + 120, 'v');  // an encoded event is a little larger
    std::vector<log::Message> records(per_append, log::Message{"ld_00000000000000000000", value});
    const absl::Time r0 = absl::Now();
    int64_t appended = 0;
    for (int32_t p = 0; appended < batch_commands; p = (p + 1) % 8) {
      if (!(*raw_log)->Append(p, records).ok()) break;
      appended += per_append;
    }
    Rate raw{appended, appended < batch_commands, absl::ToDoubleSeconds(absl::Now() - r0)};
    raw_log->reset();
    direct_log->reset();

    echo_rates.push_back(echo_rate);
    no_writer_rates.push_back(no_writer_rate);
    capture_rates.push_back(capture_rate);
    grpc_batches.push_back(grpc_batch);
    writer_batches.push_back(writer_batch);
    raws.push_back(raw);
    std::cerr << "round " << round + 1 << "/" << rounds << ": echo "
              << int64_t(echo_rate.per_second()) << "/s, capture "
              << int64_t(capture_rate.per_second()) << "/s, batch "
              << int64_t(grpc_batch.per_second()) << "/s\n";
  }
  node->reset();
  std::filesystem::remove_all(dir);
  auto median = [](std::vector<Rate> v) {
    std::sort(v.begin(), v.end(),
              [](const Rate& a, const Rate& b) { return a.per_second() < b.per_second(); });
    Rate m = v[v.size() / 2];
    // CPU per call: the median over rounds, like the rate (the middle round's own may differ).
    std::vector<double> cpu;
    for (const Rate& r : v) cpu.push_back(r.cpu_us_per_call());
    std::sort(cpu.begin(), cpu.end());
    m.cpu_seconds = cpu[cpu.size() / 2] * m.calls / 1e6;
    int64_t errors = 0;
    for (const Rate& r : v) errors += r.errors;
    m.errors = errors;
    m.lo = v.front().per_second();
    m.hi = v.back().per_second();
    return m;
  };
  const Rate echo_rate = median(echo_rates), no_writer_rate = median(no_writer_rates),
             capture_rate = median(capture_rates), grpc_batch = median(grpc_batches),
             writer_batch = median(writer_batches), raw = median(raws);
  std::sort(ratios.begin(), ratios.end());
  const double ratio = ratios[ratios.size() / 2];
  std::sort(no_writer_ratios.begin(), no_writer_ratios.end());
  const double no_writer_ratio = no_writer_ratios[no_writer_ratios.size() / 2];
  std::cout << "rounds: " << rounds << " (median, range); unary ratio = median over rounds of "
            << "capture / echo measured around it\n\n";

  auto row = [](const std::string& name, const Rate& r, const std::string& vs) {
    std::cout << absl::StrFormat("%-46s %9.0f/s  (%6.0f-%6.0f)  %3d errors  %s\n", name,
                                 r.per_second(), r.lo, r.hi, r.errors, vs);
  };
  std::cout << absl::StrFormat("%-46s %11s  %15s  %10s  %s\n", "measurement", "median", "range", "",
                               "ratio");
  row("echo RPC (baseline), unary", echo_rate, "1.00");
  row("CaptureLead, no writer (ceiling), unary", no_writer_rate,
      absl::StrFormat("%.2f x echo (rounds %.2f-%.2f)", no_writer_ratio, no_writer_ratios.front(),
                      no_writer_ratios.back()));
  row("CaptureLead, unary, durable", capture_rate,
      absl::StrFormat("%.2f x echo (target >= 0.80; rounds %.2f-%.2f)", ratio, ratios.front(),
                      ratios.back()));
  row(absl::StrCat("raw EmbeddedLog appends (baseline), ", per_append, "/append"), raw, "1.00");
  row(absl::StrCat("ExecuteBatch over gRPC, ", batch, "/batch, ", batch_inflight, " in flight"),
      grpc_batch,
      absl::StrFormat("%.2f x raw append (target >= 100k/s)",
                      grpc_batch.per_second() / raw.per_second()));
  row(absl::StrCat("CommandWriter::ExecuteBatch, ", batch, "/batch"), writer_batch,
      absl::StrFormat("%.2f x raw append", writer_batch.per_second() / raw.per_second()));

  // Where the unary gap is: process CPU per call (client and servers share the machine).
  std::cout << absl::StrFormat(
      "\nprocess CPU per unary call (client + server, median over rounds): echo %.1f us, "
      "CaptureLead without a writer %.1f us, CaptureLead %.1f us\n"
      "  -> the write path costs %.1f us of CPU per command; at the 0.80 target a call could "
      "cost at most %.1f us in all\n",
      echo_rate.cpu_us_per_call(), no_writer_rate.cpu_us_per_call(), capture_rate.cpu_us_per_call(),
      capture_rate.cpu_us_per_call() - no_writer_rate.cpu_us_per_call(),
      echo_rate.cpu_us_per_call() / 0.8);

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << absl::StrFormat(
        "{\"machine\": \"%s\", \"echo_rps\": %.0f, \"no_writer_capture_rps\": %.0f, "
        "\"capture_rps\": %.0f, \"capture_vs_echo\": %.3f, "
        "\"echo_cpu_us_per_call\": %.1f, \"no_writer_cpu_us_per_call\": %.1f, "
        "\"capture_cpu_us_per_call\": %.1f, \"raw_append_records_per_s\": %.0f, "
        "\"grpc_batch_commands_per_s\": %.0f, \"writer_batch_commands_per_s\": %.0f, "
        "\"errors\": %d}\n",
        bench::Machine(), echo_rate.per_second(), no_writer_rate.per_second(),
        capture_rate.per_second(), ratio, echo_rate.cpu_us_per_call(),
        no_writer_rate.cpu_us_per_call(), capture_rate.cpu_us_per_call(), raw.per_second(),
        grpc_batch.per_second(), writer_batch.per_second(),
        echo_rate.errors + no_writer_rate.errors + capture_rate.errors + grpc_batch.errors +
            writer_batch.errors);
  }
  const bool clean = echo_rate.errors + no_writer_rate.errors + capture_rate.errors +
                         grpc_batch.errors + writer_batch.errors ==
                     0;
  if (!clean) std::cout << "\nERRORS: some calls failed; the figures above are not valid\n";
  return clean ? 0 : 1;
}

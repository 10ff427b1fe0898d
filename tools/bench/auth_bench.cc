// The cost of security (docs/benchmarks.md, "Security"): the same client against two in-process
// nodes, "off" and "on", interleaved A/B/B/A so the machine's drift hits both alike. With
// --compare all (the default), "on" has authentication (a bearer token on every call: signature
// checked once, then the verified-token cache; the role checked per method and per command; the
// actor set from the token) and encryption of personal fields (each event sealed with its lead's
// data key, keys in the log's key store; GetLead's row is served from the view as before), and
// "off" has neither; with --compare auth only authentication differs (no encryption on either).
// Measures batched ingest (ExecuteBatch, 1,000 commands per batch, durable) and GetLead (unary,
// 32 in flight), with the process's CPU time per operation.
//   build/bin/auth_bench [--rounds 4] [--commands 50000] [--seconds 3] [--compare all|auth]
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/auth/token.h"
#include "services/server/node.h"
#include "tools/bench/bench_util.h"

namespace leadflow {
namespace {

const std::string kSecret = "auth-bench-secret-0123456789abcdef0123456789";

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Result {
  double per_second = 0;
  double cpu_us_per_op = 0;
};

v1::CaptureLead Capture(int64_t n) {
  v1::CaptureLead c;
  c.mutable_meta()->set_command_id(absl::StrCat("c-", n));
  c.mutable_meta()->mutable_actor()->set_id("loader");
  c.mutable_person()->set_full_name(absl::StrCat("Lead ", n));
  c.set_email(absl::StrCat("lead", n, "@example.com"));
  c.set_title("Head of Purchasing");
  c.set_interest_note("asked for the enterprise plan");
  c.set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  return c;
}

class Target {
 public:
  Target(bool auth, bool encrypt, const std::string& dir) : auth_(auth) {
    server::NodeOptions o;
    o.encrypt_personal = encrypt;
    o.data_dir = dir;
    o.listen = "127.0.0.1:0";
    o.id_key = "auth-bench-id-key";
    o.security.auth = auth;
    o.security.token_key = kSecret;
    o.security.admin_token_file = "-";
    auto node = server::Node::Start(o);
    if (!node.ok()) {
      std::cerr << node.status() << "\n";
      std::exit(1);
    }
    node_ = std::move(*node);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                       grpc::InsecureChannelCredentials());
    commands_ = v1::LeadCommandService::NewStub(channel);
    queries_ = v1::LeadQueryService::NewStub(channel);
    auth::TokenOptions t;
    t.key = kSecret;
    token_ = *auth::IssueToken(t, "bench", "admin", absl::Hours(2), absl::Now());
  }
  void Authorize(grpc::ClientContext* ctx) const {
    if (auth_) ctx->AddMetadata("authorization", "Bearer " + token_);
  }

  // Batched ingest of `count` new captures starting at `base`.
  Result Ingest(int64_t base, int64_t count) {
    std::vector<v1::CommandBatch> batches((count + 999) / 1000);
    for (int64_t i = 0; i < count; ++i) {
      *batches[i / 1000].add_commands()->mutable_capture_lead() = Capture(base + i);
    }
    const double cpu0 = CpuSeconds();
    const absl::Time t0 = absl::Now();
    std::atomic<size_t> next{0};
    std::atomic<int64_t> refused{0};
    absl::Notification done;
    std::atomic<int> running{4};
    std::function<void()> send = [&] {
      const size_t b = next++;
      if (b >= batches.size()) {
        if (--running == 0) done.Notify();
        return;
      }
      struct Call {
        grpc::ClientContext ctx;
        v1::CommandBatchReply resp;
      };
      auto* call = new Call;
      Authorize(&call->ctx);
      commands_->async()->ExecuteBatch(&call->ctx, &batches[b], &call->resp,
                                       [call, &refused, &send, &batches, b](grpc::Status st) {
                                         refused += st.ok() ? call->resp.refused()
                                                            : batches[b].commands_size();
                                         delete call;
                                         send();
                                       });
    };
    for (int i = 0; i < 4; ++i) send();
    done.WaitForNotification();
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    if (refused > 0) std::cerr << "ingest: " << refused << " refused\n";
    for (int64_t i = 0; i < count; i += count / 64 + 1) ids_.push_back(LeadId(base + i));
    return {count / secs, (CpuSeconds() - cpu0) * 1e6 / count};
  }

  // GetLead for `seconds`, 32 in flight, over leads ingested before.
  Result Reads(absl::Duration seconds) {
    const double cpu0 = CpuSeconds();
    const absl::Time t0 = absl::Now(), end = t0 + seconds;
    std::atomic<int64_t> calls{0}, errors{0};
    absl::Notification done;
    std::atomic<int> running{32};
    std::function<void()> call_one = [&] {
      if (absl::Now() >= end) {
        if (--running == 0) done.Notify();
        return;
      }
      struct Call {
        grpc::ClientContext ctx;
        v1::GetLeadRequest req;
        v1::LeadView resp;
      };
      auto* call = new Call;
      Authorize(&call->ctx);
      call->req.set_lead_id(ids_[calls.load() % ids_.size()]);
      queries_->async()->GetLead(&call->ctx, &call->req, &call->resp,
                                 [call, &calls, &errors, &call_one](grpc::Status st) {
                                   ++calls;
                                   if (!st.ok()) ++errors;
                                   delete call;
                                   call_one();
                                 });
    };
    for (int i = 0; i < 32; ++i) call_one();
    done.WaitForNotification();
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    if (errors > 0) std::cerr << "reads: " << errors << " failed\n";
    return {calls / secs, (CpuSeconds() - cpu0) * 1e6 / std::max<int64_t>(1, calls)};
  }

 private:
  std::string LeadId(int64_t n) {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    v1::FindLeadRequest req;
    req.set_email(absl::StrCat("lead", n, "@example.com"));
    v1::LeadView lead;
    (void)queries_->FindLead(&ctx, req, &lead);
    return lead.lead_id();
  }
  bool auth_;
  std::unique_ptr<server::Node> node_;
  std::unique_ptr<v1::LeadCommandService::Stub> commands_;
  std::unique_ptr<v1::LeadQueryService::Stub> queries_;
  std::string token_;
  std::vector<std::string> ids_;
};

}  // namespace
}  // namespace leadflow

int main(int argc, char** argv) {
  using namespace leadflow;
  int rounds = 4;
  int64_t commands = 50000;
  double seconds = 3;
  CLI::App app{"auth_bench: batched ingest and GetLead with security off and on"};
  app.add_option("--rounds", rounds, "A/B rounds (each runs both, alternating which goes first)")
      ->capture_default_str();
  app.add_option("--commands", commands, "Captures per ingest measurement")->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each GetLead measurement")
      ->capture_default_str();
  std::string compare = "all";
  app.add_option("--compare", compare,
                 "all: on = authentication + encryption, off = neither; auth: authentication "
                 "only (no encryption on either)")
      ->check(CLI::IsMember({"all", "auth"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool encrypt = compare == "all";
  std::cout << "compare: " << (encrypt ? "authentication + encryption" : "authentication only")
            << "\n";
  std::cout << "machine: " << bench::Machine() << "\n";
  const std::string dir = std::filesystem::temp_directory_path() / "leadflow-auth-bench";
  std::filesystem::remove_all(dir);
  Target off(false, false, dir + "/off"), on(true, encrypt, dir + "/on");
  std::cout << "round  order    ingest off/s  ingest on/s  ratio   cpu us/cmd off  on    "
               "GetLead off/s  on/s   ratio   cpu us/read off  on\n";
  for (int r = 0; r < rounds; ++r) {
    const bool on_first = r % 2 == 1;
    Result ioff, ion, roff, ron;
    const int64_t base = int64_t{r} * 10'000'000;
    if (on_first) {
      ion = on.Ingest(base, commands);
      ioff = off.Ingest(base, commands);
      ron = on.Reads(absl::Seconds(seconds));
      roff = off.Reads(absl::Seconds(seconds));
    } else {
      ioff = off.Ingest(base, commands);
      ion = on.Ingest(base, commands);
      roff = off.Reads(absl::Seconds(seconds));
      ron = on.Reads(absl::Seconds(seconds));
    }
    std::printf(
        "%-6d %-8s %12.0f %12.0f  %5.3f   %12.1f %6.1f  %13.0f %7.0f  %5.3f   %12.1f %6.1f\n",
        r + 1, on_first ? "on,off" : "off,on", ioff.per_second, ion.per_second,
        ion.per_second / ioff.per_second, ioff.cpu_us_per_op, ion.cpu_us_per_op, roff.per_second,
        ron.per_second, ron.per_second / roff.per_second, roff.cpu_us_per_op, ron.cpu_us_per_op);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

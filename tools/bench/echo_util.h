// Shared by the gRPC benchmarks: the trivial Echo service (the baseline every RPC figure is
// compared with) and a driver that keeps a number of async unary calls in flight.
#ifndef LEADFLOW_TOOLS_BENCH_ECHO_UTIL_H_
#define LEADFLOW_TOOLS_BENCH_ECHO_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "echo.grpc.pb.h"  // generated into leadflow_bench_proto's build dir

namespace leadflow::bench {

class EchoService final : public leadflowbench::Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const leadflowbench::EchoMessage* req,
                                 leadflowbench::EchoMessage* resp) override {
    *resp = *req;
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

struct Rate {
  int64_t calls = 0;
  int64_t errors = 0;
  double seconds = 0;
  double lo = 0, hi = 0;   // range over rounds
  double cpu_seconds = 0;  // CPU the whole process (client and servers) used meanwhile
  double per_second() const { return seconds > 0 ? calls / seconds : 0; }
  // Process CPU per completed call, in microseconds (client and server together).
  double cpu_us_per_call() const { return calls > 0 ? cpu_seconds * 1e6 / calls : 0; }
};

// User + system CPU seconds of this process so far.
inline double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Keeps `inflight` async unary calls going for `duration`; `start(n, done)` starts call n and
// calls done(ok) when it completes.
inline Rate Drive(int inflight, absl::Duration duration,
                  const std::function<void(int64_t, std::function<void(bool)>)>& start) {
  std::atomic<int64_t> next{0}, completed{0}, errors{0};
  std::atomic<int> active{inflight};
  absl::Notification all_done;
  const double cpu0 = ProcessCpuSeconds();
  const absl::Time t0 = absl::Now();
  const absl::Time deadline = t0 + duration;
  std::function<void()> launch;
  launch = [&] {
    start(next++, [&](bool ok) {
      completed++;
      if (!ok) errors++;
      if (absl::Now() < deadline) {
        launch();
      } else if (--active == 0) {
        all_done.Notify();
      }
    });
  };
  for (int i = 0; i < inflight; ++i) launch();
  all_done.WaitForNotification();
  Rate rate{completed.load(), errors.load(), absl::ToDoubleSeconds(absl::Now() - t0)};
  rate.cpu_seconds = ProcessCpuSeconds() - cpu0;
  return rate;
}

// The echo baseline: `inflight` Echo calls in flight for `duration`, payloads of `payload` bytes.
inline Rate EchoRate(leadflowbench::Echo::Stub* stub, int inflight, absl::Duration duration,
                     size_t payload) {
  return Drive(inflight, duration, [&](int64_t, std::function<void(bool)> done) {
    struct Call {
      grpc::ClientContext ctx;
      leadflowbench::EchoMessage req, resp;
    };
    auto* call = new Call;
    call->req.set_payload(std::string(payload, 'x'));
    stub->async()->Echo(&call->ctx, &call->req, &call->resp, [call, done](grpc::Status st) {
      delete call;
      done(st.ok());
    });
  });
}

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_ECHO_UTIL_H_

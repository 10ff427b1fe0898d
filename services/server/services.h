// gRPC service implementations. Thin: each command RPC wraps its request into a Command and
// hands it to the writer; each query reads a view. All rules live in the reducer, all I/O in the
// writer, the log and the views. Every method is served from raw bytes (unary_call.h): bad
// bytes are INVALID_ARGUMENT, and a call is finished from whichever thread completes its work,
// so no server thread ever waits (for a disk, a view or a deadline).
#ifndef LEADFLOW_SERVICES_SERVER_SERVICES_H_
#define LEADFLOW_SERVICES_SERVER_SERVICES_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "leadflow/v1/lead_service.grpc.pb.h"
#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "projections/reprocessing/reprocessing_view.h"
#include "projections/runner/runner.h"
#include "services/command/writer.h"
#include "services/log/event_log.h"
#include "services/metrics/metrics.h"
#include "services/server/unary_call.h"

namespace leadflow::server {

// The writer's service (the views' services are in the view registry, views.h).
inline constexpr char kCommandService[] = "leadflow.v1.LeadCommandService";

// A few threads that run tasks now or at a given time, so no gRPC handler waits. Reads that must
// wait for a view (a min_position, or a fresh read while the view catches up) are parked on one:
// the view's runner wakes them, a timer finishes those whose deadline passes first, and their
// queries then run on its threads. Command batches (a decide, an append and an fsync) run on
// another.
class TaskPool {
 public:
  explicit TaskPool(int threads = 2);
  ~TaskPool();  // runs what is queued (finishing the calls), then stops
  // Runs `task` on a pool thread.
  void Run(std::function<void()> task);
  // Runs `task` on a pool thread at `when`.
  void At(absl::Time when, std::function<void()> task);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> ready_;
  std::multimap<absl::Time, std::function<void()>> timers_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};
class LeadCommandServiceImpl final : public RawService<v1::LeadCommandService::Service> {
 public:
  // `metrics` may be null (no metrics).
  LeadCommandServiceImpl(command::CommandWriter* writer, metrics::Metrics* metrics);

 private:
  using CommandCall = UnaryCall<v1::Command, v1::CommandReply>;
  // Submits the call's command; the writer's sync thread finishes the call once the command is
  // durable (or refused), so no gRPC thread waits on a disk.
  void Run(CommandCall* call);
  // Queues the batch on batches_ (its decide, append and fsync never run on a gRPC thread).
  void Batch(UnaryCall<v1::CommandBatch, v1::CommandBatchReply>* call);
  void RunBatch(UnaryCall<v1::CommandBatch, v1::CommandBatchReply>* call);
  // Counts the command's outcome (metrics) and logs it at debug level.
  void Observe(const v1::Command& command, const absl::StatusOr<v1::CommandReply>& result,
               absl::Duration latency, bool count = true);
  command::CommandWriter* writer_;
  metrics::Metrics* metrics_;
  TaskPool batches_{2};  // last: destroyed (finishing queued batches) before the rest
};

// What a query service needs to serve a view: its store's queries run after the wait.
struct ViewEdge {
  const projections::ProjectionRunner* runner = nullptr;
  log::EventLog* log = nullptr;  // for the end of each partition (never a blocking request)
  std::shared_ptr<TaskPool> waits;
};

// Read-side services over the views. A query with min_position waits until its view applied
// that position (a position at or past the end of the log is OUT_OF_RANGE at once); without one
// it waits until the view applied the log as of the request (fresh reads). Either wait is bounded
// by the call's deadline and 10 s, then UNAVAILABLE naming how far the view is.
class LeadQueryServiceImpl final : public RawService<v1::LeadQueryService::Service> {
 public:
  LeadQueryServiceImpl(const projections::ViewStore* store, ViewEdge edge, int32_t partitions,
                       std::string phone_region = "", privacy::Vault* vault = nullptr);

 private:
  projections::LeadQueries queries_;
  ViewEdge edge_;
  int32_t partitions_;
};

class CustomerQueryServiceImpl final : public RawService<v1::CustomerQueryService::Service> {
 public:
  CustomerQueryServiceImpl(const projections::ViewStore* store, ViewEdge edge, int32_t partitions);

 private:
  projections::CustomerQueries queries_;
  ViewEdge edge_;
  int32_t partitions_;
};

class FunnelQueryServiceImpl final : public RawService<v1::FunnelQueryService::Service> {
 public:
  FunnelQueryServiceImpl(const projections::FunnelProjection* funnel, ViewEdge edge);

 private:
  const projections::FunnelProjection* funnel_;
  ViewEdge edge_;
};

class ReprocessingQueryServiceImpl final
    : public RawService<v1::ReprocessingQueryService::Service> {
 public:
  ReprocessingQueryServiceImpl(const projections::ViewStore* store, ViewEdge edge);

 private:
  projections::ReprocessingQueries queries_;
  ViewEdge edge_;
};

class ViewAdminServiceImpl final : public RawService<v1::ViewAdminService::Service> {
 public:
  explicit ViewAdminServiceImpl(std::vector<const projections::ProjectionRunner*> runners);

 private:
  std::vector<const projections::ProjectionRunner*> runners_;
};

// Operations (leadflow backup). A backup takes seconds to minutes: it runs on its own thread,
// never on gRPC's; one at a time (a second is UNAVAILABLE until the first is done).
class AdminServiceImpl final : public RawService<v1::AdminService::Service> {
 public:
  using BackupFn = std::function<absl::StatusOr<v1::BackupReply>(const std::string& dir)>;
  explicit AdminServiceImpl(BackupFn backup);
  ~AdminServiceImpl() override;  // waits for a running backup

 private:
  BackupFn backup_;
  std::mutex mu_;
  std::thread running_;  // guarded by mu_
  bool busy_ = false;    // guarded by mu_
};

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_SERVICES_H_

#include "services/server/services.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/lead/reducer.h"
#include "services/logging/logging.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/log/event_log.h"
#include "services/server/grpc_status.h"

namespace leadflow::server {

namespace {

std::string CodeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

// ok, replayed, deduplicated, or the refusal's gRPC code in lower case.
std::string Outcome(const absl::StatusOr<v1::CommandReply>& result) {
  if (!result.ok()) return CodeName(result.status().code());
  if (result->replayed()) return "replayed";
  if (result->deduplicated()) return "deduplicated";
  return "ok";
}

}  // namespace

void LeadCommandServiceImpl::Observe(const v1::Command& command,
                                     const absl::StatusOr<v1::CommandReply>& result,
                                     absl::Duration latency, bool count) {
  const std::string& type = lead::CommandName(command);
  const std::string outcome = Outcome(result);
  if (count && metrics_ != nullptr) metrics_->CommandDone(type, outcome, latency);
  if (!logging::Enabled(logging::Level::kDebug)) return;
  const std::string& command_id = lead::MetaOf(command).command_id();
  if (result.ok()) {
    logging::Log(logging::Level::kDebug, "command applied",
                 {{"type", type},
                  {"result", outcome},
                  {"command_id", command_id},
                  {"lead_id", result->lead_id()},
                  {"lead_version", result->lead_version()},
                  {"partition", result->last_position().partition()},
                  {"offset", result->last_position().offset()}});
  } else {
    logging::Log(logging::Level::kDebug, "command refused",
                 {{"type", type},
                  {"command_id", command_id},
                  {"code", outcome},
                  {"reason", std::string(result.status().message())}});
  }
}

// The handler returns at once; the reply is sent from the writer's committer thread when the
// command is durably appended (or refused), so no gRPC thread waits on a disk.
grpc::ServerUnaryReactor* LeadCommandServiceImpl::Run(grpc::CallbackServerContext* ctx,
                                                      std::shared_ptr<const v1::Command> command,
                                                      v1::CommandReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const v1::Command& ref = *command;
  const absl::Time start = absl::Now();
  writer_->Submit(ref, [this, start, reactor, reply, keep = std::move(command)](
                           absl::StatusOr<v1::CommandReply> result) {
    Observe(*keep, result, absl::Now() - start);
    if (result.ok()) {
      *reply = std::move(*result);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(ToGrpcStatus(result.status()));
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* LeadCommandServiceImpl::ExecuteBatch(grpc::CallbackServerContext* ctx,
                                                               const v1::CommandBatch* req,
                                                               v1::CommandBatchReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (req->commands_size() > static_cast<int>(command::CommandWriter::kMaxBatch)) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("commands: ", req->commands_size(), " commands in one batch; the limit is ",
                     command::CommandWriter::kMaxBatch)));
    return reactor;
  }
  std::vector<const v1::Command*> commands(req->commands().pointer_begin(),
                                           req->commands().pointer_end());
  const absl::Time start = absl::Now();
  auto results = writer_->ExecuteBatch(absl::MakeConstSpan(commands));
  const absl::Duration took = absl::Now() - start;
  // Metrics once per (type, outcome) group of the batch, not once per command: a batch of 1,000
  // costs a handful of counter updates. Per-command log lines only at debug level.
  if (metrics_ != nullptr) {
    // (command kind, outcome) -> (count, one command of the group, for its name)
    absl::flat_hash_map<std::pair<int, std::string>, std::pair<int64_t, const v1::Command*>> groups;
    for (size_t i = 0; i < results.size(); ++i) {
      auto& group = groups[{static_cast<int>(commands[i]->body_case()), Outcome(results[i])}];
      ++group.first;
      group.second = commands[i];
    }
    for (const auto& [key, group] : groups) {
      metrics_->CommandDone(lead::CommandName(*group.second), key.second, took, group.first);
    }
  }
  if (logging::Enabled(logging::Level::kDebug)) {
    for (size_t i = 0; i < results.size(); ++i) {
      Observe(*commands[i], results[i], took, /*count=*/false);
    }
  }
  for (auto& r : results) {
    v1::CommandResult* out = reply->add_results();
    if (r.ok()) {
      *out->mutable_reply() = std::move(*r);
      reply->set_succeeded(reply->succeeded() + 1);
    } else {
      out->set_code(static_cast<int32_t>(r.status().code()));
      out->set_message(std::string(r.status().message()));
      reply->set_refused(reply->refused() + 1);
    }
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// Waits for the view per the request's freshness rule; see LeadQueryServiceImpl.
absl::Status WaitForView(const projections::ProjectionRunner& runner,
                         grpc::CallbackServerContext* ctx, const v1::LogPosition* min_position,
                         std::vector<int32_t> partitions) {
  absl::Duration timeout = absl::Seconds(10);
  const auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    // Give up a little before the caller's deadline, so it gets the reason (how far the view
    // is) instead of a bare DEADLINE_EXCEEDED.
    timeout = std::min(timeout, absl::FromChrono(deadline) - absl::Now() - absl::Milliseconds(100));
  }
  if (min_position != nullptr) return runner.WaitFor(*min_position, timeout);
  return runner.WaitForLogEnd(partitions, timeout);
}

std::vector<int32_t> PartitionOf(const std::string& lead_id, int32_t partitions) {
  if (!common::IsLeadId(lead_id)) return {-1};  // no wait; the query reports the bad id
  return {log::PartitionForKey(lead_id, partitions)};
}

// Runs `query` after the wait, finishing the call with its result.
template <typename Reply, typename Query>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                const projections::ProjectionRunner& runner,
                                const v1::LogPosition* min_position,
                                std::vector<int32_t> partitions, Reply* reply, Query query) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status waited = absl::OkStatus();
  if (partitions.empty() || partitions.front() >= 0 || min_position != nullptr) {
    waited = WaitForView(runner, ctx, min_position, std::move(partitions));
  }
  if (!waited.ok()) {
    reactor->Finish(ToGrpcStatus(waited));
    return reactor;
  }
  auto result = query();
  if (result.ok()) {
    *reply = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  } else {
    reactor->Finish(ToGrpcStatus(result.status()));
  }
  return reactor;
}

const v1::LogPosition* PositionOf(bool has, const v1::LogPosition& p) { return has ? &p : nullptr; }

template <typename Request>
const v1::LogPosition* MinPosition(const Request& req) {
  return PositionOf(req.has_min_position(), req.min_position());
}

}  // namespace

grpc::ServerUnaryReactor* LeadQueryServiceImpl::GetLead(grpc::CallbackServerContext* ctx,
                                                        const v1::GetLeadRequest* req,
                                                        v1::LeadView* reply) {
  return Serve(ctx, *runner_, PositionOf(req->has_min_position(), req->min_position()),
               PartitionOf(req->lead_id(), partitions_), reply,
               [&] { return queries_.Get(req->lead_id()); });
}

grpc::ServerUnaryReactor* LeadQueryServiceImpl::FindLead(grpc::CallbackServerContext* ctx,
                                                         const v1::FindLeadRequest* req,
                                                         v1::LeadView* reply) {
  return Serve(ctx, *runner_, PositionOf(req->has_min_position(), req->min_position()), {},
               reply, [&] { return queries_.Find(*req); });
}

grpc::ServerUnaryReactor* LeadQueryServiceImpl::GetLeadTimeline(
    grpc::CallbackServerContext* ctx, const v1::GetLeadTimelineRequest* req,
    v1::LeadTimeline* reply) {
  return Serve(ctx, *runner_, PositionOf(req->has_min_position(), req->min_position()),
               PartitionOf(req->lead_id(), partitions_), reply,
               [&] { return queries_.Timeline(req->lead_id()); });
}

grpc::ServerUnaryReactor* LeadQueryServiceImpl::ListLeads(grpc::CallbackServerContext* ctx,
                                                          const v1::ListLeadsRequest* req,
                                                          v1::ListLeadsResponse* reply) {
  return Serve(ctx, *runner_, PositionOf(req->has_min_position(), req->min_position()), {},
               reply, [&] { return queries_.List(*req); });
}

grpc::ServerUnaryReactor* LeadQueryServiceImpl::ListOverdueFollowUps(
    grpc::CallbackServerContext* ctx, const v1::ListOverdueFollowUpsRequest* req,
    v1::ListOverdueFollowUpsResponse* reply) {
  return Serve(ctx, *runner_, nullptr, {}, reply,
               [&] { return queries_.Overdue(*req, absl::Now()); });
}

grpc::ServerUnaryReactor* CustomerQueryServiceImpl::GetCustomer(
    grpc::CallbackServerContext* ctx, const v1::GetCustomerRequest* req,
    v1::CustomerView* reply) {
  std::string lead_id = req->lead_id();
  if (lead_id.empty() && common::IsCustomerId(req->customer_id())) {
    lead_id = common::LeadIdForCustomer(req->customer_id());
  }
  return Serve(ctx, *runner_, PositionOf(req->has_min_position(), req->min_position()),
               PartitionOf(lead_id, partitions_), reply, [&] { return queries_.Get(*req); });
}

grpc::ServerUnaryReactor* CustomerQueryServiceImpl::ListCustomers(
    grpc::CallbackServerContext* ctx, const v1::ListCustomersRequest* req,
    v1::ListCustomersResponse* reply) {
  return Serve(ctx, *runner_, nullptr, {}, reply, [&] { return queries_.List(*req); });
}

grpc::ServerUnaryReactor* FunnelQueryServiceImpl::GetCohortFunnel(
    grpc::CallbackServerContext* ctx, const v1::CohortFunnelRequest* req,
    v1::CohortFunnelReport* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return funnel_->Cohort(*req); });
}

grpc::ServerUnaryReactor* FunnelQueryServiceImpl::GetActivity(grpc::CallbackServerContext* ctx,
                                                              const v1::ActivityRequest* req,
                                                              v1::ActivityReport* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return funnel_->Activity(*req); });
}

grpc::ServerUnaryReactor* FunnelQueryServiceImpl::GetPipeline(grpc::CallbackServerContext* ctx,
                                                              const v1::PipelineRequest* req,
                                                              v1::PipelineReport* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return funnel_->Pipeline(*req); });
}

grpc::ServerUnaryReactor* ReprocessingQueryServiceImpl::ListExits(
    grpc::CallbackServerContext* ctx, const v1::ListExitsRequest* req,
    v1::ListExitsResponse* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return queries_.ListExits(*req); });
}

grpc::ServerUnaryReactor* ReprocessingQueryServiceImpl::GetExitSummary(
    grpc::CallbackServerContext* ctx, const v1::ExitSummaryRequest* req,
    v1::ExitSummary* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return queries_.Summary(*req); });
}

grpc::ServerUnaryReactor* ReprocessingQueryServiceImpl::GetRecontactQueue(
    grpc::CallbackServerContext* ctx, const v1::RecontactQueueRequest* req,
    v1::RecontactQueueResponse* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return queries_.Queue(*req, absl::Now()); });
}

grpc::ServerUnaryReactor* ReprocessingQueryServiceImpl::GetWinBackList(
    grpc::CallbackServerContext* ctx, const v1::WinBackRequest* req, v1::WinBackResponse* reply) {
  return Serve(ctx, *runner_, MinPosition(*req), {}, reply,
               [&] { return queries_.WinBack(*req, absl::Now()); });
}

grpc::ServerUnaryReactor* ViewAdminServiceImpl::GetViewStatus(grpc::CallbackServerContext* ctx,
                                                              const v1::GetViewStatusRequest*,
                                                              v1::ViewStatus* reply) {
  for (const auto* r : runners_) {
    for (auto& p : r->Status()) *reply->add_partitions() = std::move(p);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace leadflow::server

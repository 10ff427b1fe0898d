#include "services/server/services.h"

#include <algorithm>
#include <atomic>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "leadflow/v1/lead_service.pb.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "services/logging/logging.h"

namespace leadflow::server {

const google::protobuf::ServiceDescriptor* FindServiceDescriptor(const std::string& full_name) {
  // Referencing the file's descriptor table links lead_service.pb.cc into the binary (and its
  // static initializer registers the file with the generated pool).
  static const void* volatile linked = &::descriptor_table_leadflow_2fv1_2flead_5fservice_2eproto;
  (void)linked;
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full_name);
}

namespace {

constexpr char kLeadQueries[] = "leadflow.v1.LeadQueryService";
constexpr char kCustomerQueries[] = "leadflow.v1.CustomerQueryService";
constexpr char kFunnelQueries[] = "leadflow.v1.FunnelQueryService";
constexpr char kReprocessingQueries[] = "leadflow.v1.ReprocessingQueryService";
constexpr char kViewAdmin[] = "leadflow.v1.ViewAdminService";
constexpr char kAdmin[] = "leadflow.v1.AdminService";

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

// With authentication on: refuses a command the caller's role may not run (PERMISSION_DENIED
// naming the command kind and the role) and records the caller as its actor. An actor id the
// client wrote that is not the caller's own is kept as `on_behalf_of`, never trusted.
absl::Status Attribute(const auth::Principal* who, const auth::Policy* policy,
                       v1::Command* command) {
  if (who == nullptr || command->body_case() == v1::Command::BODY_NOT_SET) {
    return absl::OkStatus();  // no authentication; or no command (the reducer refuses it)
  }
  if (absl::Status allowed = policy->CheckCommand(*who, lead::CommandName(*command));
      !allowed.ok()) {
    return allowed;
  }
  v1::Actor* actor = lead::MutableMetaOf(command)->mutable_actor();
  if (!actor->id().empty() && actor->id() != who->subject && actor->on_behalf_of().empty()) {
    actor->set_on_behalf_of(actor->id());
  }
  actor->set_id(who->subject);
  if (who->via == auth::Principal::Via::kCertificate) {
    actor->set_kind(v1::Actor::KIND_SYSTEM);
  } else if (actor->kind() == v1::Actor::KIND_UNSPECIFIED) {
    actor->set_kind(v1::Actor::KIND_USER);
  }
  return absl::OkStatus();
}

}  // namespace

// ---- Commands -----------------------------------------------------------------------------------

LeadCommandServiceImpl::LeadCommandServiceImpl(command::CommandWriter* writer,
                                               metrics::Metrics* metrics)
    : writer_(writer), metrics_(metrics) {
  auto run = [this](CommandCall* call) { Run(call); };
#define LEADFLOW_COMMAND_RPC(Method, field) \
  Serve<v1::Command, v1::CommandReply>(     \
      kCommandService, #Method, run,        \
      [](v1::Command* c) -> google::protobuf::Message* { return c->mutable_##field(); });
  LEADFLOW_COMMAND_RPC(CaptureLead, capture_lead)
  LEADFLOW_COMMAND_RPC(RecordInquiry, record_inquiry)
  LEADFLOW_COMMAND_RPC(UpdateContactDetails, update_contact_details)
  LEADFLOW_COMMAND_RPC(AssignLead, assign_lead)
  LEADFLOW_COMMAND_RPC(SetTemperature, set_temperature)
  LEADFLOW_COMMAND_RPC(LogInteraction, log_interaction)
  LEADFLOW_COMMAND_RPC(ScheduleFollowUp, schedule_follow_up)
  LEADFLOW_COMMAND_RPC(CompleteFollowUp, complete_follow_up)
  LEADFLOW_COMMAND_RPC(QualifyLead, qualify_lead)
  LEADFLOW_COMMAND_RPC(ChangeStage, change_stage)
  LEADFLOW_COMMAND_RPC(RejectLead, reject_lead)
  LEADFLOW_COMMAND_RPC(PostponeLead, postpone_lead)
  LEADFLOW_COMMAND_RPC(DisqualifyLead, disqualify_lead)
  LEADFLOW_COMMAND_RPC(ReactivateLead, reactivate_lead)
  LEADFLOW_COMMAND_RPC(MergeLead, merge_lead)
  LEADFLOW_COMMAND_RPC(ConvertLead, convert_lead)
  LEADFLOW_COMMAND_RPC(UpdateCustomerProfile, update_customer_profile)
  LEADFLOW_COMMAND_RPC(RecordPurchase, record_purchase)
  LEADFLOW_COMMAND_RPC(RecordNps, record_nps)
  LEADFLOW_COMMAND_RPC(EraseLead, erase_lead)
#undef LEADFLOW_COMMAND_RPC
  Serve<v1::Command, v1::CommandReply>(kCommandService, "Execute", run);
  Serve<v1::CommandBatch, v1::CommandBatchReply>(
      kCommandService, "ExecuteBatch",
      [this](UnaryCall<v1::CommandBatch, v1::CommandBatchReply>* call) { Batch(call); });
}

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

void LeadCommandServiceImpl::Run(CommandCall* call) {
  const absl::Time start = absl::Now();
  if (absl::Status allowed = Attribute(call->principal(), call->policy(), call->mutable_request());
      !allowed.ok()) {
    Observe(call->request(), allowed, absl::Now() - start);
    return call->Finish(allowed);
  }
  // The command lives in the call, which lives until it is finished.
  writer_->Submit(call->request(), [this, start, call](absl::StatusOr<v1::CommandReply> result) {
    Observe(call->request(), result, absl::Now() - start);
    if (!result.ok()) return call->Finish(result.status());
    *call->response() = std::move(*result);
    call->Finish(absl::OkStatus());
  });
}

void LeadCommandServiceImpl::Batch(UnaryCall<v1::CommandBatch, v1::CommandBatchReply>* call) {
  batches_.Run([this, call] { RunBatch(call); });
}

void LeadCommandServiceImpl::RunBatch(UnaryCall<v1::CommandBatch, v1::CommandBatchReply>* call) {
  const v1::CommandBatch& req = call->request();
  v1::CommandBatchReply* reply = call->response();
  if (req.commands_size() > static_cast<int>(command::CommandWriter::kMaxBatch)) {
    return call->Finish(absl::InvalidArgumentError(
        absl::StrCat("commands: ", req.commands_size(), " commands in one batch; the limit is ",
                     command::CommandWriter::kMaxBatch)));
  }
  // Commands the caller's role may not run are refused here, the others go to the writer.
  std::vector<const v1::Command*> commands;
  std::vector<absl::Status> denied(req.commands_size());
  std::vector<const v1::Command*> admitted;
  for (int i = 0; i < req.commands_size(); ++i) {
    v1::Command* command = call->mutable_request()->mutable_commands(i);
    commands.push_back(command);
    denied[i] = Attribute(call->principal(), call->policy(), command);
    if (denied[i].ok()) admitted.push_back(command);
  }
  const absl::Time start = absl::Now();
  auto written = writer_->ExecuteBatch(absl::MakeConstSpan(admitted));
  std::vector<absl::StatusOr<v1::CommandReply>> results;
  results.reserve(commands.size());
  for (size_t i = 0, w = 0; i < commands.size(); ++i) {
    if (denied[i].ok()) {
      results.push_back(std::move(written[w++]));
    } else {
      results.push_back(denied[i]);
    }
  }
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
      out->set_message(BoundedMessage(r.status().message()));
      reply->set_refused(reply->refused() + 1);
    }
  }
  call->Finish(absl::OkStatus());
}

// ---- Waiting for views --------------------------------------------------------------------------

TaskPool::TaskPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

TaskPool::~TaskPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    // Timers still pending run now: each finishes its call (their claims decide how).
    for (auto& [when, task] : timers_) ready_.push_back(std::move(task));
    timers_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void TaskPool::Run(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void TaskPool::At(absl::Time when, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      ready_.push_back(std::move(task));
    } else {
      timers_.emplace(when, std::move(task));
    }
  }
  wake_.notify_one();
}

void TaskPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    const absl::Time now = absl::Now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      ready_.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    if (!ready_.empty()) {
      std::function<void()> task = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (stop_) return;
    if (timers_.empty()) {
      wake_.wait(lock);
    } else {
      wake_.wait_for(lock, absl::ToChronoNanoseconds(timers_.begin()->first - now));
    }
  }
}

namespace {

// What a read waits for: (partition, offset) pairs its view must have applied.
using Targets = std::vector<std::pair<int32_t, int64_t>>;

absl::Status PositionPastTheEnd(const v1::LogPosition& position, int64_t end) {
  return absl::OutOfRangeError(
      absl::StrCat("min_position: partition ", position.partition(), " offset ", position.offset(),
                   " is past the end of the log (partition ", position.partition(), " has ", end,
                   " events); pass the last_position of a reply"));
}

// The targets of a read given the log's `ends`: the position it names (OUT_OF_RANGE if past
// the end), or the last event of each listed partition (a fresh read).
absl::StatusOr<Targets> TargetsAt(const std::vector<int64_t>& ends,
                                  const v1::LogPosition* min_position,
                                  const std::vector<int32_t>& partitions) {
  Targets t;
  if (min_position != nullptr) {
    const int64_t end = ends[min_position->partition()];
    if (end < 0) {
      return absl::UnavailableError(absl::StrCat("the end of log partition ",
                                                 min_position->partition(),
                                                 " is not known (is the log reachable?); retry"));
    }
    if (min_position->offset() >= end) return PositionPastTheEnd(*min_position, end);
    t.emplace_back(min_position->partition(), min_position->offset());
    return t;
  }
  for (int32_t p = 0; p < static_cast<int32_t>(ends.size()); ++p) {
    const bool listed = partitions.empty() ||
                        std::find(partitions.begin(), partitions.end(), p) != partitions.end();
    if (listed && ends[p] > 0) t.emplace_back(p, ends[p] - 1);
  }
  return t;
}

// How long a read may wait: 10 s, and a little less than the caller's deadline, so it gets the
// reason (how far the view is) instead of a bare DEADLINE_EXCEEDED.
absl::Time WaitDeadline(grpc::CallbackServerContext* ctx) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  const auto client = ctx->deadline();
  if (client != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(client) - absl::Milliseconds(100));
  }
  return deadline;
}

// Serves a read: waits (without a thread) until the view has the targets, then runs `query` and
// finishes the call with its result.
template <typename Req, typename Resp>
void ServeView(UnaryCall<Req, Resp>* call, const ViewEdge& edge, Targets targets,
               absl::Time deadline, std::function<absl::StatusOr<Resp>()> query) {
  auto finish = [call](absl::StatusOr<Resp> result) {
    if (!result.ok()) return call->Finish(result.status());
    *call->response() = std::move(*result);
    call->Finish(absl::OkStatus());
  };
  if (targets.empty()) return finish(query());
  // A wait settled by whichever comes first: the view, the deadline, a cancellation.
  struct Pending {
    std::atomic<bool> claimed{false};
    std::atomic<uint64_t> id{0};
    bool Claim() { return !claimed.exchange(true); }
  };
  auto pending = std::make_shared<Pending>();
  const projections::ProjectionRunner* runner = edge.runner;
  const std::pair<int32_t, int64_t> first = targets.front();
  // Deadline and cancellation are armed before the wait is registered: once it is, the view
  // may finish the call at any moment.
  call->set_on_cancel([pending, runner, call] {
    if (!pending->Claim()) return;
    if (const uint64_t id = pending->id.load(); id != 0) runner->CancelAwait(id);
    call->Finish(absl::CancelledError("cancelled by the client"));
  });
  edge.waits->At(deadline, [pending, runner, call, first, targets] {
    if (!pending->Claim()) return;
    if (const uint64_t id = pending->id.load(); id != 0) runner->CancelAwait(id);
    const std::pair<int32_t, int64_t> behind = runner->FirstUnapplied(targets).value_or(first);
    call->Finish(absl::UnavailableError(
        absl::StrCat(runner->Progress(behind.first), ", not yet ", behind.second, "; retry")));
  });
  absl::StatusOr<uint64_t> id = runner->Await(
      std::move(targets), [pending, waits = edge.waits, query, finish](absl::Status ready) {
        if (!pending->Claim()) return;
        // Off the runner's thread: queries may take a while.
        waits->Run([ready, query, finish] { finish(ready.ok() ? query() : ready); });
      });
  if (id.ok() && *id != projections::ProjectionRunner::kReady) {
    pending->id = *id;
    return;
  }
  if (!pending->Claim()) return;  // (cannot happen: nothing else knows the wait yet)
  if (!id.ok()) return call->Finish(id.status());
  finish(query());  // already applied: answer now
}

// A read: the position it names must be in the log (OUT_OF_RANGE at once if past its end), and
// its view must have applied it, or, without a position, the log as of the request on the
// `partitions` the answer depends on (empty: all; {-1}: none).
template <typename Req, typename Resp>
void Serve(UnaryCall<Req, Resp>* call, const ViewEdge& edge, const v1::LogPosition* min_position,
           std::vector<int32_t> partitions, std::function<absl::StatusOr<Resp>()> query) {
  const absl::Time deadline = WaitDeadline(call->context());
  if (min_position != nullptr) {
    absl::Status valid = log::CheckPartition("min_position.partition", min_position->partition(),
                                             edge.log->partition_count());
    if (valid.ok() && min_position->offset() < 0) {
      valid = absl::InvalidArgumentError(absl::StrCat(
          "min_position.offset: must not be negative (got ", min_position->offset(), ")"));
    }
    if (!valid.ok()) return call->Finish(valid);
    // Usually the log is known to hold the position already: no need to ask for its end.
    absl::StatusOr<int64_t> known = edge.log->KnownEndOffset(min_position->partition());
    if (known.ok() && *known > min_position->offset()) {
      return ServeView(call, edge, {{min_position->partition(), min_position->offset()}}, deadline,
                       std::move(query));
    }
  } else if (!partitions.empty() && partitions.front() < 0) {
    return ServeView(call, edge, {}, deadline, std::move(query));
  }
  edge.log->FreshEndOffsets(
      std::clamp(deadline - absl::Now(), absl::Milliseconds(100), absl::Seconds(2)),
      [call, edge, min_position, partitions = std::move(partitions), deadline,
       query = std::move(query)](const std::vector<int64_t>& ends, bool inline_call) mutable {
        absl::StatusOr<Targets> targets = TargetsAt(ends, min_position, partitions);
        if (!targets.ok()) return call->Finish(targets.status());
        if (inline_call) return ServeView(call, edge, *std::move(targets), deadline, query);
        // Off the log's thread: the query may run at once.
        edge.waits->Run([call, edge, targets = *std::move(targets), deadline, query] {
          ServeView(call, edge, targets, deadline, query);
        });
      });
}

std::vector<int32_t> PartitionOf(const std::string& lead_id, int32_t partitions) {
  if (!common::IsLeadId(lead_id)) return {-1};  // no wait; the query reports the bad id
  return {log::PartitionForKey(lead_id, partitions)};
}

template <typename Request>
const v1::LogPosition* MinPosition(const Request& req) {
  return req.has_min_position() ? &req.min_position() : nullptr;
}

// Reads a view without waiting for it (listings whose requests carry no position).
constexpr const v1::LogPosition* kNoPosition = nullptr;
const std::vector<int32_t> kAllPartitions = {};

}  // namespace

// ---- Queries ------------------------------------------------------------------------------------

LeadQueryServiceImpl::LeadQueryServiceImpl(const projections::ViewStore* store, ViewEdge edge,
                                           int32_t partitions, std::string phone_region,
                                           privacy::Vault* vault)
    : queries_(store, std::move(phone_region), vault),
      edge_(std::move(edge)),
      partitions_(partitions) {
  Serve<v1::GetLeadRequest, v1::LeadView>(
      kLeadQueries, "GetLead", [this](UnaryCall<v1::GetLeadRequest, v1::LeadView>* call) {
        const auto& req = call->request();
        server::Serve<v1::GetLeadRequest, v1::LeadView>(
            call, edge_, MinPosition(req), PartitionOf(req.lead_id(), partitions_),
            [this, call] { return queries_.Get(call->request().lead_id()); });
      });
  Serve<v1::FindLeadRequest, v1::LeadView>(
      kLeadQueries, "FindLead", [this](UnaryCall<v1::FindLeadRequest, v1::LeadView>* call) {
        server::Serve<v1::FindLeadRequest, v1::LeadView>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.Find(call->request()); });
      });
  Serve<v1::GetLeadTimelineRequest, v1::LeadTimeline>(
      kLeadQueries, "GetLeadTimeline",
      [this](UnaryCall<v1::GetLeadTimelineRequest, v1::LeadTimeline>* call) {
        const auto& req = call->request();
        server::Serve<v1::GetLeadTimelineRequest, v1::LeadTimeline>(
            call, edge_, MinPosition(req), PartitionOf(req.lead_id(), partitions_),
            [this, call] { return queries_.Timeline(call->request().lead_id()); });
      });
  Serve<v1::ListLeadsRequest, v1::ListLeadsResponse>(
      kLeadQueries, "ListLeads",
      [this](UnaryCall<v1::ListLeadsRequest, v1::ListLeadsResponse>* call) {
        server::Serve<v1::ListLeadsRequest, v1::ListLeadsResponse>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.List(call->request()); });
      });
  Serve<v1::CountLeadsRequest, v1::CountLeadsResponse>(
      kLeadQueries, "CountLeads",
      [this](UnaryCall<v1::CountLeadsRequest, v1::CountLeadsResponse>* call) {
        server::Serve<v1::CountLeadsRequest, v1::CountLeadsResponse>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.Count(call->request()); });
      });
  Serve<v1::ListOverdueFollowUpsRequest, v1::ListOverdueFollowUpsResponse>(
      kLeadQueries, "ListOverdueFollowUps",
      [this](UnaryCall<v1::ListOverdueFollowUpsRequest, v1::ListOverdueFollowUpsResponse>* call) {
        server::Serve<v1::ListOverdueFollowUpsRequest, v1::ListOverdueFollowUpsResponse>(
            call, edge_, kNoPosition, kAllPartitions,
            [this, call] { return queries_.Overdue(call->request(), absl::Now()); });
      });
}

CustomerQueryServiceImpl::CustomerQueryServiceImpl(const projections::ViewStore* store,
                                                   ViewEdge edge, int32_t partitions)
    : queries_(store), edge_(std::move(edge)), partitions_(partitions) {
  Serve<v1::GetCustomerRequest, v1::CustomerView>(
      kCustomerQueries, "GetCustomer",
      [this](UnaryCall<v1::GetCustomerRequest, v1::CustomerView>* call) {
        const auto& req = call->request();
        std::string lead_id = req.lead_id();
        if (lead_id.empty() && common::IsCustomerId(req.customer_id())) {
          lead_id = common::LeadIdForCustomer(common::CustomerId(req.customer_id())).value();
        }
        server::Serve<v1::GetCustomerRequest, v1::CustomerView>(
            call, edge_, MinPosition(req), PartitionOf(lead_id, partitions_),
            [this, call] { return queries_.Get(call->request()); });
      });
  Serve<v1::ListCustomersRequest, v1::ListCustomersResponse>(
      kCustomerQueries, "ListCustomers",
      [this](UnaryCall<v1::ListCustomersRequest, v1::ListCustomersResponse>* call) {
        server::Serve<v1::ListCustomersRequest, v1::ListCustomersResponse>(
            call, edge_, kNoPosition, kAllPartitions,
            [this, call] { return queries_.List(call->request()); });
      });
}

FunnelQueryServiceImpl::FunnelQueryServiceImpl(const projections::FunnelProjection* funnel,
                                               ViewEdge edge)
    : funnel_(funnel), edge_(std::move(edge)) {
  Serve<v1::CohortFunnelRequest, v1::CohortFunnelReport>(
      kFunnelQueries, "GetCohortFunnel",
      [this](UnaryCall<v1::CohortFunnelRequest, v1::CohortFunnelReport>* call) {
        server::Serve<v1::CohortFunnelRequest, v1::CohortFunnelReport>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return funnel_->Cohort(call->request()); });
      });
  Serve<v1::ActivityRequest, v1::ActivityReport>(
      kFunnelQueries, "GetActivity",
      [this](UnaryCall<v1::ActivityRequest, v1::ActivityReport>* call) {
        server::Serve<v1::ActivityRequest, v1::ActivityReport>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return funnel_->Activity(call->request()); });
      });
  Serve<v1::PipelineRequest, v1::PipelineReport>(
      kFunnelQueries, "GetPipeline",
      [this](UnaryCall<v1::PipelineRequest, v1::PipelineReport>* call) {
        server::Serve<v1::PipelineRequest, v1::PipelineReport>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return funnel_->Pipeline(call->request()); });
      });
}

ReprocessingQueryServiceImpl::ReprocessingQueryServiceImpl(const projections::ViewStore* store,
                                                           ViewEdge edge)
    : queries_(store), edge_(std::move(edge)) {
  Serve<v1::ListExitsRequest, v1::ListExitsResponse>(
      kReprocessingQueries, "ListExits",
      [this](UnaryCall<v1::ListExitsRequest, v1::ListExitsResponse>* call) {
        server::Serve<v1::ListExitsRequest, v1::ListExitsResponse>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.ListExits(call->request()); });
      });
  Serve<v1::ExitSummaryRequest, v1::ExitSummary>(
      kReprocessingQueries, "GetExitSummary",
      [this](UnaryCall<v1::ExitSummaryRequest, v1::ExitSummary>* call) {
        server::Serve<v1::ExitSummaryRequest, v1::ExitSummary>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.Summary(call->request()); });
      });
  Serve<v1::RecontactQueueRequest, v1::RecontactQueueResponse>(
      kReprocessingQueries, "GetRecontactQueue",
      [this](UnaryCall<v1::RecontactQueueRequest, v1::RecontactQueueResponse>* call) {
        server::Serve<v1::RecontactQueueRequest, v1::RecontactQueueResponse>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.Queue(call->request(), absl::Now()); });
      });
  Serve<v1::WinBackRequest, v1::WinBackResponse>(
      kReprocessingQueries, "GetWinBackList",
      [this](UnaryCall<v1::WinBackRequest, v1::WinBackResponse>* call) {
        server::Serve<v1::WinBackRequest, v1::WinBackResponse>(
            call, edge_, MinPosition(call->request()), kAllPartitions,
            [this, call] { return queries_.WinBack(call->request(), absl::Now()); });
      });
}

ViewAdminServiceImpl::ViewAdminServiceImpl(
    std::vector<const projections::ProjectionRunner*> runners)
    : runners_(std::move(runners)) {
  Serve<v1::GetViewStatusRequest, v1::ViewStatus>(
      kViewAdmin, "GetViewStatus",
      [this](UnaryCall<v1::GetViewStatusRequest, v1::ViewStatus>* call) {
        for (const auto* r : runners_) {
          for (auto& p : r->Status()) *call->response()->add_partitions() = std::move(p);
        }
        call->Finish(absl::OkStatus());
      });
}

AdminServiceImpl::AdminServiceImpl(BackupFn backup) : backup_(std::move(backup)) {
  Serve<v1::BackupRequest, v1::BackupReply>(
      kAdmin, "Backup", [this](UnaryCall<v1::BackupRequest, v1::BackupReply>* call) {
        std::lock_guard<std::mutex> lock(mu_);
        if (busy_) {
          call->Finish(absl::UnavailableError(
              "a backup is being written already; try again when it is done"));
          return;
        }
        busy_ = true;
        if (running_.joinable()) running_.join();  // the previous one, finished
        running_ = std::thread([this, call] {
          absl::StatusOr<v1::BackupReply> reply = backup_(call->request().dir());
          const absl::Status status = reply.status();
          if (reply.ok()) *call->response() = *std::move(reply);
          {
            std::lock_guard<std::mutex> done(mu_);
            busy_ = false;
          }
          call->Finish(status);
        });
      });
}

AdminServiceImpl::~AdminServiceImpl() {
  std::thread running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running = std::move(running_);
  }
  if (running.joinable()) running.join();
}

}  // namespace leadflow::server

// gRPC service implementations (callback API). Thin: each RPC wraps its request into a Command
// and hands it to the writer; all rules live in the reducer, all I/O in the writer and log.
#ifndef LEADFLOW_SERVICES_SERVER_SERVICES_H_
#define LEADFLOW_SERVICES_SERVER_SERVICES_H_

#include <memory>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "projections/reprocessing/reprocessing_view.h"
#include "projections/runner/runner.h"
#include "services/command/writer.h"
#include "services/metrics/metrics.h"

namespace leadflow::server {

// Parses a request into a protobuf arena owned by the call: a batch of thousands of commands is
// then a few block allocations instead of several heap allocations per string, and freeing it is
// dropping the blocks. The response stays on the heap (the writer's replies are moved into it).
template <typename Request, typename Response>
class ArenaRequestAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder; }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(&response_);
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions o;
      o.start_block_size = 4096;
      o.max_block_size = 1 << 20;
      return o;
    }
    google::protobuf::Arena arena_;  // declared before response_: destroyed after it
    Response response_;
  };
};

class LeadCommandServiceImpl final : public v1::LeadCommandService::CallbackService {
 public:
  // `metrics` may be null (no metrics).
  LeadCommandServiceImpl(command::CommandWriter* writer, metrics::Metrics* metrics)
      : writer_(writer), metrics_(metrics) {
    SetMessageAllocatorFor_ExecuteBatch(&batch_allocator_);
  }

#define LEADFLOW_COMMAND_RPC(Rpc, Message, field)                                        \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* ctx, const v1::Message* req, \
                                v1::CommandReply* reply) override {                       \
    auto command = std::make_shared<v1::Command>();                                       \
    *command->mutable_##field() = *req;                                                   \
    return Run(ctx, std::move(command), reply);                                           \
  }
  LEADFLOW_COMMAND_RPC(CaptureLead, CaptureLead, capture_lead)
  LEADFLOW_COMMAND_RPC(RecordInquiry, RecordInquiry, record_inquiry)
  LEADFLOW_COMMAND_RPC(UpdateContactDetails, UpdateContactDetails, update_contact_details)
  LEADFLOW_COMMAND_RPC(AssignLead, AssignLead, assign_lead)
  LEADFLOW_COMMAND_RPC(SetTemperature, SetTemperature, set_temperature)
  LEADFLOW_COMMAND_RPC(LogInteraction, LogInteraction, log_interaction)
  LEADFLOW_COMMAND_RPC(ScheduleFollowUp, ScheduleFollowUp, schedule_follow_up)
  LEADFLOW_COMMAND_RPC(CompleteFollowUp, CompleteFollowUp, complete_follow_up)
  LEADFLOW_COMMAND_RPC(QualifyLead, QualifyLead, qualify_lead)
  LEADFLOW_COMMAND_RPC(ChangeStage, ChangeStage, change_stage)
  LEADFLOW_COMMAND_RPC(RejectLead, RejectLead, reject_lead)
  LEADFLOW_COMMAND_RPC(PostponeLead, PostponeLead, postpone_lead)
  LEADFLOW_COMMAND_RPC(DisqualifyLead, DisqualifyLead, disqualify_lead)
  LEADFLOW_COMMAND_RPC(ReactivateLead, ReactivateLead, reactivate_lead)
  LEADFLOW_COMMAND_RPC(MergeLead, MergeLead, merge_lead)
  LEADFLOW_COMMAND_RPC(ConvertLead, ConvertLead, convert_lead)
  LEADFLOW_COMMAND_RPC(UpdateCustomerProfile, UpdateCustomerProfile, update_customer_profile)
  LEADFLOW_COMMAND_RPC(RecordPurchase, RecordPurchase, record_purchase)
  LEADFLOW_COMMAND_RPC(RecordNps, RecordNps, record_nps)
#undef LEADFLOW_COMMAND_RPC

  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx, const v1::Command* req,
                                    v1::CommandReply* reply) override {
    // The request outlives Finish(); no copy needed.
    return Run(ctx, std::shared_ptr<const v1::Command>(std::shared_ptr<void>(), req), reply);
  }

  grpc::ServerUnaryReactor* ExecuteBatch(grpc::CallbackServerContext* ctx,
                                         const v1::CommandBatch* req,
                                         v1::CommandBatchReply* reply) override;

 private:
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx,
                                std::shared_ptr<const v1::Command> command,
                                v1::CommandReply* reply);
  // Counts the command's outcome (metrics) and logs it at debug level.
  void Observe(const v1::Command& command, const absl::StatusOr<v1::CommandReply>& result,
               absl::Duration latency, bool count = true);
  command::CommandWriter* writer_;
  metrics::Metrics* metrics_;
  ArenaRequestAllocator<v1::CommandBatch, v1::CommandBatchReply> batch_allocator_;
};

// Read-side services over the views. A query with min_position waits until its view applied
// that position; without one it waits until the view applied the log as of the request (fresh
// reads). Either wait is bounded by the call's deadline and 10 s, then UNAVAILABLE.
class LeadQueryServiceImpl final : public v1::LeadQueryService::CallbackService {
 public:
  LeadQueryServiceImpl(const projections::ViewStore* store,
                       const projections::ProjectionRunner* runner, int32_t partitions)
      : queries_(store), runner_(runner), partitions_(partitions) {}
  grpc::ServerUnaryReactor* GetLead(grpc::CallbackServerContext* ctx,
                                    const v1::GetLeadRequest* req, v1::LeadView* reply) override;
  grpc::ServerUnaryReactor* FindLead(grpc::CallbackServerContext* ctx,
                                     const v1::FindLeadRequest* req,
                                     v1::LeadView* reply) override;
  grpc::ServerUnaryReactor* GetLeadTimeline(grpc::CallbackServerContext* ctx,
                                            const v1::GetLeadTimelineRequest* req,
                                            v1::LeadTimeline* reply) override;
  grpc::ServerUnaryReactor* ListLeads(grpc::CallbackServerContext* ctx,
                                      const v1::ListLeadsRequest* req,
                                      v1::ListLeadsResponse* reply) override;
  grpc::ServerUnaryReactor* ListOverdueFollowUps(grpc::CallbackServerContext* ctx,
                                                 const v1::ListOverdueFollowUpsRequest* req,
                                                 v1::ListOverdueFollowUpsResponse* reply) override;

 private:
  projections::LeadQueries queries_;
  const projections::ProjectionRunner* runner_;
  int32_t partitions_;
};

class CustomerQueryServiceImpl final : public v1::CustomerQueryService::CallbackService {
 public:
  CustomerQueryServiceImpl(const projections::ViewStore* store,
                           const projections::ProjectionRunner* runner, int32_t partitions)
      : queries_(store), runner_(runner), partitions_(partitions) {}
  grpc::ServerUnaryReactor* GetCustomer(grpc::CallbackServerContext* ctx,
                                        const v1::GetCustomerRequest* req,
                                        v1::CustomerView* reply) override;
  grpc::ServerUnaryReactor* ListCustomers(grpc::CallbackServerContext* ctx,
                                          const v1::ListCustomersRequest* req,
                                          v1::ListCustomersResponse* reply) override;

 private:
  projections::CustomerQueries queries_;
  const projections::ProjectionRunner* runner_;
  int32_t partitions_;
};

class FunnelQueryServiceImpl final : public v1::FunnelQueryService::CallbackService {
 public:
  FunnelQueryServiceImpl(const projections::FunnelProjection* funnel,
                         const projections::ProjectionRunner* runner)
      : funnel_(funnel), runner_(runner) {}
  grpc::ServerUnaryReactor* GetCohortFunnel(grpc::CallbackServerContext* ctx,
                                            const v1::CohortFunnelRequest* req,
                                            v1::CohortFunnelReport* reply) override;
  grpc::ServerUnaryReactor* GetActivity(grpc::CallbackServerContext* ctx,
                                        const v1::ActivityRequest* req,
                                        v1::ActivityReport* reply) override;
  grpc::ServerUnaryReactor* GetPipeline(grpc::CallbackServerContext* ctx,
                                        const v1::PipelineRequest* req,
                                        v1::PipelineReport* reply) override;

 private:
  const projections::FunnelProjection* funnel_;
  const projections::ProjectionRunner* runner_;
};

class ReprocessingQueryServiceImpl final
    : public v1::ReprocessingQueryService::CallbackService {
 public:
  ReprocessingQueryServiceImpl(const projections::ViewStore* store,
                               const projections::ProjectionRunner* runner)
      : queries_(store), runner_(runner) {}
  grpc::ServerUnaryReactor* ListExits(grpc::CallbackServerContext* ctx,
                                      const v1::ListExitsRequest* req,
                                      v1::ListExitsResponse* reply) override;
  grpc::ServerUnaryReactor* GetExitSummary(grpc::CallbackServerContext* ctx,
                                           const v1::ExitSummaryRequest* req,
                                           v1::ExitSummary* reply) override;
  grpc::ServerUnaryReactor* GetRecontactQueue(grpc::CallbackServerContext* ctx,
                                              const v1::RecontactQueueRequest* req,
                                              v1::RecontactQueueResponse* reply) override;
  grpc::ServerUnaryReactor* GetWinBackList(grpc::CallbackServerContext* ctx,
                                           const v1::WinBackRequest* req,
                                           v1::WinBackResponse* reply) override;

 private:
  projections::ReprocessingQueries queries_;
  const projections::ProjectionRunner* runner_;
};

class ViewAdminServiceImpl final : public v1::ViewAdminService::CallbackService {
 public:
  explicit ViewAdminServiceImpl(std::vector<const projections::ProjectionRunner*> runners)
      : runners_(std::move(runners)) {}
  grpc::ServerUnaryReactor* GetViewStatus(grpc::CallbackServerContext* ctx,
                                          const v1::GetViewStatusRequest* req,
                                          v1::ViewStatus* reply) override;

 private:
  std::vector<const projections::ProjectionRunner*> runners_;
};

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_SERVICES_H_

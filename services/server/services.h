// gRPC service implementations (callback API). Thin: each RPC wraps its request into a Command
// and hands it to the writer; all rules live in the reducer, all I/O in the writer and log.
#ifndef LEADFLOW_SERVICES_SERVER_SERVICES_H_
#define LEADFLOW_SERVICES_SERVER_SERVICES_H_

#include <memory>

#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/command/writer.h"

namespace leadflow::server {

class LeadCommandServiceImpl final : public v1::LeadCommandService::CallbackService {
 public:
  explicit LeadCommandServiceImpl(command::CommandWriter* writer) : writer_(writer) {}

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
  command::CommandWriter* writer_;
};

// Lead reads served from the writer's state (the thin read path of the walking skeleton; the
// lead view projection replaces it).
class LeadQueryServiceImpl final : public v1::LeadQueryService::CallbackService {
 public:
  explicit LeadQueryServiceImpl(command::CommandWriter* writer) : writer_(writer) {}
  grpc::ServerUnaryReactor* GetLead(grpc::CallbackServerContext* ctx,
                                    const v1::GetLeadRequest* req,
                                    v1::LeadSummary* reply) override;

 private:
  command::CommandWriter* writer_;
};

// Renders a writer snapshot as the LeadSummary message.
v1::LeadSummary ToSummary(const command::LeadSnapshot& snapshot);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_SERVICES_H_

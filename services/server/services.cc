#include "services/server/services.h"

#include "absl/strings/str_cat.h"
#include "services/common/time_util.h"
#include "services/server/grpc_status.h"

namespace leadflow::server {

// The handler returns at once; the reply is sent from the writer's committer thread when the
// command is durably appended (or refused), so no gRPC thread waits on a disk.
grpc::ServerUnaryReactor* LeadCommandServiceImpl::Run(grpc::CallbackServerContext* ctx,
                                                      std::shared_ptr<const v1::Command> command,
                                                      v1::CommandReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const v1::Command& ref = *command;
  writer_->Submit(ref, [reactor, reply, keep = std::move(command)](
                           absl::StatusOr<v1::CommandReply> result) {
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
  auto results = writer_->ExecuteBatch(absl::MakeConstSpan(commands));
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

v1::LeadSummary ToSummary(const command::LeadSnapshot& snapshot) {
  const lead::LeadState& l = snapshot.lead;
  v1::LeadSummary s;
  s.set_lead_id(l.lead_id);
  s.set_version(l.version);
  s.set_status(l.status);
  s.set_stage(l.stage);
  s.set_temperature(l.temperature);
  s.mutable_person()->set_full_name(l.full_name);
  s.set_company(l.company);
  s.set_title(l.title);
  s.set_email(l.email);
  s.set_phone(l.phone);
  s.set_source_channel(l.source_channel);
  s.set_origin_type(l.origin_type);
  s.set_campaign(l.campaign);
  s.set_owner(l.owner);
  s.set_team(l.team);
  *s.mutable_captured_at() = common::ToProto(l.captured_at);
  *s.mutable_status_changed_at() = common::ToProto(l.status_changed_at);
  s.set_interaction_count(l.interaction_count);
  s.set_customer_id(l.customer_id);
  s.set_merged_into(l.merged_into);
  if (l.status == v1::LEAD_STATUS_POSTPONED) *s.mutable_revisit_at() = common::ToProto(l.revisit_at);
  for (const auto& [id, f] : l.open_follow_ups) {
    v1::FollowUp* out = s.add_open_follow_ups();
    out->set_follow_up_id(id);
    *out->mutable_due_at() = common::ToProto(f.due_at);
    out->set_kind(f.kind);
    out->set_note(f.note);
  }
  *s.mutable_last_position() = snapshot.last_position;
  return s;
}

grpc::ServerUnaryReactor* LeadQueryServiceImpl::GetLead(grpc::CallbackServerContext* ctx,
                                                        const v1::GetLeadRequest* req,
                                                        v1::LeadSummary* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<command::LeadSnapshot> snap = writer_->GetLead(req->lead_id());
  if (snap.ok()) {
    *reply = ToSummary(*snap);
    reactor->Finish(grpc::Status::OK);
  } else {
    reactor->Finish(ToGrpcStatus(snap.status()));
  }
  return reactor;
}

}  // namespace leadflow::server

// EventStreamService.StreamEvents: every event of the log for downstream systems, from any
// position, in log order within each partition (proto/leadflow/v1/stream.proto). Each stream
// reads on its own thread and writes with gRPC's flow control (one message in flight), so a slow
// client slows only its own stream and no gRPC thread ever waits.
#ifndef LEADFLOW_SERVICES_SERVER_EVENT_STREAM_H_
#define LEADFLOW_SERVICES_SERVER_EVENT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>

#include "leadflow/v1/stream.grpc.pb.h"
#include "services/log/event_log.h"
#include "services/privacy/vault.h"
#include "services/server/auth_guard.h"

namespace leadflow::server {

class EventStreamServiceImpl final : public v1::EventStreamService::CallbackService {
 public:
  // At most this many streams at once; more are RESOURCE_EXHAUSTED.
  static constexpr int kMaxStreams = 64;

  // `vault`: opens sealed personal fields (erased leads' stay absent); null: events as stored.
  explicit EventStreamServiceImpl(log::EventLog* log, privacy::Vault* vault = nullptr)
      : log_(log), vault_(vault) {}
  void set_guard(std::shared_ptr<const AuthGuard> guard) { guard_ = std::move(guard); }

  grpc::ServerWriteReactor<v1::StreamedEvent>* StreamEvents(
      grpc::CallbackServerContext* ctx, const v1::StreamEventsRequest* request) override;

 private:
  log::EventLog* log_;
  privacy::Vault* vault_;
  std::shared_ptr<const AuthGuard> guard_;
  std::shared_ptr<std::atomic<int>> open_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_EVENT_STREAM_H_

// absl::Status -> grpc::Status at the edge. The canonical codes are numerically identical, so
// the mapping is exact; messages pass through (they name the field or the rule), bounded.
#ifndef LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_
#define LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/rpc/status.pb.h"

namespace leadflow::server {

// Longest status message sent. A message travels in gRPC metadata, whose limit (16 KiB by
// default) fails the whole call as RESOURCE_EXHAUSTED on the client; messages name a field and
// quote at most a short prefix, so this only cuts a message that broke that rule.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `message` cut to kMaxStatusMessageBytes on a UTF-8 boundary, saying so.
inline std::string BoundedMessage(absl::string_view message) {
  if (message.size() <= kMaxStatusMessageBytes) return std::string(message);
  size_t end = kMaxStatusMessageBytes;
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(message.substr(0, end), "... (cut at ", end, " of ", message.size(),
                      " bytes)");
}

// Typed payloads of the absl::Status (e.g. leadflow.v1.VersionConflict on ABORTED) travel as
// google.rpc.Status details, the standard gRPC rich-error form.
inline grpc::Status ToGrpcStatus(const absl::Status& status_in) {
  if (status_in.ok()) return grpc::Status::OK;
  absl::Status status(status_in.code(), BoundedMessage(status_in.message()));
  status_in.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    status.SetPayload(type_url, payload);
  });
  google::rpc::Status rich;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* any = rich.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (rich.details_size() == 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  rich.set_code(static_cast<int32_t>(status.code()));
  rich.set_message(std::string(status.message()));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      rich.SerializeAsString());
}

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_

// absl::Status -> grpc::Status at the edge. The canonical codes are numerically identical, so
// the mapping is exact; messages pass through unchanged (they name the field or the rule).
#ifndef LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_
#define LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "google/rpc/status.pb.h"

namespace leadflow::server {

// Typed payloads of the absl::Status (e.g. leadflow.v1.VersionConflict on ABORTED) travel as
// google.rpc.Status details, the standard gRPC rich-error form.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
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

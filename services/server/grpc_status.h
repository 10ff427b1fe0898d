// absl::Status -> grpc::Status at the edge. The canonical codes are numerically identical, so
// the mapping is exact; messages pass through unchanged (they name the field or the rule).
#ifndef LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_
#define LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace leadflow::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_GRPC_STATUS_H_

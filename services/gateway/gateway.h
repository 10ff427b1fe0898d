// The gateway role: one address for clients in a multi-process deployment. It forwards each
// call, unchanged (bytes in, bytes out), to the process serving that service: commands to the
// writer, lead queries to the lead-view process, and so on. GetViewStatus is asked of every view
// process and the answers merged. Deadlines and cancellation pass through; an upstream that
// cannot be reached gives UNAVAILABLE naming it.
#ifndef LEADFLOW_SERVICES_GATEWAY_GATEWAY_H_
#define LEADFLOW_SERVICES_GATEWAY_GATEWAY_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace leadflow::gateway {

struct Upstream {
  std::string role;     // "writer", "lead-view", ... (for messages)
  std::string address;  // HOST:PORT
};

struct GatewayOptions {
  // Full service name ("leadflow.v1.LeadQueryService") -> where it is served.
  std::map<std::string, Upstream> routes;
  // How to reach the upstreams (TLS, with a client certificate for mTLS); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

class Gateway final : public grpc::CallbackGenericService {
 public:
  explicit Gateway(const GatewayOptions& options);
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  // Each upstream's health for the services it serves (grpc.health.v1), asked now:
  // service name -> serving. A service whose process cannot be reached is not serving.
  std::map<std::string, bool> CheckUpstreams();

  struct Route {
    Upstream upstream;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::GenericStub> stub;
    std::unique_ptr<grpc::health::v1::Health::Stub> health;
  };

 private:
  std::map<std::string, Route> routes_;  // by service name
  std::vector<Route*> view_routes_;      // distinct view processes, for GetViewStatus
};

}  // namespace leadflow::gateway

#endif  // LEADFLOW_SERVICES_GATEWAY_GATEWAY_H_

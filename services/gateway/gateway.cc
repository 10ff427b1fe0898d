#include "services/gateway/gateway.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace leadflow::gateway {
namespace {

constexpr char kViewAdminService[] = "leadflow.v1.ViewAdminService";
// Gateways a call has passed through (set by each gateway on its upstream call).
constexpr char kHopsHeader[] = "leadflow-gateway-hops";
constexpr int kMaxHops = 3;

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

grpc::ByteBuffer FromString(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// "/leadflow.v1.LeadQueryService/GetLead" -> "leadflow.v1.LeadQueryService".
std::string ServiceOf(const std::string& method) {
  if (method.size() < 2 || method[0] != '/') return "";
  const size_t slash = method.find('/', 1);
  return slash == std::string::npos ? "" : method.substr(1, slash - 1);
}

// Forwards one unary call to one or more upstreams; several answers (GetViewStatus) are merged by
// concatenating their bytes, which for Protocol Buffers appends the repeated fields.
class ForwardReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ForwardReactor(grpc::GenericCallbackServerContext* ctx, std::vector<Gateway::Route*> targets)
      : ctx_(ctx), targets_(std::move(targets)), calls_(targets_.size()) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "gateway: no request message"));
      return;
    }
    // Each gateway counts itself in a header: a call that went round a loop of gateways (each
    // configured with the other's address) is refused instead of circling until its deadline.
    int hops = 0;
    if (auto it = ctx_->client_metadata().find(kHopsHeader); it != ctx_->client_metadata().end()) {
      if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &hops)) {
        hops = kMaxHops;
      }
    }
    if (hops >= kMaxHops) {
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("gateway: this call already passed through ", hops,
                                       " gateways: a forwarding loop; check the gateway.* "
                                       "addresses of the gateway processes")));
      return;
    }
    {
      // One share per call, and one for this starter: the reactor cannot finish (and be
      // deleted) while the loop below still runs, however fast the calls complete.
      absl::MutexLock lock(&mu_);
      pending_ = targets_.size() + 1;
    }
    const auto auth = ctx_->client_metadata().find("authorization");
    // Not under mu_: a call's completion may run on any thread, even before UnaryCall returns.
    for (size_t i = 0; i < targets_.size(); ++i) {
      Call& call = calls_[i];
      if (ctx_->deadline() != std::chrono::system_clock::time_point::max()) {
        call.context.set_deadline(ctx_->deadline());
      }
      call.context.AddMetadata(kHopsHeader, std::to_string(hops + 1));
      // The caller's credentials go with the call: each process verifies them itself.
      if (auth != ctx_->client_metadata().end()) {
        call.context.AddMetadata("authorization",
                                 std::string(auth->second.data(), auth->second.size()));
      }
      targets_[i]->stub->UnaryCall(&call.context, ctx_->method(), grpc::StubOptions(), &request_,
                                   &call.response,
                                   [this, i](grpc::Status status) { Done(i, std::move(status)); });
    }
    Arrive();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    for (Call& call : calls_) call.context.TryCancel();
  }

  void OnDone() override { delete this; }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status;
  };

  void Done(size_t i, grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      calls_[i].status = std::move(status);
    }
    Arrive();
  }

  // Counts one share in; the last one answers the client.
  void Arrive() {
    {
      absl::MutexLock lock(&mu_);
      if (--pending_ > 0) return;
    }
    // Every upstream answered: the first failure wins, else the (merged) reply.
    for (size_t j = 0; j < calls_.size(); ++j) {
      const grpc::Status& s = calls_[j].status;
      if (s.ok()) continue;
      std::string message = s.error_message();
      if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
          s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        message = absl::StrCat("gateway: ", targets_[j]->upstream.role, " at ",
                               targets_[j]->upstream.address, ": ", message);
      }
      Finish(grpc::Status(s.error_code(), message, s.error_details()));
      return;
    }
    if (calls_.size() == 1) {
      reply_ = calls_[0].response;
    } else {
      std::string merged;
      for (Call& call : calls_) merged += ToString(call.response);
      reply_ = FromString(merged);
    }
    StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
  }

  grpc::GenericCallbackServerContext* ctx_;
  std::vector<Gateway::Route*> targets_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
  absl::Mutex mu_;
  std::vector<Call> calls_;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
};

class RefuseReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit RefuseReactor(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

Gateway::Gateway(const GatewayOptions& options) {
  std::map<std::string, Route*> by_address;
  for (const auto& [service, upstream] : options.routes) {
    Route& route = routes_[service];
    route.upstream = upstream;
    route.channel = grpc::CreateChannel(upstream.address, options.credentials != nullptr
                                                              ? options.credentials
                                                              : grpc::InsecureChannelCredentials());
    route.stub = std::make_unique<grpc::GenericStub>(route.channel);
    route.health = grpc::health::v1::Health::NewStub(route.channel);
    if (absl::StrContains(upstream.role, "view") && !by_address.count(upstream.address)) {
      by_address[upstream.address] = &route;
      view_routes_.push_back(&route);
    }
  }
}

grpc::ServerGenericBidiReactor* Gateway::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  const std::string service = ServiceOf(ctx->method());
  if (service == kViewAdminService) {
    if (view_routes_.empty()) {
      return new RefuseReactor(
          grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "gateway: no view process configured"));
    }
    return new ForwardReactor(ctx, view_routes_);
  }
  auto it = routes_.find(service);
  if (it == routes_.end()) {
    return new RefuseReactor(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                     absl::StrCat("gateway: no process configured for ",
                                  service.empty() ? ctx->method() : service,
                                  " (see gateway.* in docs/configuration.md)")));
  }
  return new ForwardReactor(ctx, {&it->second});
}

std::map<std::string, bool> Gateway::CheckUpstreams() {
  std::map<std::string, bool> out;
  for (auto& [service, route] : routes_) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = route.health->Check(&context, request, &response);
    out[service] =
        status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }
  return out;
}

}  // namespace leadflow::gateway

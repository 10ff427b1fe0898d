// Every leadflow RPC is served from raw bytes (RawService below): the request is parsed here,
// on an arena owned by the call, so
//  - bytes that are not the request message are INVALID_ARGUMENT naming the message type
//    (gRPC's own parse answers UNIMPLEMENTED with an empty message in the callback API);
//  - unknown fields are dropped on arrival (a retry from a newer client that sends fields this
//    build does not know fingerprints the same as the original);
//  - the response is serialized when the call finishes, from whichever thread finishes it.
// A call is finished exactly once (Finish); it deletes itself when gRPC is done with it.
#ifndef LEADFLOW_SERVICES_SERVER_UNARY_CALL_H_
#define LEADFLOW_SERVICES_SERVER_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/logging.h"
#include "services/auth/principal.h"
#include "services/auth/redact.h"
#include "services/server/auth_guard.h"
#include "services/server/grpc_status.h"

namespace leadflow::server {

// One call: `Req` is what the handler reads (for command RPCs a leadflow.v1.Command whose body
// the bytes are parsed into), `Resp` what it answers.
template <typename Req, typename Resp>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  using Target = google::protobuf::Message* (*)(Req*);

  UnaryCall(grpc::CallbackServerContext* ctx, grpc::ByteBuffer* out)
      : ctx_(ctx), out_(out), arena_(ArenaOptions()) {
    request_ = google::protobuf::Arena::CreateMessage<Req>(&arena_);
  }

  // Parses `in` into the request (or into target(request)); on failure finishes the call with
  // INVALID_ARGUMENT and returns false.
  bool Parse(const grpc::ByteBuffer* in, Target target) {
    google::protobuf::Message* into = target != nullptr ? target(request_) : request_;
    bool ok = true;
    if (in != nullptr && in->Valid()) {
      grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(in));
      // protobuf logs an ERROR line for each string field that is not UTF-8: a client could
      // flood the log with them. The caller gets INVALID_ARGUMENT instead.
      google::protobuf::LogSilencer quiet;
      ok = reader.status().ok() && into->ParseFromZeroCopyStream(&reader);
    }
    if (!ok) {
      Finish(absl::InvalidArgumentError(
          absl::StrCat("request: not a valid ", into->GetDescriptor()->full_name(),
                       " message (malformed protobuf, or a string field that is not UTF-8)")));
      return false;
    }
    into->DiscardUnknownFields();
    return true;
  }

  // Authenticates the caller and checks that its role may call `method` (the full gRPC name
  // without the leading slash); on failure finishes the call (UNAUTHENTICATED or
  // PERMISSION_DENIED) and returns false. A null guard: no authentication (in-process tests).
  bool Admit(const AuthGuard* guard, absl::string_view method) {
    if (guard == nullptr) return true;
    absl::StatusOr<auth::Principal> who = guard->Authenticate(*ctx_);
    if (!who.ok()) {
      Finish(who.status());
      return false;
    }
    policy_ = guard->policy();
    if (absl::Status allowed = policy_->CheckMethod(*who, method); !allowed.ok()) {
      Finish(allowed);
      return false;
    }
    principal_ = *std::move(who);
    return true;
  }

  grpc::CallbackServerContext* context() const { return ctx_; }
  const Req& request() const { return *request_; }
  Req* mutable_request() { return request_; }
  // The authenticated caller and the policy that admitted it; null without authentication.
  const auth::Principal* principal() const { return principal_ ? &*principal_ : nullptr; }
  const auth::Policy* policy() const { return policy_.get(); }
  Resp* response() { return &response_; }
  google::protobuf::Arena* arena() { return &arena_; }

  // Sends `status` (and, if OK, the response). Call once.
  void Finish(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      on_cancel_ = nullptr;
    }
    if (!status.ok()) {
      grpc::ServerUnaryReactor::Finish(ToGrpcStatus(status));
      return;
    }
    // A role that sees personal data redacted gets none, whatever the method answers.
    if (principal_ && policy_ != nullptr && policy_->RedactsPersonal(principal_->role)) {
      auth::RedactPersonal(&response_);
    }
    bool own = false;
    grpc::Status serialized = grpc::SerializationTraits<Resp>::Serialize(response_, out_, &own);
    grpc::ServerUnaryReactor::Finish(serialized);
  }

  // Runs when the client cancels or its deadline passes, if the call is still open: a call
  // that waits for a view sets it, to stop waiting and finish.
  void set_on_cancel(std::function<void()> f) {
    absl::MutexLock lock(&mu_);
    on_cancel_ = std::move(f);
  }
  void OnCancel() override {
    std::function<void()> f;
    {
      absl::MutexLock lock(&mu_);
      f = std::move(on_cancel_);
    }
    if (f) f();
  }
  void OnDone() override { delete this; }

 private:
  static google::protobuf::ArenaOptions ArenaOptions() {
    google::protobuf::ArenaOptions o;
    o.start_block_size = 1024;
    o.max_block_size = 1 << 20;
    return o;
  }

  grpc::CallbackServerContext* ctx_;
  grpc::ByteBuffer* out_;
  google::protobuf::Arena arena_;  // before the messages on it
  Req* request_;
  Resp response_;
  std::optional<auth::Principal> principal_;
  std::shared_ptr<const auth::Policy> policy_;
  absl::Mutex mu_;
  std::function<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
};

// A generated gRPC service (`Base`, e.g. v1::LeadCommandService::Service) whose methods are
// served through UnaryCall. Each method must be registered with Serve in the constructor; one
// left out answers UNIMPLEMENTED.
template <typename Base>
class RawService : public Base {
 public:
  // Every call is admitted by `guard` (authentication and the method's authorization) before
  // its request is read. Set before the server starts; null: no authentication.
  void set_guard(std::shared_ptr<const AuthGuard> guard) { guard_ = std::move(guard); }

 protected:
  // Serves `method` of `service` (its full name): `handler` gets the parsed call and finishes it
  // (now or later, from any thread). `target` picks where in Req the bytes are parsed (nullptr:
  // Req itself).
  template <typename Req, typename Resp>
  void Serve(const char* service, const char* method,
             std::function<void(UnaryCall<Req, Resp>*)> handler,
             typename UnaryCall<Req, Resp>::Target target = nullptr) {
    this->MarkMethodRawCallback(
        MethodIndex(service, method),
        new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
            [this, handler = std::move(handler), target, full = absl::StrCat(service, "/", method)](
                grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                grpc::ByteBuffer* out) {
              auto* call = new UnaryCall<Req, Resp>(ctx, out);
              if (call->Admit(guard_.get(), full) && call->Parse(in, target)) handler(call);
              return call;
            }));
  }

  std::shared_ptr<const AuthGuard> guard_;

 private:
  // The method's index in its service, as the generated code numbers them (declaration order).
  static int MethodIndex(const char* service, const char* method);
};

// The services' descriptors: linked into every binary that serves them (nothing else refers to
// the file, so a static link would drop it and reflection could not describe the services).
const google::protobuf::ServiceDescriptor* FindServiceDescriptor(const std::string& full_name);

template <typename Base>
int RawService<Base>::MethodIndex(const char* service, const char* method) {
  const google::protobuf::ServiceDescriptor* s = FindServiceDescriptor(service);
  const google::protobuf::MethodDescriptor* m =
      s != nullptr ? s->FindMethodByName(method) : nullptr;
  if (m == nullptr) {
    // A programming error (a misspelt name), caught by the edge tests at once.
    std::fprintf(stderr, "leadflow: no method %s/%s\n", service, method);
    std::abort();
  }
  return m->index();
}

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_UNARY_CALL_H_

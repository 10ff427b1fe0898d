// leadctl's connection to leadflow: the global flags, credentials, the session a subcommand
// runs in, and how a failed call is reported (exit codes, messages, hints).
#ifndef LEADFLOW_TOOLS_LEADCTL_CLIENT_H_
#define LEADFLOW_TOOLS_LEADCTL_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tools/leadctl/parse.h"

namespace CLI {
class App;
}  // namespace CLI

namespace leadflow::leadctl {

// Exit codes: 0 ok; 1 refused by the server (the message says why); 2 bad usage or input;
// 3 server unreachable or timed out (safe to retry with the same --id).
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;

// The global flags (accepted anywhere on the command line).
struct Global {
  std::string server;
  bool json = false;
  bool csv = false;
  std::string actor;
  int timeout_seconds = 30;
  // Credentials: the bearer token sent with every call (empty: none) and TLS files.
  std::string token, token_file, data_dir;
  std::string ca, cert, key;
  bool tls = false;
};

// The bearer token: --token, $LEADFLOW_TOKEN, --token-file / $LEADFLOW_TOKEN_FILE, else the
// local admin token `leadflow serve` wrote under --data-dir (default ./leadflow-data). Empty if
// none is found (an authenticating server then answers UNAUTHENTICATED).
absl::StatusOr<std::string> FindToken(const Global& g);
// Adds the caller's token to a call.
void Authorize(grpc::ClientContext& ctx, const Global& g);
// Plaintext, or TLS when --tls or --ca is given (with --cert/--key: a client certificate).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const Global& g);

// What a subcommand runs with: the global flags, the channel, and one call context with the
// deadline (--timeout) and the token (streams make their own).
struct Session {
  const Global& g;
  std::shared_ptr<grpc::Channel> channel;
  grpc::ClientContext& ctx;
};

// One leadctl subcommand: what runs when the command line chose it.
struct Verb {
  CLI::App* cmd = nullptr;
  std::function<int(Session&)> run;
};

// Reports a failed call on stderr (and as JSON with --json) with a hint where one helps;
// returns the exit code (kExitUnavailable for a transient failure, else kExitRefused).
int Fail(const grpc::Status& st, const Global& g);
// Reports bad usage or input; returns kExitUsage.
int Usage(const absl::Status& st);
// A message as indented JSON with the proto field names (--json).
std::string Json(const google::protobuf::Message& m);

// Finishes a call: its failure (Fail), else its reply as JSON (--json) or as `print` prints it
// for people. Returns the exit code.
template <typename Reply, typename Print>
int Answer(const Global& g, const grpc::Status& st, const Reply& reply, Print print) {
  if (!st.ok()) return Fail(st, g);
  if (g.json) {
    std::cout << Json(reply);
  } else {
    print(reply);
  }
  return 0;
}

// Parses an enum flag's value into `out`; an empty value leaves `out` as it is.
template <typename E>
absl::Status SetEnum(const std::string& flag, const std::string& text,
                     const google::protobuf::EnumDescriptor* d, E* out) {
  if (text.empty()) return absl::OkStatus();
  auto v = ParseEnum(flag, d, text);
  if (!v.ok()) return v.status();
  *out = static_cast<E>(*v);
  return absl::OkStatus();
}

}  // namespace leadflow::leadctl

#endif  // LEADFLOW_TOOLS_LEADCTL_CLIENT_H_

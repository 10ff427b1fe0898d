#include "tools/leadctl/client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/status.pb.h"
#include "leadflow/v1/commands.pb.h"

namespace leadflow::leadctl {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::string> FindToken(const Global& g) {
  if (!g.token.empty()) return g.token;
  if (const char* t = std::getenv("LEADFLOW_TOKEN"); t != nullptr && *t != '\0')
    return std::string(t);
  std::string file = g.token_file;
  if (file.empty()) {
    if (const char* f = std::getenv("LEADFLOW_TOKEN_FILE"); f != nullptr) file = f;
  }
  const bool explicit_file = !file.empty();
  if (file.empty()) file = (std::filesystem::path(g.data_dir) / "auth" / "admin.token").string();
  std::ifstream in(file);
  if (!in) {
    if (explicit_file)
      return absl::InvalidArgumentError(absl::StrCat("--token-file: cannot read ", file));
    return std::string();
  }
  std::string token;
  std::getline(in, token);
  return std::string(absl::StripAsciiWhitespace(token));
}

// Adds the caller's token to a call.
void Authorize(grpc::ClientContext& ctx, const Global& g) {
  if (!g.token.empty()) ctx.AddMetadata("authorization", "Bearer " + g.token);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const Global& g) {
  if (!g.tls && g.ca.empty() && g.cert.empty()) return grpc::InsecureChannelCredentials();
  if (g.cert.empty() != g.key.empty()) {
    return absl::InvalidArgumentError("--cert and --key: give both (a client certificate)");
  }
  grpc::SslCredentialsOptions o;
  if (!g.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--ca", g.ca);
    if (!ca.ok()) return ca.status();
    o.pem_root_certs = *ca;
  }
  if (!g.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("--cert", g.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("--key", g.key);
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *cert;
    o.pem_private_key = *key;
  }
  return grpc::SslCredentials(o);
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

int Fail(const grpc::Status& st, const Global& g) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(st.error_code());
  const std::string name = code >= 0 && code <= 16 ? kNames[code] : absl::StrCat(code);
  if (g.json) {
    std::cout << "{\n  \"error\": {\"code\": \"" << name << "\", \"message\": " << Json([&] {
      google::protobuf::Value v;
      v.set_string_value(st.error_message());
      return v;
    }()) << "}\n}\n";
  }
  std::cerr << "leadctl: " << name << ": " << st.error_message() << "\n";
  google::rpc::Status rich;
  if (!st.error_details().empty() && rich.ParseFromString(st.error_details())) {
    for (const auto& detail : rich.details()) {
      v1::VersionConflict conflict;
      if (detail.UnpackTo(&conflict)) {
        std::cerr << "leadctl: " << conflict.aggregate_id() << " is at version "
                  << conflict.current_version() << "; look at it again (leadctl get) and retry "
                  << "with --expect-version " << conflict.current_version() << "\n";
      }
    }
  }
  if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::cerr << "leadctl: give a token: --token, $LEADFLOW_TOKEN or --token-file (`leadflow "
                 "token issue --role R --subject S` makes one; on the server's machine leadctl "
                 "uses <data-dir>/auth/admin.token by itself, see --data-dir)\n";
  }
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
      st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    // gRPC's own connection failures vs. a server that answered "not now".
    const std::string& m = st.error_message();
    const bool unreachable = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                             m.find("failed to connect") != std::string::npos ||
                             m.find("Socket closed") != std::string::npos ||
                             m.find("Connection reset") != std::string::npos;
    if (unreachable) {
      std::cerr << "leadctl: is `leadflow serve` running at " << g.server
                << "? Retrying with the same --id is safe.\n";
    } else {
      std::cerr << "leadctl: the server could not do it now; retry with the same --id (safe: "
                   "it is never applied twice).\n";
    }
    return kExitUnavailable;
  }
  return kExitRefused;
}

int Usage(const absl::Status& st) {
  std::cerr << "leadctl: " << st.message() << "\n";
  return kExitUsage;
}

}  // namespace leadflow::leadctl

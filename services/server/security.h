// The node's security wiring: key files, the auth guard, TLS credentials, and the rule that
// personal data is never served in clear or to anyone on a non-loopback address
// (docs/security.md).
#ifndef LEADFLOW_SERVICES_SERVER_SECURITY_H_
#define LEADFLOW_SERVICES_SERVER_SECURITY_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/auth/token.h"
#include "services/server/auth_guard.h"
#include "services/server/node.h"

namespace leadflow::server {

// The secret in `path`; if it does not exist and `create` is true, a new random one (64 hex
// digits) is written first, readable by the owner only from the moment it exists. `option`
// names the setting in errors.
absl::StatusOr<std::string> ReadOrCreateSecret(const std::filesystem::path& path, bool create,
                                               const std::string& option);

// The token options of `o` with the key read (or, for the default file, created).
absl::StatusOr<auth::TokenOptions> TokenOptionsOf(const NodeOptions& o);

// True for 127.0.0.0/8, ::1 and localhost listen addresses (HOST:PORT).
bool IsLoopback(const std::string& listen);

// Refuses a non-loopback listener without TLS or without authentication unless `insecure`.
absl::Status CheckExposure(const NodeOptions& o);

// The listener's credentials: TLS (and mTLS with a client CA) or plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const SecurityOptions& s);

// The gateway's credentials towards the other processes.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> UpstreamCredentials(
    const SecurityOptions& s);

// The guard for a node with authentication on (null with it off). Writes the local admin token
// (SecurityOptions::admin_token_file) when the node holds the signing secret and sets
// `admin_token_path` to where (or to a warning starting "WARNING:" if it could not).
absl::StatusOr<std::shared_ptr<const AuthGuard>> MakeAuthGuard(const NodeOptions& o,
                                                               std::string* admin_token_path);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_SECURITY_H_

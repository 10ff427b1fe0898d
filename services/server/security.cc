#include "services/server/security.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"

namespace leadflow::server {
namespace {

namespace fs = std::filesystem;

// Writes `text` to `path` (replacing it) with mode 0600 from the start.
absl::Status WritePrivate(const fs::path& path, const std::string& text, const std::string& what) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write ", what, " ", tmp.string()));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::UnavailableError(absl::StrCat("cannot write ", what, " ", tmp.string()));
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", what, " ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& option) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat(option, ": cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::string> ReadOrCreateSecret(const fs::path& path, bool create,
                                               const std::string& option) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!create) {
      return absl::FailedPreconditionError(
          absl::StrCat(option, ": ", path.string(), " does not exist"));
    }
    LEADFLOW_RETURN_IF_ERROR(WritePrivate(path, common::NewIdKey() + "\n", option));
  }
  absl::StatusOr<std::string> text = ReadFile(path.string(), option);
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

absl::StatusOr<auth::TokenOptions> TokenOptionsOf(const NodeOptions& o) {
  const SecurityOptions& s = o.security;
  auth::TokenOptions t;
  t.algorithm = s.token_algorithm;
  t.issuer = s.token_issuer;
  t.audience = s.token_audience;
  if (!s.token_key.empty()) {
    t.key = s.token_key;
  } else if (!s.token_key_file.empty()) {
    absl::StatusOr<std::string> key = ReadFile(s.token_key_file, "auth.token_key_file");
    if (!key.ok()) return key.status();
    // A secret is used as written (trailing newline aside); a PEM key as the whole text.
    t.key = absl::StartsWith(*key, "-----BEGIN")
                ? *key
                : std::string(absl::StripTrailingAsciiWhitespace(*key));
  } else {
    if (!absl::StartsWith(s.token_algorithm, "HS")) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth.token_key_file: required with auth.token_algorithm ",
                       s.token_algorithm, " (the public key in PEM)"));
    }
    absl::StatusOr<std::string> key = ReadOrCreateSecret(
        fs::path(o.data_dir) / "auth" / "token.key", /*create=*/true, "auth.token_key_file");
    if (!key.ok()) return key.status();
    t.key = *key;
  }
  if (absl::Status st = auth::ValidateTokenOptions(t); !st.ok()) return st;
  return t;
}

bool IsLoopback(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))
    host = host.substr(1, host.size() - 2);
  if (absl::StartsWith(host, "ipv4:")) host = host.substr(5);
  if (host == "localhost" || host == "::1") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  int first = 0;
  return parts.size() == 4 && absl::SimpleAtoi(parts[0], &first) && first == 127;
}

absl::Status CheckExposure(const NodeOptions& o) {
  const SecurityOptions& s = o.security;
  const bool tls = !s.tls_cert_file.empty() && !s.tls_key_file.empty();
  if (IsLoopback(o.listen) || s.insecure || (tls && s.auth)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "listen: ", o.listen,
      " is not a loopback address and this configuration would serve "
      "personal data there ",
      !tls ? "in clear (set tls.cert_file and tls.key_file)" : "", !tls && !s.auth ? " and " : "",
      !s.auth ? "to anyone (turn auth.enabled on)" : "",
      "; or give --insecure to do it anyway (docs/security.md)"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const SecurityOptions& s) {
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls.cert_file and tls.key_file: give both (or neither, for no TLS)");
  }
  if (s.tls_cert_file.empty()) {
    if (!s.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls.client_ca_file: client certificates need TLS (tls.cert_file, tls.key_file)");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadFile(s.tls_cert_file, "tls.cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(s.tls_key_file, "tls.key_file");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!s.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(s.tls_client_ca_file, "tls.client_ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> UpstreamCredentials(
    const SecurityOptions& s) {
  if (s.tls_ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> ca = ReadFile(s.tls_ca_file, "tls.ca_file");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (!s.tls_cert_file.empty() && !s.tls_key_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(s.tls_cert_file, "tls.cert_file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(s.tls_key_file, "tls.key_file");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

absl::StatusOr<std::shared_ptr<const AuthGuard>> MakeAuthGuard(const NodeOptions& o,
                                                               std::string* admin_token_path) {
  if (!o.security.auth) return std::shared_ptr<const AuthGuard>();
  absl::StatusOr<std::shared_ptr<auth::PolicyStore>> policy =
      auth::PolicyStore::Open(o.security.policy_file);
  if (!policy.ok()) return policy.status();
  absl::StatusOr<auth::TokenOptions> tokens = TokenOptionsOf(o);
  if (!tokens.ok()) return tokens.status();
  absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> verifier =
      auth::TokenVerifier::Create(*tokens);
  if (!verifier.ok()) return verifier.status();
  if (absl::StartsWith(tokens->algorithm, "HS") && o.security.admin_token_file != "-") {
    const fs::path path = o.security.admin_token_file.empty()
                              ? fs::path(o.data_dir) / "auth" / "admin.token"
                              : fs::path(o.security.admin_token_file);
    absl::StatusOr<std::string> token =
        auth::IssueToken(*tokens, "local-admin", "admin", absl::Hours(24 * 30), absl::Now());
    if (!token.ok()) return token.status();
    // A full or read-only disk must not stop the start: leadctl then needs a token given.
    if (absl::Status written = WritePrivate(path, *token + "\n", "the admin token");
        !written.ok()) {
      *admin_token_path = absl::StrCat("WARNING: ", written.message(),
                                       "; give leadctl a token (leadflow token issue)");
    } else {
      *admin_token_path = path.string();
    }
  }
  return std::make_shared<const AuthGuard>(*std::move(verifier), *std::move(policy));
}

}  // namespace leadflow::server

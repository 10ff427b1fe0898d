// leadctl: the command-line client of leadflow, for people (tables, plain sentences) and for
// scripts (--json, --csv, exit codes). The subcommands are in three groups (verbs.h): commands
// (command_verbs.cc), look-ups (query_verbs.cc) and analytics (analytics_verbs.cc); the
// connection and error reporting are in client.h, the text output in show.h and report.h.
//
// Exit codes: 0 ok; 1 refused by the server (the message says why); 2 bad usage or input;
// 3 server unreachable or timed out (safe to retry with the same --id).
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "tools/leadctl/client.h"
#include "tools/leadctl/verbs.h"

namespace leadflow::leadctl {

int Main(int argc, char** argv) {
  Global g;
  const char* env_server = std::getenv("LEADFLOW_SERVER");
  g.server = env_server != nullptr ? env_server : "127.0.0.1:50051";
  const char* data_dir = std::getenv("LEADFLOW_DATA_DIR");
  g.data_dir = data_dir != nullptr && *data_dir != '\0' ? data_dir : "./leadflow-data";
  std::string actor_flag;

  CLI::App app{"leadctl: command-line client of leadflow"};
  app.footer(
      "Exit codes: 0 ok, 1 refused by the server, 2 bad usage or input, 3 server unreachable "
      "(retry with the same --id is safe).\nServer address: --server or $LEADFLOW_SERVER.");
  app.require_subcommand(1);
  // Global options (--json, --csv, --server, --token, ...) are accepted anywhere on the line,
  // before or after the subcommand: each subcommand inherits this.
  app.fallthrough();
  app.add_option("--server", g.server, "leadflow address")->capture_default_str();
  app.add_flag("--json", g.json, "Print replies as JSON (for scripts)");
  app.add_flag("--csv", g.csv, "Print analytics tables as CSV (funnel, pipeline, queue, ...)");
  app.add_option("--actor", actor_flag,
                 "On whose behalf (recorded as the actor's on_behalf_of note; the actor is the "
                 "token's subject). Without a token: the actor itself (default $USER)");
  app.add_option("--token", g.token, "Bearer token (also $LEADFLOW_TOKEN)");
  app.add_option("--token-file", g.token_file,
                 "File holding the bearer token (also $LEADFLOW_TOKEN_FILE)");
  app.add_option("--data-dir", g.data_dir,
                 "Data directory of a leadflow on this machine: its local admin token "
                 "(auth/admin.token) is used when no token is given (also $LEADFLOW_DATA_DIR)")
      ->capture_default_str();
  app.add_flag("--tls", g.tls, "Connect over TLS (system CAs unless --ca)");
  app.add_option("--ca", g.ca,
                 "CA certificate (PEM) the server's certificate is checked against; "
                 "implies --tls");
  app.add_option("--cert", g.cert, "Client certificate (PEM), for servers that require one");
  app.add_option("--key", g.key, "Private key (PEM) of --cert");
  app.add_option("--timeout", g.timeout_seconds, "RPC deadline in seconds")->capture_default_str();

  std::vector<Verb> verbs;
  const std::unique_ptr<VerbFlags> command_flags = AddCommandVerbs(app, g, verbs);
  const std::unique_ptr<VerbFlags> query_flags = AddQueryVerbs(app, verbs);
  const std::unique_ptr<VerbFlags> analytics_flags = AddAnalyticsVerbs(app, verbs);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  {
    absl::StatusOr<std::string> token = FindToken(g);
    if (!token.ok()) {
      std::cerr << "leadctl: " << token.status().message() << "\n";
      return kExitUsage;
    }
    g.token = *token;
    // With a token the server records its subject as the actor; --actor is a note beside it.
    // Without one (a server with authentication off) the actor is --actor or $USER.
    const char* user = std::getenv("USER");
    g.actor = !actor_flag.empty()                ? actor_flag
              : !g.token.empty()                 ? ""
              : user != nullptr && *user != '\0' ? user
                                                 : "leadctl";
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(g);
  if (!credentials.ok()) {
    std::cerr << "leadctl: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  auto channel = grpc::CreateChannel(g.server, *credentials);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g.timeout_seconds));
  Authorize(ctx, g);
  Session session{.g = g, .channel = channel, .ctx = ctx};
  for (Verb& verb : verbs) {
    if (verb.cmd->parsed()) return verb.run(session);
  }
  std::cerr << "leadctl: no command given; see leadctl --help\n";
  return kExitUsage;
}

}  // namespace leadflow::leadctl

int main(int argc, char** argv) { return leadflow::leadctl::Main(argc, argv); }

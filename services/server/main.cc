// leadflow: the service binary. Flags are read here and nowhere else.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/common/huge_pages.h"
#include "services/common/malloc_release.h"
#include "services/common/mutex_mode.h"
#include "services/common/status_util.h"
#include "services/config/config.h"
#include "services/logging/logging.h"
#include <grpcpp/create_channel.h>

#include <filesystem>

#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/server/backup.h"
#include "services/storage/compact.h"
#include "services/server/node.h"
#include "services/server/security.h"
#include "services/server/views.h"
#include "services/storage/fault_policy.h"
#include <fstream>

namespace {

constexpr char kVersion[] = "0.1.0";

int Serve(leadflow::config::ServeConfig config) {
  // Before any thread starts (see huge_pages.h).
  if (config.huge_pages) leadflow::common::UseHugePages();
  leadflow::server::NodeOptions& options = config.node;
  options.on_tick = [n = 0]() mutable {
    if (++n % 10 == 0) leadflow::common::ReleaseFreeMemory();
  };
  options.say = [](const std::string& line) {
    leadflow::logging::Log(leadflow::logging::Level::kInfo, line);
  };
  // RocksDB's own log lines (never a LOG file beside the data: storage/fault_policy.h): its
  // chatty info as debug, its warnings and errors as ours.
  leadflow::storage::SetRocksLogSink([](int severity, const std::string& message) {
    using leadflow::logging::Level;
    Level level = severity <= 1 ? Level::kDebug : severity == 2 ? Level::kWarn : Level::kError;
    if (level == Level::kWarn && leadflow::storage::IsExpectedRocksWarning(message)) {
      level = Level::kDebug;
    }
    if (!leadflow::logging::Enabled(level)) return;
    std::string text(absl::StripTrailingAsciiWhitespace(message));
    leadflow::logging::Log(level, absl::StrCat("rocksdb: ", text));
  });
  // Block the shutdown signals in every thread; a dedicated thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto node = leadflow::server::Node::Start(options);
  if (!node.ok()) {
    std::cerr << "leadflow: cannot start: " << node.status().message() << std::endl;
    return 1;
  }
  leadflow::logging::Log(
      leadflow::logging::Level::kInfo,
      absl::StrCat(
          "serving gRPC on ", options.listen.substr(0, options.listen.rfind(':')), ":",
          (*node)->port(), options.security.tls_cert_file.empty() ? " (plaintext" : " (TLS",
          !options.security.tls_client_ca_file.empty() ? ", client certificates required" : "",
          options.role.is_gateway() ? ", callers' credentials forwarded"
          : options.security.auth   ? ", authentication on"
                                    : ", AUTHENTICATION OFF",
          options.security.reflection ? ", reflection on" : "", "); Ctrl-C to stop"),
      {{"role", options.role.name()}});
  const absl::Duration grace = config.shutdown_grace;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    leadflow::logging::Log(
        leadflow::logging::Level::kInfo,
        absl::StrCat(sig == SIGTERM ? "SIGTERM" : "SIGINT", ": draining in-flight requests (up to ",
                     absl::FormatDuration(grace), "; signal again to force)"));
    std::thread force([&] {
      int again = 0;
      sigwait(&signals, &again);
      leadflow::logging::Log(leadflow::logging::Level::kWarn, "forced exit");
      std::_Exit(2);
    });
    force.detach();
    (*node)->Shutdown(grace);
  });
  (*node)->Wait();
  waiter.join();
  node->reset();  // flushes the log and closes the stores before exit
  leadflow::logging::Log(leadflow::logging::Level::kInfo, "stopped cleanly");
  return 0;
}

// Declares every configuration option as a flag of `cmd`; after parsing, ApplyFlags hands the
// ones given to the loader (so flags win over the file and the environment).
struct FlagValues {
  std::map<std::string, std::string> text;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> bools;
  std::map<std::string, CLI::Option*> given;
  CLI::Option* no_sync = nullptr;
  bool no_sync_value = false;
};

// `only`: the option keys to offer as flags (empty: all of them).
void AddConfigFlags(CLI::App* cmd, const leadflow::config::ConfigLoader& loader, FlagValues& v,
                    const std::set<std::string>& only = {}) {
  using leadflow::config::OptionType;
  for (const leadflow::config::OptionSpec& spec : loader.options()) {
    if (!only.empty() && !only.contains(spec.key)) continue;
    const std::string help = absl::StrCat(spec.help, " [", spec.key, ", $", spec.env, "]");
    CLI::Option* opt = nullptr;
    switch (spec.type) {
      case OptionType::kBool:
        opt = cmd->add_flag(spec.flag, v.bools[spec.key], help);
        break;
      case OptionType::kMap:
        opt = cmd->add_option(spec.flag, v.lists[spec.key], help);
        break;
      default:
        opt = cmd->add_option(spec.flag, v.text[spec.key], help);
        break;
    }
    if (!spec.default_text.empty()) opt->default_str(spec.default_text);
    opt->group(spec.key.find('.') == std::string::npos
                   ? "Options"
                   : absl::StrCat(spec.key.substr(0, spec.key.find('.')), " options"));
    v.given[spec.key] = opt;
  }
  if (only.empty()) v.no_sync = cmd->add_flag("--no-sync", v.no_sync_value, "Same as --sync=false");
}

absl::Status ApplyFlags(leadflow::config::ConfigLoader& loader, const FlagValues& v) {
  using leadflow::config::OptionType;
  if (v.no_sync != nullptr && v.no_sync->count() > 0) {
    LEADFLOW_RETURN_IF_ERROR(loader.ApplyFlag("sync", "false"));
  }
  for (const leadflow::config::OptionSpec& spec : loader.options()) {
    auto given = v.given.find(spec.key);
    if (given == v.given.end() || given->second->count() == 0) continue;
    switch (spec.type) {
      case OptionType::kBool:
        LEADFLOW_RETURN_IF_ERROR(
            loader.ApplyFlag(spec.key, v.bools.at(spec.key) ? "true" : "false"));
        break;
      case OptionType::kMap:
        for (const std::string& item : v.lists.at(spec.key)) {
          LEADFLOW_RETURN_IF_ERROR(loader.ApplyFlag(spec.key, item));
        }
        break;
      default:
        LEADFLOW_RETURN_IF_ERROR(loader.ApplyFlag(spec.key, v.text.at(spec.key)));
    }
  }
  return absl::OkStatus();
}

// Prints why a configuration was refused; returns the exit code to use.
int Refused(const absl::Status& status, int exit_code) {
  std::cerr << "leadflow: configuration refused: " << status.message() << std::endl;
  return exit_code;
}

// defaults < config file (--config or $LEADFLOW_CONFIG) < environment < flags.
absl::StatusOr<leadflow::config::ServeConfig> Resolve(leadflow::config::ConfigLoader& loader,
                                                      std::string config_file,
                                                      const FlagValues& flags) {
  if (config_file.empty() && std::getenv("LEADFLOW_CONFIG") != nullptr) {
    config_file = std::getenv("LEADFLOW_CONFIG");
  }
  if (!config_file.empty()) LEADFLOW_RETURN_IF_ERROR(loader.ApplyFile(config_file));
  LEADFLOW_RETURN_IF_ERROR(
      loader.ApplyEnvironment([](const char* name) { return std::getenv(name); }));
  LEADFLOW_RETURN_IF_ERROR(ApplyFlags(loader, flags));
  return loader.Finish();
}

// RocksDB's own log lines only when they are warnings or errors (verify, restore).
void QuietRocksDb() {
  leadflow::storage::SetRocksLogSink([](int severity, const std::string& message) {
    if (severity < 2 || leadflow::storage::IsExpectedRocksWarning(message)) return;
    std::cerr << "rocksdb: " << absl::StripTrailingAsciiWhitespace(message) << std::endl;
  });
}

// The token a command-line tool sends: $LEADFLOW_TOKEN, else the local admin token of the data
// directory (written by `leadflow serve`).
std::string LocalToken(const leadflow::server::NodeOptions& n) {
  if (const char* t = std::getenv("LEADFLOW_TOKEN"); t != nullptr && *t != '\0') return t;
  const std::string path =
      n.security.admin_token_file.empty()
          ? (std::filesystem::path(n.data_dir) / "auth" / "admin.token").string()
          : n.security.admin_token_file;
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  return std::string(absl::StripAsciiWhitespace(token));
}

// Asks the leadflow at `server` for a backup into `dir` (on its machine), as the admin of the
// local data directory (or $LEADFLOW_TOKEN), over TLS when tls.ca_file is set.
absl::StatusOr<leadflow::v1::BackupReply> BackupThrough(const std::string& server,
                                                        const std::string& dir,
                                                        const leadflow::server::NodeOptions& n) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      leadflow::server::UpstreamCredentials(n.security);
  if (!credentials.ok()) return credentials.status();
  auto channel = grpc::CreateChannel(server, *credentials);
  auto stub = leadflow::v1::AdminService::NewStub(channel);
  grpc::ClientContext context;
  if (const std::string token = LocalToken(n); !token.empty()) {
    context.AddMetadata("authorization", "Bearer " + token);
  }
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(6));
  context.set_wait_for_ready(false);
  leadflow::v1::BackupRequest request;
  request.set_dir(dir);
  leadflow::v1::BackupReply reply;
  const grpc::Status st = stub->Backup(&context, request, &reply);
  if (!st.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(st.error_code()),
        st.error_code() == grpc::StatusCode::UNAVAILABLE &&
                st.error_message().find("backup") == std::string::npos
            ? absl::StrCat("cannot reach leadflow at ", server, ": ", st.error_message())
            : st.error_message());
  }
  return reply;
}

}  // namespace

int main(int argc, char** argv) {
  leadflow::common::UseReleaseMutexes();  // see mutex_mode.h
  CLI::App app{"leadflow: event-sourced lead lifecycle service"};
  app.require_subcommand(1);

  leadflow::config::ConfigLoader serve_loader(leadflow::server::ViewNames());
  FlagValues serve_flags;
  std::string serve_config;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run the service. Options come from defaults < --config FILE (YAML) < LEADFLOW_* "
      "environment variables < flags; see docs/configuration.md");
  serve->add_option("--config", serve_config,
                    "YAML configuration file (also $LEADFLOW_CONFIG); keys as in "
                    "docs/configuration.md");
  AddConfigFlags(serve, serve_loader, serve_flags);

  leadflow::config::ConfigLoader rebuild_loader(leadflow::server::ViewNames());
  FlagValues rebuild_flags;
  std::string rebuild_config;
  CLI::App* rebuild =
      app.add_subcommand("rebuild",
                         "Rebuild views from offset zero into fresh stores and swap them in (stop "
                         "the process serving them first)");
  std::string rebuild_view = "all";
  rebuild
      ->add_option("--view", rebuild_view,
                   absl::StrCat(absl::StrJoin(leadflow::server::ViewNames(), ", "), " or all"))
      ->capture_default_str();
  rebuild->add_option("--config", rebuild_config, "YAML configuration file (as for serve)");
  AddConfigFlags(rebuild, rebuild_loader, rebuild_flags);

  leadflow::config::ConfigLoader backup_loader(leadflow::server::ViewNames());
  FlagValues backup_flags;
  std::string backup_config, backup_dir, backup_server;
  CLI::App* backup = app.add_subcommand(
      "backup",
      "Write a consistent backup of the log, the views and the writer's key into a new "
      "directory: through a running leadflow (--server, the directory is on its "
      "machine) or of a stopped data directory (--data-dir)");
  backup->add_option("dir", backup_dir, "Backup directory (must not exist)")->required();
  backup->add_option("--server", backup_server,
                     "HOST:PORT of the leadflow serving the data (backup while it serves)");
  backup->add_option("--config", backup_config, "YAML configuration file (as for serve)");
  AddConfigFlags(backup, backup_loader, backup_flags);

  leadflow::config::ConfigLoader verify_loader(leadflow::server::ViewNames());
  FlagValues verify_flags;
  std::string verify_config, verify_scratch;
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Check a data directory or a backup: the log against its witnesses, every view "
      "against a rebuild from the log, row by row. Read-only; may run beside a serving "
      "leadflow. Exit 0 if all is well, 1 on damage (DATA_LOSS ...)");
  verify->add_option("--scratch-dir", verify_scratch,
                     "Where the rebuilds go while they are compared (default: the system's "
                     "temporary directory); needs about the views' size");
  verify->add_option("--config", verify_config, "YAML configuration file (as for serve)");
  AddConfigFlags(verify, verify_loader, verify_flags);

  leadflow::config::ConfigLoader restore_loader(leadflow::server::ViewNames());
  FlagValues restore_flags;
  std::string restore_config, restore_from;
  CLI::App* restore =
      app.add_subcommand("restore",
                         "Verify a backup, then copy it into --data-dir (new or empty); then start "
                         "leadflow serve on it");
  restore->add_option("backup", restore_from, "Backup directory (written by leadflow backup)")
      ->required();
  restore->add_option("--config", restore_config, "YAML configuration file (as for serve)");
  AddConfigFlags(restore, restore_loader, restore_flags);

  leadflow::config::ConfigLoader compact_loader(leadflow::server::ViewNames());
  FlagValues compact_flags;
  std::string compact_config;
  CLI::App* compact = app.add_subcommand(
      "compact",
      "Rewrite every store of a stopped data directory so nothing deleted is left in "
      "its files (after an erasure: the scrubbed rows are then physically gone)");
  compact->add_option("--config", compact_config, "YAML configuration file (as for serve)");
  AddConfigFlags(compact, compact_loader, compact_flags, {"data_dir"});

  leadflow::config::ConfigLoader token_loader(leadflow::server::ViewNames());
  FlagValues token_flags;
  std::string token_config, token_role, token_subject, token_ttl = "24h";
  CLI::App* token_cmd = app.add_subcommand("token", "Bearer tokens");
  token_cmd->require_subcommand(1);
  CLI::App* token_issue = token_cmd->add_subcommand(
      "issue",
      "Print a token for --subject with --role, signed with the configured key "
      "(auth.token_key_file, or the one leadflow serve created under --data-dir)");
  token_issue
      ->add_option("--role", token_role,
                   "Role in the authorization policy (admin, sales, intake, import, "
                   "analyst, downstream, auditor, or one of the policy file)")
      ->required();
  token_issue
      ->add_option("--subject", token_subject,
                   "Who the token is for (becomes the actor of their events)")
      ->required();
  token_issue->add_option("--ttl", token_ttl, "Validity: 90s, 30m, 12h, 7d, ...")
      ->capture_default_str();
  token_issue->add_option("--config", token_config, "YAML configuration file (as for serve)");
  AddConfigFlags(token_issue, token_loader, token_flags,
                 {"data_dir", "auth.token_key_file", "auth.token_algorithm", "auth.token_issuer",
                  "auth.token_audience", "auth.policy_file"});

  CLI::App* config_cmd = app.add_subcommand("config", "Configuration tools");
  config_cmd->require_subcommand(1);
  CLI::App* config_docs =
      config_cmd->add_subcommand("docs", "Print the options as Markdown (docs/configuration.md)");
  leadflow::config::ConfigLoader check_loader(leadflow::server::ViewNames());
  FlagValues check_flags;
  std::string check_config;
  CLI::App* config_check = config_cmd->add_subcommand(
      "check", "Validate a configuration (file, environment, flags) and print the result");
  config_check->add_option("--config", check_config, "YAML configuration file");
  AddConfigFlags(config_check, check_loader, check_flags);

  CLI::App* version = app.add_subcommand("version", "Print the version");
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "leadflow " << kVersion << std::endl;
    return 0;
  }
  if (token_issue->parsed()) {
    auto config = Resolve(token_loader, token_config, token_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    absl::Duration ttl;
    int64_t days = 0;
    if (absl::EndsWith(token_ttl, "d") &&
        absl::SimpleAtoi(token_ttl.substr(0, token_ttl.size() - 1), &days) && days > 0 &&
        days <= 3660) {
      ttl = absl::Hours(24 * days);
    } else if (!absl::ParseDuration(token_ttl, &ttl) || ttl <= absl::ZeroDuration()) {
      std::cerr << "leadflow: --ttl: '" << token_ttl.substr(0, 16)
                << "' is not a duration like 90s, 30m, 12h or 7d" << std::endl;
      return 2;
    }
    absl::StatusOr<leadflow::auth::TokenOptions> options =
        leadflow::server::TokenOptionsOf(config->node);
    absl::StatusOr<std::string> token =
        options.ok()
            ? leadflow::auth::IssueToken(*options, token_subject, token_role, ttl, absl::Now())
            : absl::StatusOr<std::string>(options.status());
    if (!token.ok()) {
      std::cerr << "leadflow: token issue: " << token.status().message() << std::endl;
      return 2;
    }
    if (!leadflow::auth::Policy::Default().roles().contains(token_role) &&
        config->node.security.policy_file.empty()) {
      std::cerr << "leadflow: warning: role '" << token_role
                << "' is not a built-in role; calls with this token are refused unless "
                   "auth.policy_file defines it"
                << std::endl;
    }
    std::cout << *token << std::endl;
    return 0;
  }
  if (config_docs->parsed()) {
    std::cout << leadflow::config::ConfigLoader(leadflow::server::ViewNames()).Markdown();
    return 0;
  }
  if (config_check->parsed()) {
    auto config = Resolve(check_loader, check_config, check_flags);
    if (!config.ok()) return Refused(config.status(), 1);
    const leadflow::server::NodeOptions& n = config->node;
    // What `serve` would refuse at start (personal data in clear or to anyone).
    if (absl::Status exposed = leadflow::server::CheckExposure(n); !exposed.ok()) {
      return Refused(exposed, 1);
    }
    std::cout << "configuration ok: role=" << n.role.name() << " listen=" << n.listen << " log="
              << (n.role.is_gateway() ? "none (forwards calls)"
                  : n.kafka_mock      ? "kafka mock"
                  : n.kafka_brokers.empty()
                      ? "embedded (" + n.data_dir + "/log)"
                      : "kafka " + n.kafka_brokers + " topic " + n.kafka_topic)
              << " metrics=" << (n.metrics_listen.empty() ? "off" : n.metrics_listen) << " tls="
              << (n.security.tls_cert_file.empty()        ? "off"
                  : n.security.tls_client_ca_file.empty() ? "on"
                                                          : "on, client certificates required")
              << " auth="
              << (n.role.is_gateway() ? "forwarded"
                  : n.security.auth   ? "on"
                                      : "OFF")
              << std::endl;
    return 0;
  }
  if (backup->parsed()) {
    auto config = Resolve(backup_loader, backup_config, backup_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    absl::StatusOr<leadflow::v1::BackupReply> reply;
    std::string dir = backup_dir;
    if (!backup_server.empty()) {
      // The directory is on the server's machine: make a relative one absolute here (the
      // usual case is the same machine).
      std::error_code ec;
      if (!std::filesystem::path(dir).is_absolute()) {
        dir = std::filesystem::absolute(dir, ec).string();
      }
      reply = BackupThrough(backup_server, dir, config->node);
    } else {
      std::error_code ec;
      dir = std::filesystem::absolute(dir, ec).string();
      reply = leadflow::server::BackupStopped(config->node, dir);
    }
    if (!reply.ok()) {
      std::cerr << "leadflow: backup failed: " << absl::StatusCodeToString(reply.status().code())
                << ": " << reply.status().message() << std::endl;
      return 1;
    }
    std::cout << leadflow::server::DescribeBackup(*reply) << std::flush;
    return 0;
  }
  if (verify->parsed()) {
    auto config = Resolve(verify_loader, verify_config, verify_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    QuietRocksDb();
    const absl::Time start = absl::Now();
    absl::Status st = leadflow::server::Verify(
        config->node, [](const std::string& line) { std::cout << line << std::endl; },
        verify_scratch);
    if (!st.ok()) {
      std::cout << "leadflow: verify failed: " << absl::StatusCodeToString(st.code()) << ": "
                << st.message() << std::endl;
      return 1;
    }
    std::cout << "leadflow: verify passed in " << absl::ToInt64Milliseconds(absl::Now() - start)
              << " ms" << std::endl;
    return 0;
  }
  if (compact->parsed()) {
    auto config = Resolve(compact_loader, compact_config, compact_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    QuietRocksDb();
    absl::Status st = leadflow::storage::CompactEverything(
        config->node.data_dir, [](const std::string& line) { std::cout << line << std::endl; });
    if (!st.ok()) {
      std::cout << "leadflow: compact failed: " << absl::StatusCodeToString(st.code()) << ": "
                << st.message() << std::endl;
      return 1;
    }
    return 0;
  }
  if (restore->parsed()) {
    auto config = Resolve(restore_loader, restore_config, restore_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    QuietRocksDb();
    absl::Status st =
        leadflow::server::Restore(restore_from, config->node,
                                  [](const std::string& line) { std::cout << line << std::endl; });
    if (!st.ok()) {
      std::cout << "leadflow: restore failed: " << absl::StatusCodeToString(st.code()) << ": "
                << st.message() << std::endl;
      return 1;
    }
    return 0;
  }
  if (rebuild->parsed()) {
    auto config = Resolve(rebuild_loader, rebuild_config, rebuild_flags);
    if (!config.ok()) return Refused(config.status(), 2);
    const leadflow::server::NodeOptions& o = config->node;
    std::vector<std::string> views = {rebuild_view};
    if (rebuild_view == "all") views = leadflow::server::ViewNames();
    const absl::Time start = absl::Now();
    absl::Time last = absl::InfinitePast();
    std::string current;
    absl::Time view_start = start;
    auto progress = [&](const std::string& view, int64_t applied, int64_t total) {
      if (view != current) {
        if (!current.empty()) std::cerr << "\n";
        current = view;
        view_start = absl::Now();
      }
      const absl::Time now = absl::Now();
      if (now - last < absl::Milliseconds(200) && applied < total) return;
      last = now;
      const double secs = std::max(1e-3, absl::ToDoubleSeconds(now - view_start));
      const double rate = applied / secs;
      const double eta = rate > 0 ? (total - applied) / rate : 0;
      std::cerr << absl::StreamFormat(
          "\rrebuilding %s %3.0f%%  %lld/%lld events  %.0f events/s  ETA %.0fs   ", view,
          total > 0 ? 100.0 * applied / total : 100.0, static_cast<long long>(applied),
          static_cast<long long>(total), rate, eta);
    };
    absl::Status st = leadflow::server::RebuildViews(o, views, progress);
    if (!current.empty()) std::cerr << "\n";
    if (!st.ok()) {
      std::cerr << "leadflow: rebuild failed: " << st.message() << std::endl;
      return 1;
    }
    std::cerr << "leadflow: rebuilt " << rebuild_view << " in "
              << absl::ToInt64Milliseconds(absl::Now() - start) << " ms; views swapped in"
              << std::endl;
    return 0;
  }
  auto config = Resolve(serve_loader, serve_config, serve_flags);
  if (!config.ok()) return Refused(config.status(), 2);
  if (absl::Status st = leadflow::logging::Configure(config->log.format, config->log.level);
      !st.ok()) {
    std::cerr << "leadflow: " << st.message() << std::endl;
    return 2;
  }
  return Serve(*std::move(config));
}

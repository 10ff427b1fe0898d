// The options of a leadflow process (`leadflow serve` and the offline commands): what it runs,
// where its data lives, how it talks to the log, the network and its callers. Plain data, so the
// configuration (config.h) can fill it without linking the server that runs it.
#ifndef LEADFLOW_SERVICES_CONFIG_NODE_OPTIONS_H_
#define LEADFLOW_SERVICES_CONFIG_NODE_OPTIONS_H_

#include <array>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "services/log/event_log.h"
#include "services/storage/storage_budget.h"

namespace leadflow::config {

// Funnel view settings.
struct FunnelOptions {
  // Probability (percent, 0-100) that a qualified lead in each SalesStage converts, for the
  // probability-weighted pipeline. Indexed by SalesStage number; defaults in docs/metrics.md.
  std::array<int, 6> stage_probability_percent = {0, 10, 20, 40, 60, 80};
};

// What a process runs: everything (default); only the writer (command service); every view;
// one view (by its registry name); or the gateway, which forwards each call to the process
// serving it. Roles other than kAll and kWriter need a shared log, i.e. Kafka.
struct Role {
  enum class Kind { kAll, kWriter, kViews, kView, kGateway };
  Kind kind = Kind::kAll;
  std::string view;  // kView: the view's name ("funnel")

  static Role All() { return {}; }
  static Role Writer() { return {Kind::kWriter, ""}; }
  static Role Views() { return {Kind::kViews, ""}; }
  static Role View(std::string name) { return {Kind::kView, std::move(name)}; }
  static Role Gateway() { return {Kind::kGateway, ""}; }

  bool runs_writer() const { return kind == Kind::kAll || kind == Kind::kWriter; }
  bool is_gateway() const { return kind == Kind::kGateway; }
  // True if the process runs the view `name`.
  bool RunsView(const std::string& name) const {
    return kind == Kind::kAll || kind == Kind::kViews || (kind == Kind::kView && view == name);
  }
  // "all", "writer", "views", "funnel-view", "gateway".
  std::string name() const;
  bool operator==(const Role& other) const { return kind == other.kind && view == other.view; }
};

// Transport security and who may call (docs/security.md). The struct's defaults are for
// in-process tests (no authentication); `leadflow serve` turns authentication on by default.
struct SecurityOptions {
  // Every call needs a bearer token or a client certificate the policy knows; refusals are
  // UNAUTHENTICATED / PERMISSION_DENIED. Off: anyone who reaches the port may do anything.
  bool auth = false;
  // The tokens' key: the shared secret (HS*) or the public key in PEM (RS*/ES*). Empty:
  // <data_dir>/auth/token.key, an HS256 secret created at the first start.
  std::string token_key_file;
  std::string token_key;  // the key itself (tests; overrides token_key_file)
  std::string token_algorithm = "HS256";
  std::string token_issuer = "leadflow";
  std::string token_audience = "leadflow";
  // The authorization policy (services/auth/policy.h); empty: the built-in roles.
  std::string policy_file;
  // Where a start writes a fresh admin token for leadctl on this machine (only when leadflow
  // holds the signing secret, HS*); empty: <data_dir>/auth/admin.token. "-": none.
  std::string admin_token_file;
  // TLS for the gRPC listener (PEM files). Both set: TLS on.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Set: clients must present a certificate signed by this CA (mTLS); unknown ones are refused
  // at the handshake.
  std::string tls_client_ca_file;
  // The gateway's calls to the other processes: the CA their certificates are checked against
  // (set: TLS to the upstreams, with tls_cert_file/tls_key_file as the client certificate).
  std::string tls_ca_file;
  // Serve on a non-loopback address without TLS or without authentication.
  bool insecure = false;
  // gRPC server reflection (grpcurl and the like describe the services without proto/).
  bool reflection = false;
};

struct NodeOptions {
  // What this process runs (see Role).
  Role role;
  // Gateway role: where each role's service is served, by role name ("writer", "lead-view",
  // ...: the writer and every view of the registry, services/server/views.h); HOST:PORT.
  std::map<std::string, std::string> gateway;
  // Prometheus metrics endpoint HOST:PORT (port 0 = any free port); empty = none.
  std::string metrics_listen;
  // A view reports "catching up" (NOT_SERVING in gRPC health) from start until it has once been
  // within this many events of the log's end; after that only a failure makes it not serving.
  int64_t caught_up_lag = 1000;
  // Directory for the embedded log (and, later, view stores). Created if missing.
  std::string data_dir = "./leadflow-data";
  // gRPC listen address; port 0 picks a free port (see Node::port()).
  std::string listen = "127.0.0.1:50051";
  // Partitions of a new embedded log; with Kafka, the count the topic must have.
  int32_t partitions = log::kDefaultPartitions;
  // False while `partitions` is the default: an existing embedded log then keeps its own count.
  bool partitions_given = false;
  // Embedded log: fsync every append before acknowledging it.
  bool sync = true;
  // The deployment's lead id key (common::LeadIdScheme): lead ids are a keyed hash of the
  // contact. Read from this file, created with a random key at the first start if missing
  // (mode 0600; empty: <data-dir>/writer/ids.key). Keep it with the data and in backups: with
  // another key, new leads get other ids (existing leads keep theirs and are still found).
  std::string id_key_file;
  // The key itself, for benchmarks and tests in one process (overrides id_key_file).
  std::string id_key;
  // Region of phone numbers written without a country code (ISO 3166, "GB"); empty: every
  // number must carry its country code (+44 ... or 0044 ...).
  std::string phone_region;
  // Go on where the log lost events its witnesses saw (a damaged log; docs/reliability.md):
  // the writer resets its witness to the log as it is and records the loss in
  // <data-dir>/writer/accepted-losses.log. Meant for one start, after deciding not to restore
  // the log from a backup.
  bool accept_data_loss = false;
  // Kafka bootstrap servers; non-empty selects the Kafka log instead of the embedded one.
  std::string kafka_brokers;
  // Kafka topic of the events.
  std::string kafka_topic = std::string(log::kEventsTopic);
  // Prefix of the writer's transactional id; the owned partitions are appended to it, so a
  // second writer for the same partitions fences the first.
  std::string kafka_transactional_id = "leadflow-writer";
  // Extra librdkafka properties (key, value), e.g. security settings.
  std::vector<std::pair<std::string, std::string>> kafka_properties;
  // Start an in-process librdkafka mock cluster (loopback TCP) and use it as the log. For demos
  // and tests only: it keeps ~5 MiB per partition and does not enforce transactions.
  bool kafka_mock = false;
  // RocksDB memory of the whole process: one block cache and one memtable budget shared by the
  // embedded log, the command index and every view store (storage_budget.h for the defaults).
  storage::StorageBudgetOptions storage;
  // Funnel view settings (pipeline stage probabilities).
  FunnelOptions funnel;
  SecurityOptions security;
  // Crypto-shredding (docs/security.md): every personal field is sealed inside its event with
  // the lead's data key before it reaches the log; the keys live in the log's key store, wrapped
  // under the key-encryption key; EraseLead destroys a lead's key. Needs a log with a key store
  // (the embedded one; Kafka's keys topic is not built yet: there events stay in clear and
  // EraseLead is refused, and the start says so).
  bool encrypt_personal = true;
  // The key-encryption key: a file of 64 hex digits. Empty: <data-dir>/keys/kek, made at the
  // first start (mode 0600). Losing it loses every personal field in the log; keep a copy apart
  // from the data backups (docs/security.md).
  std::string kek_file;
  // Called about once a second by the node's housekeeping thread (main: returns free memory to
  // the OS every few calls; see common/malloc_release.h). Defaults to nothing.
  std::function<void()> on_tick;
  // Progress and status lines (start-up replay, banner). Defaults to nothing.
  std::function<void(const std::string&)> say;
};

// The role name of the view `view` ("funnel" -> "funnel-view"): its `role` value and its
// gateway route.
inline std::string ViewRole(const std::string& view) { return view + "-view"; }

inline std::string Role::name() const {
  switch (kind) {
    case Kind::kAll:
      return "all";
    case Kind::kWriter:
      return "writer";
    case Kind::kViews:
      return "views";
    case Kind::kView:
      return ViewRole(view);
    case Kind::kGateway:
      return "gateway";
  }
  return "?";
}

}  // namespace leadflow::config

#endif  // LEADFLOW_SERVICES_CONFIG_NODE_OPTIONS_H_

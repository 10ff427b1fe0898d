// A leadflow node: the event log (embedded or Kafka), the writer and the gRPC server, wired
// together. `leadflow serve` is a thin main() around Node::Start.
#ifndef LEADFLOW_SERVICES_SERVER_NODE_H_
#define LEADFLOW_SERVICES_SERVER_NODE_H_

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "projections/funnel/funnel_view.h"
#include "services/log/event_log.h"
#include "services/storage/storage_budget.h"

namespace leadflow::server {

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
  // What this process runs: everything (default); only the writer (command service); all four
  // views; one view; or the gateway, which forwards each call to the process serving it.
  // Separate roles need a shared log, i.e. Kafka.
  enum class Role {
    kAll,
    kWriter,
    kViews,
    kLeadView,
    kCustomerView,
    kFunnelView,
    kReprocessingView,
    kGateway
  };
  Role role = Role::kAll;
  // Gateway role: where each service is served (HOST:PORT; empty = not forwarded).
  struct GatewayRoutes {
    std::string writer, lead_view, customer_view, funnel_view, reprocessing_view;
  };
  GatewayRoutes gateway;
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
  projections::FunnelOptions funnel;
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

// The services a gateway forwards: each with the role serving it and the option holding that
// role's address. One table for the configuration (gateway.<role> options), its checks and the
// node's routing.
struct GatewayRoute {
  const char* role;     // "writer", "lead-view", ...; the option is gateway.<role, '_' for '-'>
  const char* service;  // full gRPC service name
  std::string NodeOptions::GatewayRoutes::*address;
};
inline constexpr std::array<GatewayRoute, 5> kGatewayRoutes = {{
    {"writer", "leadflow.v1.LeadCommandService", &NodeOptions::GatewayRoutes::writer},
    {"lead-view", "leadflow.v1.LeadQueryService", &NodeOptions::GatewayRoutes::lead_view},
    {"customer-view", "leadflow.v1.CustomerQueryService",
     &NodeOptions::GatewayRoutes::customer_view},
    {"funnel-view", "leadflow.v1.FunnelQueryService", &NodeOptions::GatewayRoutes::funnel_view},
    {"reprocessing-view", "leadflow.v1.ReprocessingQueryService",
     &NodeOptions::GatewayRoutes::reprocessing_view},
}};

class Node {
 public:
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node();
  // Stops accepting RPCs, lets in-flight ones finish for up to `grace`, then cancels the rest.
  void Shutdown(absl::Duration grace);
  void Wait();
  int port() const;

  // RocksDB memory in use against the shared budget (NodeOptions::storage).
  struct StorageUsage {
    size_t memtable_bytes = 0;
    size_t block_cache_bytes = 0;
  };
  StorageUsage storage_usage() const;
  // The metrics endpoint's port (0 if none) and the metrics as a scrape would see them.
  int metrics_port() const;
  std::string RenderMetrics() const;
  // The log's end (next offset) of every partition, as this process knows it (tests and fuzzers:
  // what a call appended); empty for a gateway.
  std::vector<int64_t> LogEnds() const;

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Rebuilds the named views ("lead", "customer", "funnel", "reprocessing") from offset zero into fresh stores and swaps
// them in (rename), while leadflow is stopped. The log is opened read-only (on Kafka: without the
// writer's transactional id, so the running writer is never fenced). `progress(view, applied,
// total)` is called as events are applied.
absl::Status RebuildViews(const NodeOptions& options, const std::vector<std::string>& views,
                          const std::function<void(const std::string&, int64_t, int64_t)>& progress);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_NODE_H_

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
#include "services/config/node_options.h"
#include "services/log/event_log.h"
#include "services/storage/storage_budget.h"

namespace leadflow::server {

using config::NodeOptions;
using config::Role;
using config::SecurityOptions;

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

// Rebuilds the named views (names of the registry, views.h) from offset zero into fresh
// stores and swaps them in (rename), while leadflow is stopped. The log is opened read-only (on
// Kafka: without the writer's transactional id, so the running writer is never fenced).
// `progress(view, applied, total)` is called as events are applied.
absl::Status RebuildViews(
    const NodeOptions& options, const std::vector<std::string>& views,
    const std::function<void(const std::string&, int64_t, int64_t)>& progress);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_NODE_H_

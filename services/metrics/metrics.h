// Prometheus metrics of a leadflow process (prometheus-cpp), served over HTTP at /metrics.
// Event counters and latency histograms are updated as things happen; state that already lives
// elsewhere (view lag, RocksDB memory, store sizes) is read at scrape time through collectors,
// so nothing is kept twice. Metric names and meanings: docs/operations.md.
#ifndef LEADFLOW_SERVICES_METRICS_METRICS_H_
#define LEADFLOW_SERVICES_METRICS_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leadflow::metrics {

// A scrape-time metric family (gauge or counter) with its samples.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels = {};
  double value = 0;
};
struct Family {
  std::string name;
  std::string help;
  bool counter = false;  // else gauge
  std::vector<Sample> samples = {};
};
using Collector = std::function<std::vector<Family>()>;

class Metrics {
 public:
  // Registers the metrics; serves them on `listen` (HOST:PORT, port 0 = any free port) unless it
  // is empty. UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen);
  ~Metrics();

  // A command finished: `type` is its kind (capture_lead, ...), `result` ok, replayed,
  // deduplicated or the lower-case gRPC code of its refusal.
  // `count` commands of one type with one result (a batch reports each group once: one latency
  // observation for the group).
  void CommandDone(absl::string_view type, absl::string_view result, absl::Duration latency,
                   int64_t count = 1);
  // The writer appended `records` records in one write (made durable by the next Synced).
  void Appended(int records, absl::Duration latency);
  // The writer synced the log: every append before it is durable and visible.
  void Synced(absl::Duration latency);
  // A gRPC call finished on this server.
  void RpcDone(absl::string_view method, absl::string_view code, absl::Duration latency);
  // Adds families read at every scrape. Must be called before scrapes begin and outlive them.
  void AddCollector(Collector collector);

  // Stops the HTTP endpoint (waits for a scrape in progress); counters keep working.
  void StopServing();
  // The HTTP port (0 if not serving).
  int port() const;
  // The Prometheus text format of everything, as a scrape would see it.
  std::string Render() const;

  struct Impl;

 private:
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leadflow::metrics

#endif  // LEADFLOW_SERVICES_METRICS_METRICS_H_

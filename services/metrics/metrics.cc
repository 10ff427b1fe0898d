#include "services/metrics/metrics.h"

#include <exception>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace leadflow::metrics {
namespace {

// Latency buckets, seconds: 50 us to 10 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  return *buckets;
}

// Scrape-time families from the collectors.
class CollectorSet final : public prometheus::Collectable {
 public:
  void Add(Collector c) {
    absl::MutexLock lock(&mu_);
    collectors_.push_back(std::move(c));
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<Collector> collectors;
    {
      absl::MutexLock lock(&mu_);
      collectors = collectors_;
    }
    std::vector<prometheus::MetricFamily> out;
    for (const Collector& c : collectors) {
      for (Family& f : c()) {
        prometheus::MetricFamily mf;
        mf.name = std::move(f.name);
        mf.help = std::move(f.help);
        mf.type = f.counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
        for (Sample& s : f.samples) {
          prometheus::ClientMetric m;
          for (auto& [k, v] : s.labels) m.label.push_back({std::move(k), std::move(v)});
          if (f.counter) {
            m.counter.value = s.value;
          } else {
            m.gauge.value = s.value;
          }
          mf.metric.push_back(std::move(m));
        }
        out.push_back(std::move(mf));
      }
    }
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Collector> collectors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<CollectorSet> collectors = std::make_shared<CollectorSet>();
  std::unique_ptr<prometheus::Exposer> exposer;
  prometheus::Family<prometheus::Counter>* commands = nullptr;
  prometheus::Family<prometheus::Histogram>* command_seconds = nullptr;
  prometheus::Histogram* append_seconds = nullptr;
  prometheus::Histogram* sync_seconds = nullptr;
  prometheus::Counter* appended_records = nullptr;
  prometheus::Family<prometheus::Histogram>* rpc_seconds = nullptr;
  // Label lookups cached: Family::Add takes a lock and hashes the labels. Per (type, result):
  // its counter and its type's histogram (Family::Add returns the same one for the same type).
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::pair<prometheus::Counter*, prometheus::Histogram*>>
      commands_by_key ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Histogram*> rpc_histograms ABSL_GUARDED_BY(mu);
};

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Metrics::~Metrics() = default;

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  auto impl = std::make_unique<Impl>();
  prometheus::Registry& r = *impl->registry;
  impl->commands = &prometheus::BuildCounter()
                        .Name("leadflow_commands_total")
                        .Help(
                            "Commands handled, by type and result (ok, replayed, "
                            "deduplicated, or the gRPC code of the refusal)")
                        .Register(r);
  impl->command_seconds = &prometheus::BuildHistogram()
                               .Name("leadflow_command_seconds")
                               .Help("Time from receiving a command to its reply, by type")
                               .Register(r);
  impl->append_seconds = &prometheus::BuildHistogram()
                              .Name("leadflow_append_seconds")
                              .Help(
                                  "Duration of one append to the log (a group of "
                                  "commands), before its sync")
                              .Register(r)
                              .Add({}, LatencyBuckets());
  impl->sync_seconds = &prometheus::BuildHistogram()
                            .Name("leadflow_log_sync_seconds")
                            .Help(
                                "Duration of one log sync (fsync) that makes the appends "
                                "before it durable; commands are answered after it")
                            .Register(r)
                            .Add({}, LatencyBuckets());
  impl->appended_records = &prometheus::BuildCounter()
                                .Name("leadflow_appended_records_total")
                                .Help("Records (events) appended to the log by the writer")
                                .Register(r)
                                .Add({});
  impl->rpc_seconds = &prometheus::BuildHistogram()
                           .Name("leadflow_grpc_server_handling_seconds")
                           .Help("gRPC calls served, by method and status code")
                           .Register(r);
  if (!listen.empty()) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(listen, 1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("metrics.listen: cannot serve metrics on ", listen, ": ", e.what()));
    }
    impl->exposer->RegisterCollectable(impl->registry);
    impl->exposer->RegisterCollectable(impl->collectors);
  }
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

void Metrics::CommandDone(absl::string_view type, absl::string_view result, absl::Duration latency,
                          int64_t count) {
  std::pair<prometheus::Counter*, prometheus::Histogram*> metrics;
  {
    const std::string key = absl::StrCat(type, "\n", result);
    absl::MutexLock lock(&impl_->mu);
    auto& m = impl_->commands_by_key[key];
    if (m.first == nullptr) {
      m.first =
          &impl_->commands->Add({{"type", std::string(type)}, {"result", std::string(result)}});
      m.second = &impl_->command_seconds->Add({{"type", std::string(type)}}, LatencyBuckets());
    }
    metrics = m;
  }
  metrics.first->Increment(static_cast<double>(count));
  metrics.second->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::Appended(int records, absl::Duration latency) {
  impl_->appended_records->Increment(records);
  impl_->append_seconds->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::Synced(absl::Duration latency) {
  impl_->sync_seconds->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::RpcDone(absl::string_view method, absl::string_view code, absl::Duration latency) {
  prometheus::Histogram* histogram = nullptr;
  {
    const std::string key = absl::StrCat(method, "\n", code);
    absl::MutexLock lock(&impl_->mu);
    auto& h = impl_->rpc_histograms[key];
    if (h == nullptr) {
      h = &impl_->rpc_seconds->Add({{"method", std::string(method)}, {"code", std::string(code)}},
                                   LatencyBuckets());
    }
    histogram = h;
  }
  histogram->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::AddCollector(Collector collector) { impl_->collectors->Add(std::move(collector)); }

void Metrics::StopServing() { impl_->exposer.reset(); }

int Metrics::port() const {
  if (!impl_->exposer) return 0;
  std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  for (auto& f : impl_->collectors->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace leadflow::metrics

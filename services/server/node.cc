#include "services/server/node.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/command/writer.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/log/embedded_log.h"
#include "services/log/kafka_log.h"
#include "services/gateway/gateway.h"
#include "services/logging/logging.h"
#include "services/metrics/metrics.h"
#include "services/server/backup.h"
#include "services/server/event_stream.h"
#include "services/server/security.h"
#include "services/server/services.h"
#include "services/server/views.h"
#include "services/storage/disk_guard.h"

namespace leadflow::server {

struct Node::Impl {
  // First, so it is destroyed last: the writer and the gRPC interceptor report to it.
  std::unique_ptr<metrics::Metrics> metrics;
  NodeOptions options;
  common::SystemClock clock;
  std::unique_ptr<log::MockKafkaCluster> mock;
  storage::StorageBudget budget;  // shared by every RocksDB database below
  // Free space of the data directory's disk: writes stop cleanly below its reserve.
  std::unique_ptr<storage::DiskGuard> disk;
  // Authentication and authorization of every call (null: off).
  std::shared_ptr<const AuthGuard> guard;
  std::unique_ptr<log::EventLog> log;
  std::unique_ptr<privacy::Vault> vault;  // after the log, before its users; null: no encryption
  std::unique_ptr<command::CommandWriter> writer;
  // The views this process runs (the registry's, views.h, that its role runs), in its order.
  struct View {
    const ViewSpec* spec = nullptr;
    std::unique_ptr<projections::Projection> projection;
    std::unique_ptr<projections::ViewStore> store;
    std::unique_ptr<projections::ProjectionRunner> runner;
    ViewEdge edge;
    std::unique_ptr<grpc::Service> service;  // its query service
  };
  std::vector<View> views;
  // Reads the log once for all the views above (runner.h); stopped before their runners.
  std::unique_ptr<projections::SharedTail> tail;
  // Reads waiting for a view are parked here (services.h); shared with the waits themselves.
  std::shared_ptr<TaskPool> view_waits;
  std::unique_ptr<LeadCommandServiceImpl> command_service;
  std::unique_ptr<ViewAdminServiceImpl> admin_service;
  std::unique_ptr<AdminServiceImpl> backup_service;
  std::unique_ptr<EventStreamServiceImpl> stream_service;
  std::unique_ptr<gateway::Gateway> gateway;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // Keeps gRPC health in step with the writer and the views.
  std::thread health_thread;
  absl::Notification stopping;
  // Health thread only: views that have caught up once, and views seen failed.
  std::map<std::string, bool> caught_up, failed;
  // The runners of the views this process runs, in the registry's order.
  std::vector<projections::ProjectionRunner*> runners() const {
    std::vector<projections::ProjectionRunner*> out;
    for (const View& v : views) {
      if (v.runner != nullptr) out.push_back(v.runner.get());
    }
    return out;
  }
  // Each view's partitions as of the health thread's last round (the metrics read this, so a
  // scrape never waits on the log).
  absl::Mutex snapshot_mu;
  std::map<std::string, std::vector<v1::ViewPartitionStatus>> snapshot ABSL_GUARDED_BY(snapshot_mu);
};

namespace {

projections::ViewStoreOptions StoreOptions(const storage::StorageBudget& budget,
                                           bool without_wal = false) {
  projections::ViewStoreOptions options;
  options.budget = budget;
  options.without_wal = without_wal;
  return options;
}

void Say(const NodeOptions& o, const std::string& line) {
  if (o.say) o.say(line);
}

absl::StatusOr<std::unique_ptr<log::EventLog>> OpenLog(Node::Impl& impl, bool writer = true) {
  const NodeOptions& o = impl.options;
  std::string brokers = o.kafka_brokers;
  if (o.kafka_mock) {
    LEADFLOW_ASSIGN_OR_RETURN(impl.mock, log::MockKafkaCluster::Start(1));
    LEADFLOW_RETURN_IF_ERROR(impl.mock->CreateTopic(o.kafka_topic, o.partitions));
    LEADFLOW_RETURN_IF_ERROR(impl.mock->CreateTopic(std::string(log::kKeysTopic), 1));
    brokers = impl.mock->bootstrap_servers();
    Say(o, absl::StrCat("kafka mock cluster on ", brokers, " (topic ", o.kafka_topic, ", ",
                        o.partitions,
                        " partitions). Mock limits: ~5 MiB kept per partition (older events "
                        "vanish), transactions not enforced. Watch it with: kcat -C -b ",
                        brokers, " -t ", o.kafka_topic, " -f '%p:%o %k\\n'"));
  }
  if (!brokers.empty()) {
    log::KafkaLogOptions k;
    k.bootstrap_servers = brokers;
    k.topic = o.kafka_topic;
    k.expected_partitions = o.partitions;
    // One writer owns every partition for now; the id names them so a second writer for the
    // same partitions fences this one.
    if (writer) {
      k.transactional_id = absl::StrCat(o.kafka_transactional_id, ".p0-", o.partitions - 1);
    }
    k.properties = o.kafka_properties;
    LEADFLOW_ASSIGN_OR_RETURN(auto kafka, log::KafkaLog::Open(k));
    return std::unique_ptr<log::EventLog>(std::move(kafka));
  }
  log::EmbeddedLogOptions e;
  e.dir = (std::filesystem::path(o.data_dir) / "log").string();
  e.partitions = o.partitions;
  e.adopt_stored_partitions = !o.partitions_given;
  e.sync = o.sync;
  e.budget = impl.budget;
  LEADFLOW_ASSIGN_OR_RETURN(auto embedded, log::EmbeddedLog::Open(e));
  return std::unique_ptr<log::EventLog>(std::move(embedded));
}

// The data keys of crypto-shredding (NodeOptions::encrypt_personal), once the log is open.
absl::Status OpenVault(Node::Impl& impl) {
  const NodeOptions& o = impl.options;
  if (!o.encrypt_personal) return absl::OkStatus();
  if (!impl.log->HasKeyStore()) {
    return absl::FailedPreconditionError(absl::StrCat(
        impl.log->Describe(), " has no key store: create the keys topic ", log::kKeysTopic,
        " (compacted; deploy/kafka/create-topics.sh) or set privacy.encrypt_personal=false to "
        "write personal data in clear (docs/security.md)"));
  }
  if (!o.kafka_brokers.empty() && o.kek_file.empty()) {
    return absl::FailedPreconditionError(
        "privacy.kek_file: required with Kafka: the writer and every view process must share "
        "one key-encryption key (64 hex digits; deploy/make-secrets.sh makes one)");
  }
  std::string path = o.kek_file;
  if (path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(o.data_dir) / "keys";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    path = (dir / "kek").string();
  }
  LEADFLOW_ASSIGN_OR_RETURN(std::string kek,
                            privacy::ReadOrCreateKek(path, o.kek_file.empty(), "privacy.kek_file"));
  LEADFLOW_ASSIGN_OR_RETURN(impl.vault, privacy::Vault::Make(impl.log.get(), std::move(kek)));
  return absl::OkStatus();
}

}  // namespace

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  impl_->stopping.Notify();
  if (impl_->health_thread.joinable()) impl_->health_thread.join();
  if (impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now());
    impl_->server->Wait();
  }
  impl_->metrics->StopServing();  // no scrape reads the views while they close
  // Views stop before the log they read; the writer's committer before the log it writes.
  if (impl_->tail) impl_->tail->Stop();
  for (Impl::View& v : impl_->views) v.runner.reset();
}

namespace {

// gRPC latency by method and status code, for every call this server handles.
class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(metrics::Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(absl::Now()) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      metrics_->RpcDone(method_, CodeName(status.error_code()), absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }
  metrics::Metrics* metrics_;
  std::string method_;
  absl::Time start_;
};

class RpcMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(metrics::Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, info->method() ? info->method() : "");
  }

 private:
  metrics::Metrics* metrics_;
};

// Metrics read at scrape time from the views, the writer and the RocksDB budget.
std::vector<metrics::Family> CollectNodeMetrics(Node::Impl& impl) {
  metrics::Family lag{.name = "leadflow_view_lag_events",
                      .help = "Events in the log not yet applied by the view, per partition"};
  metrics::Family applied{.name = "leadflow_view_applied_records_total",
                          .help = "Log records applied by the view since the process started",
                          .counter = true};
  metrics::Family state{.name = "leadflow_view_state",
                        .help = "1 for the view's current state (serving, catching_up, failed)"};
  metrics::Family sst{.name = "leadflow_rocksdb_sst_bytes",
                      .help = "Size of the store's table files on disk"};
  metrics::Family keys{.name = "leadflow_rocksdb_estimated_keys",
                       .help = "RocksDB's estimate of the keys in the store"};
  for (projections::ProjectionRunner* r : impl.runners()) {
    const std::string view = r->name();
    bool failed = false, behind = false;
    std::vector<v1::ViewPartitionStatus> partitions;
    {
      absl::MutexLock lock(&impl.snapshot_mu);
      partitions = impl.snapshot[view];
    }
    for (const v1::ViewPartitionStatus& p : partitions) {
      const int64_t l =
          p.end_offset() < 0 ? 0 : std::max<int64_t>(0, p.end_offset() - p.applied_offset());
      lag.samples.push_back(
          {.labels = {{"view", view}, {"partition", std::to_string(p.partition())}},
           .value = static_cast<double>(l)});
      failed |= p.state() == "failed" || p.state() == "stalled";
      behind |= l > 0;
    }
    applied.samples.push_back(
        {.labels = {{"view", view}}, .value = static_cast<double>(r->applied_records())});
    const std::string now = failed ? "failed" : behind ? "catching_up" : "serving";
    for (const char* s : {"serving", "catching_up", "failed"}) {
      state.samples.push_back(
          {.labels = {{"view", view}, {"state", s}}, .value = now == s ? 1.0 : 0.0});
    }
    const uint64_t sum_keys = r->store()->IntProperty("rocksdb.estimate-num-keys");
    const uint64_t bytes =
        r->store()->IntProperty("rocksdb.total-sst-files-size", /*aggregated=*/true);
    sst.samples.push_back({.labels = {{"store", view}}, .value = static_cast<double>(bytes)});
    keys.samples.push_back({.labels = {{"store", view}}, .value = static_cast<double>(sum_keys)});
  }
  std::vector<metrics::Family> out;
  if (!lag.samples.empty()) {
    metrics::Family read{.name = "leadflow_view_records_read_total",
                         .help =
                             "Log records read for the views: once by the shared reader "
                             "(reader=\"shared\") for every view in step, and by a view "
                             "that catches up alone (reader=<view>)",
                         .counter = true};
    if (impl.tail != nullptr) {
      read.samples.push_back({.labels = {{"reader", "shared"}},
                              .value = static_cast<double>(impl.tail->records_read())});
    }
    for (projections::ProjectionRunner* r : impl.runners()) {
      read.samples.push_back({.labels = {{"reader", r->name()}},
                              .value = static_cast<double>(r->records_read_alone())});
    }
    out = {std::move(lag), std::move(applied), std::move(state),
           std::move(sst), std::move(keys),    std::move(read)};
  }
  out.push_back({.name = "leadflow_rocksdb_memtable_bytes",
                 .help = "Memtable memory of all stores (limit: storage.memtable_mb)",
                 .samples = {{.value = static_cast<double>(impl.budget.memtable_usage())}}});
  out.push_back({.name = "leadflow_rocksdb_block_cache_bytes",
                 .help = "Block cache in use (limit: storage.block_cache_mb)",
                 .samples = {{.value = static_cast<double>(impl.budget.block_cache_usage())}}});
  if (impl.disk != nullptr) {
    out.push_back({.name = "leadflow_disk_free_bytes",
                   .help = "Free space on the data directory's disk",
                   .samples = {{.value = static_cast<double>(impl.disk->free_bytes())}}});
    out.push_back({.name = "leadflow_disk_writable",
                   .help = "1 if the data directory's disk takes writes (room above "
                           "storage.min_free_mb, not read-only), else 0",
                   .samples = {{.value = impl.disk->CheckWritable().ok() ? 1.0 : 0.0}}});
  }
  if (impl.writer != nullptr) {
    double refusing = 0;
    for (const auto& h : impl.writer->Health()) refusing += h.status.ok() ? 0 : 1;
    out.push_back({.name = "leadflow_writer_partitions_refusing",
                   .help = "Partitions whose writer refuses commands until repaired/restarted",
                   .samples = {{.value = refusing}}});
  }
  return out;
}

// The deployment's lead id key: NodeOptions::id_key, else the key file's content (created with
// a new random key if it does not exist yet).
absl::StatusOr<std::string> IdKey(const NodeOptions& o) {
  if (!o.id_key.empty()) return o.id_key;
  const std::filesystem::path path = o.id_key_file.empty()
                                         ? std::filesystem::path(o.data_dir) / "writer" / "ids.key"
                                         : std::filesystem::path(o.id_key_file);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (!o.id_key_file.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("ids.key_file: ", path.string(),
                       " does not exist (leave the option unset to keep a "
                       "generated key with the data)"));
    }
    std::filesystem::create_directories(path.parent_path(), ec);
    const std::filesystem::path tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << common::NewIdKey() << "\n";
      out.flush();
      if (!out) {
        return absl::UnavailableError(absl::StrCat("cannot write the lead id key ", tmp.string()));
      }
    }
    std::filesystem::permissions(
        tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create the lead id key ", path.string(), ": ", ec.message()));
    }
  }
  std::ifstream in(path);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  key = std::string(absl::StripAsciiWhitespace(key));
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat("cannot read the lead id key ", path.string()));
  }
  if (key.size() < 16) {
    return absl::FailedPreconditionError(
        absl::StrCat("the lead id key in ", path.string(),
                     " is shorter than 16 characters; use a long "
                     "random key (a new deployment gets 64 hex digits)"));
  }
  return key;
}

// Opens the writer on the node's log: replays it (progress every second), then reports the
// partitions that refuse commands.
absl::Status StartWriter(
    Node::Impl& impl,
    const std::vector<std::pair<std::string, std::vector<log::PartitionMark>>>& view_marks) {
  const NodeOptions& o = impl.options;
  const absl::Time replay_start = absl::Now();
  absl::Time last_report = replay_start;
  command::WriterOptions wo;
  wo.command_index_dir = (std::filesystem::path(o.data_dir) / "writer" / "commands").string();
  LEADFLOW_ASSIGN_OR_RETURN(wo.id_key, IdKey(o));
  wo.phone_region = o.phone_region;
  wo.command_index_budget = impl.budget;
  wo.disk = impl.disk.get();
  wo.witness_path = (std::filesystem::path(o.data_dir) / "writer" / "witness").string();
  wo.other_witnesses = view_marks;
  wo.accept_data_loss = o.accept_data_loss;
  wo.vault = impl.vault.get();
  wo.say = [&o](const std::string& line) {
    logging::Log(logging::Level::kError, line);
    (void)o;
  };
  wo.replay_progress = [&](int32_t p, int64_t offset, int64_t end) {
    if (absl::Now() - last_report < absl::Seconds(1)) return;
    last_report = absl::Now();
    Say(o, absl::StrCat("replaying partition ", p, ": ", offset, "/", end, " events"));
  };
  metrics::Metrics* m = impl.metrics.get();
  wo.on_append = [m](int records, absl::Duration took) { m->Appended(records, took); };
  wo.on_sync = [m](absl::Duration took) { m->Synced(took); };
  LEADFLOW_ASSIGN_OR_RETURN(impl.writer,
                            command::CommandWriter::Open(impl.log.get(), &impl.clock, wo));
  std::vector<std::string> failed;
  for (const auto& h : impl.writer->Health()) {
    if (!h.status.ok()) {
      failed.push_back(absl::StrCat("  partition ", h.partition, ": ",
                                    absl::StatusCodeToString(h.status.code()), ": ",
                                    h.status.message()));
    }
  }
  Say(o, absl::StrCat("log ", impl.log->Describe(), ": ", impl.log->partition_count(),
                      " partitions, ", impl.writer->replayed_events(), " events replayed in ",
                      absl::ToInt64Milliseconds(absl::Now() - replay_start), " ms"));
  if (!failed.empty()) {
    logging::Log(logging::Level::kError,
                 absl::StrCat(failed.size(), " partition(s) refuse commands until repaired:\n",
                              absl::StrJoin(failed, "\n")));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const NodeOptions& o = impl->options;
  if (o.partitions < 1 || o.partitions > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--partitions: must be 1 to 4096 (got ", o.partitions, ")"));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckExposure(o));
  const bool run_gateway = o.role.is_gateway();
  const bool run_writer = o.role.runs_writer();
  if (o.role.kind == Role::Kind::kView && FindView(o.role.view) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("role: no view named ", o.role.view));
  }
  if (!run_writer && !run_gateway && o.kafka_brokers.empty() && !o.kafka_mock) {
    return absl::InvalidArgumentError(
        "a view role needs a shared log: --kafka-brokers (or --kafka-mock); the embedded log "
        "belongs to the one process that opened it (run --role=all for a single machine)");
  }
  LEADFLOW_ASSIGN_OR_RETURN(impl->metrics, metrics::Metrics::Start(o.metrics_listen));
  impl->budget = storage::MakeStorageBudget(o.storage);
  if (!run_gateway) {
    std::error_code ec;
    std::filesystem::create_directories(o.data_dir, ec);
    impl->disk = std::make_unique<storage::DiskGuard>(o.data_dir, o.storage.min_free_bytes);
    if (absl::Status room = impl->disk->CheckWritable(); !room.ok()) {
      Say(o, absl::StrCat("WARNING: ", room.message(), "; starting read-only"));
    }
    LEADFLOW_ASSIGN_OR_RETURN(impl->log, OpenLog(*impl, /*writer=*/run_writer));
    LEADFLOW_RETURN_IF_ERROR(OpenVault(*impl));
  }

  // Views: one store each under <data-dir>/views/<name>, each with its own offsets. The stores
  // open first: what each has applied is a witness of the log, checked by the writer too.
  using View = Impl::View;
  for (const ViewSpec& spec : Views()) {
    if (!o.role.RunsView(spec.name)) continue;  // none for the writer and the gateway
    View& v = impl->views.emplace_back();
    v.spec = &spec;
    v.projection = spec.projection(o);
  }
  auto view_dir = [&](const projections::Projection& projection) {
    return (std::filesystem::path(o.data_dir) / "views" / projection.name()).string();
  };
  // A view's store whose own files are damaged (a RocksDB corruption found when it is opened or
  // loaded, or by a previous run, which left <name>.damaged beside it) is set aside and the view
  // rebuilt from the log: views are derived data, the log is the record.
  auto damaged_marker = [&](const projections::Projection& projection) {
    return view_dir(projection) + ".damaged";
  };
  auto set_aside = [&](View& slot, absl::string_view why) -> absl::Status {
    const std::string name = slot.projection->name();
    const std::string dir = view_dir(*slot.projection);
    const std::string aside = dir + ".damaged-store";
    logging::Log(logging::Level::kError,
                 absl::StrCat("view ", name, ": its store is damaged (", why, "); moved to ", aside,
                              " and rebuilding view ", name, " from the log"));
    slot.store.reset();
    std::error_code ec;
    std::filesystem::remove_all(aside, ec);
    std::filesystem::rename(dir, aside, ec);
    if (ec) std::filesystem::remove_all(dir, ec);
    std::filesystem::remove(damaged_marker(*slot.projection), ec);
    LEADFLOW_ASSIGN_OR_RETURN(slot.store, projections::OpenProjectionStore(
                                              dir, *slot.projection, StoreOptions(impl->budget)));
    return absl::OkStatus();
  };
  std::vector<std::pair<std::string, std::vector<log::PartitionMark>>> view_marks;
  for (View& slot : impl->views) {
    std::string rebuilt;
    absl::StatusOr<std::unique_ptr<projections::ViewStore>> opened =
        projections::OpenProjectionStore(view_dir(*slot.projection), *slot.projection,
                                         StoreOptions(impl->budget), &rebuilt);
    if (!opened.ok() && !absl::IsDataLoss(opened.status())) return opened.status();
    const absl::Status open_status = opened.status();
    if (opened.ok()) slot.store = *std::move(opened);
    if (!rebuilt.empty()) Say(o, rebuilt);
    std::error_code ec;
    if (!open_status.ok()) {
      LEADFLOW_RETURN_IF_ERROR(set_aside(slot, open_status.message()));
    } else if (std::filesystem::exists(damaged_marker(*slot.projection), ec)) {
      std::ifstream marker(damaged_marker(*slot.projection));
      std::string why((std::istreambuf_iterator<char>(marker)), std::istreambuf_iterator<char>());
      LEADFLOW_RETURN_IF_ERROR(set_aside(slot, absl::StripAsciiWhitespace(why)));
    }
    absl::StatusOr<std::vector<log::PartitionMark>> marks =
        projections::StoredMarks(*slot.store, impl->log->partition_count());
    if (marks.ok()) view_marks.emplace_back("view " + slot.projection->name(), *std::move(marks));
  }
  if (run_writer) LEADFLOW_RETURN_IF_ERROR(StartWriter(*impl, view_marks));

  // A view that applied events the log no longer holds (a damaged or replaced log) says so and
  // is rebuilt from the log as it is: it never skips events nor counts one twice.
  for (View& slot : impl->views) {
    const std::string name = slot.projection->name();
    absl::Status damage = projections::CheckViewAgainstLog(*impl->log, *slot.store, name);
    if (absl::IsDataLoss(damage)) {
      logging::Log(logging::Level::kError,
                   absl::StrCat("view ", name, ": ", damage.message(), "; rebuilding view ", name,
                                " from the log"));
      slot.store.reset();
      std::error_code ec;
      std::filesystem::remove_all(view_dir(*slot.projection), ec);
      LEADFLOW_ASSIGN_OR_RETURN(
          slot.store, projections::OpenProjectionStore(view_dir(*slot.projection), *slot.projection,
                                                       StoreOptions(impl->budget)));
    } else if (!damage.ok()) {
      Say(o, absl::StrCat("WARNING: view ", name,
                          ": could not check it against the log: ", damage.message()));
    }
    const absl::Time load_start = absl::Now();
    absl::Status loaded = slot.projection->Load(*slot.store);
    if (absl::IsDataLoss(loaded)) {
      LEADFLOW_RETURN_IF_ERROR(set_aside(slot, loaded.message()));
      loaded = slot.projection->Load(*slot.store);
    }
    LEADFLOW_RETURN_IF_ERROR(loaded);
    if (absl::Now() - load_start > absl::Seconds(1)) {
      Say(o, absl::StrCat("view ", name, ": index loaded in ",
                          absl::ToInt64Milliseconds(absl::Now() - load_start), " ms"));
    }
    projections::RunnerOptions ro;
    ro.disk = impl->disk.get();
    ro.vault = impl->vault.get();
    ro.on_store_damage = [name,
                          marker = damaged_marker(*slot.projection)](const absl::Status& why) {
      // Found while serving: the partition has stopped (health says so); the next start
      // rebuilds the view. Written down so a restart knows.
      std::ofstream out(marker, std::ios::trunc);
      out << why.message() << "\n";
      logging::Log(logging::Level::kError,
                   absl::StrCat("view ", name, ": its store is damaged (", why.message(),
                                "); restart leadflow to rebuild view ", name,
                                " from the log (or run leadflow rebuild --view ", name, ")"));
    };
    slot.runner = std::make_unique<projections::ProjectionRunner>(impl->log.get(), slot.store.get(),
                                                                  slot.projection.get(), ro);
  }
  // One reader per partition decodes each record once for every view it runs; a view that
  // stalls, fails or starts behind reads on its own (SharedTail).
  impl->tail = std::make_unique<projections::SharedTail>(impl->runners());
  impl->tail->Start();
  if (!run_gateway) {
    // The gateway forwards the caller's credentials; every other process checks them.
    std::string admin_token;
    LEADFLOW_ASSIGN_OR_RETURN(impl->guard, MakeAuthGuard(o, &admin_token));
    if (absl::StartsWith(admin_token, "WARNING:")) {
      Say(o, admin_token);
    } else if (!admin_token.empty()) {
      Say(o, absl::StrCat("admin token for leadctl on this machine: ", admin_token,
                          " (leadctl finds it under --data-dir, default ./leadflow-data)"));
    }
    if (impl->guard == nullptr) {
      Say(o,
          "WARNING: authentication is off: anyone who reaches the port may read and write "
          "every lead (auth.enabled)");
    }
  }
  if (!impl->views.empty()) {
    impl->view_waits = std::make_shared<TaskPool>();
    for (View& v : impl->views) {
      v.edge =
          ViewEdge{.runner = v.runner.get(), .log = impl->log.get(), .waits = impl->view_waits};
      v.service = v.spec->serve(ViewServing{.options = &impl->options,
                                            .projection = v.projection.get(),
                                            .store = v.store.get(),
                                            .edge = &v.edge,
                                            .partitions = impl->log->partition_count(),
                                            .vault = impl->vault.get(),
                                            .guard = impl->guard});
    }
    const std::vector<projections::ProjectionRunner*> runners = impl->runners();
    impl->admin_service = std::make_unique<ViewAdminServiceImpl>(
        std::vector<const projections::ProjectionRunner*>(runners.begin(), runners.end()));
  }
  if (!run_gateway) {
    impl->stream_service =
        std::make_unique<EventStreamServiceImpl>(impl->log.get(), impl->vault.get());
  }
  if (run_writer) {
    impl->command_service =
        std::make_unique<LeadCommandServiceImpl>(impl->writer.get(), impl->metrics.get());
  }
  if (!run_gateway) {
    Impl* raw = impl.get();
    impl->backup_service = std::make_unique<AdminServiceImpl>([raw](const std::string& dir) {
      BackupSources sources;
      sources.log = raw->log.get();
      sources.partitions = raw->log->partition_count();
      sources.data_dir = raw->options.data_dir;
      sources.id_key_file =
          raw->options.id_key_file.empty()
              ? (std::filesystem::path(raw->options.data_dir) / "writer" / "ids.key").string()
              : raw->options.id_key_file;
      if (raw->options.kek_file.empty()) {
        sources.kek_file = (std::filesystem::path(raw->options.data_dir) / "keys" / "kek").string();
      }
      for (const View& v : raw->views) sources.views.emplace_back(v.spec->name, v.store.get());
      absl::StatusOr<v1::BackupReply> reply = WriteBackup(sources, dir);
      if (reply.ok()) {
        logging::Log(logging::Level::kInfo, absl::StrCat("backup written to ", dir));
      } else {
        logging::Log(logging::Level::kWarn,
                     absl::StrCat("backup to ", dir, " failed: ", reply.status().message()));
      }
      return reply;
    });
  }
  if (run_gateway) {
    gateway::GatewayOptions g;
    for (const auto& [role, address] : o.gateway) {
      std::string service = role == "writer" ? kCommandService : "";
      for (const ViewSpec& view : Views()) {
        if (view.role() == role) service = view.service;
      }
      if (service.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("gateway.", role, ": no such role to forward to"));
      }
      g.routes[service] = {.role = role, .address = address};
    }
    if (g.routes.empty()) {
      return absl::InvalidArgumentError(
          "role=gateway: no gateway.* address set, nothing to forward to");
    }
    LEADFLOW_ASSIGN_OR_RETURN(g.credentials, UpstreamCredentials(o.security));
    impl->gateway = std::make_unique<gateway::Gateway>(std::move(g));
  }
  if (!run_gateway) {
    auto guard = [&](auto& service) {
      if (service) service->set_guard(impl->guard);
    };
    guard(impl->command_service);
    guard(impl->admin_service);
    guard(impl->backup_service);
    guard(impl->stream_service);
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (o.security.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  LEADFLOW_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> listener,
                            ListenerCredentials(o.security));
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second leadflow on the same port would silently share
  // it, splitting commands between two writers. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);  // batches of up to 10,000 commands
  builder.AddListeningPort(o.listen, listener, &impl->port);
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<RpcMetricsFactory>(impl->metrics.get()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  if (impl->command_service) builder.RegisterService(impl->command_service.get());
  for (View& v : impl->views) builder.RegisterService(v.service.get());
  if (impl->admin_service) builder.RegisterService(impl->admin_service.get());
  if (impl->backup_service) builder.RegisterService(impl->backup_service.get());
  if (impl->stream_service) builder.RegisterService(impl->stream_service.get());
  if (impl->gateway) builder.RegisterCallbackGenericService(impl->gateway.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", o.listen, " (address in use or not local?)"));
  }
  Impl* raw = impl.get();
  impl->metrics->AddCollector([raw] { return CollectNodeMetrics(*raw); });
  if (!o.metrics_listen.empty()) {
    Say(o,
        absl::StrCat("metrics on http://", o.metrics_listen.substr(0, o.metrics_listen.rfind(':')),
                     ":", impl->metrics->port(), "/metrics"));
  }
  auto* health = impl->server->GetHealthCheckService();
  auto update_health = [raw, health] {
    if (raw->gateway) {
      for (const auto& [service, serving] : raw->gateway->CheckUpstreams()) {
        health->SetServingStatus(service, serving);
      }
      return;
    }
    // The log's end per partition, once for all views, as last learned (never a blocking request:
    // a Kafka outage must not hang this round, nor shutdown, which waits for it).
    std::vector<int64_t> ends;
    if (raw->log != nullptr && !raw->views.empty()) {
      for (int32_t p = 0; p < raw->log->partition_count(); ++p) {
        if (raw->stopping.HasBeenNotified()) return;
        absl::StatusOr<int64_t> end = raw->log->KnownEndOffset(p);
        ends.push_back(end.ok() ? *end : -1);
      }
    }
    if (raw->writer) {
      bool writer_ok = true;
      for (const auto& h : raw->writer->Health()) writer_ok &= h.status.ok();
      health->SetServingStatus(kCommandService, writer_ok);
    }
    for (const Impl::View& v : raw->views) {
      projections::ProjectionRunner* r = v.runner.get();
      const std::string& view = v.spec->name;
      int64_t lag = 0;
      std::string error;
      int32_t failed_partition = -1;
      bool waits = false;  // the first not-serving partition waits for its storage
      std::vector<v1::ViewPartitionStatus> partitions = r->StatusAt(ends);
      for (const v1::ViewPartitionStatus& p : partitions) {
        if (p.end_offset() > p.applied_offset()) lag += p.end_offset() - p.applied_offset();
        if ((p.state() == "failed" || p.state() == "stalled") && failed_partition < 0) {
          failed_partition = p.partition();
          error = p.error();
          waits = p.state() == "stalled";
        }
      }
      {
        absl::MutexLock lock(&raw->snapshot_mu);
        raw->snapshot[view] = std::move(partitions);
      }
      const bool failed = failed_partition >= 0;
      if (failed && !raw->failed[view]) {
        logging::Log(waits ? logging::Level::kWarn : logging::Level::kError,
                     waits ? "view waits for its storage; it resumes by itself"
                           : "view failed; it stops at this event",
                     {{"view", view}, {"partition", failed_partition}, {"error", error}});
      } else if (!failed && raw->failed[view]) {
        logging::Log(logging::Level::kInfo, "view resumed", {{"view", view}});
      }
      raw->failed[view] = failed;
      const bool ends_known =
          !ends.empty() && std::all_of(ends.begin(), ends.end(), [](int64_t e) { return e >= 0; });
      if (!raw->caught_up[view] && !failed && ends_known && lag <= raw->options.caught_up_lag) {
        raw->caught_up[view] = true;
        logging::Log(logging::Level::kInfo, "view serving", {{"view", view}, {"lag", lag}});
      }
      const bool serving = raw->caught_up[view] && !failed;
      health->SetServingStatus(v.spec->service, serving);
    }
    // The server as a whole ("") stays SERVING while the process runs: per-service status says
    // which part is not ready.
  };
  update_health();
  impl->health_thread = std::thread([raw, update_health] {
    int tick = 0;
    while (!raw->stopping.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      ++tick;
      if (raw->disk) raw->disk->Refresh();
      // Storage that stopped taking writes (a full disk): retried every 2 s once there is
      // room; the writer reopens the log and its index and rebuilds its state from the log.
      if (raw->writer && tick % 2 == 0 && raw->writer->NeedsRecovery() &&
          (!raw->disk || raw->disk->CheckWritable().ok())) {
        absl::Status recovered = raw->writer->Recover();
        if (recovered.ok()) {
          logging::Log(logging::Level::kInfo, "writer takes commands again (storage recovered)");
        }
      }
      update_health();
      if (raw->guard != nullptr && tick % 5 == 0) {
        if (std::string reloaded = raw->guard->policy_store().MaybeReload(); !reloaded.empty()) {
          logging::Log(logging::Level::kInfo, reloaded);
        }
      }
      if (raw->options.on_tick) raw->options.on_tick();
    }
  });
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

void Node::Shutdown(absl::Duration grace) {
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
}

void Node::Wait() { impl_->server->Wait(); }
int Node::port() const { return impl_->port; }

int Node::metrics_port() const { return impl_->metrics->port(); }
std::string Node::RenderMetrics() const { return impl_->metrics->Render(); }

std::vector<int64_t> Node::LogEnds() const {
  std::vector<int64_t> ends;
  if (impl_->log == nullptr) return ends;
  for (int32_t p = 0; p < impl_->log->partition_count(); ++p) {
    absl::StatusOr<int64_t> end = impl_->log->EndOffset(p);
    ends.push_back(end.ok() ? *end : -1);
  }
  return ends;
}

Node::StorageUsage Node::storage_usage() const {
  return {.memtable_bytes = impl_->budget.memtable_usage(),
          .block_cache_bytes = impl_->budget.block_cache_usage()};
}

absl::Status RebuildViews(
    const NodeOptions& options, const std::vector<std::string>& views,
    const std::function<void(const std::string&, int64_t, int64_t)>& progress) {
  Node::Impl impl;
  impl.options = options;
  if (options.kafka_mock) {
    return absl::InvalidArgumentError("rebuild: --kafka-mock has no events to rebuild from");
  }
  impl.budget = storage::MakeStorageBudget(options.storage);
  LEADFLOW_ASSIGN_OR_RETURN(impl.log, OpenLog(impl, /*writer=*/false));
  LEADFLOW_RETURN_IF_ERROR(OpenVault(impl));
  // Fresh stores beside the live ones, all filled in one pass over the log (each record read and
  // decoded once), then swapped in one by one.
  const std::filesystem::path dir = std::filesystem::path(options.data_dir) / "views";
  std::vector<std::unique_ptr<projections::Projection>> owned;
  std::vector<projections::Projection*> projections;
  for (const std::string& name : views) {
    const ViewSpec* spec = FindView(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--view: unknown view '", name, "'; one of: ",
                                                     absl::StrJoin(ViewNames(), ", "), ", all"));
    }
    projections.push_back(owned.emplace_back(spec->projection(options)).get());
  }
  {
    std::vector<std::unique_ptr<projections::ViewStore>> stores;
    std::vector<std::unique_ptr<projections::ProjectionRunner>> runners;
    std::vector<projections::ProjectionRunner*> raw;
    for (projections::Projection* projection : projections) {
      const std::filesystem::path fresh = dir / (projection->name() + ".rebuild");
      std::filesystem::remove_all(fresh);
      LEADFLOW_ASSIGN_OR_RETURN(
          stores.emplace_back(),
          projections::OpenProjectionStore(fresh.string(), *projection,
                                           StoreOptions(impl.budget, /*without_wal=*/true)));
      projections::RunnerOptions ro;
      ro.vault = impl.vault.get();
      runners.push_back(std::make_unique<projections::ProjectionRunner>(
          impl.log.get(), stores.back().get(), projection, ro));
      raw.push_back(runners.back().get());
    }
    const std::string names = absl::StrJoin(views, ", ");
    LEADFLOW_RETURN_IF_ERROR(
        projections::ProjectionRunner::CatchUpAll(raw, [&](int64_t applied, int64_t total) {
          if (progress) progress(names, applied, total);
        }));
    // Written without the WAL (a failed rebuild is discarded): on disk before the swap.
    for (auto& store : stores) LEADFLOW_RETURN_IF_ERROR(store->Flush());
  }
  for (projections::Projection* projection : projections) {
    const std::string name = projection->name();
    const std::filesystem::path live = dir / name;
    const std::filesystem::path fresh = dir / (name + ".rebuild");
    const std::filesystem::path old = dir / (name + ".old");
    // Swap: the old store is kept until the new one is in place.
    std::error_code ec;
    std::filesystem::remove_all(old, ec);
    if (std::filesystem::exists(live)) std::filesystem::rename(live, old, ec);
    if (ec)
      return absl::UnavailableError(
          absl::StrCat("rebuild: cannot move ", live.string(), " aside: ", ec.message()));
    std::filesystem::rename(fresh, live, ec);
    if (ec)
      return absl::UnavailableError(
          absl::StrCat("rebuild: cannot move ", fresh.string(), " into place: ", ec.message()));
    std::filesystem::remove_all(old, ec);
    // A store a previous run found damaged is replaced now: its marker goes with it.
    std::filesystem::remove(dir / (name + ".damaged"), ec);
  }
  return absl::OkStatus();
}

}  // namespace leadflow::server

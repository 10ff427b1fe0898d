#include "services/server/node.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/command/writer.h"
#include "services/common/status_util.h"
#include "services/log/embedded_log.h"
#include "services/log/kafka_log.h"
#include "services/server/services.h"

namespace leadflow::server {

struct Node::Impl {
  NodeOptions options;
  common::SystemClock clock;
  std::unique_ptr<log::MockKafkaCluster> mock;
  storage::StorageBudget budget;  // shared by every RocksDB database below
  std::unique_ptr<log::EventLog> log;
  std::unique_ptr<command::CommandWriter> writer;
  projections::LeadProjection lead_projection;
  projections::CustomerProjection customer_projection;
  std::unique_ptr<projections::FunnelProjection> funnel_projection;  // with options.funnel
  projections::ReprocessingProjection reprocessing_projection;
  std::unique_ptr<projections::ViewStore> lead_store, customer_store, funnel_store,
      reprocessing_store;
  std::unique_ptr<projections::ProjectionRunner> lead_runner, customer_runner, funnel_runner,
      reprocessing_runner;
  std::unique_ptr<LeadCommandServiceImpl> command_service;
  std::unique_ptr<LeadQueryServiceImpl> query_service;
  std::unique_ptr<CustomerQueryServiceImpl> customer_service;
  std::unique_ptr<FunnelQueryServiceImpl> funnel_service;
  std::unique_ptr<ReprocessingQueryServiceImpl> reprocessing_service;
  std::unique_ptr<ViewAdminServiceImpl> admin_service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // Keeps gRPC health in step with the writer and the views.
  std::thread health_thread;
  absl::Notification stopping;
};

namespace {

void Say(const NodeOptions& o, const std::string& line) {
  if (o.say) o.say(line);
}

absl::StatusOr<std::unique_ptr<log::EventLog>> OpenLog(Node::Impl& impl, bool writer = true) {
  const NodeOptions& o = impl.options;
  std::string brokers = o.kafka_brokers;
  if (o.kafka_mock) {
    LEADFLOW_ASSIGN_OR_RETURN(impl.mock, log::MockKafkaCluster::Start(1));
    LEADFLOW_RETURN_IF_ERROR(impl.mock->CreateTopic(o.kafka_topic, o.partitions));
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
  e.sync = o.sync;
  e.budget = impl.budget;
  LEADFLOW_ASSIGN_OR_RETURN(auto embedded, log::EmbeddedLog::Open(e));
  return std::unique_ptr<log::EventLog>(std::move(embedded));
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
  // Views stop before the log they read; the writer's committer before the log it writes.
  impl_->lead_runner.reset();
  impl_->customer_runner.reset();
  impl_->funnel_runner.reset();
  impl_->reprocessing_runner.reset();
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const NodeOptions& o = impl->options;
  if (o.partitions < 1 || o.partitions > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--partitions: must be 1 to 4096 (got ", o.partitions, ")"));
  }
  const bool run_writer = o.role != NodeOptions::Role::kViews;
  const bool run_views = o.role != NodeOptions::Role::kWriter;
  if (!run_writer && o.kafka_brokers.empty()) {
    return absl::InvalidArgumentError(
        "--role=views: needs --kafka-brokers (the embedded log belongs to the one process that "
        "opened it; run --role=all for a single machine)");
  }
  impl->budget = storage::MakeStorageBudget(o.storage);
  LEADFLOW_ASSIGN_OR_RETURN(impl->log, OpenLog(*impl, /*writer=*/run_writer));
  std::vector<std::string> failed;
  if (run_writer) {
  const absl::Time replay_start = absl::Now();
  absl::Time last_report = replay_start;
  command::WriterOptions wo;
  wo.command_index_dir =
      (std::filesystem::path(o.data_dir) / "writer" / "commands").string();
  wo.command_index_budget = impl->budget;
  wo.replay_progress = [&](int32_t p, int64_t offset, int64_t end) {
    if (absl::Now() - last_report < absl::Seconds(1)) return;
    last_report = absl::Now();
    Say(o, absl::StrCat("replaying partition ", p, ": ", offset, "/", end, " events"));
  };
  LEADFLOW_ASSIGN_OR_RETURN(impl->writer,
                            command::CommandWriter::Open(impl->log.get(), &impl->clock, wo));
  for (const auto& h : impl->writer->Health()) {
    if (!h.status.ok()) failed.push_back(absl::StrCat("  partition ", h.partition, ": ",
                                                      h.status.message()));
  }
  Say(o, absl::StrCat("log ", impl->log->Describe(), ": ", impl->log->partition_count(),
                      " partitions, ", impl->writer->replayed_events(), " events replayed in ",
                      absl::ToInt64Milliseconds(absl::Now() - replay_start), " ms"));
  if (!failed.empty()) {
    Say(o, absl::StrCat("WARNING: ", failed.size(),
                        " partition(s) refuse commands until repaired:\n",
                        absl::StrJoin(failed, "\n")));
  }
  }  // run_writer

  // Views: one store each under <data-dir>/views/<name>, each with its own offsets.
  auto open_view = [&](projections::Projection& projection,
                       std::unique_ptr<projections::ViewStore>& store,
                       std::unique_ptr<projections::ProjectionRunner>& runner) -> absl::Status {
    LEADFLOW_ASSIGN_OR_RETURN(
        store, projections::ViewStore::Open(
                   {.dir = (std::filesystem::path(o.data_dir) / "views" / projection.name())
                               .string(),
                    .column_families = projection.column_families(),
                    .budget = impl->budget}));
    const absl::Time load_start = absl::Now();
    LEADFLOW_RETURN_IF_ERROR(projection.Load(*store));
    if (absl::Now() - load_start > absl::Seconds(1)) {
      Say(o, absl::StrCat("view ", projection.name(), ": index loaded in ",
                          absl::ToInt64Milliseconds(absl::Now() - load_start), " ms"));
    }
    runner = std::make_unique<projections::ProjectionRunner>(impl->log.get(), store.get(),
                                                             &projection);
    runner->Start();
    return absl::OkStatus();
  };
  const int32_t partitions = impl->log->partition_count();
  if (run_views) {
    LEADFLOW_RETURN_IF_ERROR(
        open_view(impl->lead_projection, impl->lead_store, impl->lead_runner));
    LEADFLOW_RETURN_IF_ERROR(
        open_view(impl->customer_projection, impl->customer_store, impl->customer_runner));
    impl->funnel_projection = std::make_unique<projections::FunnelProjection>(o.funnel);
    LEADFLOW_RETURN_IF_ERROR(
        open_view(*impl->funnel_projection, impl->funnel_store, impl->funnel_runner));
    LEADFLOW_RETURN_IF_ERROR(open_view(impl->reprocessing_projection, impl->reprocessing_store,
                                       impl->reprocessing_runner));
    impl->funnel_service = std::make_unique<FunnelQueryServiceImpl>(
        impl->funnel_projection.get(), impl->funnel_runner.get());
    impl->reprocessing_service = std::make_unique<ReprocessingQueryServiceImpl>(
        impl->reprocessing_store.get(), impl->reprocessing_runner.get());
    impl->query_service = std::make_unique<LeadQueryServiceImpl>(
        impl->lead_store.get(), impl->lead_runner.get(), partitions);
    impl->customer_service = std::make_unique<CustomerQueryServiceImpl>(
        impl->customer_store.get(), impl->customer_runner.get(), partitions);
    impl->admin_service = std::make_unique<ViewAdminServiceImpl>(
        std::vector<const projections::ProjectionRunner*>{
            impl->lead_runner.get(), impl->customer_runner.get(), impl->funnel_runner.get(),
            impl->reprocessing_runner.get()});
  }
  if (run_writer) {
    impl->command_service = std::make_unique<LeadCommandServiceImpl>(impl->writer.get());
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second leadflow on the same port would silently share
  // it, splitting commands between two writers. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);  // batches of up to 10,000 commands
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &impl->port);
  if (run_writer) builder.RegisterService(impl->command_service.get());
  if (run_views) {
    builder.RegisterService(impl->query_service.get());
    builder.RegisterService(impl->customer_service.get());
    builder.RegisterService(impl->funnel_service.get());
    builder.RegisterService(impl->reprocessing_service.get());
    builder.RegisterService(impl->admin_service.get());
  }
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen,
                                               " (address in use or not local?)"));
  }
  auto* health = impl->server->GetHealthCheckService();
  if (run_writer) {
    health->SetServingStatus("leadflow.v1.LeadCommandService", failed.empty());
  }
  Impl* raw = impl.get();
  auto update_health = [raw, health] {
    if (raw->lead_runner == nullptr) return;
    health->SetServingStatus("leadflow.v1.LeadQueryService", raw->lead_runner->Health().ok());
    health->SetServingStatus("leadflow.v1.CustomerQueryService",
                             raw->customer_runner->Health().ok());
    health->SetServingStatus("leadflow.v1.FunnelQueryService", raw->funnel_runner->Health().ok());
    health->SetServingStatus("leadflow.v1.ReprocessingQueryService",
                             raw->reprocessing_runner->Health().ok());
  };
  update_health();
  impl->health_thread = std::thread([raw, update_health] {
    while (!raw->stopping.WaitForNotificationWithTimeout(absl::Seconds(1))) update_health();
  });
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

void Node::Shutdown(absl::Duration grace) {
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
}

void Node::Wait() { impl_->server->Wait(); }
int Node::port() const { return impl_->port; }

Node::StorageUsage Node::storage_usage() const {
  return {.memtable_bytes = impl_->budget.memtable_usage(),
          .block_cache_bytes = impl_->budget.block_cache_usage()};
}

absl::Status RebuildViews(const NodeOptions& options, const std::vector<std::string>& views,
                          const std::function<void(const std::string&, int64_t, int64_t)>& progress) {
  Node::Impl impl;
  impl.options = options;
  if (options.kafka_mock) {
    return absl::InvalidArgumentError("rebuild: --kafka-mock has no events to rebuild from");
  }
  impl.budget = storage::MakeStorageBudget(options.storage);
  LEADFLOW_ASSIGN_OR_RETURN(impl.log, OpenLog(impl, /*writer=*/false));
  // Fresh stores beside the live ones, all filled in one pass over the log (each record read and
  // decoded once), then swapped in one by one.
  const std::filesystem::path dir = std::filesystem::path(options.data_dir) / "views";
  std::vector<projections::Projection*> projections;
  for (const std::string& name : views) {
    projections::Projection* projection = nullptr;
    if (name == "lead") projection = &impl.lead_projection;
    if (name == "customer") projection = &impl.customer_projection;
    if (name == "funnel") {
      impl.funnel_projection = std::make_unique<projections::FunnelProjection>(options.funnel);
      projection = impl.funnel_projection.get();
    }
    if (name == "reprocessing") projection = &impl.reprocessing_projection;
    if (projection == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--view: unknown view '", name, "'; one of: lead, customer, funnel, reprocessing, all"));
    }
    projections.push_back(projection);
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
          projections::ViewStore::Open({.dir = fresh.string(),
                                        .column_families = projection->column_families(),
                                        .without_wal = true,
                                        .budget = impl.budget}));
      runners.push_back(std::make_unique<projections::ProjectionRunner>(
          impl.log.get(), stores.back().get(), projection));
      raw.push_back(runners.back().get());
    }
    const std::string names = absl::StrJoin(views, ", ");
    LEADFLOW_RETURN_IF_ERROR(projections::ProjectionRunner::CatchUpAll(
        raw, [&](int64_t applied, int64_t total) {
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
    if (ec) return absl::UnavailableError(absl::StrCat("rebuild: cannot move ", live.string(),
                                                       " aside: ", ec.message()));
    std::filesystem::rename(fresh, live, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("rebuild: cannot move ", fresh.string(),
                                                       " into place: ", ec.message()));
    std::filesystem::remove_all(old, ec);
  }
  return absl::OkStatus();
}

}  // namespace leadflow::server

// One registry of views: a view added in one line (RegisterView) is opened, fed, served,
// reported (health, view status, metrics), known to the configuration (its role and gateway
// route) and rebuilt, with no other change anywhere.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/config/config.h"
#include "services/server/node.h"
#include "services/server/views.h"
#include "views/touch_view.grpc.pb.h"  // generated from tests/views/touch_view.proto

namespace leadflow::server {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

// Counts each lead's events: one row per lead.
class TouchProjection final : public projections::Projection {
 public:
  std::string name() const override { return "touches"; }
  std::vector<std::string> column_families() const override { return {"touches"}; }
  bool ReadsPersonalData(const v1::Event&) const override { return false; }
  absl::Status Apply(const v1::Event& e, const log::Record&, projections::ViewTxn& txn) override {
    absl::StatusOr<std::optional<std::string>> row = txn.Get(0, e.aggregate_id());
    if (!row.ok()) return row.status();
    const int64_t n = row->has_value() ? std::stoll(**row) : 0;
    txn.Put(0, e.aggregate_id(), std::to_string(n + 1));
    return absl::OkStatus();
  }
};

// Its query service (synchronous: a test's service may block).
class TouchService final : public test::TouchQueryService::Service {
 public:
  explicit TouchService(const projections::ViewStore* store) : store_(store) {}
  grpc::Status Touches(grpc::ServerContext*, const test::TouchRequest* request,
                       test::TouchReply* reply) override {
    absl::StatusOr<std::string> row = store_->Get(0, request->lead_id());
    reply->set_events(row.ok() ? std::stoll(*row) : 0);
    return grpc::Status::OK;
  }

 private:
  const projections::ViewStore* store_;
};

TEST(ViewRegistryTest, AViewAddedInOneLineIsServedReportedConfiguredAndRebuilt) {
  // The one line.
  ASSERT_TRUE(
      RegisterView(
          {.name = "touches",
           .service = "leadflow.test.TouchQueryService",
           .projection = [](const NodeOptions&) { return std::make_unique<TouchProjection>(); },
           .serve = [](const ViewServing& v) { return std::make_unique<TouchService>(v.store); }})
          .ok());
  EXPECT_THAT(ViewNames(), Contains("touches"));
  // Taken names are refused.
  EXPECT_THAT(
      std::string(
          RegisterView(
              {.name = "touches",
               .service = "x.Y",
               .projection = [](const NodeOptions&) { return std::make_unique<TouchProjection>(); },
               .serve =
                   [](const ViewServing& v) { return std::make_unique<TouchService>(v.store); }})
              .message()),
      HasSubstr("exists"));

  // The configuration knows its role and its gateway route.
  config::ConfigLoader loader(ViewNames());
  ASSERT_TRUE(loader.ApplyFlag("role", "touches-view").ok());
  ASSERT_TRUE(loader.ApplyFlag("kafka.mock", "true").ok());
  absl::StatusOr<config::ServeConfig> c = loader.Finish();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.role, Role::View("touches"));
  EXPECT_THAT(loader.Markdown(), HasSubstr("gateway.touches_view"));

  std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-registry-XXXXXX";
  const std::string dir = mkdtemp(tmpl.data());
  NodeOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.partitions = 2;
  o.id_key = "registry-test-key";
  o.metrics_listen = "127.0.0.1:0";
  std::string lead;
  {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*node)->port()),
                                       grpc::InsecureChannelCredentials());
    auto commands = v1::LeadCommandService::NewStub(channel);
    v1::CaptureLead capture;
    capture.mutable_meta()->set_command_id("c1");
    capture.mutable_meta()->mutable_actor()->set_id("alice");
    capture.set_email("ada@example.com");
    capture.mutable_person()->set_full_name("Ada Lovelace");
    capture.set_source_channel(v1::SOURCE_CHANNEL_REFERRAL);
    grpc::ClientContext cc;
    v1::CommandReply reply;
    grpc::Status captured = commands->CaptureLead(&cc, capture, &reply);
    ASSERT_TRUE(captured.ok()) << captured.error_message();
    lead = reply.lead_id();
    v1::AssignLead assign;
    assign.mutable_meta()->set_command_id("a1");
    assign.mutable_meta()->mutable_actor()->set_id("alice");
    assign.set_lead_id(lead);
    assign.set_owner("bob");
    grpc::ClientContext ac;
    grpc::Status assigned = commands->AssignLead(&ac, assign, &reply);
    ASSERT_TRUE(assigned.ok()) << assigned.error_message();

    // Served: its query answers from its own store once it has applied both events.
    auto touches = test::TouchQueryService::NewStub(channel);
    int64_t events = 0;
    for (int i = 0; i < 200 && events < 2; ++i) {
      grpc::ClientContext tc;
      test::TouchRequest req;
      req.set_lead_id(lead);
      test::TouchReply got;
      ASSERT_TRUE(touches->Touches(&tc, req, &got).ok());
      events = got.events();
      if (events < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(events, 2);

    // Reported: view status, health under its service name, metrics.
    auto admin = v1::ViewAdminService::NewStub(channel);
    grpc::ClientContext sc;
    v1::ViewStatus status;
    ASSERT_TRUE(admin->GetViewStatus(&sc, v1::GetViewStatusRequest(), &status).ok());
    std::vector<std::string> views;
    for (const auto& p : status.partitions()) views.push_back(p.view());
    EXPECT_THAT(views, Contains("touches"));
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::health::v1::HealthCheckResponse h;
    for (int i = 0; i < 50; ++i) {
      grpc::ClientContext hc;
      grpc::health::v1::HealthCheckRequest hr;
      hr.set_service("leadflow.test.TouchQueryService");
      ASSERT_TRUE(health->Check(&hc, hr, &h).ok());
      if (h.status() == grpc::health::v1::HealthCheckResponse::SERVING) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    EXPECT_THAT((*node)->RenderMetrics(), HasSubstr("view=\"touches\""));
  }

  // Rebuilt: by name and as part of "all"; the rebuilt store answers the same.
  ASSERT_TRUE(RebuildViews(o, {"touches"}, nullptr).ok());
  ASSERT_TRUE(RebuildViews(o, ViewNames(), nullptr).ok());
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / "views" / "touches"));
  {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*node)->port()),
                                       grpc::InsecureChannelCredentials());
    grpc::ClientContext tc;
    test::TouchRequest req;
    req.set_lead_id(lead);
    test::TouchReply got;
    ASSERT_TRUE(test::TouchQueryService::NewStub(channel)->Touches(&tc, req, &got).ok());
    EXPECT_EQ(got.events(), 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace leadflow::server

// The gRPC edge, in process over loopback: codes and messages as a client sees them.
#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/log/embedded_log.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/server/grpc_status.h"
#include "services/server/node.h"

namespace leadflow::server {
namespace {

using ::testing::HasSubstr;

constexpr char kIdKey[] = "server-test-key";

class ServerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-server-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    Start();
  }
  void TearDown() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    NodeOptions o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    o.partitions = 4;
    o.kafka_mock = GetParam();
    o.id_key = kIdKey;
    auto node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                       grpc::InsecureChannelCredentials());
    commands_ = v1::LeadCommandService::NewStub(channel);
    queries_ = v1::LeadQueryService::NewStub(channel);
  }

  v1::CaptureLead Ada(const std::string& id) {
    v1::CaptureLead c;
    c.mutable_meta()->set_command_id(id);
    c.mutable_meta()->mutable_actor()->set_id("alice");
    c.mutable_person()->set_full_name("Ada Lovelace");
    c.set_email("ada@example.com");
    c.set_company("Analytical Engines");
    c.set_source_channel(v1::SOURCE_CHANNEL_REFERRAL);
    return c;
  }

  grpc::Status Capture(const v1::CaptureLead& c, v1::CommandReply* reply) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return commands_->CaptureLead(&ctx, c, reply);
  }

  std::string dir_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<v1::LeadCommandService::Stub> commands_;
  std::unique_ptr<v1::LeadQueryService::Stub> queries_;
};

TEST_P(ServerTest, CaptureThenGet) {
  v1::CommandReply reply;
  grpc::Status st = Capture(Ada("c1"), &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(reply.lead_id(), common::LeadIdScheme(kIdKey).ForEmail("ada@example.com"));
  EXPECT_EQ(reply.lead_version(), 1);

  grpc::ClientContext ctx;
  v1::GetLeadRequest req;
  req.set_lead_id(reply.lead_id());
  v1::LeadView lead;
  st = queries_->GetLead(&ctx, req, &lead);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(lead.person().full_name(), "Ada Lovelace");
  EXPECT_EQ(lead.status(), v1::LEAD_STATUS_NEW);
  EXPECT_EQ(lead.origin_type(), v1::ORIGIN_TYPE_SEED);
  EXPECT_EQ(lead.last_position().offset(), reply.last_position().offset());
}

TEST_P(ServerTest, ErrorsKeepTheirCodeAndMessageAtTheEdge) {
  v1::CommandReply reply;
  v1::CaptureLead bad = Ada("c1");
  bad.set_email("ada@@example.com");
  grpc::Status st = Capture(bad, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "capture_lead.email: not a valid email address (more than one '@')");

  ASSERT_TRUE(Capture(Ada("c1"), &reply).ok());
  v1::ConvertLead convert;
  convert.mutable_meta()->set_command_id("v1");
  convert.mutable_meta()->mutable_actor()->set_id("alice");
  convert.set_lead_id(reply.lead_id());
  convert.mutable_deal_value()->set_currency_code("EUR");
  convert.set_invoice_ref("INV-1");
  convert.set_account_owner("bob");
  {
    grpc::ClientContext ctx;
    st = commands_->ConvertLead(&ctx, convert, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(st.error_message(), HasSubstr("is NEW; convert is allowed only from QUALIFIED"));
  }
  {
    v1::CaptureLead stale = Ada("c2");
    stale.mutable_meta()->set_expected_version(0);  // "must be new"
    st = Capture(stale, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_THAT(st.error_message(), HasSubstr("expected version 0 but lead"));
    // The current version, typed, in the standard rich-error details.
    google::rpc::Status rich;
    ASSERT_TRUE(rich.ParseFromString(st.error_details()));
    ASSERT_EQ(rich.details_size(), 1);
    v1::VersionConflict conflict;
    ASSERT_TRUE(rich.details(0).UnpackTo(&conflict));
    EXPECT_EQ(conflict.aggregate_id(), common::LeadIdScheme(kIdKey).ForEmail("ada@example.com"));
    EXPECT_EQ(conflict.expected_version(), 0);
    EXPECT_EQ(conflict.current_version(), 1);
  }
  {
    grpc::ClientContext ctx;
    v1::Command empty;
    st = commands_->Execute(&ctx, empty, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "command.body: no command set");
  }
  {
    grpc::ClientContext ctx;
    v1::GetLeadRequest req;
    req.set_lead_id(common::LeadIdScheme(kIdKey).ForEmail("nobody@example.com"));
    v1::LeadView lead;
    st = queries_->GetLead(&ctx, req, &lead);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::GetLeadRequest req;
    req.set_lead_id("bogus");
    v1::LeadView lead;
    st = queries_->GetLead(&ctx, req, &lead);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "lead_id: 'bogus' is not a lead id (ld_ and 20 hex digits)");
  }
  {
    v1::CaptureLead reused = Ada("c1");
    reused.set_company("Someone else");
    st = Capture(reused, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
}

TEST_P(ServerTest, RetriedRpcIsIdempotent) {
  v1::CommandReply first, second;
  ASSERT_TRUE(Capture(Ada("c1"), &first).ok());
  ASSERT_TRUE(Capture(Ada("c1"), &second).ok());
  EXPECT_FALSE(first.replayed());
  EXPECT_TRUE(second.replayed());
  EXPECT_EQ(second.event_ids(0), first.event_ids(0));
}

TEST(ServerEmbeddedTest, StateSurvivesARestartOfTheNode) {
  std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-server-XXXXXX";
  std::string dir = mkdtemp(tmpl.data());
  NodeOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  std::string lead_id;
  for (int life = 0; life < 2; ++life) {
    auto node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*node)->port()),
                                       grpc::InsecureChannelCredentials());
    auto commands = v1::LeadCommandService::NewStub(channel);
    auto queries = v1::LeadQueryService::NewStub(channel);
    if (life == 0) {
      v1::CaptureLead c;
      c.mutable_meta()->set_command_id("c1");
      c.mutable_meta()->mutable_actor()->set_id("alice");
      c.mutable_person()->set_full_name("Grace Hopper");
      c.set_phone("+1 202 555 0100");
      c.set_source_channel(v1::SOURCE_CHANNEL_EVENT);
      grpc::ClientContext ctx;
      v1::CommandReply reply;
      ASSERT_TRUE(commands->CaptureLead(&ctx, c, &reply).ok());
      lead_id = reply.lead_id();
    } else {
      grpc::ClientContext ctx;
      v1::GetLeadRequest req;
      req.set_lead_id(lead_id);
      v1::LeadView lead;
      ASSERT_TRUE(queries->GetLead(&ctx, req, &lead).ok());
      EXPECT_EQ(lead.phone(), "+12025550100");
      EXPECT_EQ(lead.origin_type(), v1::ORIGIN_TYPE_SPEAR);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ServerEmbeddedTest, ACorruptPartitionShowsInHealthAndViewStatus) {
  std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-server-XXXXXX";
  std::string dir = mkdtemp(tmpl.data());
  {
    log::EmbeddedLogOptions lo;
    lo.dir = dir + "/log";
    lo.partitions = 4;
    auto log = log::EmbeddedLog::Open(lo);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(2, {{"ld_x", "garbage, not an event"}}).ok());
  }
  NodeOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.partitions = 4;
  auto node = Node::Start(o);
  ASSERT_TRUE(node.ok()) << node.status();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*node)->port()),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  auto check = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = health->Check(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  };
  EXPECT_EQ(check(""), grpc::health::v1::HealthCheckResponse::SERVING) << "the process is up";
  EXPECT_EQ(check("leadflow.v1.LeadCommandService"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  // Views notice on their first read; health follows within a second: poll for it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (const char* service :
       {"leadflow.v1.LeadQueryService", "leadflow.v1.CustomerQueryService",
        "leadflow.v1.FunnelQueryService", "leadflow.v1.ReprocessingQueryService"}) {
    while (check(service) != grpc::health::v1::HealthCheckResponse::NOT_SERVING &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_EQ(check(service), grpc::health::v1::HealthCheckResponse::NOT_SERVING) << service;
  }
  auto admin = v1::ViewAdminService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::ViewStatus vs;
  ASSERT_TRUE(admin->GetViewStatus(&ctx, v1::GetViewStatusRequest(), &vs).ok());
  int failed = 0;
  for (const auto& p : vs.partitions()) {
    if (p.state() == "failed") {
      ++failed;
      EXPECT_EQ(p.partition(), 2);
      EXPECT_THAT(p.error(), HasSubstr("stopped: partition 2 offset 0: undecodable event"));
    }
  }
  EXPECT_EQ(failed, 4) << "every view (lead, customer, funnel, reprocessing), partition 2 only";
  node->reset();
  std::filesystem::remove_all(dir);
}

TEST(ServerEmbeddedTest, BusyPortIsAClearError) {
  std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-server-XXXXXX";
  std::string dir = mkdtemp(tmpl.data());
  NodeOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  auto first = Node::Start(o);
  ASSERT_TRUE(first.ok());
  NodeOptions o2;
  o2.data_dir = dir + "/second";
  o2.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = Node::Start(o2);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen on"));
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Logs, ServerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "kafka_mock" : "embedded"; });

}  // namespace
}  // namespace leadflow::server

namespace leadflow::server {
namespace {

TEST(GrpcStatusTest, MessagesAreBoundedAndCutOnACharacterBoundary) {
  EXPECT_EQ(BoundedMessage("short"), "short");
  // 1023 ASCII bytes, then a 2-byte character straddling the limit.
  const std::string long_message = std::string(1023, 'a') + "\xc3\xa9" + std::string(5000, 'b');
  const std::string cut = BoundedMessage(long_message);
  EXPECT_LT(cut.size(), 1100u);
  EXPECT_EQ(cut.substr(0, 1023), std::string(1023, 'a'));
  EXPECT_THAT(cut, ::testing::HasSubstr("... (cut at 1023 of 6025 bytes)"));
  const grpc::Status st = ToGrpcStatus(absl::InvalidArgumentError(long_message));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), cut);
}

}  // namespace
}  // namespace leadflow::server

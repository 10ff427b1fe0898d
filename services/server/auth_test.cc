// Authentication and authorization through a real server: every role against every RPC and
// every command kind inside Execute, with the expected answer written out here by hand (not
// derived from the policy); token defects at the edge; the actor is the caller; analysts get
// personal fields redacted; health stays open.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "leadflow/v1/stream.grpc.pb.h"
#include "services/auth/token.h"
#include "services/server/node.h"

namespace leadflow::server {
namespace {

using ::testing::HasSubstr;

const std::string kSecret = "auth-test-secret-0123456789abcdef0123456789";
const std::vector<std::string> kRoles = {"admin",   "sales",      "intake", "import",
                                         "analyst", "downstream", "auditor"};

// Which roles may call each method (by hand). LeadCommandService methods are listed with the
// roles that may run *some* command: each command is then checked by its kind (kCommandRoles).
const std::map<std::string, std::set<std::string>>& MethodRoles() {
  static const auto* table = [] {
    const std::set<std::string> commanders = {"admin", "sales", "intake", "import"};
    const std::set<std::string> readers = {"admin", "sales", "auditor"};
    const std::set<std::string> analysts = {"admin", "sales", "auditor", "analyst"};
    auto* t = new std::map<std::string, std::set<std::string>>;
    // A typed command RPC is its command kind: intake may capture and record inquiries only.
    const std::set<std::string> lifecycle = {"admin", "sales", "import"};
    for (const char* m :
         {"UpdateContactDetails", "AssignLead", "SetTemperature", "LogInteraction",
          "ScheduleFollowUp", "CompleteFollowUp", "QualifyLead", "ChangeStage", "RejectLead",
          "PostponeLead", "DisqualifyLead", "ReactivateLead", "MergeLead", "ConvertLead",
          "UpdateCustomerProfile", "RecordPurchase", "RecordNps"}) {
      (*t)[std::string("leadflow.v1.LeadCommandService/") + m] = lifecycle;
    }
    for (const char* m : {"CaptureLead", "RecordInquiry", "Execute", "ExecuteBatch"}) {
      (*t)[std::string("leadflow.v1.LeadCommandService/") + m] = commanders;
    }
    (*t)["leadflow.v1.LeadCommandService/EraseLead"] = {"admin"};
    (*t)["leadflow.v1.LeadQueryService/GetLead"] = analysts;
    (*t)["leadflow.v1.LeadQueryService/FindLead"] = readers;
    (*t)["leadflow.v1.LeadQueryService/GetLeadTimeline"] = readers;
    (*t)["leadflow.v1.LeadQueryService/ListLeads"] = analysts;
    (*t)["leadflow.v1.LeadQueryService/CountLeads"] = analysts;
    (*t)["leadflow.v1.LeadQueryService/ListOverdueFollowUps"] = analysts;
    (*t)["leadflow.v1.CustomerQueryService/GetCustomer"] = readers;
    (*t)["leadflow.v1.CustomerQueryService/ListCustomers"] = readers;
    for (const char* m : {"GetCohortFunnel", "GetActivity", "GetPipeline"}) {
      (*t)[std::string("leadflow.v1.FunnelQueryService/") + m] = analysts;
    }
    for (const char* m : {"ListExits", "GetExitSummary", "GetRecontactQueue", "GetWinBackList"}) {
      (*t)[std::string("leadflow.v1.ReprocessingQueryService/") + m] = analysts;
    }
    (*t)["leadflow.v1.ViewAdminService/GetViewStatus"] = {"admin",   "sales",      "import",
                                                          "analyst", "downstream", "auditor"};
    (*t)["leadflow.v1.AdminService/Backup"] = {"admin"};
    (*t)["leadflow.v1.EventStreamService/StreamEvents"] = {"admin", "downstream"};
    return t;
  }();
  return *table;
}

// Which roles may run each command kind (by hand).
const std::map<std::string, std::set<std::string>>& CommandRoles() {
  static const auto* table = [] {
    const std::set<std::string> lifecycle = {"admin", "sales", "import"};
    auto* t = new std::map<std::string, std::set<std::string>>;
    for (const char* kind :
         {"update_contact_details", "assign_lead", "set_temperature", "log_interaction",
          "schedule_follow_up", "complete_follow_up", "qualify_lead", "change_stage", "reject_lead",
          "postpone_lead", "disqualify_lead", "reactivate_lead", "merge_lead", "convert_lead",
          "update_customer_profile", "record_purchase", "record_nps"}) {
      (*t)[kind] = lifecycle;
    }
    (*t)["capture_lead"] = {"admin", "sales", "import", "intake"};
    (*t)["record_inquiry"] = {"admin", "sales", "import", "intake"};
    (*t)["erase_lead"] = {"admin"};
    return t;
  }();
  return *table;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-auth-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    NodeOptions o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    o.partitions = 2;
    o.id_key = "auth-test-id-key";
    o.security.auth = true;
    o.security.token_key = kSecret;
    o.security.admin_token_file = "-";
    auto node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::string Token(const std::string& role, const std::string& subject = "tester") {
    auth::TokenOptions t;
    t.key = kSecret;
    return *auth::IssueToken(t, subject, role, absl::Hours(1), absl::Now());
  }
  // Calls `method` with `request` bytes, as `token` (empty: none).
  grpc::Status Call(const std::string& method, const std::string& token,
                    const google::protobuf::Message& request, grpc::ByteBuffer* out = nullptr) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    grpc::ByteBuffer in(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    stub.UnaryCall(&ctx, "/" + method, grpc::StubOptions(), &in, out != nullptr ? out : &response,
                   [&](grpc::Status s) {
                     std::lock_guard<std::mutex> lock(mu);
                     status = std::move(s);
                     done = true;
                     cv.notify_one();
                   });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    return status;
  }
  template <typename T>
  T Parse(const grpc::ByteBuffer& buffer) {
    std::vector<grpc::Slice> slices;
    (void)buffer.Dump(&slices);
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    T message;
    EXPECT_TRUE(message.ParseFromString(bytes));
    return message;
  }
  v1::Command Capture(const std::string& id, const std::string& actor = "") {
    v1::Command c;
    v1::CaptureLead* cap = c.mutable_capture_lead();
    cap->mutable_meta()->set_command_id(id);
    if (!actor.empty()) cap->mutable_meta()->mutable_actor()->set_id(actor);
    cap->mutable_person()->set_full_name("Ada Lovelace");
    cap->set_email(id + "@example.com");
    cap->set_source_channel(v1::SOURCE_CHANNEL_REFERRAL);
    return c;
  }

  std::string dir_;
  std::unique_ptr<Node> node_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AuthTest, TheTableCoversEveryMethodOfEveryService) {
  std::set<std::string> served;
  for (const char* service :
       {"leadflow.v1.LeadCommandService", "leadflow.v1.LeadQueryService",
        "leadflow.v1.CustomerQueryService", "leadflow.v1.FunnelQueryService",
        "leadflow.v1.ReprocessingQueryService", "leadflow.v1.ViewAdminService",
        "leadflow.v1.AdminService", "leadflow.v1.EventStreamService"}) {
    const auto* s = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(s, nullptr) << service;
    for (int i = 0; i < s->method_count(); ++i) {
      served.insert(std::string(service) + "/" + s->method(i)->name());
    }
  }
  std::set<std::string> listed;
  for (const auto& [m, roles] : MethodRoles()) listed.insert(m);
  EXPECT_EQ(served, listed) << "a new RPC needs its row in MethodRoles (who may call it?)";
  const auto* body = v1::Command::descriptor()->FindOneofByName("body");
  EXPECT_EQ(static_cast<size_t>(body->field_count()), CommandRoles().size());
}

TEST_F(AuthTest, EveryRoleAgainstEveryMethod) {
  std::map<std::string, std::string> tokens;
  for (const std::string& role : kRoles) tokens[role] = Token(role);
  for (const auto& [method, allowed] : MethodRoles()) {
    for (const std::string& role : kRoles) {
      // An empty request: an admitted call gets past authorization (and then, typically,
      // INVALID_ARGUMENT); a refused one is PERMISSION_DENIED naming the method and the role.
      v1::StreamEventsRequest empty;  // field 2: a stream that stops at the log's end
      if (absl::StrContains(method, "StreamEvents")) empty.set_stop_at_end(true);
      grpc::Status st = Call(method, tokens[role], empty);
      if (allowed.contains(role)) {
        EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << role << " " << method << ": " << st.error_message();
        EXPECT_NE(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << role << " " << method;
      } else {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << role << " " << method << ": " << st.error_message();
        EXPECT_THAT(st.error_message(), HasSubstr("'" + role + "'"));
        // The method, or for a typed command RPC the command kind it carries.
        if (!absl::StartsWith(method, "leadflow.v1.LeadCommandService/") ||
            !MethodRoles().at("leadflow.v1.LeadCommandService/Execute").contains(role)) {
          EXPECT_THAT(st.error_message(), HasSubstr(method)) << role;
        } else {
          EXPECT_THAT(st.error_message(), HasSubstr("may not run ")) << role << " " << method;
        }
      }
    }
  }
}

TEST_F(AuthTest, EveryRoleAgainstEveryCommandKindInsideExecute) {
  const auto* body = v1::Command::descriptor()->FindOneofByName("body");
  for (int i = 0; i < body->field_count(); ++i) {
    const std::string kind = body->field(i)->name();
    v1::Command command;
    command.GetReflection()->MutableMessage(&command, body->field(i));  // an empty command
    for (const std::string& role : kRoles) {
      grpc::Status st = Call("leadflow.v1.LeadCommandService/Execute", Token(role), command);
      const bool may_run_commands =
          MethodRoles().at("leadflow.v1.LeadCommandService/Execute").contains(role);
      if (CommandRoles().at(kind).contains(role)) {
        EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << role << " " << kind << ": " << st.error_message();
      } else {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << role << " " << kind;
        // Roles without any command are refused at the method; the others at the command.
        EXPECT_THAT(st.error_message(),
                    HasSubstr(may_run_commands ? "may not run " + kind : "may not run commands"))
            << role << " " << kind;
      }
    }
  }
}

TEST_F(AuthTest, ABatchRefusesOnlyTheCommandsTheRoleMayNotRun) {
  v1::CommandBatch batch;
  *batch.add_commands() = Capture("c1");
  v1::Command assign;
  assign.mutable_assign_lead()->mutable_meta()->set_command_id("a1");
  assign.mutable_assign_lead()->set_lead_id("ld_00000000000000000000");
  assign.mutable_assign_lead()->set_owner("bob");
  *batch.add_commands() = assign;
  grpc::ByteBuffer out;
  grpc::Status st =
      Call("leadflow.v1.LeadCommandService/ExecuteBatch", Token("intake"), batch, &out);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto reply = Parse<v1::CommandBatchReply>(out);
  ASSERT_EQ(reply.results_size(), 2);
  EXPECT_EQ(reply.results(0).code(), 0) << reply.results(0).message();
  EXPECT_EQ(reply.results(1).code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_THAT(reply.results(1).message(), HasSubstr("role 'intake' may not run assign_lead"));
}

TEST_F(AuthTest, NoOrBadCredentialsAreUnauthenticatedAndHealthStaysOpen) {
  v1::GetLeadRequest req;
  req.set_lead_id("ld_00000000000000000000");
  grpc::Status none = Call("leadflow.v1.LeadQueryService/GetLead", "", req);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("no credentials"));
  const std::string garbage = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJlLW5vdC12YWxpZA";
  grpc::Status bad = Call("leadflow.v1.LeadQueryService/GetLead", garbage, req);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(bad.error_message(), ::testing::Not(HasSubstr("c2lnbmF0dXJl")));
  auth::TokenOptions other;
  other.key = "another-deployment-secret-0123456789abcdef";
  grpc::Status foreign =
      Call("leadflow.v1.LeadQueryService/GetLead",
           *auth::IssueToken(other, "x", "admin", absl::Hours(1), absl::Now()), req);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    auto queries = v1::LeadQueryService::NewStub(channel_);
    v1::LeadView lead;
    grpc::Status basic = queries->GetLead(&ctx, req, &lead);
    EXPECT_EQ(basic.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(basic.error_message(), HasSubstr("Bearer"));
  }
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext hc;
  grpc::health::v1::HealthCheckRequest hreq;
  grpc::health::v1::HealthCheckResponse hresp;
  EXPECT_TRUE(health->Check(&hc, hreq, &hresp).ok());
}

TEST_F(AuthTest, TheActorIsTheCallerAndAClaimedActorIsOnlyANote) {
  grpc::ByteBuffer out;
  grpc::Status st = Call("leadflow.v1.LeadCommandService/Execute", Token("sales", "alice"),
                         Capture("c2", /*actor=*/"mallory"), &out);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string lead_id = Parse<v1::CommandReply>(out).lead_id();
  v1::GetLeadTimelineRequest req;
  req.set_lead_id(lead_id);
  grpc::ByteBuffer tl;
  st = Call("leadflow.v1.LeadQueryService/GetLeadTimeline", Token("auditor"), req, &tl);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto timeline = Parse<v1::LeadTimeline>(tl);
  ASSERT_EQ(timeline.events_size(), 1);
  EXPECT_EQ(timeline.events(0).actor().id(), "alice");
  EXPECT_EQ(timeline.events(0).actor().on_behalf_of(), "mallory");
  EXPECT_EQ(timeline.events(0).actor().kind(), v1::Actor::KIND_USER);
}

TEST_F(AuthTest, AnalystsSeeLeadsWithoutPersonalFields) {
  grpc::ByteBuffer out;
  ASSERT_TRUE(
      Call("leadflow.v1.LeadCommandService/Execute", Token("sales"), Capture("c3"), &out).ok());
  v1::GetLeadRequest req;
  req.set_lead_id(Parse<v1::CommandReply>(out).lead_id());
  grpc::ByteBuffer as_analyst, as_sales;
  ASSERT_TRUE(
      Call("leadflow.v1.LeadQueryService/GetLead", Token("analyst"), req, &as_analyst).ok());
  ASSERT_TRUE(Call("leadflow.v1.LeadQueryService/GetLead", Token("sales"), req, &as_sales).ok());
  auto redacted = Parse<v1::LeadView>(as_analyst);
  auto full = Parse<v1::LeadView>(as_sales);
  EXPECT_EQ(full.email(), "c3@example.com");
  EXPECT_EQ(full.person().full_name(), "Ada Lovelace");
  EXPECT_EQ(redacted.email(), "");
  EXPECT_FALSE(redacted.has_person());
  EXPECT_EQ(redacted.status(), full.status());
  EXPECT_EQ(redacted.source_channel(), v1::SOURCE_CHANNEL_REFERRAL);
}

}  // namespace
}  // namespace leadflow::server

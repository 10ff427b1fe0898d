// EventStreamService.StreamEvents: every event in log order per partition, resumable, following
// new events, bad positions refused, and only for the roles that may read the stream.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "leadflow/v1/stream.grpc.pb.h"
#include "services/auth/token.h"
#include "services/server/node.h"

namespace leadflow::server {
namespace {

using ::testing::HasSubstr;

const std::string kSecret = "stream-test-secret-0123456789abcdef0123456789";

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-stream-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    NodeOptions o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    o.partitions = 2;
    o.id_key = "stream-test-id-key";
    o.security.auth = true;
    o.security.token_key = kSecret;
    o.security.admin_token_file = "-";
    auto node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                       grpc::InsecureChannelCredentials());
    commands_ = v1::LeadCommandService::NewStub(channel);
    stream_ = v1::EventStreamService::NewStub(channel);
  }
  void TearDown() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::string Token(const std::string& role) {
    auth::TokenOptions t;
    t.key = kSecret;
    return *auth::IssueToken(t, "consumer", role, absl::Hours(1), absl::Now());
  }
  void Capture(int i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + Token("sales"));
    v1::CaptureLead c;
    c.mutable_meta()->set_command_id(absl::StrCat("c", i));
    c.mutable_person()->set_full_name(absl::StrCat("Person ", i));
    c.set_email(absl::StrCat("p", i, "@example.com"));
    c.set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
    v1::CommandReply reply;
    ASSERT_TRUE(commands_->CaptureLead(&ctx, c, &reply).ok());
  }
  // Reads a stream to its end (or `max` events); returns the status.
  grpc::Status Read(const v1::StreamEventsRequest& req, std::vector<v1::StreamedEvent>* out,
                    const std::string& role = "downstream", size_t max = 1000) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + Token(role));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto reader = stream_->StreamEvents(&ctx, req);
    v1::StreamedEvent e;
    while (out->size() < max && reader->Read(&e)) out->push_back(e);
    if (out->size() >= max) ctx.TryCancel();
    return reader->Finish();
  }

  std::string dir_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<v1::LeadCommandService::Stub> commands_;
  std::unique_ptr<v1::EventStreamService::Stub> stream_;
};

TEST_F(StreamTest, EveryEventInOrderAndResumable) {
  for (int i = 0; i < 6; ++i) Capture(i);
  v1::StreamEventsRequest req;
  req.set_stop_at_end(true);
  std::vector<v1::StreamedEvent> all;
  grpc::Status st = Read(req, &all);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(all.size(), 6u);
  std::map<int32_t, int64_t> next;
  for (const auto& e : all) {
    EXPECT_EQ(e.position().offset(), next[e.position().partition()]++) << "in order, no gaps";
    EXPECT_TRUE(e.event().has_lead_captured());
    EXPECT_THAT(e.event().lead_captured().email(), HasSubstr("@example.com"));
  }
  // Resume after the first event of each partition: only the rest comes.
  for (const auto& [p, n] : next) {
    v1::LogPosition* at = req.add_from();
    at->set_partition(p);
    at->set_offset(1);
  }
  std::vector<v1::StreamedEvent> rest;
  ASSERT_TRUE(Read(req, &rest).ok());
  EXPECT_EQ(rest.size(), all.size() - next.size());
}

TEST_F(StreamTest, FollowingDeliversNewEvents) {
  Capture(1);
  v1::StreamEventsRequest req;  // no stop_at_end: follows
  std::vector<v1::StreamedEvent> got;
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Capture(2);
  });
  grpc::Status st = Read(req, &got, "downstream", /*max=*/2);
  later.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);  // the client stopped it
}

TEST_F(StreamTest, BadPositionsAndRolesAreRefused) {
  std::vector<v1::StreamedEvent> got;
  v1::StreamEventsRequest bad;
  bad.set_stop_at_end(true);
  bad.add_from()->set_partition(7);
  grpc::Status st = Read(bad, &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("from[0].partition: 7 is not a partition (0 to 1)"));
  v1::StreamEventsRequest negative;
  negative.add_from()->set_offset(-1);
  st = Read(negative, &got);
  EXPECT_THAT(st.error_message(), HasSubstr("from[0].offset: must not be negative"));
  v1::StreamEventsRequest twice;
  twice.add_from()->set_partition(1);
  twice.add_from()->set_partition(1);
  st = Read(twice, &got);
  EXPECT_THAT(st.error_message(), HasSubstr("partition 1 is given twice"));
  v1::StreamEventsRequest ahead;
  ahead.set_stop_at_end(false);
  v1::LogPosition* far = ahead.add_from();
  far->set_partition(0);
  far->set_offset(1000);
  st = Read(ahead, &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE) << st.error_message();
  v1::StreamEventsRequest ok;
  ok.set_stop_at_end(true);
  st = Read(ok, &got, "sales");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("role 'sales' may not call"));
}

}  // namespace
}  // namespace leadflow::server

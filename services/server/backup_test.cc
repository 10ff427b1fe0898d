// leadflow backup / verify / restore in process: a backup of a serving node, what verify finds
// in a damaged copy (without naming personal data), and what restore refuses.
#include "services/server/backup.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "projections/lead/lead_view.h"
#include "projections/runner/view_store.h"
#include "rocksdb/db.h"

namespace leadflow::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kIdKey[] = "backup-test-key";

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path() / "leadflow-backup-XXXXXX";
    root_ = mkdtemp(tmpl.data());
    data_ = root_ + "/data";
  }
  void TearDown() override {
    node_.reset();
    fs::remove_all(root_);
  }
  NodeOptions Options(const std::string& data_dir) const {
    NodeOptions o;
    o.data_dir = data_dir;
    o.listen = "127.0.0.1:0";
    o.partitions = 2;
    o.id_key = kIdKey;
    return o;
  }
  void Start(bool kafka_mock = false) {
    NodeOptions o = Options(data_);
    o.kafka_mock = kafka_mock;
    auto node = Node::Start(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                       grpc::InsecureChannelCredentials());
    commands_ = v1::LeadCommandService::NewStub(channel);
    admin_ = v1::AdminService::NewStub(channel);
    views_ = v1::ViewAdminService::NewStub(channel);
  }
  void Capture(int n) {
    for (int i = 0; i < n; ++i) {
      v1::CaptureLead c;
      c.mutable_meta()->set_command_id(absl::StrCat("capture-", i));
      c.mutable_meta()->mutable_actor()->set_id("loader");
      c.mutable_person()->set_full_name(absl::StrCat("Person ", i));
      c.set_email(absl::StrCat("person", i, "@example.com"));
      c.set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
      grpc::ClientContext ctx;
      v1::CommandReply reply;
      ASSERT_TRUE(commands_->CaptureLead(&ctx, c, &reply).ok());
    }
  }
  // Waits until every view has applied `events` events in all.
  void AwaitViews(int64_t events) {
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      v1::ViewStatus status;
      ASSERT_TRUE(views_->GetViewStatus(&ctx, v1::GetViewStatusRequest(), &status).ok());
      std::map<std::string, int64_t> applied;
      for (const auto& p : status.partitions()) applied[p.view()] += p.applied_offset();
      bool done = !applied.empty();
      for (const auto& [view, n] : applied) done = done && n >= events;
      if (done) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "views did not catch up";
  }
  grpc::Status Backup(const std::string& dir, v1::BackupReply* reply) {
    grpc::ClientContext ctx;
    v1::BackupRequest request;
    request.set_dir(dir);
    return admin_->Backup(&ctx, request, reply);
  }
  // Verify's verdict and everything it said.
  absl::Status VerifyDir(const std::string& dir, std::string* said) {
    return Verify(
        Options(dir), [said](const std::string& line) { *said += line + "\n"; }, root_);
  }
  // Opens the lead view of a data directory for writing (to damage it).
  std::unique_ptr<projections::ViewStore> LeadStore(const std::string& data_dir) {
    projections::LeadProjection lead;
    projections::ViewStoreOptions o;
    o.dir = data_dir + "/views/lead";
    o.column_families = lead.column_families();
    auto store = projections::ViewStore::Open(o);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string root_, data_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<v1::LeadCommandService::Stub> commands_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::ViewAdminService::Stub> views_;
};

TEST_F(BackupTest, BackupOfAServingNodeVerifiesAndRestores) {
  Start();
  Capture(40);
  AwaitViews(40);
  v1::BackupReply reply;
  grpc::Status st = Backup(root_ + "/b1", &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int64_t events = 0;
  for (int64_t e : reply.log_ends()) events += e;
  EXPECT_EQ(events, 40);
  ASSERT_EQ(reply.views_size(), 4);
  for (const auto& v : reply.views()) {
    int64_t applied = 0;
    for (int64_t a : v.applied()) applied += a;
    EXPECT_EQ(applied, 40) << v.view();
  }
  EXPECT_TRUE(fs::exists(root_ + "/b1/backup.json"));
  EXPECT_TRUE(fs::exists(root_ + "/b1/writer/witness"));
  EXPECT_FALSE(fs::exists(root_ + "/b1.partial"));

  std::string said;
  absl::Status verified = VerifyDir(root_ + "/b1", &said);
  EXPECT_TRUE(verified.ok()) << verified << "\n" << said;
  EXPECT_THAT(said, HasSubstr("view lead: "));
  EXPECT_THAT(said, HasSubstr("identical to a rebuild"));

  node_.reset();
  const std::string restored = root_ + "/restored";
  said.clear();
  absl::Status r = Restore(root_ + "/b1", Options(restored),
                           [&said](const std::string& line) { said += line + "\n"; });
  ASSERT_TRUE(r.ok()) << r << said;
  EXPECT_TRUE(fs::exists(restored + "/log"));
  EXPECT_TRUE(fs::exists(restored + "/restored-from-backup.json"));
  EXPECT_FALSE(fs::exists(restored + ".restoring"));
  said.clear();
  EXPECT_TRUE(VerifyDir(restored, &said).ok()) << said;
}

// RocksDB's checkpoints hard-link table files on the same filesystem: damage to a live file
// (a bad block) would then be damage to the backup too. A backup shares no file with the data.
TEST_F(BackupTest, ABackupSharesNoFileWithTheDataDirectory) {
  Start();
  Capture(40);
  AwaitViews(40);
  v1::BackupReply reply;
  grpc::Status st = Backup(root_ + "/b1", &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  absl::StatusOr<v1::BackupReply> stopped = absl::UnavailableError("not taken");
  node_.reset();
  stopped = BackupStopped(Options(data_), root_ + "/b2");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  int tables = 0;
  for (const std::string backup : {"/b1", "/b2"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root_ + backup)) {
      if (!entry.is_regular_file()) continue;
      if (entry.path().extension() == ".sst" || entry.path().extension() == ".log") ++tables;
      EXPECT_EQ(fs::hard_link_count(entry.path()), 1u) << entry.path();
    }
  }
  EXPECT_GT(tables, 0);  // the test saw the files a checkpoint links (tables, write-ahead logs)
}

TEST_F(BackupTest, BadBackupRequestsAreRefusedWithTheFieldAndReason) {
  Start();
  Capture(3);
  v1::BackupReply reply;
  grpc::Status st = Backup("relative/dir", &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("dir"));
  st = Backup("", &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  st = Backup(root_ + "/no/such/parent/b", &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("does not exist"));
  ASSERT_TRUE(Backup(root_ + "/b", &reply).ok());
  st = Backup(root_ + "/b", &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("already exists"));
}

TEST_F(BackupTest, VerifyFindsAChangedRowWithoutNamingItsKey) {
  Start();
  Capture(20);
  AwaitViews(20);
  v1::BackupReply reply;
  ASSERT_TRUE(Backup(root_ + "/b", &reply).ok());
  {
    auto store = LeadStore(root_ + "/b");
    ASSERT_NE(store, nullptr);
    std::unique_ptr<rocksdb::Iterator> it = store->NewIterator(0);
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    std::string value = it->value().ToString();
    value.back() ^= 0x01;
    ASSERT_TRUE(store->db()->Put(rocksdb::WriteOptions(), store->cf(0), it->key(), value).ok());
  }
  std::string said;
  absl::Status verified = VerifyDir(root_ + "/b", &said);
  EXPECT_TRUE(absl::IsDataLoss(verified)) << verified;
  EXPECT_THAT(said, HasSubstr("view lead: family 0 row 0: its value differs from a rebuild"));
  EXPECT_THAT(said, Not(HasSubstr("example.com")));
  EXPECT_THAT(said, Not(HasSubstr("Person")));
  // The other views are still checked and pass.
  EXPECT_THAT(said, HasSubstr("view funnel: "));
  EXPECT_THAT(said, HasSubstr("view reprocessing: "));

  // A restore of the damaged backup is refused and leaves no data directory behind.
  const std::string target = root_ + "/restored";
  absl::Status r = Restore(root_ + "/b", Options(target), nullptr);
  EXPECT_TRUE(absl::IsDataLoss(r)) << r;
  EXPECT_THAT(r.message(), HasSubstr("fails verification"));
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(BackupTest, VerifyFindsAnExtraAndAMissingRow) {
  Start();
  Capture(10);
  AwaitViews(10);
  v1::BackupReply reply;
  ASSERT_TRUE(Backup(root_ + "/extra", &reply).ok());
  ASSERT_TRUE(Backup(root_ + "/missing", &reply).ok());
  {
    auto store = LeadStore(root_ + "/extra");
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->db()->Put(rocksdb::WriteOptions(), store->cf(0), "zzzz-not-a-lead", "x").ok());
  }
  {
    auto store = LeadStore(root_ + "/missing");
    ASSERT_NE(store, nullptr);
    std::unique_ptr<rocksdb::Iterator> it = store->NewIterator(0);
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    ASSERT_TRUE(store->db()->Delete(rocksdb::WriteOptions(), store->cf(0), it->key()).ok());
  }
  std::string said;
  EXPECT_TRUE(absl::IsDataLoss(VerifyDir(root_ + "/extra", &said)));
  EXPECT_THAT(said, HasSubstr("the view has rows the log does not explain"));
  EXPECT_THAT(said, Not(HasSubstr("zzzz")));
  said.clear();
  EXPECT_TRUE(absl::IsDataLoss(VerifyDir(root_ + "/missing", &said)));
  EXPECT_THAT(said, HasSubstr("the view lacks a row the log implies"));
}

TEST_F(BackupTest, RestoreRefusesWhatIsNotABackupAndANonEmptyTarget) {
  fs::create_directories(root_ + "/not-a-backup");
  absl::Status r = Restore(root_ + "/not-a-backup", Options(root_ + "/t"), nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(r)) << r;
  EXPECT_THAT(r.message(), HasSubstr("not a leadflow backup"));

  Start();
  Capture(2);
  v1::BackupReply reply;
  ASSERT_TRUE(Backup(root_ + "/b", &reply).ok());
  fs::create_directories(root_ + "/busy");
  { std::ofstream(root_ + "/busy/file") << "x"; }
  r = Restore(root_ + "/b", Options(root_ + "/busy"), nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(r)) << r;
  EXPECT_THAT(r.message(), HasSubstr("not empty"));
  EXPECT_TRUE(fs::exists(root_ + "/busy/file"));
}

TEST_F(BackupTest, BackupOfAStoppedDirectoryAndRefusalWhileServing) {
  Start();
  Capture(5);
  AwaitViews(5);
  absl::StatusOr<v1::BackupReply> busy = BackupStopped(Options(data_), root_ + "/while-serving");
  EXPECT_TRUE(absl::IsFailedPrecondition(busy.status())) << busy.status();
  EXPECT_THAT(busy.status().message(), HasSubstr("in use"));
  EXPECT_FALSE(fs::exists(root_ + "/while-serving"));
  node_.reset();
  absl::StatusOr<v1::BackupReply> stopped = BackupStopped(Options(data_), root_ + "/stopped");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->views_size(), 4);
  std::string said;
  EXPECT_TRUE(VerifyDir(root_ + "/stopped", &said).ok()) << said;
}

TEST_F(BackupTest, VerifyOfAMissingDirectoryIsNotFound) {
  std::string said;
  absl::Status st = VerifyDir(root_ + "/nothing-here", &said);
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
}

TEST_F(BackupTest, KafkaNodeBacksUpItsViewsAndSaysTheLogIsTheClusters) {
  Start(/*kafka_mock=*/true);
  Capture(4);
  AwaitViews(4);
  v1::BackupReply reply;
  grpc::Status st = Backup(root_ + "/k", &reply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(reply.log_ends_size(), 0);
  EXPECT_EQ(reply.views_size(), 4);
  EXPECT_THAT(DescribeBackup(reply), HasSubstr("the log is Kafka"));
}

}  // namespace
}  // namespace leadflow::server

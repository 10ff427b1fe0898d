// Erasure by crypto-shredding, end to end (docs/security.md): leads with unique personal data
// (names, emails, phones, titles, notes, a customer's tax id and billing address) are captured,
// worked and one converted; then erased (by id, by email, by phone). Afterwards:
//  - every RocksDB store under the data directory, read key by key and value by value with
//    RocksDB's own reader (compression cannot hide a hit), and every file read as raw bytes,
//    holds none of those strings, after `leadflow compact`'s compaction;
//  - the cohort funnel is byte-identical before the erasure, after it, and after a rebuild;
//  - the views keep status and milestones, mark the lead erased, and the stream and timeline
//    carry no personal field of it; commands on it are FAILED_PRECONDITION; erasing again is OK;
//    an unknown lead is NOT_FOUND; a later capture of the same contact starts a new lead.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "leadflow/v1/stream.grpc.pb.h"
#include "services/common/time_util.h"
#include "services/server/node.h"
#include "services/log/kafka_log.h"
#include "services/storage/compact.h"

namespace leadflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class ErasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path() / "leadflow-erasure-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    options_.data_dir = dir_;
    options_.listen = "127.0.0.1:0";
    options_.partitions = 2;
    options_.id_key = "erasure-test-id-key";
    Start();
  }
  void TearDown() override {
    node_.reset();
    fs::remove_all(dir_);
  }
  void Start() {
    auto node = server::Node::Start(options_);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", node_->port()),
                                   grpc::InsecureChannelCredentials());
    commands_ = v1::LeadCommandService::NewStub(channel_);
    leads_ = v1::LeadQueryService::NewStub(channel_);
    customers_ = v1::CustomerQueryService::NewStub(channel_);
    funnel_ = v1::FunnelQueryService::NewStub(channel_);
    stream_ = v1::EventStreamService::NewStub(channel_);
  }
  void Stop() { node_.reset(); }

  grpc::Status Run(const v1::Command& c, v1::CommandReply* reply) {
    grpc::ClientContext ctx;
    const grpc::Status st = commands_->Execute(&ctx, c, reply);
    if (st.ok()) last_ = reply->last_position();
    return st;
  }
  v1::CommandReply MustRun(const v1::Command& c) {
    v1::CommandReply reply;
    const grpc::Status st = Run(c, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return reply;
  }
  static v1::CommandMeta Meta(const std::string& id, absl::Time at) {
    v1::CommandMeta m;
    m.set_command_id(id);
    m.mutable_actor()->set_id("tester");
    *m.mutable_occurred_at() = common::ToProto(at);
    return m;
  }
  // The cohort funnel of March 2026 by source, serialized (deterministic bytes).
  std::string Funnel() {
    v1::CohortFunnelRequest req;
    *req.mutable_captured_from() = common::ToProto(absl::FromUnixSeconds(1772323200));  // 03-01
    *req.mutable_captured_to() = common::ToProto(absl::FromUnixSeconds(1775001600));    // 04-01
    req.set_split("source_channel");
    *req.mutable_min_position() = last_;
    grpc::ClientContext ctx;
    v1::CohortFunnelReport report;
    const grpc::Status st = funnel_->GetCohortFunnel(&ctx, req, &report);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::string bytes;
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    report.SerializeToCodedStream(&coded);
    return bytes;
  }
  v1::LeadView Lead(const std::string& id) {
    v1::GetLeadRequest req;
    req.set_lead_id(id);
    *req.mutable_min_position() = last_;
    grpc::ClientContext ctx;
    v1::LeadView view;
    const grpc::Status st = leads_->GetLead(&ctx, req, &view);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return view;
  }

  // Leads with personal data no other test uses; the strings every check looks for.
  struct Person {
    std::string name, email, phone, title, note, lead_id;
  };
  std::vector<Person> CaptureAndWork() {
    const absl::Time t0 = absl::FromUnixSeconds(1772928000);  // 2026-03-08
    std::vector<Person> people = {
        {"Qwertina Zabrowska", "qwertina.zabrowska@erasure.example", "+48 601 234 567",
         "Chief Zyxtology Officer", "prefers calls about zyxwidgets", ""},
        {"Blorvid Kattermole", "blorvid.kattermole@erasure.example", "+44 20 7946 0311",
         "Head of Snorfle", "asked about the snorfle plan", ""},
        {"Yrsa Flinderquist", "yrsa.flinderquist@erasure.example", "+1 202 555 0142",
         "Vice Quibbler", "wants quibble pricing", ""}};
    for (size_t i = 0; i < people.size(); ++i) {
      Person& p = people[i];
      v1::Command c;
      auto* cap = c.mutable_capture_lead();
      *cap->mutable_meta() = Meta(absl::StrCat("cap-", i), t0);
      cap->mutable_person()->set_full_name(p.name);
      cap->set_email(p.email);
      cap->set_phone(p.phone);
      cap->set_title(p.title);
      cap->set_company("Acme");
      cap->set_interest_note(p.note);
      cap->set_source_channel(i == 2 ? v1::SOURCE_CHANNEL_EVENT : v1::SOURCE_CHANNEL_WEB_FORM);
      p.lead_id = MustRun(c).lead_id();

      v1::Command call;
      auto* li = call.mutable_log_interaction();
      *li->mutable_meta() = Meta(absl::StrCat("call-", i), t0 + absl::Hours(1));
      li->set_lead_id(p.lead_id);
      li->set_kind(v1::INTERACTION_KIND_CALL);
      li->set_direction(v1::DIRECTION_OUTBOUND);
      li->set_notes(absl::StrCat("spoke with ", p.name, " about ", p.note));
      MustRun(call);
    }
    // The first one qualifies and converts: a customer with a tax id and a billing address.
    v1::Command q;
    auto* ql = q.mutable_qualify_lead();
    *ql->mutable_meta() = Meta("qualify-0", t0 + absl::Hours(2));
    ql->set_lead_id(people[0].lead_id);
    ql->mutable_budget()->set_currency_code("EUR");
    ql->mutable_budget()->set_amount_micros(1000000000);
    ql->set_decision_maker(people[0].name);
    ql->set_need("zyxwidget replacement");
    *ql->mutable_expected_decision_at() = common::ToProto(t0 + absl::Hours(24 * 30));
    MustRun(q);
    v1::Command demo;
    auto* d = demo.mutable_log_interaction();
    *d->mutable_meta() = Meta("demo-0", t0 + absl::Hours(3));
    d->set_lead_id(people[0].lead_id);
    d->set_kind(v1::INTERACTION_KIND_DEMO);
    d->set_direction(v1::DIRECTION_OUTBOUND);
    MustRun(demo);
    v1::Command cv;
    auto* conv = cv.mutable_convert_lead();
    *conv->mutable_meta() = Meta("convert-0", t0 + absl::Hours(4));
    conv->set_lead_id(people[0].lead_id);
    conv->mutable_deal_value()->set_currency_code("EUR");
    conv->mutable_deal_value()->set_amount_micros(42000000000);
    conv->set_contract_ref("C-1");
    conv->set_account_owner("bob");
    const std::string customer_id = MustRun(cv).customer_id();
    v1::Command prof;
    auto* pr = prof.mutable_update_customer_profile();
    *pr->mutable_meta() = Meta("profile-0", t0 + absl::Hours(5));
    pr->set_customer_id(customer_id);
    pr->set_tax_id("PL9999912345");
    pr->set_billing_address("17 Zabrowska Lane, Gdansk");
    MustRun(prof);
    // The second one is rejected with a free text.
    v1::Command rj;
    auto* rej = rj.mutable_reject_lead();
    *rej->mutable_meta() = Meta("reject-1", t0 + absl::Hours(6));
    rej->set_lead_id(people[1].lead_id);
    rej->set_reason(v1::REJECTION_REASON_OTHER);
    rej->set_text("Kattermole said the snorfle budget is gone");
    MustRun(rj);
    return people;
  }
  static std::vector<std::string> Needles(const std::vector<Person>& people) {
    std::vector<std::string> out = {"PL9999912345", "Zabrowska Lane", "snorfle budget"};
    for (const Person& p : people) {
      out.push_back(p.name);
      out.push_back(p.email);
      out.push_back(p.title);
      out.push_back(p.note);
    }
    out.push_back("+48601234567");  // the E.164 forms the events hold
    out.push_back("+442079460311");
    out.push_back("+12025550142");
    return out;
  }
  // Every hit of a needle in every store (RocksDB's reader) and in every file (raw bytes).
  std::vector<std::string> Hits(const std::vector<std::string>& needles) {
    std::vector<std::string> hits;
    for (const std::string& db : storage::FindDatabases(dir_)) {
      absl::Status st = storage::ScanDatabase(
          db, [&](const std::string& family, const std::string& key, const std::string& value) {
            for (const std::string& n : needles) {
              if (key.find(n) != std::string::npos || value.find(n) != std::string::npos) {
                hits.push_back(absl::StrCat(db, " [", family, "]: ", n));
              }
            }
          });
      EXPECT_TRUE(st.ok()) << st;
    }
    for (auto it = fs::recursive_directory_iterator(dir_); it != fs::end(it); ++it) {
      if (!it->is_regular_file()) continue;
      std::ifstream in(it->path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      const std::string content = bytes.str();
      for (const std::string& n : needles) {
        if (content.find(n) != std::string::npos) {
          hits.push_back(absl::StrCat(it->path().string(), ": ", n));
        }
      }
    }
    return hits;
  }

  std::string dir_;
  server::NodeOptions options_;
  std::unique_ptr<server::Node> node_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LeadCommandService::Stub> commands_;
  std::unique_ptr<v1::LeadQueryService::Stub> leads_;
  std::unique_ptr<v1::CustomerQueryService::Stub> customers_;
  std::unique_ptr<v1::FunnelQueryService::Stub> funnel_;
  std::unique_ptr<v1::EventStreamService::Stub> stream_;
  v1::LogPosition last_;
};

v1::Command Erase(const std::string& id, const std::string& lead_id, const std::string& email,
                  const std::string& phone) {
  v1::Command c;
  auto* e = c.mutable_erase_lead();
  e->mutable_meta()->set_command_id(id);
  e->mutable_meta()->mutable_actor()->set_id("dpo");
  e->set_lead_id(lead_id);
  e->set_email(email);
  e->set_phone(phone);
  return c;
}

TEST_F(ErasureTest, NoPersonalStringIsLeftAnywhereAndTheFunnelIsUnchanged) {
  const std::vector<Person> people = CaptureAndWork();
  const std::vector<std::string> needles = Needles(people);
  const std::string before = Funnel();
  ASSERT_FALSE(before.empty());
  // Before: the log holds sealed events only, but the views hold the plaintext (a control that
  // shows the scan can find them).
  EXPECT_EQ(Lead(people[0].lead_id).person().full_name(), people[0].name);
  Stop();
  ASSERT_TRUE(storage::CompactEverything(dir_, nullptr).ok());
  EXPECT_FALSE(Hits(needles).empty()) << "the scan finds nothing even before the erasure";
  Start();

  // Erase: by id, by email, by phone (written another way than at capture).
  MustRun(Erase("erase-0", people[0].lead_id, "", ""));
  v1::CommandReply by_email =
      MustRun(Erase("erase-1", "", "  Blorvid.Kattermole@erasure.example", ""));
  EXPECT_EQ(by_email.lead_id(), people[1].lead_id);
  v1::CommandReply by_phone = MustRun(Erase("erase-2", "", "", "+1 (202) 555-0142"));
  EXPECT_EQ(by_phone.lead_id(), people[2].lead_id);
  // Erasing again is OK; an unknown lead or contact is NOT_FOUND; one of three names it.
  v1::CommandReply again;
  EXPECT_TRUE(Run(Erase("erase-0b", people[0].lead_id, "", ""), &again).ok());
  EXPECT_EQ(Run(Erase("erase-x", "ld_00000000000000000000", "", ""), &again).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::Status unknown = Run(Erase("erase-y", "", "nobody@erasure.example", ""), &again);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), Not(HasSubstr("nobody")));
  EXPECT_EQ(Run(Erase("erase-z", people[0].lead_id, "a@b.example", ""), &again).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Nothing more is recorded on an erased lead.
  v1::Command touch;
  auto* li = touch.mutable_log_interaction();
  li->mutable_meta()->set_command_id("after-erase");
  li->mutable_meta()->mutable_actor()->set_id("tester");
  li->set_lead_id(people[2].lead_id);
  li->set_kind(v1::INTERACTION_KIND_CALL);
  li->set_direction(v1::DIRECTION_OUTBOUND);
  grpc::Status refused = Run(touch, &again);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("erased"));

  // The views keep the lifecycle, drop the person.
  const v1::LeadView erased = Lead(people[0].lead_id);
  EXPECT_TRUE(erased.erased());
  EXPECT_EQ(erased.status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_TRUE(erased.person().full_name().empty());
  EXPECT_TRUE(erased.email().empty());
  EXPECT_TRUE(erased.bant().decision_maker().empty());
  EXPECT_EQ(erased.company(), "Acme");
  {
    v1::GetCustomerRequest req;
    req.set_lead_id(people[0].lead_id);
    grpc::ClientContext ctx;
    v1::CustomerView customer;
    ASSERT_TRUE(customers_->GetCustomer(&ctx, req, &customer).ok());
    EXPECT_TRUE(customer.erased());
    EXPECT_TRUE(customer.tax_id().empty());
    EXPECT_TRUE(customer.billing_address().empty());
  }
  {
    v1::FindLeadRequest req;
    req.set_email(people[1].email);
    grpc::ClientContext ctx;
    v1::LeadView found;
    EXPECT_EQ(leads_->FindLead(&ctx, req, &found).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // The stream: every event, the erasure included, none with a personal field of them.
  {
    v1::StreamEventsRequest req;
    req.set_stop_at_end(true);
    grpc::ClientContext ctx;
    auto reader = stream_->StreamEvents(&ctx, req);
    v1::StreamedEvent message;
    int erasures = 0;
    while (reader->Read(&message)) {
      if (message.event().has_lead_erased()) {
        ++erasures;
        EXPECT_TRUE(message.event().lead_erased().had_key());
      }
      EXPECT_TRUE(message.event().sealed_personal().empty());
      const std::string text = message.event().DebugString();
      for (const std::string& n : needles) EXPECT_THAT(text, Not(HasSubstr(n)));
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(erasures, 3);
  }
  EXPECT_EQ(Funnel(), before) << "the funnel changed with the erasure";

  // Compacted (leadflow compact): nothing of them in any store or file.
  Stop();
  ASSERT_TRUE(storage::CompactEverything(dir_, nullptr).ok());
  const std::vector<std::string> hits = Hits(needles);
  EXPECT_TRUE(hits.empty()) << absl::StrJoin(hits, "\n");

  // A rebuild cannot bring them back, and gives the same funnel.
  ASSERT_TRUE(
      server::RebuildViews(options_, {"lead", "customer", "funnel", "reprocessing"}, nullptr).ok());
  Start();
  EXPECT_EQ(Funnel(), before) << "the funnel changed with the rebuild";
  const v1::LeadView rebuilt = Lead(people[1].lead_id);
  EXPECT_TRUE(rebuilt.erased());
  EXPECT_TRUE(rebuilt.person().full_name().empty());
  EXPECT_EQ(rebuilt.status(), v1::LEAD_STATUS_REJECTED);
  Stop();
  ASSERT_TRUE(storage::CompactEverything(dir_, nullptr).ok());
  const std::vector<std::string> after_rebuild = Hits(needles);
  EXPECT_TRUE(after_rebuild.empty()) << absl::StrJoin(after_rebuild, "\n");
}

TEST_F(ErasureTest, AReturningContactStartsANewLeadAndARestartKeepsTheOthers) {
  const std::vector<Person> people = CaptureAndWork();
  MustRun(Erase("erase-0", people[0].lead_id, "", ""));
  v1::Command c;
  auto* cap = c.mutable_capture_lead();
  cap->mutable_meta()->set_command_id("back");
  cap->mutable_meta()->mutable_actor()->set_id("tester");
  cap->mutable_person()->set_full_name(people[0].name);
  cap->set_email(people[0].email);
  cap->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  const v1::CommandReply back = MustRun(c);
  EXPECT_NE(back.lead_id(), people[0].lead_id);
  EXPECT_FALSE(back.deduplicated());
  EXPECT_EQ(Lead(back.lead_id()).person().full_name(), people[0].name);
  EXPECT_TRUE(Lead(people[0].lead_id).erased());
  // After a restart (the writer replays the log, opening what it can): the same.
  Stop();
  Start();
  EXPECT_EQ(Lead(back.lead_id()).person().full_name(), people[0].name);
  EXPECT_EQ(Lead(people[1].lead_id).person().full_name(), people[1].name);
  EXPECT_TRUE(Lead(people[0].lead_id).erased());
  v1::Command again = c;
  again.mutable_capture_lead()->mutable_meta()->set_command_id("back-again");
  EXPECT_EQ(MustRun(again).lead_id(), back.lead_id());  // an inquiry on the new lead
}

// On Kafka, with the writer and the views in separate nodes (as in deploy/): the view node
// opens a lead's events with the key it read from the keys topic; after the erasure it must
// never use that key again, although it still holds a copy in memory.
TEST(KafkaErasureTest, AViewProcessForgetsTheKeyOfAnErasedLead) {
  std::string tmpl = fs::temp_directory_path() / "leadflow-kerasure-XXXXXX";
  const std::string dir = mkdtemp(tmpl.data());
  auto cluster = log::MockKafkaCluster::Start(1);
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(log::kEventsTopic), 2).ok());
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(log::kKeysTopic), 1).ok());
  std::ofstream(dir + "/kek") << std::string(64, 'a') << "\n";
  server::NodeOptions base;
  base.listen = "127.0.0.1:0";
  base.partitions = 2;
  base.id_key = "kafka-erasure-id-key";
  base.kafka_brokers = (*cluster)->bootstrap_servers();
  base.kek_file = dir + "/kek";
  server::NodeOptions w = base, v = base;
  w.role = server::Role::Writer();
  w.data_dir = dir + "/writer";
  v.role = server::Role::Views();
  v.data_dir = dir + "/views";
  auto writer = server::Node::Start(w);
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto views = server::Node::Start(v);
  ASSERT_TRUE(views.ok()) << views.status();
  auto wch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*writer)->port()),
                                 grpc::InsecureChannelCredentials());
  auto vch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*views)->port()),
                                 grpc::InsecureChannelCredentials());
  auto commands = v1::LeadCommandService::NewStub(wch);
  auto leads = v1::LeadQueryService::NewStub(vch);
  auto stream = v1::EventStreamService::NewStub(vch);
  auto run = [&](const v1::Command& c) {
    grpc::ClientContext ctx;
    v1::CommandReply reply;
    const grpc::Status st = commands->Execute(&ctx, c, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return reply;
  };
  auto get = [&](const std::string& id, const v1::LogPosition& at) {
    v1::GetLeadRequest req;
    req.set_lead_id(id);
    *req.mutable_min_position() = at;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::LeadView view;
    const grpc::Status st = leads->GetLead(&ctx, req, &view);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return view;
  };
  auto streamed = [&] {
    v1::StreamEventsRequest req;
    req.set_stop_at_end(true);
    grpc::ClientContext ctx;
    auto reader = stream->StreamEvents(&ctx, req);
    std::string all;
    v1::StreamedEvent e;
    while (reader->Read(&e)) all += e.event().DebugString();
    EXPECT_TRUE(reader->Finish().ok());
    return all;
  };
  v1::Command c;
  auto* cap = c.mutable_capture_lead();
  cap->mutable_meta()->set_command_id("k-cap");
  cap->mutable_meta()->mutable_actor()->set_id("tester");
  cap->mutable_person()->set_full_name("Zelmira Quonset");
  cap->set_email("zelmira.quonset@erasure.example");
  cap->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  const v1::CommandReply captured = run(c);
  EXPECT_EQ(get(captured.lead_id(), captured.last_position()).person().full_name(),
            "Zelmira Quonset");
  EXPECT_THAT(streamed(), HasSubstr("Zelmira Quonset"));  // the view node holds the key now

  const v1::CommandReply erased = run(Erase("k-erase", captured.lead_id(), "", ""));
  const v1::LeadView after = get(captured.lead_id(), erased.last_position());
  EXPECT_TRUE(after.erased());
  EXPECT_TRUE(after.person().full_name().empty());
  const std::string all = streamed();
  EXPECT_THAT(all, HasSubstr("lead_erased"));
  EXPECT_THAT(all, Not(HasSubstr("Zelmira")));
  views->reset();
  writer->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace leadflow

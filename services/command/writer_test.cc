#include "services/command/writer.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "services/log/event_codec.h"

namespace leadflow::command {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kIdKey[] = "writer-test-key";
// The id a new lead with this email gets under the test's key.
std::string Id(const std::string& email) { return common::LeadIdScheme(kIdKey).ForEmail(email); }

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 2, 10, 0, 0), absl::UTCTimeZone());

// Wraps a log and injects append failures: before writing (nothing written) or after writing
// (written, but the caller is told it failed: the unknown outcome of a timed-out Kafka commit).
class FaultyLog final : public log::EventLog {
 public:
  enum class Fault { kNone, kFailBeforeWrite, kFailAfterWrite };
  explicit FaultyLog(log::EventLog* inner) : inner_(inner) {}
  std::string Describe() const override { return "faulty:" + inner_->Describe(); }
  int32_t partition_count() const override { return inner_->partition_count(); }
  absl::StatusOr<std::vector<log::AppendResult>> AppendMany(
      absl::Span<const log::PartitionAppend> appends) override {
    Fault f = next_fault;
    next_fault = Fault::kNone;
    if (f == Fault::kFailBeforeWrite) return absl::UnavailableError("injected: disk gone");
    auto r = inner_->AppendMany(appends);
    if (f == Fault::kFailAfterWrite) return absl::UnavailableError("injected: commit timed out");
    return r;
  }
  // With `deferred` set, the writer's two-step appends reach the inner log as such (written now,
  // durable at Sync) and `fail_next_sync` makes one Sync fail; otherwise every append is durable
  // at once through AppendMany (the EventLog defaults) and the faults above apply.
  absl::StatusOr<std::vector<log::AppendResult>> AppendManyDeferred(
      absl::Span<const log::PartitionAppend> appends) override {
    if (!deferred) return AppendMany(appends);
    return inner_->AppendManyDeferred(appends);
  }
  absl::Status Sync() override {
    if (!deferred) return absl::OkStatus();
    if (fail_next_sync) {
      fail_next_sync = false;
      broken = true;
      return absl::UnavailableError("injected: fsync failed");
    }
    if (broken) return absl::UnavailableError("injected: the log failed");
    return inner_->Sync();
  }
  // As the embedded log after a failed sync: no appends until it is reopened, and the reopened
  // log holds what was written before the failure.
  absl::Status Writable() const override {
    return broken ? absl::UnavailableError("injected: the log failed") : absl::OkStatus();
  }
  absl::Status Recover() override {
    if (!broken) return absl::OkStatus();
    broken = false;
    return inner_->Sync();
  }
  absl::StatusOr<int64_t> EndOffset(int32_t p) override { return inner_->EndOffset(p); }
  absl::StatusOr<std::unique_ptr<log::LogReader>> OpenReader(int32_t p, int64_t from) override {
    return inner_->OpenReader(p, from);
  }
  Fault next_fault = Fault::kNone;
  std::atomic<bool> deferred{false};
  std::atomic<bool> fail_next_sync{false};
  std::atomic<bool> broken{false};

 private:
  log::EventLog* inner_;
};

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-writer-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    OpenAll();
  }
  void TearDown() override {
    writer_.reset();
    faulty_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenAll(const std::string& command_index_dir = "") {
    writer_.reset();
    faulty_.reset();
    log_.reset();
    log::EmbeddedLogOptions o;
    o.dir = dir_;
    o.partitions = 4;
    auto log = log::EmbeddedLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    faulty_ = std::make_unique<FaultyLog>(log_.get());
    WriterOptions wo;
    wo.command_index_dir = command_index_dir;
    wo.id_key = kIdKey;
    auto w = CommandWriter::Open(faulty_.get(), &clock_, wo);
    ASSERT_TRUE(w.ok()) << w.status();
    writer_ = std::move(*w);
  }
  int64_t TotalEvents() {
    int64_t n = 0;
    for (int32_t p = 0; p < log_->partition_count(); ++p) n += *log_->EndOffset(p);
    return n;
  }

  v1::Command Capture(const std::string& id, const std::string& email) {
    v1::Command c;
    auto* b = c.mutable_capture_lead();
    b->mutable_meta()->set_command_id(id);
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->mutable_person()->set_full_name("Person " + email);
    b->set_email(email);
    b->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
    return c;
  }
  v1::Command Assign(const std::string& id, const std::string& lead, const std::string& owner) {
    v1::Command c;
    auto* b = c.mutable_assign_lead();
    b->mutable_meta()->set_command_id(id);
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->set_lead_id(lead);
    b->set_owner(owner);
    return c;
  }
  v1::Command Call(const std::string& id, const std::string& lead) {
    v1::Command c;
    auto* b = c.mutable_log_interaction();
    b->mutable_meta()->set_command_id(id);
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->set_lead_id(lead);
    b->set_kind(v1::INTERACTION_KIND_CALL);
    b->set_direction(v1::DIRECTION_OUTBOUND);
    return c;
  }
  v1::Command Qualify(const std::string& id, const std::string& lead) {
    v1::Command c;
    auto* b = c.mutable_qualify_lead();
    b->mutable_meta()->set_command_id(id);
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->set_lead_id(lead);
    b->mutable_budget()->set_currency_code("EUR");
    b->mutable_budget()->set_amount_micros(10'000'000'000);
    b->set_decision_maker("CFO");
    b->set_need("reporting");
    *b->mutable_expected_decision_at() = common::ToProto(kNow + absl::Hours(24 * 30));
    return c;
  }
  v1::Command Convert(const std::string& id, const std::string& lead) {
    v1::Command c;
    auto* b = c.mutable_convert_lead();
    b->mutable_meta()->set_command_id(id);
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->set_lead_id(lead);
    b->mutable_deal_value()->set_currency_code("EUR");
    b->mutable_deal_value()->set_amount_micros(9'000'000'000);
    b->set_invoice_ref("INV-1");
    return c;
  }

  std::string dir_;
  common::FakeClock clock_{kNow};
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<FaultyLog> faulty_;
  std::unique_ptr<CommandWriter> writer_;
};

TEST_F(WriterTest, CaptureThenReadOwnWrite) {
  auto reply = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  const std::string lead_id = Id("ada@example.com");
  EXPECT_EQ(reply->lead_id(), lead_id);
  EXPECT_EQ(reply->lead_version(), 1);
  EXPECT_FALSE(reply->deduplicated());
  EXPECT_FALSE(reply->replayed());
  ASSERT_EQ(reply->event_ids_size(), 1);
  EXPECT_EQ(reply->last_position().partition(), log::PartitionForKey(lead_id, 4));

  auto snap = writer_->GetLead(lead_id);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->lead.status, v1::LEAD_STATUS_NEW);
  EXPECT_EQ(snap->lead.captured_at, kNow) << "unset occurred_at = server clock";

  // The event in the log carries everything the writer stamps.
  auto reader = log_->OpenReader(reply->last_position().partition(), 0);
  auto records = (*reader)->Read(10, absl::Seconds(1));
  ASSERT_EQ(records->size(), 1u);
  auto event = log::DecodeEvent((*records)[0]);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->event_id(), reply->event_ids(0));
  EXPECT_EQ(common::FromProto(event->recorded_at()), kNow);
  EXPECT_EQ(event->command_type(), "capture_lead");
  EXPECT_EQ(event->command_fingerprint(), CommandFingerprint(Capture("c1", "ada@example.com")));
}

TEST_F(WriterTest, RetryReturnsTheOriginalReplyAndWritesNothing) {
  auto first = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(first.ok());
  const int64_t events = TotalEvents();
  clock_.Advance(absl::Minutes(1));
  auto retry = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed());
  v1::CommandReply expected = *first;
  expected.set_replayed(true);
  EXPECT_EQ(retry->SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(TotalEvents(), events);
}

TEST_F(WriterTest, ReusedCommandIdWithOtherPayloadIsRefused) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  ASSERT_TRUE(writer_->Execute(Assign("a1", lead, "bob")).ok());
  const int64_t events = TotalEvents();
  auto reused = writer_->Execute(Assign("a1", lead, "carol"));
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(reused.status().message(),
            absl::StrCat("assign_lead.meta.command_id: 'a1' was already used on lead ", lead,
                         " for a different assign_lead command; use a new command id for a new "
                         "change"));
  EXPECT_EQ(TotalEvents(), events);
}

TEST_F(WriterTest, RefusedCommandsWriteNothing) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  const int64_t events = TotalEvents();
  auto convert = writer_->Execute(Convert("x1", lead));
  EXPECT_EQ(convert.status().code(), absl::StatusCode::kFailedPrecondition);
  auto unknown = writer_->Execute(Call("x2", Id("nobody@example.com")));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  v1::Command bad = Capture("x3", "not-an-email");
  EXPECT_EQ(writer_->Execute(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TotalEvents(), events);
  // A refused command id is not burnt: once the state allows it, the same id can succeed.
  ASSERT_TRUE(writer_->Execute(Assign("a1", lead, "bob")).ok());
  ASSERT_TRUE(writer_->Execute(Qualify("q1", lead)).ok());
  auto later = writer_->Execute(Convert("x1", lead));
  EXPECT_TRUE(later.ok()) << later.status();
}

TEST_F(WriterTest, KnownContactIsDeduplicatedAndOwnerNotified) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  ASSERT_TRUE(writer_->Execute(Assign("a1", lead, "bob")).ok());
  auto again = writer_->Execute(Capture("c2", " ADA@example.com"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->deduplicated());
  EXPECT_EQ(again->lead_id(), lead);
  EXPECT_EQ(again->lead_version(), 3);
  EXPECT_EQ(again->notify_owner(), "bob");
}

TEST_F(WriterTest, ConversionIsOneAppendAndCustomerCommandsRouteByCustomerId) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  ASSERT_TRUE(writer_->Execute(Assign("a1", lead, "bob")).ok());
  ASSERT_TRUE(writer_->Execute(Qualify("q1", lead)).ok());
  auto converted = writer_->Execute(Convert("v1", lead));
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->event_ids_size(), 2);
  EXPECT_EQ(converted->customer_id(), common::CustomerIdForLead(common::LeadId(lead)).value());
  EXPECT_EQ(converted->customer_version(), 1);

  v1::Command nps;
  nps.mutable_record_nps()->mutable_meta()->set_command_id("n1");
  nps.mutable_record_nps()->mutable_meta()->mutable_actor()->set_id("carol");
  nps.mutable_record_nps()->set_customer_id(converted->customer_id());
  nps.mutable_record_nps()->set_score(10);
  auto reply = writer_->Execute(nps);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->lead_id(), lead);
  EXPECT_EQ(reply->customer_version(), 2);
  EXPECT_EQ(reply->lead_version(), 4) << "customer events do not touch the lead";
}

TEST_F(WriterTest, StateAndIdempotencySurviveRestart) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  ASSERT_TRUE(writer_->Execute(Call("i1", lead)).ok());
  auto qualified = writer_->Execute(Qualify("q1", lead));
  ASSERT_TRUE(qualified.ok());
  const int64_t events = TotalEvents();

  OpenAll();  // a restart: new log handle, new writer, state rebuilt from the log
  EXPECT_EQ(writer_->replayed_events(), events);
  auto snap = writer_->GetLead(lead);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->lead.status, v1::LEAD_STATUS_QUALIFIED);
  EXPECT_EQ(snap->lead.version, 3);
  auto retry = writer_->Execute(Qualify("q1", lead));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed());
  v1::CommandReply expected = *qualified;
  expected.set_replayed(true);
  EXPECT_EQ(retry->SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(TotalEvents(), events);
}

// The writer decides its next commands while the last ones are being synced, and answers a
// command only after the sync. If the sync fails, whether the command reached the disk is
// unknown: it is answered UNAVAILABLE, the writer takes nothing more until a restart, and after
// the restart the retry finds the command in the log (here the process wrote it) instead of
// applying it twice.
TEST_F(WriterTest, AFailedSyncIsUnavailableAndTheRetryAfterARestartIsNotAppliedTwice) {
  faulty_->deferred = true;
  auto captured = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(captured.ok()) << captured.status();
  const std::string lead = captured->lead_id();
  EXPECT_EQ(TotalEvents(), 1) << "answered, so synced and visible";

  faulty_->fail_next_sync = true;
  auto failed = writer_->Execute(Call("i1", lead));
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("outcome unknown: injected: fsync failed; retry with the same command id "
                        "once the log takes writes again"));
  EXPECT_EQ(TotalEvents(), 1) << "an unsynced record must not reach readers";

  auto refused = writer_->Execute(Call("i2", lead));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("injected: fsync failed (the last appends may not be durable); commands "
                        "resume once the log takes writes again"));

  OpenAll();  // the restart: the log reopens with what the process wrote
  EXPECT_EQ(TotalEvents(), 2);
  auto retry = writer_->Execute(Call("i1", lead));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed());
  EXPECT_EQ(retry->lead_version(), 2);
  EXPECT_EQ(TotalEvents(), 2);
  auto next = writer_->Execute(Call("i2", lead));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->lead_version(), 3);
}

// The same without a restart: Recover (the node's supervisor calls it once the disk has room
// again) reopens the log and rebuilds the state from it; the unknown outcome resolves as above.
TEST_F(WriterTest, AFailedSyncIsRecoveredWithoutARestart) {
  faulty_->deferred = true;
  auto captured = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(captured.ok()) << captured.status();
  const std::string lead = captured->lead_id();
  EXPECT_FALSE(writer_->NeedsRecovery());
  faulty_->fail_next_sync = true;
  EXPECT_EQ(writer_->Execute(Call("i1", lead)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(writer_->Execute(Call("i2", lead)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(writer_->NeedsRecovery());
  EXPECT_FALSE(writer_->Health()[0].status.ok());

  ASSERT_TRUE(writer_->Recover().ok());
  EXPECT_FALSE(writer_->NeedsRecovery());
  for (const auto& h : writer_->Health()) EXPECT_TRUE(h.status.ok()) << h.status;
  auto retry = writer_->Execute(Call("i1", lead));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed()) << "it was written before the failure: not applied twice";
  auto next = writer_->Execute(Call("i2", lead));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->lead_version(), 3);
  EXPECT_EQ(TotalEvents(), 3);
  // The contacts came back with the state: a capture of Ada is still Ada returning.
  auto again = writer_->Execute(Capture("c2", "ada@example.com"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->lead_id(), lead);
  EXPECT_TRUE(again->deduplicated());
}

// In a batch, a failed sync turns the accepted commands into UNAVAILABLE; refusals stand.
TEST_F(WriterTest, AFailedSyncInABatchKeepsRefusalsAndMakesAcceptedUnavailable) {
  faulty_->deferred = true;
  faulty_->fail_next_sync = true;
  const std::vector<v1::Command> batch = {Capture("b1", "bob@example.com"),
                                          Call("b2", Id("nobody@example.com"))};
  auto results = writer_->ExecuteBatch(absl::MakeConstSpan(batch));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(results[0].status().message()), HasSubstr("outcome unknown"));
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(TotalEvents(), 0);
}

TEST_F(WriterTest, DiskCommandIndexKeepsRetriesIdempotentAcrossRestarts) {
  const std::string index = dir_ + "-commands";
  OpenAll(index);
  const std::string lead = Id("ada@example.com");
  auto captured = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(captured.ok());
  auto retry = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->replayed());
  ASSERT_TRUE(writer_->Execute(Assign("a1", lead, "bob")).ok());
  const int64_t events = TotalEvents();
  OpenAll(index);  // the index is emptied and rebuilt by the replay
  for (const char* id : {"c1", "a1"}) {
    auto again = std::string(id) == "c1" ? writer_->Execute(Capture("c1", "ada@example.com"))
                                         : writer_->Execute(Assign("a1", lead, "bob"));
    ASSERT_TRUE(again.ok()) << id << ": " << again.status();
    EXPECT_TRUE(again->replayed()) << id;
  }
  v1::CommandReply expected = *captured;
  expected.set_replayed(true);
  EXPECT_EQ(writer_->Execute(Capture("c1", "ada@example.com"))->SerializeAsString(),
            expected.SerializeAsString());
  auto reused = writer_->Execute(Assign("c1", lead, "carol"));
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists) << reused.status();
  EXPECT_EQ(TotalEvents(), events);
  writer_.reset();
  std::filesystem::remove_all(index);
}

// A commit group's records go to the on-disk index in one write: every command of a batch is
// then a replay on retry, before and after a restart, and a command id reused on an existing
// lead is still refused.
TEST_F(WriterTest, DiskCommandIndexRecordsEveryCommandOfABatch) {
  const std::string index = dir_ + "-commands";
  OpenAll(index);
  std::vector<v1::Command> batch;
  for (int i = 0; i < 40; ++i) {
    const std::string email = absl::StrCat("lead", i, "@example.com");
    batch.push_back(Capture(absl::StrCat("c", i), email));
    batch.push_back(Assign(absl::StrCat("a", i), Id(email), "bob"));
  }
  for (const auto& r : writer_->ExecuteBatch(batch)) ASSERT_TRUE(r.ok()) << r.status();
  const int64_t events = TotalEvents();
  for (int restart = 0; restart < 2; ++restart) {
    if (restart == 1) OpenAll(index);  // emptied and rebuilt by the replay
    auto again = writer_->ExecuteBatch(batch);
    for (size_t i = 0; i < again.size(); ++i) {
      ASSERT_TRUE(again[i].ok()) << i << ": " << again[i].status();
      EXPECT_TRUE(again[i]->replayed()) << "command " << i << ", restart " << restart;
    }
    auto reused = writer_->Execute(Assign("c7", Id("lead7@example.com"), "eve"));
    EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists) << reused.status();
  }
  EXPECT_EQ(TotalEvents(), events);
  writer_.reset();
  std::filesystem::remove_all(index);
}

TEST_F(WriterTest, UnknownAppendOutcomeNeverDuplicates) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());

  // Written, but reported as failed: the client sees UNAVAILABLE and retries.
  faulty_->next_fault = FaultyLog::Fault::kFailAfterWrite;
  auto failed = writer_->Execute(Call("i1", lead));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  const int64_t events = TotalEvents();
  EXPECT_EQ(events, 2);
  auto retry = writer_->Execute(Call("i1", lead));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed()) << "the writer re-read the log and found the command";
  EXPECT_EQ(retry->lead_version(), 2);
  EXPECT_EQ(TotalEvents(), events);

  // Not written: the retry writes it once.
  faulty_->next_fault = FaultyLog::Fault::kFailBeforeWrite;
  EXPECT_EQ(writer_->Execute(Assign("a1", lead, "bob")).status().code(),
            absl::StatusCode::kUnavailable);
  auto assigned = writer_->Execute(Assign("a1", lead, "bob"));
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_FALSE(assigned->replayed());
  EXPECT_EQ(assigned->lead_version(), 3);
  EXPECT_EQ(TotalEvents(), 3);
}

TEST_F(WriterTest, CorruptPartitionIsReportedAndOnlyItRefuses) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  const int32_t bad = log::PartitionForKey(lead, 4);
  ASSERT_TRUE(log_->Append(bad, {{lead, "\x08\x96\x01garbage"}}).ok());

  OpenAll();
  bool reported = false;
  for (const PartitionHealth& h : writer_->Health()) {
    if (h.partition == bad) {
      reported = true;
      EXPECT_EQ(h.status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(std::string(h.status.message()),
                  HasSubstr(absl::StrCat("writer stopped: partition ", bad,
                                         " offset 1: undecodable event")));
    } else {
      EXPECT_TRUE(h.status.ok()) << h.partition;
    }
  }
  EXPECT_TRUE(reported);
  auto refused = writer_->Execute(Call("i1", lead));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("partition ", bad, " refuses commands")));
  // Some other lead on a healthy partition still works.
  for (int i = 0; i < 50; ++i) {
    std::string email = absl::StrCat("other", i, "@example.com");
    if (log::PartitionForKey(Id(email), 4) != bad) {
      EXPECT_TRUE(writer_->Execute(Capture("c-other", email)).ok());
      break;
    }
  }
}

TEST_F(WriterTest, MergeFindsASurvivorOnAnotherPartition) {
  std::string a = "dup@example.com", b;
  const int32_t pa = log::PartitionForKey(Id(a), 4);
  for (int i = 0; b.empty(); ++i) {
    std::string email = absl::StrCat("survivor", i, "@example.com");
    if (log::PartitionForKey(Id(email), 4) != pa) b = email;
  }
  ASSERT_TRUE(writer_->Execute(Capture("c1", a)).ok());
  ASSERT_TRUE(writer_->Execute(Capture("c2", b)).ok());
  v1::Command merge;
  merge.mutable_merge_lead()->mutable_meta()->set_command_id("m1");
  merge.mutable_merge_lead()->mutable_meta()->mutable_actor()->set_id("alice");
  merge.mutable_merge_lead()->set_lead_id(Id(a));
  merge.mutable_merge_lead()->set_survivor_lead_id(Id(b));
  auto reply = writer_->Execute(merge);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(writer_->GetLead(Id(a))->lead.status, v1::LEAD_STATUS_MERGED);

  // A capture of the merged contact is still recorded, and the reply names the survivor.
  auto again = writer_->Execute(Capture("c3", a));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->deduplicated());
  EXPECT_EQ(again->merged_into(), Id(b));
}

TEST_F(WriterTest, ConcurrentCommandsOnManyLeads) {
  constexpr int kThreads = 4, kLeads = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLeads; ++i) {
        std::string email = absl::StrCat("t", t, "-", i, "@example.com");
        std::string lead = Id(email);
        if (!writer_->Execute(Capture(absl::StrCat("c", t, i), email)).ok()) failures++;
        if (!writer_->Execute(Call(absl::StrCat("i", t, i), lead)).ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(TotalEvents(), kThreads * kLeads * 2);
  OpenAll();
  EXPECT_EQ(writer_->replayed_events(), kThreads * kLeads * 2);
  EXPECT_EQ(writer_->GetLead(Id("t3-49@example.com"))->lead.status, v1::LEAD_STATUS_CONTACTED);
}

TEST_F(WriterTest, BatchSeesEarlierCommandsAndReportsEachResult) {
  const std::string ada = Id("ada@example.com");
  const std::string bob = Id("bob@example.com");
  std::vector<v1::Command> batch = {
      Capture("c1", "ada@example.com"),
      Assign("a1", ada, "carol"),  // sees the capture above
      Convert("v1", ada),          // refused: NEW, not QUALIFIED
      Capture("c2", "bob@example.com"),
      Call("i1", ada),
      Capture("c1", "ada@example.com"),  // retry of the first, inside the same batch
      Assign("a1", ada, "dave"),         // reused id, different command
      Capture("c3", "not-an-email"),     // invalid
  };
  auto results = writer_->ExecuteBatch(batch);
  ASSERT_EQ(results.size(), batch.size());
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ(results[0]->lead_version(), 1);
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_EQ(results[1]->lead_version(), 2);
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(results[3].ok());
  EXPECT_EQ(results[3]->lead_id(), bob);
  ASSERT_TRUE(results[4].ok());
  EXPECT_EQ(results[4]->lead_version(), 3);
  ASSERT_TRUE(results[5].ok()) << results[5].status();
  EXPECT_TRUE(results[5]->replayed());
  EXPECT_EQ(results[5]->event_ids(0), results[0]->event_ids(0));
  EXPECT_EQ(results[6].status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(results[7].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TotalEvents(), 4) << "capture, assign, capture, call";
  // Positions: each command's reply names its own last event, in order on its partition.
  EXPECT_LT(results[0]->last_position().offset(), results[1]->last_position().offset());
  EXPECT_LT(results[1]->last_position().offset(), results[4]->last_position().offset());

  // The same state after a restart, and the batch's commands are retries now.
  OpenAll();
  EXPECT_EQ(writer_->GetLead(ada)->lead.owner, "carol");
  auto again = writer_->ExecuteBatch(batch);
  EXPECT_TRUE(again[1]->replayed());
  EXPECT_EQ(again[1]->SerializeAsString(), [&] {
    v1::CommandReply r = *results[1];
    r.set_replayed(true);
    return r.SerializeAsString();
  }());
  EXPECT_EQ(TotalEvents(), 4);
}

TEST_F(WriterTest, BatchAppendFailureAcknowledgesNothing) {
  std::vector<v1::Command> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(Capture(absl::StrCat("c", i), absl::StrCat("p", i, "@example.com")));
  }
  // The batch is one append across its partitions: it fails as a whole.
  faulty_->next_fault = FaultyLog::Fault::kFailBeforeWrite;
  auto results = writer_->ExecuteBatch(batch);
  for (const auto& r : results) EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(TotalEvents(), 0);
  auto retry = writer_->ExecuteBatch(batch);
  for (const auto& r : retry) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(TotalEvents(), 4) << "every capture exactly once";
}

TEST_F(WriterTest, OversizedBatchIsRefusedWhole) {
  std::vector<v1::Command> batch(CommandWriter::kMaxBatch + 1, Capture("c", "a@example.com"));
  auto results = writer_->ExecuteBatch(batch);
  EXPECT_EQ(results.front().status().message(),
            "commands: 10001 commands in one batch; the limit is 10000");
  EXPECT_EQ(TotalEvents(), 0);
}

TEST_F(WriterTest, ConcurrentCommandsOnOneLeadAreAllAppliedInSomeOrder) {
  const std::string lead = Id("ada@example.com");
  ASSERT_TRUE(writer_->Execute(Capture("c1", "ada@example.com")).ok());
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::vector<int64_t>> versions(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = writer_->Execute(Call(absl::StrCat("t", t, "-", i), lead));
        if (!r.ok()) {
          failures++;
          continue;
        }
        versions[t].push_back(r->lead_version());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> all;
  for (const auto& v : versions) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << "a client's commands keep their order";
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach)) << "every version handed out once";
  EXPECT_EQ(writer_->GetLead(lead)->lead.version, 1 + kThreads * kEach);
}

TEST_F(WriterTest, GetLeadErrors) {
  EXPECT_EQ(writer_->GetLead("nope").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer_->GetLead(Id("x@example.com")).status().code(), absl::StatusCode::kNotFound);
}

// ---- Races and identities (integrity issue, defects 3, 4, 10) --------------------------------

v1::Command MergeCommand(const std::string& id, const std::string& lead,
                         const std::string& survivor) {
  v1::Command c;
  auto* b = c.mutable_merge_lead();
  b->mutable_meta()->set_command_id(id);
  b->mutable_meta()->mutable_actor()->set_id("alice");
  b->set_lead_id(lead);
  b->set_survivor_lead_id(survivor);
  return c;
}

v1::Command ChangeEmail(const std::string& id, const std::string& lead, const std::string& email) {
  v1::Command c;
  auto* b = c.mutable_update_contact_details();
  b->mutable_meta()->set_command_id(id);
  b->mutable_meta()->mutable_actor()->set_id("alice");
  b->set_lead_id(lead);
  b->set_email(email);
  return c;
}

// Captures leads until two land on different partitions; returns their ids.
std::pair<std::string, std::string> TwoLeadsOnTwoPartitions(CommandWriter& w,
                                                            const std::string& tag) {
  std::vector<std::string> ids;
  for (int i = 0;; ++i) {
    v1::Command c;
    auto* b = c.mutable_capture_lead();
    b->mutable_meta()->set_command_id(absl::StrCat(tag, "-c", i));
    b->mutable_meta()->mutable_actor()->set_id("alice");
    b->mutable_person()->set_full_name("Person");
    b->set_email(absl::StrCat(tag, i, "@example.com"));
    b->set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
    auto r = w.Execute(c);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    for (const std::string& other : ids) {
      if (log::PartitionForKey(other, 4) != r->last_position().partition()) {
        return {other, r->lead_id()};
      }
    }
    ids.push_back(r->lead_id());
  }
}

TEST_F(WriterTest, MergesIntoEachOtherInOneBatchNeverBothSucceed) {
  auto [a, b] = TwoLeadsOnTwoPartitions(*writer_, "m");
  auto results = writer_->ExecuteBatch(
      std::vector<v1::Command>{MergeCommand("ab", a, b), MergeCommand("ba", b, a)});
  ASSERT_EQ(results.size(), 2u);
  // Leads on different partitions: the batch gives their commands no order, but one of the two
  // merges is decided first and the other then finds its survivor MERGED.
  ASSERT_NE(results[0].ok(), results[1].ok()) << "a merge cycle: " << a << " <-> " << b;
  const absl::Status& refused = results[0].ok() ? results[1].status() : results[0].status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("is itself MERGED"));
  const std::string survivor = results[0].ok() ? b : a;
  EXPECT_EQ(writer_->GetLead(survivor)->lead.status, v1::LEAD_STATUS_NEW) << "the survivor stays";
}

TEST_F(WriterTest, ConcurrentMergesNeverMakeACycleOrMergeIntoAMergedLead) {
  constexpr int kPairs = 30;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < kPairs; ++i)
    pairs.push_back(TwoLeadsOnTwoPartitions(*writer_, absl::StrCat("p", i, "x")));
  std::atomic<int> both{0};
  for (int i = 0; i < kPairs; ++i) {
    const auto& [a, b] = pairs[i];
    absl::StatusOr<v1::CommandReply> r1, r2;
    std::thread t1([&] { r1 = writer_->Execute(MergeCommand(absl::StrCat("ab", i), a, b)); });
    std::thread t2([&] { r2 = writer_->Execute(MergeCommand(absl::StrCat("ba", i), b, a)); });
    t1.join();
    t2.join();
    if (r1.ok() && r2.ok()) ++both;
    EXPECT_TRUE(r1.ok() || r2.ok()) << "one of the two merges succeeds";
    const v1::LeadStatus sa = writer_->GetLead(a)->lead.status,
                         sb = writer_->GetLead(b)->lead.status;
    EXPECT_FALSE(sa == v1::LEAD_STATUS_MERGED && sb == v1::LEAD_STATUS_MERGED) << a << " " << b;
  }
  EXPECT_EQ(both.load(), 0);
}

TEST_F(WriterTest, AContactHeldByAnotherLeadCannotBeTaken) {
  auto a = writer_->Execute(Capture("ca", "ada@example.com"));
  auto b = writer_->Execute(Capture("cb", "bob@example.com"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto taken = writer_->Execute(ChangeEmail("u1", b->lead_id(), "ADA@example.com"));
  ASSERT_FALSE(taken.ok()) << "two live leads would share one email";
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr(a->lead_id()));
  EXPECT_THAT(std::string(taken.status().message()), Not(HasSubstr("ada@")));
  // B moves to a new address: a capture of that address is B returning, not a new lead.
  ASSERT_TRUE(writer_->Execute(ChangeEmail("u2", b->lead_id(), "bob.new@example.com")).ok());
  auto returning = writer_->Execute(Capture("cb2", "bob.new@example.com"));
  ASSERT_TRUE(returning.ok()) << returning.status();
  EXPECT_EQ(returning->lead_id(), b->lead_id());
  EXPECT_TRUE(returning->deduplicated());
  // Its old address is free again: a new person may have it.
  auto fresh = writer_->Execute(Capture("cb3", "bob@example.com"));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->lead_id(), b->lead_id());
  EXPECT_FALSE(fresh->deduplicated());
  // A phone held by a lead, in a capture with an unknown email, finds that lead too.
  v1::Command by_phone = Capture("cp", "someone.else@example.com");
  v1::Command set_phone;
  auto* u = set_phone.mutable_update_contact_details();
  u->mutable_meta()->set_command_id("u3");
  u->mutable_meta()->mutable_actor()->set_id("alice");
  u->set_lead_id(a->lead_id());
  u->set_phone("+48 601 234 567");
  ASSERT_TRUE(writer_->Execute(set_phone).ok());
  by_phone.mutable_capture_lead()->set_phone("+48601234567");
  auto known = writer_->Execute(by_phone);
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_EQ(known->lead_id(), a->lead_id());
}

TEST_F(WriterTest, PhoneNumbersAreNormalizedAndValidated) {
  v1::Command first = Capture("p1", "");
  first.mutable_capture_lead()->clear_email();
  first.mutable_capture_lead()->set_phone("+44 (0) 20 7946 0958");
  auto a = writer_->Execute(first);
  ASSERT_TRUE(a.ok()) << a.status();
  for (const char* same : {"+44 20 7946 0958", "0044 20 7946 0958", "+442079460958"}) {
    v1::Command c = first;
    c.mutable_capture_lead()->mutable_meta()->set_command_id(
        absl::StrCat("p-", common::Sha256Hex(same, 8)));
    c.mutable_capture_lead()->set_phone(same);
    auto r = writer_->Execute(c);
    ASSERT_TRUE(r.ok()) << same << ": " << r.status();
    EXPECT_EQ(r->lead_id(), a->lead_id()) << same;
    EXPECT_TRUE(r->deduplicated()) << same;
  }
  for (const char* invalid : {"+1 2 3 4 5 6 7 8", "+44 12", "+999 1234 5678"}) {
    v1::Command c = first;
    c.mutable_capture_lead()->mutable_meta()->set_command_id(
        absl::StrCat("x-", common::Sha256Hex(invalid, 8)));
    c.mutable_capture_lead()->set_phone(invalid);
    auto r = writer_->Execute(c);
    ASSERT_FALSE(r.ok()) << invalid << " was accepted as " << r->lead_id();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("capture_lead.phone: "));
  }
}

TEST_F(WriterTest, LeadIdsDoNotRevealTheContact) {
  auto r = writer_->Execute(Capture("c1", "ada@example.com"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->lead_id(), common::LeadIdForEmail("ada@example.com"))
      << "an unkeyed hash of the email: anyone can test a guess against it";
}

// A log from before scheme 2: its leads keep their (unkeyed) ids and are still found by their
// contact; a new contact gets a keyed id.
TEST_F(WriterTest, SchemeOneLeadsKeepTheirIdsAndAreFound) {
  writer_.reset();
  const std::string v1_id = common::LeadIdForEmail("old@example.com");
  {
    v1::Command c = Capture("old-capture", "old@example.com");
    lead::CommandTarget target{
        .lead_id = v1_id, .customer_id = "", .email = "old@example.com", .phone = ""};
    lead::DecideContext ctx{.now = kNow, .merge_survivor = nullptr, .target = &target};
    auto events = lead::Decide(lead::LeadState(), lead::CustomerState(), c, ctx);
    ASSERT_TRUE(events.ok()) << events.status();
    v1::Event e = events->front();
    e.mutable_lead_captured()->clear_id_scheme();  // as scheme 1 wrote it
    e.set_event_id(common::NewEventId());
    *e.mutable_recorded_at() = common::ToProto(kNow);
    e.set_command_fingerprint(CommandFingerprint(c));
    auto m = log::EncodeEvent(e);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(log_->Append(log::PartitionForKey(v1_id, 4), {*m}).ok());
  }
  OpenAll();
  auto again = writer_->Execute(Capture("old-again", "OLD@example.com"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->lead_id(), v1_id);
  EXPECT_TRUE(again->deduplicated());
  auto retry = writer_->Execute(Capture("old-capture", "old@example.com"));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed()) << "the old capture's command id is still recognised";
  auto fresh = writer_->Execute(Capture("new", "new@example.com"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->lead_id(), Id("new@example.com"));
}

// The witness: a log that lost or changed what the writer made durable is found at the next
// start, whatever the log itself says; the operator may accept the loss.
TEST_F(WriterTest, ALogThatLostWitnessedEventsRefusesItsPartitions) {
  const std::string witness = dir_ + "-witness/witness";
  auto open = [&](log::EventLog* log, bool accept) {
    WriterOptions wo;
    wo.id_key = kIdKey;
    wo.witness_path = witness;
    wo.accept_data_loss = accept;
    std::vector<std::string> said;
    wo.say = [&said](const std::string& line) { said.push_back(line); };
    auto w = CommandWriter::Open(log, &clock_, wo);
    EXPECT_TRUE(w.ok()) << w.status();
    return std::make_pair(std::move(*w), said);
  };
  writer_.reset();
  std::string lead;
  {
    auto [w, said] = open(log_.get(), false);
    auto r = w->Execute(Capture("c1", "ada@example.com"));
    ASSERT_TRUE(r.ok());
    lead = r->lead_id();
    ASSERT_TRUE(w->Execute(Call("i1", lead)).ok());
  }
  const int32_t partition = log::PartitionForKey(lead, 4);
  // A log that holds nothing (a replaced or wiped directory) under the same witness.
  auto empty = log::EmbeddedLog::Open({.dir = dir_ + "-empty", .partitions = 4});
  ASSERT_TRUE(empty.ok());
  {
    auto [w, said] = open(empty->get(), false);
    auto refused = w->Execute(Capture("c2", "ada@example.com"));
    ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr(absl::StrCat("log partition ", partition,
                                       " ends at offset -1 (0 events) "
                                       "but the writer (witness ")));
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("had seen it up to offset 1"));
    EXPECT_FALSE(w->Health()[partition].status.ok());
  }
  // Another log with as many records, but other ones: replaced, found by the digest.
  auto other = log::EmbeddedLog::Open({.dir = dir_ + "-other", .partitions = 4});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Append(partition, {{lead, "x"}, {lead, "y"}}).ok());
  {
    auto [w, said] = open(other->get(), false);
    EXPECT_THAT(std::string(w->Health()[partition].status.message()),
                HasSubstr("holds another record at offset 1"));
  }
  // Accepting the loss: the partition goes on with the empty log, the loss is recorded, and the
  // next start (without the flag) is normal.
  {
    auto [w, said] = open(empty->get(), true);
    ASSERT_FALSE(said.empty());
    EXPECT_THAT(said.front(), HasSubstr("accepting the loss"));
    auto r = w->Execute(Capture("c2", "ada@example.com"));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  {
    auto [w, said] = open(empty->get(), false);
    for (const auto& h : w->Health()) EXPECT_TRUE(h.status.ok()) << h.status;
  }
  std::ifstream audit(dir_ + "-witness/accepted-losses.log");
  std::string line;
  ASSERT_TRUE(std::getline(audit, line));
  EXPECT_THAT(line, HasSubstr("accepting the loss"));
  std::filesystem::remove_all(dir_ + "-witness");
  std::filesystem::remove_all(dir_ + "-empty");
  std::filesystem::remove_all(dir_ + "-other");
}

}  // namespace
}  // namespace leadflow::command

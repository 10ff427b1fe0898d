// One conformance suite, run against every EventLog backend: the embedded log on a temporary
// directory, and the Kafka log against a librdkafka mock cluster that the test starts and
// reaches over loopback TCP. What the mock cannot show (transaction aborts, fencing) is not
// claimed here; see docs/log.md.
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/log/embedded_log.h"
#include "services/log/kafka_log.h"

namespace leadflow::log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int32_t kPartitions = 4;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Opens the log; a second call reopens it (as after a restart).
  virtual absl::StatusOr<std::unique_ptr<EventLog>> Open() = 0;
};

class EmbeddedBackend final : public Backend {
 public:
  EmbeddedBackend() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "leadflow-logtest-XXXXXX");
    dir_ = mkdtemp(tmpl.data());
  }
  ~EmbeddedBackend() override { std::filesystem::remove_all(dir_); }
  std::string name() const override { return "embedded"; }
  absl::StatusOr<std::unique_ptr<EventLog>> Open() override {
    EmbeddedLogOptions o;
    o.dir = dir_;
    o.partitions = kPartitions;
    auto log = EmbeddedLog::Open(o);
    if (!log.ok()) return log.status();
    return std::unique_ptr<EventLog>(std::move(*log));
  }
  std::string dir_;
};

class KafkaBackend final : public Backend {
 public:
  KafkaBackend() {
    auto cluster = MockKafkaCluster::Start(3);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    EXPECT_TRUE(cluster_->CreateTopic(std::string(kEventsTopic), kPartitions).ok());
  }
  std::string name() const override { return "kafka"; }
  absl::StatusOr<std::unique_ptr<EventLog>> Open() override {
    KafkaLogOptions o;
    o.bootstrap_servers = cluster_->bootstrap_servers();
    o.transactional_id = "leadflow-conformance-writer";
    o.timeout = absl::Seconds(20);
    auto log = KafkaLog::Open(o);
    if (!log.ok()) return log.status();
    return std::unique_ptr<EventLog>(std::move(*log));
  }
  std::unique_ptr<MockKafkaCluster> cluster_;
};

using BackendFactory = std::function<std::unique_ptr<Backend>()>;

class LogConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "embedded") {
      backend_ = std::make_unique<EmbeddedBackend>();
    } else {
      backend_ = std::make_unique<KafkaBackend>();
    }
    auto log = backend_->Open();
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    ASSERT_EQ(log_->partition_count(), kPartitions);
  }

  static std::vector<Message> Batch(const std::string& prefix, int n,
                                    const std::string& key = "ld_k") {
    std::vector<Message> out;
    for (int i = 0; i < n; ++i) out.push_back({key, absl::StrCat(prefix, "-", i)});
    return out;
  }

  // Reads every record of `partition` from `from` up to the current end.
  std::vector<Record> ReadAll(int32_t partition, int64_t from = 0) {
    auto end = log_->EndOffset(partition);
    EXPECT_TRUE(end.ok()) << end.status();
    std::vector<Record> out;
    auto reader = log_->OpenReader(partition, from);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) return out;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while ((*reader)->position() < *end && absl::Now() < deadline) {
      auto records = (*reader)->Read(500, absl::Seconds(1));
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok()) break;
      for (auto& r : *records) out.push_back(std::move(r));
    }
    return out;
  }

  std::vector<std::string> Values(const std::vector<Record>& records) {
    std::vector<std::string> v;
    for (const auto& r : records) v.push_back(r.value);
    return v;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<EventLog> log_;
};

TEST_P(LogConformanceTest, AppendsReadBackInOrderWithIncreasingOffsets) {
  const absl::Time before = absl::Now() - absl::Seconds(1);
  std::vector<AppendResult> results;
  for (int i = 0; i < 3; ++i) {
    auto r = log_->Append(0, Batch(absl::StrCat("single", i), 1));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->partition, 0);
    EXPECT_EQ(r->first_offset, r->last_offset);
    if (!results.empty()) {
      EXPECT_GT(r->first_offset, results.back().last_offset);
    }
    results.push_back(*r);
  }
  std::vector<Record> records = ReadAll(0);
  ASSERT_EQ(records.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(records[i].offset, results[i].first_offset);
    EXPECT_EQ(records[i].key, "ld_k");
    EXPECT_EQ(records[i].value, absl::StrCat("single", i, "-0"));
    EXPECT_EQ(records[i].partition, 0);
    EXPECT_GE(records[i].timestamp, before);
    EXPECT_LE(records[i].timestamp, absl::Now() + absl::Seconds(1));
  }
  auto end = log_->EndOffset(0);
  ASSERT_TRUE(end.ok());
  EXPECT_GT(*end, results.back().last_offset);
  EXPECT_TRUE(ReadAll(1).empty()) << "other partitions untouched";
}

TEST_P(LogConformanceTest, BatchIsContiguousAndReportsItsOffsets) {
  ASSERT_TRUE(log_->Append(1, Batch("before", 2)).ok());
  auto r = log_->Append(1, Batch("batch", 10));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(log_->Append(1, Batch("after", 2)).ok());
  std::vector<Record> records = ReadAll(1, r->first_offset);
  ASSERT_GE(records.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(records[i].value, absl::StrCat("batch-", i));
    if (i > 0) {
      EXPECT_GT(records[i].offset, records[i - 1].offset);
    }
  }
  EXPECT_EQ(records[0].offset, r->first_offset);
  EXPECT_EQ(records[9].offset, r->last_offset);
  EXPECT_EQ(records[10].value, "after-0");
}

TEST_P(LogConformanceTest, InvalidInputWritesNothing) {
  ASSERT_TRUE(log_->Append(2, Batch("seed", 1)).ok());
  std::vector<int64_t> ends;
  for (int32_t p = 0; p < kPartitions; ++p) ends.push_back(*log_->EndOffset(p));

  auto empty = log_->Append(2, {});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "batch: empty; nothing to append");

  std::vector<Message> oversized = Batch("ok", 3);
  oversized[1].value = std::string(kDefaultMaxMessageBytes + 1, 'x');
  auto big = log_->Append(2, oversized);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(big.status().message(),
            absl::StrCat("batch[1]: record of ", kDefaultMaxMessageBytes + 5,
                         " bytes exceeds the limit of ", kDefaultMaxMessageBytes, " bytes"));

  std::vector<Message> no_key = Batch("ok", 2);
  no_key[1].key.clear();
  EXPECT_EQ(log_->Append(2, no_key).status().message(),
            "batch[1].key: empty; every record needs a partition key");
  std::vector<Message> no_value = Batch("ok", 2);
  no_value[0].value.clear();
  EXPECT_EQ(log_->Append(2, no_value).status().message(), "batch[0].value: empty");

  auto bad_partition = log_->Append(kPartitions, Batch("x", 1));
  EXPECT_EQ(bad_partition.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_partition.status().message(), "partition: 4 is out of range [0, 4)");
  EXPECT_EQ(log_->Append(-1, Batch("x", 1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->EndOffset(kPartitions).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->OpenReader(0, -1).status().code(), absl::StatusCode::kInvalidArgument);

  for (int32_t p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(*log_->EndOffset(p), ends[p]) << "partition " << p;
  }
  EXPECT_THAT(Values(ReadAll(2)), ::testing::ElementsAre("seed-0"));
}

TEST_P(LogConformanceTest, AppendManySpansPartitionsAllOrNothing) {
  std::vector<Message> a = Batch("a", 3), b = Batch("b", 2), bad = Batch("bad", 2);
  bad[1].value.clear();
  std::vector<PartitionAppend> invalid = {{0, a}, {2, bad}};
  auto refused = log_->AppendMany(invalid);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "partition 2: batch[1].value: empty");
  std::vector<PartitionAppend> twice = {{1, a}, {1, b}};
  EXPECT_EQ(log_->AppendMany(twice).status().message(), "appends: partition 1 appears twice");
  EXPECT_EQ(log_->AppendMany({}).status().message(), "appends: empty; nothing to append");
  for (int32_t p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(*log_->EndOffset(p), 0) << "nothing written anywhere, partition " << p;
  }

  std::vector<PartitionAppend> both = {{3, a}, {0, b}};
  auto results = log_->AppendMany(both);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].partition, 3);
  EXPECT_EQ((*results)[1].partition, 0);
  EXPECT_THAT(Values(ReadAll(3)), ::testing::ElementsAre("a-0", "a-1", "a-2"));
  EXPECT_THAT(Values(ReadAll(0)), ::testing::ElementsAre("b-0", "b-1"));
  EXPECT_EQ(ReadAll(3).back().offset, (*results)[0].last_offset);
  EXPECT_EQ(ReadAll(0).front().offset, (*results)[1].first_offset);
}

TEST_P(LogConformanceTest, ReaderResumesFromAStoredOffset) {
  ASSERT_TRUE(log_->Append(3, Batch("r", 20)).ok());
  auto reader = log_->OpenReader(3, 0);
  ASSERT_TRUE(reader.ok());
  std::vector<Record> first;
  while (first.size() < 7) {
    auto got = (*reader)->Read(7 - first.size(), absl::Seconds(5));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_FALSE(got->empty()) << "timed out";
    for (auto& r : *got) first.push_back(std::move(r));
  }
  ASSERT_EQ(first.size(), 7u);
  const int64_t stored = (*reader)->position();  // what a projection stores with its rows
  EXPECT_EQ(stored, first.back().offset + 1);
  reader->reset();

  std::vector<Record> rest = ReadAll(3, stored);
  ASSERT_EQ(rest.size(), 13u);
  EXPECT_EQ(rest.front().value, "r-7");
  EXPECT_EQ(rest.back().value, "r-19");
}

TEST_P(LogConformanceTest, ReaderPositionReachesTheEnd) {
  ASSERT_TRUE(log_->Append(2, Batch("e", 5)).ok());
  ASSERT_TRUE(log_->Append(2, Batch("f", 5)).ok());
  const int64_t end = *log_->EndOffset(2);
  auto reader = log_->OpenReader(2, 0);
  ASSERT_TRUE(reader.ok());
  size_t n = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*reader)->position() < end && absl::Now() < deadline) {
    auto got = (*reader)->Read(100, absl::Milliseconds(500));
    ASSERT_TRUE(got.ok()) << got.status();
    n += got->size();
  }
  EXPECT_EQ(n, 10u);
  EXPECT_EQ((*reader)->position(), end) << "a consumer at the end is at EndOffset()";
}

TEST_P(LogConformanceTest, ReadToEndDeliversEverythingAndRefusesAShortLog) {
  ASSERT_TRUE(log_->Append(0, Batch("x", 7)).ok());
  const int64_t end = *log_->EndOffset(0);
  std::vector<std::string> seen;
  auto collect = [&](std::vector<Record>& records, int64_t) {
    for (const Record& r : records) seen.push_back(r.value);
    return absl::OkStatus();
  };
  auto last = ReadToEnd(*log_, 0, 2, end, 3, collect);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, end);
  EXPECT_THAT(seen, ::testing::ElementsAre("x-2", "x-3", "x-4", "x-5", "x-6"));

  // An end the log never reaches (e.g. records removed by retention) is an error, not success.
  auto short_log = ReadToEnd(*log_, 0, 0, end + 5, 100, collect, absl::Milliseconds(300));
  EXPECT_EQ(short_log.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(short_log.status().message()),
              HasSubstr(absl::StrCat("partition 0: the log stopped at offset ", end,
                                     " before its end ", end + 5)));
  // The callback's error stops the read.
  int calls = 0;
  auto stopped = ReadToEnd(*log_, 0, 0, end, 1, [&](std::vector<Record>&, int64_t) {
    return ++calls == 2 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
}

// leadflow verify rebuilds a view up to where the view stopped, inside the log: a read of up to
// `max_records` must not run past that end.
TEST_P(LogConformanceTest, ReadToEndStopsAtAnEndInsideTheLog) {
  ASSERT_TRUE(log_->Append(1, Batch("y", 9)).ok());
  std::vector<std::string> seen;
  int64_t last_position = -1;
  auto last = ReadToEnd(*log_, 1, 1, 4, 100, [&](std::vector<Record>& records, int64_t position) {
    for (const Record& r : records) seen.push_back(r.value);
    last_position = position;
    return absl::OkStatus();
  });
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 4);
  EXPECT_EQ(last_position, 4);
  EXPECT_THAT(seen, ::testing::ElementsAre("y-1", "y-2", "y-3"));
}

TEST_P(LogConformanceTest, ConcurrentAppendersKeepBatchesWholeAndOrdered) {
  constexpr int kThreads = 4, kBatches = 25, kPerBatch = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        if (!log_->Append(t % 2, Batch(absl::StrCat("t", t, "-b", b), kPerBatch)).ok()) {
          failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  size_t total = 0;
  for (int32_t p = 0; p < 2; ++p) {
    std::vector<Record> records = ReadAll(p);
    total += records.size();
    std::map<int, int> next_batch;  // per thread
    ASSERT_EQ(records.size() % kPerBatch, 0u);
    for (size_t i = 0; i < records.size(); i += kPerBatch) {
      int t = 0, b = 0;
      ASSERT_EQ(sscanf(records[i].value.c_str(), "t%d-b%d-0", &t, &b), 2) << records[i].value;
      EXPECT_EQ(t % 2, p);
      EXPECT_EQ(b, next_batch[t]++) << "batches of one appender stay in order";
      for (int k = 0; k < kPerBatch; ++k) {
        EXPECT_EQ(records[i + k].value, absl::StrCat("t", t, "-b", b, "-", k))
            << "no other append interleaves a batch";
      }
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kBatches * kPerBatch));
}

TEST_P(LogConformanceTest, ThousandsOfEventsRoutedByKey) {
  constexpr int kEvents = 2000, kKeys = 97;
  std::map<int32_t, std::vector<Message>> pending;
  std::map<std::string, int> sent_per_key;
  for (int i = 0; i < kEvents; ++i) {
    std::string key = absl::StrCat("ld_", i % kKeys);
    int32_t p = PartitionForKey(key, kPartitions);
    pending[p].push_back({key, absl::StrCat(key, "#", sent_per_key[key]++)});
    if (pending[p].size() == 50) {
      ASSERT_TRUE(log_->Append(p, pending[p]).ok());
      pending[p].clear();
    }
  }
  for (auto& [p, batch] : pending) {
    if (!batch.empty()) {
      ASSERT_TRUE(log_->Append(p, batch).ok());
    }
  }
  size_t total = 0;
  std::map<std::string, int> seen_per_key;
  for (int32_t p = 0; p < kPartitions; ++p) {
    for (const Record& r : ReadAll(p)) {
      ++total;
      EXPECT_EQ(PartitionForKey(r.key, kPartitions), p);
      EXPECT_EQ(r.value, absl::StrCat(r.key, "#", seen_per_key[r.key]++)) << "per-key order";
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kEvents));
}

TEST_P(LogConformanceTest, ReaderIsWokenByAnAppend) {
  auto reader = log_->OpenReader(0, *log_->EndOffset(0));
  ASSERT_TRUE(reader.ok());
  auto empty = (*reader)->Read(10, absl::Milliseconds(200));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty()) << "nothing to read yet";

  absl::StatusOr<std::vector<Record>> got;
  absl::Duration waited;
  std::thread tail([&] {
    absl::Time start = absl::Now();
    got = (*reader)->Read(10, absl::Seconds(20));
    waited = absl::Now() - start;
  });
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(log_->Append(0, Batch("wake", 1)).ok());
  tail.join();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].value, "wake-0");
  // Woken by the append, long before the 20 s timeout (not a performance claim).
  EXPECT_LT(waited, absl::Seconds(15));
}

TEST_P(LogConformanceTest, SurvivesReopen) {
  ASSERT_TRUE(log_->Append(1, Batch("first-life", 5)).ok());
  const int64_t end = *log_->EndOffset(1);
  log_.reset();
  auto reopened = backend_->Open();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  log_ = std::move(*reopened);
  EXPECT_EQ(*log_->EndOffset(1), end);
  auto r = log_->Append(1, Batch("second-life", 1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->first_offset, end);
  EXPECT_THAT(Values(ReadAll(1)),
              ::testing::ElementsAre("first-life-0", "first-life-1", "first-life-2", "first-life-3",
                                     "first-life-4", "second-life-0"));
}

// Deferred appends take their offsets in order with durable ones, and after Sync() every one of
// them reads back (Kafka: durable and visible at once; embedded: see EmbeddedLogTest below).
TEST_P(LogConformanceTest, DeferredAppendsReadBackAfterSync) {
  std::vector<Message> a = Batch("deferred", 2), b = Batch("durable", 1), c = Batch("later", 2);
  auto first = log_->AppendManyDeferred({PartitionAppend{2, a}});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = log_->Append(2, b);
  ASSERT_TRUE(second.ok()) << second.status();
  auto third = log_->AppendManyDeferred({PartitionAppend{2, c}});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*first)[0].last_offset + 1, second->first_offset);
  EXPECT_EQ(second->last_offset + 1, (*third)[0].first_offset);
  ASSERT_TRUE(log_->Sync().ok());
  EXPECT_EQ(*log_->EndOffset(2), (*third)[0].last_offset + 1);
  EXPECT_THAT(Values(ReadAll(2)), ::testing::ElementsAre("deferred-0", "deferred-1", "durable-0",
                                                         "later-0", "later-1"));
}

INSTANTIATE_TEST_SUITE_P(Backends, LogConformanceTest, ::testing::Values("embedded", "kafka"),
                         [](const auto& info) { return info.param; });

// ---- Backend-specific behaviour -------------------------------------------------------------

TEST(EmbeddedLogTest, RefusesAChangedPartitionCount) {
  EmbeddedBackend backend;
  ASSERT_TRUE(backend.Open().ok());
  EmbeddedLogOptions o;
  o.dir = backend.dir_;
  o.partitions = 16;
  auto log = EmbeddedLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("was created with 4 partitions; opening it with 16 would move leads "
                        "between partitions. Use --partitions=4."));
}

// `leadflow rebuild --data-dir D` (no --partitions) on a log made with 4: the default count is
// not the user's choice, so the stored one is used.
TEST(EmbeddedLogTest, ADefaultPartitionCountAdoptsTheStoredOne) {
  EmbeddedBackend backend;
  ASSERT_TRUE(backend.Open().ok());
  EmbeddedLogOptions o;
  o.dir = backend.dir_;
  o.partitions = 16;
  o.adopt_stored_partitions = true;
  auto log = EmbeddedLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->partition_count(), 4);
}

TEST(EmbeddedLogTest, OffsetsAreDenseAndReaderPastEndIsRefused) {
  EmbeddedBackend backend;
  auto log = backend.Open();
  ASSERT_TRUE(log.ok());
  auto r = (*log)->Append(0, {{"k", "a"}, {"k", "b"}, {"k", "c"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_offset, 0);
  EXPECT_EQ(r->last_offset, 2);
  auto past = (*log)->OpenReader(0, 4);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange);
}

// Readers see a deferred append only once it is synced: a view never applies a record that a
// power cut could still take back. A durable append on the same partition syncs (and shows) the
// deferred records before it; other partitions wait for their Sync().
TEST(EmbeddedLogTest, DeferredAppendsAreInvisibleUntilSynced) {
  EmbeddedBackend backend;
  auto log = backend.Open();
  ASSERT_TRUE(log.ok());
  const std::vector<Message> one = {{"ld_k", "x"}}, two = {{"ld_k", "y"}, {"ld_k", "z"}};
  auto deferred = (*log)->AppendManyDeferred({PartitionAppend{0, one}, PartitionAppend{1, two}});
  ASSERT_TRUE(deferred.ok()) << deferred.status();
  EXPECT_EQ(*(*log)->EndOffset(0), 0);
  EXPECT_EQ(*(*log)->EndOffset(1), 0);
  auto reader = (*log)->OpenReader(1, 0);
  ASSERT_TRUE(reader.ok());
  auto none = (*reader)->Read(10, absl::Milliseconds(50));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "a reader saw an unsynced record";

  ASSERT_TRUE((*log)->Append(0, one).ok());  // durable: shows partition 0's deferred record too
  EXPECT_EQ(*(*log)->EndOffset(0), 2);
  EXPECT_EQ(*(*log)->EndOffset(1), 0);

  ASSERT_TRUE((*log)->Sync().ok());
  EXPECT_EQ(*(*log)->EndOffset(1), 2);
  auto records = (*reader)->Read(10, absl::Seconds(1));
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1].value, "z");
  EXPECT_TRUE((*log)->Sync().ok()) << "a sync with nothing new is fine";
}

// (A missing topic cannot be shown on the mock: it auto-creates any topic a client asks
// metadata for, with 4 partitions, whatever allow.auto.create.topics says. docs/log.md.)
TEST(KafkaLogTest, PartitionCountMismatchIsRefused) {
  auto cluster = MockKafkaCluster::Start(1);
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(kEventsTopic), 4).ok());
  KafkaLogOptions o;
  o.bootstrap_servers = (*cluster)->bootstrap_servers();
  o.expected_partitions = 8;
  o.timeout = absl::Seconds(5);
  auto log = KafkaLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log.status().message(),
            "kafka topic leadflow.events.v1 has 4 partitions, expected 8; a different count "
            "would move leads between partitions and writers");
}

TEST(KafkaLogTest, UnreachableBrokersAreUnavailable) {
  KafkaLogOptions o;
  o.bootstrap_servers = "127.0.0.1:1";  // nothing listens on port 1
  o.timeout = absl::Seconds(2);
  auto log = KafkaLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kUnavailable);
}

TEST(KafkaLogTest, BadClientPropertyNamesTheProperty) {
  KafkaLogOptions o;
  o.bootstrap_servers = "127.0.0.1:1";
  o.properties = {{"no.such.property", "1"}};
  auto log = KafkaLog::Open(o);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("kafka property no.such.property='1'"));
}

// Security settings pass through kafka.properties to librdkafka: a TLS CA file that does not
// exist stops the start naming the property (the mock cluster speaks neither TLS nor SASL, so
// this is what can be shown here); a refused secret is never quoted.
TEST(KafkaLogTest, SecurityPropertiesReachLibrdkafkaAndSecretsAreNeverQuoted) {
  KafkaLogOptions o;
  o.bootstrap_servers = "127.0.0.1:1";
  o.timeout = absl::Seconds(2);
  o.properties = {{"security.protocol", "SSL"}, {"ssl.ca.location", "/nonexistent/ca.pem"}};
  auto log = KafkaLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), HasSubstr("ssl.ca.location"));
  o.properties = {{"security.protocol", "SASL_SSL"},
                  {"sasl.mechanisms", "NO-SUCH-MECH"},
                  {"sasl.password", "hunter2-very-secret"}};
  log = KafkaLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), Not(HasSubstr("hunter2")));
  o.properties = {{"ssl.key.password", "hunter2-very-secret"}, {"ssl.key.pem", "hunter3"}};
  log = KafkaLog::Open(o);
  EXPECT_THAT(std::string(log.status().message()), Not(HasSubstr("hunter")));
  o.properties = {{"sasl.oauthbearer.client.secret", "hunter4"}, {"no.such.secret", "hunter5"}};
  log = KafkaLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), Not(HasSubstr("hunter")));
  EXPECT_THAT(std::string(log.status().message()), HasSubstr("value not shown"));
}

TEST(KafkaLogTest, IdempotentModeWithoutTransactionsAlsoAppends) {
  auto cluster = MockKafkaCluster::Start(1);
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(kEventsTopic), 2).ok());
  KafkaLogOptions o;
  o.bootstrap_servers = (*cluster)->bootstrap_servers();
  o.timeout = absl::Seconds(10);
  auto log = KafkaLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  auto r = (*log)->Append(1, {{"k", "x"}, {"k", "y"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->last_offset, r->first_offset + 1);
}

// ---- Key store (docs/security.md) ------------------------------------------------------------

namespace {
std::vector<Message> OneEvent(const std::string& key) { return {Message{key, "event-" + key}}; }
struct TempDir {
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "leadflow-keystore-XXXXXX");
    dir = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  const std::string& path() const { return dir; }
  std::string dir;
};
}  // namespace

TEST(KeyStoreTest, EmbeddedKeysLandWithTheirEventsAndATombstoneDestroysThem) {
  TempDir dir;
  EmbeddedLogOptions o;
  o.dir = dir.path() + "/log";
  o.partitions = 1;
  auto log = EmbeddedLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE((*log)->HasKeyStore());
  const std::vector<Message> batch = OneEvent("ld_a");
  const KeyRecord put[] = {{"ld_a", "wrapped-a"}};
  PartitionAppend a{0, batch, put};
  ASSERT_TRUE((*log)->AppendMany({&a, 1}).ok());
  EXPECT_EQ(*(*log)->ReadKey("ld_a"), "wrapped-a");
  EXPECT_EQ((*log)->ReadKey("ld_b").status().code(), absl::StatusCode::kNotFound);
  // A key record without a lead id is refused, and nothing of the append is written.
  const KeyRecord bad[] = {{"", "x"}};
  PartitionAppend b{0, batch, bad};
  EXPECT_EQ((*log)->AppendMany({&b, 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*(*log)->EndOffset(0), 1);
  const KeyRecord destroy[] = {{"ld_a", ""}};
  PartitionAppend c{0, batch, destroy};
  ASSERT_TRUE((*log)->AppendMany({&c, 1}).ok());
  ASSERT_TRUE((*log)->PurgeDestroyedKeys().ok());
  EXPECT_EQ((*log)->ReadKey("ld_a").status().code(), absl::StatusCode::kNotFound);
  // Reopened (read-only, as verify does): the same.
  log->reset();
  o.read_only = true;
  o.partitions = 0;
  auto ro = EmbeddedLog::Open(o);
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*ro)->ReadKey("ld_a").status().code(), absl::StatusCode::kNotFound);
}

TEST(KeyStoreTest, KafkaKeysCommitWithTheirEventsAndAnotherProcessFindsThem) {
  auto cluster = MockKafkaCluster::Start(1);
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(kEventsTopic), 2).ok());
  KafkaLogOptions o;
  o.bootstrap_servers = (*cluster)->bootstrap_servers();
  o.timeout = absl::Seconds(10);
  // No keys topic: no key store, and keys are refused. (Configured away here: the mock cluster
  // creates any topic a metadata request names, so it cannot show a missing one.)
  {
    o.transactional_id = "keys-test-0";
    KafkaLogOptions none = o;
    none.keys_topic.clear();
    auto log = KafkaLog::Open(none);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_FALSE((*log)->HasKeyStore());
    const std::vector<Message> batch = OneEvent("ld_a");
    const KeyRecord put[] = {{"ld_a", "wrapped-a"}};
    PartitionAppend a{PartitionForKey("ld_a", 2), batch, put};
    absl::Status st = (*log)->AppendMany({&a, 1}).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(st.message()), HasSubstr("keys topic"));
  }
  ASSERT_TRUE((*cluster)->CreateTopic(std::string(kKeysTopic), 2).ok());
  o.transactional_id = "keys-test-1";
  auto writer = KafkaLog::Open(o);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->HasKeyStore());
  KafkaLogOptions view_options = o;
  view_options.transactional_id.clear();  // a view process
  auto view = KafkaLog::Open(view_options);
  ASSERT_TRUE(view.ok()) << view.status();
  // Keys need a transaction (they must commit with their events).
  {
    const std::vector<Message> batch = OneEvent("ld_z");
    const KeyRecord put[] = {{"ld_z", "wrapped-z"}};
    PartitionAppend a{PartitionForKey("ld_z", 2), batch, put};
    EXPECT_EQ((*view)->AppendMany({&a, 1}).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  for (const std::string lead : {"ld_a", "ld_b", "ld_c"}) {
    const std::vector<Message> batch = OneEvent(lead);
    const KeyRecord put[] = {{lead, "wrapped-" + lead}};
    PartitionAppend a{PartitionForKey(lead, 2), batch, put};
    ASSERT_TRUE((*writer)->AppendMany({&a, 1}).ok());
  }
  EXPECT_EQ(*(*writer)->ReadKey("ld_b"), "wrapped-ld_b");
  EXPECT_EQ(*(*view)->ReadKey("ld_b"), "wrapped-ld_b");  // caught up from the topic
  EXPECT_EQ(*(*view)->ReadKey("ld_c"), "wrapped-ld_c");
  // Destroyed: the writer at once; another process once it catches up (a fresh one here).
  const std::vector<Message> batch = OneEvent("ld_b");
  const KeyRecord destroy[] = {{"ld_b", ""}};
  PartitionAppend d{PartitionForKey("ld_b", 2), batch, destroy};
  ASSERT_TRUE((*writer)->AppendMany({&d, 1}).ok());
  EXPECT_EQ((*writer)->ReadKey("ld_b").status().code(), absl::StatusCode::kNotFound);
  auto fresh = KafkaLog::Open(view_options);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ((*fresh)->ReadKey("ld_b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*(*fresh)->ReadKey("ld_a"), "wrapped-ld_a");
  EXPECT_EQ((*fresh)->ReadKey("ld_never").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace leadflow::log

#include "services/command/command_index.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/ids.h"

namespace leadflow::command {
namespace {

class DiskCommandIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-cmdindex-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

CommandRecord RecordFor(int lead, int command) {
  v1::CommandReply reply;
  reply.set_lead_version(command + 1);
  return CommandRecord{common::Sha256Hex(absl::StrCat(lead, "/", command), 32), "log_interaction",
                       reply.SerializeAsString()};
}

int TableFiles(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().extension() == ".sst";
  }
  return n;
}

// Records live in memory until they fill the spill size, then in table files the store ingests:
// every record must come back from each place (the map, a batch being spilled, the store),
// including several commands of one lead, and ids never recorded must not. Reads run between
// the writes too, so some land while a spill is in flight.
TEST_F(DiskCommandIndexTest, EveryRecordComesBackAcrossSpills) {
  auto index = OpenDiskCommandIndex(dir_ + "/index", {}, 4 << 20, /*spill_bytes=*/256 << 10);
  ASSERT_TRUE(index.ok()) << index.status();
  constexpr int kLeads = 6000, kPerLead = 5;
  std::vector<std::string> leads;
  for (int l = 0; l < kLeads; ++l) {
    leads.push_back(common::LeadIdForEmail(absl::StrCat("lead", l, "@example.com")));
  }
  auto expect_record = [&](int l, int c) {
    auto got = (*index)->Get(absl::StrCat(leads[l], "/cmd-", c));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << leads[l] << " command " << c;
    const CommandRecord want = RecordFor(l, c);
    EXPECT_EQ((*got)->fingerprint, want.fingerprint);
    EXPECT_EQ((*got)->type, "log_interaction");
    EXPECT_EQ((*got)->Replayed().lead_version(), c + 1);
  };
  for (int c = 0; c < kPerLead; ++c) {
    std::vector<std::pair<std::string, CommandRecord>> group;
    for (int l = 0; l < kLeads; ++l) {
      group.emplace_back(absl::StrCat(leads[l], "/cmd-", c), RecordFor(l, c));
      if (group.size() == 1000) {
        ASSERT_TRUE((*index)->PutMany(group).ok());
        group.clear();
        expect_record(l, c);          // just written: in memory
        expect_record(l / 2, c / 2);  // earlier: in memory, being spilled, or in the store
      }
    }
    ASSERT_TRUE((*index)->PutMany(group).ok());
  }
  // 30,000 records of ~140 bytes are many spills of 256 KiB: the store must hold table files.
  for (int i = 0; i < 200 && TableFiles(dir_ + "/index") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(TableFiles(dir_ + "/index"), 0) << "no spill reached the store";
  for (int l = 0; l < kLeads; ++l) {
    for (int c = 0; c < kPerLead; ++c) expect_record(l, c);
    auto missing = (*index)->Get(absl::StrCat(leads[l], "/cmd-", kPerLead));
    ASSERT_TRUE(missing.ok());
    EXPECT_FALSE(missing->has_value());
  }
  auto unknown = (*index)->Get(absl::StrCat(common::LeadIdForEmail("nobody@example.com"), "/x"));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

// The spill writes keys in RocksDB's bytewise order, which a table file requires (an unsorted
// spill fails and stops the writer): keys that tie on their first 8 bytes, and keys that differ
// only there, all spill and come back.
TEST_F(DiskCommandIndexTest, SpillsSortKeysBytewise) {
  auto index = OpenDiskCommandIndex(dir_ + "/index", {}, 4 << 20, /*spill_bytes=*/16 << 10);
  ASSERT_TRUE(index.ok()) << index.status();
  std::vector<std::string> keys;
  for (int i = 0; i < 400; ++i) {
    // Same first 8 bytes, differing later; and different first bytes with equal later bytes.
    keys.push_back(absl::StrCat("ld_00000", absl::Hex(i, absl::kZeroPad8), "0000000/c", i));
    keys.push_back(absl::StrCat(std::string(1, static_cast<char>('a' + i % 26)), "d_",
                                absl::Hex(i % 7, absl::kZeroPad8), "000000000000/c", i));
  }
  for (size_t i = 0; i < keys.size(); i += 50) {
    std::vector<std::pair<std::string, CommandRecord>> group;
    for (size_t j = i; j < std::min(keys.size(), i + 50); ++j) {
      group.emplace_back(keys[j], RecordFor(1, static_cast<int>(j)));
    }
    ASSERT_TRUE((*index)->PutMany(group).ok());
  }
  for (int i = 0; i < 200 && TableFiles(dir_ + "/index") < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(TableFiles(dir_ + "/index"), 2) << "the spills did not reach the store";
  // A failed (unsorted) spill would be reported here.
  ASSERT_TRUE((*index)->PutMany({{keys[0], RecordFor(1, 0)}}).ok());
  for (size_t j = 0; j < keys.size(); ++j) {
    auto got = (*index)->Get(keys[j]);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << keys[j];
    EXPECT_EQ((*got)->Replayed().lead_version(), static_cast<int64_t>(j) + 1);
  }
}

// A spill that cannot be written (here: the store's directory is gone) is reported by the next
// PutMany as UNAVAILABLE (the writer then refuses commands until a restart), and the records it
// held stay readable: a retry of one of those commands is still answered, not applied again.
TEST_F(DiskCommandIndexTest, AFailedSpillIsReportedAndItsRecordsStayReadable) {
  auto index = OpenDiskCommandIndex(dir_ + "/index", {}, 4 << 20, /*spill_bytes=*/64 << 10);
  ASSERT_TRUE(index.ok()) << index.status();
  std::filesystem::remove_all(dir_ + "/index");
  const std::string lead = common::LeadIdForEmail("spill@example.com");
  absl::Status put;
  int written = 0;
  for (int i = 0; i < 20000 && put.ok(); ++i) {
    put = (*index)->PutMany({{absl::StrCat(lead, "/cmd-", i), RecordFor(1, i)}});
    if (put.ok()) ++written;
    if (i % 100 == 0) absl::SleepFor(absl::Milliseconds(1));  // let a spill finish failing
  }
  ASSERT_FALSE(put.ok()) << "no spill failed";
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(put.message()), ::testing::HasSubstr("command index: writing"));
  ASSERT_GT(written, 0);
  for (int i = 0; i < written; ++i) {
    auto got = (*index)->Get(absl::StrCat(lead, "/cmd-", i));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << "command " << i << " of " << written << " was lost";
    EXPECT_EQ((*got)->Replayed().lead_version(), i + 1);
  }
}

// A key without its lead id is a bug (keys are "<lead id>/<command id>"): refused, nothing stored.
TEST_F(DiskCommandIndexTest, KeysShorterThanALeadIdAreRefused) {
  auto index = OpenDiskCommandIndex(dir_ + "/index");
  ASSERT_TRUE(index.ok()) << index.status();
  absl::Status put = (*index)->PutMany({{"ld_short/cmd", RecordFor(1, 1)}});
  EXPECT_EQ(put.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(put.message()), ::testing::HasSubstr("does not start with a lead id"));
  EXPECT_EQ((*index)->Get("ld_short/cmd").status().code(), absl::StatusCode::kInternal);
}

// The key check counts on a real lead id being exactly this long.
TEST(CommandIndexKeys, LeadIdsAreThePrefixLength) {
  EXPECT_EQ(common::LeadIdForEmail("a@example.com").size(), kCommandIndexPrefixLength);
  EXPECT_EQ(common::LeadIdForPhone("+4915112345678").size(), kCommandIndexPrefixLength);
}

}  // namespace
}  // namespace leadflow::command

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

// The index is hashed by lead id in memory and sorted on disk: every record must come back,
// from the memtable and after flushes (a 4 MiB memtable budget forces several), including
// several commands of one lead and ids that share a lead but were never recorded.
TEST_F(DiskCommandIndexTest, EveryRecordComesBackAcrossFlushes) {
  storage::StorageBudgetOptions small;
  small.memtable_bytes = 4 << 20;
  small.block_cache_bytes = 4 << 20;
  auto index = OpenDiskCommandIndex(dir_ + "/index", storage::MakeStorageBudget(small));
  ASSERT_TRUE(index.ok()) << index.status();
  constexpr int kLeads = 6000, kPerLead = 5;
  std::vector<std::string> leads;
  for (int l = 0; l < kLeads; ++l) {
    leads.push_back(common::LeadIdForEmail(absl::StrCat("lead", l, "@example.com")));
  }
  for (int c = 0; c < kPerLead; ++c) {
    std::vector<std::pair<std::string, CommandRecord>> group;
    for (int l = 0; l < kLeads; ++l) {
      group.emplace_back(absl::StrCat(leads[l], "/cmd-", c), RecordFor(l, c));
      if (group.size() == 1000) {
        ASSERT_TRUE((*index)->PutMany(group).ok());
        group.clear();
      }
    }
    ASSERT_TRUE((*index)->PutMany(group).ok());
  }
  // The budget made RocksDB flush memtables to table files (in the background): wait for one,
  // so the reads below cover both places.
  auto table_files = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/index")) {
      n += e.path().extension() == ".sst";
    }
    return n;
  };
  for (int i = 0; i < 200 && table_files() == 0; ++i) absl::SleepFor(absl::Milliseconds(50));
  ASSERT_GT(table_files(), 0) << "the memtable budget did not force a flush";
  for (int l = 0; l < kLeads; ++l) {
    for (int c = 0; c < kPerLead; ++c) {
      auto got = (*index)->Get(absl::StrCat(leads[l], "/cmd-", c));
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_TRUE(got->has_value()) << leads[l] << " command " << c;
      const CommandRecord want = RecordFor(l, c);
      EXPECT_EQ((*got)->fingerprint, want.fingerprint);
      EXPECT_EQ((*got)->type, "log_interaction");
      EXPECT_EQ((*got)->Replayed().lead_version(), c + 1);
    }
    auto missing = (*index)->Get(absl::StrCat(leads[l], "/cmd-", kPerLead));
    ASSERT_TRUE(missing.ok());
    EXPECT_FALSE(missing->has_value());
  }
  auto unknown = (*index)->Get(absl::StrCat(common::LeadIdForEmail("nobody@example.com"), "/x"));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

// A key without its lead id would make the hash memtable read past it: refused, nothing stored.
TEST_F(DiskCommandIndexTest, KeysShorterThanALeadIdAreRefused) {
  auto index = OpenDiskCommandIndex(dir_ + "/index");
  ASSERT_TRUE(index.ok()) << index.status();
  absl::Status put = (*index)->PutMany({{"ld_short/cmd", RecordFor(1, 1)}});
  EXPECT_EQ(put.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(put.message()), ::testing::HasSubstr("does not start with a lead id"));
  EXPECT_EQ((*index)->Get("ld_short/cmd").status().code(), absl::StatusCode::kInternal);
}

// The memtable hashes on the lead-id prefix; a real id must be exactly that long.
TEST(CommandIndexKeys, LeadIdsAreThePrefixLength) {
  EXPECT_EQ(common::LeadIdForEmail("a@example.com").size(), kCommandIndexPrefixLength);
  EXPECT_EQ(common::LeadIdForPhone("+4915112345678").size(), kCommandIndexPrefixLength);
}

}  // namespace
}  // namespace leadflow::command

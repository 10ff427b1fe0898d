#include "services/log/witness.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/log/embedded_log.h"

namespace leadflow::log {
namespace {

using ::testing::HasSubstr;

class WitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-witness-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(WitnessTest, MarksSurviveReopenAndOnlyGoUp) {
  const std::string path = dir_ + "/w";
  {
    auto w = WitnessFile::Open(path, 3);
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_FALSE((*w)->damaged());
    EXPECT_EQ((*w)->marks()[1].end, 0);
    ASSERT_TRUE((*w)->Advance({{1, {5, 4, "abc"}}, {2, {7, 6, "def"}}}).ok());
    ASSERT_TRUE((*w)->Advance({{1, {4, 3, "older"}}}).ok());
    ASSERT_TRUE((*w)->Advance({{1, {9, 8, "ghi"}}}).ok());
  }
  auto w = WitnessFile::Open(path, 3);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->marks()[1].end, 9);
  EXPECT_EQ((*w)->marks()[1].digest, "ghi");
  EXPECT_EQ((*w)->marks()[1].record_offset, 8);
  EXPECT_EQ((*w)->marks()[2].end, 7);
  EXPECT_EQ((*w)->marks()[0].end, 0);
}

TEST_F(WitnessTest, ATornSlotFallsBackToTheOtherAndTwoAreDamage) {
  const std::string path = dir_ + "/w";
  {
    auto w = WitnessFile::Open(path, 2);
    ASSERT_TRUE((*w)->Advance({{0, {3, 2, "a"}}}).ok());  // slot 1
    ASSERT_TRUE((*w)->Advance({{0, {4, 3, "b"}}}).ok());  // slot 0
  }
  const auto size = std::filesystem::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);  // inside slot 0 (the newer one)
    f.write("XX", 2);
  }
  auto w = WitnessFile::Open(path, 2);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)->damaged());
  EXPECT_EQ((*w)->marks()[0].end, 3) << "the whole older slot";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size) - 3);  // slot 1's checksum
    f.write("XX", 2);
  }
  auto broken = WitnessFile::Open(path, 2);
  ASSERT_TRUE(broken.ok());
  EXPECT_TRUE((*broken)->damaged());
  EXPECT_EQ((*broken)->marks()[0].end, 0);
}

TEST_F(WitnessTest, CheckMarkFindsATruncatedOrReplacedLog) {
  auto log = EmbeddedLog::Open({.dir = dir_ + "/log", .partitions = 2});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(1, {{"k", "one"}, {"k", "two"}}).ok());
  EXPECT_TRUE(CheckMark(**log, 1, {2, 1, RecordDigest("two")}, "the writer").ok());
  EXPECT_TRUE(CheckMark(**log, 1, {1, 0, RecordDigest("one")}, "the writer").ok())
      << "behind is fine";
  EXPECT_TRUE(CheckMark(**log, 0, {0, -1, ""}, "the writer").ok());
  absl::Status shorter = CheckMark(**log, 1, {3, 2, RecordDigest("three")}, "view lead");
  EXPECT_EQ(shorter.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(shorter.message()),
              HasSubstr("log partition 1 ends at offset 1 (2 events) but view lead had seen it up "
                        "to offset 2"));
  EXPECT_THAT(std::string(shorter.message()), HasSubstr("--accept-data-loss"));
  absl::Status other = CheckMark(**log, 1, {2, 1, RecordDigest("not two")}, "the writer");
  EXPECT_EQ(other.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(other.message()), HasSubstr("holds another record at offset 1"));
}

}  // namespace
}  // namespace leadflow::log

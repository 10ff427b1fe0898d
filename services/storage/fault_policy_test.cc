// How RocksDB statuses and log lines are classified (storage/fault_policy.h).
#include "services/storage/fault_policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/status.h"

namespace leadflow::storage {
namespace {

// The texts are RocksDB 7.8's (PosixFileSystem::LockFile).
TEST(FaultPolicyTest, OnlyATakenLockIsAnotherProcessUsingTheStore) {
  EXPECT_TRUE(IsLockHeld(rocksdb::Status::IOError("While lock file: /d/log/LOCK",
                                                  "Resource temporarily unavailable")));
  EXPECT_TRUE(IsLockHeld(rocksdb::Status::IOError(
      "lock hold by current process, acquire time 1 acquiring thread 2: /d/log/LOCK",
      "No locks available")));
  // A LOCK file that cannot be created: a read-only or full disk, not a second process.
  EXPECT_FALSE(IsLockHeld(rocksdb::Status::IOError("while open a file for lock: /d/log/LOCK",
                                                   "Read-only file system")));
  EXPECT_FALSE(IsLockHeld(rocksdb::Status::NoSpace("While appending to file: /d/log/1.log")));
  EXPECT_FALSE(IsLockHeld(rocksdb::Status::Corruption("While lock file")));
}

TEST(FaultPolicyTest, StatusClasses) {
  EXPECT_TRUE(absl::IsDataLoss(FromRocks(rocksdb::Status::Corruption("block checksum"), "read")));
  EXPECT_TRUE(absl::IsUnavailable(FromRocks(rocksdb::Status::NoSpace("full"), "append")));
  EXPECT_TRUE(absl::IsUnavailable(FromRocks(rocksdb::Status::IOError("EROFS"), "append")));
  EXPECT_TRUE(FromRocks(rocksdb::Status::OK(), "x").ok());
  EXPECT_THAT(std::string(FromRocks(rocksdb::Status::NoSpace("full"), "log: append").message()),
              ::testing::StartsWith("log: append: "));
}

TEST(FaultPolicyTest, ExpectedWarningsAreOnlyTheKnownOnes) {
  EXPECT_TRUE(
      IsExpectedRocksWarning("[db/db_impl/db_impl_files.cc:49] File Deletions Disabled, but "
                             "already disabled. Counter: 2"));
  EXPECT_TRUE(
      IsExpectedRocksWarning("[table/block_based/block_based_table_reader.cc:723] At "
                             "least one SST file opened without unique ID to verify: 8.sst"));
  EXPECT_FALSE(IsExpectedRocksWarning("Compaction error: Corruption: block checksum mismatch"));
  EXPECT_FALSE(IsExpectedRocksWarning("Stopping writes because we have 2 immutable memtables"));
}

}  // namespace
}  // namespace leadflow::storage

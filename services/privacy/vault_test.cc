// The vault: keys made for a lead's first sealed event land in the same append as the event,
// are read back (through the cache or the store), do not open under another KEK, and are gone
// after an erasure's append; the KEK file is made once, mode 0600, and a bad one is refused
// without quoting it.
#include "services/privacy/vault.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/log/embedded_log.h"
#include "services/log/event_codec.h"
#include "services/privacy/sealer.h"

namespace leadflow::privacy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class VaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path() / "leadflow-vault-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    log::EmbeddedLogOptions o;
    o.dir = dir_ + "/log";
    o.partitions = 1;
    log_ = *log::EmbeddedLog::Open(o);
  }
  void TearDown() override {
    log_.reset();
    fs::remove_all(dir_);
  }
  static v1::Event Captured(const std::string& lead, const std::string& name) {
    v1::Event e;
    e.set_event_id("e-" + name);
    e.set_partition_key(lead);
    e.set_aggregate_id(lead);
    e.set_aggregate_version(1);
    e.mutable_lead_captured()->mutable_person()->set_full_name(name);
    e.mutable_lead_captured()->set_company("Acme");
    return e;
  }
  // Seals `e` and appends it with whatever keys it needed; returns the keys made.
  absl::flat_hash_map<std::string, std::string> Append(Vault& vault, v1::Event& e) {
    absl::flat_hash_map<std::string, std::string> pending;
    std::vector<log::KeyRecord> records;
    EXPECT_TRUE(vault.Seal(&e, &pending, &records).ok());
    log::Message m = *log::EncodeEvent(e);
    log::Message batch[] = {m};
    log::PartitionAppend a{0, batch, records};
    EXPECT_TRUE(log_->AppendMany({&a, 1}).ok());
    vault.Remember(pending);
    return pending;
  }
  std::string dir_;
  std::unique_ptr<log::EmbeddedLog> log_;
};

TEST_F(VaultTest, AKeyLandsWithTheFirstEventAndIsGoneAfterTheErasure) {
  auto vault = *Vault::Make(log_.get(), std::string(kKekBytes, 'k'));
  v1::Event first = Captured("ld_1", "Ada Lovelace");
  EXPECT_EQ(Append(*vault, first).size(), 1u);
  EXPECT_TRUE(first.lead_captured().person().full_name().empty());
  EXPECT_FALSE(first.sealed_personal().empty());
  v1::Event second = Captured("ld_1", "Ada L.");
  EXPECT_TRUE(Append(*vault, second).empty());  // the lead's key, not a new one
  // The stored key (not the cache) opens both: a fresh vault over the same store.
  auto other = *Vault::Make(log_.get(), std::string(kKekBytes, 'k'));
  ASSERT_TRUE(other->Open(&first).ok());
  EXPECT_EQ(first.lead_captured().person().full_name(), "Ada Lovelace");
  ASSERT_TRUE(other->Open(&second).ok());
  EXPECT_EQ(second.lead_captured().person().full_name(), "Ada L.");
  // Another KEK: DATA_LOSS naming the option, never quoting a key.
  auto wrong = *Vault::Make(log_.get(), std::string(kKekBytes, 'x'));
  v1::Event sealed = Captured("ld_1", "Ada");
  absl::flat_hash_map<std::string, std::string> pending;
  std::vector<log::KeyRecord> records;
  absl::Status st = wrong->Seal(&sealed, &pending, &records);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("privacy.kek_file"));
  // The erasure's append destroys the key: the events come back without personal fields.
  v1::Event erased;
  erased.set_event_id("e-erased");
  erased.set_partition_key("ld_1");
  erased.mutable_lead_erased();
  log::Message m = *log::EncodeEvent(erased);
  log::Message batch[] = {m};
  log::KeyRecord destroy[] = {Vault::Destroy("ld_1")};
  log::PartitionAppend a{0, batch, destroy};
  ASSERT_TRUE(log_->AppendMany({&a, 1}).ok());
  vault->Forget("ld_1");
  ASSERT_TRUE(log_->PurgeDestroyedKeys().ok());
  v1::Event again = Captured("ld_1", "Ada Lovelace");
  ASSERT_TRUE(privacy::Seal(&again, std::string(kDataKeyBytes, 'd')).ok());
  bool was_erased = false;
  ASSERT_TRUE(vault->Open(&again, &was_erased).ok());
  EXPECT_TRUE(was_erased);
  EXPECT_TRUE(again.lead_captured().person().full_name().empty());
  EXPECT_EQ(again.lead_captured().company(), "Acme");
  EXPECT_FALSE(*vault->HasKey("ld_1"));
}

TEST_F(VaultTest, AnEventWithoutPersonalFieldsNeedsNoKey) {
  auto vault = *Vault::Make(log_.get(), std::string(kKekBytes, 'k'));
  v1::Event e;
  e.set_event_id("e1");
  e.set_partition_key("ld_2");
  e.mutable_lead_assigned()->set_owner("bob");
  EXPECT_TRUE(Append(*vault, e).empty());
  EXPECT_FALSE(*vault->HasKey("ld_2"));
}

TEST_F(VaultTest, TheKekFileIsMadeOncePrivateAndABadOneIsRefusedWithoutQuotingIt) {
  const std::string path = dir_ + "/kek";
  auto made = ReadOrCreateKek(path, /*create=*/true, "privacy.kek_file");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->size(), kKekBytes);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(*ReadOrCreateKek(path, true, "privacy.kek_file"), *made);  // not made again
  EXPECT_EQ(ReadOrCreateKek(dir_ + "/none", false, "privacy.kek_file").status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::ofstream(dir_ + "/bad") << "secretsecret\n";
  absl::Status bad = ReadOrCreateKek(dir_ + "/bad", false, "privacy.kek_file").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("64 hex digits"));
  EXPECT_THAT(std::string(bad.message()), Not(HasSubstr("secretsecret")));
  EXPECT_EQ(Vault::Make(log_.get(), "short").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leadflow::privacy

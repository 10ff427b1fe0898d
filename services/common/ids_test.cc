#include "services/common/ids.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::common {
namespace {

using ::testing::HasSubstr;

TEST(NormalizeEmailTest, TrimsAndLowercases) {
  auto e = NormalizeEmail("  Ada.Lovelace@Example.COM \n");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, "ada.lovelace@example.com");
}

TEST(NormalizeEmailTest, RefusesMalformedAddressesWithReason) {
  struct Case {
    const char* input;
    const char* reason;
  } cases[] = {
      {"", "empty"},
      {"ada", "no '@'"},
      {"a@b@c.com", "more than one '@'"},
      {"@example.com", "before '@' must be 1-64"},
      {"ada@localhost", "domain has no '.'"},
      {"ada@exa mple.com", "invalid domain"},
      {"ada..l@example.com", "misplaced '.'"},
      {"ad a@example.com", "invalid character"},
      {"ada@-example.com", "invalid domain"},
      {"ada@example..com", "invalid domain"},
  };
  for (const auto& c : cases) {
    auto e = NormalizeEmail(c.input);
    ASSERT_FALSE(e.ok()) << c.input;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(e.status().message(), HasSubstr(c.reason)) << c.input;
  }
}

TEST(NormalizePhoneTest, AcceptsInternationalFormats) {
  EXPECT_EQ(*NormalizePhone("+48 123-456-789"), "+48123456789");
  EXPECT_EQ(*NormalizePhone("0048 (12) 345.67.89"), "+48123456789");
  EXPECT_EQ(*NormalizePhone(" +90 532 000 11 22 "), "+905320001122");
}

TEST(NormalizePhoneTest, RefusesNationalAndMalformedNumbers) {
  struct Case {
    const char* input;
    const char* reason;
  } cases[] = {
      {"0532 000 11 22", "must start with '+' or '00'"},
      {"+48 12", "8 to 15 digits"},
      {"+1234567890123456", "8 to 15 digits"},
      {"+48 123 ABC 789", "unexpected character at position 9"},
      {"+0 123 456 789", "do not start with 0"},
      {"", "empty"},
  };
  for (const auto& c : cases) {
    auto p = NormalizePhone(c.input);
    ASSERT_FALSE(p.ok()) << c.input;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr(c.reason)) << c.input;
  }
}

TEST(LeadIdTest, IsDeterministicAndDistinguishesChannels) {
  // Pinned values: lead ids are stored in the log forever and must never change.
  EXPECT_EQ(LeadIdForEmail("ada@example.com"), LeadIdForEmail("ada@example.com"));
  // printf 'email:ada@example.com' | sha256sum | cut -c1-20
  EXPECT_EQ(LeadIdForEmail("ada@example.com"), "ld_9b62a3a2bce7c868f30d");
  EXPECT_EQ(LeadIdForPhone("+48123456789"), "ld_236dce2db765a3214af6");
  EXPECT_NE(LeadIdForEmail("ada@example.com"), LeadIdForEmail("bob@example.com"));
  EXPECT_NE(LeadIdForEmail("+48123456789"), LeadIdForPhone("+48123456789"));
  EXPECT_TRUE(IsLeadId(LeadIdForPhone("+48123456789")));
  EXPECT_FALSE(IsLeadId("ld_xyz"));
  EXPECT_FALSE(IsLeadId("cu_0123456789abcdef0123"));
}

TEST(LeadIdTest, CustomerIdRoundTripsToLead) {
  std::string lead = LeadIdForEmail("ada@example.com");
  std::string customer = CustomerIdForLead(lead);
  EXPECT_TRUE(IsCustomerId(customer));
  EXPECT_EQ(customer.substr(3), lead.substr(3));
  EXPECT_EQ(LeadIdForCustomer(customer), lead);
}

TEST(LeadIdTest, ChecksNameTheFieldAndTheProblem) {
  EXPECT_TRUE(CheckLeadId("lead_id", LeadIdForEmail("ada@example.com")).ok());
  EXPECT_EQ(CheckLeadId("merge_lead.survivor_lead_id", "").message(),
            "merge_lead.survivor_lead_id: required");
  EXPECT_EQ(CheckLeadId("lead_id", "cu_9b62a3a2bce7c868f30d").message(),
            "lead_id: 'cu_9b62a3a2bce7c868f30d' is not a lead id (ld_ and 20 hex digits)");
  EXPECT_EQ(CheckCustomerId("customer_id", "ld_9b62a3a2bce7c868f30d").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckCustomerId("customer_id", "cu_9b62a3a2bce7c868f30d").ok());
}

TEST(Sha256HexTest, MatchesSha256sum) {
  // printf 'abc' | sha256sum
  EXPECT_EQ(Sha256Hex("abc", 64),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abc", 8), "ba7816bf");
}

TEST(EventIdTest, IsHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewEventId();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace leadflow::common

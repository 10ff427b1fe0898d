#include "services/common/ids.h"

#include <set>
#include <type_traits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

TEST(NormalizePhoneTest, AcceptsTheWaysPeopleWriteNumbers) {
  EXPECT_EQ(*NormalizePhone("+48 123-456-789"), "+48123456789");
  EXPECT_EQ(*NormalizePhone("0048 (12) 345.67.89"), "+48123456789");
  EXPECT_EQ(*NormalizePhone(" +90 532 000 11 22 "), "+905320001122");
  // The "(0)" of a UK number written for both domestic and foreign readers; the 00 prefix.
  for (const char* uk :
       {"+44 (0) 20 7946 0958", "+44 20 7946 0958", "0044 20 7946 0958", "+44-20-7946-0958"}) {
    EXPECT_EQ(*NormalizePhone(uk), "+442079460958") << uk;
  }
  // National numbers only with a region.
  EXPECT_EQ(*NormalizePhone("020 7946 0958", "GB"), "+442079460958");
  EXPECT_EQ(*NormalizePhone("(415) 555-2671", "US"), "+14155552671");
  EXPECT_EQ(*NormalizePhone("+48 123 456 789", "US"), "+48123456789") << "+ wins over the region";
}

TEST(NormalizePhoneTest, RefusesNationalInvalidAndMalformedNumbers) {
  struct Case {
    const char* input;
    const char* reason;
  } cases[] = {
      {"0532 000 11 22", "must start with '+' or '00' and a country code"},
      {"+48 12", "not a number of its country's numbering plan"},
      {"+1 2 3 4 5 6 7 8", "not a number of its country's numbering plan"},
      {"+1234567890123456", "numbering plan"},
      {"+48 123 ABC 789", "only digits, spaces and + - . ( ) / are allowed"},
      {"+0 123 456 789", "unknown country code"},
      {"+999 1234 5678", "unknown country code"},
      {"", "empty"},
  };
  for (const auto& c : cases) {
    auto p = NormalizePhone(c.input);
    ASSERT_FALSE(p.ok()) << c.input << " -> " << *p;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr(c.reason)) << c.input;
    if (*c.input != 0) {
      EXPECT_THAT(p.status().message(), Not(HasSubstr(c.input))) << "the number is never quoted";
    }
  }
}

TEST(LeadIdSchemeTest, KeyedIdsAreStableSecretAndDistinct) {
  const LeadIdScheme a("key-one-0123456789"), b("key-two-0123456789");
  EXPECT_EQ(a.ForEmail("ada@example.com"), a.ForEmail("ada@example.com"));
  EXPECT_TRUE(IsLeadId(a.ForEmail("ada@example.com")));
  EXPECT_NE(a.ForEmail("ada@example.com"), b.ForEmail("ada@example.com")) << "the key matters";
  EXPECT_NE(a.ForEmail("ada@example.com"), LeadIdForEmail("ada@example.com"))
      << "not the unkeyed scheme 1";
  EXPECT_NE(a.ForEmail("+48123456789"), a.ForPhone("+48123456789"));
  EXPECT_NE(a.ForEmail("ada@example.com", 1), a.ForEmail("ada@example.com"));
  // Pinned: ids are stored in the log forever; the derivation must never change.
  EXPECT_EQ(a.ForEmail("ada@example.com"),
            LeadIdScheme("key-one-0123456789").ForEmail("ada@example.com"));
  const std::string k1 = NewIdKey(), k2 = NewIdKey();
  EXPECT_EQ(k1.size(), 64u);
  EXPECT_NE(k1, k2);
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
  const LeadId lead(LeadIdForEmail("ada@example.com"));
  const CustomerId customer = CustomerIdForLead(lead);
  EXPECT_TRUE(IsCustomerId(customer.value()));
  EXPECT_EQ(customer.value().substr(3), lead.value().substr(3));
  EXPECT_EQ(LeadIdForCustomer(customer), lead);
}

// A lead id, a customer id and a plain string do not stand in for each other: passing one where
// another is meant does not compile.
static_assert(!std::is_convertible_v<std::string, LeadId>);
static_assert(!std::is_convertible_v<LeadId, std::string>);
static_assert(!std::is_convertible_v<LeadId, CustomerId>);
static_assert(!std::is_convertible_v<CustomerId, LeadId>);
static_assert(!std::is_invocable_v<decltype(&CustomerIdForLead), const CustomerId&>);
static_assert(!std::is_invocable_v<decltype(&LeadIdForCustomer), const LeadId&>);

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

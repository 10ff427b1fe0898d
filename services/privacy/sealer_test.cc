// Sealing: every personal field leaves the event's bytes, comes back with the key, and only for
// this event; without the key (an erased lead) nothing personal can be recovered.
#include "services/privacy/sealer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::privacy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Event Captured() {
  v1::Event e;
  e.set_event_id("0123456789abcdef0123456789abcdef");
  e.set_partition_key("ld_0000000000000000000a");
  e.set_aggregate_id("ld_0000000000000000000a");
  e.set_command_type("capture_lead");
  v1::LeadCaptured* c = e.mutable_lead_captured();
  c->mutable_person()->set_full_name("Ada Lovelace");
  c->set_email("ada@example.com");
  c->set_phone("+441234567890");
  c->set_title("Countess of Lovelace");
  c->set_interest_note("difference engines");
  c->set_company("Analytical Engines Ltd");
  c->set_source_channel(v1::SOURCE_CHANNEL_REFERRAL);
  return e;
}

TEST(SealerTest, PersonalFieldsLeaveTheBytesAndComeBackWithTheKey) {
  const std::string key = NewDataKey();
  ASSERT_EQ(key.size(), kDataKeyBytes);
  v1::Event original = Captured();
  v1::Event e = original;
  ASSERT_TRUE(Seal(&e, key).ok());
  const std::string bytes = e.SerializeAsString();
  for (const char* secret :
       {"Ada Lovelace", "ada@example.com", "+441234567890", "Countess", "difference engines"}) {
    EXPECT_THAT(bytes, Not(HasSubstr(secret))) << secret;
  }
  // What analytics needs stays in clear.
  EXPECT_EQ(e.lead_captured().company(), "Analytical Engines Ltd");
  EXPECT_EQ(e.lead_captured().source_channel(), v1::SOURCE_CHANNEL_REFERRAL);
  EXPECT_FALSE(e.sealed_personal().empty());
  ASSERT_TRUE(Open(&e, key).ok());
  EXPECT_EQ(e.SerializeAsString(), original.SerializeAsString());
}

TEST(SealerTest, AWrongKeyOrAnotherEventCannotOpenIt) {
  const std::string key = NewDataKey();
  v1::Event e = Captured();
  ASSERT_TRUE(Seal(&e, key).ok());
  v1::Event wrong = e;
  absl::Status st = Open(&wrong, NewDataKey());
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr("Ada")));
  // The blob moved to another event (another id) does not open either.
  v1::Event moved = e;
  moved.set_event_id("ffffffffffffffffffffffffffffffff");
  EXPECT_TRUE(absl::IsDataLoss(Open(&moved, key)));
  v1::Event damaged = e;
  (*damaged.mutable_sealed_personal())[30] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(Open(&damaged, key)));
  // Without the key (erased), dropping the blob leaves no personal data at all.
  v1::Event erased = e;
  DropSealed(&erased);
  EXPECT_EQ(erased.lead_captured().email(), "");
  EXPECT_FALSE(erased.lead_captured().has_person());
  EXPECT_EQ(erased.lead_captured().company(), "Analytical Engines Ltd");
}

TEST(SealerTest, EventsWithoutPersonalDataAndBadKeys) {
  v1::Event e;
  e.set_event_id("0123456789abcdef0123456789abcdef");
  e.mutable_stage_changed()->set_stage(v1::SALES_STAGE_NEEDS_ANALYSIS);
  const std::string before = e.SerializeAsString();
  ASSERT_TRUE(Seal(&e, NewDataKey()).ok());
  EXPECT_EQ(e.SerializeAsString(), before);  // nothing to seal
  v1::Event c = Captured();
  EXPECT_TRUE(absl::IsInvalidArgument(Seal(&c, "short")));
  ASSERT_TRUE(Seal(&c, NewDataKey()).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(Seal(&c, NewDataKey())));  // already sealed
}

TEST(SealerTest, EveryPayloadKindSealsWithoutLoss) {
  // Every payload with every personal string field set: sealing and opening gives it back
  // exactly (the marks never sit inside a repeated message, where merging back would fail).
  const auto* oneof = v1::Event::descriptor()->FindOneofByName("payload");
  for (int i = 0; i < oneof->field_count(); ++i) {
    v1::Event e;
    e.set_event_id("0123456789abcdef0123456789abcdef");
    e.set_partition_key("ld_0000000000000000000a");
    google::protobuf::Message* body = e.GetReflection()->MutableMessage(&e, oneof->field(i));
    const auto* d = body->GetDescriptor();
    for (int f = 0; f < d->field_count(); ++f) {
      const auto* field = d->field(f);
      if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
          !field->is_repeated()) {
        body->GetReflection()->SetString(body, field, "value-of-" + field->name());
      }
    }
    const std::string before = e.SerializeAsString();
    const std::string key = NewDataKey();
    ASSERT_TRUE(Seal(&e, key).ok()) << oneof->field(i)->name();
    ASSERT_TRUE(Open(&e, key).ok()) << oneof->field(i)->name();
    EXPECT_EQ(e.SerializeAsString(), before) << oneof->field(i)->name();
  }
}

}  // namespace
}  // namespace leadflow::privacy

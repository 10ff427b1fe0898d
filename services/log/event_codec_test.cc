#include "services/log/event_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/schema.h"

namespace leadflow::log {
namespace {

v1::Event SampleEvent() {
  v1::Event e;
  e.set_schema_version(common::kEventSchemaVersion);
  e.set_event_id("0123456789abcdef0123456789abcdef");
  e.set_aggregate_type(v1::AGGREGATE_TYPE_LEAD);
  e.set_aggregate_id("ld_9b62a3a2bce7c868f30d");
  e.set_aggregate_version(1);
  e.set_partition_key("ld_9b62a3a2bce7c868f30d");
  e.mutable_lead_captured()->mutable_person()->set_full_name("Ada Lovelace");
  return e;
}

Record AsRecord(const Message& m, int32_t partition = 2, int64_t offset = 7) {
  return Record{partition, offset, m.key, m.value, absl::Now()};
}

TEST(EventCodecTest, RoundTrips) {
  auto m = EncodeEvent(SampleEvent());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->key, "ld_9b62a3a2bce7c868f30d");
  auto e = DecodeEvent(AsRecord(*m));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->SerializeAsString(), SampleEvent().SerializeAsString());
}

TEST(EventCodecTest, UndecodableBytesNamePartitionAndOffset) {
  auto e = DecodeEvent(Record{2, 7, "ld_x", std::string("\xff\xff\xff\xff garbage", 12), {}});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(e.status().message(),
            "partition 2 offset 7: undecodable event (12 bytes are not a leadflow.v1.Event)");
}

TEST(EventCodecTest, NewerSchemaIsRefusedNotMisread) {
  v1::Event future = SampleEvent();
  future.set_schema_version(9);
  auto e = DecodeEvent(AsRecord(*EncodeEvent(future)));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(e.status().message(),
            "partition 2 offset 7: event schema_version 9 is newer than this build reads (1); "
            "upgrade leadflow before reading this log");
}

TEST(EventCodecTest, ForeignProtobufIsRefused) {
  // Valid protobuf bytes of some other message: parses, but has no envelope version.
  v1::Event other;
  other.set_event_id("not an envelope");
  other.set_partition_key("k");
  auto e = DecodeEvent(AsRecord(*EncodeEvent(other)));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(e.status().message()),
              ::testing::HasSubstr("no envelope schema_version"));
}

TEST(EventCodecTest, KeyMustMatchPartitionKey) {
  auto m = EncodeEvent(SampleEvent());
  m->key = "ld_other";
  auto e = DecodeEvent(AsRecord(*m));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(e.status().message()),
              ::testing::HasSubstr("record key 'ld_other' differs"));
}

TEST(EventCodecTest, EventWithoutPartitionKeyIsNotEncoded) {
  v1::Event e = SampleEvent();
  e.clear_partition_key();
  EXPECT_EQ(EncodeEvent(e).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leadflow::log

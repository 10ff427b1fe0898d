#include <librdkafka/rdkafka.h>

#include <random>

#include "gtest/gtest.h"
#include "services/log/event_log.h"

namespace leadflow::log {
namespace {

// Values from Apache Kafka's UtilsTest.testMurmur2 (the Java client's partitioner).
TEST(PartitionerTest, MatchesJavaMurmur2Vectors) {
  EXPECT_EQ(static_cast<int32_t>(Murmur2("21")), -973932308);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("foobar")), -790332482);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")),
            -58897971);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("abc")), 479470107);
}

// And librdkafka's own murmur2 partitioner (what `partitioner=murmur2_random` uses for keyed
// messages), over many random keys of every tail length and many partition counts.
TEST(PartitionerTest, AgreesWithLibrdkafka) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> len(0, 40), byte(0, 255), parts(1, 64);
  for (int i = 0; i < 20000; ++i) {
    std::string key(len(rng), '\0');
    for (char& c : key) c = static_cast<char>(byte(rng));
    int32_t n = parts(rng);
    ASSERT_EQ(PartitionForKey(key, n), rd_kafka_msg_partitioner_murmur2(
                                           nullptr, key.data(), key.size(), n, nullptr, nullptr))
        << "key of " << key.size() << " bytes, " << n << " partitions";
  }
}

TEST(PartitionerTest, SpreadsLeadIdsAcrossPartitions) {
  std::vector<int> counts(8, 0);
  for (int i = 0; i < 8000; ++i) counts[PartitionForKey("ld_" + std::to_string(i), 8)]++;
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
}

}  // namespace
}  // namespace leadflow::log

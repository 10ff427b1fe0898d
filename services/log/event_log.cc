#include "services/log/event_log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace leadflow::log {

uint32_t Murmur2(absl::string_view data) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = data.size();
  uint32_t h = 0x9747b28c ^ static_cast<uint32_t>(length);
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) | (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length & ~size_t{3};
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int32_t PartitionForKey(absl::string_view key, int32_t partition_count) {
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffff) % static_cast<uint32_t>(partition_count));
}

absl::Status CheckPartition(absl::string_view field, int32_t partition, int32_t count) {
  if (partition < 0 || partition >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", partition, " is out of range [0, ", count, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAppend(int32_t partition, int32_t partition_count,
                            absl::Span<const Message> batch, size_t max_message_bytes) {
  if (absl::Status st = CheckPartition("partition", partition, partition_count); !st.ok()) {
    return st;
  }
  if (batch.empty()) return absl::InvalidArgumentError("batch: empty; nothing to append");
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch[", i, "].key: empty; every record needs a partition key"));
    }
    if (batch[i].value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("batch[", i, "].value: empty"));
    }
    const size_t size = batch[i].key.size() + batch[i].value.size();
    if (size > max_message_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("batch[", i, "]: record of ", size,
                                                     " bytes exceeds the limit of ",
                                                     max_message_bytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAppendMany(absl::Span<const PartitionAppend> appends, int32_t partition_count,
                                size_t max_message_bytes) {
  if (appends.empty()) return absl::InvalidArgumentError("appends: empty; nothing to append");
  std::vector<bool> seen(partition_count > 0 ? partition_count : 0, false);
  for (const PartitionAppend& a : appends) {
    if (absl::Status st = ValidateAppend(a.partition, partition_count, a.batch, max_message_bytes);
        !st.ok()) {
      return appends.size() == 1 ? st
                                 : absl::Status(st.code(), absl::StrCat("partition ", a.partition,
                                                                        ": ", st.message()));
    }
    if (seen[a.partition]) {
      return absl::InvalidArgumentError(
          absl::StrCat("appends: partition ", a.partition, " appears twice"));
    }
    seen[a.partition] = true;
    for (const KeyRecord& k : a.keys) {
      if (k.lead_id.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("partition ", a.partition, ": a key record has no lead id"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadToEnd(
    EventLog& log, int32_t partition, int64_t from, int64_t end, size_t max_records,
    const std::function<absl::Status(std::vector<Record>& records, int64_t position)>& chunk,
    absl::Duration stall) {
  if (from >= end) return from;
  absl::StatusOr<std::unique_ptr<LogReader>> reader = log.OpenReader(partition, from);
  if (!reader.ok()) return reader.status();
  int64_t position = from;
  while (position < end) {
    const int64_t before = (*reader)->position();
    // Never past `end` (a rebuild up to where another copy stopped): at most the records left.
    const size_t left = static_cast<size_t>(end - before);
    absl::StatusOr<std::vector<Record>> records =
        (*reader)->Read(std::min(max_records, left), stall);
    if (!records.ok()) return records.status();
    if (records->empty() && (*reader)->position() == before) {
      return absl::UnavailableError(absl::StrCat(
          "partition ", partition, ": the log stopped at offset ", before, " before its end ", end,
          " (nothing arrived for ", absl::FormatDuration(stall), ")"));
    }
    position = (*reader)->position();
    // Offsets with gaps (Kafka's transaction markers) can still reach past `end`.
    auto past = std::find_if(records->begin(), records->end(),
                             [end](const Record& r) { return r.offset >= end; });
    const bool reached_end = past != records->end();
    if (reached_end) {
      position = past->offset;
      records->erase(past, records->end());
    }
    if (absl::Status st = chunk(*records, std::min(position, end)); !st.ok()) return st;
    if (reached_end) break;
  }
  return std::min(position, end);
}

absl::StatusOr<AppendResult> EventLog::Append(int32_t partition, absl::Span<const Message> batch) {
  PartitionAppend one{partition, batch};
  absl::StatusOr<std::vector<AppendResult>> r = AppendMany(absl::MakeConstSpan(&one, 1));
  if (!r.ok()) return r.status();
  return r->front();
}

// `done` by value, as in the overrides that keep it until the ends are known.
void EventLog::FreshEndOffsets(
    absl::Duration, std::function<void(const std::vector<int64_t>& ends, bool inline_call)>
                        done) {  // NOLINT(performance-unnecessary-value-param)
  std::vector<int64_t> ends(partition_count(), -1);
  for (int32_t p = 0; p < partition_count(); ++p) {
    absl::StatusOr<int64_t> end = KnownEndOffset(p);
    if (end.ok()) ends[p] = *end;
  }
  done(ends, /*inline_call=*/true);
}

}  // namespace leadflow::log

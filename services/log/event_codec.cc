#include "services/log/event_codec.h"

#include "absl/strings/str_cat.h"
#include "services/common/schema.h"

namespace leadflow::log {

absl::StatusOr<Message> EncodeEvent(const v1::Event& event) {
  if (event.partition_key().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event ", event.event_id(), ": partition_key is empty"));
  }
  Message m;
  m.key = event.partition_key();
  if (!event.SerializeToString(&m.value)) {
    return absl::InternalError(absl::StrCat("event ", event.event_id(), ": cannot serialize"));
  }
  return m;
}

absl::StatusOr<v1::Event> DecodeEvent(const Record& record) {
  const std::string where = absl::StrCat("partition ", record.partition, " offset ", record.offset);
  v1::Event event;
  if (!event.ParseFromString(record.value)) {
    return absl::DataLossError(absl::StrCat(where, ": undecodable event (", record.value.size(),
                                            " bytes are not a leadflow.v1.Event)"));
  }
  if (event.schema_version() == 0) {
    return absl::DataLossError(
        absl::StrCat(where, ": not a leadflow event (no envelope schema_version)"));
  }
  if (event.schema_version() > common::kEventSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": event schema_version ", event.schema_version(),
                     " is newer than this build reads (", common::kEventSchemaVersion,
                     "); upgrade leadflow before reading this log"));
  }
  if (event.payload_case() == v1::Event::PAYLOAD_NOT_SET) {
    return absl::DataLossError(
        absl::StrCat(where, ": event ", event.event_id(), " has no payload this build knows"));
  }
  if (record.key != event.partition_key()) {
    return absl::DataLossError(absl::StrCat(where, ": record key '", record.key,
                                            "' differs from the event's partition_key '",
                                            event.partition_key(), "'"));
  }
  return event;
}

}  // namespace leadflow::log

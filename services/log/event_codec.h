// Encoding of leadflow.v1.Event to and from log records. A record that cannot be decoded is
// reported with its partition and offset, never skipped and never a crash.
#ifndef LEADFLOW_SERVICES_LOG_EVENT_CODEC_H_
#define LEADFLOW_SERVICES_LOG_EVENT_CODEC_H_

#include "absl/status/statusor.h"
#include "leadflow/v1/events.pb.h"
#include "services/log/event_log.h"

namespace leadflow::log {

// key = partition_key, value = the serialized event. Fails if the event has no partition key.
absl::StatusOr<Message> EncodeEvent(const v1::Event& event);

// DATA_LOSS "partition P offset O: ..." for bytes that are not an Event or whose key does not
// match its partition_key; FAILED_PRECONDITION for a schema_version newer than this build reads.
absl::StatusOr<v1::Event> DecodeEvent(const Record& record);

}  // namespace leadflow::log

#endif  // LEADFLOW_SERVICES_LOG_EVENT_CODEC_H_

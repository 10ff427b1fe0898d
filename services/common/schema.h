#ifndef LEADFLOW_SERVICES_COMMON_SCHEMA_H_
#define LEADFLOW_SERVICES_COMMON_SCHEMA_H_

#include <cstdint>

namespace leadflow::common {

// Envelope layout version this build writes and the newest it can read (Event.schema_version).
// Raise it only for a change old readers must not misread; additive fields do not need it.
inline constexpr uint32_t kEventSchemaVersion = 1;

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_SCHEMA_H_

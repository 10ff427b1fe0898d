// Short, human names of the contract's enums: SOURCE_CHANNEL_WEB_FORM -> "web-form". Used by
// leadctl (flags and tables) and by the analytics views (split values), so both spell them alike.
#ifndef LEADFLOW_SERVICES_COMMON_ENUM_NAMES_H_
#define LEADFLOW_SERVICES_COMMON_ENUM_NAMES_H_

#include <string>

#include "google/protobuf/descriptor.h"

namespace leadflow::common {

// The prefix shared by an enum's values, e.g. "SOURCE_CHANNEL_".
std::string EnumPrefix(const google::protobuf::EnumDescriptor* e);
// Lower-case name without the prefix, '_' as '-'; "-" for the zero (unspecified) value and
// "unknown(N)" for a number the enum does not define.
std::string EnumShortName(const google::protobuf::EnumDescriptor* e, int value);

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_ENUM_NAMES_H_

// Generic access to a leadflow.v1.Command: which command it is and its CommandMeta, for every
// command kind at once (each command message has `CommandMeta meta = 1`). Used by the domain,
// the writer, the server and the clients alike, so it sits at the bottom with the contract.
#ifndef LEADFLOW_SERVICES_COMMON_COMMANDS_H_
#define LEADFLOW_SERVICES_COMMON_COMMANDS_H_

#include <string>

#include "google/protobuf/message.h"
#include "leadflow/v1/commands.pb.h"

namespace leadflow::common {

// The body of a command (the set field of its `body` oneof) as a generic message, or nullptr if
// none is set.
const google::protobuf::Message* BodyOf(const v1::Command& command);
// Name of the command in error messages and metrics: "capture_lead", "qualify_lead", ...
// (the descriptor's own string, valid for the life of the program); "command" if none is set.
const std::string& CommandName(const v1::Command& command);
// The meta of the command's body; the default instance if no body is set.
const v1::CommandMeta& MetaOf(const v1::Command& command);
// The meta of the command's body, to fill in; nullptr if no body is set.
v1::CommandMeta* MutableMetaOf(v1::Command* command);

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_COMMANDS_H_

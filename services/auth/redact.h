// Personal data in messages: the fields the contract marks `[(leadflow.v1.personal) = true]`
// (proto/leadflow/v1/common.proto). One rule, read from the contract by reflection, for every
// message type.
#ifndef LEADFLOW_SERVICES_AUTH_REDACT_H_
#define LEADFLOW_SERVICES_AUTH_REDACT_H_

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace leadflow::auth {

// True if the contract marks `field` as personal data.
bool IsPersonal(const google::protobuf::FieldDescriptor* field);

// Clears every personal field of `message` and of every message inside it.
void RedactPersonal(google::protobuf::Message* message);

}  // namespace leadflow::auth

#endif  // LEADFLOW_SERVICES_AUTH_REDACT_H_

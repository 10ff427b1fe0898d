#include "services/common/commands.h"

namespace leadflow::common {
namespace {

// Command's `body` oneof, looked up by name once (every command asks for it, often twice).
const google::protobuf::OneofDescriptor* BodyOneof() {
  static const google::protobuf::OneofDescriptor* const oneof =
      v1::Command::descriptor()->FindOneofByName("body");
  return oneof;
}

}  // namespace

const google::protobuf::Message* BodyOf(const v1::Command& command) {
  const auto* field = command.GetReflection()->GetOneofFieldDescriptor(command, BodyOneof());
  if (field == nullptr) return nullptr;
  return &command.GetReflection()->GetMessage(command, field);
}

const std::string& CommandName(const v1::Command& command) {
  static const std::string* const kNone = new std::string("command");
  const auto* field = command.GetReflection()->GetOneofFieldDescriptor(command, BodyOneof());
  return field == nullptr ? *kNone : field->name();
}

const v1::CommandMeta& MetaOf(const v1::Command& command) {
  const google::protobuf::Message* body = BodyOf(command);
  if (body == nullptr) return v1::CommandMeta::default_instance();
  // Every command message has `CommandMeta meta = 1` (checked by reducer_test).
  const auto* meta_field = body->GetDescriptor()->FindFieldByNumber(1);
  return static_cast<const v1::CommandMeta&>(body->GetReflection()->GetMessage(*body, meta_field));
}

v1::CommandMeta* MutableMetaOf(v1::Command* command) {
  const auto* field = command->GetReflection()->GetOneofFieldDescriptor(*command, BodyOneof());
  if (field == nullptr) return nullptr;
  google::protobuf::Message* body = command->GetReflection()->MutableMessage(command, field);
  return static_cast<v1::CommandMeta*>(
      body->GetReflection()->MutableMessage(body, body->GetDescriptor()->FindFieldByNumber(1)));
}

}  // namespace leadflow::common

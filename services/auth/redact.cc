#include "services/auth/redact.h"

#include <vector>

#include "leadflow/v1/common.pb.h"

namespace leadflow::auth {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsPersonal(const FieldDescriptor* field) {
  return field->options().GetExtension(v1::personal);
}

void RedactPersonal(Message* message) {
  const google::protobuf::Reflection* r = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*message, &fields);
  for (const FieldDescriptor* f : fields) {
    if (IsPersonal(f)) {
      r->ClearField(message, f);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_map()) continue;  // no personal data is keyed in a map
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*message, f); ++i) {
          RedactPersonal(r->MutableRepeatedMessage(message, f, i));
        }
      } else {
        RedactPersonal(r->MutableMessage(message, f));
      }
    }
  }
}

}  // namespace leadflow::auth

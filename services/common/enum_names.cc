#include "services/common/enum_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace leadflow::common {

std::string EnumPrefix(const google::protobuf::EnumDescriptor* e) {
  const std::string& zero = e->value(0)->name();  // *_UNSPECIFIED
  return zero.substr(0, zero.size() - std::string("UNSPECIFIED").size());
}

std::string EnumShortName(const google::protobuf::EnumDescriptor* e, int value) {
  const auto* v = e->FindValueByNumber(value);
  if (v == nullptr) return absl::StrCat("unknown(", value, ")");
  if (value == 0) return "-";
  std::string name = absl::AsciiStrToLower(v->name().substr(EnumPrefix(e).size()));
  for (char& c : name) {
    if (c == '_') c = '-';
  }
  return name;
}

}  // namespace leadflow::common

#include "services/lead/state.h"

#include "absl/strings/str_cat.h"

namespace leadflow::lead {

std::string StatusName(v1::LeadStatus status) {
  const std::string& name = v1::LeadStatus_Name(status);
  constexpr absl::string_view kPrefix = "LEAD_STATUS_";
  if (name.empty()) return absl::StrCat("STATUS_", static_cast<int>(status));
  return name.substr(kPrefix.size());
}

std::string StageName(v1::SalesStage stage) {
  const std::string& name = v1::SalesStage_Name(stage);
  constexpr absl::string_view kPrefix = "SALES_STAGE_";
  if (name.empty()) return absl::StrCat("STAGE_", static_cast<int>(stage));
  return name.substr(kPrefix.size());
}

}  // namespace leadflow::lead

// Fuzz target: any bytes as a command, binary Protobuf or (first byte '{') the JSON a batch file
// line holds. Validation and the lifecycle rules must accept or refuse it with a status, on an
// unknown lead and on an existing one: never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "tests/fuzz/quiet_protobuf.h"

using namespace leadflow;

namespace {

const absl::Time kNow = absl::FromUnixSeconds(1795000000);

// A lead that exists, so commands on it get past "not found" into the lifecycle rules.
lead::LeadState ExistingLead(const std::string& lead_id) {
  lead::LeadState s;
  s.exists = true;
  s.lead_id = lead_id;
  s.version = 3;
  s.status = v1::LEAD_STATUS_CONTACTED;
  s.captured_at = kNow - absl::Hours(48);
  s.status_changed_at = kNow - absl::Hours(24);
  s.full_name = "Ada";
  s.email = "ada@example.com";
  s.owner = "bob";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  v1::Command command;
  if (!input.empty() && input[0] == '{') {
    if (!google::protobuf::util::JsonStringToMessage(input, &command).ok()) return 0;
  } else if (!command.ParseFromString(input)) {
    return 0;
  }
  static const common::LeadIdScheme ids("fuzz-key");
  static const lead::Identity identity{.ids = &ids, .phone_region = "GB"};
  absl::StatusOr<lead::CommandTarget> target = lead::ResolveTarget(command, identity);
  if (!target.ok()) return 0;
  (void)lead::CommandName(command);
  lead::DecideContext ctx;
  ctx.now = kNow;
  ctx.target = &*target;
  ctx.identity = &identity;
  const lead::CustomerState no_customer;
  (void)lead::Decide(lead::LeadState(), no_customer, command, ctx);
  const lead::LeadState existing = ExistingLead(target->lead_id);
  ctx.merge_survivor = &existing;
  auto events = lead::Decide(existing, no_customer, command, ctx);
  if (events.ok()) {
    // What Decide returns must evolve the state it decided on.
    lead::LeadState state = existing;
    lead::CustomerState customer;
    for (const v1::Event& e : *events) {
      const absl::Status st = e.aggregate_type() == v1::AGGREGATE_TYPE_LEAD
                                  ? lead::EvolveLead(state, e)
                                  : lead::EvolveCustomer(customer, e);
      if (!st.ok()) __builtin_trap();  // a reducer bug: its own events do not apply
    }
  }
  return 0;
}

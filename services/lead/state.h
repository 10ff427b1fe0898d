// Aggregate state as the reducer sees it. Built only by Evolve() from events, so the write side
// and every projection that needs lead state derive it the same way.
#ifndef LEADFLOW_SERVICES_LEAD_STATE_H_
#define LEADFLOW_SERVICES_LEAD_STATE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "leadflow/v1/common.pb.h"

namespace leadflow::lead {

struct FollowUpState {
  absl::Time due_at;
  v1::InteractionKind kind = v1::INTERACTION_KIND_UNSPECIFIED;
  std::string note;
  std::string assignee;
};

struct LeadState {
  bool exists = false;
  std::string lead_id;
  int64_t version = 0;

  v1::LeadStatus status = v1::LEAD_STATUS_UNSPECIFIED;
  v1::SalesStage stage = v1::SALES_STAGE_UNSPECIFIED;
  // Status and stage held before the last exit (reject/postpone/disqualify); Reactivate restores.
  v1::LeadStatus status_before_exit = v1::LEAD_STATUS_UNSPECIFIED;
  v1::SalesStage stage_before_exit = v1::SALES_STAGE_UNSPECIFIED;

  absl::Time captured_at = absl::InfinitePast();
  // Business time of the event that set the current status.
  absl::Time status_changed_at = absl::InfinitePast();

  std::string full_name;
  std::string company;
  std::string title;
  std::string email;
  std::string phone;
  v1::SourceChannel source_channel = v1::SOURCE_CHANNEL_UNSPECIFIED;
  v1::OriginType origin_type = v1::ORIGIN_TYPE_UNSPECIFIED;
  std::string campaign;
  v1::Temperature temperature = v1::TEMPERATURE_UNSPECIFIED;

  std::string owner;
  std::string team;
  int64_t interaction_count = 0;
  // Open follow-ups by id (ordered, so iteration and rendering are deterministic).
  std::map<std::string, FollowUpState> open_follow_ups;
  absl::Time revisit_at = absl::InfinitePast();  // set while POSTPONED

  std::string customer_id;  // set once CONVERTED
  std::string merged_into;  // set once MERGED
  bool erased = false;      // LeadErased: personal data destroyed; no command is decided on it

  bool IsTerminal() const {
    return status == v1::LEAD_STATUS_CONVERTED || status == v1::LEAD_STATUS_MERGED;
  }
};

struct CustomerState {
  bool exists = false;
  std::string customer_id;
  std::string lead_id;
  int64_t version = 0;
  absl::Time converted_at = absl::InfinitePast();
  std::string account_owner;
  int64_t purchase_count = 0;
};

// Human-readable status name without the enum prefix: "NEW", "CONVERTED", ...
std::string StatusName(v1::LeadStatus status);
std::string StageName(v1::SalesStage stage);

}  // namespace leadflow::lead

#endif  // LEADFLOW_SERVICES_LEAD_STATE_H_

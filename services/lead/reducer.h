// The lifecycle reducer: the one place where the rules of design §3 live.
//
//   Decide(state, command, context) -> events, or an error and no events
//   Evolve(state, event)            -> next state
//
// Pure: no I/O, no clock reads, no randomness. The caller supplies "now" and stamps event ids and
// record times on the events Decide returns (see services/command).
#ifndef LEADFLOW_SERVICES_LEAD_REDUCER_H_
#define LEADFLOW_SERVICES_LEAD_REDUCER_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/arena.h"
#include "leadflow/v1/commands.pb.h"
#include "leadflow/v1/events.pb.h"
#include "services/common/commands.h"
#include "services/common/schema.h"
#include "services/common/ids.h"
#include "services/lead/contacts.h"
#include "services/lead/state.h"

namespace leadflow::lead {

// Limits on free text, in bytes. Larger input is refused with INVALID_ARGUMENT.
inline constexpr size_t kMaxNoteBytes = 4096;  // notes, interest notes, reasons, free text
inline constexpr size_t kMaxShortBytes = 256;  // names, titles, campaign, refs, owners
inline constexpr size_t kMaxCommandIdBytes = 128;
// How far ahead of the server clock a business time may be.
inline constexpr absl::Duration kMaxFutureSkew = absl::Minutes(5);
// Furthest a postponement's revisit date may lie after the postponement.
inline constexpr absl::Duration kMaxPostponement = absl::Hours(24 * 3653);  // 10 years
inline constexpr uint32_t kCurrentSchemaVersion = common::kEventSchemaVersion;
// Payload type URL of an ABORTED status: a serialized leadflow.v1.VersionConflict.
inline constexpr char kVersionConflictTypeUrl[] = "type.googleapis.com/leadflow.v1.VersionConflict";

struct CommandTarget;

// How contacts are read and lead ids made: the deployment's id scheme (its key) and the region
// of phone numbers written without a country code (empty: they need one).
struct Identity {
  const common::LeadIdScheme* ids = nullptr;  // required to resolve a capture
  std::string phone_region;
};

struct DecideContext {
  absl::Time now;  // the server clock at receipt
  // For MergeLead: the survivor's state as the writer knows it (nullptr = unknown lead).
  const LeadState* merge_survivor = nullptr;
  // ResolveTarget(command) if the caller already has it (saves normalizing the contact twice).
  const CommandTarget* target = nullptr;
  // For UpdateContactDetails: the phone region (nullptr: none).
  const Identity* identity = nullptr;
  // Who holds which contact (contacts.h): a contact change to one another live lead holds is
  // refused with ALREADY_EXISTS. nullptr: not checked (tests of single leads, tools).
  const ContactDirectory* contacts = nullptr;
};

// Which aggregate a command addresses, derived from its fields alone (no state needed), so the
// writer can route it to a partition before deciding. For CaptureLead this validates and
// normalizes the contact and derives the lead id a new lead with it would get (scheme 2); the
// writer sends a capture of a known contact to the lead holding it instead (contacts.h).
struct CommandTarget {
  std::string lead_id;      // partition key; always set on success
  std::string customer_id;  // set for customer commands
  std::string email;        // CaptureLead: the normalized email ("" if none)
  std::string phone;        // CaptureLead: the E.164 phone ("" if none)
};
absl::StatusOr<CommandTarget> ResolveTarget(const v1::Command& command, const Identity& identity);

// Which command and its meta (services/common/commands.h).
using common::BodyOf;
using common::CommandName;
using common::MetaOf;
using common::MutableMetaOf;

// `lead` is the state of ResolveTarget(command).lead_id (exists=false if unknown); `customer`
// the state of that lead's customer (exists=false if none). Returned events carry every envelope
// field except event_id, recorded_at and command_fingerprint, which the writer stamps.
absl::StatusOr<std::vector<v1::Event>> Decide(const LeadState& lead, const CustomerState& customer,
                                              const v1::Command& command,
                                              const DecideContext& context);
// The same decision with its events made on `arena`, which owns them (they live as long as
// it): the writer's hot path, one arena per commit group instead of a heap allocation per
// message and string. `arena` must not be null.
absl::StatusOr<std::vector<v1::Event*>> DecideOnArena(const LeadState& lead,
                                                      const CustomerState& customer,
                                                      const v1::Command& command,
                                                      const DecideContext& context,
                                                      google::protobuf::Arena* arena);

// Applies one event. Fails (and leaves the state unchanged) if the event does not fit: wrong
// aggregate, a version gap, a capture of an existing lead. Those indicate a corrupt log.
absl::Status EvolveLead(LeadState& lead, const v1::Event& event);
// The status a lead has after `event` (a lead event), given its status before: the status rules
// of the lifecycle, stated once. EvolveLead applies them, and so does every view that keeps a
// lead's status in its rows (funnel, reprocessing), so no view re-implements them.
v1::LeadStatus StatusAfter(v1::LeadStatus before, const v1::Event& event);

// The funnel milestones, in funnel order.
enum Milestone { kCaptured = 0, kContacted, kQualified, kPresented, kProposal, kConverted };
inline constexpr int kMilestones = 6;
// The milestones `event` (a lead event) reaches, as a bit set (bit m = Milestone m): the one
// statement of which event marks which milestone. A view records each milestone's time from it
// (the lead view and the funnel view keep the earliest).
uint32_t MilestonesReached(const v1::Event& event);
inline bool Reaches(uint32_t reached, Milestone m) { return (reached >> m) & 1u; }
absl::Status EvolveCustomer(CustomerState& customer, const v1::Event& event);

}  // namespace leadflow::lead

#endif  // LEADFLOW_SERVICES_LEAD_REDUCER_H_

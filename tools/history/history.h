// A realistic sales history, generated deterministically from a seed: what a sales org's CRM
// would have recorded for N leads over D days. Each lead's commands carry explicit business
// times (meta.occurred_at) and command ids, so loading the same history twice, or into
// leadflow and into a peer, records the same events. Used by the benchmarks (issue: benchmarks)
// and available as `history_gen` (a command file for `leadctl batch`).
//
// Shape (per lead, independent of the others, from (seed, lead index)):
// - capture on a weekday-weighted day within the range, in office hours, from a source mix
//   (web form 28 %, inbound call 10 %, inbound email 8 %, referral 12 %, event 8 %, cold call
//   12 %, third party 6 %, social 6 %, webinar 5 %, content download 5 %), with the matching
//   origin type, a campaign for marketing sources, a temperature and an acquisition cost;
// - assignment to one of 40 reps in 5 teams within hours; occasionally a reassignment;
// - a budget of 2 to 30 touches (calls, emails, meetings, demos, offers) over days to weeks:
//   half of it (at least two) before the decision, the rest only if the lead is qualified;
// - then one path: qualified (BANT) and moved through the sales stages, converted after days
//   to months with a deal value, followed by purchases (repeat, upsell, cross-sell) and NPS
//   scores; or rejected with a reason; or postponed with a revisit date, and later reactivated
//   (then qualified or rejected) or left waiting; or disqualified;
// - about 4 % of contacts come back later through another channel (a capture of a known
//   contact: the writer records an inquiry on the existing lead).
// Nothing is generated after `end`, so every business time is in the past when loaded.
#ifndef LEADFLOW_TOOLS_HISTORY_HISTORY_H_
#define LEADFLOW_TOOLS_HISTORY_HISTORY_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"
#include "leadflow/v1/commands.pb.h"

namespace leadflow::history {

// The lead ids a history names (in the commands after each capture) are scheme-2 ids under this
// key (common::LeadIdScheme): a leadflow that loads the history must use the same key
// (NodeOptions::id_key, or `leadflow serve --ids-key-file` with a file holding it).
inline constexpr char kHistoryIdKey[] = "leadflow-history-generator";

struct HistoryOptions {
  uint64_t seed = 1;
  int64_t leads = 1000;
  int days = 365;
  // The last day of the history (exclusive); captures fall in [end - days, end). Default: the
  // start of today (UTC) when generating from the command line.
  absl::Time end = absl::FromCivil(absl::CivilDay(2026, 1, 1), absl::UTCTimeZone());
};

// The commands of lead `index`, in business-time order.
std::vector<v1::Command> LeadHistory(const HistoryOptions& options, int64_t index);

// Every lead's commands, lead by lead; `sink` returns false to stop early.
void Generate(const HistoryOptions& options,
              const std::function<bool(int64_t lead, std::vector<v1::Command>&)>& sink);

}  // namespace leadflow::history

#endif  // LEADFLOW_TOOLS_HISTORY_HISTORY_H_

// Test support: builds sales histories through the real reducer (so every event is one the
// writer could have appended), then feeds them to a log and through a view's projection runner.
// Used by the funnel and reprocessing fixtures and property tests.
#ifndef LEADFLOW_TESTS_SUPPORT_SALES_SCRIPT_H_
#define LEADFLOW_TESTS_SUPPORT_SALES_SCRIPT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "leadflow/v1/commands.pb.h"
#include "leadflow/v1/events.pb.h"
#include "projections/runner/runner.h"
#include "services/lead/reducer.h"
#include "services/lead/state.h"
#include "services/log/event_log.h"

namespace leadflow::testing {

// The id key of the scripts' leads (common::LeadIdScheme), and their identity for the reducer.
inline constexpr char kScriptIdKey[] = "sales-script-key";
const lead::Identity& ScriptIdentity();

v1::Money Eur(int64_t units);
v1::Money Usd(int64_t units);

class SalesScript {
 public:
  // Leads are named; a lead's id derives from "<name>@example.com". Times: `at` is hours after
  // t0 for a capture, hours after the lead's capture for everything else.
  explicit SalesScript(absl::Time t0) : t0_(t0) {}

  std::string Capture(const std::string& name, double at, v1::SourceChannel source,
                      v1::OriginType origin = v1::ORIGIN_TYPE_NET,
                      v1::Temperature temperature = v1::TEMPERATURE_WARM,
                      const std::string& campaign = "",
                      std::optional<v1::Money> cost = std::nullopt);
  void Assign(const std::string& name, double at, const std::string& owner);
  void Touch(const std::string& name, double at, v1::InteractionKind kind, v1::Direction direction,
             v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED);
  // Without a budget: EUR 5000 (BANT needs one).
  void Qualify(const std::string& name, double at, std::optional<v1::Money> budget = std::nullopt,
               v1::SalesStage stage = v1::SALES_STAGE_UNSPECIFIED);
  void Stage(const std::string& name, double at, v1::SalesStage stage);
  void Reject(const std::string& name, double at, v1::RejectionReason reason,
              const std::string& text = "");
  void Postpone(const std::string& name, double at, double revisit_at, const std::string& reason);
  void Disqualify(const std::string& name, double at, v1::DisqualificationReason reason);
  void Reactivate(const std::string& name, double at);
  void Convert(const std::string& name, double at);
  void Merge(const std::string& name, double at, const std::string& survivor);

  // Runs any command (with its meta: command id and occurred_at set) through the reducer, with
  // "now" a minute after occurred_at; the events are kept only if it is accepted.
  absl::Status Try(v1::Command command);

  std::string Id(const std::string& name) const;
  absl::Time Time(const std::string& name, double at) const;  // capture time + `at` hours
  absl::Time t0() const { return t0_; }
  const std::vector<v1::Event>& events() const { return events_; }
  const lead::LeadState* Lead(const std::string& lead_id) const;
  // The first refusal of a scripted (named) step; OK if every step was accepted.
  const absl::Status& error() const { return error_; }

 private:
  void Must(v1::Command command, const std::string& what);
  v1::CommandMeta Meta(const std::string& name, double at);

  absl::Time t0_;
  std::map<std::string, lead::LeadState> leads_;
  std::map<std::string, lead::CustomerState> customers_;
  std::vector<v1::Event> events_;
  int64_t next_command_ = 0;
  absl::Status error_;
};

// The hand-computed fixture of the funnel and reprocessing tests (docs/metrics.md walks through
// it). t0 = Monday 2026-01-05 00:00 UTC; d<n> = t0 + n days; hours after each lead's capture.
//
//  lead  captured    source    temp  origin cost   owner(s)     what happens (hours after capture)
//  W1    d0 00:00    web-form  hot   net    EUR10  ann          call out 1, email IN 2, qualify 5,
//                                                                demo 6, offer 8, convert 10
//  W2    d0 02:00    web-form  hot   net    EUR10  ann -> bob@12 call out 2, qualify 4, demo 10,
//                                                                offer 15, convert 20
//  W3    d1 00:00    web-form  warm  spear  EUR10  bob          call out 3 (connected), qualify 6,
//                                                                offer 12, convert 20
//  W4    d1 06:00    web-form  warm  spear  EUR10  bob          call out 1, qualify 2, demo 4,
//                                                                offer 25, email out 35, convert 30
//  W5    d2 00:00    web-form  hot   spear  EUR10  ann          qualify 4 (straight from NEW),
//                                                                convert 40
//  W6    d2 12:00    web-form  cold  net    EUR10  ann          call out 5 (no answer),
//                                                                reject 10 (no budget)
//  W7    d3 00:00    web-form  cold  net    EUR10  -            nothing
//  R1    d0 12:00    referral  warm  seed   -      carl         call IN 0.5, call out 1,
//                                                                meeting 2, qualify 3, convert 10
//  R2    d1 12:00    referral  warm  seed   -      carl         call out 2, postpone 5 (revisit
//                                                                d20), reactivate 48, call out 49,
//                                                                qualify 50, convert 60
//  R3    d3 12:00    referral  cold  seed   -      dave         email out 24, disqualify 30
//  R4    d4 00:00    referral  cold  seed   -      -            reject 1, merged into R1 at 2
//  Q1-Q4 d10 00:00.. event     warm  net    -      -            call out 1, qualify 2: EUR 1000
//                                                                needs analysis / EUR 500 closing /
//                                                                USD 200 closing / EUR 300 (stage
//                                                                left to the default)
//  P1,P2 d10 04:00.. event     warm  net    -      -            postponed 1h after capture, revisit
//                                                                d15 / d12
//  X1    d10 06:00   event     warm  net    -      -            call out 1, reject 2 (no need),
//                                                                email out 5
// All of W* carry campaign "spring".
void WriteFixtureHistory(SalesScript& s);
inline constexpr double kDay = 24;  // hours

// Appends `events` to `log`, each to its key's partition, in order (one append per run of
// consecutive events on the same partition).
absl::Status AppendAll(log::EventLog& log, const std::vector<v1::Event>& events);

// Opens a fresh store in `dir` for `projection`, loads it, catches up with the whole log and
// returns the store (the projection's in-memory state, if any, is then current).
absl::StatusOr<std::unique_ptr<projections::ViewStore>> BuildView(
    log::EventLog& log, projections::Projection& projection, const std::string& dir);

}  // namespace leadflow::testing

#endif  // LEADFLOW_TESTS_SUPPORT_SALES_SCRIPT_H_

// The funnel view: per-lead milestones (own times, credited owners, splits fixed at capture,
// exits) stored one row per lead in RocksDB, plus an in-memory columnar copy of those rows that
// cohort, activity and pipeline queries scan. The copy is loaded from the rows when the view
// opens and updated only after a batch is committed (Projection::Committed), so it always equals
// the durable rows. Figures are computed per shard as mergeable partial results (counts, sums,
// exact value lists) and merged, so the view can be split across instances.
// Every formula is in docs/metrics.md.
#ifndef LEADFLOW_PROJECTIONS_FUNNEL_FUNNEL_VIEW_H_
#define LEADFLOW_PROJECTIONS_FUNNEL_FUNNEL_VIEW_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "leadflow/v1/analytics.pb.h"
#include "projections/runner/runner.h"
#include "services/config/node_options.h"
#include "services/lead/reducer.h"

namespace leadflow::projections {

using FunnelOptions = config::FunnelOptions;  // NodeOptions::funnel

// Milestones in funnel order: the domain's (which event reaches which: lead::MilestonesReached).
using lead::kCaptured;
using lead::kContacted;
using lead::kConverted;
using lead::kMilestones;
using lead::kPresented;
using lead::kProposal;
using lead::kQualified;
using lead::Milestone;
inline constexpr std::array<const char*, kMilestones> kMilestoneNames = {
    "captured", "contacted", "qualified", "presented", "proposal", "converted"};

// Applies one lead event to its funnel row (pure; exposed for tests). Checks come first: on
// error the row is unchanged. Customer events do not change the funnel (the caller skips them).
absl::Status ApplyToFunnelRow(const v1::Event& event, v1::FunnelLeadRow& row);

// Exact distribution of `values` (reordered in place): count, sum, mean, nearest-rank p50/p90,
// min, max.
// OUT_OF_RANGE if the sum does not fit 64 bits.
absl::StatusOr<v1::Distribution> MakeDistribution(std::string name, std::string unit,
                                                  std::vector<int64_t>& values);

// Interns strings (owners, campaigns, currencies) as small ids for the in-memory index. Id 0 is
// the empty string. Thread-safe.
class Interner {
 public:
  Interner();
  uint32_t Id(const std::string& s);
  std::string Name(uint32_t id) const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
};

// One lead as the queries see it. Times in ms since the epoch; kNever = not reached. The fields
// every cohort scan reads come first and fit in two cache lines (a scan over a million leads is
// bound by memory traffic); the rest is read only by owner splits, activity and the pipeline.
struct FunnelRec {
  static constexpr int64_t kNever = INT64_MAX;
  struct ExitMark {
    int64_t at_ms;
    uint32_t owner;
    v1::ExitKind kind;  // UNSPECIFIED = reactivation
  };
  // ---- hot: read by every cohort scan ----
  // Reached time of each milestone (reached[kCaptured] = the capture time): the minimum own
  // time over the milestone and every later one. Set by Derive().
  std::array<int64_t, kMilestones> reached;
  int64_t cost_micros = 0;
  uint32_t cost_currency = 0;  // 0 = no acquisition cost
  uint32_t campaign = 0;
  int32_t touches_before_conversion = 0;
  int32_t meetings_demos_total = 0;
  std::array<uint8_t, kMilestones> reached_by;  // the milestone whose own time gave reached[m]
  uint8_t exit_kinds = 0;  // bit (1 << ExitKind) per kind seen; bit 0 = reactivated
  uint8_t source = 0, origin = 0, temperature = 0;
  bool merged = false;
  bool own_contacted = false;  // has an outbound touch of its own
  bool responded = false;      // a response at or after the own contacted time
  bool assigned_any = false;
  // ---- cold ----
  std::array<int64_t, kMilestones> own;      // own time of each milestone
  std::array<uint32_t, kMilestones> credit;  // owner credited with each own milestone
  uint32_t owner = 0;                        // current
  v1::LeadStatus status = v1::LEAD_STATUS_UNSPECIFIED;
  v1::SalesStage stage = v1::SALES_STAGE_UNSPECIFIED;
  uint32_t budget_currency = 0;  // 0 = no budget
  int64_t budget_micros = 0;
  std::vector<ExitMark> exits;
  std::vector<uint32_t> assigned;
  std::vector<std::pair<uint32_t, int64_t>> meetings_demos;

  int64_t Reached(int m) const { return reached[m]; }
  int ReachedBy(int m) const { return reached_by[m]; }
  // Computes the derived fields (reached, reached_by, exit_kinds, own_contacted, assigned_any,
  // meetings_demos_total) from own, exits, assigned and meetings_demos.
  void Derive();
};

class FunnelProjection final : public Projection {
 public:
  enum Family { kLeads = 0 };
  explicit FunnelProjection(FunnelOptions options = {});
  ~FunnelProjection() override;
  std::string name() const override { return "funnel"; }
  std::vector<std::string> column_families() const override { return {"leads"}; }
  absl::Status Apply(const v1::Event& event, const log::Record& record, ViewTxn& txn) override;
  bool AppliesAtomically() const override { return true; }
  bool ReadsPersonalData(const v1::Event&) const override { return false; }  // counts, times
  absl::Status FinishBatch(ViewTxn& txn) override;
  void Committed(ViewTxn& txn) override;
  absl::Status Load(const ViewStore& store) override;

  // Queries (thread-safe; they read the in-memory index).
  absl::StatusOr<v1::CohortFunnelReport> Cohort(const v1::CohortFunnelRequest& request) const;
  absl::StatusOr<v1::ActivityReport> Activity(const v1::ActivityRequest& request) const;
  absl::StatusOr<v1::PipelineReport> Pipeline(const v1::PipelineRequest& request) const;

  // Leads in the in-memory index (merged ones included).
  size_t size() const;

  struct Batch;
  struct Shard;
  static constexpr int kShards = 16;

 private:
  FunnelRec ToRec(const v1::FunnelLeadRow& row);
  void Upsert(const std::string& lead_id, FunnelRec rec);
  // Runs `scan(shard)` over every shard on up to two threads.
  void ForEachShard(const std::function<void(int, const std::vector<FunnelRec>&)>& scan) const;

  FunnelOptions options_;
  mutable Interner owners_, campaigns_, currencies_;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
};

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_FUNNEL_FUNNEL_VIEW_H_

// The reprocessing view: every exit of a lead (rejected, postponed, disqualified) with reason,
// text, time and owner; the re-contact queue (postponed leads by revisit date); win-back
// candidates (rejected leads not contacted since); reactivations and the conversions that
// followed them. Merged leads leave every list and count. Formulas: docs/metrics.md.
#ifndef LEADFLOW_PROJECTIONS_REPROCESSING_REPROCESSING_VIEW_H_
#define LEADFLOW_PROJECTIONS_REPROCESSING_REPROCESSING_VIEW_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leadflow/v1/analytics.pb.h"
#include "projections/runner/runner.h"

namespace leadflow::projections {

class ReprocessingProjection final : public Projection {
 public:
  // The person's name (captures, contact changes) and the exits' free text.
  bool ReadsPersonalData(const v1::Event& e) const override {
    return e.has_lead_captured() || e.has_contact_details_updated() || e.has_lead_rejected() ||
           e.has_lead_postponed() || e.has_lead_disqualified();
  }
  // Column families, in this order. "exits": one row per exit, keyed by exit time; "queue" and
  // "win_back": keyed by revisit / rejection time, valued with the exit's key.
  enum Family { kLeads = 0, kExits = 1, kQueue = 2, kWinBack = 3 };
  std::string name() const override { return "reprocessing"; }
  std::vector<std::string> column_families() const override {
    return {"leads", "exits", "queue", "win_back"};
  }
  // Every check (version order, reads of rows it will update) comes before the first write.
  absl::Status Apply(const v1::Event& event, const log::Record& record, ViewTxn& txn) override;
  bool AppliesAtomically() const override { return true; }
  absl::Status FinishBatch(ViewTxn& txn) override;
  // 2: a row's status follows the lifecycle (lead::StatusAfter); format 1 kept NEW through
  // contact and qualification. A format-1 store is rebuilt from the log when opened.
  int format_version() const override { return 2; }

  using Batch = absl::flat_hash_map<std::string, v1::ReprocessingLeadRow>;
};

class ReprocessingQueries {
 public:
  explicit ReprocessingQueries(const ViewStore* store) : store_(store) {}
  absl::StatusOr<v1::ListExitsResponse> ListExits(const v1::ListExitsRequest& request) const;
  absl::StatusOr<v1::ExitSummary> Summary(const v1::ExitSummaryRequest& request) const;
  absl::StatusOr<v1::RecontactQueueResponse> Queue(const v1::RecontactQueueRequest& request,
                                                   absl::Time now) const;
  absl::StatusOr<v1::WinBackResponse> WinBack(const v1::WinBackRequest& request,
                                              absl::Time now) const;

  // Most rows one listing call examines before returning a page with a token to continue.
  static constexpr int kMaxScan = 100000;

 private:
  absl::StatusOr<v1::ExitRecord> Exit(const std::string& key) const;
  // A page of the exits a time-ordered family (queue, win_back) points at: keys below `high`,
  // after the one in `page_token`.
  absl::Status ListIndexed(int family, const std::string& page_token, const std::string& high,
                           int page_size, google::protobuf::RepeatedPtrField<v1::ExitRecord>* out,
                           std::string* next_page_token) const;
  const ViewStore* store_;
};

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_REPROCESSING_REPROCESSING_VIEW_H_

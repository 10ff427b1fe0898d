// The lead view: one LeadView row per lead, its timeline, and the indexes behind look-ups and
// listings. Lifecycle state comes from the reducer's EvolveLead (the same rules as the writer);
// this projection only adds what a view needs on top (touch counts, milestones, BANT, exits).
#ifndef LEADFLOW_PROJECTIONS_LEAD_LEAD_VIEW_H_
#define LEADFLOW_PROJECTIONS_LEAD_LEAD_VIEW_H_

#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "services/lead/state.h"
#include "leadflow/v1/views.pb.h"
#include "projections/runner/runner.h"

namespace leadflow::projections {

class LeadProjection final : public Projection {
 public:
  // Column families, in this order.
  enum Family { kLeads = 0, kTimeline = 1, kIndex = 2 };
  std::string name() const override { return "lead"; }
  std::vector<std::string> column_families() const override {
    return {"leads", "timeline", "index"};
  }
  // 2: the follow-up index escapes its free-text parts (KeyPart). 3: an email or phone may be
  // indexed for several leads (older logs), each entry e/<email><lead id>; FindLead answers
  // with the lead lead/contacts.h picks. 4: an index per ListLeads filter (status, stage, owner,
  // source, temperature; by capture time) and per-partition counters per filter value and pair.
  int format_version() const override { return 4; }
  // Keeps each touched lead's row and reducer state in memory for the batch; FinishBatch writes
  // each row once and replaces exactly the index entries that changed.
  absl::Status Apply(const v1::Event& event, const log::Record& record, ViewTxn& txn) override;
  absl::Status FinishBatch(ViewTxn& txn) override;
  bool AppliesAtomically() const override { return true; }

  struct Cached;
  // Per batch (ViewTxn scratch): the projection object itself is shared by all partition threads.
  using Batch = absl::flat_hash_map<std::string, std::unique_ptr<Cached>>;
};

// Applies one lead event to a view row (pure; exposed for tests).
absl::Status ApplyToLeadView(const v1::Event& event, const v1::LogPosition& position,
                             v1::LeadView& view);

// The index keys a view row should have (email, phone, capture time, last activity, follow-ups,
// merge link). Updating a row replaces exactly the difference.
std::set<std::string> LeadIndexKeys(const v1::LeadView& view);

class LeadQueries {
 public:
  // `phone_region`: region of phone numbers given without a country code (FindLead).
  // `vault`: opens the sealed personal fields of timeline events (the timeline keeps events as
  // the log holds them, so an erasure needs nothing scrubbed there); null: as stored.
  explicit LeadQueries(const ViewStore* store, std::string phone_region = "",
                       privacy::Vault* vault = nullptr)
      : store_(store), phone_region_(std::move(phone_region)), vault_(vault) {}
  absl::StatusOr<v1::LeadView> Get(const std::string& lead_id) const;
  absl::StatusOr<v1::LeadView> Find(const v1::FindLeadRequest& request) const;
  absl::StatusOr<v1::LeadTimeline> Timeline(const std::string& lead_id) const;
  // Filtered by status, stage, owner, source or temperature and sorted by capture time, a page
  // is a range read of the most selective filter's index (by its counter); sorted by last
  // activity, a filtered scan of the activity index.
  absl::StatusOr<v1::ListLeadsResponse> List(const v1::ListLeadsRequest& request) const;
  // How many leads match: from the stored counters for up to two filters, otherwise by reading
  // the most selective filter's index.
  absl::StatusOr<v1::CountLeadsResponse> Count(const v1::CountLeadsRequest& request) const;
  absl::StatusOr<v1::ListOverdueFollowUpsResponse> Overdue(
      const v1::ListOverdueFollowUpsRequest& request, absl::Time now) const;

  // Most index entries one List call examines (a sparse filter returns a short page with a
  // token to continue rather than scanning without bound), and most rows a Count with three or
  // more filters checks (more: FAILED_PRECONDITION).
  static constexpr int kMaxScan = 100000;
  void set_max_scan(int n) { max_scan_ = n; }  // tests

 private:
  const ViewStore* store_;
  std::string phone_region_;
  privacy::Vault* vault_;
  int max_scan_ = kMaxScan;
};

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_LEAD_LEAD_VIEW_H_

// Helpers for projections that keep one Protobuf row per lead and cache the rows a batch touches
// (ViewTxn::Scratch), writing each once in FinishBatch.
#ifndef LEADFLOW_PROJECTIONS_RUNNER_ROWS_H_
#define LEADFLOW_PROJECTIONS_RUNNER_ROWS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "leadflow/v1/events.pb.h"
#include "projections/runner/view_store.h"

namespace leadflow::projections {

// The batch's copy of the row of `key` in family `cf`, loaded from the store on first use (an
// empty row if there is none). DATA_LOSS naming `view` if the stored row does not parse; on any
// error the cache is left as it was.
template <typename Row>
absl::StatusOr<Row*> BatchRow(ViewTxn& txn, absl::flat_hash_map<std::string, Row>& rows, int cf,
                              const std::string& key, absl::string_view view) {
  auto [it, inserted] = rows.try_emplace(key);
  if (!inserted) return &it->second;
  absl::StatusOr<std::optional<std::string>> stored = txn.Get(cf, key);
  if (!stored.ok()) {
    rows.erase(it);
    return stored.status();
  }
  if (stored->has_value() && !it->second.ParseFromString(**stored)) {
    rows.erase(it);
    return absl::DataLossError(absl::StrCat(view, " row of ", key, " is corrupt"));
  }
  return &it->second;
}

// A lead event must be the next version of its row (`row_version` 0 = no row yet), and only the
// first may be (and must be) a capture. DATA_LOSS naming `view` otherwise: the log has a gap or a
// repeat, and the view stops there rather than count anything twice.
inline absl::Status CheckNextLeadVersion(absl::string_view view, const v1::Event& e,
                                         int64_t row_version) {
  if (e.aggregate_version() != row_version + 1) {
    return absl::DataLossError(absl::StrCat(view, ": lead ", e.aggregate_id(), ": event version ",
                                            e.aggregate_version(), " follows version ", row_version,
                                            " (a gap or a repeat in the log)"));
  }
  if ((row_version == 0) != (e.payload_case() == v1::Event::kLeadCaptured)) {
    return absl::DataLossError(
        absl::StrCat(view, ": lead ", e.aggregate_id(), ": version ", e.aggregate_version(),
                     row_version == 0 ? " is not a capture" : " is a second capture"));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_RUNNER_ROWS_H_

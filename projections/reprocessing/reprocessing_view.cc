#include "projections/reprocessing/reprocessing_view.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "projections/runner/rows.h"
#include "services/auth/redact.h"
#include "services/common/enum_names.h"
#include "services/common/status_util.h"
#include "services/lead/reducer.h"
#include "services/common/time_util.h"

namespace leadflow::projections {
namespace {

constexpr int64_t kDayMs = 86'400'000;

int64_t Ms(const google::protobuf::Timestamp& ts) {
  return absl::ToUnixMillis(common::FromProto(ts));
}

absl::string_view Key(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// exits: time, lead, sequence (a lead can exit twice in the same millisecond).
std::string ExitKey(int64_t at_ms, const std::string& lead_id, int32_t sequence) {
  std::string seq(4, '\0');
  absl::big_endian::Store32(seq.data(), static_cast<uint32_t>(sequence));
  return absl::StrCat(EncodeBigEndian64(at_ms), lead_id, seq);
}

std::string TimeKey(int64_t at_ms, const std::string& lead_id) {
  return absl::StrCat(EncodeBigEndian64(at_ms), lead_id);
}

absl::StatusOr<v1::ExitRecord> ParseExit(absl::string_view value, absl::string_view key) {
  v1::ExitRecord x;
  if (!x.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("reprocessing: exit row ", absl::BytesToHexString(key), " is corrupt"));
  }
  return x;
}

absl::StatusOr<v1::ExitRecord> GetExit(const ViewTxn& txn, const std::string& key) {
  LEADFLOW_ASSIGN_OR_RETURN(std::optional<std::string> row,
                            txn.Get(ReprocessingProjection::kExits, key));
  if (!row.has_value()) {
    return absl::DataLossError(
        absl::StrCat("reprocessing: exit row ", absl::BytesToHexString(key), " is missing"));
  }
  return ParseExit(*row, key);
}

// Resumes a listing after the key in `token`; the key must lie in [low, high).
absl::StatusOr<std::string> Resume(const std::string& token, const std::string& low,
                                   const std::string& high) {
  if (token.empty()) return low;
  std::string key;
  if (!absl::WebSafeBase64Unescape(token, &key) || key < low || (!high.empty() && key >= high)) {
    return absl::InvalidArgumentError("page_token: not a token of this listing");
  }
  return key;
}

}  // namespace

absl::Status ReprocessingProjection::Apply(const v1::Event& e, const log::Record&, ViewTxn& txn) {
  if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(
      v1::ReprocessingLeadRow * row_ptr,
      BatchRow(txn, txn.Scratch<Batch>(), kLeads, e.aggregate_id(), "reprocessing"));
  v1::ReprocessingLeadRow& row = *row_ptr;
  LEADFLOW_RETURN_IF_ERROR(CheckNextLeadVersion("reprocessing", e, row.version()));
  const int64_t t = Ms(e.occurred_at());
  const std::string& lead_id = e.aggregate_id();

  // Reads of exit rows this event updates, before anything is written.
  std::vector<std::pair<std::string, v1::ExitRecord>> updates;
  if (e.payload_case() == v1::Event::kLeadReactivated && row.exit_keys_size() > 0) {
    const std::string& key = row.exit_keys(row.exit_keys_size() - 1);
    LEADFLOW_ASSIGN_OR_RETURN(v1::ExitRecord x, GetExit(txn, key));
    *x.mutable_reactivated_at() = e.occurred_at();
    updates.emplace_back(key, std::move(x));
  }
  if (e.payload_case() == v1::Event::kLeadErased) {
    // The person goes from every exit record (the counts stay: reasons are not personal).
    for (const std::string& key : row.exit_keys()) {
      LEADFLOW_ASSIGN_OR_RETURN(v1::ExitRecord x, GetExit(txn, key));
      auth::RedactPersonal(&x);
      updates.emplace_back(key, std::move(x));
    }
  }
  if (e.payload_case() == v1::Event::kLeadConverted) {
    for (const std::string& key : row.exit_keys()) {
      LEADFLOW_ASSIGN_OR_RETURN(v1::ExitRecord x, GetExit(txn, key));
      if (!x.has_reactivated_at()) continue;
      x.set_converted_after(true);
      updates.emplace_back(key, std::move(x));
    }
  }

  // Nothing below fails.
  row.set_version(e.aggregate_version());
  auto add_exit = [&](v1::ExitKind kind, std::string reason,
                      const std::string& text) -> std::string {
    const int32_t sequence = row.exit_keys_size() + 1;
    std::string key = ExitKey(t, lead_id, sequence);
    v1::ExitRecord x;
    x.set_lead_id(lead_id);
    x.set_lead_name(row.name());
    x.set_company(row.company());
    x.set_kind(kind);
    x.set_reason(std::move(reason));
    x.set_text(text);
    *x.mutable_exited_at() = e.occurred_at();
    x.set_owner(row.owner());
    x.set_sequence(sequence);
    if (kind == v1::EXIT_KIND_POSTPONED) *x.mutable_revisit_at() = e.lead_postponed().revisit_at();
    txn.Put(kExits, key, x.SerializeAsString());
    row.add_exit_keys(key);
    return key;
  };
  auto clear_lists = [&] {
    if (!row.queue_key().empty()) txn.Delete(kQueue, row.queue_key());
    if (!row.win_back_key().empty()) txn.Delete(kWinBack, row.win_back_key());
    row.clear_queue_key();
    row.clear_win_back_key();
  };
  // The lead's status after this event: the lifecycle's rule (lead::StatusAfter), not a copy.
  row.set_status(lead::StatusAfter(row.status(), e));
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured:
      row.set_lead_id(lead_id);
      row.set_name(e.lead_captured().person().full_name());
      row.set_company(e.lead_captured().company());
      break;
    case v1::Event::kContactDetailsUpdated:
      for (const std::string& f : e.contact_details_updated().changed()) {
        if (f == "person") row.set_name(e.contact_details_updated().person().full_name());
        if (f == "company") row.set_company(e.contact_details_updated().company());
      }
      break;
    case v1::Event::kLeadAssigned:
      row.set_owner(e.lead_assigned().owner());
      break;
    case v1::Event::kInteractionLogged:
      if (e.interaction_logged().direction() == v1::DIRECTION_OUTBOUND) {
        if (!row.has_last_outbound_ms() || t > row.last_outbound_ms()) row.set_last_outbound_ms(t);
        // Contacted after the rejection: no longer a win-back candidate.
        if (!row.win_back_key().empty() && t > DecodeBigEndian64(row.win_back_key().data())) {
          txn.Delete(kWinBack, row.win_back_key());
          row.clear_win_back_key();
        }
      }
      break;
    case v1::Event::kLeadRejected: {
      const auto& b = e.lead_rejected();
      const std::string key =
          add_exit(v1::EXIT_KIND_REJECTED,
                   common::EnumShortName(v1::RejectionReason_descriptor(), b.reason()), b.text());
      if (!row.has_last_outbound_ms() || row.last_outbound_ms() <= t) {
        row.set_win_back_key(TimeKey(t, lead_id));
        txn.Put(kWinBack, row.win_back_key(), key);
      }
      break;
    }
    case v1::Event::kLeadPostponed: {
      const auto& b = e.lead_postponed();
      const std::string key = add_exit(v1::EXIT_KIND_POSTPONED, b.reason(), "");
      row.set_queue_key(TimeKey(Ms(b.revisit_at()), lead_id));
      txn.Put(kQueue, row.queue_key(), key);
      break;
    }
    case v1::Event::kLeadDisqualified: {
      const auto& b = e.lead_disqualified();
      add_exit(v1::EXIT_KIND_DISQUALIFIED,
               common::EnumShortName(v1::DisqualificationReason_descriptor(), b.reason()),
               b.text());
      break;
    }
    case v1::Event::kLeadReactivated:
      clear_lists();
      break;
    case v1::Event::kLeadConverted:
      row.set_converted(true);
      break;
    case v1::Event::kLeadErased:
      auth::RedactPersonal(&row);
      break;
    case v1::Event::kLeadMerged:
      // A merged lead leaves every list and count, as if never captured.
      clear_lists();
      for (const std::string& key : row.exit_keys()) txn.Delete(kExits, key);
      row.clear_exit_keys();
      row.set_merged(true);
      break;
    default:
      break;
  }
  for (auto& [key, x] : updates) txn.Put(kExits, key, x.SerializeAsString());
  return absl::OkStatus();
}

absl::Status ReprocessingProjection::FinishBatch(ViewTxn& txn) {
  Batch& batch = txn.Scratch<Batch>();
  for (auto& [id, row] : batch) {
    if (row.version() == 0) continue;  // loaded for an event that then failed
    txn.Put(kLeads, id, row.SerializeAsString());
  }
  batch.clear();
  return absl::OkStatus();
}

// ---- Queries ----------------------------------------------------------------------------------

absl::StatusOr<v1::ExitRecord> ReprocessingQueries::Exit(const std::string& key) const {
  absl::StatusOr<std::string> row = store_->Get(ReprocessingProjection::kExits, key);
  if (absl::IsNotFound(row.status())) {
    return absl::DataLossError(
        absl::StrCat("reprocessing: exit row ", absl::BytesToHexString(key), " is missing"));
  }
  if (!row.ok()) return row.status();
  return ParseExit(*row, key);
}

absl::Status ReprocessingQueries::ListIndexed(
    int family, const std::string& page_token, const std::string& high, int page_size,
    google::protobuf::RepeatedPtrField<v1::ExitRecord>* out, std::string* next_page_token) const {
  LEADFLOW_ASSIGN_OR_RETURN(const std::string start, Resume(page_token, "", high));
  auto it = store_->NewIterator(family);
  it->Seek(start);
  if (!page_token.empty() && it->Valid() && Key(it->key()) == start) it->Next();
  for (; it->Valid() && Key(it->key()) < high; it->Next()) {
    if (out->size() == page_size) {
      it->Prev();
      *next_page_token = absl::WebSafeBase64Escape(it->key().ToString());
      break;
    }
    LEADFLOW_ASSIGN_OR_RETURN(*out->Add(), Exit(it->value().ToString()));
  }
  if (!it->status().ok()) return absl::UnavailableError(it->status().ToString());
  return absl::OkStatus();
}

absl::StatusOr<v1::ListExitsResponse> ReprocessingQueries::ListExits(
    const v1::ListExitsRequest& req) const {
  LEADFLOW_ASSIGN_OR_RETURN(const TimeRange range,
                            QueryRange("from", req.has_from() ? &req.from() : nullptr, "to",
                                       req.has_to() ? &req.to() : nullptr));
  if (!v1::ExitKind_IsValid(req.kind())) {
    return absl::InvalidArgumentError(absl::StrCat("kind: unknown exit kind ", req.kind()));
  }
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(req.page_size(), 50));
  const std::string low = EncodeBigEndian64(absl::ToUnixMillis(range.from));
  const std::string high = EncodeBigEndian64(absl::ToUnixMillis(range.to));
  LEADFLOW_ASSIGN_OR_RETURN(const std::string start, Resume(req.page_token(), low, high));
  v1::ListExitsResponse out;
  auto it = store_->NewIterator(ReprocessingProjection::kExits);
  it->Seek(start);
  if (!req.page_token().empty() && it->Valid() && Key(it->key()) == start) it->Next();
  int scanned = 0;
  for (; it->Valid() && Key(it->key()) < high; it->Next()) {
    if (out.exits_size() == page_size || scanned == kMaxScan) {
      it->Prev();  // continue after the last row examined
      out.set_next_page_token(absl::WebSafeBase64Escape(it->key().ToString()));
      break;
    }
    ++scanned;
    LEADFLOW_ASSIGN_OR_RETURN(v1::ExitRecord x, ParseExit(Key(it->value()), Key(it->key())));
    if (req.kind() == v1::EXIT_KIND_UNSPECIFIED || x.kind() == req.kind()) {
      *out.add_exits() = std::move(x);
    }
  }
  if (!it->status().ok()) return absl::UnavailableError(it->status().ToString());
  return out;
}

absl::StatusOr<v1::ExitSummary> ReprocessingQueries::Summary(
    const v1::ExitSummaryRequest& req) const {
  LEADFLOW_ASSIGN_OR_RETURN(const TimeRange range,
                            QueryRange("from", req.has_from() ? &req.from() : nullptr, "to",
                                       req.has_to() ? &req.to() : nullptr));
  const std::string low = EncodeBigEndian64(absl::ToUnixMillis(range.from));
  const std::string high = EncodeBigEndian64(absl::ToUnixMillis(range.to));
  struct Count {
    int64_t exits = 0, reactivated = 0, converted_after = 0;
  };
  std::map<std::pair<int, std::string>, Count> by_reason;
  std::map<int, Count> by_kind;
  Count total;
  auto it = store_->NewIterator(ReprocessingProjection::kExits);
  for (it->Seek(low); it->Valid() && Key(it->key()) < high; it->Next()) {
    LEADFLOW_ASSIGN_OR_RETURN(v1::ExitRecord x, ParseExit(Key(it->value()), Key(it->key())));
    for (Count* c : {&by_reason[{x.kind(), x.reason()}], &by_kind[x.kind()], &total}) {
      ++c->exits;
      c->reactivated += x.has_reactivated_at();
      c->converted_after += x.converted_after();
    }
  }
  if (!it->status().ok()) return absl::UnavailableError(it->status().ToString());
  auto fill = [](v1::ExitReasonCount& out, int kind, const std::string& reason, const Count& c) {
    out.set_kind(static_cast<v1::ExitKind>(kind));
    out.set_reason(reason);
    out.set_exits(c.exits);
    out.set_reactivated(c.reactivated);
    out.set_converted_after(c.converted_after);
    out.set_reactivation_rate(c.exits == 0 ? 0.0 : static_cast<double>(c.reactivated) / c.exits);
  };
  v1::ExitSummary out;
  for (const auto& [k, c] : by_reason) fill(*out.add_by_reason(), k.first, k.second, c);
  for (const auto& [k, c] : by_kind) fill(*out.add_by_kind(), k, "", c);
  fill(*out.mutable_total(), 0, "", total);
  return out;
}

absl::StatusOr<v1::RecontactQueueResponse> ReprocessingQueries::Queue(
    const v1::RecontactQueueRequest& req, absl::Time now) const {
  if (req.has_as_of() && !common::IsValidTimestamp(req.as_of())) {
    return absl::InvalidArgumentError("as_of: not a valid timestamp");
  }
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(req.page_size(), 50));
  const absl::Time as_of = req.has_as_of() ? common::FromProto(req.as_of()) : now;
  // revisit_at <= as_of: every key below the next millisecond.
  const std::string high = EncodeBigEndian64(absl::ToUnixMillis(as_of) + 1);
  v1::RecontactQueueResponse out;
  LEADFLOW_RETURN_IF_ERROR(ListIndexed(ReprocessingProjection::kQueue, req.page_token(), high,
                                       page_size, out.mutable_leads(),
                                       out.mutable_next_page_token()));
  return out;
}

absl::StatusOr<v1::WinBackResponse> ReprocessingQueries::WinBack(const v1::WinBackRequest& req,
                                                                 absl::Time now) const {
  if (!req.has_rejected_more_than_days()) {
    return absl::InvalidArgumentError("rejected_more_than_days: required (at least 1)");
  }
  if (req.rejected_more_than_days() < 1 || req.rejected_more_than_days() > kMaxRangeDays) {
    return absl::InvalidArgumentError(absl::StrCat("rejected_more_than_days: must be 1 to ",
                                                   kMaxRangeDays, " (got ",
                                                   req.rejected_more_than_days(), ")"));
  }
  if (req.has_as_of() && !common::IsValidTimestamp(req.as_of())) {
    return absl::InvalidArgumentError("as_of: not a valid timestamp");
  }
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(req.page_size(), 50));
  const absl::Time as_of = req.has_as_of() ? common::FromProto(req.as_of()) : now;
  // Rejected more than N days ago: rejected_at < as_of - N days.
  const std::string high =
      EncodeBigEndian64(absl::ToUnixMillis(as_of) - req.rejected_more_than_days() * kDayMs);
  v1::WinBackResponse out;
  LEADFLOW_RETURN_IF_ERROR(ListIndexed(ReprocessingProjection::kWinBack, req.page_token(), high,
                                       page_size, out.mutable_leads(),
                                       out.mutable_next_page_token()));
  return out;
}

}  // namespace leadflow::projections

#include "projections/customer/customer_view.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/auth/redact.h"
#include "services/common/ids.h"
#include "services/common/money.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"

namespace leadflow::projections {
namespace {

absl::string_view Key(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

constexpr char kOwnerPrefix[] = "o/";

std::string OwnerKey(const v1::CustomerView& v) {
  // o/ <account owner> <customer id>, the owner escaped (KeyPart).
  return absl::StrCat(kOwnerPrefix, KeyPart(v.account_owner()), v.customer_id());
}

lead::CustomerState ToState(const v1::CustomerView& v) {
  lead::CustomerState s;
  if (v.customer_id().empty()) return s;
  s.exists = true;
  s.customer_id = v.customer_id();
  s.lead_id = v.lead_id();
  s.version = v.version();
  s.converted_at = common::FromProto(v.converted_at());
  s.account_owner = v.account_owner();
  for (const auto& p : v.purchases()) s.purchase_count += p.count();
  return s;
}

}  // namespace

absl::Status ApplyToCustomerView(const v1::Event& e, const v1::LogPosition& position,
                                 v1::CustomerView& v) {
  lead::CustomerState state = ToState(v);
  LEADFLOW_RETURN_IF_ERROR(lead::EvolveCustomer(state, e));
  v.set_version(state.version);
  switch (e.payload_case()) {
    case v1::Event::kCustomerCreated: {
      const auto& b = e.customer_created();
      v.set_customer_id(e.aggregate_id());
      v.set_lead_id(b.lead_id());
      *v.mutable_person() = b.person();
      v.set_company(b.company());
      v.set_email(b.email());
      v.set_phone(b.phone());
      *v.mutable_deal_value() = b.deal_value();
      v.set_contract_ref(b.contract_ref());
      v.set_invoice_ref(b.invoice_ref());
      v.set_account_owner(b.account_owner());
      *v.mutable_converted_at() = b.converted_at();
      *v.mutable_converted_recorded_at() = e.recorded_at();
      break;
    }
    case v1::Event::kCustomerProfileUpdated: {
      const auto& b = e.customer_profile_updated();
      for (const std::string& f : b.changed()) {
        if (f == "legal_name") v.set_legal_name(b.legal_name());
        if (f == "tax_id") v.set_tax_id(b.tax_id());
        if (f == "registration_number") v.set_registration_number(b.registration_number());
        if (f == "billing_address") v.set_billing_address(b.billing_address());
        if (f == "account_owner") v.set_account_owner(b.account_owner());
      }
      break;
    }
    case v1::Event::kPurchaseRecorded: {
      const auto& b = e.purchase_recorded();
      v1::PurchaseTotal* total = nullptr;
      for (auto& t : *v.mutable_purchases()) {
        if (t.kind() == b.kind() && t.currency_code() == b.amount().currency_code()) total = &t;
      }
      if (total == nullptr) {
        total = v.add_purchases();
        total->set_kind(b.kind());
        total->set_currency_code(b.amount().currency_code());
      }
      total->set_count(total->count() + 1);
      // In 128 bits: a total that no longer fits is marked, and queries refuse it (OUT_OF_RANGE).
      const absl::int128 sum =
          absl::int128(total->amount_micros()) + absl::int128(b.amount().amount_micros());
      if (total->amount_overflowed() || !common::NarrowMicros(sum, "").ok()) {
        total->set_amount_overflowed(true);
        total->set_amount_micros(0);
      } else {
        total->set_amount_micros(static_cast<int64_t>(sum));
      }
      std::sort(v.mutable_purchases()->begin(), v.mutable_purchases()->end(),
                [](const v1::PurchaseTotal& a, const v1::PurchaseTotal& b) {
                  if (a.kind() != b.kind()) return a.kind() < b.kind();
                  return a.currency_code() < b.currency_code();
                });
      break;
    }
    case v1::Event::kNpsRecorded:
      v.set_has_nps(true);
      v.set_latest_nps(e.nps_recorded().score());
      v.set_latest_nps_category(e.nps_recorded().category());
      *v.mutable_latest_nps_at() = e.occurred_at();
      break;
    case v1::Event::kInquiryReceived:
      v.set_inquiries(v.inquiries() + 1);
      break;
    default:
      break;
  }
  *v.mutable_last_position() = position;
  return absl::OkStatus();
}

absl::Status CustomerProjection::Apply(const v1::Event& e, const log::Record& record,
                                       ViewTxn& txn) {
  if (e.has_lead_erased() && common::IsLeadId(e.aggregate_id())) {
    // The lead's erasure takes its customer's personal fields too (one data key for both).
    const std::string id = common::CustomerIdForLead(common::LeadId(e.aggregate_id())).value();
    LEADFLOW_ASSIGN_OR_RETURN(std::optional<std::string> row, txn.Get(kCustomers, id));
    if (!row.has_value()) return absl::OkStatus();
    v1::CustomerView v;
    if (!v.ParseFromString(*row)) {
      return absl::DataLossError(absl::StrCat("customer view row of ", id, " is corrupt"));
    }
    auth::RedactPersonal(&v);
    v.set_erased(true);
    txn.Put(kCustomers, id, v.SerializeAsString());
    return absl::OkStatus();
  }
  if (e.aggregate_type() != v1::AGGREGATE_TYPE_CUSTOMER) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(std::optional<std::string> row, txn.Get(kCustomers, e.aggregate_id()));
  v1::CustomerView before;
  if (row.has_value() && !before.ParseFromString(*row)) {
    return absl::DataLossError(
        absl::StrCat("customer view row of ", e.aggregate_id(), " is corrupt"));
  }
  v1::CustomerView after = before;
  v1::LogPosition position;
  position.set_partition(record.partition);
  position.set_offset(record.offset);
  LEADFLOW_RETURN_IF_ERROR(ApplyToCustomerView(e, position, after));
  txn.Put(kCustomers, e.aggregate_id(), after.SerializeAsString());
  if (!before.customer_id().empty() && OwnerKey(before) != OwnerKey(after)) {
    txn.Delete(kIndex, OwnerKey(before));
  }
  txn.Put(kIndex, OwnerKey(after), "");
  return absl::OkStatus();
}

absl::StatusOr<v1::CustomerView> CustomerQueries::Get(const v1::GetCustomerRequest& req) const {
  std::string id = req.customer_id();
  if (id.empty() && req.lead_id().empty()) {
    return absl::InvalidArgumentError("customer_id: set customer_id or lead_id");
  }
  if (!id.empty() && !req.lead_id().empty()) {
    return absl::InvalidArgumentError("lead_id: set only one of customer_id or lead_id");
  }
  if (id.empty()) {
    LEADFLOW_RETURN_IF_ERROR(common::CheckLeadId("lead_id", req.lead_id()));
    id = common::CustomerIdForLead(common::LeadId(req.lead_id())).value();
  } else {
    LEADFLOW_RETURN_IF_ERROR(common::CheckCustomerId("customer_id", id));
  }
  absl::StatusOr<std::string> row = store_->Get(CustomerProjection::kCustomers, id);
  if (absl::IsNotFound(row.status())) {
    return absl::NotFoundError(req.lead_id().empty()
                                   ? absl::StrCat("customer ", id, " not found")
                                   : absl::StrCat("lead ", req.lead_id(), " has no customer"));
  }
  if (!row.ok()) return row.status();
  v1::CustomerView view;
  if (!view.ParseFromString(*row)) return absl::DataLossError("corrupt customer view row");
  for (const v1::PurchaseTotal& t : view.purchases()) {
    if (t.amount_overflowed()) {
      return absl::OutOfRangeError(absl::StrCat(
          "customer ", view.customer_id(), ": the total of its ", v1::PurchaseKind_Name(t.kind()),
          " purchases in ", t.currency_code(),
          " is larger than the largest representable amount (9223372036854775807 micros)"));
    }
  }
  return view;
}

absl::StatusOr<v1::ListCustomersResponse> CustomerQueries::List(
    const v1::ListCustomersRequest& req) const {
  if (req.account_owner().empty()) return absl::InvalidArgumentError("account_owner: required");
  LEADFLOW_ASSIGN_OR_RETURN(const int page_size, PageSize(req.page_size(), 50));
  const std::string prefix = absl::StrCat(kOwnerPrefix, KeyPart(req.account_owner()));
  std::string resume;
  if (!req.page_token().empty()) {
    if (!absl::WebSafeBase64Unescape(req.page_token(), &resume) || resume.rfind(prefix, 0) != 0) {
      return absl::InvalidArgumentError("page_token: not a token of this listing");
    }
  }
  v1::ListCustomersResponse out;
  auto it = store_->NewIterator(CustomerProjection::kIndex);
  it->Seek(resume.empty() ? prefix : resume);
  if (!resume.empty() && it->Valid() && Key(it->key()) == resume) it->Next();
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    v1::GetCustomerRequest get;
    get.set_customer_id(std::string(Key(it->key()).substr(prefix.size())));
    LEADFLOW_ASSIGN_OR_RETURN(*out.add_customers(), Get(get));
    if (out.customers_size() == page_size) {
      out.set_next_page_token(absl::WebSafeBase64Escape(it->key().ToString()));
      break;
    }
  }
  return out;
}

}  // namespace leadflow::projections

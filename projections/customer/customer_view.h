// The customer view: one CustomerView row per customer (linked to its originating lead), and an
// index by account owner. Versions are checked by the reducer's EvolveCustomer.
#ifndef LEADFLOW_PROJECTIONS_CUSTOMER_CUSTOMER_VIEW_H_
#define LEADFLOW_PROJECTIONS_CUSTOMER_CUSTOMER_VIEW_H_

#include <string>

#include "absl/status/statusor.h"
#include "leadflow/v1/views.pb.h"
#include "projections/runner/runner.h"

namespace leadflow::projections {

class CustomerProjection final : public Projection {
 public:
  // Only its customer's own events carry what it keeps (person, contact, tax id, address).
  bool ReadsPersonalData(const v1::Event& e) const override {
    return e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER;
  }
  enum Family { kCustomers = 0, kIndex = 1 };
  std::string name() const override { return "customer"; }
  std::vector<std::string> column_families() const override { return {"customers", "index"}; }
  // 2: the account-owner index escapes the owner (KeyPart).
  int format_version() const override { return 2; }
  absl::Status Apply(const v1::Event& event, const log::Record& record, ViewTxn& txn) override;
  // Computes the new row first; writes only after everything succeeded.
  bool AppliesAtomically() const override { return true; }
};

// Applies one customer event to a view row (pure; exposed for tests).
absl::Status ApplyToCustomerView(const v1::Event& event, const v1::LogPosition& position,
                                 v1::CustomerView& view);

class CustomerQueries {
 public:
  explicit CustomerQueries(const ViewStore* store) : store_(store) {}
  absl::StatusOr<v1::CustomerView> Get(const v1::GetCustomerRequest& request) const;
  absl::StatusOr<v1::ListCustomersResponse> List(const v1::ListCustomersRequest& request) const;

 private:
  const ViewStore* store_;
};

}  // namespace leadflow::projections

#endif  // LEADFLOW_PROJECTIONS_CUSTOMER_CUSTOMER_VIEW_H_

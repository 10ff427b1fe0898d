// Fuzz target: any bytes as a log record value. Decoding either fails with a status or yields an
// event, which the reducer and every projection's pure apply must then accept or refuse with a
// status: never crash, hang or read out of bounds (built with ASan and UBSan).
#include <cstddef>
#include <cstdint>
#include <string>

#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "services/lead/reducer.h"
#include "tests/fuzz/quiet_protobuf.h"
#include "services/log/event_codec.h"

using namespace leadflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  log::Record record;
  record.partition = 1;
  record.offset = 42;
  record.key = "ld_00000000000000000001";
  record.value.assign(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<v1::Event> event = log::DecodeEvent(record);
  if (!event.ok()) return 0;
  lead::LeadState lead;
  (void)lead::EvolveLead(lead, *event);
  (void)lead::EvolveLead(lead, *event);  // the same event twice must be refused, not crash
  lead::CustomerState customer;
  (void)lead::EvolveCustomer(customer, *event);
  v1::LogPosition position;
  position.set_partition(1);
  position.set_offset(42);
  v1::LeadView view;
  (void)projections::ApplyToLeadView(*event, position, view);
  (void)projections::LeadIndexKeys(view);
  v1::CustomerView customer_view;
  (void)projections::ApplyToCustomerView(*event, position, customer_view);
  v1::FunnelLeadRow row;
  (void)projections::ApplyToFunnelRow(*event, row);
  return 0;
}

// Money rules shared by the reducer and the views: the largest amount a command may carry, the
// currency codes it may name, and totals that never wrap.
#ifndef LEADFLOW_SERVICES_COMMON_MONEY_H_
#define LEADFLOW_SERVICES_COMMON_MONEY_H_

#include <cstdint>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace leadflow::common {

// Largest amount of one Money value: 10^15 micros, i.e. one billion units of the currency. Any
// realistic deal, budget, cost or purchase fits; a sum of up to 9,223 such amounts fits an
// int64; totals are accumulated in 128 bits anyway (Total below).
inline constexpr int64_t kMaxAmountMicros = 1'000'000'000'000'000;

// True for the currency codes of ISO 4217 (the current list, plus currencies withdrawn since
// 1999 that old records and imports still name: the euro changeovers, HRK, BYR, MRO, STD, VEF,
// ZWL, ...). Funds, precious metals and the test codes (XTS, XXX) are not money of a deal.
bool IsIso4217Currency(absl::string_view code);

// A running total of micros, in 128 bits: no realistic number of amounts overflows it.
class Total {
 public:
  void Add(int64_t micros) { sum_ += micros; }
  void Add(const Total& other) { sum_ += other.sum_; }
  absl::int128 value() const { return sum_; }
  // The total as an int64, or OUT_OF_RANGE "<what>: the total (N micros) is larger than the
  // largest representable amount (9223372036854775807 micros)".
  absl::StatusOr<int64_t> Get(absl::string_view what) const;
  // value() * numerator / denominator (truncated), the same way.
  absl::StatusOr<int64_t> Scaled(int64_t numerator, int64_t denominator,
                                 absl::string_view what) const;

 private:
  absl::int128 sum_ = 0;
};

// `t` as an int64, or OUT_OF_RANGE as Total::Get.
absl::StatusOr<int64_t> NarrowMicros(absl::int128 t, absl::string_view what);

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_MONEY_H_

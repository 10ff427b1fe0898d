#include "services/common/money.h"

#include <algorithm>
#include <array>
#include <limits>
#include <sstream>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace leadflow::common {
namespace {

// ISO 4217 list one (currencies in use), without funds (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI,
// UYW), metals and bond units (XAG, XAU, XBA-XBD, XPD, XPT, XDR, XSU, XUA) and test codes
// (XTS, XXX); plus withdrawn codes of currencies in use since 1999 (sorted, for binary search).
constexpr std::array<std::string_view, 185> kCodes = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "ATS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BEF", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN",
    "BYR", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE", "CYP",
    "CZK", "DEM", "DJF", "DKK", "DOP", "DZD", "EEK", "EGP", "ERN", "ESP", "ETB", "EUR", "FIM",
    "FJD", "FKP", "FRF", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GRD", "GTQ", "GYD", "HKD",
    "HNL", "HRK", "HTG", "HUF", "IDR", "IEP", "ILS", "INR", "IQD", "IRR", "ISK", "ITL", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "LTL", "LUF", "LVL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
    "MOP", "MRO", "MRU", "MTL", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NLG", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PTE", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SIT",
    "SKK", "SLE", "SLL", "SOS", "SRD", "SSP", "STD", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VEF", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMK",
    "ZMW", "ZWG", "ZWL"};

constexpr bool Sorted() {
  for (size_t i = 1; i < kCodes.size(); ++i) {
    if (!(kCodes[i - 1] < kCodes[i])) return false;
  }
  return true;
}
static_assert(Sorted(), "kCodes must be sorted and unique");

}  // namespace

bool IsIso4217Currency(absl::string_view code) {
  return std::binary_search(kCodes.begin(), kCodes.end(),
                            std::string_view(code.data(), code.size()));
}

absl::StatusOr<int64_t> NarrowMicros(absl::int128 t, absl::string_view what) {
  if (t > std::numeric_limits<int64_t>::max() || t < std::numeric_limits<int64_t>::min()) {
    std::ostringstream total;
    total << t;
    return absl::OutOfRangeError(
        absl::StrCat(what, ": the total (", total.str(),
                     " micros) is larger than the largest representable amount (",
                     std::numeric_limits<int64_t>::max(), " micros); narrow the query"));
  }
  return static_cast<int64_t>(t);
}

absl::StatusOr<int64_t> Total::Get(absl::string_view what) const {
  return NarrowMicros(sum_, what);
}

absl::StatusOr<int64_t> Total::Scaled(int64_t numerator, int64_t denominator,
                                      absl::string_view what) const {
  return NarrowMicros(sum_ * numerator / denominator, what);
}

}  // namespace leadflow::common

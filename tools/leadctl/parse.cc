#include "tools/leadctl/parse.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "services/common/enum_names.h"
#include "services/common/text.h"
#include "services/common/time_util.h"

namespace leadflow::leadctl {
namespace {

absl::Status FlagError(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", what));
}

// Prefix shared by all value names of an enum: "SOURCE_CHANNEL_".
}  // namespace

absl::StatusOr<v1::Money> ParseMoney(absl::string_view flag, absl::string_view text) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  auto bad = [&](absl::string_view why) {
    return FlagError(flag,
                     absl::StrCat("'", text, "' is not an amount like 'EUR 1200.50' (", why, ")"));
  };
  if (parts.size() != 2) return bad("currency and amount separated by a space");
  absl::string_view currency = parts[0], amount = parts[1];
  if (!currency.empty() && (absl::ascii_isdigit(currency[0]) || currency[0] == '-')) {
    std::swap(currency, amount);
  }
  std::string code = absl::AsciiStrToUpper(currency);
  if (code.size() != 3 || !absl::ascii_isalpha(code[0]) || !absl::ascii_isalpha(code[1]) ||
      !absl::ascii_isalpha(code[2])) {
    return bad("currency must be a 3-letter ISO 4217 code");
  }
  if (!amount.empty() && amount[0] == '-') return bad("amounts are never negative");
  std::vector<absl::string_view> num = absl::StrSplit(amount, '.');
  if (num.size() > 2 || num[0].empty()) return bad("malformed number");
  int64_t units = 0;
  if (!absl::SimpleAtoi(num[0], &units) || units < 0 || units > 9'000'000'000'000LL) {
    return bad("malformed or too large number");
  }
  int64_t micros = 0;
  if (num.size() == 2) {
    absl::string_view frac = num[1];
    if (frac.empty() || frac.size() > 6) return bad("1 to 6 decimals");
    for (char c : frac) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return bad("malformed number");
    }
    std::string padded = std::string(frac) + std::string(6 - frac.size(), '0');
    (void)absl::SimpleAtoi(padded, &micros);
  }
  v1::Money m;
  m.set_currency_code(code);
  m.set_amount_micros(units * 1'000'000 + micros);
  return m;
}

std::string FormatMoney(const v1::Money& money) {
  const int64_t units = money.amount_micros() / 1'000'000;
  const int64_t micros = money.amount_micros() % 1'000'000;
  std::string frac = absl::StrCat(absl::Dec(micros, absl::kZeroPad6));
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return absl::StrCat(money.currency_code(), " ", units, ".", frac);
}

absl::StatusOr<google::protobuf::Timestamp> ParseTime(absl::string_view flag,
                                                      absl::string_view text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return common::ToProto(t);
  if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &err)) {
    return common::ToProto(t);
  }
  return FlagError(flag, absl::StrCat("'", text,
                                      "' is not a time like 2026-11-23T14:05:00Z or a date like "
                                      "2026-11-23"));
}

absl::StatusOr<v1::LogPosition> ParsePosition(absl::string_view flag, absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  int32_t partition = 0;
  int64_t offset = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &partition) ||
      !absl::SimpleAtoi(parts[1], &offset)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", common::QuotePrefix(text, 32),
                                                   " is not PARTITION:OFFSET, e.g. 3:1042"));
  }
  v1::LogPosition position;
  position.set_partition(partition);
  position.set_offset(offset);
  return position;
}

absl::StatusOr<int> ParseEnum(absl::string_view flag, const google::protobuf::EnumDescriptor* e,
                              absl::string_view text) {
  std::string wanted = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  for (char& c : wanted) {
    if (c == '-' || c == ' ') c = '_';
  }
  const std::string prefix = common::EnumPrefix(e);
  std::vector<std::string> names;
  for (int i = 1; i < e->value_count(); ++i) {
    const auto* v = e->value(i);
    if (v->name() == wanted || v->name() == prefix + wanted) return v->number();
    names.push_back(common::EnumShortName(e, v->number()));
  }
  return FlagError(
      flag, absl::StrCat("unknown value '", text, "'; one of: ", absl::StrJoin(names, ", ")));
}

}  // namespace leadflow::leadctl

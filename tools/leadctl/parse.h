// Parsing and rendering of the values people type and read in leadctl. Errors name the flag.
#ifndef LEADFLOW_TOOLS_LEADCTL_PARSE_H_
#define LEADFLOW_TOOLS_LEADCTL_PARSE_H_

#include <string>

#include "absl/status/statusor.h"
#include "services/common/enum_names.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "leadflow/v1/commands.pb.h"
#include "leadflow/v1/common.pb.h"

namespace leadflow::leadctl {

// "EUR 1200.50", "1200.50 EUR", "eur 7" -> Money (exact; up to 6 decimals; never negative).
absl::StatusOr<v1::Money> ParseMoney(absl::string_view flag, absl::string_view text);
// "EUR 1,200.50"-style rendering: "EUR 1200.50".
std::string FormatMoney(const v1::Money& money);

// RFC 3339 ("2026-11-23T14:05:00Z", offsets allowed) or a plain date ("2026-11-23" = 00:00 UTC).
absl::StatusOr<google::protobuf::Timestamp> ParseTime(absl::string_view flag,
                                                      absl::string_view text);

// Enum value by its short name, case-insensitive, '-' or ' ' for '_': for SourceChannel,
// "web-form" -> SOURCE_CHANNEL_WEB_FORM. The error lists the accepted names.
// A log position written PARTITION:OFFSET (e.g. 3:1042, as leadctl prints one). INVALID_ARGUMENT
// naming `flag` and quoting at most 32 characters of `text` otherwise.
absl::StatusOr<v1::LogPosition> ParsePosition(absl::string_view flag, absl::string_view text);

absl::StatusOr<int> ParseEnum(absl::string_view flag, const google::protobuf::EnumDescriptor* e,
                              absl::string_view text);
// SOURCE_CHANNEL_WEB_FORM -> "web-form"; UNSPECIFIED -> "-".
using common::EnumShortName;

}  // namespace leadflow::leadctl

#endif  // LEADFLOW_TOOLS_LEADCTL_PARSE_H_

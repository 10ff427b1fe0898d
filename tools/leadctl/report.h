// Renders the analytics replies (funnel, activity, pipeline, exits) as readable tables for
// people or as CSV for spreadsheets. Pure functions of the reply, so they are unit-tested.
// Tables show durations as "2d 03:04" and rates as percentages; CSV keeps exact numbers
// (milliseconds, micros, ratios) so analysts can recompute.
#ifndef LEADFLOW_TOOLS_LEADCTL_REPORT_H_
#define LEADFLOW_TOOLS_LEADCTL_REPORT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "leadflow/v1/analytics.pb.h"

namespace leadflow::leadctl {

enum class Format { kTable, kCsv };

// Columns a terminal gives `text` (UTF-8): wide East Asian characters count two, combining marks
// none (utf8proc); bytes that are not UTF-8 one each.
size_t DisplayWidth(absl::string_view text);
// The longest prefix of whole characters of `text` that takes at most `columns` columns.
absl::string_view PrefixWithin(absl::string_view text, size_t columns);
// One CSV field (RFC 4180): quoted if it holds a comma, a quote, CR or LF (quotes doubled). A
// cell that starts with =, +, -, @, tab or CR is prefixed with ' so a spreadsheet does not run it
// as a formula.
std::string CsvField(const std::string& s);
// The value of a cell CsvField wrote, once unquoted: the formula guard removed.
std::string CsvCellValue(absl::string_view cell);

// 93784000 ms -> "1d 02:03:04"; under a day "02:03:04"; sub-second values "0.250s".
std::string HumanDuration(int64_t ms);
// 0.8333 -> "83.3%".
std::string Percent(double ratio);

std::string RenderCohort(const v1::CohortFunnelReport& report, Format format);
std::string RenderActivity(const v1::ActivityReport& report, Format format);
std::string RenderPipeline(const v1::PipelineReport& report, Format format);
// `title` heads the table, e.g. "Re-contact queue (revisit on or before 2026-11-23)".
std::string RenderExits(const google::protobuf::RepeatedPtrField<v1::ExitRecord>& exits,
                        const std::string& next_page_token, const std::string& title,
                        Format format);
std::string RenderExitSummary(const v1::ExitSummary& summary, Format format);

}  // namespace leadflow::leadctl

#endif  // LEADFLOW_TOOLS_LEADCTL_REPORT_H_

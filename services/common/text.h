// What text the service accepts, and how errors quote what it refused.
//
// Identifiers (owners, teams, refs, ids) and single-line text (names, titles) take no control
// characters at all; notes keep line breaks and tabs. Neither takes C0 controls (U+0000-001F)
// beyond those, DEL, C1 controls (U+0080-009F), the line and paragraph separators
// (U+2028-2029) or bidirectional overrides and isolates (U+202A-202E, U+2066-2069), which can
// make a value display as something else. Text must be valid UTF-8.
#ifndef LEADFLOW_SERVICES_COMMON_TEXT_H_
#define LEADFLOW_SERVICES_COMMON_TEXT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace leadflow::common {

enum class TextKind {
  kSingleLine,  // identifiers, names, titles, refs: no control characters
  kNote,        // free text: line feeds, carriage returns and tabs allowed
};

// OK, or INVALID_ARGUMENT "<field>: <why>" naming the first offending character by its code
// point and byte offset, never quoting the value.
absl::Status CheckText(absl::string_view field, absl::string_view value, TextKind kind);

// A value for an error message: at most `max_chars` characters of it (cut on a UTF-8 boundary),
// in single quotes, with anything unprintable escaped, and "..." if it was cut. Only for values
// that are not personal data (ids, codes, enum spellings): personal fields are never quoted.
std::string QuotePrefix(absl::string_view value, size_t max_chars = 24);

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_TEXT_H_

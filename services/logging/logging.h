// Structured logs (spdlog): one line per event, with fields an operator can search for (lead_id,
// partition, offset, view, ...). Text: `2026-11-23T10:00:00.123Z info command refused
// lead_id=L-... code=failed_precondition`; JSON: one object per line with the same keys. The
// format and level are set once by main (log.format, log.level); before that, text at info.
#ifndef LEADFLOW_SERVICES_LOGGING_LOGGING_H_
#define LEADFLOW_SERVICES_LOGGING_LOGGING_H_

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace leadflow::logging {

enum class Level { kDebug, kInfo, kWarn, kError };

struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), text(v), quoted(true) {}
  Field(absl::string_view k, const std::string& v) : key(k), text(v), quoted(true) {}
  Field(absl::string_view k, const char* v) : key(k), text(v), quoted(true) {}
  Field(absl::string_view k, int64_t v) : key(k), text(std::to_string(v)), quoted(false) {}
  Field(absl::string_view k, int32_t v) : key(k), text(std::to_string(v)), quoted(false) {}
  absl::string_view key;
  std::string text;
  bool quoted;  // JSON: a string (else a number)
};

// format: "text" or "json"; level: "debug", "info", "warn" or "error".
absl::Status Configure(const std::string& format, const std::string& level);
bool Enabled(Level level);
void Log(Level level, absl::string_view message, std::initializer_list<Field> fields = {});

// One line as it would be written (without the time stamp and level), for tests.
std::string Format(bool json, absl::string_view message, std::initializer_list<Field> fields);

}  // namespace leadflow::logging

#endif  // LEADFLOW_SERVICES_LOGGING_LOGGING_H_

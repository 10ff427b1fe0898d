#include "services/logging/logging.h"

#include <atomic>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace leadflow::logging {
namespace {

std::atomic<bool> json_format{false};

spdlog::logger& Logger() {
  static spdlog::logger* logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("leadflow", sink);
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);  // stderr: every line out at once (crash forensics)
    return l;
  }();
  return *logger;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Text values are quoted only when they would otherwise be ambiguous.
std::string TextValue(const Field& f) {
  if (!f.quoted) return f.text;
  const bool plain = !f.text.empty() && f.text.find_first_of(" \"=\n\t") == std::string::npos;
  return plain ? f.text : nlohmann::json(f.text).dump();
}

}  // namespace

absl::Status Configure(const std::string& format, const std::string& level) {
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log.format: expected text or json, got '", format, "'"));
  }
  spdlog::level::level_enum l;
  if (level == "debug") {
    l = spdlog::level::debug;
  } else if (level == "info") {
    l = spdlog::level::info;
  } else if (level == "warn") {
    l = spdlog::level::warn;
  } else if (level == "error") {
    l = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log.level: expected debug, info, warn or error, got '", level, "'"));
  }
  json_format = format == "json";
  Logger().set_level(l);
  Logger().set_pattern(json_format ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})"
                                   : "%Y-%m-%dT%H:%M:%S.%eZ %l %v",
                       spdlog::pattern_time_type::utc);
  return absl::OkStatus();
}

bool Enabled(Level level) { return Logger().should_log(ToSpd(level)); }

std::string Format(bool json, absl::string_view message, std::initializer_list<Field> fields) {
  if (json) {
    // The pattern supplies the braces, the time and the level.
    std::string out = absl::StrCat("\"msg\":", nlohmann::json(std::string(message)).dump());
    for (const Field& f : fields) {
      absl::StrAppend(&out, ",", nlohmann::json(std::string(f.key)).dump(), ":",
                      f.quoted ? nlohmann::json(f.text).dump() : f.text);
    }
    return out;
  }
  std::string out(message);
  for (const Field& f : fields) absl::StrAppend(&out, " ", f.key, "=", TextValue(f));
  return out;
}

void Log(Level level, absl::string_view message, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  Logger().log(ToSpd(level), Format(json_format.load(), message, fields));
}

}  // namespace leadflow::logging

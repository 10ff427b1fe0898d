// `leadflow serve` configuration: one table of options, each settable from a YAML file, an
// environment variable and a flag (later layers win: defaults < file < environment < flags).
// Every value is checked when it is set, with the option's name and where the value came from
// in the error; cross-option rules are checked once all layers are in (Finish).
//
// The same table feeds `leadflow serve --help`, `leadflow config docs` (docs/configuration.md,
// checked to be current by a test) and `leadflow config check`.
#ifndef LEADFLOW_SERVICES_CONFIG_CONFIG_H_
#define LEADFLOW_SERVICES_CONFIG_CONFIG_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/config/node_options.h"

namespace leadflow::config {

struct LogOptions {
  std::string format = "text";  // text or json
  std::string level = "info";   // debug, info, warn or error
};

// Everything `leadflow serve` needs.
struct ServeConfig {
  NodeOptions node;
  LogOptions log;
  // How long SIGTERM waits for in-flight RPCs before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // The heap on transparent huge pages (common/huge_pages.h); main applies it before anything
  // starts.
  bool huge_pages = true;
};

enum class OptionType { kString, kInt, kBool, kMap };

struct OptionSpec {
  std::string key;   // YAML path, e.g. "kafka.brokers"
  std::string flag;  // e.g. "--kafka-brokers"
  std::string env;   // e.g. "LEADFLOW_KAFKA_BROKERS"
  OptionType type = OptionType::kString;
  std::string default_text;  // as shown in --help and the docs
  std::string help;
  // Sets the option from text; `source` is where the text came from (for errors).
  std::function<absl::Status(const std::string& value, const std::string& source)> set;
};

class ConfigLoader {
 public:
  // `views`: the names of the views this build serves (the server's view registry,
  // services/server/views.h), for the role names and the gateway's routes.
  explicit ConfigLoader(std::vector<std::string> views);
  ConfigLoader(const ConfigLoader&) = delete;
  ConfigLoader& operator=(const ConfigLoader&) = delete;

  const std::vector<OptionSpec>& options() const { return options_; }

  // A YAML file: a mapping whose keys are the options' keys, nested ("kafka: {brokers: ...}")
  // or dotted ("kafka.brokers: ..."). Unknown keys are errors (with a suggestion).
  absl::Status ApplyFile(const std::string& path);
  absl::Status ApplyYaml(const std::string& text, const std::string& source_name);
  // Each option's LEADFLOW_* variable, read through `getenv` (so tests can pass their own).
  absl::Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv);
  // A flag's value; `key` is the option key.
  absl::Status ApplyFlag(const std::string& key, const std::string& value);

  // Cross-option rules (role vs. log backend, gateway routes, ...). Returns the result.
  absl::StatusOr<ServeConfig> Finish() const;

  // The options as a Markdown reference (docs/configuration.md).
  std::string Markdown() const;

 private:
  absl::Status Set(const std::string& key, const std::string& value, const std::string& source);
  std::vector<std::string> views_;
  ServeConfig config_;
  std::vector<OptionSpec> options_;
  std::map<std::string, size_t> by_key_;
};

// Parses a role name ("all", "writer", "views", "<view>-view" for each of `views`, "gateway").
absl::StatusOr<Role> ParseRole(const std::string& name, const std::vector<std::string>& views);
// The roles a gateway may forward to: "writer" and "<view>-view" for each of `views`.
std::vector<std::string> GatewayRoles(const std::vector<std::string>& views);

}  // namespace leadflow::config

#endif  // LEADFLOW_SERVICES_CONFIG_CONFIG_H_

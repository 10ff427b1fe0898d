#include "services/config/config.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/ids.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace leadflow::config {
namespace {

absl::Status Bad(const std::string& key, const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(key, " (", source, "): ", what));
}

absl::StatusOr<int64_t> ParseInt(const std::string& key, const std::string& source,
                                 const std::string& value, int64_t min, int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < min || n > max) {
    return Bad(
        key, source,
        absl::StrCat("expected a whole number from ", min, " to ", max, ", got '", value, "'"));
  }
  return n;
}

absl::StatusOr<bool> ParseBool(const std::string& key, const std::string& source,
                               const std::string& value) {
  const std::string v = absl::AsciiStrToLower(value);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return Bad(key, source, absl::StrCat("expected true or false, got '", value, "'"));
}

// "host:port" with a port number; host may be empty ("":port is not allowed) or [v6].
absl::Status CheckAddress(const std::string& key, const std::string& source,
                          const std::string& value, bool allow_empty) {
  if (value.empty()) {
    return allow_empty ? absl::OkStatus() : Bad(key, source, "an address is required");
  }
  const size_t colon = value.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return Bad(key, source,
               absl::StrCat("expected HOST:PORT (e.g. 127.0.0.1:50051), got '", value, "'"));
  }
  return absl::OkStatus();
}

// Edit distance, for "did you mean" on unknown keys.
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Flag(const std::string& key) {
  std::string f = key;
  std::replace(f.begin(), f.end(), '.', '-');
  std::replace(f.begin(), f.end(), '_', '-');
  return "--" + f;
}

// HOST:PORT, [IPv6]:PORT -> (host without brackets, lower case; port).
std::pair<std::string, std::string> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {absl::AsciiStrToLower(address), ""};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {absl::AsciiStrToLower(host), address.substr(colon + 1)};
}

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// Would a call to `upstream` reach a server listening on `listen`? Same port, and the same host,
// or a local name for it ("localhost" for 127.0.0.1 or ::1; any local address for a server
// listening on all of them).
bool IsOwnAddress(const std::string& listen, const std::string& upstream) {
  const auto [lhost, lport] = SplitHostPort(listen);
  const auto [uhost, uport] = SplitHostPort(upstream);
  if (lport != uport || lport.empty()) return false;
  if (lhost == uhost) return true;
  if (IsWildcard(lhost)) {
    if (IsWildcard(uhost) || IsLoopback(uhost)) return true;
    char name[256] = {};
    return gethostname(name, sizeof(name) - 1) == 0 && absl::AsciiStrToLower(name) == uhost;
  }
  if (uhost == "localhost") return lhost == "127.0.0.1" || lhost == "::1";
  return false;
}

// "lead-view" -> "gateway.lead_view".
std::string GatewayKey(const std::string& role) {
  std::string key = absl::StrCat("gateway.", role);
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

std::string Env(const std::string& key) {
  std::string e = key;
  std::replace(e.begin(), e.end(), '.', '_');
  std::replace(e.begin(), e.end(), '-', '_');
  return "LEADFLOW_" + absl::AsciiStrToUpper(e);
}

}  // namespace

absl::StatusOr<Role> ParseRole(const std::string& name, const std::vector<std::string>& views) {
  std::vector<Role> roles = {Role::All(), Role::Writer(), Role::Views()};
  for (const std::string& view : views) roles.push_back(Role::View(view));
  roles.push_back(Role::Gateway());
  std::vector<std::string> names;
  for (const Role& role : roles) {
    if (role.name() == name) return role;
    names.push_back(role.name());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "'; one of: ", absl::StrJoin(names, ", ")));
}

std::vector<std::string> GatewayRoles(const std::vector<std::string>& views) {
  std::vector<std::string> roles = {"writer"};
  for (const std::string& view : views) roles.push_back(ViewRole(view));
  return roles;
}

ConfigLoader::ConfigLoader(std::vector<std::string> views) : views_(std::move(views)) {
  NodeOptions& n = config_.node;
  n.security.auth = true;  // `leadflow serve` authenticates every call unless told otherwise
  auto add = [&](std::string key, OptionType type, std::string default_text, std::string help,
                 std::function<absl::Status(const std::string&, const std::string&)> set,
                 const std::string& flag = "") {
    OptionSpec spec;
    spec.flag = flag.empty() ? Flag(key) : flag;
    spec.env = Env(key);
    spec.key = std::move(key);
    spec.type = type;
    spec.default_text = std::move(default_text);
    spec.help = std::move(help);
    spec.set = std::move(set);
    by_key_[spec.key] = options_.size();
    options_.push_back(std::move(spec));
  };
  auto text = [](std::string* target) {
    return [target](const std::string& v, const std::string&) {
      *target = v;
      return absl::OkStatus();
    };
  };
  auto address = [](const std::string& key, std::string* target, bool allow_empty) {
    return [key, target, allow_empty](const std::string& v, const std::string& source) {
      if (absl::Status s = CheckAddress(key, source, v, allow_empty); !s.ok()) return s;
      *target = v;
      return absl::OkStatus();
    };
  };
  auto boolean = [](const std::string& key, bool* target) {
    return [key, target](const std::string& v, const std::string& source) -> absl::Status {
      absl::StatusOr<bool> b = ParseBool(key, source, v);
      if (!b.ok()) return b.status();
      *target = *b;
      return absl::OkStatus();
    };
  };
  auto mebibytes = [](const std::string& key, size_t* target, int64_t min) {
    return [key, target, min](const std::string& v, const std::string& source) -> absl::Status {
      absl::StatusOr<int64_t> mb = ParseInt(key, source, v, min, 1 << 20);
      if (!mb.ok()) return mb.status();
      *target = static_cast<size_t>(*mb) << 20;
      return absl::OkStatus();
    };
  };

  std::vector<std::string> view_roles;
  for (const std::string& view : views_) view_roles.push_back(ViewRole(view));
  add("role", OptionType::kString, "all",
      absl::StrCat("What this process runs: all (writer and every view, embedded log by default), "
                   "writer, views (every view), one view (",
                   absl::StrJoin(view_roles, ", "),
                   "), or gateway (forwards each query to the process serving its view). Roles "
                   "other than all need a shared log: Kafka (--kafka-brokers or --kafka-mock)."),
      [this, &n](const std::string& v, const std::string& source) -> absl::Status {
        absl::StatusOr<Role> r = ParseRole(v, views_);
        if (!r.ok()) return Bad("role", source, std::string(r.status().message()));
        n.role = *r;
        return absl::OkStatus();
      });
  add("data_dir", OptionType::kString, n.data_dir,
      "Directory for the embedded log, the writer's command index and the view stores.",
      text(&n.data_dir));
  add("listen", OptionType::kString, n.listen,
      "gRPC listen address HOST:PORT (port 0 picks a free port, printed at start).",
      address("listen", &n.listen, false));
  add("partitions", OptionType::kInt, std::to_string(n.partitions),
      "Partitions of a new embedded log (an existing one keeps its count; a different count given "
      "here is refused); with Kafka, the count the topic must have (1-4096).",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        absl::StatusOr<int64_t> p = ParseInt("partitions", source, v, 1, 4096);
        if (!p.ok()) return p.status();
        n.partitions = static_cast<int32_t>(*p);
        n.partitions_given = true;
        return absl::OkStatus();
      });
  add("sync", OptionType::kBool, n.sync ? "true" : "false",
      "Embedded log: fsync each append before acknowledging it. false: a machine crash may lose "
      "the last appends (a process crash loses nothing).",
      boolean("sync", &n.sync));
  add("ids.key_file", OptionType::kString, "",
      "File holding the deployment's lead id key (lead ids are a keyed hash of the contact). "
      "Empty: <data_dir>/writer/ids.key, created with a random key at the first start; keep it "
      "with the data and in backups.",
      text(&n.id_key_file));
  add("accept_data_loss", OptionType::kBool, "false",
      "Go on where the log lost events its witnesses saw (a damaged log, reported as DATA_LOSS at "
      "start): the loss is accepted, logged and recorded in <data_dir>/writer/accepted-losses.log. "
      "For one start, after deciding not to restore the log from a backup.",
      boolean("accept_data_loss", &n.accept_data_loss));
  add("phone_region", OptionType::kString, "",
      "Region (ISO 3166 code, e.g. GB, PL, US) of phone numbers written without a country code; "
      "empty: every phone number needs its country code (+44 ... or 0044 ...).",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        const std::string region = absl::AsciiStrToUpper(v);
        if (!region.empty() && !common::IsPhoneRegion(region)) {
          return Bad("phone_region", source,
                     absl::StrCat("'", v.substr(0, 8),
                                  "' is not a region code libphonenumber "
                                  "knows (two letters, e.g. GB, PL, US)"));
        }
        n.phone_region = region;
        return absl::OkStatus();
      });
  add("storage.block_cache_mb", OptionType::kInt, std::to_string(n.storage.block_cache_bytes >> 20),
      "RocksDB block cache shared by the log, the command index and every view store, MiB.",
      mebibytes("storage.block_cache_mb", &n.storage.block_cache_bytes, 1));
  add("storage.memtable_mb", OptionType::kInt, std::to_string(n.storage.memtable_bytes >> 20),
      "RocksDB memtables of all stores together, MiB; the largest is flushed when they reach it.",
      mebibytes("storage.memtable_mb", &n.storage.memtable_bytes, 4));
  add("storage.min_free_mb", OptionType::kInt, "0",
      "Commands are refused (UNAVAILABLE, naming the cause) and views wait while the data "
      "directory's disk has less free space than this, MiB; writing resumes by itself above it. "
      "0: 5 % of the disk, at least 1 and at most 256 MiB.",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        absl::StatusOr<int64_t> mb = ParseInt("storage.min_free_mb", source, v, 0, 1 << 20);
        if (!mb.ok()) return mb.status();
        n.storage.min_free_bytes = static_cast<uint64_t>(*mb) << 20;
        return absl::OkStatus();
      });
  add("storage.huge_pages", OptionType::kBool, config_.huge_pages ? "true" : "false",
      "Back the process heap with transparent huge pages (2 MiB) where the kernel allows them "
      "(transparent_hugepage = madvise or always): fewer page faults for the writer's state, "
      "resident memory grows in 2 MiB steps. Read at start only.",
      boolean("storage.huge_pages", &config_.huge_pages));
  add("kafka.brokers", OptionType::kString, "",
      "Kafka bootstrap servers (HOST:PORT,...); set: the log is this Kafka topic instead of the "
      "embedded log.",
      text(&n.kafka_brokers));
  add("kafka.topic", OptionType::kString, n.kafka_topic, "Kafka topic of the events.",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        if (v.empty()) return Bad("kafka.topic", source, "must not be empty");
        n.kafka_topic = v;
        return absl::OkStatus();
      });
  add("kafka.transactional_id", OptionType::kString, n.kafka_transactional_id,
      "Prefix of the writer's transactional id (the owned partitions are appended), so a second "
      "writer for the same partitions fences the first.",
      text(&n.kafka_transactional_id));
  add(
      "kafka.properties", OptionType::kMap, "",
      "Extra librdkafka properties passed through, e.g. security.protocol=ssl. YAML: a mapping; "
      "flag: KEY=VALUE, repeatable; environment: KEY=VALUE pairs separated by ';'.",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        for (absl::string_view item : absl::StrSplit(v, ';', absl::SkipWhitespace())) {
          std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
          kv.first = std::string(absl::StripAsciiWhitespace(kv.first));
          if (kv.first.empty() || item.find('=') == absl::string_view::npos) {
            return Bad("kafka.properties", source,
                       absl::StrCat("expected KEY=VALUE, got '", item, "'"));
          }
          n.kafka_properties.push_back(std::move(kv));
        }
        return absl::OkStatus();
      },
      "--kafka-property");
  add("kafka.mock", OptionType::kBool, n.kafka_mock ? "true" : "false",
      "Start an in-process Kafka mock cluster on loopback TCP and use it (demos and tests: keeps "
      "~5 MiB per partition, does not enforce transactions). Its address is printed at start.",
      boolean("kafka.mock", &n.kafka_mock));
  add("metrics.listen", OptionType::kString, "",
      "Prometheus metrics HTTP address HOST:PORT (GET /metrics); empty: no metrics endpoint.",
      address("metrics.listen", &n.metrics_listen, true));
  SecurityOptions& sec = n.security;
  add("auth.enabled", OptionType::kBool, "true",
      "Every call needs a bearer token (JWT) or a client certificate the policy knows; the "
      "event's actor is that caller. false: anyone who reaches the port may do anything (only "
      "on a loopback address, unless insecure).",
      boolean("auth.enabled", &sec.auth));
  add("auth.token_key_file", OptionType::kString, "",
      "Key of the bearer tokens: the shared secret (HS*) or the public key in PEM (RS*, ES*). "
      "Empty: <data_dir>/auth/token.key, a secret created at the first start (mode 0600). "
      "Processes that share callers (writer, views, gateway) need the same key.",
      text(&sec.token_key_file));
  add("auth.token_algorithm", OptionType::kString, sec.token_algorithm,
      "The one JWT algorithm accepted: HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 "
      "or ES512 (never none).",
      text(&sec.token_algorithm));
  add("auth.token_issuer", OptionType::kString, sec.token_issuer, "The `iss` a token must carry.",
      text(&sec.token_issuer));
  add("auth.token_audience", OptionType::kString, sec.token_audience,
      "The `aud` a token must carry.", text(&sec.token_audience));
  add("auth.policy_file", OptionType::kString, "",
      "Roles and what each may call (YAML, docs/security.md); re-read within 5 s of a change. "
      "Empty: the built-in roles admin, sales, intake, import, analyst, downstream, auditor.",
      text(&sec.policy_file));
  add("auth.admin_token_file", OptionType::kString, "",
      "Where each start writes a fresh admin token (30 days) for leadctl on this machine, when "
      "the token key is a shared secret. Empty: <data_dir>/auth/admin.token; \"-\": none.",
      text(&sec.admin_token_file));
  add("tls.cert_file", OptionType::kString, "",
      "TLS certificate (PEM) of the gRPC listener; with tls.key_file turns TLS on. The gateway "
      "also presents it to the other processes.",
      text(&sec.tls_cert_file));
  add("tls.key_file", OptionType::kString, "", "TLS private key (PEM) of tls.cert_file.",
      text(&sec.tls_key_file));
  add("tls.client_ca_file", OptionType::kString, "",
      "Set: clients must present a certificate signed by this CA (mTLS); others are refused at "
      "the handshake.",
      text(&sec.tls_client_ca_file));
  add("tls.ca_file", OptionType::kString, "",
      "CA that signs the other processes' certificates: the gateway (and leadflow backup "
      "--server) then call them over TLS.",
      text(&sec.tls_ca_file));
  add("insecure", OptionType::kBool, "false",
      "Serve on a non-loopback address without TLS or without authentication (refused "
      "otherwise).",
      boolean("insecure", &sec.insecure), "--insecure");
  add("privacy.encrypt_personal", OptionType::kBool, "true",
      "Seal every personal field inside its event with the lead's data key before it reaches the "
      "log (crypto-shredding: EraseLead destroys the key). Needs the embedded log today.",
      boolean("privacy.encrypt_personal", &n.encrypt_personal));
  add("privacy.kek_file", OptionType::kString, "",
      "The key-encryption key that wraps the data keys (64 hex digits). Empty: "
      "<data_dir>/keys/kek, made at the first start (mode 0600). Keep a copy apart from the "
      "data backups: without it the personal data in the log cannot be read.",
      text(&n.kek_file));
  add("grpc.reflection", OptionType::kBool, "false",
      "gRPC server reflection (grpcurl can then list and call the services without proto/).",
      boolean("grpc.reflection", &sec.reflection));
  for (const std::string& role : GatewayRoles(views_)) {
    const std::string key = GatewayKey(role);
    add(key, OptionType::kString, "",
        absl::StrCat("Gateway role: address of the ", role, " process."),
        [key, role, &n](const std::string& v, const std::string& source) -> absl::Status {
          if (absl::Status s = CheckAddress(key, source, v, true); !s.ok()) return s;
          if (v.empty()) {
            n.gateway.erase(role);
          } else {
            n.gateway[role] = v;
          }
          return absl::OkStatus();
        });
  }
  add("funnel.stage_probability_percent", OptionType::kString,
      absl::StrJoin(n.funnel.stage_probability_percent, ","),
      "Pipeline: chance (percent) that a qualified lead converts, per sales stage in order "
      "unspecified, qualification, needs analysis, solution presentation, objection handling, "
      "closing (6 numbers).",
      [&n](const std::string& v, const std::string& source) -> absl::Status {
        std::vector<std::string> parts = absl::StrSplit(v, ',', absl::SkipWhitespace());
        if (parts.size() != n.funnel.stage_probability_percent.size()) {
          return Bad("funnel.stage_probability_percent", source,
                     absl::StrCat("expected 6 comma-separated percentages, got ", parts.size()));
        }
        for (size_t i = 0; i < parts.size(); ++i) {
          absl::StatusOr<int64_t> p =
              ParseInt("funnel.stage_probability_percent", source,
                       std::string(absl::StripAsciiWhitespace(parts[i])), 0, 100);
          if (!p.ok()) return p.status();
          n.funnel.stage_probability_percent[i] = static_cast<int>(*p);
        }
        return absl::OkStatus();
      });
  add("log.format", OptionType::kString, config_.log.format,
      "Log lines as text (key=value fields) or json (one object per line).",
      [this](const std::string& v, const std::string& source) -> absl::Status {
        if (v != "text" && v != "json") {
          return Bad("log.format", source, absl::StrCat("expected text or json, got '", v, "'"));
        }
        config_.log.format = v;
        return absl::OkStatus();
      });
  add("log.level", OptionType::kString, config_.log.level,
      "Lowest level logged: debug (every command with lead, partition, offset), info, warn or "
      "error.",
      [this](const std::string& v, const std::string& source) -> absl::Status {
        if (v != "debug" && v != "info" && v != "warn" && v != "error") {
          return Bad("log.level", source,
                     absl::StrCat("expected debug, info, warn or error, got '", v, "'"));
        }
        config_.log.level = v;
        return absl::OkStatus();
      });
  add("shutdown.grace_seconds", OptionType::kInt,
      std::to_string(absl::ToInt64Seconds(config_.shutdown_grace)),
      "On SIGTERM, how long in-flight RPCs may finish before they are cancelled (a second "
      "signal exits at once).",
      [this](const std::string& v, const std::string& source) -> absl::Status {
        absl::StatusOr<int64_t> s = ParseInt("shutdown.grace_seconds", source, v, 0, 3600);
        if (!s.ok()) return s.status();
        config_.shutdown_grace = absl::Seconds(*s);
        return absl::OkStatus();
      });
}

absl::Status ConfigLoader::Set(const std::string& key, const std::string& value,
                               const std::string& source) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    std::string best;
    size_t best_distance = 4;  // suggest only close matches
    for (const OptionSpec& spec : options_) {
      const size_t d = Distance(key, spec.key);
      if (d < best_distance) {
        best_distance = d;
        best = spec.key;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unknown option '", key, "'",
                     best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)")));
  }
  return options_[it->second].set(value, source);
}

absl::Status ConfigLoader::ApplyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": cannot be read (missing or not readable)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ApplyYaml(text.str(), path);
}

absl::Status ConfigLoader::ApplyYaml(const std::string& text, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1,
                                                   ": not valid YAML: ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();  // an empty file
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": expected a mapping of options (key: value) at the top"));
  }
  // Walks nested mappings, joining keys with '.'; a mapping under a kMap option is its value.
  std::function<absl::Status(const YAML::Node&, const std::string&)> walk =
      [&](const YAML::Node& node, const std::string& prefix) -> absl::Status {
    for (const auto& entry : node) {
      const std::string name = entry.first.as<std::string>();
      const std::string key = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
      const YAML::Node& value = entry.second;
      const std::string where = absl::StrCat(source_name, " line ", entry.first.Mark().line + 1);
      auto spec = by_key_.find(key);
      if (spec != by_key_.end() && options_[spec->second].type == OptionType::kMap) {
        if (!value.IsMap()) {
          return absl::InvalidArgumentError(
              absl::StrCat(key, " (", where, "): expected a mapping of KEY: VALUE"));
        }
        for (const auto& kv : value) {
          if (!kv.second.IsScalar()) {
            return absl::InvalidArgumentError(absl::StrCat(key, " (", where, "): the value of '",
                                                           kv.first.as<std::string>(),
                                                           "' must be a single value"));
          }
          if (absl::Status s = Set(
                  key, absl::StrCat(kv.first.as<std::string>(), "=", kv.second.as<std::string>()),
                  where);
              !s.ok()) {
            return s;
          }
        }
        continue;
      }
      if (value.IsMap()) {
        if (spec != by_key_.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(key, " (", where, "): expected a single value, got a mapping"));
        }
        if (absl::Status s = walk(value, key); !s.ok()) return s;
        continue;
      }
      if (value.IsSequence()) {
        // Lists are written comma-separated (funnel.stage_probability_percent).
        std::vector<std::string> items;
        for (const auto& item : value) {
          if (!item.IsScalar()) {
            return absl::InvalidArgumentError(
                absl::StrCat(key, " (", where, "): list items must be single values"));
          }
          items.push_back(item.as<std::string>());
        }
        if (absl::Status s = Set(key, absl::StrJoin(items, ","), where); !s.ok()) return s;
        continue;
      }
      if (absl::Status s = Set(key, value.IsNull() ? "" : value.as<std::string>(), where);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  };
  return walk(root, "");
}

absl::Status ConfigLoader::ApplyEnvironment(const std::function<const char*(const char*)>& getenv) {
  for (const OptionSpec& spec : options_) {
    const char* value = getenv(spec.env.c_str());
    if (value == nullptr) continue;
    if (absl::Status s = spec.set(value, absl::StrCat("environment ", spec.env)); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ConfigLoader::ApplyFlag(const std::string& key, const std::string& value) {
  auto it = by_key_.find(key);
  const std::string source =
      it == by_key_.end() ? "flag" : absl::StrCat("flag ", options_[it->second].flag);
  return Set(key, value, source);
}

absl::StatusOr<ServeConfig> ConfigLoader::Finish() const {
  const NodeOptions& n = config_.node;
  const bool kafka = !n.kafka_brokers.empty() || n.kafka_mock;
  if (!n.kafka_brokers.empty() && n.kafka_mock) {
    return absl::InvalidArgumentError(
        "kafka.mock and kafka.brokers exclude each other: use the mock for a demo, brokers for "
        "a real cluster");
  }
  // A writer alone may keep the embedded log (it is then the only reader too); views in another
  // process cannot read it.
  if (!n.role.runs_writer() && !n.role.is_gateway() && !kafka) {
    return absl::InvalidArgumentError(absl::StrCat(
        "role=", n.role.name(),
        ": needs a shared log, kafka.brokers (--kafka-brokers) or kafka.mock; the embedded log "
        "belongs to the one process that opened it (use role=all on a single machine)"));
  }
  if (n.role.is_gateway()) {
    if (n.gateway.empty()) {
      std::vector<std::string> keys;
      for (const std::string& role : GatewayRoles(views_)) keys.push_back(GatewayKey(role));
      return absl::InvalidArgumentError(absl::StrCat("role=gateway: set at least one of ",
                                                     absl::StrJoin(keys, ", "),
                                                     " (the addresses it forwards to)"));
    }
    if (kafka) {
      return absl::InvalidArgumentError(
          "role=gateway: does not read the log; remove kafka.brokers / kafka.mock");
    }
    for (const auto& [role, upstream] : n.gateway) {
      if (IsOwnAddress(n.listen, upstream)) {
        return absl::InvalidArgumentError(absl::StrCat(
            GatewayKey(role), ": ", upstream, " is this gateway's own address (listen is ",
            n.listen, "); it would forward every call to itself forever. Give the address of the ",
            role, " process"));
      }
    }
  } else if (!n.gateway.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gateway.* addresses are only for role=gateway (role is ", n.role.name(), ")"));
  }
  return config_;
}

std::string ConfigLoader::Markdown() const {
  std::string out =
      "| Key (YAML) | Flag | Environment | Default | Meaning |\n"
      "|---|---|---|---|---|\n";
  for (const OptionSpec& spec : options_) {
    std::string help = spec.help;
    absl::StrAppend(
        &out, "| `", spec.key, "` | `", spec.flag, "` | `", spec.env, "` | ",
        spec.default_text.empty() ? "(empty)" : absl::StrCat("`", spec.default_text, "`"), " | ",
        help, " |\n");
  }
  return out;
}

}  // namespace leadflow::config

#include "services/auth/policy.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "leadflow/v1/lead_service.pb.h"
#include "leadflow/v1/stream.pb.h"
#include "yaml-cpp/yaml.h"

namespace leadflow::auth {
namespace {

constexpr char kPackage[] = "leadflow.v1.";

const google::protobuf::ServiceDescriptor* FindService(absl::string_view name) {
  // Referencing the file's descriptor table links lead_service.pb.cc in (and registers it).
  static const void* volatile linked = &::descriptor_table_leadflow_2fv1_2flead_5fservice_2eproto;
  static const void* volatile stream = &::descriptor_table_leadflow_2fv1_2fstream_2eproto;
  (void)linked;
  (void)stream;
  std::string full(name);
  if (!absl::StartsWith(full, kPackage)) full = absl::StrCat(kPackage, full);
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full);
}

bool IsCommandKind(absl::string_view kind) {
  const google::protobuf::OneofDescriptor* body =
      v1::Command::descriptor()->FindOneofByName("body");
  for (int i = 0; i < body->field_count(); ++i) {
    if (body->field(i)->name() == kind) return true;
  }
  return false;
}

std::string ShortService(absl::string_view service) {
  return std::string(absl::StripPrefix(service, kPackage));
}

bool MethodMatches(const std::string& pattern, absl::string_view method) {
  if (pattern == "*") return true;
  const size_t slash = method.find('/');
  if (slash == absl::string_view::npos) return false;
  const std::string service = ShortService(method.substr(0, slash));
  const absl::string_view name = method.substr(slash + 1);
  const size_t pslash = pattern.find('/');
  if (pslash == std::string::npos) return false;
  if (ShortService(pattern.substr(0, pslash)) != service) return false;
  const std::string pname = pattern.substr(pslash + 1);
  return pname == "*" || pname == name;
}

// Checks a method pattern against the services this build serves.
absl::Status CheckPattern(const std::string& pattern) {
  if (pattern == "*") return absl::OkStatus();
  const size_t slash = pattern.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("method '", pattern.substr(0, 64), "' is not Service/Method, Service/* or *"));
  }
  const google::protobuf::ServiceDescriptor* s = FindService(pattern.substr(0, slash));
  if (s == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown service '", pattern.substr(0, slash).substr(0, 64), "'"));
  }
  const std::string method = pattern.substr(slash + 1);
  if (method != "*" && s->FindMethodByName(method) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", s->name(), " has no method '", method.substr(0, 64), "'"));
  }
  return absl::OkStatus();
}

const std::set<std::string>& LifecycleCommands() {
  static const auto* kinds = new std::set<std::string>{"capture_lead",
                                                       "record_inquiry",
                                                       "update_contact_details",
                                                       "assign_lead",
                                                       "set_temperature",
                                                       "log_interaction",
                                                       "schedule_follow_up",
                                                       "complete_follow_up",
                                                       "qualify_lead",
                                                       "change_stage",
                                                       "reject_lead",
                                                       "postpone_lead",
                                                       "disqualify_lead",
                                                       "reactivate_lead",
                                                       "merge_lead",
                                                       "convert_lead",
                                                       "update_customer_profile",
                                                       "record_purchase",
                                                       "record_nps"};
  return *kinds;
}

}  // namespace

const Policy& Policy::Default() {
  static const Policy* policy = [] {
    auto* p = new Policy();
    const std::set<std::string> reads = {"LeadQueryService/*", "CustomerQueryService/*",
                                         "FunnelQueryService/*", "ReprocessingQueryService/*",
                                         "ViewAdminService/*"};
    p->roles_["admin"] = Role{.methods = {"*"}, .commands = {"*"}};
    p->roles_["sales"] = Role{.methods = reads, .commands = LifecycleCommands()};
    p->roles_["intake"] = Role{
        .methods = {}, .commands = {"capture_lead", "record_inquiry"}, .redact_personal = false};
    p->roles_["import"] =
        Role{.methods = {"ViewAdminService/GetViewStatus"}, .commands = LifecycleCommands()};
    p->roles_["analyst"] =
        Role{.methods = {"FunnelQueryService/*", "ReprocessingQueryService/*",
                         "LeadQueryService/GetLead", "LeadQueryService/ListLeads",
                         "LeadQueryService/CountLeads", "LeadQueryService/ListOverdueFollowUps",
                         "ViewAdminService/*"},
             .commands = {},
             .redact_personal = true};
    p->roles_["downstream"] =
        Role{.methods = {"EventStreamService/StreamEvents", "ViewAdminService/GetViewStatus"},
             .commands = {}};
    p->roles_["auditor"] = Role{.methods = reads, .commands = {}};
    return p;
  }();
  return *policy;
}

absl::StatusOr<Policy> Policy::Parse(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ": not YAML: ", e.msg));
  }
  auto bad = [&source](const YAML::Node& at, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", at.Mark().line + 1, ": ", what));
  };
  if (!root.IsMap()) return bad(root, "a policy is a mapping with 'roles' (and 'certificates')");
  Policy p;
  try {
    for (const auto& entry : root) {
      const std::string key = entry.first.as<std::string>();
      if (key != "roles" && key != "certificates") {
        return bad(entry.first, absl::StrCat("unknown key '", key.substr(0, 32),
                                             "'; a policy has roles and certificates"));
      }
    }
    if (!root["roles"] || !root["roles"].IsMap()) {
      return bad(root, "roles: required, a mapping of role name to its rules");
    }
    for (const auto& r : root["roles"]) {
      const std::string name = r.first.as<std::string>();
      Role role;
      if (!r.second.IsMap()) return bad(r.second, absl::StrCat("role ", name, ": a mapping"));
      for (const auto& field : r.second) {
        const std::string key = field.first.as<std::string>();
        if (key == "methods" || key == "commands") {
          if (!field.second.IsSequence()) {
            return bad(field.second, absl::StrCat("role ", name, ": ", key, " is a list"));
          }
          for (const auto& item : field.second) {
            const std::string v = item.as<std::string>();
            if (key == "methods") {
              if (absl::Status st = CheckPattern(v); !st.ok()) {
                return bad(item, absl::StrCat("role ", name, ": ", st.message()));
              }
              role.methods.insert(v);
            } else {
              if (v != "*" && !IsCommandKind(v)) {
                return bad(item, absl::StrCat("role ", name, ": unknown command '", v.substr(0, 64),
                                              "' (a Command body field, e.g. "
                                              "assign_lead, or *)"));
              }
              role.commands.insert(v);
            }
          }
        } else if (key == "redact_personal") {
          role.redact_personal = field.second.as<bool>();
        } else {
          return bad(field.first, absl::StrCat("role ", name, ": unknown key '", key.substr(0, 32),
                                               "'; one of methods, commands, redact_personal"));
        }
      }
      p.roles_[name] = std::move(role);
    }
    if (root["certificates"]) {
      if (!root["certificates"].IsMap()) {
        return bad(root["certificates"], "certificates: a mapping of common name to role");
      }
      for (const auto& c : root["certificates"]) {
        const std::string cn = c.first.as<std::string>();
        const std::string role = c.second.as<std::string>();
        if (!p.roles_.contains(role)) {
          return bad(c.second, absl::StrCat("certificates: ", cn.substr(0, 64), ": unknown role '",
                                            role.substr(0, 32), "'"));
        }
        p.certificates_[cn] = role;
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
  return p;
}

absl::Status Policy::CheckMethod(const Principal& who, absl::string_view method) const {
  auto it = roles_.find(who.role);
  if (it == roles_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("role '", who.role, "' is not in the authorization policy (", method, ")"));
  }
  const Role& role = it->second;
  if (absl::StartsWith(method, absl::StrCat(kCommandService, "/"))) {
    if (!role.commands.empty()) return absl::OkStatus();  // each command is checked itself
    return absl::PermissionDeniedError(
        absl::StrCat("role '", who.role, "' may not run commands (", method, ")"));
  }
  for (const std::string& pattern : role.methods) {
    if (MethodMatches(pattern, method)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("role '", who.role, "' may not call ", method));
}

absl::Status Policy::CheckCommand(const Principal& who, absl::string_view command) const {
  auto it = roles_.find(who.role);
  if (it != roles_.end() &&
      (it->second.commands.contains("*") || it->second.commands.contains(std::string(command)))) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("role '", who.role, "' may not run ", command));
}

bool Policy::RedactsPersonal(const std::string& role) const {
  auto it = roles_.find(role);
  return it != roles_.end() && it->second.redact_personal;
}

std::optional<std::string> Policy::RoleOfCertificate(const std::string& common_name) const {
  auto it = certificates_.find(common_name);
  if (it == certificates_.end()) return std::nullopt;
  return it->second;
}

namespace {

std::string Stamp(const std::string& path) {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(path, ec);
  if (ec) return "";
  const auto size = std::filesystem::file_size(path, ec);
  return absl::StrCat(time.time_since_epoch().count(), "/", ec ? 0 : size);
}

absl::StatusOr<std::shared_ptr<const Policy>> ReadPolicy(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("auth.policy_file: cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<Policy> p = Policy::Parse(text.str(), path);
  if (!p.ok()) return p.status();
  return std::make_shared<const Policy>(*std::move(p));
}

}  // namespace

absl::StatusOr<std::shared_ptr<PolicyStore>> PolicyStore::Open(const std::string& path) {
  auto store = std::make_shared<PolicyStore>();
  store->path_ = path;
  if (path.empty()) {
    absl::MutexLock lock(&store->mu_);
    store->policy_ = std::shared_ptr<const Policy>(&Policy::Default(), [](const Policy*) {});
    return store;
  }
  const std::string stamp = Stamp(path);
  absl::StatusOr<std::shared_ptr<const Policy>> p = ReadPolicy(path);
  if (!p.ok()) return p.status();
  absl::MutexLock lock(&store->mu_);
  store->policy_ = *std::move(p);
  store->stamp_ = stamp;
  return store;
}

std::shared_ptr<const Policy> PolicyStore::current() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

std::string PolicyStore::MaybeReload() {
  if (path_.empty()) return "";
  const std::string stamp = Stamp(path_);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == stamp_) return "";
    stamp_ = stamp;
  }
  absl::StatusOr<std::shared_ptr<const Policy>> p = ReadPolicy(path_);
  if (!p.ok()) {
    return absl::StrCat("authorization policy NOT reloaded (the previous one stays): ",
                        p.status().message());
  }
  absl::MutexLock lock(&mu_);
  policy_ = *std::move(p);
  return absl::StrCat("authorization policy reloaded from ", path_, " (", policy_->roles().size(),
                      " roles)");
}

}  // namespace leadflow::auth

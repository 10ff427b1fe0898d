// Who may do what: roles, each allowed a set of gRPC methods and a set of command kinds, from a
// policy file (YAML, reloadable) or the built-in default. Deny by default: a role, method or
// command kind the policy does not name is refused with PERMISSION_DENIED naming it and the role.
//
// File format (docs/security.md):
//   roles:
//     sales:
//       methods: [LeadQueryService/*, FunnelQueryService/GetCohortFunnel]
//       commands: [assign_lead, log_interaction]
//       redact_personal: false
//   certificates:            # mTLS client certificates without a token: common name -> role
//     crm-connector: intake
//
// Methods are `Service/Method` (the service's short or full name), `Service/*` or `*`. The
// commands (the Command body field names, or `*`) govern LeadCommandService: its typed RPCs and
// each command inside Execute and ExecuteBatch.
#ifndef LEADFLOW_SERVICES_AUTH_POLICY_H_
#define LEADFLOW_SERVICES_AUTH_POLICY_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/auth/principal.h"

namespace leadflow::auth {

inline constexpr char kCommandService[] = "leadflow.v1.LeadCommandService";

class Policy {
 public:
  struct Role {
    std::set<std::string> methods;   // patterns as written
    std::set<std::string> commands;  // command kinds, or "*"
    bool redact_personal = false;    // answers have every personal field removed
  };

  // The built-in roles (docs/security.md): admin, sales, intake, import, analyst, downstream,
  // auditor.
  static const Policy& Default();
  // A policy file's text; INVALID_ARGUMENT naming `source`, the line and the problem.
  static absl::StatusOr<Policy> Parse(const std::string& yaml, const std::string& source);

  // OK, or PERMISSION_DENIED naming the method and the role. `method` is the full gRPC name
  // without the leading slash ("leadflow.v1.LeadQueryService/GetLead"). For LeadCommandService
  // this admits a role that may run some command; each command is then checked by CheckCommand.
  absl::Status CheckMethod(const Principal& who, absl::string_view method) const;
  // OK, or PERMISSION_DENIED naming the command kind ("assign_lead") and the role.
  absl::Status CheckCommand(const Principal& who, absl::string_view command) const;
  bool RedactsPersonal(const std::string& role) const;
  // The role of a client certificate's common name, if the policy maps it.
  std::optional<std::string> RoleOfCertificate(const std::string& common_name) const;

  const std::map<std::string, Role>& roles() const { return roles_; }

 private:
  std::map<std::string, Role> roles_;
  std::map<std::string, std::string> certificates_;
};

// The policy in force: the file's (re-read when it changes, checked every few seconds by
// MaybeReload), or the default. A file that no longer parses keeps the last good policy and
// says so. Thread-safe.
class PolicyStore {
 public:
  // `path` empty: the default policy, never reloaded. Else the file must parse now.
  static absl::StatusOr<std::shared_ptr<PolicyStore>> Open(const std::string& path);
  std::shared_ptr<const Policy> current() const;
  // Re-reads the file if its modification time or size changed. Returns what happened for the
  // log: empty (nothing changed), "reloaded ...", or the parse error (the old policy stays).
  std::string MaybeReload();

 private:
  std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::string stamp_ ABSL_GUARDED_BY(mu_);  // mtime and size of the file last read
};

}  // namespace leadflow::auth

#endif  // LEADFLOW_SERVICES_AUTH_POLICY_H_

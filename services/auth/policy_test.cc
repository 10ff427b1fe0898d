// The authorization policy: the built-in roles, policy files (and their errors), reloading.
// (Every role against every RPC through a real server: services/server/auth_test.cc.)
#include "services/auth/policy.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::auth {
namespace {

using ::testing::HasSubstr;

Principal As(const std::string& role) { return Principal{.subject = "x", .role = role}; }

TEST(PolicyTest, DefaultRolesDenyWhatTheyDoNotName) {
  const Policy& p = Policy::Default();
  EXPECT_TRUE(p.CheckMethod(As("analyst"), "leadflow.v1.FunnelQueryService/GetCohortFunnel").ok());
  absl::Status denied = p.CheckMethod(As("analyst"), "leadflow.v1.LeadQueryService/FindLead");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.message()),
              HasSubstr("role 'analyst' may not call leadflow.v1.LeadQueryService/FindLead"));
  EXPECT_THAT(std::string(p.CheckCommand(As("intake"), "assign_lead").message()),
              HasSubstr("role 'intake' may not run assign_lead"));
  EXPECT_TRUE(p.CheckCommand(As("intake"), "capture_lead").ok());
  EXPECT_THAT(
      std::string(p.CheckMethod(As("nobody"), "leadflow.v1.LeadQueryService/GetLead").message()),
      HasSubstr("role 'nobody' is not in the authorization policy"));
  EXPECT_TRUE(p.RedactsPersonal("analyst"));
  EXPECT_FALSE(p.RedactsPersonal("auditor"));
  EXPECT_TRUE(p.CheckMethod(As("admin"), "leadflow.v1.AdminService/Backup").ok());
  EXPECT_FALSE(p.CheckMethod(As("auditor"), "leadflow.v1.AdminService/Backup").ok());
}

TEST(PolicyTest, AFileDefinesRolesAndCertificates) {
  absl::StatusOr<Policy> p = Policy::Parse(R"(
roles:
  reader:
    methods: [LeadQueryService/GetLead, leadflow.v1.FunnelQueryService/*]
  forms:
    commands: [capture_lead]
    redact_personal: true
certificates:
  crm-connector: forms
)",
                                           "policy.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->CheckMethod(As("reader"), "leadflow.v1.LeadQueryService/GetLead").ok());
  EXPECT_TRUE(p->CheckMethod(As("reader"), "leadflow.v1.FunnelQueryService/GetPipeline").ok());
  EXPECT_FALSE(p->CheckMethod(As("reader"), "leadflow.v1.LeadQueryService/ListLeads").ok());
  EXPECT_FALSE(p->CheckMethod(As("reader"), "leadflow.v1.LeadCommandService/Execute").ok());
  EXPECT_TRUE(p->CheckMethod(As("forms"), "leadflow.v1.LeadCommandService/Execute").ok());
  EXPECT_FALSE(p->CheckCommand(As("forms"), "convert_lead").ok());
  EXPECT_EQ(p->RoleOfCertificate("crm-connector"), "forms");
  EXPECT_EQ(p->RoleOfCertificate("someone"), std::nullopt);
  // The default roles are not there unless the file names them.
  EXPECT_FALSE(p->CheckMethod(As("admin"), "leadflow.v1.AdminService/Backup").ok());
}

TEST(PolicyTest, BadFilesNameTheLineAndTheProblem) {
  struct Case {
    std::string yaml, want;
  };
  for (const Case& c : std::vector<Case>{
           {"roles: [", "policy.yaml:1"},
           {"- a\n- b\n", "a policy is a mapping"},
           {"roles:\n  r:\n    methods: [LeadQueryService/GetLeed]\n", "has no method 'GetLeed'"},
           {"roles:\n  r:\n    methods: [NoSuchService/*]\n", "unknown service 'NoSuchService'"},
           {"roles:\n  r:\n    methods: [GetLead]\n", "is not Service/Method"},
           {"roles:\n  r:\n    commands: [launch_rocket]\n", "unknown command 'launch_rocket'"},
           {"roles:\n  r:\n    method: [x]\n", "unknown key 'method'"},
           {"rolez: {}\n", "unknown key 'rolez'"},
           {"certificates: {}\n", "roles: required"},
           {"roles:\n  r: {}\ncertificates:\n  cn: nobody\n", "unknown role 'nobody'"},
       }) {
    absl::StatusOr<Policy> p = Policy::Parse(c.yaml, "policy.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.want)) << c.yaml;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("policy.yaml:")) << c.yaml;
  }
}

TEST(PolicyTest, TheStoreReloadsAChangedFileAndKeepsTheLastGoodOne) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("leadflow-policy-" + std::to_string(getpid()) + ".yaml"))
                               .string();
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write("roles:\n  r:\n    methods: [LeadQueryService/GetLead]\n");
  auto store = PolicyStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->MaybeReload(), "");  // unchanged
  EXPECT_FALSE(
      (*store)->current()->CheckMethod(As("r"), "leadflow.v1.LeadQueryService/ListLeads").ok());
  write("roles:\n  r:\n    methods: [LeadQueryService/*]\n    # longer now\n");
  EXPECT_THAT((*store)->MaybeReload(), HasSubstr("reloaded"));
  EXPECT_TRUE(
      (*store)->current()->CheckMethod(As("r"), "leadflow.v1.LeadQueryService/ListLeads").ok());
  write("roles: [broken\n");
  EXPECT_THAT((*store)->MaybeReload(), HasSubstr("NOT reloaded"));
  EXPECT_TRUE(
      (*store)->current()->CheckMethod(As("r"), "leadflow.v1.LeadQueryService/ListLeads").ok());
  std::filesystem::remove(path);
  EXPECT_FALSE(PolicyStore::Open(path).ok());
}

}  // namespace
}  // namespace leadflow::auth

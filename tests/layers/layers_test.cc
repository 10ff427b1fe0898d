// The layers of leadflow hold (docs/architecture.md): every #include between the project's
// folders and every CMake link between its targets goes from a higher layer to a lower one (or
// within a layer, without cycles), and the heavy adapters' headers stay where they belong:
// gRPC at the edge, RocksDB in the stores, librdkafka in the log, none of them in the domain.
//
// The test reads the source tree (LEADFLOW_SOURCE_DIR) and the link graph CMake writes at
// configure time (LEADFLOW_LINK_GRAPH, see the top-level CMakeLists.txt).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace leadflow {
namespace {

namespace fs = std::filesystem;

// The order, lowest first. A module may use its own layer and the layers below it.
const std::map<std::string, int>& Layers() {
  static const auto* layers = new std::map<std::string, int>{
      {"", 0},  // top-level helper targets (the allocator)
      {"proto", 0},
      {"services/common", 1},
      {"services/lead", 2},  // the domain
      {"services/log", 3},
      {"services/storage", 3},
      {"services/metrics", 3},
      {"services/logging", 3},
      {"services/config", 3},
      {"services/auth", 3},
      {"services/privacy", 3},
      {"services/command", 4},
      {"projections/runner", 4},
      {"projections/lead", 5},
      {"projections/customer", 5},
      {"projections/funnel", 5},
      {"projections/reprocessing", 5},
      {"services/server", 6},
      {"services/gateway", 6},
      {"tools/leadctl", 7},
      {"tools/history", 7},
      {"tools/bench", 7},
      {"tests", 8},
  };
  return *layers;
}

// Where each adapter's headers may be included (besides tests/ and *_test.cc files, which may
// inspect what they test).
struct Adapter {
  std::string name;
  std::regex include;  // an include line of its headers
  std::set<std::string> allowed;
};
const std::vector<Adapter>& Adapters() {
  static const auto* adapters = new std::vector<Adapter>{
      {"gRPC",
       std::regex(R"(#include\s*[<"](grpc/|grpcpp/|[^>"]*\.grpc\.pb\.h))"),
       {"services/server", "services/gateway", "tools/leadctl", "tools/bench"}},
      {"RocksDB",
       std::regex(R"(#include\s*[<"]rocksdb/)"),
       {"services/log", "services/storage", "services/command", "projections/runner",
        "tools/bench"}},
      {"librdkafka", std::regex(R"(#include\s*[<"]librdkafka/)"), {"services/log", "tools/bench"}},
  };
  return *adapters;
}

// An edge between modules: `from` uses `to`, because of `why` (a file or a target).
struct Edge {
  std::string from, to, why;
};

// The module of a path relative to the source root: its first two components ("services/log"),
// "tests" for anything under tests/, "proto" for the contract, "" for the root.
std::string ModuleOf(const std::string& rel) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/', absl::SkipEmpty());
  if (parts.empty()) return "";
  if (parts[0] == "tests" || parts[0] == "proto" || parts[0] == "cmake") return parts[0];
  if (parts.size() < 2) return parts[0];
  return absl::StrCat(parts[0], "/", parts[1]);
}

bool IsTestFile(const std::string& path) {
  return absl::EndsWith(path, "_test.cc") || absl::StrContains(path, "/fuzz/");
}

// Every violation of the order in `edges`: a module not in the table, an edge to a higher layer
// (test files may use tests/support), and cycles between modules.
std::vector<std::string> CheckOrder(const std::vector<Edge>& edges) {
  std::vector<std::string> out;
  std::map<std::string, std::set<std::string>> graph;
  for (const Edge& e : edges) {
    auto from = Layers().find(e.from);
    auto to = Layers().find(e.to);
    if (from == Layers().end() || to == Layers().end()) {
      out.push_back(absl::StrCat(e.why, ": module ", from == Layers().end() ? e.from : e.to,
                                 " is not in the layer table (tests/layers/layers_test.cc and "
                                 "docs/architecture.md): place it"));
      continue;
    }
    if (e.from == e.to) continue;
    if (to->second > from->second) {
      out.push_back(absl::StrCat(e.why, ": ", e.from, " (layer ", from->second, ") uses ", e.to,
                                 " (layer ", to->second, "), a higher layer"));
      continue;
    }
    graph[e.from].insert(e.to);
  }
  // Cycles within a layer: depth-first search with colours.
  std::map<std::string, int> colour;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::function<void(const std::string&)> visit = [&](const std::string& m) {
    colour[m] = 1;
    stack.push_back(m);
    for (const std::string& next : graph[m]) {
      if (colour[next] == 1) {
        std::string cycle;
        for (auto it = std::find(stack.begin(), stack.end(), next); it != stack.end(); ++it) {
          absl::StrAppend(&cycle, *it, " -> ");
        }
        out.push_back(absl::StrCat("cycle: ", cycle, next));
      } else if (colour[next] == 0) {
        visit(next);
      }
    }
    stack.pop_back();
    colour[m] = 2;
  };
  for (const auto& [m, unused] : graph) {
    if (colour[m] == 0) visit(m);
  }
  return out;
}

struct Tree {
  std::vector<Edge> includes;
  std::vector<std::string> adapter_violations;
};

// Reads every C++ file under the project's folders.
Tree ReadTree(const fs::path& root) {
  Tree tree;
  static const std::regex kProjectInclude(
      R"(#include\s*"((services|projections|tools|tests)/[^"]+))");
  static const std::regex kContractInclude(R"(#include\s*"leadflow/v1/)");
  for (const char* top : {"services", "projections", "tools", "tests"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / top)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".cc" && ext != ".h") continue;
      const std::string rel = fs::relative(entry.path(), root).string();
      const std::string module = ModuleOf(rel);
      const bool test_file = IsTestFile(rel) || module == "tests";
      std::ifstream in(entry.path());
      std::string line;
      int number = 0;
      while (std::getline(in, line)) {
        ++number;
        if (!absl::StartsWith(line, "#include")) continue;
        const std::string where = absl::StrCat(rel, ":", number);
        std::smatch m;
        if (std::regex_search(line, m, kProjectInclude)) {
          const std::string to = ModuleOf(m[1].str());
          // A unit test beside its module may use the shared test support.
          if (test_file && to == "tests") continue;
          tree.includes.push_back({module, to, where});
        } else if (std::regex_search(line, kContractInclude)) {
          tree.includes.push_back({module, "proto", where});
        }
        if (test_file) continue;
        for (const Adapter& a : Adapters()) {
          if (std::regex_search(line, a.include) && !a.allowed.count(module)) {
            tree.adapter_violations.push_back(absl::StrCat(where, ": ", module, " includes a ",
                                                           a.name, " header (", line, "); only ",
                                                           absl::StrJoin(a.allowed, ", "), " may"));
          }
        }
      }
    }
  }
  return tree;
}

struct Target {
  std::string name, type, module;
  std::vector<std::string> links;
};

std::vector<Target> ReadLinkGraph(const std::string& path) {
  std::vector<Target> targets;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() < 4) continue;
    Target t{f[0], f[1], ModuleOf(f[2]), absl::StrSplit(f[3], ' ', absl::SkipEmpty())};
    targets.push_back(std::move(t));
  }
  return targets;
}

// Link edges between the project's targets (leadflow::x is the target leadflow_x), and the
// external libraries a target links directly.
std::vector<Edge> LinkEdges(const std::vector<Target>& targets,
                            std::vector<std::string>* adapter_violations) {
  std::map<std::string, std::string> module_of;
  for (const Target& t : targets) module_of[t.name] = t.module;
  std::vector<Edge> edges;
  const std::vector<std::pair<std::string, std::string>> external = {
      {"gRPC::", "gRPC"}, {"RocksDB::", "RocksDB"}, {"RDKAFKA", "librdkafka"}};
  for (const Target& t : targets) {
    const bool test_target = absl::EndsWith(t.name, "_test") || t.module == "tests";
    for (std::string lib : t.links) {
      if (absl::StartsWith(lib, "$<LINK_ONLY:")) lib = lib.substr(12, lib.size() - 13);
      if (absl::StartsWith(lib, "leadflow::")) lib = "leadflow_" + lib.substr(10);
      auto it = module_of.find(lib);
      if (it != module_of.end()) {
        if (test_target && it->second == "tests") continue;
        edges.push_back({t.module, it->second, absl::StrCat("target ", t.name, " links ", lib)});
        continue;
      }
      if (test_target) continue;
      for (const auto& [prefix, name] : external) {
        if (!absl::StrContains(lib, prefix)) continue;
        for (const Adapter& a : Adapters()) {
          // The contract's generated gRPC stubs need gRPC to link; nothing includes them below
          // the edge (checked by the include rule).
          if (a.name == name && !a.allowed.count(t.module) && t.module != "proto") {
            adapter_violations->push_back(
                absl::StrCat("target ", t.name, " (", t.module, ") links ", lib, " directly"));
          }
        }
      }
    }
  }
  return edges;
}

// The checker itself can fail: each kind of violation is found in a made-up graph.
TEST(LayersTest, TheCheckerFindsEachKindOfViolation) {
  EXPECT_THAT(CheckOrder({{"services/config", "services/server", "config.h:19"}}),
              ::testing::ElementsAre(::testing::HasSubstr(
                  "config.h:19: services/config (layer 3) uses services/server (layer 6), a "
                  "higher layer")));
  EXPECT_THAT(CheckOrder({{"services/log", "services/storage", "a"},
                          {"services/storage", "services/log", "b"}}),
              ::testing::ElementsAre(::testing::HasSubstr("cycle: ")));
  EXPECT_THAT(CheckOrder({{"services/newthing", "services/common", "x.h:1"}}),
              ::testing::ElementsAre(::testing::HasSubstr("not in the layer table")));
  EXPECT_THAT(CheckOrder({{"services/server", "services/lead", "ok"},
                          {"services/lead", "services/common", "ok"},
                          {"projections/lead", "projections/customer", "ok"}}),
              ::testing::IsEmpty());
  EXPECT_EQ(ModuleOf("services/log/embedded_log.cc"), "services/log");
  EXPECT_EQ(ModuleOf("tests/support/sales_script.h"), "tests");
}

TEST(LayersTest, IncludesGoDownTheLayers) {
  const Tree tree = ReadTree(LEADFLOW_SOURCE_DIR);
  ASSERT_GT(tree.includes.size(), 200u) << "the source tree was not found";
  EXPECT_THAT(CheckOrder(tree.includes), ::testing::IsEmpty());
}

TEST(LayersTest, AdapterHeadersStayInTheirModules) {
  const Tree tree = ReadTree(LEADFLOW_SOURCE_DIR);
  EXPECT_THAT(tree.adapter_violations, ::testing::IsEmpty());
}

TEST(LayersTest, TargetLinksGoDownTheLayers) {
  const std::vector<Target> targets = ReadLinkGraph(LEADFLOW_LINK_GRAPH);
  ASSERT_GT(targets.size(), 20u) << LEADFLOW_LINK_GRAPH << " is missing: re-run cmake";
  std::vector<std::string> adapters;
  const std::vector<Edge> edges = LinkEdges(targets, &adapters);
  EXPECT_THAT(CheckOrder(edges), ::testing::IsEmpty());
  EXPECT_THAT(adapters, ::testing::IsEmpty());
}

}  // namespace
}  // namespace leadflow

// The benchmarks' heap, set up as `leadflow serve` sets up its own.
#ifndef LEADFLOW_TOOLS_BENCH_HEAP_PAGES_H_
#define LEADFLOW_TOOLS_BENCH_HEAP_PAGES_H_

#include <stdlib.h>

#include <string>

#include "absl/status/statusor.h"
#include "services/common/huge_pages.h"
#include "services/config/config.h"

namespace leadflow::bench {

// The heap on huge pages (common/huge_pages.h) unless LEADFLOW_STORAGE_HUGE_PAGES, the variable
// of `leadflow serve`'s storage.huge_pages, turns them off; read by serve's own option parser, so
// the same values mean the same thing and a bad one is an error. Call before any thread starts.
// Returns how the heap is set up, for the reports.
inline absl::StatusOr<std::string> HeapPagesFromEnv() {
  config::ConfigLoader loader(/*views=*/{});  // only the heap option is read
  absl::Status env = loader.ApplyEnvironment([](const char* name) -> const char* {
    return std::string(name) == "LEADFLOW_STORAGE_HUGE_PAGES" ? getenv(name) : nullptr;
  });
  if (!env.ok()) return env;
  absl::StatusOr<config::ServeConfig> serve = loader.Finish();
  if (!serve.ok()) return serve.status();
  if (!serve->huge_pages) return std::string("small pages (LEADFLOW_STORAGE_HUGE_PAGES)");
  return std::string(common::UseHugePages() ? "huge pages (transparent, madvise)"
                                            : "small pages (no tcmalloc in this build)");
}

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_HEAP_PAGES_H_

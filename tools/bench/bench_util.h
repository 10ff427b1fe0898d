// Shared by the benchmarks: the machine line at the top of every report, and percentiles.
#ifndef LEADFLOW_TOOLS_BENCH_BENCH_UTIL_H_
#define LEADFLOW_TOOLS_BENCH_BENCH_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace leadflow::bench {

// "2 cores, <CPU model>, <MemTotal>".
inline std::string Machine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string mem;
  std::getline(meminfo, mem);
  const size_t digits = mem.find_first_of("0123456789");
  return absl::StrCat(std::thread::hardware_concurrency(), " cores, ", model, ", ",
                      digits == std::string::npos ? "unknown memory" : mem.substr(digits));
}

// A new empty directory under the system's temp dir: /tmp/<name>-XXXXXX.
inline std::string TempDir(const std::string& name) {
  std::string tmpl = std::filesystem::temp_directory_path() / (name + "-XXXXXX");
  return mkdtemp(tmpl.data());
}

// Nearest-rank percentile (the ceil(p*n/100)-th smallest) of `values`, which it sorts; 0 if empty.
template <typename T>
T NearestRank(std::vector<T>& values, int p) {
  if (values.empty()) return T{};
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const size_t rank = std::max<size_t>(1, (static_cast<size_t>(p) * n + 99) / 100);
  return values[rank - 1];
}

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_BENCH_UTIL_H_

// The machine line at the top of every benchmark report.
#ifndef LEADFLOW_TOOLS_BENCH_MACHINE_H_
#define LEADFLOW_TOOLS_BENCH_MACHINE_H_

#include <fstream>
#include <string>
#include <thread>

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

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_MACHINE_H_

#include "services/common/kill_point.h"

#ifdef LEADFLOW_KILL_POINTS
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace leadflow::common {

void KillPoint(const char* name) {
  static const char* spec = std::getenv("LEADFLOW_KILL_POINT");
  if (spec == nullptr) return;
  static std::atomic<long> hits{0};
  const char* colon = std::strrchr(spec, ':');
  const size_t len = colon != nullptr ? static_cast<size_t>(colon - spec) : std::strlen(spec);
  if (std::strlen(name) != len || std::strncmp(spec, name, len) != 0) return;
  const long target = colon != nullptr ? std::atol(colon + 1) : 1;
  if (++hits == target) {
    const std::string msg = std::string("leadflow: kill point ") + name + " reached, SIGKILL\n";
    (void)!write(2, msg.data(), msg.size());
    kill(getpid(), SIGKILL);
  }
}

}  // namespace leadflow::common
#endif

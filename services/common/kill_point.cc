#include "services/common/kill_point.h"

#ifdef LEADFLOW_KILL_POINTS
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace leadflow::common {

namespace {

// "<name>:<number>" names this point: the number, else -1.
long Matches(const char* spec, const char* name) {
  if (spec == nullptr) return -1;
  const char* colon = std::strrchr(spec, ':');
  const size_t len = colon != nullptr ? static_cast<size_t>(colon - spec) : std::strlen(spec);
  if (std::strlen(name) != len || std::strncmp(spec, name, len) != 0) return -1;
  return colon != nullptr ? std::atol(colon + 1) : 1;
}

}  // namespace

void KillPoint(const char* name) {
  if (const long pause_ms = Matches(std::getenv("LEADFLOW_PAUSE_POINT"), name); pause_ms > 0) {
    usleep(static_cast<useconds_t>(pause_ms) * 1000);
  }
  static const char* spec = std::getenv("LEADFLOW_KILL_POINT");
  if (spec == nullptr) return;
  static std::atomic<long> hits{0};
  const long target = Matches(spec, name);
  if (target < 0) return;
  if (++hits == target) {
    const std::string msg = std::string("leadflow: kill point ") + name + " reached, SIGKILL\n";
    (void)!write(2, msg.data(), msg.size());
    kill(getpid(), SIGKILL);
  }
}

}  // namespace leadflow::common
#endif

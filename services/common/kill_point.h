// Test-only crash injection. With LEADFLOW_KILL_POINT="<name>:<n>" in the environment, the n-th
// time the named point is reached the process kills itself with SIGKILL, so tests can crash it
// inside the windows that matter (e.g. between "view rows computed" and "rows + offset written").
// Compiled in only when LEADFLOW_KILL_POINTS is defined (CMake option, on for test builds).
#ifndef LEADFLOW_SERVICES_COMMON_KILL_POINT_H_
#define LEADFLOW_SERVICES_COMMON_KILL_POINT_H_

namespace leadflow::common {

#ifdef LEADFLOW_KILL_POINTS
void KillPoint(const char* name);
#else
inline void KillPoint(const char*) {}
#endif

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_KILL_POINT_H_

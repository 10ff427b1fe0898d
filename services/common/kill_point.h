// Test-only fault injection at named points. With LEADFLOW_KILL_POINT="<name>:<n>" in the
// environment, the n-th time the named point is reached the process kills itself with SIGKILL,
// so tests can crash it inside the windows that matter (e.g. between "view rows computed" and
// "rows + offset written"). With LEADFLOW_PAUSE_POINT="<name>:<ms>", every time the named point
// is reached the thread sleeps that long (a slow disk, a lagging view); read at each visit, so a
// test may set it while the process runs. Compiled in only when LEADFLOW_KILL_POINTS is defined
// (CMake option, on for test builds).
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

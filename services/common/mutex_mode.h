// Abseil mutex deadlock detection for the shipped binaries.
//
// Debian's Abseil is built without NDEBUG, so every absl::Mutex (ours, and gRPC's, which uses
// Abseil's) records each lock acquisition in a global lock-order graph (GraphCycles) and every
// destruction removes it again. That is a debugging aid: the unit tests keep it on, where it
// catches lock-order inversions. The server and the benchmarks switch it off at start, because it
// costs every gRPC call a few graph updates under a global lock (profiled on the unary write path:
// GraphCycles::GetId and RemoveNode alone were 2.7 % of all samples; docs/benchmarks.md).
#ifndef LEADFLOW_SERVICES_COMMON_MUTEX_MODE_H_
#define LEADFLOW_SERVICES_COMMON_MUTEX_MODE_H_

#include "absl/synchronization/mutex.h"

namespace leadflow::common {

// Call first thing in main, before any thread starts.
inline void UseReleaseMutexes() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_MUTEX_MODE_H_

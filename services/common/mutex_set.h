// Locks a set of mutexes chosen at run time (the partitions one write touches), in the order
// given, and releases them in reverse when it goes out of scope.
//
// Clang's thread-safety analysis names locks by expression, so it cannot follow a set chosen at
// run time: this class (its constructor and destructor) is the one place in services/ and
// projections/ that turn the analysis off (docs/architecture.md). Code that then reads a guarded
// field of one of the locked partitions says which lock it relies on with `mu.AssertHeld()`
// (checked at run time, and from there on known to the analysis).
#ifndef LEADFLOW_SERVICES_COMMON_MUTEX_SET_H_
#define LEADFLOW_SERVICES_COMMON_MUTEX_SET_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace leadflow::common {

class MutexSet {
 public:
  // Callers lock sets in one global order (e.g. ascending partition), so two sets never
  // deadlock. Null entries are skipped. `mutexes` is not copied: it must outlive the set.
  // No analysis: it cannot name a set of locks chosen at run time (see above).
  explicit MutexSet(absl::Span<absl::Mutex* const> mutexes) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : mutexes_(mutexes) {
    for (absl::Mutex* mu : mutexes_) {
      if (mu != nullptr) mu->Lock();
    }
  }
  // To unlock early, hold it in a std::optional and reset it. No analysis: as above.
  ~MutexSet() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = mutexes_.rbegin(); it != mutexes_.rend(); ++it) {
      if (*it != nullptr) (*it)->Unlock();
    }
  }
  MutexSet(const MutexSet&) = delete;
  MutexSet& operator=(const MutexSet&) = delete;

 private:
  absl::Span<absl::Mutex* const> mutexes_;
};

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_MUTEX_SET_H_

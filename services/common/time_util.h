// Time conversions and the clock abstraction (injected so the domain stays pure and testable).
#ifndef LEADFLOW_SERVICES_COMMON_TIME_UTIL_H_
#define LEADFLOW_SERVICES_COMMON_TIME_UTIL_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace leadflow::common {

absl::Time FromProto(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp ToProto(absl::Time t);
// True if seconds/nanos are within google.protobuf.Timestamp's documented range.
bool IsValidTimestamp(const google::protobuf::Timestamp& ts);
// RFC 3339 in UTC with millisecond precision, e.g. "2026-11-23T14:05:00.000Z".
std::string Rfc3339(absl::Time t);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

// A clock that only moves when told to; for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_TIME_UTIL_H_

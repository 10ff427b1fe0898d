// Watches the free space of the filesystem that holds the data directory, so a process refuses
// writes cleanly (UNAVAILABLE, naming the cause) before the disk is completely full, and knows
// when there is room again to reopen a store that a write error stopped.
#ifndef LEADFLOW_SERVICES_STORAGE_DISK_GUARD_H_
#define LEADFLOW_SERVICES_STORAGE_DISK_GUARD_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace leadflow::storage {

class DiskGuard {
 public:
  // `reserve_bytes`: writes stop while less than this is free; 0 = 5 % of the filesystem, at
  // least 1 MiB and at most 256 MiB. `option` names the setting in messages.
  DiskGuard(std::string dir, uint64_t reserve_bytes = 0,
            std::string option = "storage.min_free_mb");
  // Reads the free space again (statvfs); cheap. The node calls it about once a second, and
  // after any write that failed for want of room.
  void Refresh();
  // OK, or UNAVAILABLE "disk full: <dir> has N MiB free, writes stop below M MiB ...". Reads
  // the last Refresh only (an atomic load): fine on every command.
  absl::Status CheckWritable() const;
  uint64_t free_bytes() const { return free_.load(std::memory_order_relaxed); }
  // A new reserve (0 = automatic), taken at the next Refresh (tests; a configuration reload).
  void set_reserve_bytes(uint64_t reserve) {
    configured_reserve_.store(reserve, std::memory_order_relaxed);
    Refresh();
  }
  uint64_t reserve_bytes() const { return reserve_.load(std::memory_order_relaxed); }

 private:
  std::string dir_;
  std::string option_;
  std::atomic<uint64_t> configured_reserve_;
  std::atomic<uint64_t> free_{UINT64_MAX};
  std::atomic<uint64_t> reserve_{0};
  std::atomic<bool> read_only_{false};  // the filesystem is mounted read-only
};

}  // namespace leadflow::storage

#endif  // LEADFLOW_SERVICES_STORAGE_DISK_GUARD_H_

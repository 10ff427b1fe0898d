#include "services/storage/disk_guard.h"

#include <sys/statvfs.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leadflow::storage {

DiskGuard::DiskGuard(std::string dir, uint64_t reserve_bytes, std::string option)
    : dir_(std::move(dir)), option_(std::move(option)), configured_reserve_(reserve_bytes) {
  Refresh();
}

void DiskGuard::Refresh() {
  struct statvfs fs;
  if (statvfs(dir_.c_str(), &fs) != 0) return;  // not there yet: keep the last reading
  const uint64_t total = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  free_.store(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize, std::memory_order_relaxed);
  read_only_.store((fs.f_flag & ST_RDONLY) != 0, std::memory_order_relaxed);
  uint64_t reserve = configured_reserve_.load(std::memory_order_relaxed);
  if (reserve == 0)
    reserve = std::clamp<uint64_t>(total / 20, uint64_t{1} << 20, uint64_t{256} << 20);
  reserve_.store(reserve, std::memory_order_relaxed);
}

absl::Status DiskGuard::CheckWritable() const {
  if (read_only_.load(std::memory_order_relaxed)) {
    return absl::UnavailableError(
        absl::StrCat("read-only disk: ", dir_,
                     " is on a filesystem mounted read-only; leadflow resumes "
                     "writing by itself once it is writable again"));
  }
  const uint64_t free = free_bytes(), reserve = reserve_bytes();
  if (free >= reserve) return absl::OkStatus();
  return absl::UnavailableError(absl::StrFormat(
      "disk full: %s has %.1f MiB free and writes stop below %.1f MiB (%s); free some space "
      "and leadflow resumes writing by itself",
      dir_, free / 1048576.0, reserve / 1048576.0, option_));
}

}  // namespace leadflow::storage

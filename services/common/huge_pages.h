// Backs tcmalloc's heap with transparent huge pages (2 MiB). The writer keeps every new lead's
// state and encodes thousands of events a second into fresh memory; with 4 KiB pages a large
// share of its time was page faults and tcmalloc carving fresh spans (docs/benchmarks.md,
// 2026-12-04: batched commands over gRPC 7-35 % faster in eight interleaved pairs).
//
// How: tcmalloc asks its system allocator for memory in large chunks; this one maps them
// 2 MiB-aligned and marks them MADV_HUGEPAGE, so the kernel (transparent_hugepage=madvise, the
// common default, or =always) backs them with huge pages. If the kernel has THP disabled the
// advice is ignored and nothing changes. Freed memory is still returned to the system
// (ReleaseFreeMemory splits a huge page where needed). The cost: resident memory grows in 2 MiB
// steps, a few MiB more than with small pages.
//
// Header-only: LEADFLOW_TCMALLOC is defined only for targets linked with tcmalloc (the
// binaries), so elsewhere UseHugePages() does nothing and returns false.
#ifndef LEADFLOW_SERVICES_COMMON_HUGE_PAGES_H_
#define LEADFLOW_SERVICES_COMMON_HUGE_PAGES_H_

#ifdef LEADFLOW_TCMALLOC
#include <gperftools/malloc_extension.h>
#include <sys/mman.h>

#include <cstdint>
#endif

namespace leadflow::common {

#ifdef LEADFLOW_TCMALLOC
namespace huge_pages_internal {

class HugePageSysAllocator final : public SysAllocator {
 public:
  explicit HugePageSysAllocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    constexpr size_t kHuge = size_t{2} << 20;
    if (alignment > kHuge || size == 0 || size > (size_t{1} << 40)) {
      return fallback_->Alloc(size, actual_size, alignment);
    }
    const size_t rounded = (size + kHuge - 1) & ~(kHuge - 1);
    // Map one huge page more than needed, then trim to a 2 MiB-aligned range.
    const size_t mapped = rounded + kHuge;
    void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return fallback_->Alloc(size, actual_size, alignment);
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
    const uintptr_t end = start + mapped;
    if (aligned > start) munmap(raw, aligned - start);
    if (end > aligned + rounded) {
      // Address arithmetic on a fresh mapping: the cast is the point.
      munmap(reinterpret_cast<void*>(aligned + rounded),  // NOLINT(performance-no-int-to-ptr)
             end - (aligned + rounded));
    }
    // Advice only: without THP support the memory is simply used with small pages.
    madvise(reinterpret_cast<void*>(aligned), rounded,  // NOLINT(performance-no-int-to-ptr)
            MADV_HUGEPAGE);
    if (actual_size != nullptr) *actual_size = rounded;
    return reinterpret_cast<void*>(aligned);  // NOLINT(performance-no-int-to-ptr)
  }

 private:
  SysAllocator* fallback_;
};

}  // namespace huge_pages_internal
#endif

// Call once, at the start of main, before threads start. Returns whether it was installed.
inline bool UseHugePages() {
#ifdef LEADFLOW_TCMALLOC
  static huge_pages_internal::HugePageSysAllocator* const allocator =
      new huge_pages_internal::HugePageSysAllocator(
          MallocExtension::instance()->GetSystemAllocator());
  MallocExtension::instance()->SetSystemAllocator(allocator);
  return true;
#else
  return false;
#endif
}

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_HUGE_PAGES_H_

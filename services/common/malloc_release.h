// Returns memory the allocator holds free to the operating system. tcmalloc keeps freed spans
// for reuse; under a churning workload (RocksDB memtable arenas and cache blocks, gRPC buffers,
// batch replies) that free memory grows into the resident size for a long time (docs/
// reliability.md, sustained load: 140 MiB free after 150 s). The binaries call this every few
// seconds. Header-only: LEADFLOW_TCMALLOC is defined only for targets linked with tcmalloc (the
// binaries), so libraries and tests compile it to nothing.
#ifndef LEADFLOW_SERVICES_COMMON_MALLOC_RELEASE_H_
#define LEADFLOW_SERVICES_COMMON_MALLOC_RELEASE_H_

#ifdef LEADFLOW_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

namespace leadflow::common {

inline void ReleaseFreeMemory() {
#ifdef LEADFLOW_TCMALLOC
  MallocExtension::instance()->ReleaseFreeMemory();
#endif
}

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_MALLOC_RELEASE_H_

// Rewrites every RocksDB database under a data directory (the log, the writer's command index,
// each view store) so that nothing deleted or overwritten is left in its files: each column
// family is flushed and fully compacted, and obsolete write-ahead logs and table files are
// removed. After an erasure (docs/security.md) this makes the scrubbed rows physically gone;
// `leadflow compact` runs it on a stopped data directory.
#ifndef LEADFLOW_SERVICES_STORAGE_COMPACT_H_
#define LEADFLOW_SERVICES_STORAGE_COMPACT_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::storage {

// The directories under `data_dir` holding a RocksDB database (a CURRENT file), sorted.
std::vector<std::string> FindDatabases(const std::string& data_dir);

// Compacts every database FindDatabases finds; `say` gets a line per database. FAILED_PRECONDITION
// if one is in use by a running process.
absl::Status CompactEverything(const std::string& data_dir,
                               const std::function<void(const std::string&)>& say);

// Every key and value of every column family of the database in `dir` (opened read-only, so
// what compression hides is decoded): `visit(family, key, value)`.
absl::Status ScanDatabase(
    const std::string& dir,
    const std::function<void(const std::string&, const std::string&, const std::string&)>& visit);

}  // namespace leadflow::storage

#endif  // LEADFLOW_SERVICES_STORAGE_COMPACT_H_

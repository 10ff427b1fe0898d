// The writer's record of acknowledged command ids, for idempotent retries: per (lead, command
// id) the command's fingerprint, type and serialized reply. Derived from the log (every event
// carries its command id and fingerprint), so it is rebuilt by the writer's start-up replay.
// In memory (tests, tools) it grows with every command ever acknowledged; on disk (RocksDB, the
// default of a node) the writer's memory stays flat however many commands it has seen.
#ifndef LEADFLOW_SERVICES_COMMAND_COMMAND_INDEX_H_
#define LEADFLOW_SERVICES_COMMAND_COMMAND_INDEX_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "leadflow/v1/commands.pb.h"
#include "services/storage/storage_budget.h"

namespace leadflow::command {

struct CommandRecord {
  std::string fingerprint;
  std::string type;
  std::string reply;  // serialized CommandReply

  v1::CommandReply Replayed() const;
};

class CommandIndex {
 public:
  virtual ~CommandIndex() = default;
  // Thread-safe. Stores the records of one commit group in one write (on disk: one
  // WriteBatch), all or none. A failure is reported; the records are then missing until the next
  // start's replay restores them (a retry meanwhile is decided again: still exactly once, see
  // writer.cc).
  virtual absl::Status PutMany(
      const std::vector<std::pair<std::string, CommandRecord>>& records) = 0;
  virtual absl::StatusOr<std::optional<CommandRecord>> Get(const std::string& key) const = 0;
};

// Keys are "<lead id>/<command id>"; a lead id is "ld_" and 20 hex digits (common/ids.h).
inline constexpr size_t kCommandIndexPrefixLength = 23;

std::unique_ptr<CommandIndex> NewMemoryCommandIndex();
// A RocksDB store in `dir`, emptied first (the replay refills it). New records stay in memory
// until they reach `spill_bytes`; then a background thread sorts them into one table file that
// the store ingests (no WAL, no memtable: a crash loses nothing the replay cannot rebuild). So the
// index holds at most twice `spill_bytes` in memory (the records filling up and the ones being
// written). It uses `budget`'s block cache if given, else a block cache of `cache_bytes`.
absl::StatusOr<std::unique_ptr<CommandIndex>> OpenDiskCommandIndex(
    const std::string& dir, const storage::StorageBudget& budget = {},
    size_t cache_bytes = 16 << 20, size_t spill_bytes = 16 << 20);

}  // namespace leadflow::command

#endif  // LEADFLOW_SERVICES_COMMAND_COMMAND_INDEX_H_

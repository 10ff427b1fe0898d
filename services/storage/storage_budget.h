// One memory budget for every RocksDB database of a process: the embedded log, the writer's
// command index and each view store share one block cache and one memtable budget, so the
// process's RocksDB memory is bounded by two numbers however many databases and column families
// it opens (13 column families with RocksDB's defaults could hold 1.6 GiB of memtables).
#ifndef LEADFLOW_SERVICES_STORAGE_STORAGE_BUDGET_H_
#define LEADFLOW_SERVICES_STORAGE_STORAGE_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rocksdb {
class Cache;
class WriteBufferManager;
struct DBOptions;
struct BlockBasedTableOptions;
}  // namespace rocksdb

namespace leadflow::storage {

struct StorageBudgetOptions {
  // Block cache shared by all databases (data, index and filter blocks), in bytes.
  size_t block_cache_bytes = size_t{256} << 20;
  // All memtables of all databases together, in bytes. When they reach it, RocksDB flushes the
  // largest one to disk (writes do not stall).
  size_t memtable_bytes = size_t{128} << 20;
  // Writes stop (commands refused, views wait) while the data directory's disk has less free
  // space than this, in bytes; 0 = 5 % of the disk, at least 1 MiB and at most 256 MiB
  // (storage/disk_guard.h).
  uint64_t min_free_bytes = 0;
};

struct StorageBudget {
  std::shared_ptr<rocksdb::Cache> block_cache;
  std::shared_ptr<rocksdb::WriteBufferManager> memtables;

  // Memtable bytes currently held, and block cache bytes in use (for metrics).
  size_t memtable_usage() const;
  size_t block_cache_usage() const;
};

StorageBudget MakeStorageBudget(const StorageBudgetOptions& options);

// Points `db` and `table` at the budget. A default-constructed (empty) budget leaves them as
// they are, so a database opened alone (tests, tools) keeps its own cache of
// `fallback_cache_bytes`.
void ApplyStorageBudget(const StorageBudget& budget, size_t fallback_cache_bytes,
                        rocksdb::DBOptions* db, rocksdb::BlockBasedTableOptions* table);

}  // namespace leadflow::storage

#endif  // LEADFLOW_SERVICES_STORAGE_STORAGE_BUDGET_H_

#include "services/storage/storage_budget.h"

#include "rocksdb/cache.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"

namespace leadflow::storage {

StorageBudget MakeStorageBudget(const StorageBudgetOptions& options) {
  StorageBudget budget;
  budget.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // Not charged to the block cache: the two budgets stay separate and each is what it says.
  budget.memtables = std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes);
  return budget;
}

size_t StorageBudget::memtable_usage() const { return memtables ? memtables->memory_usage() : 0; }

size_t StorageBudget::block_cache_usage() const {
  return block_cache ? block_cache->GetUsage() : 0;
}

void ApplyStorageBudget(const StorageBudget& budget, size_t fallback_cache_bytes,
                        rocksdb::DBOptions* db, rocksdb::BlockBasedTableOptions* table) {
  table->block_cache =
      budget.block_cache ? budget.block_cache : rocksdb::NewLRUCache(fallback_cache_bytes);
  if (budget.memtables) db->write_buffer_manager = budget.memtables;
}

}  // namespace leadflow::storage

// The raw RocksDB baseline of the rebuild figures (view_bench, suite_bench): batched Puts of
// one row per event, nothing else.
#ifndef LEADFLOW_TOOLS_BENCH_RAW_PUT_H_
#define LEADFLOW_TOOLS_BENCH_RAW_PUT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace leadflow::bench {

// Writes `rows` rows of `row_bytes` bytes under scattered lead-like keys, 2,000 per WriteBatch,
// with `options`; returns the seconds it took.
inline absl::StatusOr<double> TimedBatchedPut(rocksdb::DB* db, int64_t rows, size_t row_bytes,
                                              const rocksdb::WriteOptions& options) {
  const std::string value(row_bytes, 'r');
  const absl::Time t0 = absl::Now();
  rocksdb::WriteBatch wb;
  for (int64_t i = 0; i < rows; ++i) {
    (void)wb.Put(absl::StrCat("ld_", absl::Hex(i * 2654435761u, absl::kZeroPad16)), value);
    if (wb.Count() == 2000 || i + 1 == rows) {
      rocksdb::Status s = db->Write(options, &wb);
      if (!s.ok()) return absl::InternalError(absl::StrCat("raw put: ", s.ToString()));
      wb.Clear();
    }
  }
  return absl::ToDoubleSeconds(absl::Now() - t0);
}

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_RAW_PUT_H_

// The benchmark's peer: the same job done the way many teams would build it on PostgreSQL.
//
//   events   (global_seq bigserial, partition_key, aggregate_id, aggregate_version, event_type,
//             occurred_at, payload bytea), UNIQUE (aggregate_id, aggregate_version): the per-lead
//             (per-aggregate) version constraint that makes concurrent writers safe;
//   commands (command_id primary key): client command ids, for idempotent retries;
//   leads    (lead_id primary key, version, owner, source_channel, and the times the lead was
//             captured, contacted, qualified, presented, sent a proposal, converted, rejected),
//             index on captured_at: the lead table the funnel queries read.
//
// A batch of commands is one transaction: load the streams of the leads it touches (SELECT the
// events by partition key), decide each command with leadflow's own reducer (the same rules, so
// both systems do the same work), then COPY the new events and command ids and upsert the lead
// rows, and COMMIT (synchronous_commit on, fsync on: durable like leadflow's fsync'd log).
// Rebuild replays the events table (a cursor in global order) into a fresh lead table. The
// cohort funnel is one SQL query over the lead table: leads captured in the range, how many
// reached contacted / qualified / converted (a later milestone counts the earlier ones as
// reached, as leadflow's funnel does) and the median and p90 times between them.
#ifndef LEADFLOW_TOOLS_BENCH_PG_PEER_H_
#define LEADFLOW_TOOLS_BENCH_PG_PEER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leadflow/v1/commands.pb.h"
#include "tools/bench/suite_proc.h"

namespace leadflow::bench {

struct PgServerOptions {
  std::string dir;       // data directory (created by initdb)
  std::string log_path;  // server log
  int port = 0;          // on 127.0.0.1
  int shared_buffers_mb = 256;
};

// A PostgreSQL server from Debian's package, initialized and started for the benchmark and
// stopped when this object goes away.
class PgServer {
 public:
  static absl::StatusOr<std::unique_ptr<PgServer>> Start(const PgServerOptions& options);
  ~PgServer();
  ChildExit Stop();
  std::string conninfo() const;
  std::string version() const { return version_; }
  const PgServerOptions& options() const { return options_; }

 private:
  PgServerOptions options_;
  Child child_;
  std::string version_;
};

struct PgCounts {
  int64_t accepted = 0;
  int64_t refused = 0;
  int64_t events = 0;
  std::string first_refusal;
};

struct PgFunnel {
  int64_t captured = 0, contacted = 0, qualified = 0, converted = 0;
  double median_days_to_convert = 0;
  // Seconds; 0 when no lead reached both milestones.
  double median_to_contact_s = 0, median_contact_to_qualify_s = 0, p90_to_convert_s = 0;
};

class PgPeer {
 public:
  static absl::StatusOr<std::unique_ptr<PgPeer>> Connect(const std::string& conninfo);
  ~PgPeer();
  absl::Status CreateSchema();
  // One transaction; commands of a lead in order.
  absl::Status IngestBatch(const google::protobuf::RepeatedPtrField<v1::Command>& commands,
                           PgCounts& counts);
  // Replays the events table into a fresh lead table; returns the events replayed.
  absl::StatusOr<int64_t> Rebuild();
  absl::StatusOr<PgFunnel> CohortFunnel(absl::Time from, absl::Time to);
  absl::StatusOr<uint64_t> DatabaseBytes();

  struct Impl;

 private:
  explicit PgPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_PG_PEER_H_

// The write side: a single writer for the partitions it owns. It keeps every lead's and
// customer's state in memory (rebuilt from the log on start), validates each command with the
// reducer, appends the resulting events in one atomic append, and only then updates its state,
// so a command's reply always reflects what is durably in the log.
//
// Idempotency: a command id is scoped to its lead (the partition key). A retry with the same id
// and the same command returns the original reply (replayed=true) and writes nothing; the same id
// with a different command is refused with ALREADY_EXISTS. The records survive restarts because
// every event carries its command id and a fingerprint of the command.
#ifndef LEADFLOW_SERVICES_COMMAND_WRITER_H_
#define LEADFLOW_SERVICES_COMMAND_WRITER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "services/lead/reducer.h"
#include "leadflow/v1/commands.pb.h"
#include "services/common/time_util.h"
#include "services/lead/state.h"
#include "services/command/command_index.h"
#include "services/command/contact_registry.h"
#include "services/log/event_log.h"
#include "services/log/witness.h"
#include "services/privacy/vault.h"
#include "services/storage/disk_guard.h"

namespace leadflow::command {

struct WriterOptions {
  // Partitions this writer owns; empty = every partition of the log. A command for a lead on a
  // partition it does not own is refused with FAILED_PRECONDITION.
  std::vector<int32_t> partitions;
  // Called during start-up replay after each chunk of records: (partition, offset, end).
  std::function<void(int32_t, int64_t, int64_t)> replay_progress;
  // Where acknowledged command ids are kept for retries (command_index.h): a directory for an
  // on-disk index (emptied and rebuilt by the replay at every start; the node uses
  // <data-dir>/writer/commands), or empty for memory, which grows with every command.
  std::string command_index_dir;
  // Memory of the on-disk index (shared block cache and memtable budget); empty: its own.
  storage::StorageBudget command_index_budget = {};
  // Called after each append (records written, how long it took) and after each log sync (how
  // long it took; the appends before it are then durable); for metrics.
  std::function<void(int, absl::Duration)> on_append;
  std::function<void(absl::Duration)> on_sync;
  // The deployment's lead id key (common::LeadIdScheme; the node keeps it in
  // <data-dir>/writer/ids.key). Empty: a random key for this writer only (tests and tools that
  // do not care which ids new leads get).
  std::string id_key;
  // Region of phone numbers written without a country code ("GB"); empty: they need one.
  std::string phone_region;
  // The free space of the data directory's disk (storage/disk_guard.h): while it is below its
  // reserve, commands are refused with UNAVAILABLE naming the cause. Not owned; may be null.
  storage::DiskGuard* disk = nullptr;
  // The writer's witness of the log (services/log/witness.h), rewritten after each sync. At
  // start (and after a storage recovery) a partition whose log ends before a witness, or holds
  // another record where a witness saw one, lost acknowledged events: it refuses commands with
  // DATA_LOSS naming the partition, the last good offset and the witness. Empty: none.
  std::string witness_path;
  // Other witnesses of the same log checked at start (the views of this process: name, marks).
  std::vector<std::pair<std::string, std::vector<log::PartitionMark>>> other_witnesses;
  // The operator accepts such a loss (leadflow serve --accept-data-loss): the partitions go on
  // with what the log holds, the witness is reset to it, and the loss is written to
  // accepted-losses.log beside the witness and reported through `say`.
  bool accept_data_loss = false;
  std::function<void(const std::string&)> say;
  // Crypto-shredding (services/privacy/vault.h): personal fields are sealed with each lead's
  // data key before they reach the log, opened at replay, and EraseLead destroys the key in
  // the erasure's append. Null: events are written in clear and EraseLead is refused. Not owned.
  privacy::Vault* vault = nullptr;
};

// A lead as the writer knows it (state inspection; queries are served by the views).
struct LeadSnapshot {
  lead::LeadState lead;
  lead::CustomerState customer;
};

struct PartitionHealth {
  int32_t partition = 0;
  int64_t next_offset = 0;  // offset after the last event applied
  absl::Status status;      // OK, or why this partition refuses commands
};

class CommandWriter {
 public:
  // Replays the owned partitions of `log` from offset 0. A partition whose log cannot be decoded
  // or applied is reported in Health() and refuses commands; the others serve.
  static absl::StatusOr<std::unique_ptr<CommandWriter>> Open(log::EventLog* log,
                                                             common::Clock* clock,
                                                             WriterOptions options);
  ~CommandWriter();

  using Done = std::function<void(absl::StatusOr<v1::CommandReply>)>;

  // Queues one command for its partition and returns at once; `done` runs on the writer's sync
  // thread when the command is decided and, if accepted, durably appended. Commands queued while
  // the committer is busy are decided in arrival order per partition and appended together, all
  // partitions in one append (group commit). The committer then goes on to the next group while
  // the sync thread makes the last ones durable (one fsync for every group written meanwhile)
  // and answers them. `command` must stay alive until `done` runs.
  void Submit(const v1::Command& command, Done done);

  // Submit and wait.
  absl::StatusOr<v1::CommandReply> Execute(const v1::Command& command);

  // Many commands, one result each, in order. Commands on the same lead see each other in order
  // (a capture then an assignment in one batch works); each partition's share is one append.
  // A refused command does not stop the others. At most kMaxBatch commands.
  std::vector<absl::StatusOr<v1::CommandReply>> ExecuteBatch(
      absl::Span<const v1::Command* const> commands);
  std::vector<absl::StatusOr<v1::CommandReply>> ExecuteBatch(
      absl::Span<const v1::Command> commands);
  static constexpr size_t kMaxBatch = 10000;

  // NOT_FOUND if the writer has no such lead; INVALID_ARGUMENT for a malformed id.
  absl::StatusOr<LeadSnapshot> GetLead(const std::string& lead_id) const;

  std::vector<PartitionHealth> Health() const;

  // True if storage failed under the writer (a full disk, a failed log write or sync, a
  // command index that could not be opened or written) and Recover() is due.
  bool NeedsRecovery() const;
  // Once the cause is gone: reopens the log and the command index and rebuilds the state from
  // the log (commands wait meanwhile), so commands are taken again without a restart. UNAVAILABLE
  // with the cause while it is not (the node's supervisor retries every few seconds).
  absl::Status Recover();
  int64_t replayed_events() const;

  struct Partition;
  struct Pending;
  struct Committer;

 private:
  void CommitLoop(Committer& c);
  void SyncLoop(Committer& c);
  // Log().Sync() for commands decided and written before it; on failure their outcome is
  // unknown: accepted results become UNAVAILABLE and every partition refuses commands until a
  // restart (whose replay finds whatever reached the log).
  // `marks`: where the appends it covers ended, for the witness once they are durable.
  absl::Status SyncLog(const std::vector<std::pair<int32_t, log::PartitionMark>>& marks = {});
  static absl::StatusOr<v1::CommandReply> AfterSync(absl::StatusOr<v1::CommandReply> result,
                                                    const absl::Status& synced);
  CommandWriter(log::EventLog* log, common::Clock* clock, WriterOptions options);
  // (Re)opens the command index (emptied: the replay refills it).
  absl::Status OpenIndex();
  absl::Status Replay(Partition& p);
  absl::StatusOr<Partition*> Route(const lead::CommandTarget& target) const;
  // Contacts of the new leads a batch's earlier captures make, so its later captures of the same
  // contacts find them (Admit).
  struct BatchContacts;
  // Resolves and routes a command: everything it needs before it can be queued for its
  // partition. A capture of a contact some lead holds goes to that lead.
  absl::StatusOr<Partition*> Admit(const v1::Command& command, Pending& pending,
                                   BatchContacts* batch = nullptr) const;
  // The lead a capture addresses: the one holding its email, else its phone, else a new lead's
  // scheme-2 id (one no lead has).
  void RouteCapture(lead::CommandTarget& target, BatchContacts* batch) const;
  struct Prepared;
  struct Group;
  void Prepare(Prepared& prep, absl::Time now, Group& group);
  void Complete(Prepared& prep, const absl::StatusOr<log::AppendResult>& appended);
  // Decides and appends every command of `preps` (one append for all). Commands that must be
  // routed again (a capture whose contact another lead took meanwhile) are marked requeue.
  void CommitGroups(std::vector<Prepared>& preps,
                    std::vector<std::pair<int32_t, log::PartitionMark>>* marks);
  // The witness checks at start and after a recovery (WriterOptions::witness_path): the damage
  // found on `partition`, if any (OK when accepted: then it is reported and recorded).
  absl::Status CheckWitnesses(int32_t partition, std::vector<int32_t>* accepted);
  // May a capture admitted for `target` be decided on `lead` (its state now)? Yes if the lead
  // holds one of its contacts (an inquiry), or if it does not exist and no lead holds them (a
  // new lead). Else it must be routed again.
  bool CaptureStillRoutes(const lead::CommandTarget& target, const lead::LeadState& lead,
                          const Group& group) const;
  Partition* Owned(int32_t partition) const;

  log::EventLog* log_;
  common::Clock* clock_;
  WriterOptions options_;
  common::LeadIdScheme ids_;
  lead::Identity identity_;  // ids_ and the phone region
  ContactRegistry contacts_;
  std::unique_ptr<log::WitnessFile> witness_;           // null without WriterOptions::witness_path
  std::unique_ptr<CommandIndex> index_;                 // shared by the partitions
  std::vector<std::unique_ptr<Partition>> partitions_;  // indexed by partition number
  // Every owned partition's lock, in ascending partition order (the one global lock order), for
  // a common::MutexSet over all of them (set once in Open).
  std::vector<absl::Mutex*> partition_locks_;
  // The one committer (and its sync thread) of every owned partition: one append, one fsync
  // for every queued command.
  std::unique_ptr<Committer> committer_;
  std::atomic<int64_t> replayed_events_{0};
  std::atomic<bool> purge_keys_due_{false};  // an erasure since the last key store purge
};

// Hex SHA-256 prefix (32 digits) of the command's serialization: equal commands, equal prints.
std::string CommandFingerprint(const v1::Command& command);

}  // namespace leadflow::command

#endif  // LEADFLOW_SERVICES_COMMAND_WRITER_H_

#include "services/command/writer.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/common/ids.h"
#include "services/common/kill_point.h"
#include "services/common/mutex_set.h"
#include "services/common/status_util.h"
#include "services/common/text.h"
#include "services/lead/reducer.h"
#include "services/log/event_codec.h"
#include "services/privacy/sealer.h"

namespace leadflow::command {

namespace {

// The command index's key of a command: the lead it went to (for a capture: the lead id of its
// contact) and its command id.
std::string CommandKey(const common::LeadId& lead, const common::CommandId& command) {
  return absl::StrCat(lead.value(), "/", command.value());
}

constexpr size_t kReplayChunk = 4096;
// How often a command may be routed again before it is refused (ABORTED, retry).
constexpr int kMaxRequeues = 3;

// What a capture's command id is scoped to: its contact (the scheme-2 id of its email, else its
// phone), not the lead it was routed to, which can change with the contact's holder. So a retry
// of a capture is recognised as one even if the lead it made has changed its email since.
std::string ContactId(const common::LeadIdScheme& ids, const std::string& email,
                      const std::string& phone) {
  return !email.empty() ? ids.ForEmail(email) : ids.ForPhone(phone);
}

}  // namespace

std::string CommandFingerprint(const v1::Command& command) {
  // The serialization goes into a buffer the thread keeps, so hashing allocates nothing but the
  // result. (Deterministic for one build: the same command, the same bytes.)
  thread_local std::string bytes;
  bytes.clear();
  command.SerializeToString(&bytes);
  return common::Sha256Hex(bytes, 32);
}

struct CommandWriter::Pending {
  const v1::Command* command = nullptr;
  lead::CommandTarget target;
  // Set by CommitGroups when the command must be routed again (a capture whose contact another
  // lead took after it was admitted); it was not decided.
  bool requeue = false;
  int requeues = 0;
  // CommandFingerprint(*command), computed on the submitting thread before the command is
  // queued, so the committer (which serializes every partition's work) does not spend time on it.
  std::string fingerprint;
  // CommandKey(lead, command id), or empty without a command id; also computed at admission.
  std::string command_key;
  absl::StatusOr<v1::CommandReply> result = absl::UnknownError("not executed");
};

struct Queued {
  CommandWriter::Pending pending;
  CommandWriter::Done done;
};

struct CommandWriter::Committer {
  absl::Mutex mu;
  absl::CondVar wake;
  bool work ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  std::vector<Partition*> partitions;
  std::thread thread;

  // Groups decided and written, waiting for the log's Sync() before they are answered.
  absl::Mutex sync_mu;
  absl::CondVar sync_wake;
  std::vector<std::unique_ptr<Queued>> to_sync ABSL_GUARDED_BY(sync_mu);
  // Where the groups in to_sync ended on each partition (for the witness, once synced).
  std::vector<std::pair<int32_t, log::PartitionMark>> to_sync_marks ABSL_GUARDED_BY(sync_mu);
  bool sync_stop ABSL_GUARDED_BY(sync_mu) = false;
  std::thread sync_thread;
};

struct CommandWriter::Partition {
  int32_t id = 0;
  mutable absl::Mutex mu;
  // node maps: states are large, and rehashing must not move them.
  absl::node_hash_map<std::string, lead::LeadState> leads ABSL_GUARDED_BY(mu);
  absl::node_hash_map<std::string, lead::CustomerState> customers ABSL_GUARDED_BY(mu);
  CommandIndex* commands = nullptr;           // the writer's, shared (thread-safe)
  ContactRegistry* contacts = nullptr;        // the writer's, shared (thread-safe)
  const common::LeadIdScheme* ids = nullptr;  // the writer's
  int64_t next_offset ABSL_GUARDED_BY(mu) = 0;
  // Not OK: the partition's log could not be applied (damage, a bug); commands are refused with
  // this status until the operator repairs it.
  absl::Status status ABSL_GUARDED_BY(mu);
  // Not OK: storage failed under it (a failed log sync, a command index that could not be
  // written: a full disk); commands are refused with this status until CommandWriter::Recover
  // has reopened the storage and rebuilt the state from the log.
  absl::Status storage_error ABSL_GUARDED_BY(mu);
  // An append failed with an unknown outcome: re-read the log tail before the next command.
  bool resync ABSL_GUARDED_BY(mu) = false;

  // Commands submitted and not yet taken by the committer.
  absl::Mutex queue_mu ABSL_ACQUIRED_BEFORE(mu);
  std::vector<std::unique_ptr<Queued>> queue ABSL_GUARDED_BY(queue_mu);
  CommandWriter::Committer* committer = nullptr;

  // Reply to one command whose events are `events`, from the states right after them. Live
  // commits and replay both build replies here, so a retry after a restart gets the same reply.
  v1::CommandReply BuildReply(absl::Span<const v1::Event* const> events,
                              const lead::LeadState* lead, const lead::CustomerState* customer,
                              int64_t last_offset) const {
    const v1::Event& first = *events.front();
    v1::CommandReply reply;
    reply.set_lead_id(first.partition_key());
    if (lead != nullptr && lead->exists) {
      reply.set_lead_version(lead->version);
      if (first.has_inquiry_received() && lead->status == v1::LEAD_STATUS_MERGED) {
        reply.set_merged_into(lead->merged_into);
      }
    }
    if (customer != nullptr && customer->exists) {
      reply.set_customer_id(customer->customer_id);
      reply.set_customer_version(customer->version);
    }
    reply.set_deduplicated(first.command_type() == "capture_lead" && first.has_inquiry_received());
    if (first.has_inquiry_received()) {
      reply.set_notify_owner(first.inquiry_received().notify_owner());
    }
    for (const v1::Event* e : events) reply.add_event_ids(e->event_id());
    reply.mutable_last_position()->set_partition(id);
    reply.mutable_last_position()->set_offset(last_offset);
    return reply;
  }

  // Moves next_offset past a committed command and returns its index record (its reply, for
  // retries). RecordMany stores them.
  // `key` is CommandKey(lead, command id) of the events.
  std::pair<std::string, CommandRecord> AdvancePastAndRecord(
      std::string key, absl::Span<const v1::Event* const> events, const v1::CommandReply& reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const v1::Event& first = *events.front();
    next_offset = std::max(next_offset, reply.last_position().offset() + 1);
    return {std::move(key), CommandRecord{first.command_fingerprint(), first.command_type(),
                                          reply.SerializeAsString()}};
  }
  // Records a commit group's commands in one index write.
  void RecordMany(const std::vector<std::pair<std::string, CommandRecord>>& records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (records.empty()) return;
    absl::Status put = commands == nullptr ? absl::UnavailableError("the command index is not open")
                                           : commands->PutMany(records);
    if (!put.ok() && storage_error.ok()) {
      // Without the record a retry could apply twice: refuse commands until Recover() has
      // rebuilt the index from the log.
      storage_error = absl::UnavailableError(
          absl::StrCat("cannot record command ids (", put.message(),
                       "); commands resume once the storage takes writes again"));
    }
  }

  // Replay: applies the events of one command (in the log up to `last_offset`) to the state.
  absl::Status Apply(const std::vector<v1::Event>& events, int64_t last_offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const std::string& lead_id = events.front().partition_key();
    // Only these commands change who holds which contact (contacts.h).
    const std::string& type = events.front().command_type();
    const bool contacts_change =
        type == "capture_lead" || type == "update_contact_details" || type == "merge_lead";
    lead::LeadContacts before;
    if (contacts_change) {
      if (auto l = leads.find(lead_id); l != leads.end())
        before = lead::LeadContacts::Of(l->second);
    }
    for (const v1::Event& e : events) {
      if (e.partition_key() != lead_id || e.command_id() != events.front().command_id()) {
        return absl::InternalError("one command's events must share key and command id");
      }
      if (e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER) {
        LEADFLOW_RETURN_IF_ERROR(lead::EvolveCustomer(customers[e.aggregate_id()], e));
      } else {
        LEADFLOW_RETURN_IF_ERROR(lead::EvolveLead(leads[e.aggregate_id()], e));
      }
    }
    auto l = leads.find(lead_id);
    if (contacts_change && l != leads.end()) {
      contacts->Apply(before, lead::LeadContacts::Of(l->second));
    }
    auto c = customers.find(common::CustomerIdForLead(common::LeadId(lead_id)).value());
    std::vector<const v1::Event*> pointers;
    pointers.reserve(events.size());
    for (const v1::Event& e : events) pointers.push_back(&e);
    // A capture's record is keyed by its contact (see ContactId), other commands' by their lead.
    std::string record_lead = lead_id;
    if (type == "capture_lead") {
      const v1::Event& first = events.front();
      record_lead =
          first.has_lead_captured()
              ? ContactId(*ids, first.lead_captured().email(), first.lead_captured().phone())
              : ContactId(*ids, first.inquiry_received().email(), first.inquiry_received().phone());
    }
    RecordMany({AdvancePastAndRecord(
        CommandKey(common::LeadId(record_lead), common::CommandId(events.front().command_id())),
        pointers,
        BuildReply(pointers, l != leads.end() ? &l->second : nullptr,
                   c != customers.end() ? &c->second : nullptr, last_offset))});
    return absl::OkStatus();
  }
};

// One partition's share of a commit: its commands decided against staged state, and the
// messages to append. Staged state is what the group changes, copied on first touch, so later
// commands of the group see earlier ones; it replaces the partition's state after the append.
struct CommandWriter::Prepared {
  struct Decided {
    Pending* pending;
    std::vector<v1::Event*> events;  // on `arena`
    v1::CommandReply reply;          // positions filled in after the append
    // The events as BuildReply and Recorded read them (no copy: T** converts to const T* const*).
    absl::Span<const v1::Event* const> view() const { return {events.data(), events.size()}; }
  };
  // The group's events: one arena, dropped with the group, instead of a heap allocation per
  // message and string (a unique_ptr: Prepared is moved, an Arena cannot be).
  std::unique_ptr<google::protobuf::Arena> arena = MakeArena();
  static std::unique_ptr<google::protobuf::Arena> MakeArena() {
    google::protobuf::ArenaOptions o;
    o.start_block_size = 8 << 10;
    o.max_block_size = 1 << 20;
    return std::make_unique<google::protobuf::Arena>(o);
  }
  Partition* partition = nullptr;
  std::vector<Pending*> group;
  absl::flat_hash_map<std::string, lead::LeadState> staged_leads;
  absl::flat_hash_map<std::string, lead::CustomerState> staged_customers;
  absl::flat_hash_map<std::string, std::pair<std::string, size_t>> staged_commands;  // fp, idx
  std::vector<Decided> decided;
  std::vector<std::pair<Pending*, size_t>> in_group_replays;  // (retry, index into decided)
  std::vector<log::Message> messages;
  // Who-holds-which-contact changes of the decided commands, in order; written to the registry
  // once the group's append succeeded.
  std::vector<std::pair<lead::LeadContacts, lead::LeadContacts>> contact_changes;
  // Data keys made for this group's new leads (kept once the append succeeded), the key
  // records its append carries (new keys, destroyed keys), and the leads it erases.
  absl::flat_hash_map<std::string, std::string> new_keys;
  std::vector<log::KeyRecord> key_records;
  std::vector<std::string> erased;
};

// What the partitions of one CommitGroups share: the group's contact changes so far, and each
// partition's staged state (a merge reads its survivor's, wherever it lives).
struct CommandWriter::Group {
  explicit Group(ContactRegistry* registry) : contacts(registry) {}
  ContactOverlay contacts;
  absl::flat_hash_map<int32_t, Prepared*> by_partition;
};

// See writer.h.
struct CommandWriter::BatchContacts {
  absl::flat_hash_map<std::string, std::string> holder;  // contact key -> new lead id
  absl::flat_hash_set<std::string> new_leads;
};

CommandWriter::CommandWriter(log::EventLog* log, common::Clock* clock, WriterOptions options)
    : log_(log),
      clock_(clock),
      options_(std::move(options)),
      ids_(options_.id_key.empty() ? common::NewIdKey() : options_.id_key),
      identity_{.ids = &ids_, .phone_region = options_.phone_region} {}

CommandWriter::~CommandWriter() {
  if (committer_ == nullptr) return;
  Committer& c = *committer_;
  {
    absl::MutexLock lock(&c.mu);
    c.stop = true;
    c.wake.Signal();
  }
  c.thread.join();
  // The committer has handed over everything it decided: the sync thread answers it, then stops.
  {
    absl::MutexLock lock(&c.sync_mu);
    c.sync_stop = true;
    c.sync_wake.Signal();
  }
  c.sync_thread.join();
}

absl::Status CommandWriter::SyncLog(
    const std::vector<std::pair<int32_t, log::PartitionMark>>& marks) {
  common::KillPoint("writer.before_sync");  // written, not yet durable nor answered
  const absl::Time start = absl::Now();
  absl::Status synced = log_->Sync();
  if (synced.ok()) {
    if (options_.on_sync) options_.on_sync(absl::Now() - start);
    // Durable now: the witness may say so. A witness that cannot be written only checks less.
    if (witness_ != nullptr && !marks.empty()) witness_->Advance(marks).IgnoreError();
    return synced;
  }
  for (auto& p : partitions_) {
    if (!p) continue;
    absl::MutexLock lock(&p->mu);
    if (p->storage_error.ok()) {
      p->storage_error = absl::UnavailableError(
          absl::StrCat(synced.message(),
                       " (the last appends may not be durable); commands resume once the "
                       "log takes writes again (leadflow retries by itself)"));
    }
  }
  return synced;
}

absl::StatusOr<v1::CommandReply> CommandWriter::AfterSync(absl::StatusOr<v1::CommandReply> result,
                                                          const absl::Status& synced) {
  // Refusals wrote nothing and stand; an accepted command whose sync failed may or may not be in
  // the log: the client retries it with the same command id once the writer is back.
  if (synced.ok() || !result.ok()) return result;
  return absl::UnavailableError(absl::StrCat(
      "outcome unknown: ", synced.message(),
      "; retry with the same command id once the log takes writes again (it is never applied "
      "twice)"));
}

void CommandWriter::SyncLoop(Committer& c) {
  while (true) {
    std::vector<std::unique_ptr<Queued>> group;
    std::vector<std::pair<int32_t, log::PartitionMark>> marks;
    bool stop = false;
    {
      absl::MutexLock lock(&c.sync_mu);
      while (c.to_sync.empty() && !c.sync_stop) c.sync_wake.Wait(&c.sync_mu);
      group.swap(c.to_sync);
      marks.swap(c.to_sync_marks);
      stop = c.sync_stop;
    }
    if (!group.empty()) {
      // Every group handed over so far was written before this: one sync covers them all,
      // including the originals of any retries answered from the command index.
      const absl::Status synced = SyncLog(marks);
      for (auto& q : group) q->done(AfterSync(std::move(q->pending.result), synced));
      if (synced.ok() && purge_keys_due_.exchange(false)) {
        // An erasure was made durable: make its destroyed key physically gone from the key
        // store's files too (after the answers: it takes a flush and a small compaction).
        if (absl::Status purged = log_->PurgeDestroyedKeys(); !purged.ok()) {
          purge_keys_due_ = true;  // the next sync tries again
          if (options_.say) options_.say(absl::StrCat("key store purge: ", purged.message()));
        }
      }
    }
    if (stop && group.empty()) return;
  }
}

void CommandWriter::CommitLoop(Committer& c) {
  while (true) {
    {
      absl::MutexLock lock(&c.mu);
      while (!c.work && !c.stop) c.wake.Wait(&c.mu);
      if (!c.work && c.stop) return;
      c.work = false;
    }
    // Take what every partition has queued and commit it all in one append; repeat until the
    // queues are empty (commands that arrive meanwhile form the next group).
    while (true) {
      std::vector<Prepared> preps;
      std::vector<std::unique_ptr<Queued>> taken;
      for (Partition* p : c.partitions) {
        std::vector<std::unique_ptr<Queued>> mine;
        {
          absl::MutexLock lock(&p->queue_mu);
          if (p->queue.empty()) continue;
          if (p->queue.size() <= kMaxBatch) {
            mine.swap(p->queue);
          } else {
            mine.assign(std::make_move_iterator(p->queue.begin()),
                        std::make_move_iterator(p->queue.begin() + kMaxBatch));
            p->queue.erase(p->queue.begin(), p->queue.begin() + kMaxBatch);
          }
        }
        Prepared prep;
        prep.partition = p;
        for (auto& q : mine) prep.group.push_back(&q->pending);
        preps.push_back(std::move(prep));
        for (auto& q : mine) taken.push_back(std::move(q));
      }
      if (preps.empty()) break;
      std::vector<std::pair<int32_t, log::PartitionMark>> marks;
      CommitGroups(preps, &marks);
      preps.clear();  // the group's arenas and staging, before the hand-over
      // Captures whose contact moved since admission are routed again and queued for the next
      // group (on the partition of the lead that holds the contact now).
      std::vector<std::unique_ptr<Queued>> answered;
      for (auto& q : taken) {
        if (!q->pending.requeue) {
          answered.push_back(std::move(q));
          continue;
        }
        if (++q->pending.requeues > kMaxRequeues) {
          q->pending.result = absl::AbortedError(
              absl::StrCat(lead::CommandName(*q->pending.command),
                           ": its contact changed hands while it was being decided; retry"));
          answered.push_back(std::move(q));
          continue;
        }
        absl::StatusOr<Partition*> again = Admit(*q->pending.command, q->pending);
        if (!again.ok()) {
          q->pending.result = again.status();
          answered.push_back(std::move(q));
          continue;
        }
        absl::MutexLock lock(&(*again)->queue_mu);
        (*again)->queue.push_back(std::move(q));
      }
      absl::MutexLock lock(&c.sync_mu);
      for (auto& q : answered) c.to_sync.push_back(std::move(q));
      c.to_sync_marks.insert(c.to_sync_marks.end(), marks.begin(), marks.end());
      c.sync_wake.Signal();
    }
  }
}

absl::StatusOr<std::unique_ptr<CommandWriter>> CommandWriter::Open(log::EventLog* log,
                                                                   common::Clock* clock,
                                                                   WriterOptions options) {
  const int32_t count = log->partition_count();
  if (options.partitions.empty()) {
    for (int32_t p = 0; p < count; ++p) options.partitions.push_back(p);
  }
  std::unique_ptr<CommandWriter> writer(new CommandWriter(log, clock, options));
  // A command index that cannot be opened (no room on the disk) leaves the writer refusing
  // commands until Recover() opens it; the views and queries work meanwhile.
  absl::Status index_opened = writer->OpenIndex();
  if (!options.witness_path.empty()) {
    LEADFLOW_ASSIGN_OR_RETURN(writer->witness_,
                              log::WitnessFile::Open(options.witness_path, count));
    if (writer->witness_->damaged() && options.say) {
      options.say(absl::StrCat("WARNING: the writer's witness file ", options.witness_path,
                               " is unreadable; the log is checked against the views only this "
                               "time"));
    }
  }
  writer->partitions_.resize(count);
  for (int32_t p : options.partitions) {
    LEADFLOW_RETURN_IF_ERROR(log::CheckPartition("writer partitions", p, count));
    auto part = std::make_unique<Partition>();
    part->id = p;
    part->commands = writer->index_.get();
    part->contacts = &writer->contacts_;
    part->ids = &writer->ids_;
    writer->partitions_[p] = std::move(part);
  }
  // Every owned partition's lock, in ascending partition order (the one global lock order).
  for (const auto& part : writer->partitions_) {
    if (part) writer->partition_locks_.push_back(&part->mu);
  }
  std::vector<int32_t> accepted;
  for (int32_t p : options.partitions) {
    Partition& part = *writer->partitions_[p];
    absl::MutexLock lock(&part.mu);
    if (!index_opened.ok()) part.storage_error = index_opened;
    // A log that lost what its witnesses saw is not replayed: the partition refuses commands
    // (DATA_LOSS) until the log is restored or the loss accepted.
    if (absl::Status damage = writer->CheckWitnesses(p, &accepted); !damage.ok()) {
      part.status = damage;
      continue;
    }
    absl::Status st = writer->Replay(part);
    if (!st.ok()) part.status = st;
  }
  if (!accepted.empty() && writer->witness_ != nullptr) {
    // The log as it is now is what the writer vouches for on those partitions.
    std::vector<log::PartitionMark> marks = writer->witness_->marks();
    for (int32_t p : accepted) {
      absl::StatusOr<int64_t> end = log->EndOffset(p);
      marks[p] = log::PartitionMark{.end = end.ok() ? *end : 0, .record_offset = -1, .digest = ""};
    }
    writer->witness_->Reset(marks).IgnoreError();
  }
  // One committer for all partitions, so one append (one fsync) carries every queued command.
  writer->committer_ = std::make_unique<Committer>();
  Committer* c = writer->committer_.get();
  for (int32_t p : options.partitions) {
    c->partitions.push_back(writer->partitions_[p].get());
    writer->partitions_[p]->committer = c;
  }
  c->thread = std::thread([w = writer.get(), c] { w->CommitLoop(*c); });
  c->sync_thread = std::thread([w = writer.get(), c] { w->SyncLoop(*c); });
  return writer;
}

// Applies every record of `p` from its next_offset to the current end of the log. Caller holds
// p.mu.
absl::Status CommandWriter::Replay(Partition& p) {
  p.mu.AssertHeld();
  LEADFLOW_ASSIGN_OR_RETURN(const int64_t end, log_->EndOffset(p.id));
  std::vector<v1::Event> group;
  int64_t group_last = -1;
  auto flush = [&]() -> absl::Status {
    p.mu.AssertHeld();  // as above (the analysis does not look into lambdas)
    if (group.empty()) return absl::OkStatus();
    absl::Status st = p.Apply(group, group_last);
    group.clear();
    return st;
  };
  auto chunk = [&](std::vector<log::Record>& records, int64_t position) -> absl::Status {
    for (const log::Record& r : records) {
      auto event = log::DecodeEvent(r);
      if (event.ok() && options_.vault != nullptr) {
        options_.vault->Observe(*event);
        // An erased lead's events come back without their personal fields.
        if (absl::Status opened = options_.vault->Open(&*event); !opened.ok()) {
          event = absl::Status(opened.code(), absl::StrCat("partition ", r.partition, " offset ",
                                                           r.offset, ": ", opened.message()));
        }
      }
      if (!event.ok()) {
        return absl::Status(event.status().code(),
                            absl::StrCat("writer stopped: ", event.status().message()));
      }
      if (!group.empty() && (event->partition_key() != group.front().partition_key() ||
                             event->command_id() != group.front().command_id())) {
        LEADFLOW_RETURN_IF_ERROR(flush());
      }
      group.push_back(std::move(*event));
      group_last = r.offset;
      ++replayed_events_;
    }
    if (options_.replay_progress) options_.replay_progress(p.id, position, end);
    return absl::OkStatus();
  };
  absl::StatusOr<int64_t> last =
      log::ReadToEnd(*log_, p.id, p.next_offset, end, kReplayChunk, chunk);
  if (!last.ok()) {
    return absl::Status(last.status().code(), absl::StrCat("writer: ", last.status().message()));
  }
  LEADFLOW_RETURN_IF_ERROR(flush());
  p.next_offset = std::max(p.next_offset, *last);
  return absl::OkStatus();
}

CommandWriter::Partition* CommandWriter::Owned(int32_t partition) const {
  if (partition < 0 || partition >= static_cast<int32_t>(partitions_.size())) return nullptr;
  return partitions_[partition].get();
}

absl::StatusOr<CommandWriter::Partition*> CommandWriter::Route(
    const lead::CommandTarget& target) const {
  const int32_t pid = log::PartitionForKey(target.lead_id, log_->partition_count());
  Partition* p = Owned(pid);
  if (p == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("lead ", target.lead_id, " is on partition ",
                                                      pid, ", which this writer does not own"));
  }
  return p;
}

void CommandWriter::RouteCapture(lead::CommandTarget& target, BatchContacts* batch) const {
  std::vector<std::string> keys;
  if (!target.email.empty()) keys.push_back(lead::EmailKey(target.email));
  if (!target.phone.empty()) keys.push_back(lead::PhoneKey(target.phone));
  // A known contact: the lead holding it (the email's before the phone's).
  for (const std::string& key : keys) {
    if (batch != nullptr) {
      if (auto it = batch->holder.find(key); it != batch->holder.end()) {
        target.lead_id = it->second;
        return;
      }
    }
    if (std::optional<std::string> holder = contacts_.Answering(key)) {
      target.lead_id = *holder;
      return;
    }
  }
  // A new lead: the contact's scheme-2 id, unless a lead that no longer holds the contact has
  // it (it was captured with it and changed it since): then the next id for it.
  for (int attempt = 0;; ++attempt) {
    std::string id = !target.email.empty() ? ids_.ForEmail(target.email, attempt)
                                           : ids_.ForPhone(target.phone, attempt);
    if (contacts_.LeadExists(id) || (batch != nullptr && batch->new_leads.contains(id))) continue;
    target.lead_id = std::move(id);
    break;
  }
  if (batch != nullptr) {
    for (const std::string& key : keys) batch->holder[key] = target.lead_id;
    batch->new_leads.insert(target.lead_id);
  }
}

// Decides every command of prep.group in order. Caller holds every partition's mu (CommitGroups).
void CommandWriter::Prepare(Prepared& prep, absl::Time now, Group& group) {
  Partition& p = *prep.partition;
  p.mu.AssertHeld();
  absl::Status refusing = !p.status.ok() ? p.status : p.storage_error;
  if (refusing.ok() && options_.disk != nullptr) refusing = options_.disk->CheckWritable();
  if (refusing.ok()) refusing = log_->Writable();
  if (!refusing.ok()) {
    absl::Status refused(refusing.code(), absl::StrCat("partition ", p.id,
                                                       " refuses commands: ", refusing.message()));
    for (Pending* x : prep.group) x->result = refused;
    return;
  }
  if (p.resync) {
    absl::Status st = Replay(p);
    if (!st.ok()) {
      for (Pending* x : prep.group) x->result = st;
      return;
    }
    p.resync = false;
  }
  // Sized once for the group (most commands stage one lead), not grown by rehashing.
  prep.staged_leads.reserve(prep.group.size());
  prep.staged_commands.reserve(prep.group.size());
  prep.decided.reserve(prep.group.size());
  prep.messages.reserve(prep.group.size());
  auto& staged_leads = prep.staged_leads;
  auto& staged_customers = prep.staged_customers;
  auto& staged_commands = prep.staged_commands;
  auto& decided = prep.decided;
  auto& in_group_replays = prep.in_group_replays;
  auto& messages = prep.messages;
  using Decided = Prepared::Decided;
  const lead::LeadState no_lead;
  const lead::CustomerState no_customer;
  // The lambdas below run under p.mu too; each says so (the analysis does not carry a lock into
  // a lambda's body).
  auto lead_of = [&](const std::string& id) -> const lead::LeadState& {
    p.mu.AssertHeld();
    if (auto it = staged_leads.find(id); it != staged_leads.end()) return it->second;
    if (auto it = p.leads.find(id); it != p.leads.end()) return it->second;
    return no_lead;
  };
  // A lead on any partition, as this group has it so far (a merge's survivor): every partition
  // is locked, and its staged state is in its own Prepared.
  auto lead_anywhere = [&](const std::string& id) -> const lead::LeadState* {
    const int32_t q = log::PartitionForKey(id, log_->partition_count());
    if (q == p.id) return lead_of(id).exists ? &lead_of(id) : nullptr;
    if (auto g = group.by_partition.find(q); g != group.by_partition.end()) {
      if (auto it = g->second->staged_leads.find(id); it != g->second->staged_leads.end()) {
        return it->second.exists ? &it->second : nullptr;
      }
    }
    const Partition* other = Owned(q);
    if (other == nullptr) return nullptr;
    other->mu.AssertHeld();  // every partition is locked (CommitGroups)
    auto it = other->leads.find(id);
    return it != other->leads.end() && it->second.exists ? &it->second : nullptr;
  };
  auto customer_of = [&](const std::string& id) -> const lead::CustomerState& {
    p.mu.AssertHeld();
    if (auto it = staged_customers.find(id); it != staged_customers.end()) return it->second;
    if (auto it = p.customers.find(id); it != p.customers.end()) return it->second;
    return no_customer;
  };
  auto stage_lead = [&](const std::string& id) -> lead::LeadState& {
    p.mu.AssertHeld();
    auto [it, inserted] = staged_leads.try_emplace(id);
    if (inserted) {
      if (auto c = p.leads.find(id); c != p.leads.end()) it->second = c->second;
    }
    return it->second;
  };
  auto stage_customer = [&](const std::string& id) -> lead::CustomerState& {
    p.mu.AssertHeld();
    auto [it, inserted] = staged_customers.try_emplace(id);
    if (inserted) {
      if (auto c = p.customers.find(id); c != p.customers.end()) it->second = c->second;
    }
    return it->second;
  };
  const google::protobuf::Timestamp recorded_at = common::ToProto(now);

  for (Pending* x : prep.group) {
    const v1::Command& command = *x->command;
    const std::string& lead_id = x->target.lead_id;
    const v1::CommandMeta& meta = lead::MetaOf(command);
    const std::string& fingerprint = x->fingerprint;
    if (!meta.command_id().empty()) {
      const std::string& key = x->command_key;
      std::string seen_fp, seen_type;
      std::optional<size_t> staged_index;
      if (auto it = staged_commands.find(key); it != staged_commands.end()) {
        seen_fp = it->second.first;
        staged_index = it->second.second;
        seen_type = decided[*staged_index].events.front()->command_type();
      } else if (lead_of(lead_id).exists || command.has_capture_lead()) {
        // Only a lead that exists can have recorded commands: every committed command either
        // captures its lead or needs it (the replay restores leads and records together). A
        // capture's record is keyed by its contact, not by the lead it went to (CommandKeyOf),
        // so its retry is recognised wherever the contact has moved since.
        absl::StatusOr<std::optional<CommandRecord>> c = p.commands->Get(key);
        if (!c.ok()) {
          x->result = c.status();
          continue;
        }
        if (c->has_value()) {
          seen_fp = (*c)->fingerprint;
          seen_type = (*c)->type;
          if (seen_fp == fingerprint) {
            x->result = (*c)->Replayed();
            continue;
          }
        }
      }
      if (!seen_type.empty() && seen_fp != fingerprint) {
        x->result = absl::AlreadyExistsError(absl::StrCat(
            lead::CommandName(command), ".meta.command_id: ",
            common::QuotePrefix(meta.command_id(), 32), " was already used on lead ", lead_id,
            " for a different ", seen_type, " command; use a new command id for a new change"));
        continue;
      }
      if (staged_index.has_value()) {
        in_group_replays.emplace_back(x, *staged_index);
        continue;
      }
    }
    if (command.has_capture_lead() && !CaptureStillRoutes(x->target, lead_of(lead_id), group)) {
      // Its contact was taken (or its lead changed) since it was admitted: route it again.
      x->requeue = true;
      continue;
    }
    // The survivor as of now, under its partition's lock: two merges into each other (or into a
    // lead merged meanwhile) can never both pass.
    const lead::LeadState* survivor =
        command.has_merge_lead() ? lead_anywhere(command.merge_lead().survivor_lead_id()) : nullptr;
    const std::string customer_id = common::CustomerIdForLead(common::LeadId(lead_id)).value();
    lead::DecideContext ctx{.now = now,
                            .merge_survivor = survivor,
                            .target = &x->target,
                            .identity = &identity_,
                            .contacts = &group.contacts};
    // Who holds which contact changes with these commands only (contacts.h).
    const bool contacts_change = command.has_capture_lead() ||
                                 command.has_update_contact_details() || command.has_merge_lead() ||
                                 command.has_erase_lead();
    lead::LeadContacts before;
    if (contacts_change) before = lead::LeadContacts::Of(lead_of(lead_id));
    absl::StatusOr<std::vector<v1::Event*>> events = lead::DecideOnArena(
        lead_of(lead_id), customer_of(customer_id), command, ctx, prep.arena.get());
    if (!events.ok()) {
      x->result = events.status();
      continue;
    }
    if (events->empty()) {
      // Nothing to record (erasing an erased lead): OK, nothing written.
      v1::CommandReply reply;
      reply.set_lead_id(lead_id);
      reply.set_lead_version(lead_of(lead_id).version);
      x->result = std::move(reply);
      continue;
    }
    // The data keys the events need, before anything is staged: a key store that cannot be read
    // now refuses this command only (UNAVAILABLE; nothing is decided on a guess).
    absl::flat_hash_map<std::string, std::string> data_keys;
    bool had_key = false;
    if (options_.vault != nullptr) {
      absl::Status keyed;
      for (const v1::Event* e : *events) {
        if (e->has_lead_erased()) {
          absl::StatusOr<bool> had = options_.vault->HasKey(e->partition_key());
          if (!had.ok()) keyed = had.status();
          had_key = had.ok() && (*had || prep.new_keys.contains(e->partition_key()));
        } else if (!data_keys.contains(e->partition_key()) && privacy::HasPersonalData(*e)) {
          // A lead with no event yet has no key: no store lookup for it.
          const bool new_lead = e->partition_key() == lead_id && !lead_of(lead_id).exists;
          absl::StatusOr<std::string> key = options_.vault->KeyForSealing(
              e->partition_key(), &prep.new_keys, &prep.key_records, new_lead);
          if (key.ok())
            data_keys[e->partition_key()] = *std::move(key);
          else
            keyed = key.status();
        }
        if (!keyed.ok()) break;
      }
      if (!keyed.ok()) {
        x->result = absl::Status(keyed.code(),
                                 absl::StrCat(lead::CommandName(command), ": ", keyed.message()));
        continue;
      }
    }
    // Stage first (Evolve checks before it changes anything), then encode.
    absl::Status staged;
    for (const v1::Event* e : *events) {
      staged = e->aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER
                   ? lead::EvolveCustomer(stage_customer(e->aggregate_id()), *e)
                   : lead::EvolveLead(stage_lead(e->aggregate_id()), *e);
      if (!staged.ok()) break;
    }
    if (!staged.ok()) {
      // Decide produced an event Evolve refuses: a bug; stop this partition rather than diverge.
      p.status =
          absl::InternalError(absl::StrCat(lead::CommandName(command), ": ", staged.message()));
      for (Pending* y : prep.group) y->result = p.status;
      prep.decided.clear();
      prep.messages.clear();
      prep.in_group_replays.clear();
      prep.contact_changes.clear();
      return;
    }
    for (v1::Event* e : *events) {
      e->set_event_id(common::NewEventId());
      *e->mutable_recorded_at() = recorded_at;
      e->set_command_fingerprint(fingerprint);
      if (options_.vault != nullptr) {
        absl::Status sealed;
        if (e->has_lead_erased()) {
          // The key is destroyed in the same append as the event that says so.
          e->mutable_lead_erased()->set_had_key(had_key);
          prep.new_keys.erase(e->partition_key());
          prep.key_records.push_back(privacy::Vault::Destroy(e->partition_key()));
          prep.erased.push_back(e->partition_key());
        } else if (auto k = data_keys.find(e->partition_key()); k != data_keys.end()) {
          // The staged state keeps the plaintext (this writer decides on it); the log gets the
          // personal fields sealed with the lead's data key.
          sealed = privacy::Seal(e, k->second);
        }
        if (!sealed.ok()) {
          p.status = absl::InternalError(absl::StrCat("seal: ", sealed.message()));
          for (Pending* y : prep.group) y->result = p.status;
          prep.decided.clear();
          prep.messages.clear();
          prep.in_group_replays.clear();
          prep.contact_changes.clear();
          return;
        }
      }
      absl::StatusOr<log::Message> m = log::EncodeEvent(*e);
      if (!m.ok()) {
        p.status = m.status();
        for (Pending* y : prep.group) y->result = p.status;
        prep.decided.clear();
        prep.messages.clear();
        prep.in_group_replays.clear();
        prep.contact_changes.clear();
        return;
      }
      messages.push_back(std::move(*m));
    }
    auto sl = staged_leads.find(lead_id);
    auto sc = staged_customers.find(customer_id);
    if (contacts_change && sl != staged_leads.end()) {
      lead::LeadContacts after = lead::LeadContacts::Of(sl->second);
      group.contacts.Apply(before, after);
      prep.contact_changes.emplace_back(std::move(before), std::move(after));
    }
    Decided d{x, *std::move(events), {}};
    d.reply =
        p.BuildReply(d.view(), sl != staged_leads.end() ? &sl->second : &lead_of(lead_id),
                     sc != staged_customers.end() ? &sc->second : &customer_of(customer_id), 0);
    if (!meta.command_id().empty()) {
      staged_commands[x->command_key] = {fingerprint, decided.size()};
    }
    decided.push_back(std::move(d));
  }
}

// Settles prep.group with the append's outcome. Caller holds prep.partition->mu.
void CommandWriter::Complete(Prepared& prep, const absl::StatusOr<log::AppendResult>& appended) {
  Partition& p = *prep.partition;
  p.mu.AssertHeld();
  if (!appended.ok()) {
    // The outcome may be unknown (e.g. a Kafka timeout after the broker wrote it): re-read the
    // log before deciding anything else on this partition. Nothing is acknowledged, and the
    // staged state is dropped.
    p.resync = true;
    for (const auto& d : prep.decided) d.pending->result = appended.status();
    for (auto& [x, index] : prep.in_group_replays) x->result = appended.status();
    return;
  }
  for (auto& [id, state] : prep.staged_leads) p.leads[id] = std::move(state);
  for (auto& [id, state] : prep.staged_customers) p.customers[id] = std::move(state);
  if (options_.vault != nullptr) {
    options_.vault->Remember(prep.new_keys);
    for (const std::string& lead_id : prep.erased) options_.vault->Forget(lead_id);
    if (!prep.erased.empty()) purge_keys_due_ = true;
  }
  // Offsets within one append are consecutive unless the backend says otherwise.
  const bool dense = appended->last_offset - appended->first_offset + 1 ==
                     static_cast<int64_t>(prep.messages.size());
  int64_t offset = appended->first_offset - 1;
  std::vector<std::pair<std::string, CommandRecord>> records;
  records.reserve(prep.decided.size());
  for (auto& d : prep.decided) {
    offset += static_cast<int64_t>(d.events.size());
    d.reply.mutable_last_position()->set_offset(dense ? offset : appended->last_offset);
    // Each command is recorded once; its key moves into the record.
    records.push_back(p.AdvancePastAndRecord(std::move(d.pending->command_key), d.view(), d.reply));
  }
  p.RecordMany(records);
  for (auto& d : prep.decided) d.pending->result = std::move(d.reply);
  for (auto& [x, index] : prep.in_group_replays) {
    x->result = prep.decided[index].pending->result;
    if (x->result.ok()) x->result->set_replayed(true);
  }
}

// Commits groups of several partitions with one AppendMany: one durable write for all of them.
void CommandWriter::CommitGroups(std::vector<Prepared>& preps,
                                 std::vector<std::pair<int32_t, log::PartitionMark>>* marks) {
  std::sort(preps.begin(), preps.end(),
            [](const Prepared& a, const Prepared& b) { return a.partition->id < b.partition->id; });
  // Every owned partition, in ascending order (no deadlock with another CommitGroups): a
  // command may read a lead of another partition (a merge's survivor) and contacts any lead
  // holds, and must see them as they are when it is decided, not as they were when it arrived.
  const common::MutexSet locked(partition_locks_);
  Group group(&contacts_);
  for (Prepared& prep : preps) group.by_partition[prep.partition->id] = &prep;
  const absl::Time now = clock_->Now();
  std::vector<log::PartitionAppend> appends;
  std::vector<Prepared*> appending;
  for (Prepared& prep : preps) {
    Prepare(prep, now, group);
    if (!prep.messages.empty()) {
      appends.push_back(log::PartitionAppend{prep.partition->id, prep.messages, prep.key_records});
      appending.push_back(&prep);
    }
  }
  if (!appends.empty()) {
    common::KillPoint("writer.before_append");  // decided, nothing written
    const absl::Time append_start = absl::Now();
    // Written, not yet durable: the caller syncs (SyncLoop, ExecuteBatch) before answering.
    absl::StatusOr<std::vector<log::AppendResult>> results = log_->AppendManyDeferred(appends);
    common::KillPoint("writer.after_append");  // written (a process crash keeps it), unanswered
    if (results.ok() && options_.on_append) {
      int records = 0;
      for (const log::PartitionAppend& a : appends) records += static_cast<int>(a.batch.size());
      options_.on_append(records, absl::Now() - append_start);
    }
    for (size_t i = 0; i < appending.size(); ++i) {
      if (results.ok()) {
        Complete(*appending[i], (*results)[i]);
        for (const auto& [before, after] : appending[i]->contact_changes) {
          contacts_.Apply(before, after);
        }
        if (marks != nullptr && witness_ != nullptr) {
          const log::AppendResult& r = (*results)[i];
          marks->emplace_back(
              r.partition,
              log::PartitionMark{.end = r.last_offset + 1,
                                 .record_offset = r.last_offset,
                                 .digest = log::RecordDigest(appending[i]->messages.back().value)});
        }
      } else {
        Complete(*appending[i], results.status());
      }
    }
  }
}

bool CommandWriter::CaptureStillRoutes(const lead::CommandTarget& target,
                                       const lead::LeadState& lead, const Group& group) const {
  std::vector<std::string> keys;
  if (!target.email.empty()) keys.push_back(lead::EmailKey(target.email));
  if (!target.phone.empty()) keys.push_back(lead::PhoneKey(target.phone));
  if (lead.exists) {
    // An inquiry on a lead that holds one of the contacts.
    if ((!target.email.empty() && lead.email == target.email) ||
        (!target.phone.empty() && lead.phone == target.phone)) {
      return true;
    }
    for (const std::string& key : keys) {
      if (group.contacts.Answering(key) == lead.lead_id) return true;
    }
    return false;
  }
  // A new lead: no lead may hold its contacts now.
  for (const std::string& key : keys) {
    if (group.contacts.Answering(key).has_value()) return false;
  }
  return !group.contacts.LeadExists(target.lead_id);
}

absl::StatusOr<CommandWriter::Partition*> CommandWriter::Admit(const v1::Command& command,
                                                               Pending& pending,
                                                               BatchContacts* batch) const {
  pending.command = &command;
  pending.requeue = false;
  LEADFLOW_ASSIGN_OR_RETURN(pending.target, lead::ResolveTarget(command, identity_));
  if (command.has_capture_lead()) RouteCapture(pending.target, batch);
  if (command.has_erase_lead() && options_.vault == nullptr) {
    return absl::FailedPreconditionError(
        "erase_lead: erasure needs encrypted personal data (privacy.enabled and a log with a "
        "key store; docs/security.md), which this writer does not have");
  }
  if (command.has_erase_lead() && pending.target.lead_id.empty()) {
    // By contact: the lead answering for it (never quote the contact).
    const bool by_email = !pending.target.email.empty();
    std::optional<std::string> holder = contacts_.Answering(
        by_email ? lead::EmailKey(pending.target.email) : lead::PhoneKey(pending.target.phone));
    if (!holder.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("erase_lead.", by_email ? "email" : "phone", ": no lead holds it"));
    }
    pending.target.lead_id = *holder;
  }
  LEADFLOW_ASSIGN_OR_RETURN(Partition * p, Route(pending.target));
  if (command.has_merge_lead()) {
    // The survivor is read when the merge is decided, under its partition's lock, which this
    // writer must hold (one writer owns every partition today).
    const std::string& sid = command.merge_lead().survivor_lead_id();
    if (common::IsLeadId(sid)) {
      const int32_t spid = log::PartitionForKey(sid, log_->partition_count());
      if (Owned(spid) == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat("merge_lead: survivor ", sid,
                                                          " is on partition ", spid,
                                                          ", which this writer does not own"));
      }
    }
  }
  pending.fingerprint = CommandFingerprint(command);
  if (const std::string& id = lead::MetaOf(command).command_id(); !id.empty()) {
    pending.command_key =
        CommandKey(common::LeadId(command.has_capture_lead()
                                      ? ContactId(ids_, pending.target.email, pending.target.phone)
                                      : pending.target.lead_id),
                   common::CommandId(id));
  }
  return p;
}

void CommandWriter::Submit(const v1::Command& command, Done done) {
  auto queued = std::make_unique<Queued>();
  absl::StatusOr<Partition*> p = Admit(command, queued->pending);
  if (!p.ok()) return done(p.status());
  queued->done = std::move(done);
  {
    absl::MutexLock lock(&(*p)->queue_mu);
    (*p)->queue.push_back(std::move(queued));
  }
  Committer* c = (*p)->committer;
  absl::MutexLock lock(&c->mu);
  c->work = true;
  c->wake.Signal();
}

absl::StatusOr<v1::CommandReply> CommandWriter::Execute(const v1::Command& command) {
  absl::StatusOr<v1::CommandReply> result;
  absl::Notification finished;
  Submit(command, [&](absl::StatusOr<v1::CommandReply> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

std::vector<absl::StatusOr<v1::CommandReply>> CommandWriter::ExecuteBatch(
    absl::Span<const v1::Command> commands) {
  std::vector<const v1::Command*> pointers;
  pointers.reserve(commands.size());
  for (const v1::Command& c : commands) pointers.push_back(&c);
  return ExecuteBatch(absl::MakeConstSpan(pointers));
}

std::vector<absl::StatusOr<v1::CommandReply>> CommandWriter::ExecuteBatch(
    absl::Span<const v1::Command* const> commands) {
  std::vector<absl::StatusOr<v1::CommandReply>> results;
  if (commands.size() > kMaxBatch) {
    results.assign(commands.size(), absl::InvalidArgumentError(absl::StrCat(
                                        "commands: ", commands.size(),
                                        " commands in one batch; the limit is ", kMaxBatch)));
    return results;
  }
  std::vector<Pending> pending(commands.size());
  std::vector<std::pair<int32_t, log::PartitionMark>> marks;  // for the witness
  std::vector<Pending*> round;  // the commands of this round, in order
  BatchContacts batch;          // new leads of the batch's captures, for its later captures
  for (size_t i = 0; i < commands.size(); ++i) {
    pending[i].command = commands[i];
    round.push_back(&pending[i]);
  }
  for (int attempt = 0; !round.empty(); ++attempt) {
    absl::flat_hash_map<Partition*, std::vector<Pending*>> by_partition;
    std::vector<Partition*> order;  // partitions in first-use order, for determinism
    for (Pending* x : round) {
      absl::StatusOr<Partition*> p = Admit(*x->command, *x, attempt == 0 ? &batch : nullptr);
      if (!p.ok()) {
        x->result = p.status();
        continue;
      }
      auto [it, inserted] = by_partition.try_emplace(*p);
      if (inserted) order.push_back(*p);
      it->second.push_back(x);
    }
    std::vector<Prepared> preps;
    for (Partition* p : order) {
      Prepared prep;
      prep.partition = p;
      prep.group = std::move(by_partition[p]);
      preps.push_back(std::move(prep));
    }
    if (!preps.empty()) CommitGroups(preps, &marks);
    preps.clear();
    // Captures whose contact moved since admission (another client's command): route again.
    std::vector<Pending*> again;
    for (Pending* x : round) {
      if (!x->requeue) continue;
      if (attempt + 1 >= kMaxRequeues) {
        x->result = absl::AbortedError(
            absl::StrCat(lead::CommandName(*x->command),
                         ": its contact changed hands while it was being decided; retry"));
        continue;
      }
      again.push_back(x);
    }
    round = std::move(again);
  }
  // Durable before answering (this covers the originals of retries answered from the index).
  const absl::Status synced = SyncLog(marks);
  results.reserve(commands.size());
  for (Pending& x : pending) results.push_back(AfterSync(std::move(x.result), synced));
  return results;
}

absl::Status CommandWriter::OpenIndex() {
  index_.reset();
  absl::StatusOr<std::unique_ptr<CommandIndex>> index =
      options_.command_index_dir.empty()
          ? absl::StatusOr<std::unique_ptr<CommandIndex>>(NewMemoryCommandIndex())
          : OpenDiskCommandIndex(options_.command_index_dir, options_.command_index_budget);
  if (!index.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the command index: ", index.status().message()));
  }
  index_ = *std::move(index);
  for (auto& p : partitions_) {
    if (p) p->commands = index_.get();
  }
  return absl::OkStatus();
}

absl::Status CommandWriter::CheckWitnesses(int32_t partition, std::vector<int32_t>* accepted) {
  std::vector<std::pair<std::string, log::PartitionMark>> marks;
  if (witness_ != nullptr) {
    marks.emplace_back(absl::StrCat("the writer (witness ", witness_->path(), ")"),
                       witness_->marks()[partition]);
  }
  for (const auto& [name, view_marks] : options_.other_witnesses) {
    if (partition < static_cast<int32_t>(view_marks.size())) {
      marks.emplace_back(name, view_marks[partition]);
    }
  }
  for (const auto& [name, mark] : marks) {
    absl::Status damage = log::CheckMark(*log_, partition, mark, name);
    if (damage.ok()) continue;
    if (!absl::IsDataLoss(damage) || !options_.accept_data_loss || accepted == nullptr) {
      return damage;
    }
    // The operator accepts the loss: say so, and keep a record of it beside the witness.
    const std::string line = absl::StrCat(
        "partition ", partition, ": accepting the loss (--accept-data-loss): ", damage.message());
    if (options_.say) options_.say(line);
    if (witness_ != nullptr) {
      const std::string audit =
          (std::filesystem::path(witness_->path()).parent_path() / "accepted-losses.log").string();
      std::ofstream(audit, std::ios::app)
          << absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()) << " " << line
          << "\n";
    }
    accepted->push_back(partition);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

bool CommandWriter::NeedsRecovery() const {
  if (!log_->Writable().ok()) return true;
  for (const auto& p : partitions_) {
    if (!p) continue;
    absl::MutexLock lock(&p->mu);
    if (!p->storage_error.ok()) return true;
  }
  return false;
}

absl::Status CommandWriter::Recover() {
  if (!NeedsRecovery()) return absl::OkStatus();
  if (options_.disk != nullptr) LEADFLOW_RETURN_IF_ERROR(options_.disk->CheckWritable());
  // Every partition locked: commands wait (their groups are decided after the rebuild).
  const common::MutexSet locked(partition_locks_);
  absl::Status st = log_->Recover();
  if (st.ok()) st = OpenIndex();
  if (!st.ok()) return st;
  // The state as the log has it now: whatever reached it before the failure is in it (its
  // commands were answered UNAVAILABLE, outcome unknown; a retry is recognised either way).
  contacts_.Clear();
  for (auto& part : partitions_) {
    if (!part) continue;
    Partition& p = *part;
    p.mu.AssertHeld();  // locked above (MutexSet)
    p.leads.clear();
    p.customers.clear();
    p.next_offset = 0;
    p.resync = false;
    p.storage_error = absl::OkStatus();
    if (p.status.ok()) p.status = CheckWitnesses(p.id, nullptr);  // what reopened is whole
    if (p.status.ok()) {
      absl::Status replayed = Replay(p);
      if (!replayed.ok()) p.status = replayed;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LeadSnapshot> CommandWriter::GetLead(const std::string& lead_id) const {
  LEADFLOW_RETURN_IF_ERROR(common::CheckLeadId("lead_id", lead_id));
  const int32_t pid = log::PartitionForKey(lead_id, log_->partition_count());
  const Partition* p = Owned(pid);
  if (p == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("lead ", lead_id, " is on partition ", pid,
                                                      ", which this writer does not own"));
  }
  absl::MutexLock lock(&p->mu);
  auto it = p->leads.find(lead_id);
  if (it == p->leads.end())
    return absl::NotFoundError(absl::StrCat("lead ", lead_id, " not found"));
  LeadSnapshot snap;
  snap.lead = it->second;
  if (auto c = p->customers.find(common::CustomerIdForLead(common::LeadId(lead_id)).value());
      c != p->customers.end()) {
    snap.customer = c->second;
  }
  return snap;
}

std::vector<PartitionHealth> CommandWriter::Health() const {
  std::vector<PartitionHealth> out;
  for (const auto& p : partitions_) {
    if (!p) continue;
    absl::MutexLock lock(&p->mu);
    out.push_back(
        PartitionHealth{p->id, p->next_offset, !p->status.ok() ? p->status : p->storage_error});
  }
  return out;
}

int64_t CommandWriter::replayed_events() const { return replayed_events_; }

}  // namespace leadflow::command

#include "services/command/writer.h"

#include <array>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/lead/reducer.h"
#include "services/log/event_codec.h"

namespace leadflow::command {

namespace {

struct CommandRecord {
  std::string fingerprint;
  std::string type;
  v1::CommandReply reply;
};

std::string CommandKey(absl::string_view lead_id, absl::string_view command_id) {
  return absl::StrCat(lead_id, "/", command_id);
}

constexpr size_t kReplayChunk = 4096;

}  // namespace

std::string CommandFingerprint(const v1::Command& command) {
  return common::Sha256Hex(command.SerializeAsString(), 32);
}

struct CommandWriter::Pending {
  const v1::Command* command = nullptr;
  lead::CommandTarget target;
  std::optional<lead::LeadState> survivor;  // merge survivor on another partition
  absl::StatusOr<v1::CommandReply> result = absl::UnknownError("not executed");
};

namespace {
struct Waiter {
  CommandWriter::Pending* pending = nullptr;
  bool done = false;
  absl::CondVar cv;
};
}  // namespace

struct CommandWriter::Partition {
  int32_t id = 0;
  mutable absl::Mutex mu;
  absl::flat_hash_map<std::string, lead::LeadState> leads ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, lead::CustomerState> customers ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, v1::LogPosition> last_position ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, CommandRecord> commands ABSL_GUARDED_BY(mu);
  int64_t next_offset ABSL_GUARDED_BY(mu) = 0;
  // Not OK: the partition's log could not be applied; commands are refused with this status.
  absl::Status status ABSL_GUARDED_BY(mu);
  // An append failed with an unknown outcome: re-read the log tail before the next command.
  bool resync ABSL_GUARDED_BY(mu) = false;

  // Group commit: unary commands queue here; the one at the front commits the queue.
  absl::Mutex queue_mu ABSL_ACQUIRED_BEFORE(mu);
  std::deque<Waiter*> queue ABSL_GUARDED_BY(queue_mu);

  // Applies the events of one command (already in the log at [first, last]) and records the
  // command for idempotency. The same code runs live and on replay, so replies match.
  absl::Status Apply(const std::vector<v1::Event>& events, int64_t last_offset,
                     v1::CommandReply* reply_out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const std::string& lead_id = events.front().partition_key();
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
    v1::LogPosition position;
    position.set_partition(id);
    position.set_offset(last_offset);
    last_position[lead_id] = position;
    next_offset = std::max(next_offset, last_offset + 1);

    const v1::Event& first = events.front();
    v1::CommandReply reply;
    reply.set_lead_id(lead_id);
    if (auto it = leads.find(lead_id); it != leads.end()) {
      reply.set_lead_version(it->second.version);
      if (first.has_inquiry_received() && it->second.status == v1::LEAD_STATUS_MERGED) {
        reply.set_merged_into(it->second.merged_into);
      }
    }
    if (auto it = customers.find(common::CustomerIdForLead(lead_id)); it != customers.end()) {
      reply.set_customer_id(it->second.customer_id);
      reply.set_customer_version(it->second.version);
    }
    reply.set_deduplicated(first.command_type() == "capture_lead" &&
                           first.has_inquiry_received());
    if (first.has_inquiry_received()) {
      reply.set_notify_owner(first.inquiry_received().notify_owner());
    }
    for (const v1::Event& e : events) reply.add_event_ids(e.event_id());
    *reply.mutable_last_position() = position;
    commands[CommandKey(lead_id, first.command_id())] =
        CommandRecord{first.command_fingerprint(), first.command_type(), reply};
    if (reply_out != nullptr) *reply_out = std::move(reply);
    return absl::OkStatus();
  }
};

CommandWriter::CommandWriter(log::EventLog* log, common::Clock* clock, WriterOptions options)
    : log_(log), clock_(clock), options_(std::move(options)) {}

CommandWriter::~CommandWriter() = default;

absl::StatusOr<std::unique_ptr<CommandWriter>> CommandWriter::Open(log::EventLog* log,
                                                                  common::Clock* clock,
                                                                  WriterOptions options) {
  const int32_t count = log->partition_count();
  if (options.partitions.empty()) {
    for (int32_t p = 0; p < count; ++p) options.partitions.push_back(p);
  }
  std::unique_ptr<CommandWriter> writer(new CommandWriter(log, clock, options));
  writer->partitions_.resize(count);
  for (int32_t p : options.partitions) {
    if (p < 0 || p >= count) {
      return absl::InvalidArgumentError(absl::StrCat("writer partitions: ", p,
                                                     " is out of range [0, ", count, ")"));
    }
    auto part = std::make_unique<Partition>();
    part->id = p;
    writer->partitions_[p] = std::move(part);
  }
  for (int32_t p : options.partitions) {
    Partition& part = *writer->partitions_[p];
    absl::MutexLock lock(&part.mu);
    absl::Status st = writer->Replay(part);
    if (!st.ok()) part.status = st;
  }
  return writer;
}

// Applies every record of `p` from its next_offset to the current end of the log. Caller holds
// p.mu.
absl::Status CommandWriter::Replay(Partition& p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  LEADFLOW_ASSIGN_OR_RETURN(const int64_t end, log_->EndOffset(p.id));
  LEADFLOW_ASSIGN_OR_RETURN(std::unique_ptr<log::LogReader> reader,
                            log_->OpenReader(p.id, p.next_offset));
  std::vector<v1::Event> group;
  int64_t group_last = -1;
  auto flush = [&]() -> absl::Status {
    if (group.empty()) return absl::OkStatus();
    absl::Status st = p.Apply(group, group_last, nullptr);
    group.clear();
    return st;
  };
  while (reader->position() < end) {
    LEADFLOW_ASSIGN_OR_RETURN(std::vector<log::Record> records,
                              reader->Read(kReplayChunk, absl::Seconds(5)));
    if (records.empty() && reader->position() < end) {
      return absl::UnavailableError(absl::StrCat("writer: partition ", p.id,
                                                 ": log stopped at offset ", reader->position(),
                                                 " before its end ", end));
    }
    for (const log::Record& r : records) {
      auto event = log::DecodeEvent(r);
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
    if (options_.replay_progress) options_.replay_progress(p.id, reader->position(), end);
  }
  LEADFLOW_RETURN_IF_ERROR(flush());
  p.next_offset = std::max(p.next_offset, reader->position());
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
    return absl::FailedPreconditionError(absl::StrCat("lead ", target.lead_id,
                                                      " is on partition ", pid,
                                                      ", which this writer does not own"));
  }
  return p;
}

// A merge looks at its survivor, which may live on another partition: copy it first, under that
// partition's lock only (never two partition locks at once). Same-partition survivors are read
// inside CommitGroup, where staged state is visible.
absl::StatusOr<std::optional<lead::LeadState>> CommandWriter::SurvivorSnapshot(
    const v1::Command& command, int32_t partition) const {
  if (!command.has_merge_lead() || !common::IsLeadId(command.merge_lead().survivor_lead_id())) {
    return std::optional<lead::LeadState>();
  }
  const std::string& sid = command.merge_lead().survivor_lead_id();
  const int32_t spid = log::PartitionForKey(sid, log_->partition_count());
  if (spid == partition) return std::optional<lead::LeadState>();
  Partition* sp = Owned(spid);
  if (sp == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("merge_lead: survivor ", sid,
                                                      " is on partition ", spid,
                                                      ", which this writer does not own"));
  }
  absl::MutexLock lock(&sp->mu);
  auto it = sp->leads.find(sid);
  if (it == sp->leads.end()) return std::optional<lead::LeadState>();
  return std::optional<lead::LeadState>(it->second);
}

// Decides every pending command of one partition in order against staged state, appends all
// resulting events in one append, then applies them. Sets each Pending's result.
void CommandWriter::CommitGroup(Partition& p, absl::Span<Pending* const> group) {
  absl::MutexLock lock(&p.mu);
  if (!p.status.ok()) {
    absl::Status refused(p.status.code(), absl::StrCat("partition ", p.id,
                                                       " refuses commands: ",
                                                       p.status.message()));
    for (Pending* x : group) x->result = refused;
    return;
  }
  if (p.resync) {
    absl::Status st = Replay(p);
    if (!st.ok()) {
      for (Pending* x : group) x->result = st;
      return;
    }
    p.resync = false;
  }

  // Staged state: copies of what this group changes, so later commands see earlier ones.
  absl::flat_hash_map<std::string, lead::LeadState> staged_leads;
  absl::flat_hash_map<std::string, lead::CustomerState> staged_customers;
  absl::flat_hash_map<std::string, std::pair<std::string, size_t>> staged_commands;  // -> fp, idx
  const lead::LeadState no_lead;
  const lead::CustomerState no_customer;
  auto lead_of = [&](const std::string& id) -> const lead::LeadState& {
    if (auto it = staged_leads.find(id); it != staged_leads.end()) return it->second;
    if (auto it = p.leads.find(id); it != p.leads.end()) return it->second;
    return no_lead;
  };
  auto customer_of = [&](const std::string& id) -> const lead::CustomerState& {
    if (auto it = staged_customers.find(id); it != staged_customers.end()) return it->second;
    if (auto it = p.customers.find(id); it != p.customers.end()) return it->second;
    return no_customer;
  };

  struct Decided {
    Pending* pending;
    std::vector<v1::Event> events;
  };
  std::vector<Decided> decided;
  std::vector<std::pair<Pending*, size_t>> in_group_replays;  // (retry, index into decided)
  std::vector<log::Message> messages;
  const absl::Time now = clock_->Now();
  const google::protobuf::Timestamp recorded_at = common::ToProto(now);

  for (Pending* x : group) {
    const v1::Command& command = *x->command;
    const std::string& lead_id = x->target.lead_id;
    const v1::CommandMeta& meta = lead::MetaOf(command);
    const std::string fingerprint = CommandFingerprint(command);
    if (!meta.command_id().empty()) {
      const std::string key = CommandKey(lead_id, meta.command_id());
      std::string seen_fp, seen_type;
      std::optional<size_t> staged_index;
      if (auto it = staged_commands.find(key); it != staged_commands.end()) {
        seen_fp = it->second.first;
        staged_index = it->second.second;
        seen_type = decided[*staged_index].events.front().command_type();
      } else if (auto c = p.commands.find(key); c != p.commands.end()) {
        seen_fp = c->second.fingerprint;
        seen_type = c->second.type;
        if (seen_fp == fingerprint) {
          v1::CommandReply reply = c->second.reply;
          reply.set_replayed(true);
          x->result = std::move(reply);
          continue;
        }
      }
      if (!seen_type.empty() && seen_fp != fingerprint) {
        x->result = absl::AlreadyExistsError(absl::StrCat(
            lead::CommandName(command), ".meta.command_id: '", meta.command_id(),
            "' was already used on lead ", lead_id, " for a different ", seen_type,
            " command; use a new command id for a new change"));
        continue;
      }
      if (staged_index.has_value()) {
        in_group_replays.emplace_back(x, *staged_index);
        continue;
      }
    }
    const lead::LeadState* survivor = x->survivor.has_value() ? &*x->survivor : nullptr;
    if (command.has_merge_lead() && survivor == nullptr) {
      const lead::LeadState& s = lead_of(command.merge_lead().survivor_lead_id());
      if (s.exists) survivor = &s;
    }
    lead::DecideContext ctx{.now = now, .merge_survivor = survivor};
    absl::StatusOr<std::vector<v1::Event>> events =
        lead::Decide(lead_of(lead_id), customer_of(common::CustomerIdForLead(lead_id)), command,
                     ctx);
    if (!events.ok()) {
      x->result = events.status();
      continue;
    }
    absl::Status encoded;
    const size_t first_message = messages.size();
    for (v1::Event& e : *events) {
      e.set_event_id(common::NewEventId());
      *e.mutable_recorded_at() = recorded_at;
      e.set_command_fingerprint(fingerprint);
      absl::StatusOr<log::Message> m = log::EncodeEvent(e);
      if (!m.ok()) {
        encoded = m.status();
        break;
      }
      messages.push_back(std::move(*m));
    }
    // Stage the new state; a failure here means Decide produced events Evolve refuses.
    for (const v1::Event& e : *events) {
      if (!encoded.ok()) break;
      if (e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER) {
        lead::CustomerState next = customer_of(e.aggregate_id());
        encoded = lead::EvolveCustomer(next, e);
        if (encoded.ok()) staged_customers[e.aggregate_id()] = std::move(next);
      } else {
        lead::LeadState next = lead_of(e.aggregate_id());
        encoded = lead::EvolveLead(next, e);
        if (encoded.ok()) staged_leads[e.aggregate_id()] = std::move(next);
      }
    }
    if (!encoded.ok()) {
      messages.resize(first_message);
      x->result = absl::InternalError(absl::StrCat(lead::CommandName(command), ": ",
                                                   encoded.message()));
      continue;
    }
    if (!meta.command_id().empty()) {
      staged_commands[CommandKey(lead_id, meta.command_id())] = {fingerprint, decided.size()};
    }
    decided.push_back(Decided{x, std::move(*events)});
  }
  if (decided.empty()) return;

  absl::StatusOr<log::AppendResult> appended = log_->Append(p.id, messages);
  if (!appended.ok()) {
    // The outcome may be unknown (e.g. a Kafka timeout after the broker wrote it): re-read the
    // log before deciding anything else on this partition. Nothing is acknowledged.
    p.resync = true;
    for (const Decided& d : decided) d.pending->result = appended.status();
    for (auto& [x, index] : in_group_replays) x->result = appended.status();
    return;
  }
  // Offsets within one append are consecutive unless the backend says otherwise.
  const bool dense = appended->last_offset - appended->first_offset + 1 ==
                     static_cast<int64_t>(messages.size());
  int64_t offset = appended->first_offset - 1;
  for (Decided& d : decided) {
    offset += static_cast<int64_t>(d.events.size());
    v1::CommandReply reply;
    absl::Status applied = p.Apply(d.events, dense ? offset : appended->last_offset, &reply);
    if (!applied.ok()) {
      p.status = absl::InternalError(
          absl::StrCat("applying its own events failed: ", applied.message()));
      d.pending->result = p.status;
      continue;
    }
    d.pending->result = std::move(reply);
  }
  for (auto& [x, index] : in_group_replays) {
    x->result = decided[index].pending->result;
    if (x->result.ok()) x->result->set_replayed(true);
  }
}

absl::StatusOr<v1::CommandReply> CommandWriter::Execute(const v1::Command& command) {
  LEADFLOW_ASSIGN_OR_RETURN(lead::CommandTarget target, lead::ResolveTarget(command));
  LEADFLOW_ASSIGN_OR_RETURN(Partition * p, Route(target));
  Pending pending;
  pending.command = &command;
  pending.target = std::move(target);
  LEADFLOW_ASSIGN_OR_RETURN(pending.survivor, SurvivorSnapshot(command, p->id));

  Waiter self;
  self.pending = &pending;
  std::vector<Pending*> group;
  {
    absl::MutexLock lock(&p->queue_mu);
    p->queue.push_back(&self);
    while (!self.done && p->queue.front() != &self) self.cv.Wait(&p->queue_mu);
    if (self.done) return std::move(pending.result);
    // This thread leads: it commits everything queued so far, itself first.
    for (Waiter* w : p->queue) {
      if (group.size() == kMaxBatch) break;
      group.push_back(w->pending);
    }
  }
  CommitGroup(*p, group);
  {
    absl::MutexLock lock(&p->queue_mu);
    for (size_t i = 0; i < group.size(); ++i) {
      Waiter* w = p->queue.front();
      p->queue.pop_front();
      w->done = true;
      if (w != &self) w->cv.Signal();
    }
    if (!p->queue.empty()) p->queue.front()->cv.Signal();
  }
  return std::move(pending.result);
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
    results.assign(commands.size(),
                   absl::InvalidArgumentError(absl::StrCat(
                       "commands: ", commands.size(), " commands in one batch; the limit is ",
                       kMaxBatch)));
    return results;
  }
  std::vector<Pending> pending(commands.size());
  absl::flat_hash_map<Partition*, std::vector<Pending*>> by_partition;
  std::vector<Partition*> order;  // partitions in first-use order, for determinism
  for (size_t i = 0; i < commands.size(); ++i) {
    pending[i].command = commands[i];
    absl::StatusOr<lead::CommandTarget> target = lead::ResolveTarget(*commands[i]);
    if (!target.ok()) {
      pending[i].result = target.status();
      continue;
    }
    absl::StatusOr<Partition*> p = Route(*target);
    if (!p.ok()) {
      pending[i].result = p.status();
      continue;
    }
    auto survivor = SurvivorSnapshot(*commands[i], (*p)->id);
    if (!survivor.ok()) {
      pending[i].result = survivor.status();
      continue;
    }
    pending[i].target = std::move(*target);
    pending[i].survivor = std::move(*survivor);
    auto [it, inserted] = by_partition.try_emplace(*p);
    if (inserted) order.push_back(*p);
    it->second.push_back(&pending[i]);
  }
  for (Partition* p : order) CommitGroup(*p, by_partition[p]);
  results.reserve(commands.size());
  for (Pending& x : pending) results.push_back(std::move(x.result));
  return results;
}

absl::StatusOr<LeadSnapshot> CommandWriter::GetLead(const std::string& lead_id) const {
  if (!common::IsLeadId(lead_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("lead_id: '", lead_id, "' is not a lead id (ld_ and 20 hex digits)"));
  }
  const int32_t pid = log::PartitionForKey(lead_id, log_->partition_count());
  const Partition* p = Owned(pid);
  if (p == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lead ", lead_id, " is on partition ", pid, ", which this writer does not own"));
  }
  absl::MutexLock lock(&p->mu);
  auto it = p->leads.find(lead_id);
  if (it == p->leads.end()) return absl::NotFoundError(absl::StrCat("lead ", lead_id, " not found"));
  LeadSnapshot snap;
  snap.lead = it->second;
  if (auto c = p->customers.find(common::CustomerIdForLead(lead_id)); c != p->customers.end()) {
    snap.customer = c->second;
  }
  if (auto pos = p->last_position.find(lead_id); pos != p->last_position.end()) {
    snap.last_position = pos->second;
  }
  return snap;
}

std::vector<PartitionHealth> CommandWriter::Health() const {
  std::vector<PartitionHealth> out;
  for (const auto& p : partitions_) {
    if (!p) continue;
    absl::MutexLock lock(&p->mu);
    out.push_back(PartitionHealth{p->id, p->next_offset, p->status});
  }
  return out;
}

int64_t CommandWriter::replayed_events() const { return replayed_events_; }

}  // namespace leadflow::command

#include "services/command/writer.h"

#include <openssl/sha.h>

#include <array>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
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
  std::string bytes;
  command.SerializeToString(&bytes);
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), 16));
}

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
    absl::Status st = writer->Replay(part);
    if (!st.ok()) {
      absl::MutexLock lock(&part.mu);
      part.status = st;
    }
  }
  return writer;
}

// Applies every record of `p` from its next_offset to the current end of the log.
absl::Status CommandWriter::Replay(Partition& p) {
  absl::MutexLock lock(&p.mu);
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

absl::StatusOr<v1::CommandReply> CommandWriter::Execute(const v1::Command& command) {
  LEADFLOW_ASSIGN_OR_RETURN(lead::CommandTarget target, lead::ResolveTarget(command));
  const int32_t pid = log::PartitionForKey(target.lead_id, log_->partition_count());
  Partition* p = Owned(pid);
  if (p == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("lead ", target.lead_id,
                                                      " is on partition ", pid,
                                                      ", which this writer does not own"));
  }

  // A merge looks at its survivor, which may live on another partition: copy it first, under
  // that partition's lock only (never two partition locks at once).
  std::optional<lead::LeadState> survivor;
  if (command.has_merge_lead() && common::IsLeadId(command.merge_lead().survivor_lead_id())) {
    const std::string& sid = command.merge_lead().survivor_lead_id();
    const int32_t spid = log::PartitionForKey(sid, log_->partition_count());
    if (spid != pid) {
      Partition* sp = Owned(spid);
      if (sp == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "merge_lead: survivor ", sid, " is on partition ", spid,
            ", which this writer does not own"));
      }
      absl::MutexLock lock(&sp->mu);
      if (auto it = sp->leads.find(sid); it != sp->leads.end()) survivor = it->second;
    }
  }

  absl::MutexLock lock(&p->mu);
  if (!p->status.ok()) {
    return absl::Status(p->status.code(), absl::StrCat("partition ", pid,
                                                       " refuses commands: ",
                                                       p->status.message()));
  }
  if (p->resync) {
    p->mu.Unlock();
    absl::Status st = Replay(*p);
    p->mu.Lock();
    if (!st.ok()) return st;
    p->resync = false;
  }

  const lead::LeadState no_lead;
  const lead::CustomerState no_customer;
  const v1::CommandMeta& meta = lead::MetaOf(command);
  const std::string fingerprint = CommandFingerprint(command);
  if (!meta.command_id().empty()) {
    auto it = p->commands.find(CommandKey(target.lead_id, meta.command_id()));
    if (it != p->commands.end()) {
      if (it->second.fingerprint != fingerprint) {
        return absl::AlreadyExistsError(absl::StrCat(
            lead::CommandName(command), ".meta.command_id: '", meta.command_id(),
            "' was already used on lead ", target.lead_id, " for a different ",
            it->second.type, " command; use a new command id for a new change"));
      }
      v1::CommandReply reply = it->second.reply;
      reply.set_replayed(true);
      return reply;
    }
  }
  auto lit = p->leads.find(target.lead_id);
  auto cit = p->customers.find(common::CustomerIdForLead(target.lead_id));
  const lead::LeadState& lead_state = lit != p->leads.end() ? lit->second : no_lead;
  const lead::CustomerState& customer_state = cit != p->customers.end() ? cit->second
                                                                         : no_customer;
  if (command.has_merge_lead() && !survivor.has_value()) {
    if (auto it = p->leads.find(command.merge_lead().survivor_lead_id()); it != p->leads.end()) {
      survivor = it->second;
    }
  }
  lead::DecideContext ctx{.now = clock_->Now(),
                          .merge_survivor = survivor.has_value() ? &*survivor : nullptr};
  LEADFLOW_ASSIGN_OR_RETURN(std::vector<v1::Event> events,
                            lead::Decide(lead_state, customer_state, command, ctx));

  const google::protobuf::Timestamp recorded_at = common::ToProto(clock_->Now());
  std::vector<log::Message> messages;
  messages.reserve(events.size());
  for (v1::Event& e : events) {
    e.set_event_id(common::NewEventId());
    *e.mutable_recorded_at() = recorded_at;
    e.set_command_fingerprint(fingerprint);
    LEADFLOW_ASSIGN_OR_RETURN(log::Message m, log::EncodeEvent(e));
    messages.push_back(std::move(m));
  }
  absl::StatusOr<log::AppendResult> appended = log_->Append(pid, messages);
  if (!appended.ok()) {
    // The outcome may be unknown (e.g. a Kafka timeout after the broker wrote it): re-read the
    // log before deciding anything else on this partition. Nothing is acknowledged.
    p->resync = true;
    return appended.status();
  }
  v1::CommandReply reply;
  absl::Status applied = p->Apply(events, appended->last_offset, &reply);
  if (!applied.ok()) {
    p->status = absl::InternalError(
        absl::StrCat("applying its own events failed: ", applied.message()));
    return p->status;
  }
  return reply;
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

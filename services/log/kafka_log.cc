#include "services/log/kafka_log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/match.h"
#include "services/common/status_util.h"
#include "services/common/text.h"

namespace leadflow::log {
namespace {

int ToMillis(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

// Passwords, secrets and keys in librdkafka's properties (sasl.password, ssl.key.password,
// ssl.key.pem, sasl.oauthbearer.client.secret, ...): their values are never quoted.
bool IsSecretProperty(absl::string_view key) {
  for (absl::string_view word : {"password", "secret", "key", "jaas", "token", "credential"}) {
    if (absl::StrContains(key, word)) return true;
  }
  return false;
}

absl::Status Set(RdKafka::Conf* conf, const std::string& key, const std::string& value) {
  std::string err;
  if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK) {
    if (IsSecretProperty(key)) {
      // librdkafka's message may quote the value: say only which property and that it failed.
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property ", key,
                       " (value not shown): refused by librdkafka; check the name "
                       "and whether this librdkafka build supports it"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("kafka property ", key, "=", common::QuotePrefix(value, 64), ": ", err));
  }
  return absl::OkStatus();
}

// One in-flight record of an Append; its address is the librdkafka msg_opaque.
struct Slot {
  int64_t offset = -1;
  RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
  std::string errstr;
};

// The delivery state of one Append. Each produced record's opaque is a heap SlotRef holding a
// reference to it, released by the record's delivery report: an Append that gives up early
// (brokers unreachable past its timeout) leaves the state alive until every report came in.
struct AppendState {
  explicit AppendState(size_t n) : pending(n), slots(n) {}
  std::atomic<size_t> pending;
  std::vector<Slot> slots;
};

struct SlotRef {
  std::shared_ptr<AppendState> state;
  size_t index;
};

class DeliveryCallback final : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<SlotRef> ref(static_cast<SlotRef*>(message.msg_opaque()));
    if (ref == nullptr) return;
    Slot& slot = ref->state->slots[ref->index];
    slot.offset = message.offset();
    slot.err = message.err();
    if (message.err() != RdKafka::ERR_NO_ERROR) slot.errstr = message.errstr();
    ref->state->pending.fetch_sub(1);
  }
};

// Takes ownership of `error` and turns it into a Status.
absl::Status FromTxnError(RdKafka::Error* error, absl::string_view what) {
  std::unique_ptr<RdKafka::Error> owned(error);
  std::string msg = absl::StrCat("kafka log: ", what, ": ", error->str());
  const RdKafka::ErrorCode code = error->code();
  if (code == RdKafka::ERR__FENCED || code == RdKafka::ERR_PRODUCER_FENCED ||
      code == RdKafka::ERR_INVALID_PRODUCER_EPOCH) {
    return absl::UnavailableError(absl::StrCat(
        msg, " (this writer was fenced: a newer writer owns its partitions; it must restart)"));
  }
  return absl::UnavailableError(msg);
}

}  // namespace

struct KafkaLog::Impl {
  KafkaLogOptions options;
  int32_t partitions = 0;
  DeliveryCallback delivery;  // outlives `producer`, declared first
  std::unique_ptr<RdKafka::Producer> producer;
  absl::Mutex append_mu;                         // one append (one transaction) at a time
  std::string fatal ABSL_GUARDED_BY(append_mu);  // non-empty: producer unusable
  // A commit that timed out (brokers unreachable): its outcome is unknown until a retry of the
  // commit succeeds or the transaction is aborted. The next Append resolves it first.
  bool commit_pending ABSL_GUARDED_BY(append_mu) = false;
  // An abort that timed out; retried before the next transaction begins.
  bool abort_pending ABSL_GUARDED_BY(append_mu) = false;
  // The key store: the keys topic's partition count (0: none), and this process's map of it.
  int32_t key_partitions = 0;
  absl::Mutex keys_mu;  // one catch-up at a time; guards the map and the consumer
  std::unique_ptr<RdKafka::KafkaConsumer> keys_consumer ABSL_GUARDED_BY(keys_mu);
  std::vector<int64_t> keys_position ABSL_GUARDED_BY(keys_mu);
  // lead id -> wrapped key; "" = destroyed (so an erased lead's events do not each cost a
  // catch-up).
  absl::flat_hash_map<std::string, std::string> keys ABSL_GUARDED_BY(keys_mu);
  // The writer (one owns every partition) writes every key itself: once it has read the topic
  // to its end, a key it does not know does not exist, and a miss costs no catch-up.
  bool keys_read_once ABSL_GUARDED_BY(keys_mu) = false;
  absl::Status OpenKeysConsumer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(keys_mu);
  absl::Status CatchUpKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(keys_mu);
  // Per partition, the end offset (high watermark) as last reported by this process's readers'
  // fetches; -1 = not seen yet. KnownEndOffset answers from it without asking the cluster.
  std::unique_ptr<std::atomic<int64_t>[]> known_end;

  // FreshEndOffsets: callers wait here; one thread asks the cluster for every partition's end
  // on behalf of all who asked before the request went out.
  using EndsDone = std::function<void(const std::vector<int64_t>&, bool)>;
  absl::Mutex probe_mu;
  absl::CondVar probe_wake;
  std::vector<std::pair<EndsDone, absl::Duration>> probe_waiting ABSL_GUARDED_BY(probe_mu);
  bool probe_stop ABSL_GUARDED_BY(probe_mu) = false;
  std::thread prober;

  std::vector<int64_t> KnownEnds() const {
    std::vector<int64_t> ends(partitions);
    for (int32_t p = 0; p < partitions; ++p) ends[p] = known_end[p].load();
    return ends;
  }
  void NoteEnd(int32_t p, int64_t end) {
    int64_t seen = known_end[p].load(std::memory_order_relaxed);
    while (end > seen && !known_end[p].compare_exchange_weak(seen, end)) {
    }
  }
  void ProbeLoop();
};

void KafkaLog::Impl::ProbeLoop() {
  while (true) {
    std::vector<std::pair<EndsDone, absl::Duration>> asked;
    {
      absl::MutexLock lock(&probe_mu);
      while (probe_waiting.empty() && !probe_stop) probe_wake.Wait(&probe_mu);
      asked.swap(probe_waiting);
    }
    bool stopping;
    {
      absl::MutexLock lock(&probe_mu);
      stopping = probe_stop;
    }
    std::vector<int64_t> ends = KnownEnds();
    if (!stopping && !asked.empty()) {
      absl::Duration timeout = asked.front().second;
      for (const auto& [done, t] : asked) timeout = std::min(timeout, t);
      // ListOffsets with timestamp -1 (the end; read_committed: the last stable offset),
      // bounded by the timeout even when a broker is away.
      std::vector<RdKafka::TopicPartition*> tps;
      tps.reserve(partitions);
      for (int32_t p = 0; p < partitions; ++p) {
        tps.push_back(RdKafka::TopicPartition::create(options.topic, p, -1));
      }
      if (producer->offsetsForTimes(tps, ToMillis(timeout)) == RdKafka::ERR_NO_ERROR) {
        for (RdKafka::TopicPartition* tp : tps) {
          if (tp->err() == RdKafka::ERR_NO_ERROR && tp->offset() >= 0) {
            NoteEnd(tp->partition(), tp->offset());
            ends[tp->partition()] = std::max(ends[tp->partition()], tp->offset());
          }
        }
      }
      RdKafka::TopicPartition::destroy(tps);
    }
    for (auto& [done, t] : asked) done(ends, /*inline_call=*/false);
    if (stopping) return;
  }
}

namespace {

class KafkaReader final : public LogReader {
 public:
  KafkaReader(std::unique_ptr<RdKafka::KafkaConsumer> consumer, std::string topic,
              int32_t partition, int64_t from, std::atomic<int64_t>* known_end)
      : consumer_(std::move(consumer)),
        topic_(std::move(topic)),
        partition_(partition),
        position_(from),
        known_end_(known_end) {}
  ~KafkaReader() override { consumer_->close(); }

  absl::StatusOr<std::vector<Record>> Read(size_t max_records, absl::Duration timeout) override {
    std::vector<Record> out;
    const absl::Time deadline = absl::Now() + timeout;
    while (out.size() < max_records) {
      const int wait_ms = out.empty() ? ToMillis(deadline - absl::Now()) : 0;
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
      NoteEnd();
      switch (m->err()) {
        case RdKafka::ERR_NO_ERROR: {
          if (m->partition() != partition_ || m->offset() < position_) continue;
          Record r;
          r.partition = partition_;
          r.offset = m->offset();
          if (m->key_pointer() != nullptr) {
            r.key.assign(static_cast<const char*>(m->key_pointer()), m->key_len());
          }
          r.value.assign(static_cast<const char*>(m->payload()), m->len());
          r.timestamp = absl::FromUnixMillis(m->timestamp().timestamp);
          position_ = r.offset + 1;
          out.push_back(std::move(r));
          break;
        }
        case RdKafka::ERR__PARTITION_EOF:
          // At the end: the EOF offset is past any trailing transaction markers, so position()
          // reaches EndOffset() even when the last offsets hold no records.
          position_ = std::max(position_, m->offset());
          if (!out.empty() || absl::Now() >= deadline) return out;
          break;
        case RdKafka::ERR__TIMED_OUT:
          return out;
        case RdKafka::ERR__AUTO_OFFSET_RESET:
        case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
          return absl::DataLossError(
              absl::StrCat("kafka log partition ", partition_, " offset ", position_,
                           ": no longer available on the broker (retention?): ", m->errstr()));
        default:
          if (!out.empty()) return out;
          return absl::UnavailableError(
              absl::StrCat("kafka log partition ", partition_, ": read failed: ", m->errstr()));
      }
    }
    return out;
  }

  int64_t position() const override { return position_; }

 private:
  // The high watermark from the last fetch response (librdkafka's cache; no request).
  void NoteEnd() {
    int64_t low = -1, high = -1;
    if (consumer_->get_watermark_offsets(topic_, partition_, &low, &high) !=
            RdKafka::ERR_NO_ERROR ||
        high < 0) {
      return;
    }
    int64_t seen = known_end_->load(std::memory_order_relaxed);
    while (high > seen && !known_end_->compare_exchange_weak(seen, high)) {
    }
  }

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::string topic_;
  int32_t partition_;
  int64_t position_;
  std::atomic<int64_t>* known_end_;
};

}  // namespace

KafkaLog::KafkaLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaLog::~KafkaLog() {
  {
    absl::MutexLock lock(&impl_->keys_mu);
    if (impl_->keys_consumer) impl_->keys_consumer->close();
    impl_->keys_consumer.reset();
  }
  {
    absl::MutexLock lock(&impl_->probe_mu);
    impl_->probe_stop = true;
    impl_->probe_wake.Signal();
  }
  if (impl_->prober.joinable()) impl_->prober.join();
  if (impl_->producer) impl_->producer->flush(ToMillis(impl_->options.timeout));
}

void KafkaLog::FreshEndOffsets(absl::Duration timeout,
                               std::function<void(const std::vector<int64_t>&, bool)> done) {
  {
    absl::MutexLock lock(&impl_->probe_mu);
    if (!impl_->probe_stop) {
      impl_->probe_waiting.emplace_back(std::move(done), timeout);
      impl_->probe_wake.Signal();
      return;
    }
  }
  done(impl_->KnownEnds(), /*inline_call=*/true);
}

absl::StatusOr<std::unique_ptr<KafkaLog>> KafkaLog::Open(const KafkaLogOptions& options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("kafka bootstrap servers: required");
  }
  if (options.topic.empty()) return absl::InvalidArgumentError("kafka topic: required");
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  const std::string timeout_ms = absl::StrCat(std::max(1000, ToMillis(options.timeout)));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "bootstrap.servers", options.bootstrap_servers));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "client.id", "leadflow-writer"));
  // librdkafka's defaults differ from Java's: be explicit.
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.idempotence", "true"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "acks", "all"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "partitioner", "murmur2_random"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "allow.auto.create.topics", "false"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "linger.ms", "1"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "message.timeout.ms", timeout_ms));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "message.max.bytes",
                               absl::StrCat(options.max_message_bytes + size_t{64} * 1024)));
  if (!options.transactional_id.empty()) {
    LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "transactional.id", options.transactional_id));
    LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "transaction.timeout.ms",
                                 absl::StrCat(std::max(2000, ToMillis(options.timeout)))));
  }
  for (const auto& [k, v] : options.properties) LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), k, v));
  std::string err;
  if (conf->set("dr_cb", &impl->delivery, err) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka: cannot set delivery callback: ", err));
  }
  impl->producer.reset(RdKafka::Producer::create(conf.get(), err));
  if (!impl->producer) return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", err));

  // Learn the partition count; refuse a missing topic rather than auto-creating a wrong one.
  std::unique_ptr<RdKafka::Topic> topic(
      RdKafka::Topic::create(impl->producer.get(), options.topic, nullptr, err));
  if (!topic) return absl::InvalidArgumentError(absl::StrCat("kafka topic: ", err));
  RdKafka::Metadata* raw_md = nullptr;
  RdKafka::ErrorCode ec =
      impl->producer->metadata(false, topic.get(), &raw_md, ToMillis(options.timeout));
  std::unique_ptr<RdKafka::Metadata> md(raw_md);
  if (ec != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka: cannot fetch metadata from ",
                                               options.bootstrap_servers, ": ",
                                               RdKafka::err2str(ec)));
  }
  if (md->topics()->empty() || md->topics()->at(0)->err() != RdKafka::ERR_NO_ERROR ||
      md->topics()->at(0)->partitions()->empty()) {
    std::string why =
        md->topics()->empty() ? "not in metadata" : RdKafka::err2str(md->topics()->at(0)->err());
    return absl::FailedPreconditionError(
        absl::StrCat("kafka topic ", options.topic, " is not usable on ", options.bootstrap_servers,
                     " (", why, "); create it first, e.g. deploy/kafka/create-topics.sh"));
  }
  impl->partitions = static_cast<int32_t>(md->topics()->at(0)->partitions()->size());
  impl->known_end = std::make_unique<std::atomic<int64_t>[]>(impl->partitions);
  for (int32_t p = 0; p < impl->partitions; ++p) impl->known_end[p] = -1;
  if (options.expected_partitions > 0 && impl->partitions != options.expected_partitions) {
    return absl::FailedPreconditionError(
        absl::StrCat("kafka topic ", options.topic, " has ", impl->partitions,
                     " partitions, expected ", options.expected_partitions,
                     "; a different count would move leads between partitions and writers"));
  }

  if (!options.keys_topic.empty()) {
    std::unique_ptr<RdKafka::Topic> keys(
        RdKafka::Topic::create(impl->producer.get(), options.keys_topic, nullptr, err));
    RdKafka::Metadata* raw_keys = nullptr;
    if (keys && impl->producer->metadata(false, keys.get(), &raw_keys, ToMillis(options.timeout)) ==
                    RdKafka::ERR_NO_ERROR) {
      std::unique_ptr<RdKafka::Metadata> keys_md(raw_keys);
      if (!keys_md->topics()->empty() && keys_md->topics()->at(0)->err() == RdKafka::ERR_NO_ERROR) {
        impl->key_partitions = static_cast<int32_t>(keys_md->topics()->at(0)->partitions()->size());
      }
    } else {
      delete raw_keys;
    }
  }

  if (!options.transactional_id.empty()) {
    const absl::Time deadline = absl::Now() + options.timeout;
    while (true) {
      RdKafka::Error* e = impl->producer->init_transactions(ToMillis(options.timeout));
      if (e == nullptr) break;
      if (e->is_retriable() && absl::Now() < deadline) {
        delete e;
        continue;
      }
      return FromTxnError(e, "init transactions");
    }
  }
  impl->prober = std::thread([raw = impl.get()] { raw->ProbeLoop(); });
  return std::unique_ptr<KafkaLog>(new KafkaLog(std::move(impl)));
}

std::string KafkaLog::Describe() const {
  return absl::StrCat("kafka:", impl_->options.bootstrap_servers, "/", impl_->options.topic);
}

int32_t KafkaLog::partition_count() const { return impl_->partitions; }

absl::StatusOr<std::vector<AppendResult>> KafkaLog::AppendMany(
    absl::Span<const PartitionAppend> appends) {
  LEADFLOW_RETURN_IF_ERROR(
      ValidateAppendMany(appends, impl_->partitions, impl_->options.max_message_bytes));
  size_t total = 0, key_records = 0;
  for (const PartitionAppend& a : appends) {
    total += a.batch.size();
    key_records += a.keys.size();
  }
  if (key_records > 0 && impl_->key_partitions == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("kafka log: no keys topic ", impl_->options.keys_topic,
                     " (deploy/kafka/create-topics.sh creates it); data keys cannot be written"));
  }
  if (key_records > 0 && impl_->options.transactional_id.empty()) {
    return absl::FailedPreconditionError(
        "kafka log: data keys are written only in a transaction with their events "
        "(a writer has a transactional id)");
  }
  const size_t events = total;
  total += key_records;
  absl::MutexLock lock(&impl_->append_mu);
  if (!impl_->fatal.empty()) return absl::UnavailableError(impl_->fatal);
  RdKafka::Producer* producer = impl_->producer.get();
  const bool transactional = !impl_->options.transactional_id.empty();
  const absl::Time deadline = absl::Now() + impl_->options.timeout;

  // A fatal producer error (e.g. fenced) leaves the producer unusable for good.
  // The lambdas run under `lock` (the analysis does not carry it into a lambda's body).
  auto check_fatal = [&](absl::Status st) {
    impl_->append_mu.AssertHeld();
    std::string reason;
    if (producer->fatal_error(reason) != RdKafka::ERR_NO_ERROR) {
      impl_->fatal =
          absl::StrCat("kafka log: producer failed permanently: ", reason, " (restart the writer)");
      return absl::UnavailableError(impl_->fatal);
    }
    return st;
  };
  auto remaining_ms = [&] {
    return static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
  };
  // Aborts the open transaction within the deadline; if the brokers do not answer, the abort is
  // retried at the start of the next Append (abort_pending).
  auto abort_open = [&](absl::string_view what) -> absl::Status {
    impl_->append_mu.AssertHeld();
    if (RdKafka::Error* e = producer->abort_transaction(remaining_ms()); e != nullptr) {
      impl_->abort_pending = e->is_retriable();
      return check_fatal(FromTxnError(e, what));
    }
    impl_->abort_pending = false;
    return absl::OkStatus();
  };
  // Gives up this append because of `cause`: aborts its transaction, reports `cause`.
  auto abort_txn = [&](const absl::Status& cause) -> absl::Status {
    if (transactional) {
      LEADFLOW_RETURN_IF_ERROR(abort_open(absl::StrCat("abort after: ", cause.message())));
    }
    return check_fatal(cause);
  };

  // Commits the open transaction within the deadline. A timeout leaves it open (commit_pending):
  // the caller reports UNAVAILABLE (outcome unknown) and the next Append finishes the commit.
  auto commit = [&](absl::string_view what) -> absl::Status {
    impl_->append_mu.AssertHeld();
    while (true) {
      RdKafka::Error* e = producer->commit_transaction(remaining_ms());
      if (e == nullptr) {
        impl_->commit_pending = false;
        return absl::OkStatus();
      }
      if (e->txn_requires_abort()) {
        impl_->commit_pending = false;
        return abort_txn(FromTxnError(e, what));
      }
      if (e->is_retriable()) {
        impl_->commit_pending = true;
        if (absl::Now() < deadline) {
          delete e;
          continue;
        }
        return check_fatal(
            FromTxnError(e, absl::StrCat(what, " (the brokers did not answer within ",
                                         absl::FormatDuration(impl_->options.timeout),
                                         "; outcome unknown, the next append completes it)")));
      }
      return check_fatal(FromTxnError(e, what));
    }
  };
  if (transactional && impl_->abort_pending) {
    // The previous append's abort timed out: finish it before starting anything new.
    LEADFLOW_RETURN_IF_ERROR(abort_open("abort of an earlier append"));
  }
  if (transactional && impl_->commit_pending) {
    // The previous append's commit timed out: finish it before starting anything new.
    LEADFLOW_RETURN_IF_ERROR(commit("commit of an earlier append"));
  }
  if (transactional) {
    if (RdKafka::Error* e = producer->begin_transaction(); e != nullptr) {
      return check_fatal(FromTxnError(e, "begin transaction"));
    }
  }
  auto state = std::make_shared<AppendState>(total);
  std::atomic<size_t>& pending = state->pending;
  std::vector<Slot>& slots = state->slots;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  size_t produced = 0;
  for (const PartitionAppend& a : appends) {
    for (size_t i = 0; i < a.batch.size(); ++i, ++produced) {
      const Message& m = a.batch[i];
      auto ref = std::make_unique<SlotRef>(SlotRef{state, produced});
      while (true) {
        RdKafka::ErrorCode ec =
            producer->produce(impl_->options.topic, a.partition, RdKafka::Producer::RK_MSG_COPY,
                              const_cast<char*>(m.value.data()), m.value.size(), m.key.data(),
                              m.key.size(), now_ms, ref.get());
        if (ec == RdKafka::ERR_NO_ERROR) {
          (void)ref.release();  // the delivery report owns it now
          break;
        }
        if (ec == RdKafka::ERR__QUEUE_FULL && absl::Now() < deadline) {
          producer->poll(10);
          continue;
        }
        // Records already queued are aborted with the transaction; without a transaction they
        // may still be delivered (documented).
        pending.fetch_sub(total - produced);
        absl::Status cause =
            absl::UnavailableError(absl::StrCat("kafka log: produce to partition ", a.partition,
                                                " batch[", i, "] failed: ", RdKafka::err2str(ec)));
        absl::Status st = abort_txn(cause);
        while (pending.load() > 0 && absl::Now() < deadline) producer->poll(10);
        return st;
      }
    }
  }
  // The data keys, in the same transaction: committed (and visible to read_committed readers)
  // together with the events they open, or not at all.
  for (const PartitionAppend& a : appends) {
    for (const KeyRecord& k : a.keys) {
      auto ref = std::make_unique<SlotRef>(SlotRef{state, produced++});
      const int32_t kp = PartitionForKey(k.lead_id, impl_->key_partitions);
      while (true) {
        RdKafka::ErrorCode ec = producer->produce(
            impl_->options.keys_topic, kp, RdKafka::Producer::RK_MSG_COPY,
            k.wrapped.empty() ? nullptr : const_cast<char*>(k.wrapped.data()), k.wrapped.size(),
            k.lead_id.data(), k.lead_id.size(), now_ms, ref.get());
        if (ec == RdKafka::ERR_NO_ERROR) {
          (void)ref.release();  // the delivery report owns it now
          break;
        }
        if (ec == RdKafka::ERR__QUEUE_FULL && absl::Now() < deadline) {
          producer->poll(10);
          continue;
        }
        pending.fetch_sub(total - produced + 1);
        absl::Status st = abort_txn(absl::UnavailableError(
            absl::StrCat("kafka log: produce to the keys topic failed: ", RdKafka::err2str(ec))));
        while (pending.load() > 0 && absl::Now() < deadline) producer->poll(10);
        return st;
      }
    }
  }
  if (transactional) LEADFLOW_RETURN_IF_ERROR(commit("commit"));
  // Delivery reports are served by commit_transaction's flush; serve any stragglers.
  while (pending.load() > 0 && absl::Now() < deadline) producer->poll(10);
  if (pending.load() > 0) {
    return check_fatal(absl::UnavailableError(absl::StrCat(
        "kafka log: ", pending.load(), " of ", total, " records not acknowledged within ",
        absl::FormatDuration(impl_->options.timeout))));
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].err != RdKafka::ERR_NO_ERROR) {
      return check_fatal(absl::UnavailableError(
          absl::StrCat("kafka log: record ", i, " not delivered: ", slots[i].errstr)));
    }
  }
  // This process knows its own keys at once (other processes catch up on a miss).
  if (key_records > 0) {
    absl::MutexLock keys_lock(&impl_->keys_mu);
    for (const PartitionAppend& a : appends) {
      for (const KeyRecord& k : a.keys) impl_->keys[k.lead_id] = k.wrapped;
    }
  }
  (void)events;
  std::vector<AppendResult> results;
  size_t at = 0;
  for (const PartitionAppend& a : appends) {
    results.push_back(
        AppendResult{a.partition, slots[at].offset, slots[at + a.batch.size() - 1].offset});
    at += a.batch.size();
  }
  return results;
}

absl::StatusOr<int64_t> KafkaLog::KnownEndOffset(int32_t partition) {
  LEADFLOW_RETURN_IF_ERROR(CheckPartition("partition", partition, impl_->partitions));
  const int64_t end = impl_->known_end[partition].load(std::memory_order_relaxed);
  if (end < 0) {
    return absl::UnavailableError(absl::StrCat("kafka log partition ", partition,
                                               ": end offset not known yet (no fetch answered)"));
  }
  return end;
}

absl::StatusOr<int64_t> KafkaLog::EndOffset(int32_t partition) {
  LEADFLOW_RETURN_IF_ERROR(CheckPartition("partition", partition, impl_->partitions));
  int64_t low = 0, high = 0;
  RdKafka::ErrorCode ec = impl_->producer->query_watermark_offsets(
      impl_->options.topic, partition, &low, &high, ToMillis(impl_->options.timeout));
  if (ec != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "kafka log partition ", partition, ": cannot query end offset: ", RdKafka::err2str(ec)));
  }
  return high;
}

absl::StatusOr<std::unique_ptr<LogReader>> KafkaLog::OpenReader(int32_t partition,
                                                                int64_t from_offset) {
  LEADFLOW_RETURN_IF_ERROR(CheckPartition("partition", partition, impl_->partitions));
  if (from_offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_offset: must not be negative (got ", from_offset, ")"));
  }
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "bootstrap.servers", impl_->options.bootstrap_servers));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "client.id", "leadflow-reader"));
  // Required by the KafkaConsumer API; readers assign() a partition and never join or commit.
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "group.id", "leadflow-reader"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.commit", "false"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.offset.store", "false"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "isolation.level", "read_committed"));
  // Never skip silently: a start offset the broker no longer has is an error.
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "auto.offset.reset", "error"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.partition.eof", "true"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "fetch.wait.max.ms", "50"));
  // (allow.auto.create.topics is already false for consumers; setting it only makes librdkafka
  // warn on brokers that report old metadata versions, such as the mock cluster.)
  for (const auto& [k, v] : impl_->options.properties) {
    LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), k, v));
  }
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", err));
  std::unique_ptr<RdKafka::TopicPartition> tp(
      RdKafka::TopicPartition::create(impl_->options.topic, partition, from_offset));
  std::vector<RdKafka::TopicPartition*> assignment{tp.get()};
  if (RdKafka::ErrorCode ec = consumer->assign(assignment); ec != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka log partition ", partition, ": assign failed: ", RdKafka::err2str(ec)));
  }
  return std::unique_ptr<LogReader>(new KafkaReader(std::move(consumer), impl_->options.topic,
                                                    partition, from_offset,
                                                    &impl_->known_end[partition]));
}

// ---- Key store ------------------------------------------------------------------------------

bool KafkaLog::HasKeyStore() const { return impl_->key_partitions > 0; }

absl::Status KafkaLog::Impl::OpenKeysConsumer() {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "bootstrap.servers", options.bootstrap_servers));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "client.id", "leadflow-keys"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "group.id", "leadflow-keys"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.commit", "false"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.auto.offset.store", "false"));
  // Only committed keys: those of events a read_committed reader can see.
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "isolation.level", "read_committed"));
  // A compacted topic starts wherever compaction left it.
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "auto.offset.reset", "earliest"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "enable.partition.eof", "true"));
  LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), "fetch.wait.max.ms", "20"));
  for (const auto& [k, v] : options.properties) LEADFLOW_RETURN_IF_ERROR(Set(conf.get(), k, v));
  std::string err;
  keys_consumer.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!keys_consumer) return absl::InvalidArgumentError(absl::StrCat("kafka keys consumer: ", err));
  std::vector<RdKafka::TopicPartition*> assignment;
  assignment.reserve(key_partitions);
  for (int32_t p = 0; p < key_partitions; ++p) {
    assignment.push_back(
        RdKafka::TopicPartition::create(options.keys_topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  RdKafka::ErrorCode ec = keys_consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (ec != RdKafka::ERR_NO_ERROR) {
    keys_consumer.reset();
    return absl::UnavailableError(
        absl::StrCat("kafka keys topic: assign failed: ", RdKafka::err2str(ec)));
  }
  keys_position.assign(key_partitions, 0);
  return absl::OkStatus();
}

// Reads the keys topic up to its committed end as of now (bounded: UNAVAILABLE past it).
absl::Status KafkaLog::Impl::CatchUpKeys() {
  if (keys_consumer == nullptr) LEADFLOW_RETURN_IF_ERROR(OpenKeysConsumer());
  const absl::Duration bound = std::min(options.timeout, absl::Seconds(10));
  const absl::Time deadline = absl::Now() + bound;
  // The end of each keys partition (ListOffsets, bounded even while a broker is away).
  std::vector<RdKafka::TopicPartition*> tps;
  tps.reserve(key_partitions);
  for (int32_t p = 0; p < key_partitions; ++p) {
    tps.push_back(RdKafka::TopicPartition::create(options.keys_topic, p, -1));
  }
  std::vector<int64_t> ends(key_partitions, -1);
  const RdKafka::ErrorCode listed = producer->offsetsForTimes(tps, ToMillis(bound));
  for (RdKafka::TopicPartition* tp : tps) {
    if (listed == RdKafka::ERR_NO_ERROR && tp->err() == RdKafka::ERR_NO_ERROR) {
      ends[tp->partition()] = tp->offset();
    }
  }
  RdKafka::TopicPartition::destroy(tps);
  if (listed != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka keys topic: cannot learn its end: ", RdKafka::err2str(listed)));
  }
  // Done with a partition once its position reaches the end as listed (the high watermark):
  // a read_committed consumer gets there only when every transaction before it is resolved, so
  // every key committed before this call (with the events that need it) has been read. An EOF
  // before it (a commit marker not written yet on this partition, though the event's partition
  // already has its own) is not the end: stopping there would take a committed key for absent.
  auto all_done = [&] {
    keys_mu.AssertHeld();  // held by the caller (the analysis does not look into lambdas)
    for (int32_t p = 0; p < key_partitions; ++p) {
      if (keys_position[p] < ends[p]) return false;
    }
    return true;
  };
  while (!all_done()) {
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("kafka keys topic: not read to its end within ",
                                                 absl::FormatDuration(bound)));
    }
    std::unique_ptr<RdKafka::Message> m(keys_consumer->consume(50));
    switch (m->err()) {
      case RdKafka::ERR_NO_ERROR: {
        const int32_t p = m->partition();
        if (p < 0 || p >= key_partitions || m->key() == nullptr) break;
        if (m->payload() == nullptr || m->len() == 0) {
          keys[*m->key()] = "";  // destroyed
        } else {
          keys[*m->key()] = std::string(static_cast<const char*>(m->payload()), m->len());
        }
        keys_position[p] = m->offset() + 1;
        break;
      }
      case RdKafka::ERR__PARTITION_EOF: {
        const int32_t p = m->partition();
        if (p >= 0 && p < key_partitions) {
          keys_position[p] = std::max(keys_position[p], m->offset());
        }
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        return absl::UnavailableError(absl::StrCat("kafka keys topic: read failed: ", m->errstr()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> KafkaLog::ReadKey(const std::string& lead_id) {
  if (impl_->key_partitions == 0) return absl::NotFoundError("kafka log: no keys topic");
  absl::MutexLock lock(&impl_->keys_mu);
  auto found = impl_->keys.find(lead_id);
  if (found == impl_->keys.end()) {
    const bool writer = !impl_->options.transactional_id.empty();
    if (!writer || !impl_->keys_read_once) {
      LEADFLOW_RETURN_IF_ERROR(impl_->CatchUpKeys());
      impl_->keys_read_once = true;
    }
    found = impl_->keys.find(lead_id);
    // Read to the end: a lead this process holds a sealed event of has its key by now, unless
    // it was destroyed (and its tombstone compacted away). Remembered, so its other events do
    // not each cost a catch-up.
    if (found == impl_->keys.end()) found = impl_->keys.emplace(lead_id, "").first;
  }
  if (found->second.empty()) return absl::NotFoundError("no data key");
  return found->second;
}

void KafkaLog::ForgetKey(const std::string& lead_id) {
  absl::MutexLock lock(&impl_->keys_mu);
  impl_->keys[lead_id] = "";
}

// ---- Mock cluster ---------------------------------------------------------------------------

struct MockKafkaCluster::Impl {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
};

MockKafkaCluster::MockKafkaCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MockKafkaCluster::~MockKafkaCluster() {
  if (impl_->cluster) rd_kafka_mock_cluster_destroy(impl_->cluster);
  if (impl_->rk) rd_kafka_destroy(impl_->rk);
}

absl::StatusOr<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(int brokers) {
  if (brokers < 1) return absl::InvalidArgumentError("brokers: must be at least 1");
  auto impl = std::make_unique<Impl>();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // The handle only hosts the mock brokers' threads; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (impl->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("mock kafka: ", err));
  }
  impl->cluster = rd_kafka_mock_cluster_new(impl->rk, brokers);
  if (impl->cluster == nullptr) return absl::InternalError("mock kafka: cluster creation failed");
  return std::unique_ptr<MockKafkaCluster>(new MockKafkaCluster(std::move(impl)));
}

std::string MockKafkaCluster::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

absl::Status MockKafkaCluster::CreateTopic(const std::string& topic, int partitions) {
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("mock kafka: create topic ", topic, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status MockKafkaCluster::SetBrokerDown(int32_t broker_id, bool down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(impl_->cluster, broker_id)
                                 : rd_kafka_mock_broker_set_up(impl_->cluster, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("mock kafka: broker ", broker_id, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

void MockKafkaCluster::PushRequestErrors(int16_t api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, codes.size(), codes.data());
}

absl::Status MockKafkaCluster::SetRoundTripTime(int32_t broker_id, absl::Duration rtt) {
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(
      impl_->cluster, broker_id, static_cast<int>(absl::ToInt64Milliseconds(rtt)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("mock kafka: rtt of broker ", broker_id, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::log

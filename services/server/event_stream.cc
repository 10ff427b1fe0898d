#include "services/server/event_stream.h"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/log/event_codec.h"
#include "services/server/grpc_status.h"

namespace leadflow::server {
namespace {

constexpr char kMethod[] = "leadflow.v1.EventStreamService/StreamEvents";

class Refused final : public grpc::ServerWriteReactor<v1::StreamedEvent> {
 public:
  explicit Refused(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

class Stream final : public grpc::ServerWriteReactor<v1::StreamedEvent> {
 public:
  Stream(log::EventLog* log, privacy::Vault* vault, std::vector<int64_t> from, bool stop_at_end,
         std::shared_ptr<std::atomic<int>> open)
      : log_(log),
        vault_(vault),
        from_(std::move(from)),
        stop_at_end_(stop_at_end),
        open_(std::move(open)) {
    thread_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) stop_ = true;
    cv_.notify_all();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  void OnDone() override {
    if (thread_.joinable()) thread_.join();
    --*open_;
    delete this;
  }

 private:
  bool Stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }
  // Sends one event; waits for the previous one to be written. False if the stream stopped.
  bool Send(v1::StreamedEvent message) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !writing_ || stop_; });
    if (stop_) return false;
    out_ = std::move(message);
    writing_ = true;
    StartWrite(&out_);
    return true;
  }
  void Done(const absl::Status& status) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !writing_ || stop_; });
    }
    Finish(status.ok() ? grpc::Status::OK : ToGrpcStatus(status));
  }

  void Run() {
    const int32_t partitions = static_cast<int32_t>(from_.size());
    std::vector<std::unique_ptr<log::LogReader>> readers(partitions);
    std::vector<int64_t> ends(partitions, -1);
    std::vector<bool> done(partitions, false);
    for (int32_t p = 0; p < partitions; ++p) {
      if (stop_at_end_) {
        absl::StatusOr<int64_t> end = log_->KnownEndOffset(p);
        if (!end.ok()) return Done(end.status());
        ends[p] = *end;
        done[p] = from_[p] >= *end;
      }
      if (done[p]) continue;
      absl::StatusOr<std::unique_ptr<log::LogReader>> reader = log_->OpenReader(p, from_[p]);
      if (!reader.ok()) {
        return Done(absl::Status(reader.status().code(), absl::StrCat("from (partition ", p, "): ",
                                                                      reader.status().message())));
      }
      readers[p] = *std::move(reader);
    }
    int idle_rounds = 0;
    while (!Stopped()) {
      bool any = false, all_done = true;
      for (int32_t p = 0; p < partitions; ++p) {
        if (done[p]) continue;
        all_done = false;
        absl::StatusOr<std::vector<log::Record>> records =
            readers[p]->Read(256, idle_rounds > 2 ? absl::Milliseconds(20) : absl::ZeroDuration());
        if (!records.ok()) return Done(records.status());
        for (const log::Record& r : *records) {
          if (stop_at_end_ && r.offset >= ends[p]) {
            done[p] = true;
            break;
          }
          absl::StatusOr<v1::Event> event = log::DecodeEvent(r);
          if (event.ok() && vault_ != nullptr) {
            vault_->Observe(*event);
            // Downstream gets the plaintext; an erased lead's personal fields stay absent.
            if (absl::Status opened = vault_->Open(&*event); !opened.ok()) event = opened;
          }
          if (!event.ok()) return Done(event.status());
          event->clear_sealed_personal();
          v1::StreamedEvent message;
          message.mutable_position()->set_partition(p);
          message.mutable_position()->set_offset(r.offset);
          *message.mutable_event() = *std::move(event);
          if (!Send(std::move(message))) return Done(absl::CancelledError("stream cancelled"));
          any = true;
          if (stop_at_end_ && r.offset + 1 >= ends[p]) done[p] = true;
        }
      }
      if (stop_at_end_ && all_done) break;
      idle_rounds = any ? 0 : idle_rounds + 1;
    }
    Done(Stopped() ? absl::CancelledError("stream cancelled") : absl::OkStatus());
  }

  log::EventLog* log_;
  privacy::Vault* vault_;
  std::vector<int64_t> from_;
  const bool stop_at_end_;
  std::shared_ptr<std::atomic<int>> open_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;
  bool stop_ = false;
  v1::StreamedEvent out_;
  std::thread thread_;
};

}  // namespace

grpc::ServerWriteReactor<v1::StreamedEvent>* EventStreamServiceImpl::StreamEvents(
    grpc::CallbackServerContext* ctx, const v1::StreamEventsRequest* request) {
  if (guard_ != nullptr) {
    absl::StatusOr<auth::Principal> who = guard_->Authenticate(*ctx);
    if (!who.ok()) return new Refused(who.status());
    if (absl::Status allowed = guard_->policy()->CheckMethod(*who, kMethod); !allowed.ok()) {
      return new Refused(allowed);
    }
  }
  const int32_t partitions = log_->partition_count();
  std::vector<int64_t> from(partitions, 0);
  std::set<int32_t> seen;
  for (int i = 0; i < request->from_size(); ++i) {
    const v1::LogPosition& at = request->from(i);
    if (at.partition() < 0 || at.partition() >= partitions) {
      return new Refused(absl::InvalidArgumentError(
          absl::StrCat("from[", i, "].partition: ", at.partition(), " is not a partition (0 to ",
                       partitions - 1, ")")));
    }
    if (at.offset() < 0) {
      return new Refused(absl::InvalidArgumentError(
          absl::StrCat("from[", i, "].offset: must not be negative (got ", at.offset(), ")")));
    }
    if (!seen.insert(at.partition()).second) {
      return new Refused(absl::InvalidArgumentError(
          absl::StrCat("from[", i, "]: partition ", at.partition(), " is given twice")));
    }
    from[at.partition()] = at.offset();
  }
  if (++*open_ > kMaxStreams) {
    --*open_;
    return new Refused(absl::ResourceExhaustedError(
        absl::StrCat("event streams: ", kMaxStreams, " are open on this process; retry later")));
  }
  return new Stream(log_, vault_, std::move(from), request->stop_at_end(), open_);
}

}  // namespace leadflow::server

#include "services/log/witness.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"

namespace leadflow::log {
namespace {

constexpr char kMagic[] = "LFW2";
constexpr size_t kDigestBytes = 16;
constexpr size_t kChecksumBytes = 16;
// Slot: magic (4), sequence (8), partitions (4), per partition end (8), record offset (8) and
// digest (16), checksum.
constexpr size_t kMarkBytes = 8 + 8 + kDigestBytes;
size_t SlotSize(int32_t partitions) {
  return 4 + 8 + 4 + static_cast<size_t>(partitions) * kMarkBytes + kChecksumBytes;
}

std::string Encode(uint64_t sequence, const std::vector<PartitionMark>& marks) {
  std::string out(kMagic, 4);
  char buf[8];
  absl::big_endian::Store64(buf, sequence);
  out.append(buf, 8);
  absl::big_endian::Store32(buf, static_cast<uint32_t>(marks.size()));
  out.append(buf, 4);
  for (const PartitionMark& m : marks) {
    absl::big_endian::Store64(buf, static_cast<uint64_t>(m.end));
    out.append(buf, 8);
    absl::big_endian::Store64(buf, static_cast<uint64_t>(m.record_offset));
    out.append(buf, 8);
    std::string digest = m.digest;
    digest.resize(kDigestBytes, '\0');
    out.append(digest);
  }
  out.append(common::Sha256Hex(out, kChecksumBytes));
  return out;
}

// The marks and sequence of a whole slot, or false.
bool Decode(absl::string_view slot, int32_t partitions, uint64_t* sequence,
            std::vector<PartitionMark>* marks) {
  if (slot.size() != SlotSize(partitions) || slot.substr(0, 4) != absl::string_view(kMagic, 4)) {
    return false;
  }
  const absl::string_view body = slot.substr(0, slot.size() - kChecksumBytes);
  if (common::Sha256Hex(body, kChecksumBytes) != slot.substr(body.size())) return false;
  if (absl::big_endian::Load32(slot.data() + 12) != static_cast<uint32_t>(partitions)) return false;
  *sequence = absl::big_endian::Load64(slot.data() + 4);
  marks->assign(partitions, PartitionMark());
  const char* p = slot.data() + 16;
  for (int32_t i = 0; i < partitions; ++i, p += kMarkBytes) {
    (*marks)[i].end = static_cast<int64_t>(absl::big_endian::Load64(p));
    (*marks)[i].record_offset = static_cast<int64_t>(absl::big_endian::Load64(p + 8));
    std::string digest(p + 16, kDigestBytes);
    digest.erase(digest.find_last_not_of('\0') + 1);
    (*marks)[i].digest = std::move(digest);
  }
  return true;
}

}  // namespace

std::string RecordDigest(absl::string_view value) { return common::Sha256Hex(value, kDigestBytes); }

absl::Status CheckMark(EventLog& log, int32_t partition, const PartitionMark& mark,
                       const std::string& witness) {
  if (mark.end <= 0) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(const int64_t end, log.EndOffset(partition));
  if (end < mark.end) {
    return absl::DataLossError(absl::StrCat(
        "log partition ", partition, " ends at offset ", end - 1, " (", end, " events) but ",
        witness, " had seen it up to offset ", mark.end - 1,
        ": acknowledged events are missing (a damaged or replaced log). Restore the log from "
        "a backup (leadflow restore), or start with --accept-data-loss to go on without them"));
  }
  if (mark.digest.empty() || mark.record_offset < 0) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(std::unique_ptr<LogReader> reader,
                            log.OpenReader(partition, mark.record_offset));
  absl::StatusOr<std::vector<Record>> records = reader->Read(1, absl::Seconds(10));
  if (!records.ok() && absl::IsDataLoss(records.status())) return records.status();
  LEADFLOW_RETURN_IF_ERROR(records.status());
  if (records->empty() || records->front().offset != mark.record_offset ||
      RecordDigest(records->front().value) != mark.digest) {
    return absl::DataLossError(absl::StrCat(
        "log partition ", partition, " holds another record at offset ", mark.record_offset,
        " than the one ", witness,
        " saw there: the log was replaced or rewritten. Restore it "
        "from a backup (leadflow restore), or start with --accept-data-loss to go on with it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WitnessFile>> WitnessFile::Open(const std::string& path,
                                                               int32_t partitions) {
  std::unique_ptr<WitnessFile> w(new WitnessFile());
  w->path_ = path;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  w->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  int read_fd = w->fd_;
  if (w->fd_ < 0 && (errno == EROFS || errno == ENOSPC || errno == EDQUOT)) {
    // A read-only or full disk (leadflow then starts read-only): read it now, open it for
    // writing once the disk takes writes again (WriteLocked).
    read_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (read_fd < 0 && errno != ENOENT) {
      return absl::UnavailableError(
          absl::StrCat("witness ", path, ": cannot open: ", std::strerror(errno)));
    }
  } else if (w->fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("witness ", path, ": cannot open: ", std::strerror(errno)));
  }
  const size_t slot = SlotSize(partitions);
  std::string bytes(2 * slot, '\0');
  const ssize_t n = read_fd < 0 ? 0 : ::pread(read_fd, bytes.data(), bytes.size(), 0);
  if (read_fd >= 0 && read_fd != w->fd_) ::close(read_fd);
  absl::MutexLock lock(&w->mu_);
  w->marks_.assign(partitions, PartitionMark());
  if (n <= 0) return w;  // a new file: no marks yet
  bool any = false;
  for (int s = 0; s < 2; ++s) {
    if (static_cast<size_t>(n) < (s + 1) * slot) break;
    uint64_t sequence = 0;
    std::vector<PartitionMark> marks;
    if (Decode(absl::string_view(bytes).substr(s * slot, slot), partitions, &sequence, &marks) &&
        (!any || sequence > w->sequence_)) {
      any = true;
      w->sequence_ = sequence;
      w->marks_ = std::move(marks);
    }
  }
  w->damaged_ = !any;
  return w;
}

absl::StatusOr<std::vector<PartitionMark>> WitnessFile::Read(const std::string& path,
                                                             int32_t partitions) {
  std::vector<PartitionMark> marks(partitions);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return marks;
    return absl::UnavailableError(
        absl::StrCat("witness ", path, ": cannot open: ", std::strerror(errno)));
  }
  const size_t slot = SlotSize(partitions);
  std::string bytes(2 * slot, '\0');
  const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
  ::close(fd);
  uint64_t best = 0;
  bool any = false;
  for (int s = 0; s < 2 && n > 0; ++s) {
    if (static_cast<size_t>(n) < (s + 1) * slot) break;
    uint64_t sequence = 0;
    std::vector<PartitionMark> found;
    if (Decode(absl::string_view(bytes).substr(s * slot, slot), partitions, &sequence, &found) &&
        (!any || sequence > best)) {
      any = true;
      best = sequence;
      marks = std::move(found);
    }
  }
  if (n > 0 && !any) {
    return absl::DataLossError(absl::StrCat("witness ", path, ": no whole slot (damaged)"));
  }
  return marks;
}

WitnessFile::~WitnessFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<PartitionMark> WitnessFile::marks() const {
  absl::MutexLock lock(&mu_);
  return marks_;
}

absl::Status WitnessFile::Advance(const std::vector<std::pair<int32_t, PartitionMark>>& marks) {
  absl::MutexLock lock(&mu_);
  bool changed = false;
  for (const auto& [p, m] : marks) {
    if (p < 0 || p >= static_cast<int32_t>(marks_.size()) || m.end <= marks_[p].end) continue;
    marks_[p] = m;
    changed = true;
  }
  return changed ? WriteLocked() : absl::OkStatus();
}

absl::Status WitnessFile::Reset(const std::vector<PartitionMark>& marks) {
  absl::MutexLock lock(&mu_);
  marks_ = marks;
  return WriteLocked();
}

absl::Status WitnessFile::WriteLocked() {
  ++sequence_;
  const std::string slot = Encode(sequence_, marks_);
  const off_t at = static_cast<off_t>((sequence_ % 2) * slot.size());
  if (fd_ < 0) fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0 || ::pwrite(fd_, slot.data(), slot.size(), at) != static_cast<ssize_t>(slot.size())) {
    return absl::UnavailableError(
        absl::StrCat("witness ", path_, ": cannot write: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::log

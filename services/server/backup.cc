#include "services/server/backup.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "projections/reprocessing/reprocessing_view.h"
#include "projections/runner/runner.h"
#include "services/common/status_util.h"
#include "services/log/embedded_log.h"
#include "services/log/kafka_log.h"
#include "services/log/witness.h"
#include "services/server/views.h"
#include "services/privacy/vault.h"
#include "services/storage/fault_policy.h"

namespace leadflow::server {
namespace {

namespace fs = std::filesystem;

constexpr char kBackupFile[] = "backup.json";

fs::path IdKeyPath(const NodeOptions& o) {
  return o.id_key_file.empty() ? fs::path(o.data_dir) / "writer" / "ids.key"
                               : fs::path(o.id_key_file);
}

fs::path KekPath(const NodeOptions& o) {
  return o.kek_file.empty() ? fs::path(o.data_dir) / "keys" / "kek" : fs::path(o.kek_file);
}

uint64_t TreeBytes(const fs::path& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += it->file_size(ec);
  }
  return bytes;
}

absl::Status CopyFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

// RocksDB's checkpoints hard-link table files when the backup is on the same filesystem: a bad
// block in a live file would then be in the backup too. Each linked file is copied, so the
// backup shares nothing with the data it was taken from.
absl::Status UnshareFiles(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || fs::hard_link_count(it->path(), ec) <= 1) continue;
    const fs::path copy = it->path().string() + ".copy";
    if (absl::Status st = CopyFile(it->path(), copy); !st.ok()) return st;
    fs::rename(copy, it->path(), ec);
    if (ec) break;
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("backup: cannot copy the files of ", dir.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteTextFile(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

// The next offset of every partition a store has applied.
absl::StatusOr<std::vector<int64_t>> AppliedOffsets(const projections::ViewStore& store,
                                                    int32_t partitions) {
  std::vector<int64_t> applied;
  for (int32_t p = 0; p < partitions; ++p) {
    LEADFLOW_ASSIGN_OR_RETURN(applied.emplace_back(), store.StoredOffset(p));
  }
  return applied;
}

// Opens the log of `o` for reading only: the embedded log read-only (its partition count as
// stored), Kafka without a transactional id (the running writer is never fenced).
absl::StatusOr<std::unique_ptr<log::EventLog>> OpenLogForReading(const NodeOptions& o) {
  if (o.kafka_mock) {
    return absl::InvalidArgumentError("--kafka-mock holds no events outside the process");
  }
  if (!o.kafka_brokers.empty()) {
    log::KafkaLogOptions k;
    k.bootstrap_servers = o.kafka_brokers;
    k.topic = o.kafka_topic;
    k.properties = o.kafka_properties;
    LEADFLOW_ASSIGN_OR_RETURN(auto kafka, log::KafkaLog::Open(k));
    return std::unique_ptr<log::EventLog>(std::move(kafka));
  }
  log::EmbeddedLogOptions e;
  e.dir = (fs::path(o.data_dir) / "log").string();
  e.partitions = 0;
  e.read_only = true;
  e.block_cache_bytes = 16 << 20;
  LEADFLOW_ASSIGN_OR_RETURN(auto embedded, log::EmbeddedLog::Open(e));
  return std::unique_ptr<log::EventLog>(std::move(embedded));
}

// Checks one view of the data directory; `scratch` is where its rebuild goes.
absl::Status VerifyView(const NodeOptions& o, log::EventLog& log, privacy::Vault* vault,
                        const std::string& name, const fs::path& scratch,
                        const std::function<void(const std::string&)>& say) {
  const ViewSpec* spec = FindView(name);
  if (spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("no view named ", name));
  std::unique_ptr<projections::Projection> made = spec->projection(o);
  projections::Projection* projection = made.get();
  const fs::path dir = fs::path(o.data_dir) / "views" / name;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    say(absl::StrCat("view ", name, ": none stored (it is built from the log at the next start)"));
    return absl::OkStatus();
  }
  projections::ViewStoreOptions ro;
  ro.read_only = true;
  ro.block_cache_bytes = 16 << 20;
  absl::StatusOr<std::unique_ptr<projections::ViewStore>> live =
      projections::OpenProjectionStore(dir.string(), *projection, ro);
  if (!live.ok() && live.status().GetPayload(projections::kFormatMismatch).has_value()) {
    say(absl::StrCat("view ", name, ": ", live.status().message(),
                     "; it is rebuilt from the log at the next start (not checked)"));
    return absl::OkStatus();
  }
  if (!live.ok()) {
    return absl::DataLossError(
        absl::StrCat("view ", name, ": cannot be opened: ", live.status().message()));
  }
  LEADFLOW_RETURN_IF_ERROR(projections::CheckViewAgainstLog(log, **live, name));
  LEADFLOW_ASSIGN_OR_RETURN(const std::vector<int64_t> applied,
                            AppliedOffsets(**live, log.partition_count()));

  const fs::path rebuild_dir = scratch / name;
  fs::remove_all(rebuild_dir, ec);
  int64_t rows = 0;
  {
    projections::ViewStoreOptions w;
    w.without_wal = true;
    w.block_cache_bytes = 16 << 20;
    LEADFLOW_ASSIGN_OR_RETURN(
        std::unique_ptr<projections::ViewStore> rebuilt,
        projections::OpenProjectionStore(rebuild_dir.string(), *projection, w));
    projections::RunnerOptions rebuild_options;
    rebuild_options.vault = vault;
    projections::ProjectionRunner runner(&log, rebuilt.get(), projection, rebuild_options);
    projections::ProjectionRunner* runners[] = {&runner};
    LEADFLOW_RETURN_IF_ERROR(projections::ProjectionRunner::CatchUpAll(runners, nullptr, &applied));
    LEADFLOW_ASSIGN_OR_RETURN(const std::vector<int64_t> reached,
                              AppliedOffsets(*rebuilt, log.partition_count()));
    if (reached != applied) {
      return absl::DataLossError(
          absl::StrCat("view ", name, ": applied the log up to ", absl::StrJoin(applied, ","),
                       " but the log can be read only up to ", absl::StrJoin(reached, ",")));
    }
    LEADFLOW_ASSIGN_OR_RETURN(rows, CompareStores(**live, *rebuilt, name));
  }
  fs::remove_all(rebuild_dir, ec);
  int64_t events = 0;
  for (int64_t a : applied) events += a;
  say(absl::StrCat("view ", name, ": ", rows, " rows identical to a rebuild from the log (", events,
                   " events applied, offsets ", absl::StrJoin(applied, ","), ")"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::BackupReply> WriteBackup(const BackupSources& sources, const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("dir: required");
  const fs::path root(dir);
  if (!root.is_absolute()) {
    return absl::InvalidArgumentError(
        "dir: must be an absolute path (it is a directory on the server's machine)");
  }
  std::error_code ec;
  if (fs::exists(root, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("backup: ", dir, " already exists; give a directory that does not exist"));
  }
  if (!fs::is_directory(root.parent_path(), ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backup: ", root.parent_path().string(), " (the parent of the backup) does not exist"));
  }
  // Written under a temporary name and renamed when whole: a directory named like the backup is
  // always a complete one.
  const fs::path partial = root.string() + ".partial";
  fs::remove_all(partial, ec);
  fs::create_directory(partial, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("backup: cannot create ", partial.string(), ": ", ec.message()));
  }
  auto fail = [&](absl::Status why) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return why;
  };

  v1::BackupReply reply;
  reply.set_dir(dir);
  *reply.mutable_created_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
  // 1. Views (each a consistent copy of its rows and offsets), then 2. the writer's files, then
  // 3. the log: everything before the log in the backup is at or before its position.
  for (const auto& [name, store] : sources.views) {
    const fs::path to = partial / "views" / name;
    fs::create_directories(to.parent_path(), ec);
    if (absl::Status st = store->Checkpoint(to.string()); !st.ok()) {
      return fail(
          absl::Status(st.code(), absl::StrCat("backup of view ", name, ": ", st.message())));
    }
  }
  const fs::path data(sources.data_dir);
  if (fs::exists(sources.id_key_file, ec)) {
    if (absl::Status st = CopyFile(sources.id_key_file, partial / "writer" / "ids.key"); !st.ok()) {
      return fail(st);
    }
  }
  if (!sources.kek_file.empty() && fs::exists(sources.kek_file, ec)) {
    fs::create_directories(partial / "keys", ec);
    if (absl::Status st = CopyFile(sources.kek_file, partial / "keys" / "kek"); !st.ok()) {
      return fail(st);
    }
    fs::permissions(partial / "keys" / "kek", fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace, ec);
  }
  if (fs::exists(data / "writer" / "witness", ec)) {
    if (absl::Status st = CopyFile(data / "writer" / "witness", partial / "writer" / "witness");
        !st.ok()) {
      return fail(st);
    }
  }
  if (sources.log != nullptr) {
    absl::Status st = sources.log->Checkpoint((partial / "log").string());
    if (!st.ok() && !absl::IsUnimplemented(st)) {
      return fail(absl::Status(st.code(), absl::StrCat("backup of the log: ", st.message())));
    }
    if (st.ok()) {
      // The copy's exact position (appends went on while it was taken).
      log::EmbeddedLogOptions e;
      e.dir = (partial / "log").string();
      e.partitions = 0;
      e.read_only = true;
      e.block_cache_bytes = 8 << 20;
      absl::StatusOr<std::unique_ptr<log::EmbeddedLog>> copy = log::EmbeddedLog::Open(e);
      if (!copy.ok()) return fail(copy.status());
      for (int32_t p = 0; p < (*copy)->partition_count(); ++p) {
        absl::StatusOr<int64_t> end = (*copy)->EndOffset(p);
        if (!end.ok()) return fail(end.status());
        reply.add_log_ends(*end);
      }
    }
  }
  if (absl::Status st = UnshareFiles(partial); !st.ok()) return fail(st);
  // What each view copy had applied (read from the copies themselves).
  for (const auto& [name, store] : sources.views) {
    absl::StatusOr<std::vector<std::string>> families =
        projections::ViewStore::ListViewFamilies((partial / "views" / name).string());
    if (!families.ok()) return fail(families.status());
    projections::ViewStoreOptions ro;
    ro.dir = (partial / "views" / name).string();
    ro.column_families = *families;
    ro.read_only = true;
    ro.block_cache_bytes = 8 << 20;
    absl::StatusOr<std::unique_ptr<projections::ViewStore>> copy = projections::ViewStore::Open(ro);
    if (!copy.ok()) return fail(copy.status());
    v1::ViewBackup* view = reply.add_views();
    view->set_view(name);
    const int32_t partitions = reply.log_ends_size() > 0 ? reply.log_ends_size()
                                                         : static_cast<int32_t>(sources.partitions);
    absl::StatusOr<std::vector<int64_t>> applied = AppliedOffsets(**copy, partitions);
    if (!applied.ok()) return fail(applied.status());
    for (int64_t a : *applied) view->add_applied(a);
  }
  reply.set_bytes(static_cast<int64_t>(TreeBytes(partial)));
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(reply, &json, options);
  if (absl::Status st = WriteTextFile(partial / kBackupFile, json); !st.ok()) return fail(st);
  ::sync();  // the backup is on disk before it is named and reported
  fs::rename(partial, root, ec);
  if (ec) {
    return fail(absl::UnavailableError(
        absl::StrCat("backup: cannot rename ", partial.string(), " to ", dir, ": ", ec.message())));
  }
  return reply;
}

absl::StatusOr<v1::BackupReply> BackupStopped(const NodeOptions& options, const std::string& dir) {
  if (!options.kafka_brokers.empty() || options.kafka_mock) {
    return absl::FailedPreconditionError(
        "backup: with Kafka, back up through the running view process (--server)");
  }
  BackupSources sources;
  sources.data_dir = options.data_dir;
  sources.id_key_file = IdKeyPath(options).string();
  if (options.kek_file.empty()) sources.kek_file = KekPath(options).string();
  // Opened for writing (not read-only): that takes each store's lock, so this refuses to run
  // beside a leadflow serving the directory (which must be asked with --server instead).
  log::EmbeddedLogOptions e;
  e.dir = (fs::path(options.data_dir) / "log").string();
  std::error_code ec;
  if (!fs::is_directory(e.dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("backup: ", options.data_dir, " holds no log"));
  }
  e.partitions = options.partitions;
  LEADFLOW_ASSIGN_OR_RETURN(std::unique_ptr<log::EmbeddedLog> log, log::EmbeddedLog::Open(e));
  sources.log = log.get();
  sources.partitions = log->partition_count();
  std::vector<std::unique_ptr<projections::ViewStore>> stores;
  for (const std::string& name : ViewNames()) {
    const fs::path view_dir = fs::path(options.data_dir) / "views" / name;
    if (!fs::is_directory(view_dir, ec)) continue;
    LEADFLOW_ASSIGN_OR_RETURN(std::vector<std::string> families,
                              projections::ViewStore::ListViewFamilies(view_dir.string()));
    projections::ViewStoreOptions vo;
    vo.dir = view_dir.string();
    vo.column_families = families;
    LEADFLOW_ASSIGN_OR_RETURN(stores.emplace_back(), projections::ViewStore::Open(vo));
    sources.views.emplace_back(name, stores.back().get());
  }
  return WriteBackup(sources, dir);
}

std::string DescribeBackup(const v1::BackupReply& reply) {
  std::ostringstream out;
  int64_t events = 0;
  for (int64_t e : reply.log_ends()) events += e;
  out << "backup written to " << reply.dir() << " (" << absl::StrCat(reply.bytes() / (1 << 20))
      << " MiB on disk)\n";
  if (reply.log_ends_size() > 0) {
    out << "  log position: " << absl::StrJoin(reply.log_ends(), ",") << " (" << events
        << " events in " << reply.log_ends_size() << " partitions)\n";
  } else {
    out << "  log position: none (the log is Kafka: back up the topic with the cluster's tools)\n";
  }
  for (const v1::ViewBackup& v : reply.views()) {
    int64_t applied = 0;
    for (int64_t a : v.applied()) applied += a;
    out << "  view " << v.view() << ": " << applied << " events applied (offsets "
        << absl::StrJoin(v.applied(), ",") << ")\n";
  }
  out << "  check it with: leadflow verify --data-dir " << reply.dir() << "\n";
  return out.str();
}

absl::Status Verify(const NodeOptions& options,
                    const std::function<void(const std::string&)>& say_line,
                    const std::string& scratch_dir) {
  auto say = [&](const std::string& line) {
    if (say_line) say_line(line);
  };
  std::error_code ec;
  if (options.kafka_brokers.empty() && !fs::is_directory(options.data_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("verify: ", options.data_dir, " does not exist"));
  }
  absl::StatusOr<std::unique_ptr<log::EventLog>> opened = OpenLogForReading(options);
  if (!opened.ok()) {
    if (absl::IsUnavailable(opened.status()) || absl::IsFailedPrecondition(opened.status())) {
      return opened.status();
    }
    return absl::DataLossError(
        absl::StrCat("the log cannot be opened: ", opened.status().message()));
  }
  log::EventLog& log = **opened;
  // The data keys, to rebuild the views as the server does (personal fields opened).
  std::unique_ptr<privacy::Vault> vault;
  if (options.encrypt_personal && log.HasKeyStore()) {
    if (fs::exists(KekPath(options), ec)) {
      LEADFLOW_ASSIGN_OR_RETURN(std::string kek,
                                privacy::ReadOrCreateKek(KekPath(options).string(),
                                                         /*create=*/false, "privacy.kek_file"));
      LEADFLOW_ASSIGN_OR_RETURN(vault, privacy::Vault::Make(&log, std::move(kek)));
    } else {
      say(absl::StrCat("no key-encryption key at ", KekPath(options).string(),
                       " (privacy.kek_file): views are rebuilt without personal fields"));
    }
  }
  const int32_t partitions = log.partition_count();
  std::vector<int64_t> ends;
  int64_t events = 0;
  for (int32_t p = 0; p < partitions; ++p) {
    LEADFLOW_ASSIGN_OR_RETURN(ends.emplace_back(), log.EndOffset(p));
    events += ends.back();
  }
  say(absl::StrCat("log ", log.Describe(), ": ", partitions, " partitions, log position ",
                   absl::StrJoin(ends, ","), " (", events, " events)"));

  std::vector<absl::Status> damage;
  // The writer's witness: what it made durable must still be in the log.
  const fs::path witness = fs::path(options.data_dir) / "writer" / "witness";
  absl::StatusOr<std::vector<log::PartitionMark>> marks =
      log::WitnessFile::Read(witness.string(), partitions);
  if (!marks.ok()) {
    damage.push_back(marks.status());
    say(absl::StrCat("DATA_LOSS: ", marks.status().message()));
  } else if (!fs::exists(witness, ec)) {
    say("log: no writer witness to check it against");
  } else {
    absl::Status checked = absl::OkStatus();
    for (int32_t p = 0; p < partitions && checked.ok(); ++p) {
      checked = log::CheckMark(log, p, (*marks)[p], "the writer");
    }
    if (checked.ok()) {
      say("log: holds everything the writer's witness saw made durable");
    } else {
      damage.push_back(checked);
      say(absl::StrCat(absl::StatusCodeToString(checked.code()), ": ", checked.message()));
    }
  }

  const fs::path scratch =
      scratch_dir.empty() ? fs::temp_directory_path() / absl::StrCat("leadflow-verify-", ::getpid())
                          : fs::path(scratch_dir) / absl::StrCat("leadflow-verify-", ::getpid());
  fs::create_directories(scratch, ec);
  for (const std::string& name : ViewNames()) {
    absl::Status checked = VerifyView(options, log, vault.get(), name, scratch, say);
    if (!checked.ok()) {
      damage.push_back(checked);
      say(absl::StrCat(absl::StatusCodeToString(checked.code()), ": ", checked.message()));
    }
  }
  fs::remove_all(scratch, ec);
  if (damage.empty()) return absl::OkStatus();
  for (const absl::Status& d : damage) {
    if (absl::IsDataLoss(d)) {
      return absl::DataLossError(
          absl::StrCat(damage.size(), " check(s) failed; first: ", d.message()));
    }
  }
  return damage.front();
}

absl::Status Restore(const std::string& backup_dir, const NodeOptions& options,
                     const std::function<void(const std::string&)>& say_line) {
  auto say = [&](const std::string& line) {
    if (say_line) say_line(line);
  };
  std::error_code ec;
  const fs::path from(backup_dir);
  if (!fs::exists(from / kBackupFile, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore: ", backup_dir, " is not a leadflow backup (no ", kBackupFile, ")"));
  }
  const fs::path to(options.data_dir);
  if (fs::exists(to, ec) && !fs::is_empty(to, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore: ", options.data_dir,
                     " is not empty; restore into a new or empty directory "
                     "(move the old one aside first)"));
  }
  NodeOptions check = options;
  check.data_dir = backup_dir;
  check.kafka_brokers.clear();
  check.kafka_mock = false;
  say(absl::StrCat("verifying the backup ", backup_dir, " ..."));
  if (absl::Status verified = Verify(check, say); !verified.ok()) {
    return absl::Status(verified.code(), absl::StrCat("restore: the backup fails verification: ",
                                                      verified.message()));
  }
  // Copied under a temporary name, then renamed: the data directory is either the whole backup
  // or absent.
  const fs::path partial = to.string() + ".restoring";
  fs::remove_all(partial, ec);
  fs::create_directories(partial.parent_path().empty() ? fs::path(".") : partial.parent_path(), ec);
  fs::copy(from, partial, fs::copy_options::recursive, ec);
  if (ec) {
    fs::remove_all(partial, ec);
    return absl::UnavailableError(absl::StrCat("restore: cannot copy ", backup_dir, " to ",
                                               partial.string(), ": ", ec.message()));
  }
  fs::rename(partial / kBackupFile, partial / "restored-from-backup.json", ec);
  ::sync();
  if (fs::exists(to, ec)) fs::remove(to, ec);  // empty
  fs::rename(partial, to, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("restore: cannot rename ", partial.string(), " to ",
                                               options.data_dir, ": ", ec.message()));
  }
  say(absl::StrCat("restored ", backup_dir, " into ", options.data_dir,
                   "; start it with: leadflow serve --data-dir ", options.data_dir));
  return absl::OkStatus();
}

}  // namespace leadflow::server

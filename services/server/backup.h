// Backup, verify and restore (docs/reliability.md). Damage without a backup has only one cure,
// accepting the loss; these are the other one.
//
// A backup directory has the layout of a data directory: log/ (the embedded log), views/<name>/
// (each view store), writer/ids.key and writer/witness, and backup.json (what it holds). The
// view stores are copied first, then the writer's files, then the log, so every view and the
// witness are at or before the log's position in the backup: restored, the views catch up and
// the writer's check passes. The writer's command index is not copied: it is rebuilt from the log.
#ifndef LEADFLOW_SERVICES_SERVER_BACKUP_H_
#define LEADFLOW_SERVICES_SERVER_BACKUP_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "leadflow/v1/admin.pb.h"
#include "projections/runner/view_store.h"
#include "services/log/event_log.h"
#include "services/server/node.h"

namespace leadflow::server {

// What a backup copies: the log (nullptr for Kafka), the views (name, store), the data directory
// (for the writer's files).
struct BackupSources {
  log::EventLog* log = nullptr;
  int32_t partitions = 0;
  std::vector<std::pair<std::string, const projections::ViewStore*>> views;
  std::string data_dir;
  std::string id_key_file;  // copied to writer/ids.key of the backup
  // The key-encryption key when it lives in the data directory (keys/kek), copied with it so a
  // restore is whole; a KEK kept elsewhere (privacy.kek_file) is not copied. Empty: none.
  std::string kek_file;
};

// Writes a backup of `sources` into `dir` (absolute; it must not exist, FAILED_PRECONDITION),
// while they are in use. Written as <dir>.partial and renamed when whole.
absl::StatusOr<v1::BackupReply> WriteBackup(const BackupSources& sources, const std::string& dir);

// The same for a data directory no process is using (opens its stores itself).
absl::StatusOr<v1::BackupReply> BackupStopped(const NodeOptions& options, const std::string& dir);

// One line per finding; the summary of a backup for people.
std::string DescribeBackup(const v1::BackupReply& reply);

// Checks a data directory (or a backup): the log against the writer's witness and every view's
// marks, then every view against a rebuild from the log up to the offsets it has applied, row
// for row. Opens everything read-only, so it may run beside a leadflow serving the directory
// (it then checks the state as of its start). `say` gets one line per check. OK if all pass;
// DATA_LOSS naming the first damage otherwise.
// The rebuilds go to a directory under `scratch_dir` (empty: the system's temporary directory),
// removed at the end.
absl::Status Verify(const NodeOptions& options, const std::function<void(const std::string&)>& say,
                    const std::string& scratch_dir = "");

// Verifies the backup in `backup_dir`, then copies it into options.data_dir, which must not
// exist or be empty.
absl::Status Restore(const std::string& backup_dir, const NodeOptions& options,
                     const std::function<void(const std::string&)>& say);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_BACKUP_H_

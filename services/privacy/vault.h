// The data keys of crypto-shredding (docs/security.md). Every lead whose events carry personal
// data has a random data key; its events' personal fields are sealed with it (sealer.h). The key
// is stored wrapped under the key-encryption key (KEK, held outside the log: a file like the TLS
// ones) in the log's key store, written in the same atomic append as the first event it seals,
// so a crash can never leave an acknowledged event without its key. Erasure destroys the key
// (an empty KeyRecord in the erasure's append): every sealed field of that lead is unreadable
// for good, in the log, in backups and in any copy, and a rebuild cannot bring it back.
//
// Thread-safe. Keys read back are cached (bounded); an erasure forgets its lead's.
#ifndef LEADFLOW_SERVICES_PRIVACY_VAULT_H_
#define LEADFLOW_SERVICES_PRIVACY_VAULT_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "leadflow/v1/events.pb.h"
#include "services/common/ids.h"
#include "services/log/event_log.h"

namespace leadflow::privacy {

inline constexpr size_t kKekBytes = 32;

// The key-encryption key from a file of 64 hex digits, made (mode 0600) if it does not exist
// and `create`. FAILED_PRECONDITION naming `option` if it is missing or malformed.
absl::StatusOr<std::string> ReadOrCreateKek(const std::string& path, bool create,
                                            const std::string& option);

class Vault {
 public:
  // `log` holds the key store (log->HasKeyStore()); `kek` is kKekBytes bytes.
  static absl::StatusOr<std::unique_ptr<Vault>> Make(log::EventLog* log, std::string kek,
                                                     size_t cache_entries = 1 << 17);

  // The key that seals `lead_id`'s new events. A lead without one gets a new key, kept in
  // `pending` (the caller's append under way: later events of the same append find it there)
  // with its KeyRecord added to `records`, which must land in that append. UNAVAILABLE if the
  // store cannot be read now.
  // `new_lead`: the caller knows the lead has no event yet, so no key (no store lookup).
  absl::StatusOr<std::string> KeyForSealing(const std::string& lead_id,
                                            absl::flat_hash_map<std::string, std::string>* pending,
                                            std::vector<log::KeyRecord>* records,
                                            bool new_lead = false);
  // Seals `event`'s personal fields with its lead's key (KeyForSealing on its partition key).
  // An event without personal fields needs no key and is left as it is.
  absl::Status Seal(v1::Event* event, absl::flat_hash_map<std::string, std::string>* pending,
                    std::vector<log::KeyRecord>* records);
  // After the append that carried them succeeded: the new keys are the leads' keys now.
  void Remember(const absl::flat_hash_map<std::string, std::string>& keys);

  // Opens `event` in place: its sealed fields come back with its lead's key; without a key (an
  // erased lead) they are dropped and `*erased` (if given) is set. UNAVAILABLE if the store
  // cannot be read now (retry; never taken for "no key"); DATA_LOSS if the blob does not open.
  absl::Status Open(v1::Event* event, bool* erased = nullptr);

  // The record that destroys `lead_id`'s key (for the erasure's append); forgets it once the
  // append is made (Forget).
  static log::KeyRecord Destroy(const std::string& lead_id) { return {lead_id, ""}; }
  // Drops every copy of the key this process holds (the vault's cache and the log's memory).
  void Forget(const std::string& lead_id);
  // Every reader of the log shows it each event it reads: a LeadErased makes this process
  // forget that lead's key at once (a view process on Kafka would otherwise keep opening the
  // erased lead's events, e.g. in StreamEvents, from its in-memory copy).
  void Observe(const v1::Event& event) {
    if (event.has_lead_erased()) Forget(event.partition_key());
  }
  // True if `lead_id` has a key now.
  absl::StatusOr<bool> HasKey(const std::string& lead_id);

 private:
  // The wrapped form of a data key and back (XChaCha20-Poly1305 under the KEK, bound to the
  // lead id). DATA_LOSS if `wrapped` does not open.
  std::string Wrap(const common::LeadId& lead_id, const std::string& key) const;
  absl::StatusOr<std::string> Unwrap(const common::LeadId& lead_id,
                                     const std::string& wrapped) const;
  Vault(log::EventLog* log, std::string kek, size_t cache_entries);
  // The stored key: NOT_FOUND if none.
  absl::StatusOr<std::string> Lookup(const std::string& lead_id);

  log::EventLog* log_;
  const std::string kek_;
  const size_t cache_entries_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::privacy

#endif  // LEADFLOW_SERVICES_PRIVACY_VAULT_H_

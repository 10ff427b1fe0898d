// Personal data sealed inside events (crypto-shredding; docs/security.md). The contract marks
// personal fields (`[(leadflow.v1.personal) = true]`); Seal moves every one of them out of an
// event into `sealed_personal`, encrypted with the lead's data key (XChaCha20-Poly1305, libsodium)
// and bound to the event (associated data: partition key and event id, so a blob cannot be moved
// to another event). Open puts them back. Destroying the key makes them unreadable for good.
// Pure: no key store here (the writer and the views hold the keys).
#ifndef LEADFLOW_SERVICES_PRIVACY_SEALER_H_
#define LEADFLOW_SERVICES_PRIVACY_SEALER_H_

#include <string>

#include "absl/status/status.h"
#include "leadflow/v1/events.pb.h"

namespace leadflow::privacy {

inline constexpr size_t kDataKeyBytes = 32;

// True if a personal field of `event` is set (what Seal would move out).
bool HasPersonalData(const google::protobuf::Message& event);

// `n` unpredictable bytes from a per-thread ChaCha20 stream keyed once from the system's
// generator (libsodium's randombytes_buf is a getrandom() system call per call: ~3 us on a VM,
// paid three times per new lead). For nonces and data keys.
void FastRandomBytes(void* out, size_t n);

// A new random data key (kDataKeyBytes bytes).
std::string NewDataKey();

// Moves every personal field of `event` into `event->sealed_personal`, encrypted with `key`.
// An event without personal fields is left as it is. INVALID_ARGUMENT for a key of the wrong
// size or an event already sealed.
absl::Status Seal(v1::Event* event, const std::string& key);

// Restores the personal fields sealed in `event` (and clears `sealed_personal`). An event with
// nothing sealed is left as it is. DATA_LOSS if the blob does not authenticate under `key` and
// this event (a wrong key, a damaged or moved blob).
absl::Status Open(v1::Event* event, const std::string& key);

// For an erased lead (no key any more): drops the sealed blob; the event keeps everything else.
void DropSealed(v1::Event* event);

}  // namespace leadflow::privacy

#endif  // LEADFLOW_SERVICES_PRIVACY_SEALER_H_

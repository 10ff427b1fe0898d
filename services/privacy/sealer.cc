#include "services/privacy/sealer.h"

#include <pthread.h>
#include <sodium.h>

#include <atomic>
#include <cstring>

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/auth/redact.h"

namespace leadflow::privacy {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kDataKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// Where the personal fields of a message type are: each a path of singular fields from the
// top message to one marked personal, worked out once per type from the contract (so sealing
// an event looks at a handful of fields, not at every field by reflection). `repeated`: some
// repeated message holds personal data (it could not be merged back field by field: refused).
struct PersonalPaths {
  std::vector<std::vector<const FieldDescriptor*>> paths;
  bool repeated = false;
  // The paths grouped by their first field (an event's payload: only the set one is looked at).
  std::vector<std::pair<const FieldDescriptor*, std::vector<size_t>>> by_first;
};

void CollectPaths(const google::protobuf::Descriptor* d,
                  std::vector<const FieldDescriptor*>& prefix, PersonalPaths& out) {
  if (prefix.size() > 8) return;  // the contract has no deeper (or recursive) nesting
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (auth::IsPersonal(f)) {
      prefix.push_back(f);
      out.paths.push_back(prefix);
      prefix.pop_back();
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        PersonalPaths inner;
        std::vector<const FieldDescriptor*> none;
        CollectPaths(f->message_type(), none, inner);
        if (!inner.paths.empty() || inner.repeated) out.repeated = true;
        continue;
      }
      prefix.push_back(f);
      CollectPaths(f->message_type(), prefix, out);
      prefix.pop_back();
    }
  }
}

const PersonalPaths& PathsOf(const google::protobuf::Descriptor* d) {
  // Every event asks for the same type: the last answer per thread, without the lock.
  thread_local const google::protobuf::Descriptor* last = nullptr;
  thread_local const PersonalPaths* last_paths = nullptr;
  if (d == last) return *last_paths;
  static absl::Mutex mu;
  static auto* cache = new absl::flat_hash_map<const google::protobuf::Descriptor*,
                                               std::unique_ptr<PersonalPaths>>();
  absl::MutexLock lock(&mu);
  auto& slot = (*cache)[d];
  if (slot == nullptr) {
    slot = std::make_unique<PersonalPaths>();
    std::vector<const FieldDescriptor*> prefix;
    CollectPaths(d, prefix, *slot);
    for (size_t i = 0; i < slot->paths.size(); ++i) {
      const FieldDescriptor* first = slot->paths[i].front();
      if (slot->by_first.empty() || slot->by_first.back().first != first) {
        slot->by_first.push_back({first, {}});
      }
      slot->by_first.back().second.push_back(i);
    }
  }
  last = d;
  last_paths = slot.get();  // entries are never removed
  return *slot;
}

// The message holding the leaf of `path` in `m`, or nullptr if a message on the way is unset.
const Message* Holder(const Message& m, const std::vector<const FieldDescriptor*>& path) {
  const Message* at = &m;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const google::protobuf::Reflection* r = at->GetReflection();
    if (!r->HasField(*at, path[i])) return nullptr;
    at = &r->GetMessage(*at, path[i]);
  }
  return at;
}

// Calls `visit(path)` for each path whose first field is set in `m` (one presence check per
// first field, so an event's other payload types cost one check each, not one per path).
template <typename Visit>
void ForSetPaths(const Message& m, const PersonalPaths& paths, Visit visit) {
  const google::protobuf::Reflection* r = m.GetReflection();
  for (const auto& [first, indexes] : paths.by_first) {
    if (!r->HasField(m, first)) continue;
    for (size_t i : indexes) {
      if (!visit(paths.paths[i])) return;
    }
  }
}

// True if a repeated message of `m` (at any depth on the paths' way) holds personal data.
bool RepeatedHoldsPersonal(const Message& m) {
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        if (HasPersonalData(r->GetRepeatedMessage(m, f, i))) return true;
      }
    } else if (RepeatedHoldsPersonal(r->GetMessage(m, f))) {
      return true;
    }
  }
  return false;
}

// Moves the personal fields of `src` into `dst` (same type; empty) along `paths`, without
// copying their values (swapped). True if it moved any.
bool MovePersonal(const PersonalPaths& paths, Message* src, Message* dst) {
  bool moved = false;
  ForSetPaths(*src, paths, [&](const std::vector<const FieldDescriptor*>& path) {
    const Message* holder = Holder(*src, path);
    if (holder == nullptr || !holder->GetReflection()->HasField(*holder, path.back())) {
      return true;
    }
    Message* from = src;
    Message* to = dst;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      from = from->GetReflection()->MutableMessage(from, path[i]);
      to = to->GetReflection()->MutableMessage(to, path[i]);
    }
    from->GetReflection()->SwapFields(from, to, {path.back()});
    moved = true;
    return true;
  });
  return moved;
}

std::string AssociatedData(const v1::Event& e) {
  return absl::StrCat(e.partition_key(), "/", e.event_id());
}

}  // namespace

bool HasPersonalData(const Message& m) {
  const PersonalPaths& paths = PathsOf(m.GetDescriptor());
  bool found = false;
  ForSetPaths(m, paths, [&](const std::vector<const FieldDescriptor*>& path) {
    const Message* holder = Holder(m, path);
    found = holder != nullptr && holder->GetReflection()->HasField(*holder, path.back());
    return !found;
  });
  return found || (paths.repeated && RepeatedHoldsPersonal(m));
}

namespace {
// Bumped in a forked child, so no thread of it reuses its parent's stream.
std::atomic<uint64_t> fork_generation{1};
uint64_t ForkGeneration() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  return fork_generation.load(std::memory_order_relaxed);
}
}  // namespace

void FastRandomBytes(void* out, size_t n) {
  // A stream cipher keyed with 32 bytes from the system is a CSPRNG (the construction of
  // arc4random and of libsodium's own deterministic generator): each call takes keystream under
  // a fresh nonce (a counter), so no output is ever repeated. Reseeded in a forked child.
  struct State {
    unsigned char key[crypto_stream_chacha20_ietf_KEYBYTES];
    uint64_t counter = 0;
    uint64_t generation = 0;  // 0: not seeded
  };
  thread_local State state;
  const uint64_t generation = ForkGeneration();
  if (state.generation != generation) {
    randombytes_buf(state.key, sizeof(state.key));
    state.counter = 0;
    state.generation = generation;
  }
  unsigned char nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {};
  const uint64_t c = state.counter++;
  std::memcpy(nonce, &c, sizeof(c));
  crypto_stream_chacha20_ietf(static_cast<unsigned char*>(out), n, nonce, state.key);
}

std::string NewDataKey() {
  std::string key(kDataKeyBytes, '\0');
  if (SodiumReady()) FastRandomBytes(key.data(), key.size());
  return key;
}

absl::Status Seal(v1::Event* event, const std::string& key) {
  if (key.size() != kDataKeyBytes) return absl::InvalidArgumentError("data key: wrong size");
  if (!event->sealed_personal().empty()) return absl::InvalidArgumentError("event: already sealed");
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  const PersonalPaths& paths = PathsOf(event->GetDescriptor());
  // A repeated message holding personal data could not be merged back field by field.
  if (paths.repeated && RepeatedHoldsPersonal(*event)) {
    return absl::InternalError(
        absl::StrCat("event ", event->command_type(), ": a repeated message holds personal data"));
  }
  v1::Event personal;
  if (!MovePersonal(paths, event, &personal)) return absl::OkStatus();  // nothing personal
  const std::string plain = personal.SerializeAsString();
  const std::string ad = AssociatedData(*event);
  std::string sealed(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  FastRandomBytes(out, kNonceBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out + kNonceBytes, &written, reinterpret_cast<const unsigned char*>(plain.data()),
      plain.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, out,
      reinterpret_cast<const unsigned char*>(key.data()));
  sealed.resize(kNonceBytes + written);
  event->set_sealed_personal(std::move(sealed));
  return absl::OkStatus();
}

absl::Status Open(v1::Event* event, const std::string& key) {
  const std::string& sealed = event->sealed_personal();
  if (sealed.empty()) return absl::OkStatus();
  if (key.size() != kDataKeyBytes) return absl::InvalidArgumentError("data key: wrong size");
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError(
        absl::StrCat("event ", event->event_id(), ": sealed personal data too short"));
  }
  const std::string ad = AssociatedData(*event);
  std::string plain(sealed.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long n = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &n, nullptr, in + kNonceBytes,
          sealed.size() - kNonceBytes, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          in, reinterpret_cast<const unsigned char*>(key.data())) != 0) {
    return absl::DataLossError(absl::StrCat(
        "event ", event->event_id(),
        ": sealed personal data does not open with its lead's key (damaged, or not this "
        "event's)"));
  }
  plain.resize(n);
  v1::Event personal;
  if (!personal.ParseFromString(plain)) {
    return absl::DataLossError(
        absl::StrCat("event ", event->event_id(), ": sealed personal data is not an event"));
  }
  event->clear_sealed_personal();
  event->MergeFrom(personal);
  return absl::OkStatus();
}

void DropSealed(v1::Event* event) { event->clear_sealed_personal(); }

}  // namespace leadflow::privacy

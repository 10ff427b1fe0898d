#include "services/privacy/sealer.h"

#include <sodium.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Keeps only the personal fields of `m` (and the messages on the way to them). Returns false if
// a repeated message holds personal data (it could not be merged back field by field).
bool KeepOnlyPersonal(Message* m) {
  const google::protobuf::Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  bool ok = true;
  for (const FieldDescriptor* f : fields) {
    if (auth::IsPersonal(f)) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      Message* sub = r->MutableMessage(m, f);
      ok = KeepOnlyPersonal(sub) && ok;
      if (sub->ByteSizeLong() == 0) r->ClearField(m, f);
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        Message* sub = r->MutableRepeatedMessage(m, f, i);
        std::unique_ptr<Message> probe(sub->New());
        probe->CopyFrom(*sub);
        KeepOnlyPersonal(probe.get());
        if (probe->ByteSizeLong() != 0) ok = false;
      }
    }
    r->ClearField(m, f);
  }
  return ok;
}

std::string AssociatedData(const v1::Event& e) {
  return absl::StrCat(e.partition_key(), "/", e.event_id());
}

}  // namespace

bool HasPersonalData(const Message& m) {
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (auth::IsPersonal(f)) return true;
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        if (HasPersonalData(r->GetRepeatedMessage(m, f, i))) return true;
      }
    } else if (HasPersonalData(r->GetMessage(m, f))) {
      return true;
    }
  }
  return false;
}

std::string NewDataKey() {
  std::string key(kDataKeyBytes, '\0');
  if (SodiumReady()) {
    crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(key.data()));
  }
  return key;
}

absl::Status Seal(v1::Event* event, const std::string& key) {
  if (key.size() != kDataKeyBytes) return absl::InvalidArgumentError("data key: wrong size");
  if (!event->sealed_personal().empty()) return absl::InvalidArgumentError("event: already sealed");
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  v1::Event personal = *event;
  if (!KeepOnlyPersonal(&personal)) {
    return absl::InternalError(absl::StrCat(
        "event ", event->command_type(), ": a repeated message holds personal data"));
  }
  if (personal.ByteSizeLong() == 0) return absl::OkStatus();  // nothing personal
  const std::string plain = personal.SerializeAsString();
  const std::string ad = AssociatedData(*event);
  std::string sealed(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(out, kNonceBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out + kNonceBytes, &written, reinterpret_cast<const unsigned char*>(plain.data()),
      plain.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, out,
      reinterpret_cast<const unsigned char*>(key.data()));
  sealed.resize(kNonceBytes + written);
  auth::RedactPersonal(event);
  event->set_sealed_personal(std::move(sealed));
  return absl::OkStatus();
}

absl::Status Open(v1::Event* event, const std::string& key) {
  const std::string& sealed = event->sealed_personal();
  if (sealed.empty()) return absl::OkStatus();
  if (key.size() != kDataKeyBytes) return absl::InvalidArgumentError("data key: wrong size");
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError(absl::StrCat("event ", event->event_id(),
                                            ": sealed personal data too short"));
  }
  const std::string ad = AssociatedData(*event);
  std::string plain(sealed.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long n = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &n, nullptr, in + kNonceBytes,
          sealed.size() - kNonceBytes, reinterpret_cast<const unsigned char*>(ad.data()),
          ad.size(), in, reinterpret_cast<const unsigned char*>(key.data())) != 0) {
    return absl::DataLossError(absl::StrCat(
        "event ", event->event_id(),
        ": sealed personal data does not open with its lead's key (damaged, or not this "
        "event's)"));
  }
  plain.resize(n);
  v1::Event personal;
  if (!personal.ParseFromString(plain)) {
    return absl::DataLossError(absl::StrCat("event ", event->event_id(),
                                            ": sealed personal data is not an event"));
  }
  event->clear_sealed_personal();
  event->MergeFrom(personal);
  return absl::OkStatus();
}

void DropSealed(v1::Event* event) { event->clear_sealed_personal(); }

}  // namespace leadflow::privacy

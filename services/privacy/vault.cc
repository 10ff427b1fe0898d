#include "services/privacy/vault.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/status_util.h"
#include "services/privacy/sealer.h"

namespace leadflow::privacy {
namespace {

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr char kWrapVersion = 1;
static_assert(kKekBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::string WrapAd(const std::string& lead_id) { return absl::StrCat("leadflow-key/", lead_id); }

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadOrCreateKek(const std::string& path, bool create,
                                            const std::string& option) {
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  if (access(path.c_str(), F_OK) != 0 && create) {
    std::string bytes(kKekBytes, '\0');
    randombytes_buf(bytes.data(), bytes.size());
    const std::string text = absl::BytesToHexString(bytes) + "\n";
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return absl::UnavailableError(
          absl::StrCat(option, ": cannot create ", path, ": ", std::strerror(errno)));
    }
    if (fd >= 0) {
      const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                      fsync(fd) == 0;
      const int saved = errno;
      close(fd);
      if (!ok) {
        unlink(path.c_str());
        return absl::UnavailableError(
            absl::StrCat(option, ": cannot write ", path, ": ", std::strerror(saved)));
      }
    }
  }
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(option, ": ", path, " cannot be read (", std::strerror(errno), ")"));
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  const absl::string_view hex = absl::StripAsciiWhitespace(content);
  if (hex.size() != 2 * kKekBytes || !IsHex(hex)) {
    // Never quote the file: it is a secret.
    return absl::FailedPreconditionError(absl::StrCat(
        option, ": ", path, " must hold ", 2 * kKekBytes, " hex digits (a 32-byte key)"));
  }
  return absl::HexStringToBytes(hex);
}

absl::StatusOr<std::unique_ptr<Vault>> Vault::Make(log::EventLog* log, std::string kek,
                                                   size_t cache_entries) {
  if (!SodiumReady()) return absl::InternalError("libsodium could not be initialised");
  if (log == nullptr || !log->HasKeyStore()) {
    return absl::FailedPreconditionError("privacy: the log has no key store");
  }
  if (kek.size() != kKekBytes) {
    return absl::InvalidArgumentError("privacy: the key-encryption key must be 32 bytes");
  }
  return std::unique_ptr<Vault>(new Vault(log, std::move(kek), cache_entries));
}

Vault::Vault(log::EventLog* log, std::string kek, size_t cache_entries)
    : log_(log), kek_(std::move(kek)), cache_entries_(std::max<size_t>(cache_entries, 1)) {}

std::string Vault::Wrap(const common::LeadId& lead_id, const std::string& key) const {
  const std::string ad = WrapAd(lead_id.value());
  std::string out(1 + kNonceBytes + key.size() + kTagBytes, '\0');
  out[0] = kWrapVersion;
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + 1);
  FastRandomBytes(nonce, kNonceBytes);
  unsigned long long n = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceBytes, &n, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce,
      reinterpret_cast<const unsigned char*>(kek_.data()));
  out.resize(1 + kNonceBytes + n);
  return out;
}

absl::StatusOr<std::string> Vault::Unwrap(const common::LeadId& lead_id,
                                          const std::string& wrapped) const {
  if (wrapped.size() != 1 + kNonceBytes + kDataKeyBytes + kTagBytes || wrapped[0] != kWrapVersion) {
    return absl::DataLossError(
        absl::StrCat("key store: the data key of lead ", lead_id.value(), " is malformed"));
  }
  const std::string ad = WrapAd(lead_id.value());
  std::string key(kDataKeyBytes, '\0');
  unsigned long long n = 0;
  const auto* nonce = reinterpret_cast<const unsigned char*>(wrapped.data() + 1);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(key.data()), &n, nullptr, nonce + kNonceBytes,
          wrapped.size() - 1 - kNonceBytes, reinterpret_cast<const unsigned char*>(ad.data()),
          ad.size(), nonce, reinterpret_cast<const unsigned char*>(kek_.data())) != 0 ||
      n != kDataKeyBytes) {
    return absl::DataLossError(absl::StrCat(
        "key store: the data key of lead ", lead_id.value(),
        " does not open with the configured key-encryption key (privacy.kek_file: a different "
        "key, or damage)"));
  }
  return key;
}

absl::StatusOr<std::string> Vault::Lookup(const std::string& lead_id) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = cache_.find(lead_id); it != cache_.end()) return it->second;
  }
  absl::StatusOr<std::string> wrapped = log_->ReadKey(lead_id);
  if (!wrapped.ok()) return wrapped.status();
  LEADFLOW_ASSIGN_OR_RETURN(std::string key, Unwrap(common::LeadId(lead_id), *wrapped));
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= cache_entries_) cache_.clear();
  cache_[lead_id] = key;
  return key;
}

absl::StatusOr<std::string> Vault::KeyForSealing(
    const std::string& lead_id, absl::flat_hash_map<std::string, std::string>* pending,
    std::vector<log::KeyRecord>* records, bool new_lead) {
  if (auto it = pending->find(lead_id); it != pending->end()) return it->second;
  if (!new_lead) {
    absl::StatusOr<std::string> key = Lookup(lead_id);
    if (key.ok() || !absl::IsNotFound(key.status())) return key;
  }
  std::string fresh = NewDataKey();
  records->push_back({lead_id, Wrap(common::LeadId(lead_id), fresh)});
  (*pending)[lead_id] = fresh;
  return fresh;
}

absl::Status Vault::Seal(v1::Event* event, absl::flat_hash_map<std::string, std::string>* pending,
                         std::vector<log::KeyRecord>* records) {
  if (!HasPersonalData(*event)) return absl::OkStatus();
  LEADFLOW_ASSIGN_OR_RETURN(const std::string key,
                            KeyForSealing(event->partition_key(), pending, records));
  return privacy::Seal(event, key);
}

void Vault::Remember(const absl::flat_hash_map<std::string, std::string>& keys) {
  if (keys.empty()) return;
  absl::MutexLock lock(&mu_);
  if (cache_.size() + keys.size() > cache_entries_) cache_.clear();
  for (const auto& [lead, key] : keys) cache_[lead] = key;
}

absl::Status Vault::Open(v1::Event* event, bool* erased) {
  if (event->sealed_personal().empty()) return absl::OkStatus();
  absl::StatusOr<std::string> key = Lookup(event->partition_key());
  if (absl::IsNotFound(key.status())) {
    DropSealed(event);
    if (erased != nullptr) *erased = true;
    return absl::OkStatus();
  }
  if (!key.ok()) return key.status();
  return privacy::Open(event, *key);
}

void Vault::Forget(const std::string& lead_id) {
  {
    absl::MutexLock lock(&mu_);
    cache_.erase(lead_id);
  }
  log_->ForgetKey(lead_id);
}

absl::StatusOr<bool> Vault::HasKey(const std::string& lead_id) {
  absl::StatusOr<std::string> key = Lookup(lead_id);
  if (key.ok()) return true;
  if (absl::IsNotFound(key.status())) return false;
  return key.status();
}

}  // namespace leadflow::privacy

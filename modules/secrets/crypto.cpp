#include "modules/secrets/crypto.hpp"

#include "core/errors.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace neurod::secrets {

namespace {

struct SodiumInit {
  SodiumInit() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  }
};

std::string key_id_of(const unsigned char* key) {
  // A hash under a fixed personalisation: the id names the key without revealing it.
  static constexpr std::string_view kContext = "neurod secrets master key id v1";
  std::array<unsigned char, 8> digest{};
  crypto_generichash(digest.data(), digest.size(), key, kKeyBytes,
                     reinterpret_cast<const unsigned char*>(kContext.data()), kContext.size());
  std::array<char, 17> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), 16);
}

std::string sys_error(std::string_view what, const std::filesystem::path& path) {
  return fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(errno));
}

}  // namespace

void ensure_sodium() { static SodiumInit once; }

Key::Key(std::string_view raw) {
  if (raw.size() != kKeyBytes) throw std::invalid_argument("a secrets master key is 32 bytes");
  ensure_sodium();
  std::memcpy(bytes_.data(), raw.data(), kKeyBytes);
  id_ = key_id_of(bytes_.data());
}

Key::~Key() { sodium_memzero(bytes_.data(), bytes_.size()); }

Key Key::generate() {
  ensure_sodium();
  std::string raw(kKeyBytes, '\0');
  crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(raw.data()));
  Key k(raw);
  sodium_memzero(raw.data(), raw.size());
  return k;
}

std::optional<Key> Key::from_base64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  auto raw = base64_decode(text);
  if (!raw || raw->size() != kKeyBytes) {
    if (raw) sodium_memzero(raw->data(), raw->size());
    return std::nullopt;
  }
  Key k(*raw);
  sodium_memzero(raw->data(), raw->size());
  return k;
}

std::string Key::base64() const {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size()));
}

Sealed seal(const Key& key, std::string_view plaintext, std::string_view ad) {
  ensure_sodium();
  Sealed out;
  out.key_id = key.id();
  out.nonce.resize(kNonceBytes);
  randombytes_buf(out.nonce.data(), kNonceBytes);
  out.ciphertext.resize(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.ciphertext.data()), &len,
                                             reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                                             reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
                                             reinterpret_cast<const unsigned char*>(out.nonce.data()), key.data());
  out.ciphertext.resize(static_cast<std::size_t>(len));
  return out;
}

std::optional<std::string> open(const Key& key, const Sealed& sealed, std::string_view ad) {
  ensure_sodium();
  if (sealed.nonce.size() != kNonceBytes || sealed.ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES)
    return std::nullopt;
  std::string out(sealed.ciphertext.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &len, nullptr,
          reinterpret_cast<const unsigned char*>(sealed.ciphertext.data()), sealed.ciphertext.size(),
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          reinterpret_cast<const unsigned char*>(sealed.nonce.data()), key.data()) != 0)
    return std::nullopt;
  out.resize(static_cast<std::size_t>(len));
  return out;
}

void Keyring::set_current(Key k) {
  keys_[k.id()] = k;
  current_ = std::move(k);
}

void Keyring::add(Key k) {
  auto id = k.id();
  keys_.emplace(std::move(id), std::move(k));
}

const Key* Keyring::find(std::string_view id) const {
  auto it = keys_.find(id);
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<std::string> Keyring::ids() const {
  std::vector<std::string> out;
  for (const auto& [id, k] : keys_) out.push_back(id);
  return out;
}

void wipe(std::string& s) {
  sodium_memzero(s.data(), s.size());
  s.clear();
}

std::string base64_encode(std::string_view raw) {
  ensure_sodium();
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  ensure_sodium();
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

std::filesystem::path sibling(const std::filesystem::path& path, std::string_view suffix) {
  auto p = path;
  p += std::string(suffix);
  return p;
}

std::optional<Key> read_key_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(errc::internal, sys_error("read the secrets master key", path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(errc::internal, sys_error("stat the secrets master key", path));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(errc::internal, fmt::format("the secrets master key {} is not a regular file", path.string()));
  }
  if (st.st_mode & 077) {
    ::close(fd);
    throw Error(errc::internal,
                fmt::format("the secrets master key {} has mode {:04o}: group and others must have no access to it; "
                            "run `chmod 600 {}` (and consider the key exposed: rotate it with `neurod secrets "
                            "rotate-key`)",
                            path.string(), st.st_mode & 07777, path.string()));
  }
  std::string raw(kKeyBytes + 1, '\0');
  std::size_t got = 0;
  while (got < raw.size()) {
    auto n = ::read(fd, raw.data() + got, raw.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw Error(errc::internal, sys_error("read the secrets master key", path));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != kKeyBytes) {
    sodium_memzero(raw.data(), raw.size());
    throw Error(errc::internal,
                fmt::format("the secrets master key {} is {} bytes long; it must be exactly {} random bytes (is it "
                            "the right file?)",
                            path.string(), st.st_size, kKeyBytes));
  }
  raw.resize(kKeyBytes);
  Key k(raw);
  sodium_memzero(raw.data(), raw.size());
  return k;
}

void write_key_file(const std::filesystem::path& path, const Key& key) {
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(errc::internal, fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  auto tmp = sibling(path, ".tmp");
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw Error(errc::internal, sys_error("create", tmp));
  ::fchmod(fd, 0600);  // whatever the umask
  bool ok = ::write(fd, key.data(), kKeyBytes) == static_cast<ssize_t>(kKeyBytes) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    auto message = sys_error("write", path);
    ::unlink(tmp.c_str());
    throw Error(errc::internal, message);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace neurod::secrets

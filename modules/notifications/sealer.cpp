#include "modules/notifications/sealer.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace neurod::notifications {

namespace {

constexpr std::string_view kPrefix = "nd1:";

Error key_error(const std::filesystem::path& file, const std::string& what) {
  return Error(errc::internal, "notifications: the sealing key " + file.string() + " " + what)
      .with_code("notification_key");
}

void init_sodium() {
  if (sodium_init() < 0) throw Error(errc::internal, "libsodium cannot start");
}

}  // namespace

Sealer::Sealer(const std::array<unsigned char, 32>& key) : key_(key) { init_sodium(); }

Sealer::Sealer(const std::filesystem::path& key_file) {
  init_sodium();
  int fd = ::open(key_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    randombytes_buf(key_.data(), key_.size());
    auto tmp = key_file.string() + ".tmp";
    int w = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w < 0) throw key_error(key_file, std::string("cannot be made: ") + std::strerror(errno));
    bool ok = ::write(w, key_.data(), key_.size()) == static_cast<ssize_t>(key_.size()) && ::fsync(w) == 0;
    ::close(w);
    if (!ok || ::rename(tmp.c_str(), key_file.c_str()) != 0) {
      ::unlink(tmp.c_str());
      throw key_error(key_file, std::string("cannot be written: ") + std::strerror(errno));
    }
    return;
  }
  if (fd < 0) throw key_error(key_file, std::string("cannot be read: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    throw key_error(key_file, "must be readable by neurod only (chmod 600)");
  }
  auto n = ::read(fd, key_.data(), key_.size());
  char extra;
  bool longer = ::read(fd, &extra, 1) > 0;
  ::close(fd);
  if (n != static_cast<ssize_t>(key_.size()) || longer) throw key_error(key_file, "must hold exactly 32 bytes");
}

std::string Sealer::seal(std::string_view plaintext, std::string_view bound_to) const {
  std::vector<unsigned char> out(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plaintext.size() +
                                 crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned char* nonce = out.data();
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data() + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(bound_to.data()), bound_to.size(), nullptr, nonce, key_.data());
  std::string b64(sodium_base64_encoded_len(out.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), out.data(), out.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  return std::string(kPrefix) + b64;
}

std::string Sealer::open(std::string_view stored, std::string_view bound_to) const {
  auto fail = [] {
    return Error(errc::internal, "a stored notification target or secret cannot be decrypted with this neurod's key")
        .with_code("notification_undecryptable");
  };
  if (!stored.starts_with(kPrefix)) throw fail();
  stored.remove_prefix(kPrefix.size());
  std::vector<unsigned char> raw(stored.size());
  std::size_t len = 0;
  if (sodium_base642bin(raw.data(), raw.size(), stored.data(), stored.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
    throw fail();
  std::string plain(len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES - crypto_aead_xchacha20poly1305_ietf_ABYTES,
                    '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr,
          raw.data() + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          reinterpret_cast<const unsigned char*>(bound_to.data()), bound_to.size(), raw.data(), key_.data()) != 0)
    throw fail();
  plain.resize(plen);
  return plain;
}

}  // namespace neurod::notifications

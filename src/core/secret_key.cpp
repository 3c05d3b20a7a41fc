#include "core/secret_key.hpp"

#include "core/errors.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace neurod::keys {

namespace {

void init_sodium() {
  if (sodium_init() < 0) throw Error(errc::internal, "libsodium cannot be initialised");
}

Error key_error(const std::filesystem::path& file, const std::string& what) {
  return Error(errc::internal, "the key file " + file.string() + " " + what).with_code("key_file");
}

}  // namespace

std::string load_or_make(const std::filesystem::path& file, std::size_t size) {
  init_sodium();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    std::string key(size, '\0');
    randombytes_buf(key.data(), key.size());
    auto tmp = file.string() + ".tmp";
    int w = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w < 0) throw key_error(file, std::string("cannot be made: ") + std::strerror(errno));
    bool ok = ::write(w, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(w) == 0;
    ::close(w);
    if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
      auto err = errno;
      ::unlink(tmp.c_str());
      sodium_memzero(key.data(), key.size());
      throw key_error(file, std::string("cannot be written: ") + std::strerror(err));
    }
    return key;
  }
  if (fd < 0) throw key_error(file, std::string("cannot be read: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw key_error(file, "is not a regular file");
  }
  if (st.st_mode & 077) {
    ::close(fd);
    throw key_error(file, "must be readable by neurod only (chmod 600)");
  }
  std::string key(size + 1, '\0');
  ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(size)) {
    sodium_memzero(key.data(), key.size());
    throw key_error(file, "must hold exactly " + std::to_string(size) +
                              " bytes; delete it to make a new one (what was signed with it stops working)");
  }
  key.resize(size);
  return key;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha256_final(&st, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string base64url(std::string_view in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string out(in.size(), '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr, &len,
                        &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != in.data() + in.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace neurod::keys

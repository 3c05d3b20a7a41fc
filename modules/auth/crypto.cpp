#include "modules/auth/crypto.hpp"

#include "core/errors.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace neurod::auth {

namespace {
constexpr std::string_view kPrefix = "nd_";
constexpr std::size_t kTokenBytes = 32;
// sodium's unpadded base64url of 32 bytes is 43 characters.
constexpr std::size_t kTokenChars = 43;

struct SodiumInit {
  SodiumInit() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  }
};
void ensure_sodium() { static SodiumInit once; }
}  // namespace

std::string new_token() {
  ensure_sodium();
  std::array<unsigned char, kTokenBytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  std::array<char, kTokenChars + 1> text{};
  sodium_bin2base64(text.data(), text.size(), raw.data(), raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw.data(), raw.size());
  std::string out(kPrefix);
  out.append(text.data(), kTokenChars);
  sodium_memzero(text.data(), text.size());
  return out;
}

bool looks_like_token(std::string_view s) {
  if (s.size() != kPrefix.size() + kTokenChars || !s.starts_with(kPrefix)) return false;
  for (char c : s.substr(kPrefix.size()))
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

std::string token_hash(std::string_view token) {
  ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()), token.size());
  std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), crypto_hash_sha256_BYTES * 2);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string load_or_create_key(const std::filesystem::path& file, std::size_t size, std::string_view what) {
  ensure_sodium();
  std::string key;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::string buf(size + 1, '\0');  // one byte more, to notice a longer file
    ssize_t n = ::read(fd, buf.data(), buf.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(size)) {
      sodium_memzero(buf.data(), buf.size());
      throw std::runtime_error(file.string() + " is not a " + std::string(what) + " (" + std::to_string(size) +
                               " bytes); delete it to make a new one (what was issued under it stops working)");
    }
    key.assign(buf.data(), size);
    sodium_memzero(buf.data(), buf.size());
    return key;
  }
  if (errno != ENOENT) throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
  key.resize(size);
  randombytes_buf(key.data(), key.size());
  auto tmp = file;
  tmp += ".tmp";
  fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(errno));
  }
  return key;
}

std::string hmac_sha256_b64url(std::string_view key, std::string_view data) {
  ensure_sodium();
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha256_final(&st, mac.data());
  std::array<char, sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)>
      text{};
  sodium_bin2base64(text.data(), text.size(), mac.data(), mac.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string(text.data());
}

std::string hash_password(std::string_view password, const PasswordParams& params) {
  ensure_sodium();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), params.iterations,
                            static_cast<std::size_t>(params.memory_bytes), crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw Error(errc::internal, "cannot hash the password: not enough memory for argon2id");
  return std::string(out.data());
}

bool verify_password(std::string_view password, const std::string& encoded_hash) {
  ensure_sodium();
  if (encoded_hash.empty()) return false;
  return crypto_pwhash_str_verify(encoded_hash.c_str(), password.data(), password.size()) == 0;
}

}  // namespace neurod::auth

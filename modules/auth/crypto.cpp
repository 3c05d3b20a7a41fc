#include "modules/auth/crypto.hpp"

#include "core/errors.hpp"

#include <sodium.h>

#include <array>
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

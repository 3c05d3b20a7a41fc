#include "modules/notifications/sealer.hpp"

#include "core/errors.hpp"
#include "core/secret_key.hpp"

#include <sodium.h>

#include <cstring>
#include <vector>

namespace neurod::notifications {

namespace {

constexpr std::string_view kPrefix = "nd1:";

void init_sodium() {
  if (sodium_init() < 0) throw Error(errc::internal, "libsodium cannot start");
}

}  // namespace

Sealer::Sealer(const std::array<unsigned char, 32>& key) : key_(key) { init_sodium(); }

Sealer::Sealer(const std::filesystem::path& key_file) {
  init_sodium();
  auto key = keys::load_or_make(key_file, key_.size());
  std::memcpy(key_.data(), key.data(), key_.size());
  sodium_memzero(key.data(), key.size());
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

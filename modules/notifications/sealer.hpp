// Encryption at rest for what a subscription must keep secret: a webhook's signing key and
// the target URL (a Slack incoming-webhook URL is itself a credential). The key is a
// 32-byte file under the module's data dir (0600, made on first start); values are sealed
// with XChaCha20-Poly1305 (libsodium) and bound to their row (the subscription id, or the
// delivery's idempotency key) as associated data, so a value copied to another row does
// not open. Stored form: "nd1:" + base64(nonce || ciphertext).
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace neurod::notifications {

class Sealer {
 public:
  // Loads the key file, making it when absent. Throws Error(internal) when it is
  // unreadable, has the wrong size or is readable by others.
  explicit Sealer(const std::filesystem::path& key_file);
  // A fixed key (tests).
  explicit Sealer(const std::array<unsigned char, 32>& key);

  std::string seal(std::string_view plaintext, std::string_view bound_to) const;
  // Throws Error(internal, code notification_undecryptable) when the value does not open
  // (another key, another row, tampered).
  std::string open(std::string_view stored, std::string_view bound_to) const;

 private:
  std::array<unsigned char, 32> key_{};
};

}  // namespace neurod::notifications

// Encryption at rest for secret values (README.md "Encryption"): libsodium's
// XChaCha20-Poly1305 (IETF AEAD) under a 32-byte master key, a random 24-byte nonce per
// value, and the canonical secret URI as associated data so that a ciphertext cannot be
// moved to another key or project. Nothing here logs or returns a key or a plaintext in
// an error message.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::secrets {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kNonceBytes = 24;

void ensure_sodium();

// A master key, wiped from memory when destroyed.
class Key {
 public:
  Key() = default;
  explicit Key(std::string_view raw);  // exactly kKeyBytes bytes
  Key(const Key& o) : bytes_(o.bytes_), id_(o.id_) {}
  Key& operator=(const Key& o) = default;
  ~Key();
  static Key generate();
  // Base64 (standard alphabet, padded) of exactly 32 bytes; nullopt otherwise.
  static std::optional<Key> from_base64(std::string_view text);

  // 16 hex digits identifying the key (a hash of it; reveals nothing of the key). Stored
  // with every value so that rotation knows what to re-encrypt.
  const std::string& id() const { return id_; }
  const unsigned char* data() const { return bytes_.data(); }
  std::string base64() const;

 private:
  std::array<unsigned char, kKeyBytes> bytes_{};
  std::string id_;
};

struct Sealed {
  std::string key_id;
  std::string nonce;       // raw kNonceBytes
  std::string ciphertext;  // raw: plaintext + 16-byte tag
};

Sealed seal(const Key& key, std::string_view plaintext, std::string_view associated_data);
// nullopt when the ciphertext, nonce or associated data do not authenticate (tampered
// or under another key): fails closed.
std::optional<std::string> open(const Key& key, const Sealed& sealed, std::string_view associated_data);

// Every key that may have sealed a stored value: the current one (new values) and any
// others found beside it (a rotation's master.key.new and master.key.old).
class Keyring {
 public:
  void set_current(Key k);
  void add(Key k);
  const Key& current() const { return current_; }
  const Key* find(std::string_view id) const;
  std::vector<std::string> ids() const;

 private:
  Key current_;
  std::map<std::string, Key, std::less<>> keys_;
};

// Zeroes a string's bytes (a plaintext or key text no longer needed), then empties it.
void wipe(std::string& s);

// Standard base64 with padding.
std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

// --- the master key file -------------------------------------------------------------
//
// A file of exactly 32 raw bytes, mode 0600. Loading refuses a file that group or others
// may read or write, or of the wrong length, with a message saying what to do.

// Reads the key at path; Error(internal) with a clear message on any problem. nullopt when
// the file does not exist.
std::optional<Key> read_key_file(const std::filesystem::path& path);
// Writes the key to path atomically (a 0600 temp file in the same folder, fsynced, renamed
// over path, the folder fsynced).
void write_key_file(const std::filesystem::path& path, const Key& key);
// path + suffix: "master.key" -> "master.key.old".
std::filesystem::path sibling(const std::filesystem::path& path, std::string_view suffix);

}  // namespace neurod::secrets

// Credentials: random bearer tokens stored as hashes, and argon2id password hashes
// (both from libsodium). Nothing here logs or returns a secret it was given.
#pragma once

#include "core/units.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace neurod::auth {

// "nd_" + 43 base64url characters: 256 random bits.
std::string new_token();
// Whether s has the shape of a token (cheap; used before hashing anything).
bool looks_like_token(std::string_view s);
// The stored form of a token: hex SHA-256. Tokens are 256-bit random, so an unsalted
// fast hash is enough: there is nothing to brute-force.
std::string token_hash(std::string_view token);
// Constant-time equality of two equal-length strings (false when lengths differ).
bool constant_time_equal(std::string_view a, std::string_view b);

// A secret key kept in a file of the auth module's folder: read when the file exists (it
// must hold exactly `size` bytes), else made from `size` random bytes and written with mode
// 0600 (temp file, fsync, rename), so what was signed under it survives restarts. `what`
// names the key in errors. Throws std::runtime_error when the file cannot be read or
// written or has another size.
std::string load_or_create_key(const std::filesystem::path& file, std::size_t size, std::string_view what);
// base64url (no padding) of HMAC-SHA256(key, data).
std::string hmac_sha256_b64url(std::string_view key, std::string_view data);

struct PasswordParams {
  std::uint64_t memory_bytes = 64ull << 20;  // argon2id m
  std::uint64_t iterations = 3;              // argon2id t
};
// An encoded argon2id hash ("$argon2id$v=19$m=…"), salted. Throws Error(internal) when
// the parameters cannot be met (out of memory).
std::string hash_password(std::string_view password, const PasswordParams& params);
bool verify_password(std::string_view password, const std::string& encoded_hash);

}  // namespace neurod::auth

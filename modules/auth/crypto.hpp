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
struct PasswordParams {
  std::uint64_t memory_bytes = 64ull << 20;  // argon2id m
  std::uint64_t iterations = 3;              // argon2id t
};
// An encoded argon2id hash ("$argon2id$v=19$m=…"), salted. Throws Error(internal) when
// the parameters cannot be met (out of memory).
std::string hash_password(std::string_view password, const PasswordParams& params);
bool verify_password(std::string_view password, const std::string& encoded_hash);

}  // namespace neurod::auth

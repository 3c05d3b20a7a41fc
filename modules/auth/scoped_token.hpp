// Scoped tokens: short-lived bearer tokens that carry their principal and a list of scopes
// ("repository:alice/train:pull,push"), signed with HMAC-SHA256 under a key that lives in
// the auth module's folder (mode 0600). Nothing is stored: verification is a MAC and an
// expiry check in memory, so the authenticator (on the I/O thread) never blocks. The
// registry's token flow issues them; the jobs executor will pull as a job's owner with one.
//
// A scoped token never grants more than its principal's ACL: every use is checked against
// both the scopes and the ACL of the moment.
#pragma once

#include "core/units.hpp"
#include "http/types.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::auth {

struct ScopedToken {
  std::string token;
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

class ScopedTokens {
 public:
  static constexpr std::string_view kPrefix = "ndsc_";

  // Loads the key from key_file, or makes one (32 random bytes, mode 0600) when missing.
  // Throws std::runtime_error when the file cannot be read or written or is malformed.
  explicit ScopedTokens(const std::filesystem::path& key_file);
  // A key given directly (tests).
  explicit ScopedTokens(std::string key);

  ScopedToken issue(const http::Principal& who, std::vector<std::string> scopes, Duration ttl,
                    std::int64_t now_ms) const;
  // The principal (with Principal::scopes set) for a valid, unexpired token; nullopt for
  // anything else (a forged, altered, expired or malformed one).
  // expires_at_ms, when given, receives the token's expiry.
  std::optional<http::Principal> verify(std::string_view token, std::int64_t now_ms,
                                        std::int64_t* expires_at_ms = nullptr) const;
  static bool looks_like(std::string_view token) { return token.starts_with(kPrefix); }

 private:
  std::string key_;
};

}  // namespace neurod::auth

// Small shared pieces for keys that sign things neurod hands out (capability tickets):
// a per-installation key file made on first start, HMAC-SHA256, URL-safe base64 and a
// constant-time comparison (libsodium underneath). Modules that sign with their own key
// use these rather than each carrying its own copy.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace neurod::keys {

// The key in `file`: exactly `size` random bytes, made (mode 0600, written to a temporary
// file and renamed) when the file is missing. Throws Error(internal) saying what to do
// when it cannot be read or written, has another size, is a symlink or is readable by
// group or others.
std::string load_or_make(const std::filesystem::path& file, std::size_t size = 32);

// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

// URL-safe base64 without padding, and back (nullopt for anything malformed).
std::string base64url(std::string_view bytes);
std::optional<std::string> unbase64url(std::string_view text);

// Equal sizes and bytes, in time that depends on the size only.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace neurod::keys

#pragma once

#include <string>
#include <string_view>

namespace neurod {

// Cryptographically random identifiers (libsodium's randombytes).
std::string random_hex(std::size_t bytes);
// "prefix-" followed by 24 lowercase hex chars, e.g. "job-3f2a…".
std::string new_id(std::string_view prefix);
// Short ids for requests: 16 hex chars.
std::string new_request_id();

}  // namespace neurod

#include "core/ids.hpp"

#include <sodium.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace neurod {
namespace {

void ensure_sodium() {
  // sodium_init() is thread-safe and idempotent; the static makes it run once.
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium initialisation failed");
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  ensure_sodium();
  std::vector<unsigned char> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), buf.data(), buf.size());
  hex.pop_back();  // the terminating NUL sodium writes
  return hex;
}

std::string new_id(std::string_view prefix) {
  std::string id(prefix);
  id += '-';
  id += random_hex(12);
  return id;
}

// Request ids only need to be unique, not unpredictable: a per-thread generator
// seeded from libsodium saves a getrandom() system call on every request.
std::string new_request_id() {
  thread_local std::mt19937_64 gen = [] {
    ensure_sodium();
    std::uint64_t seed = 0;
    randombytes_buf(&seed, sizeof seed);
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = gen();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<std::size_t>(i)] = kHex[v & 15];
  return id;
}

}  // namespace neurod

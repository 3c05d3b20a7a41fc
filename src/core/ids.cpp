#include "core/ids.hpp"

#include <sodium.h>

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

std::string new_request_id() { return random_hex(8); }

}  // namespace neurod

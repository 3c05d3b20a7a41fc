#include "modules/auth/scoped_token.hpp"

#include "core/secret_key.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace neurod::auth {

namespace {

constexpr std::size_t kKeySize = 32;

}  // namespace

ScopedTokens::ScopedTokens(std::string key) : key_(std::move(key)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot be initialised");
  if (key_.size() < 16) throw std::runtime_error("the scoped-token key is too short");
}

ScopedTokens::ScopedTokens(const std::filesystem::path& key_file)
    : key_(keys::load_or_make(key_file, kKeySize)) {}

ScopedToken ScopedTokens::issue(const http::Principal& who, std::vector<std::string> scopes, Duration ttl,
                                std::int64_t now_ms) const {
  ScopedToken out;
  out.issued_at_ms = now_ms;
  out.expires_at_ms = now_ms + ttl.count();
  std::string nonce(12, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  nlohmann::json payload{{"sub", who.name},          {"knd", who.kind},          {"cred", who.credential},
                         {"iat", out.issued_at_ms}, {"exp", out.expires_at_ms}, {"scp", std::move(scopes)},
                         {"jti", keys::base64url(nonce)}};
  auto body = keys::base64url(payload.dump());
  out.token = std::string(kPrefix) + body + "." + keys::base64url(keys::hmac_sha256(key_, body));
  return out;
}

std::optional<http::Principal> ScopedTokens::verify(std::string_view token, std::int64_t now_ms,
                                                    std::int64_t* expires_at_ms) const {
  if (!looks_like(token) || token.size() > 16384) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto body = token.substr(0, dot);
  auto sig = keys::unbase64url(token.substr(dot + 1));
  if (!sig) return std::nullopt;
  auto want = keys::hmac_sha256(key_, body);
  if (!keys::constant_time_equal(*sig, want)) return std::nullopt;
  auto raw = keys::unbase64url(body);
  if (!raw) return std::nullopt;
  auto j = nlohmann::json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    auto exp = j.at("exp").get<std::int64_t>();
    if (exp <= now_ms) return std::nullopt;
    if (expires_at_ms) *expires_at_ms = exp;
    http::Principal p;
    p.name = j.at("sub").get<std::string>();
    p.kind = j.at("knd").get<std::string>();
    p.credential = j.value("cred", std::string());
    p.scopes = j.at("scp").get<std::vector<std::string>>();
    if (p.name.empty()) return std::nullopt;
    return p;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace neurod::auth

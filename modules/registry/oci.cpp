#include "modules/registry/oci.hpp"

#include <stdexcept>
#include <vector>

namespace neurod::registry {

bool is_index_type(std::string_view t) { return t == kOciIndex || t == kDockerList; }
bool is_manifest_type(std::string_view t) {
  return t == kOciManifest || t == kOciIndex || t == kDockerManifest || t == kDockerList;
}

Error oci_error(errc status, std::string_view code, std::string message, nlohmann::json detail) {
  return Error(status, std::move(message), std::move(detail)).with_code(std::string(code));
}

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool valid_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    // A separator: ".", "_", "__" or one or more "-", between alphanumerics.
    std::size_t j = i;
    if (c[i] == '.') {
      j = i + 1;
    } else if (c[i] == '_') {
      j = i + 1;
      if (j < c.size() && c[j] == '_') ++j;
    } else if (c[i] == '-') {
      while (j < c.size() && c[j] == '-') ++j;
    } else {
      return false;
    }
    if (j >= c.size() || !lower_alnum(c[j])) return false;
    i = j;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  for (;;) {
    auto j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

bool hex_lower(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string join(const std::vector<std::string_view>& parts, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    if (i > from) out += '/';
    out += parts[i];
  }
  return out;
}

bool valid_upload_id(std::string_view s) { return s.size() == 32 && hex_lower(s); }

}  // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  auto parts = split(name, '/');
  if (parts.size() < 2) return false;
  for (auto p : parts)
    if (!valid_component(p)) return false;
  return true;
}

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (!first && (c == '.' || c == '-'));
  };
  for (std::size_t i = 0; i < tag.size(); ++i)
    if (!ok(tag[i], i == 0)) return false;
  return true;
}

bool valid_digest(std::string_view d) { return d.size() == 71 && d.starts_with("sha256:") && hex_lower(d.substr(7)); }

bool digest_shaped(std::string_view d) {
  auto colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= d.size()) return false;
  for (char c : d.substr(0, colon))
    if (!(lower_alnum(c) || c == '+' || c == '.' || c == '_' || c == '-')) return false;
  for (char c : d.substr(colon + 1))
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

Target parse_target(std::string_view rest) {
  Target t;
  auto parts = split(rest, '/');
  auto n = parts.size();
  auto at = [&](std::size_t from_end) { return parts[n - from_end]; };
  if (n >= 4 && at(3) == "blobs" && at(2) == "uploads") {
    t.name = join(parts, 0, n - 3);
    t.reference = std::string(at(1));
    t.kind = t.reference.empty() ? Target::upload_start : valid_upload_id(t.reference) ? Target::upload : Target::invalid;
    if (t.kind != Target::invalid) return t;
  }
  if (n >= 3 && at(2) == "blobs" && at(1) == "uploads") {
    t.name = join(parts, 0, n - 2);
    t.kind = Target::upload_start;
    return t;
  }
  if (n >= 3 && at(2) == "tags" && at(1) == "list") {
    t.name = join(parts, 0, n - 2);
    t.kind = Target::tags;
    return t;
  }
  if (n >= 3) {
    t.name = join(parts, 0, n - 2);
    t.reference = std::string(at(1));
    if (at(2) == "manifests") t.kind = Target::manifest;
    else if (at(2) == "blobs") t.kind = Target::blob;
    else if (at(2) == "referrers") t.kind = Target::referrers;
    if (t.reference.empty()) t.kind = Target::invalid;
  }
  return t;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) throw std::bad_alloc();
  reset();
}
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::reset() {
  if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw Error(errc::internal, "SHA-256 is unavailable");
}

void Sha256::update(const void* data, std::size_t size) {
  if (size && EVP_DigestUpdate(ctx_, data, size) != 1) throw Error(errc::internal, "SHA-256 failed");
}

std::string Sha256::digest() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  bool ok = copy && EVP_MD_CTX_copy_ex(copy, ctx_) == 1 && EVP_DigestFinal_ex(copy, md, &len) == 1;
  EVP_MD_CTX_free(copy);
  if (!ok) throw Error(errc::internal, "SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_digest(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.digest();
}

}  // namespace neurod::registry

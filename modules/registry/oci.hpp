// The OCI Distribution vocabulary: repository names, tags and digests as the spec defines
// them, the /v2/ paths, the spec's error codes, and SHA-256 over a stream.
#pragma once

#include "core/errors.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace neurod::registry {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";

bool is_index_type(std::string_view media_type);
bool is_manifest_type(std::string_view media_type);  // any of the four

// An error in the spec's form: `code` is one of its codes (BLOB_UNKNOWN, …); the status
// comes from `status`.
Error oci_error(errc status, std::string_view code, std::string message,
                nlohmann::json detail = nlohmann::json::object());

// <component>(/<component>)* with component [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, at most 255
// characters; neurod also wants two components at least (PROJECT/NAME).
bool valid_name(std::string_view name);
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool valid_tag(std::string_view tag);
// sha256:<64 lowercase hex> (the only algorithm neurod stores).
bool valid_digest(std::string_view digest);
// An algorithm:encoded digest of any registered shape (for telling DIGEST_INVALID from UNSUPPORTED).
bool digest_shaped(std::string_view digest);
inline std::string_view digest_hex(std::string_view digest) { return digest.substr(7); }

// What a path under /v2/ names.
struct Target {
  enum Kind { invalid, manifest, blob, upload_start, upload, tags, referrers } kind = invalid;
  std::string name;       // the repository
  std::string reference;  // manifest: tag or digest; blob/referrers: digest; upload: the session id
};
Target parse_target(std::string_view rest);  // rest: the path after "/v2/"

// SHA-256 fed piece by piece; digest() can be read at any point and feeding may go on.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  std::string digest() const;  // "sha256:<hex>"
  void reset();

 private:
  EVP_MD_CTX* ctx_;
};

std::string sha256_digest(std::string_view data);

}  // namespace neurod::registry

// The secrets' business logic (README.md here): per-project values, encrypted at rest,
// with the permission checks of every call. No HTTP and no module context, so unit tests
// construct it directly. Values (plaintext) only ever leave through get() and value();
// no message, log line or exception carries one.
#pragma once

#include "modules/secrets/keys.hpp"
#include "modules/secrets/repo.hpp"

#include "http/types.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::db {
class Database;
}
namespace neurod::auth {
class Authorizer;
}

namespace neurod::secrets {

inline constexpr std::size_t kMaxValueBytes = 1024 * 1024;

struct Secret {
  repo::Meta meta;
  std::optional<std::string> value;  // only from get()
};

// The canonical URI "secret://CLUSTER/PROJECT/KEY": what permissions are checked on, and
// the associated data every value is sealed with.
std::string secret_uri(std::string_view cluster, std::string_view project, std::string_view key);

nlohmann::json to_json(const Secret& s, const std::string& cluster);

class Service {
 public:
  Service(db::Database& db, auth::Authorizer& authz, KeyStore& keys);

  // Key names: [A-Za-z_][A-Za-z0-9_.-]{0,254}; Error(bad_request, "invalid_secret_key") otherwise.
  static void validate_key(std::string_view key);

  // Creates or replaces (returns whether it was created). Needs write on
  // secret://CLUSTER/PROJECT/KEY (a grant on the project covers it); 403 otherwise.
  // Values over kMaxValueBytes: 413. An empty project is the caller's own.
  std::pair<Secret, bool> put(const http::Principal& who, std::string project, const std::string& key,
                              std::string_view value);
  // Names and metadata of what the caller may read; every project when project is empty.
  std::vector<Secret> list(const http::Principal& who, const std::string& project);
  // With the value. 404 unless the caller may read it (its existence stays hidden).
  Secret get(const http::Principal& who, std::string project, const std::string& key);
  // 404 unless the caller may read it; 403 when they may read it but not write it.
  void remove(const http::Principal& who, std::string project, const std::string& key);

  // The plaintext by canonical URI, no permission check (for jobs); nullopt when there is
  // no such secret. A stored value that fails authentication throws Error(internal).
  std::optional<std::string> value(std::string_view secret_uri);

  // The project a request names, or the caller's own (Authorizer::context_for).
  std::string project_for(const http::Principal& who, std::string project) const;
  std::string uri(std::string_view project, std::string_view key) const;

 private:
  std::string decrypt(const repo::Row& row);

  db::Database& db_;
  auth::Authorizer& authz_;
  KeyStore& keys_;
};

}  // namespace neurod::secrets

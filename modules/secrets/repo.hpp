// The secrets table (migrations/secrets). Every function runs inside the caller's
// transaction (Database::write/read). Rows hold ciphertext only; nothing here decrypts.
#pragma once

#include "modules/secrets/crypto.hpp"

#include <soci/soci.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace neurod::secrets::repo {

struct Meta {
  std::string project;
  std::string name;
  std::string owner;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

struct Row {
  Meta meta;
  Sealed sealed;  // raw nonce and ciphertext
};

// Creates the row or replaces its value (the owner and created_at of an existing row
// stay). Returns the row's metadata as stored and whether it was created.
std::pair<Meta, bool> upsert(soci::session& s, const Meta& meta, const Sealed& sealed);
std::optional<Row> load(soci::session& s, const std::string& project, const std::string& name);
// Names and metadata, ordered by project then name; every project when project is empty.
std::vector<Meta> list(soci::session& s, const std::string& project);
bool remove(soci::session& s, const std::string& project, const std::string& name);

// For rotation: each row (ciphertext included), one at a time, in key order.
void for_each(soci::session& s, const std::function<void(const Row&)>& fn);
void update_sealed(soci::session& s, const std::string& project, const std::string& name, const Sealed& sealed);
// How many values each master key id seals.
std::map<std::string, std::int64_t> count_by_key(soci::session& s);

}  // namespace neurod::secrets::repo

#include "modules/secrets/repo.hpp"

#include "core/errors.hpp"
#include "db/rows.hpp"

namespace neurod::secrets::repo {

namespace {

using db::as_int64;
using db::as_string;

Meta meta_from(const soci::row& r) {
  return {as_string(r, 0), as_string(r, 1), as_string(r, 2), as_int64(r, 3), as_int64(r, 4)};
}
constexpr const char* kMetaCols = "project, name, owner, created_at, updated_at";

// Stored as base64 text: one portable column type on both backends, and never NUL bytes.
Sealed sealed_from(const soci::row& r, std::size_t first) {
  Sealed out;
  out.key_id = as_string(r, first);
  auto nonce = base64_decode(as_string(r, first + 1));
  auto ct = base64_decode(as_string(r, first + 2));
  // A row that is not even base64 cannot authenticate either; an empty nonce makes open() fail closed.
  if (nonce) out.nonce = std::move(*nonce);
  if (ct) out.ciphertext = std::move(*ct);
  return out;
}

}  // namespace

std::pair<Meta, bool> upsert(soci::session& s, const Meta& meta, const Sealed& sealed) {
  auto existing = load(s, meta.project, meta.name);
  std::string nonce = base64_encode(sealed.nonce), ct = base64_encode(sealed.ciphertext);
  long long updated = meta.updated_at;
  if (existing) {
    s << "UPDATE secrets SET key_id = :k, nonce = :n, ciphertext = :c, updated_at = :u WHERE project = :p AND "
         "name = :name",
        soci::use(sealed.key_id), soci::use(nonce), soci::use(ct), soci::use(updated), soci::use(meta.project),
        soci::use(meta.name);
    Meta out = existing->meta;
    out.updated_at = meta.updated_at;
    return {out, false};
  }
  long long created = meta.created_at;
  s << "INSERT INTO secrets (project, name, owner, key_id, nonce, ciphertext, created_at, updated_at) VALUES (:p, "
       ":name, :o, :k, :n, :c, :cr, :u)",
      soci::use(meta.project), soci::use(meta.name), soci::use(meta.owner), soci::use(sealed.key_id), soci::use(nonce),
      soci::use(ct), soci::use(created), soci::use(updated);
  return {meta, true};
}

std::optional<Row> load(soci::session& s, const std::string& project, const std::string& name) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kMetaCols +
                        ", key_id, nonce, ciphertext FROM secrets WHERE project = :p AND name = :n",
       soci::use(project), soci::use(name));
  for (const auto& r : rs) return Row{meta_from(r), sealed_from(r, 5)};
  return std::nullopt;
}

std::vector<Meta> list(soci::session& s, const std::string& project) {
  std::vector<Meta> out;
  std::string p = project;
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kMetaCols +
                        " FROM secrets WHERE (:p0 = '' OR project = :p1) ORDER BY project, name",
       soci::use(p), soci::use(p));
  for (const auto& r : rs) out.push_back(meta_from(r));
  return out;
}

bool remove(soci::session& s, const std::string& project, const std::string& name) {
  soci::statement st =
      (s.prepare << "DELETE FROM secrets WHERE project = :p AND name = :n", soci::use(project), soci::use(name));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

void for_each(soci::session& s, const std::function<void(const Row&)>& fn) {
  // Keys first, then one row at a time: a 1 MiB value each, never the whole table in memory.
  std::vector<std::pair<std::string, std::string>> keys;
  {
    soci::rowset<soci::row> rs = (s.prepare << "SELECT project, name FROM secrets ORDER BY project, name");
    for (const auto& r : rs) keys.emplace_back(as_string(r, 0), as_string(r, 1));
  }
  for (const auto& [project, name] : keys)
    if (auto row = load(s, project, name)) fn(*row);
}

void update_sealed(soci::session& s, const std::string& project, const std::string& name, const Sealed& sealed) {
  std::string nonce = base64_encode(sealed.nonce), ct = base64_encode(sealed.ciphertext);
  s << "UPDATE secrets SET key_id = :k, nonce = :n, ciphertext = :c WHERE project = :p AND name = :name",
      soci::use(sealed.key_id), soci::use(nonce), soci::use(ct), soci::use(project), soci::use(name);
}

std::map<std::string, std::int64_t> count_by_key(soci::session& s) {
  std::map<std::string, std::int64_t> out;
  soci::rowset<soci::row> rs = (s.prepare << "SELECT key_id, COUNT(*) FROM secrets GROUP BY key_id");
  for (const auto& r : rs) out[as_string(r, 0)] = as_int64(r, 1);
  return out;
}

}  // namespace neurod::secrets::repo

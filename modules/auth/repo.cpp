#include "modules/auth/repo.hpp"

#include "db/rows.hpp"

#include <chrono>

namespace neurod::auth::repo {

namespace {

using db::as_int64;
using db::as_string;
std::int64_t i64(const soci::row& r, std::size_t i) { return as_int64(r, i); }
std::optional<std::int64_t> opt_i64(const soci::row& r, std::size_t i) { return db::as_opt_int64(r, i); }
std::string str(const soci::row& r, std::size_t i) { return as_string(r, i); }

PrincipalRow principal_from(const soci::row& r) {
  return {str(r, 0), str(r, 1), str(r, 2), str(r, 3), str(r, 4), i64(r, 5) != 0, i64(r, 6)};
}
constexpr const char* kPrincipalCols = "name, kind, email, password_hash, owner, builtin, created_at";

TokenRow token_from(const soci::row& r) {
  return {str(r, 0), str(r, 1), str(r, 2), str(r, 3), str(r, 4), i64(r, 5), opt_i64(r, 6)};
}
constexpr const char* kTokenCols = "id, hash, principal, kind, name, created_at, expires_at";

ProjectRow project_from(const soci::row& r) { return {str(r, 0), i64(r, 1) != 0, str(r, 2), i64(r, 3)}; }

GrantRow grant_from(const soci::row& r) { return {str(r, 0), Grant{str(r, 1), action_from(str(r, 2))}, str(r, 3)}; }

}  // namespace

std::int64_t bump_version(soci::session& s) {
  s << "UPDATE auth_state SET version = version + 1 WHERE id = 1";
  return version(s);
}

std::int64_t version(soci::session& s) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT version FROM auth_state WHERE id = 1");
  for (const auto& r : rs) return i64(r, 0);
  return 0;
}

std::optional<std::string> cluster(soci::session& s) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT cluster FROM auth_state WHERE id = 1");
  for (const auto& r : rs)
    if (r.get_indicator(0) != soci::i_null) return r.get<std::string>(0);
  return std::nullopt;
}

void set_cluster(soci::session& s, const std::string& cluster) {
  s << "UPDATE auth_state SET cluster = :c WHERE id = 1", soci::use(cluster);
}

std::vector<PrincipalRow> principals(soci::session& s, const std::string& kind) {
  std::vector<PrincipalRow> out;
  std::string sql = std::string("SELECT ") + kPrincipalCols + " FROM auth_principals";
  if (kind.empty()) {
    soci::rowset<soci::row> rs = (s.prepare << sql + " ORDER BY name");
    for (const auto& r : rs) out.push_back(principal_from(r));
  } else {
    soci::rowset<soci::row> rs = (s.prepare << sql + " WHERE kind = :k ORDER BY name", soci::use(kind));
    for (const auto& r : rs) out.push_back(principal_from(r));
  }
  return out;
}

std::optional<PrincipalRow> principal(soci::session& s, const std::string& name) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kPrincipalCols + " FROM auth_principals WHERE name = :n", soci::use(name));
  for (const auto& r : rs) return principal_from(r);
  return std::nullopt;
}

std::int64_t count_principals(soci::session& s, const std::string& kind) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT COUNT(*) FROM auth_principals WHERE kind = :k", soci::use(kind));
  for (const auto& r : rs) return i64(r, 0);
  return 0;
}

void insert_principal(soci::session& s, const PrincipalRow& p) {
  soci::indicator email_ind = p.email.empty() ? soci::i_null : soci::i_ok;
  soci::indicator hash_ind = p.password_hash.empty() ? soci::i_null : soci::i_ok;
  soci::indicator owner_ind = p.owner.empty() ? soci::i_null : soci::i_ok;
  int builtin = p.builtin ? 1 : 0;
  long long created = p.created_at;
  s << "INSERT INTO auth_principals (name, kind, email, password_hash, owner, builtin, created_at) "
       "VALUES (:n, :k, :e, :h, :o, :b, :c)",
      soci::use(p.name), soci::use(p.kind), soci::use(p.email, email_ind), soci::use(p.password_hash, hash_ind),
      soci::use(p.owner, owner_ind), soci::use(builtin), soci::use(created);
}

void delete_principal(soci::session& s, const std::string& name) {
  std::string role_uri = "role://" + name;
  s << "DELETE FROM auth_grants WHERE uri = :u", soci::use(role_uri);
  s << "DELETE FROM auth_grants WHERE principal = :n", soci::use(name);
  s << "DELETE FROM auth_tokens WHERE principal = :n", soci::use(name);
  s << "DELETE FROM auth_principals WHERE name = :n", soci::use(name);
}

void set_password(soci::session& s, const std::string& name, const std::string& hash) {
  s << "UPDATE auth_principals SET password_hash = :h WHERE name = :n", soci::use(hash), soci::use(name);
}

std::vector<GrantRow> all_grants(soci::session& s) {
  std::vector<GrantRow> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT principal, uri, action, granted_by FROM auth_grants ORDER BY principal, uri");
  for (const auto& r : rs) out.push_back(grant_from(r));
  return out;
}

std::vector<Grant> grants_of(soci::session& s, const std::string& principal) {
  std::vector<Grant> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT principal, uri, action, granted_by FROM auth_grants WHERE principal = :p ORDER BY uri",
       soci::use(principal));
  for (const auto& r : rs) out.push_back(grant_from(r).grant);
  return out;
}

std::vector<GrantRow> holders_of(soci::session& s, const std::string& uri) {
  std::vector<GrantRow> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT principal, uri, action, granted_by FROM auth_grants WHERE uri = :u ORDER BY principal",
       soci::use(uri));
  for (const auto& r : rs) out.push_back(grant_from(r));
  return out;
}

// "uri or below": equal, or starting with uri + "/". substr instead of LIKE keeps '%'
// and '_' in names from acting as wildcards.
std::vector<std::string> principals_with_grants_under(soci::session& s, const std::string& uri) {
  std::vector<std::string> out;
  std::string prefix = uri.ends_with('/') ? uri : uri + "/";
  int n = static_cast<int>(prefix.size());
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT DISTINCT principal FROM auth_grants WHERE uri = :u OR substr(uri, 1, :n) = :p",
       soci::use(uri), soci::use(n), soci::use(prefix));
  for (const auto& r : rs) out.push_back(str(r, 0));
  return out;
}

void upsert_grant(soci::session& s, const std::string& principal, const Grant& g, const std::string& granted_by) {
  std::string action(to_string(g.action));
  long long now = now_ms();
  soci::indicator by_ind = granted_by.empty() ? soci::i_null : soci::i_ok;
  s << "INSERT INTO auth_grants (principal, uri, action, granted_by, created_at) VALUES (:p, :u, :a, :b, :c) "
       "ON CONFLICT (principal, uri) DO UPDATE SET action = excluded.action, granted_by = excluded.granted_by",
      soci::use(principal), soci::use(g.uri), soci::use(action), soci::use(granted_by, by_ind), soci::use(now);
}

bool delete_grant(soci::session& s, const std::string& principal, const std::string& uri) {
  soci::statement st =
      (s.prepare << "DELETE FROM auth_grants WHERE principal = :p AND uri = :u", soci::use(principal), soci::use(uri));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

void delete_grants_under(soci::session& s, const std::string& uri) {
  std::string prefix = uri.ends_with('/') ? uri : uri + "/";
  int n = static_cast<int>(prefix.size());
  s << "DELETE FROM auth_grants WHERE uri = :u OR substr(uri, 1, :n) = :p", soci::use(uri), soci::use(n),
      soci::use(prefix);
}

std::vector<TokenRow> all_tokens(soci::session& s) {
  std::vector<TokenRow> out;
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kTokenCols + " FROM auth_tokens");
  for (const auto& r : rs) out.push_back(token_from(r));
  return out;
}

std::vector<TokenRow> tokens_of(soci::session& s, const std::string& principal) {
  std::vector<TokenRow> out;
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kTokenCols +
                                                 " FROM auth_tokens WHERE principal = :p ORDER BY created_at, id",
                                soci::use(principal));
  for (const auto& r : rs) out.push_back(token_from(r));
  return out;
}

std::optional<TokenRow> token(soci::session& s, const std::string& id) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kTokenCols + " FROM auth_tokens WHERE id = :i", soci::use(id));
  for (const auto& r : rs) return token_from(r);
  return std::nullopt;
}

void insert_token(soci::session& s, const TokenRow& t) {
  long long created = t.created_at;
  long long expires = t.expires_at.value_or(0);
  soci::indicator exp_ind = t.expires_at ? soci::i_ok : soci::i_null;
  s << "INSERT INTO auth_tokens (id, hash, principal, kind, name, created_at, expires_at) "
       "VALUES (:i, :h, :p, :k, :n, :c, :e)",
      soci::use(t.id), soci::use(t.hash), soci::use(t.principal), soci::use(t.kind), soci::use(t.name),
      soci::use(created), soci::use(expires, exp_ind);
}

bool delete_token(soci::session& s, const std::string& id) {
  soci::statement st = (s.prepare << "DELETE FROM auth_tokens WHERE id = :i", soci::use(id));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

std::vector<std::string> delete_tokens_of(soci::session& s, const std::string& principal, const std::string& kind) {
  if (kind.empty())
    s << "DELETE FROM auth_tokens WHERE principal = :p", soci::use(principal);
  else
    s << "DELETE FROM auth_tokens WHERE principal = :p AND kind = :k", soci::use(principal), soci::use(kind);
  return {principal};
}

std::vector<std::string> delete_expired_tokens(soci::session& s, std::int64_t now) {
  std::vector<std::string> who;
  long long t = now;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT DISTINCT principal FROM auth_tokens WHERE expires_at IS NOT NULL AND expires_at <= :t",
       soci::use(t));
  for (const auto& r : rs) who.push_back(str(r, 0));
  if (!who.empty()) s << "DELETE FROM auth_tokens WHERE expires_at IS NOT NULL AND expires_at <= :t", soci::use(t);
  return who;
}

std::vector<ProjectRow> projects(soci::session& s) {
  std::vector<ProjectRow> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT name, personal, created_by, created_at FROM auth_projects ORDER BY name");
  for (const auto& r : rs) out.push_back(project_from(r));
  return out;
}

std::optional<ProjectRow> project(soci::session& s, const std::string& name) {
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT name, personal, created_by, created_at FROM auth_projects WHERE name = :n",
       soci::use(name));
  for (const auto& r : rs) return project_from(r);
  return std::nullopt;
}

void insert_project(soci::session& s, const ProjectRow& p) {
  int personal = p.personal ? 1 : 0;
  long long created = p.created_at;
  soci::indicator by_ind = p.created_by.empty() ? soci::i_null : soci::i_ok;
  s << "INSERT INTO auth_projects (name, personal, created_by, created_at) VALUES (:n, :p, :b, :c)", soci::use(p.name),
      soci::use(personal), soci::use(p.created_by, by_ind), soci::use(created);
}

void delete_project(soci::session& s, const std::string& name) {
  s << "DELETE FROM auth_projects WHERE name = :n", soci::use(name);
}

}  // namespace neurod::auth::repo

// The auth module's SQL (DESIGN §6): every statement on its tables is here, and
// nothing outside the module reaches them. Functions take the session of the
// transaction the caller runs (Database::write/read); times are epoch milliseconds.
#pragma once

#include "core/times.hpp"

#include "modules/auth/permissions.hpp"

#include <soci/soci.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace neurod::auth::repo {

struct PrincipalRow {
  std::string name;
  std::string kind;  // user | service | role
  std::string email;
  std::string password_hash;
  std::string owner;
  bool builtin = false;
  std::int64_t created_at = 0;
};

struct TokenRow {
  std::string id;
  std::string hash;
  std::string principal;
  std::string kind;  // session | api | service | bootstrap
  std::string name;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;
};

struct GrantRow {
  std::string principal;
  Grant grant;
  std::string granted_by;
};

struct ProjectRow {
  std::string name;
  bool personal = false;
  std::string created_by;
  std::int64_t created_at = 0;
};

using neurod::now_ms;  // core/times.hpp

// auth_state
std::int64_t bump_version(soci::session& s);
std::int64_t version(soci::session& s);
std::optional<std::string> cluster(soci::session& s);
void set_cluster(soci::session& s, const std::string& cluster);

// principals
std::vector<PrincipalRow> principals(soci::session& s, const std::string& kind = {});
std::optional<PrincipalRow> principal(soci::session& s, const std::string& name);
std::int64_t count_principals(soci::session& s, const std::string& kind);
void insert_principal(soci::session& s, const PrincipalRow& p);
// Removes the principal with its grants and tokens, and every grant of its role URI.
void delete_principal(soci::session& s, const std::string& name);
void set_password(soci::session& s, const std::string& name, const std::string& hash);

// grants
std::vector<GrantRow> all_grants(soci::session& s);
std::vector<Grant> grants_of(soci::session& s, const std::string& principal);
// Who holds exactly this URI.
std::vector<GrantRow> holders_of(soci::session& s, const std::string& uri);
// Whose grants are on uri or below it (principals, distinct).
std::vector<std::string> principals_with_grants_under(soci::session& s, const std::string& uri);
void upsert_grant(soci::session& s, const std::string& principal, const Grant& g, const std::string& granted_by);
bool delete_grant(soci::session& s, const std::string& principal, const std::string& uri);
void delete_grants_under(soci::session& s, const std::string& uri);

// tokens
std::vector<TokenRow> all_tokens(soci::session& s);
std::vector<TokenRow> tokens_of(soci::session& s, const std::string& principal);
std::optional<TokenRow> token(soci::session& s, const std::string& id);
void insert_token(soci::session& s, const TokenRow& t);
bool delete_token(soci::session& s, const std::string& id);
// Returns the principals whose tokens were removed.
std::vector<std::string> delete_tokens_of(soci::session& s, const std::string& principal, const std::string& kind = {});
std::vector<std::string> delete_expired_tokens(soci::session& s, std::int64_t now);

// projects
std::vector<ProjectRow> projects(soci::session& s);
std::optional<ProjectRow> project(soci::session& s, const std::string& name);
void insert_project(soci::session& s, const ProjectRow& p);
void delete_project(soci::session& s, const std::string& name);

}  // namespace neurod::auth::repo

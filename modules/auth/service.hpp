// The identity and access operations (users, roles, projects, grants, tokens, service
// accounts): validation, the permission rules of who may change what, the SQL through
// repo, and publishing a new Authorizer snapshot after every change. The HTTP handlers
// (api.cpp) and the offline commands (offline.cpp) are thin layers over it.
#pragma once

#include "core/units.hpp"
#include "http/types.hpp"
#include "modules/auth/authorizer.hpp"
#include "modules/auth/crypto.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace neurod::db {
class Database;
}
namespace soci {
class session;
}

namespace neurod::auth {

struct ServiceOptions {
  std::string cluster = "default";
  PasswordParams password;
  std::size_t password_min_length = 10;
  Duration session_ttl = std::chrono::hours(24 * 7);
  Duration default_token_ttl = std::chrono::hours(24 * 90);
  Duration max_token_ttl = std::chrono::hours(24 * 365);
  bool users_create_projects = true;
};

// Who asks. `system` is the daemon itself or `neurod admin` on the server's console:
// no permission checks.
struct Actor {
  http::Principal who;
  bool system = false;
  static Actor of(const http::Principal& p) { return {p, false}; }
  static Actor daemon() { return {http::Principal{"neurod", "system", {}}, true}; }
};

inline constexpr std::string_view kProjectRoles[] = {"reader", "writer", "manager", "admin"};

struct Issued {
  TokenInfo info;
  std::string token;  // shown once
};

struct ProjectInfo {
  std::string name;
  bool personal = false;
  std::string created_by;
  std::int64_t created_at = 0;
};

struct Member {
  std::string user;
  std::string role;
};

class Service {
 public:
  Service(db::Database& db, Authorizer& authz, ServiceOptions options);

  const ServiceOptions& options() const { return options_; }
  Authorizer& authorizer() { return authz_; }

  // Start-up: binds the database to this cluster (refusing another's), makes sure the
  // built-in admin role exists, and loads everything.
  void load();
  // On a database with no users: creates `name` as an admin and returns its first token.
  std::optional<Issued> bootstrap(const std::string& name);
  // Reloads when another process changed the data (the version counter moved).
  bool sync();
  // Drops expired tokens.
  std::size_t purge_expired_tokens();

  // --- users
  PrincipalInfo create_user(const Actor& a, const std::string& name, const std::string& password,
                            const std::string& email, bool admin);
  void delete_user(const Actor& a, const std::string& name);
  void set_password(const Actor& a, const std::string& name, const std::string& password,
                    const std::optional<std::string>& current_password);
  std::vector<PrincipalInfo> list_principals(const Actor& a, const std::string& kind = {});
  PrincipalInfo get_principal(const Actor& a, const std::string& name);

  // --- credentials
  // Throws Error(unauthenticated, code "invalid_credentials") for an unknown user, a wrong
  // password or a user without one, in the same time either way.
  Issued login(const std::string& user, const std::string& password, std::optional<Duration> ttl);
  Issued create_token(const Actor& a, const std::string& principal, const std::string& kind, const std::string& name,
                      std::optional<Duration> ttl);
  std::vector<TokenInfo> list_tokens(const Actor& a, const std::string& principal);
  void revoke_token(const Actor& a, const std::string& id);
  std::optional<TokenInfo> token_info(const std::string& id) const;

  // --- grants
  std::vector<Grant> grant(const Actor& a, const std::string& principal, const std::vector<Grant>& grants);
  void revoke(const Actor& a, const std::string& principal, const std::string& uri);
  // Own grants, or (expand) own and every held role's, each with the role it came from.
  struct GrantView {
    Grant grant;
    std::string via;
  };
  std::vector<GrantView> permissions(const Actor& a, const std::string& principal, bool expand,
                                     const std::string& under);
  // Grants others hold on URIs `principal` manages.
  std::vector<std::pair<std::string, Grant>> shared_by(const Actor& a, const std::string& principal,
                                                       const std::string& under);
  // Self or admin may look at a principal's permissions; managers of a role or owners of a service account too.
  void require_view(const Actor& a, const std::string& principal) const;

  // --- roles
  PrincipalInfo create_role(const Actor& a, const std::string& name);
  void delete_role(const Actor& a, const std::string& name);
  struct RoleView {
    std::string name;
    bool holds = false;
    bool manages = false;
    bool builtin = false;
  };
  std::vector<RoleView> roles_for(const Actor& a);

  // --- projects
  ProjectInfo create_project(const Actor& a, const std::string& name);
  void delete_project(const Actor& a, const std::string& name);
  ProjectInfo get_project(const Actor& a, const std::string& name);
  // The caller's projects with their role; all (role may be empty) for an admin with all.
  std::vector<std::pair<ProjectInfo, std::string>> list_projects(const Actor& a, bool all);
  std::vector<Member> members(const Actor& a, const std::string& project);
  Member set_member(const Actor& a, const std::string& project, const std::string& user, const std::string& role);
  void remove_member(const Actor& a, const std::string& project, const std::string& user);
  // The user's role in the project ("" when none), from their direct grants.
  std::string project_role(const std::string& project, const std::string& user) const;

  // --- service accounts
  struct ServiceAccount {
    PrincipalInfo info;
    std::optional<Issued> token;
  };
  ServiceAccount create_service_account(const Actor& a, const std::string& name, std::optional<Duration> ttl);
  std::vector<PrincipalInfo> list_service_accounts(const Actor& a);
  void delete_service_account(const Actor& a, const std::string& name);
  // "ci" -> "{actor}/service-accounts/ci"; a full name is kept.
  std::string service_account_name(const Actor& a, const std::string& name) const;

  // Validation used by the API too.
  static void validate_user_name(const std::string& name, std::string_view what = "user");
  static void validate_role_name(const std::string& name);

 private:
  struct Touched;
  template <class F>
  auto mutate(F&& fn);
  void full_reload();
  void refresh(const std::vector<std::string>& principals, std::int64_t version);
  void create_project_rows(soci::session& s, Touched& t, const std::string& name, bool personal,
                           const std::string& creator);
  void remove_project_rows(soci::session& s, Touched& t, const std::string& name);
  void remove_principal_rows(soci::session& s, Touched& t, const std::string& name);
  std::vector<Grant> project_role_grants(const std::string& project, std::string_view role) const;
  Duration clamp_ttl(std::optional<Duration> ttl, Duration fallback) const;
  void check_password_policy(const std::string& password) const;
  bool can_manage(const Actor& a, std::string_view uri) const;
  void require_manage(const Actor& a, std::string_view uri) const;
  std::size_t admin_count(const State& st) const;
  void require_not_last_project_admin(const std::string& project, const std::string& user);

  db::Database& db_;
  Authorizer& authz_;
  ServiceOptions options_;
  std::mutex mutate_mu_;    // one change at a time in this process: snapshots apply in order
  std::string dummy_hash_;  // verified against for unknown users, so timing does not tell
};

}  // namespace neurod::auth

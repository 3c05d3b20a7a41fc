#include "modules/auth/service.hpp"

#include "core/ids.hpp"
#include "db/database.hpp"
#include "modules/auth/repo.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>
#include <set>

namespace neurod::auth {

namespace {

constexpr std::string_view kReservedNames[] = {"projects", "cluster", "service-accounts", "neurod", "system"};
constexpr std::size_t kMaxGrantsPerRequest = 1000;

bool is_project_role(std::string_view r) {
  return std::find(std::begin(kProjectRoles), std::end(kProjectRoles), r) != std::end(kProjectRoles);
}

std::string role_uri(std::string_view role) { return "role://" + std::string(role); }
std::string project_role_name(std::string_view project, std::string_view role) {
  return "projects/" + std::string(project) + "/" + std::string(role);
}

PrincipalInfo info_from(const repo::PrincipalRow& r) {
  return {r.name, r.kind, r.email, r.owner, r.builtin, !r.password_hash.empty(), r.created_at};
}
TokenInfo info_from(const repo::TokenRow& r) {
  return {r.id, r.principal, r.kind, r.name, r.created_at, r.expires_at, r.hash};
}

Error not_found(std::string_view what, const std::string& name) {
  return Error(errc::not_found, std::string(what) + " '" + name + "' not found")
      .with_code(std::string(what) + "_not_found");
}

}  // namespace

// Principals whose rows a change touched; the snapshot reloads just these.
struct Service::Touched {
  std::vector<std::string> principals;
  void add(const std::string& p) { principals.push_back(p); }
  void add(const std::vector<std::string>& ps) { principals.insert(principals.end(), ps.begin(), ps.end()); }
};

Service::Service(db::Database& db, Authorizer& authz, ServiceOptions options)
    : db_(db), authz_(authz), options_(std::move(options)) {
  dummy_hash_ = hash_password(random_hex(16), options_.password);
}

// Runs fn(session, touched) in one write transaction that also bumps the version, then
// publishes the new snapshot before returning, so the next request sees the change.
template <class F>
auto Service::mutate(F&& fn) {
  std::lock_guard lock(mutate_mu_);
  Touched touched;
  std::int64_t version = 0;
  if constexpr (std::is_void_v<decltype(fn(std::declval<soci::session&>(), touched))>) {
    db_.write([&](soci::session& s) {
      fn(s, touched);
      version = repo::bump_version(s);
    });
    refresh(touched.principals, version);
  } else {
    auto result = db_.write([&](soci::session& s) {
      auto r = fn(s, touched);
      version = repo::bump_version(s);
      return r;
    });
    refresh(touched.principals, version);
    return result;
  }
}

void Service::full_reload() {
  auto next = db_.read([&](soci::session& s) {
    auto st = std::make_shared<State>();
    st->version = repo::version(s);
    for (const auto& p : repo::principals(s)) st->principals.emplace(p.name, info_from(p));
    for (const auto& t : repo::all_tokens(s)) st->tokens.emplace(token_key(t.hash), info_from(t));
    GrantSet::Map map;
    std::unordered_map<std::string, std::vector<Grant>> grants;
    for (auto& g : repo::all_grants(s)) grants[g.principal].push_back(std::move(g.grant));
    for (auto& [p, list] : grants) map.emplace(p, std::make_shared<const GrantSet::Grants>(std::move(list)));
    st->grants = std::make_shared<GrantSet>(std::move(map));
    return st;
  });
  authz_.publish(std::move(next));
}

// Applies one committed change. When it is the very next version, only the touched
// principals are read back; otherwise another process changed something in between and
// everything is reloaded.
void Service::refresh(const std::vector<std::string>& principals, std::int64_t version) {
  auto cur = authz_.state();
  if (version != cur->version + 1) {
    full_reload();
    return;
  }
  std::set<std::string> names(principals.begin(), principals.end());
  auto next = std::make_shared<State>(*cur);
  next->version = version;
  db_.read([&](soci::session& s) {
    for (auto it = next->tokens.begin(); it != next->tokens.end();)
      it = names.contains(it->second.principal) ? next->tokens.erase(it) : std::next(it);
    auto grants = next->grants;
    for (const auto& name : names) {
      next->principals.erase(name);
      auto row = repo::principal(s, name);
      if (row) {
        next->principals.emplace(name, info_from(*row));
        for (const auto& t : repo::tokens_of(s, name)) next->tokens.emplace(token_key(t.hash), info_from(t));
      }
      auto list = row ? repo::grants_of(s, name) : std::vector<Grant>{};
      grants = grants->with(name, list.empty() ? nullptr : std::make_shared<const GrantSet::Grants>(std::move(list)));
    }
    next->grants = grants;
  });
  authz_.publish(std::move(next));
}

void Service::load() {
  db_.write([&](soci::session& s) {
    auto bound = repo::cluster(s);
    if (bound && *bound != options_.cluster)
      throw Error(errc::invalid_argument, "this database belongs to cluster '" + *bound + "' but cluster_name is '" +
                                              options_.cluster +
                                              "': resource URIs carry the cluster name, so it cannot change once "
                                              "there is data (set cluster_name back to '" +
                                              *bound + "')");
    if (!bound) repo::set_cluster(s, options_.cluster);
    if (!repo::principal(s, std::string(kAdminRole))) {
      repo::insert_principal(s, {std::string(kAdminRole), "role", "", "", "", true, repo::now_ms()});
      repo::bump_version(s);
    }
    // Admins have manage on every scheme's root; re-applied on every start so a scheme
    // added by a newer version is covered.
    auto have = repo::grants_of(s, std::string(kAdminRole));
    for (auto scheme : known_schemes()) {
      Grant g{std::string(scheme) + "://", Action::manage};
      if (std::find(have.begin(), have.end(), g) == have.end()) {
        repo::upsert_grant(s, std::string(kAdminRole), g, "neurod");
        repo::bump_version(s);
      }
    }
  });
  full_reload();
}

std::optional<Issued> Service::bootstrap(const std::string& name) {
  auto users = db_.read([&](soci::session& s) { return repo::count_principals(s, "user"); });
  if (users > 0) return std::nullopt;
  create_user(Actor::daemon(), name, "", "", true);
  return create_token(Actor::daemon(), name, "bootstrap", "initial admin token", Duration(0));
}

bool Service::sync() {
  auto v = db_.read([](soci::session& s) { return repo::version(s); });
  if (v == authz_.state()->version) return false;
  std::lock_guard lock(mutate_mu_);
  full_reload();
  return true;
}

std::size_t Service::purge_expired_tokens() {
  auto now = repo::now_ms();
  bool any = false;
  for (const auto& [key, t] : authz_.state()->tokens)
    if (t.expires_at && *t.expires_at <= now) any = true;
  if (!any) return 0;
  return mutate([&](soci::session& s, Touched& t) {
    auto who = repo::delete_expired_tokens(s, now);
    t.add(who);
    return who.size();
  });
}

// --- validation

void Service::validate_user_name(const std::string& name, std::string_view what) {
  static const std::regex re("[a-z][a-z0-9_-]{0,39}");
  if (!std::regex_match(name, re))
    throw Error(errc::invalid_argument,
                "invalid " + std::string(what) + " name '" + name +
                    "': use 1-40 lower-case letters, digits, '-' or '_', starting with a letter")
        .with_code("invalid_name");
  if (std::find(std::begin(kReservedNames), std::end(kReservedNames), name) != std::end(kReservedNames))
    throw Error(errc::invalid_argument, "'" + name + "' is reserved; pick another " + std::string(what) + " name")
        .with_code("invalid_name");
}

void Service::validate_role_name(const std::string& name) {
  static const std::regex re("[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+");
  if (name.size() > 200 || !std::regex_match(name, re))
    throw Error(errc::invalid_argument, "invalid role name '" + name +
                                            "': roles are paths like 'alice/roles/readers' (two or more segments of "
                                            "lower-case letters, digits, '.', '-' or '_', separated by '/')")
        .with_code("invalid_name");
}

void Service::check_password_policy(const std::string& password) const {
  if (password.size() < options_.password_min_length)
    throw Error(errc::invalid_argument, "the password is too short: use at least " +
                                            std::to_string(options_.password_min_length) + " characters")
        .with_code("weak_password");
  if (password.size() > 1024)
    throw Error(errc::invalid_argument, "the password is longer than 1024 characters").with_code("weak_password");
}

Duration Service::clamp_ttl(std::optional<Duration> ttl, Duration fallback) const {
  auto d = ttl.value_or(fallback);
  if (d.count() <= 0) throw Error(errc::invalid_argument, "expires_in must be a positive duration such as 30d");
  if (d > options_.max_token_ttl)
    throw Error(errc::invalid_argument, "expires_in is longer than the maximum of " +
                                            format_duration(options_.max_token_ttl) + " (modules.auth.max_token_ttl)");
  return d;
}

bool Service::can_manage(const Actor& a, std::string_view uri) const {
  return a.system || authz_.allowed(a.who, uri, Action::manage);
}

void Service::require_manage(const Actor& a, std::string_view uri) const {
  if (!a.system) authz_.require(a.who, uri, Action::manage);
}

std::size_t Service::admin_count(const State& st) const {
  std::size_t n = 0;
  auto uri = role_uri(kAdminRole);
  for (const auto& [name, p] : st.principals) {
    if (p.kind != "user") continue;
    for (const auto& g : st.grants->grants_of(name))
      if (g.uri == uri && g.action >= Action::read) ++n;
  }
  return n;
}

// --- projects (rows)

std::vector<Grant> Service::project_role_grants(const std::string& project, std::string_view role) const {
  std::vector<Grant> out;
  auto level = role == "reader" ? Action::read : role == "admin" ? Action::manage : Action::write;
  for (auto scheme : resource_schemes()) {
    if (scheme == "project") continue;
    if (role == "reader" && scheme == "secret") continue;
    out.push_back({authz_.resource_uri(scheme, project), level});
  }
  out.push_back({authz_.resource_uri("project", project), role == "admin" ? Action::manage : Action::read});
  if (role == "manager")
    for (auto r : {"reader", "writer", "manager"})
      out.push_back({role_uri(project_role_name(project, r)), Action::manage});
  if (role == "admin") out.push_back({role_uri("projects/" + project), Action::manage});
  return out;
}

void Service::create_project_rows(soci::session& s, Touched& t, const std::string& name, bool personal,
                                  const std::string& creator) {
  auto now = repo::now_ms();
  repo::insert_project(s, {name, personal, creator, now});
  for (auto role : kProjectRoles) {
    auto rname = project_role_name(name, role);
    repo::insert_principal(s, {rname, "role", "", "", name, true, now});
    for (const auto& g : project_role_grants(name, role)) repo::upsert_grant(s, rname, g, "neurod");
    t.add(rname);
  }
  if (!creator.empty()) {
    repo::upsert_grant(s, creator, {role_uri(project_role_name(name, "admin")), Action::read}, creator);
    t.add(creator);
  }
}

void Service::remove_project_rows(soci::session& s, Touched& t, const std::string& name) {
  std::vector<std::string> uris;
  for (auto scheme : resource_schemes()) uris.push_back(authz_.resource_uri(scheme, name));
  uris.push_back(role_uri("projects/" + name));
  for (const auto& u : uris) {
    t.add(repo::principals_with_grants_under(s, u));
    repo::delete_grants_under(s, u);
  }
  for (auto role : kProjectRoles) {
    auto rname = project_role_name(name, role);
    repo::delete_principal(s, rname);
    t.add(rname);
  }
  repo::delete_project(s, name);
}

void Service::remove_principal_rows(soci::session& s, Touched& t, const std::string& name) {
  for (const auto& h : repo::holders_of(s, role_uri(name))) t.add(h.principal);
  repo::delete_principal(s, name);
  t.add(name);
}

// --- users

PrincipalInfo Service::create_user(const Actor& a, const std::string& name, const std::string& password,
                                   const std::string& email, bool admin) {
  if (!a.system) authz_.require_admin(a.who);
  validate_user_name(name);
  if (!password.empty()) check_password_policy(password);
  if (email.size() > 254 || (!email.empty() && email.find('@') == std::string::npos))
    throw Error(errc::invalid_argument, "invalid email address '" + email + "'").with_code("invalid_email");
  // Hash outside the write lock: argon2id takes a while on purpose.
  std::string hash = password.empty() ? "" : hash_password(password, options_.password);
  return mutate([&](soci::session& s, Touched& t) {
    if (repo::principal(s, name))
      throw Error(errc::conflict, "user '" + name + "' already exists").with_code("user_exists");
    if (repo::project(s, name))
      throw Error(errc::conflict, "a project named '" + name + "' exists; users and projects share names")
          .with_code("name_taken");
    repo::PrincipalRow row{name, "user", email, hash, "", false, repo::now_ms()};
    repo::insert_principal(s, row);
    t.add(name);
    create_project_rows(s, t, name, true, name);
    if (admin) repo::upsert_grant(s, name, {role_uri(kAdminRole), Action::read}, a.who.name);
    return info_from(row);
  });
}

void Service::delete_user(const Actor& a, const std::string& name) {
  if (!a.system) authz_.require_admin(a.who);
  auto st = authz_.state();
  auto it = st->principals.find(name);
  if (it == st->principals.end() || it->second.kind != "user") throw not_found("user", name);
  bool is_admin = false;
  for (const auto& g : st->grants->grants_of(name))
    if (g.uri == role_uri(kAdminRole) && g.action >= Action::read) is_admin = true;
  if (is_admin && admin_count(*st) <= 1)
    throw Error(errc::conflict, "'" + name + "' is the last administrator; make another user an admin first")
        .with_code("last_admin");
  mutate([&](soci::session& s, Touched& t) {
    // What the user owns goes with them: service accounts, their roles, their project.
    for (const auto& p : repo::principals(s))
      if (!p.builtin && p.owner == name) remove_principal_rows(s, t, p.name);
    if (auto proj = repo::project(s, name); proj && proj->personal) remove_project_rows(s, t, name);
    remove_principal_rows(s, t, name);
  });
}

void Service::set_password(const Actor& a, const std::string& name, const std::string& password,
                           const std::optional<std::string>& current_password) {
  bool self = !a.system && a.who.name == name;
  if (!a.system && !self) authz_.require_admin(a.who);
  auto row = db_.read([&](soci::session& s) { return repo::principal(s, name); });
  if (!row || row->kind != "user") throw not_found("user", name);
  if (self && !authz_.is_admin(a.who)) {
    if (!current_password)
      throw Error(errc::invalid_argument, "changing your own password needs current_password")
          .with_code("current_password_required");
    if (!verify_password(*current_password, row->password_hash))
      throw Error(errc::forbidden, "the current password is wrong").with_code("invalid_credentials");
  }
  check_password_policy(password);
  auto hash = hash_password(password, options_.password);
  mutate([&](soci::session& s, Touched& t) {
    repo::set_password(s, name, hash);
    // Sessions opened with the old password end; the caller's own stays.
    for (const auto& tok : repo::tokens_of(s, name))
      if (tok.kind == "session" && tok.id != a.who.credential) repo::delete_token(s, tok.id);
    t.add(name);
  });
}

std::vector<PrincipalInfo> Service::list_principals(const Actor& a, const std::string& kind) {
  if (!a.system) authz_.require_admin(a.who);
  if (!kind.empty() && kind != "user" && kind != "service" && kind != "role")
    throw Error(errc::bad_request, "kind must be user, service or role, not '" + kind + "'");
  std::vector<PrincipalInfo> out;
  auto st = authz_.state();
  for (const auto& [name, p] : st->principals)
    if (kind.empty() || p.kind == kind) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  return out;
}

PrincipalInfo Service::get_principal(const Actor& a, const std::string& name) {
  require_view(a, name);
  auto st = authz_.state();
  auto it = st->principals.find(name);
  if (it == st->principals.end()) throw not_found("principal", name);
  return it->second;
}

void Service::require_view(const Actor& a, const std::string& principal) const {
  if (a.system || a.who.name == principal || authz_.is_admin(a.who)) return;
  auto st = authz_.state();
  auto it = st->principals.find(principal);
  if (it != st->principals.end()) {
    if (it->second.kind == "service" && it->second.owner == a.who.name) return;
    if (it->second.kind == "role" && authz_.allowed(a.who, role_uri(principal), Action::manage)) return;
  }
  // Do not tell whether a principal one may not see exists.
  throw Error(errc::forbidden,
              "you may only look at your own permissions, those of roles you manage and of your "
              "service accounts")
      .with_code("not_yours");
}

// --- credentials

Issued Service::login(const std::string& user, const std::string& password, std::optional<Duration> ttl) {
  auto row = db_.read([&](soci::session& s) { return repo::principal(s, user); });
  bool ok = false;
  if (row && row->kind == "user" && !row->password_hash.empty())
    ok = verify_password(password, row->password_hash);
  else
    verify_password(password, dummy_hash_);  // the same work for an unknown user
  if (!ok) throw Error(errc::unauthenticated, "wrong user name or password").with_code("invalid_credentials");
  if (ttl && *ttl > options_.session_ttl) ttl = options_.session_ttl;
  return create_token(Actor::daemon(), user, "session", "login", ttl.value_or(options_.session_ttl));
}

Issued Service::create_token(const Actor& a, const std::string& principal, const std::string& kind,
                             const std::string& name, std::optional<Duration> ttl) {
  if (!a.system) {
    bool own = a.who.name == principal;
    auto st = authz_.state();
    auto it = st->principals.find(principal);
    bool owner = it != st->principals.end() && it->second.kind == "service" && it->second.owner == a.who.name;
    if (!own && !owner) authz_.require_admin(a.who);
    if (kind != "api" && kind != "service") throw Error(errc::invalid_argument, "tokens made by users are of kind api");
  }
  if (name.size() > 100) throw Error(errc::invalid_argument, "the token name is longer than 100 characters");
  std::optional<std::int64_t> expires;
  if (!(a.system && ttl && ttl->count() == 0)) {  // the daemon may mint a token that never expires (bootstrap)
    auto d = clamp_ttl(ttl, kind == "session" ? options_.session_ttl : options_.default_token_ttl);
    expires = repo::now_ms() + d.count();
  }
  Issued out;
  out.token = new_token();
  repo::TokenRow row{new_id("tok"), token_hash(out.token), principal, kind, name.empty() ? kind : name, repo::now_ms(),
                     expires};
  mutate([&](soci::session& s, Touched& t) {
    auto p = repo::principal(s, principal);
    if (!p) throw not_found("principal", principal);
    if (p->kind == "role") throw Error(errc::invalid_argument, "roles cannot have tokens; create a service account");
    repo::insert_token(s, row);
    t.add(principal);
  });
  out.info = info_from(row);
  return out;
}

std::vector<TokenInfo> Service::list_tokens(const Actor& a, const std::string& principal) {
  require_view(a, principal);
  std::vector<TokenInfo> out;
  for (const auto& [key, t] : authz_.state()->tokens)
    if (t.principal == principal) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    return x.created_at < y.created_at || (x.created_at == y.created_at && x.id < y.id);
  });
  return out;
}

std::optional<TokenInfo> Service::token_info(const std::string& id) const {
  for (const auto& [key, t] : authz_.state()->tokens)
    if (t.id == id) return t;
  return std::nullopt;
}

void Service::revoke_token(const Actor& a, const std::string& id) {
  auto t = token_info(id);
  // Someone else's token is "not found" to a non-admin: ids are not secrets, but there is
  // no reason to confirm them.
  if (!t) throw not_found("token", id);
  if (!a.system) {
    try {
      require_view(a, t->principal);
    } catch (const Error&) {
      throw not_found("token", id);
    }
  }
  mutate([&](soci::session& s, Touched& touched) {
    if (!repo::delete_token(s, id)) throw not_found("token", id);
    touched.add(t->principal);
  });
}

// --- grants

std::vector<Grant> Service::grant(const Actor& a, const std::string& principal, const std::vector<Grant>& grants) {
  if (grants.empty()) throw Error(errc::invalid_argument, "nothing to grant: pass one or more {uri, action}");
  if (grants.size() > kMaxGrantsPerRequest)
    throw Error(errc::invalid_argument, "at most " + std::to_string(kMaxGrantsPerRequest) + " grants per request");
  if (!a.system) {
    std::vector<Requirement> need;
    for (const auto& g : grants) need.push_back({Permission{g.uri, Action::manage}});
    authz_.require(a.who, need);
  }
  return mutate([&](soci::session& s, Touched& t) {
    if (!repo::principal(s, principal)) throw not_found("principal", principal);
    for (const auto& g : grants) repo::upsert_grant(s, principal, g, a.who.name);
    t.add(principal);
    return repo::grants_of(s, principal);
  });
}

void Service::revoke(const Actor& a, const std::string& principal, const std::string& uri) {
  bool self = !a.system && a.who.name == principal;
  if (!self) require_manage(a, uri);
  auto st = authz_.state();
  if (uri == role_uri(kAdminRole) && admin_count(*st) <= 1) {
    bool holder = false;
    for (const auto& g : st->grants->grants_of(principal))
      if (g.uri == uri && g.action >= Action::read) holder = true;
    if (holder)
      throw Error(errc::conflict, "'" + principal + "' is the last administrator; make another user an admin first")
          .with_code("last_admin");
  }
  // Revoking a project's admin role is leaving it as admin: not for the last one.
  constexpr std::string_view kProjectsPrefix = "role://projects/";
  if (uri.starts_with(kProjectsPrefix) && uri.ends_with("/admin")) {
    auto project = uri.substr(kProjectsPrefix.size(), uri.size() - kProjectsPrefix.size() - 6);
    if (project.find('/') == std::string::npos && project_role(project, principal) == "admin")
      require_not_last_project_admin(project, principal);
  }
  mutate([&](soci::session& s, Touched& t) {
    if (!repo::principal(s, principal)) throw not_found("principal", principal);
    if (!repo::delete_grant(s, principal, uri))
      throw Error(errc::bad_request, "operation has no effect: '" + principal + "' has no grant on " + uri)
          .with_code("no_effect");
    t.add(principal);
  });
}

std::vector<Service::GrantView> Service::permissions(const Actor& a, const std::string& principal, bool expand,
                                                     const std::string& under) {
  require_view(a, principal);
  auto st = authz_.state();
  if (!st->principals.contains(principal)) throw not_found("principal", principal);
  std::optional<Uri> prefix;
  if (!under.empty()) prefix = Uri::parse(under);
  std::vector<GrantView> out;
  auto add = [&](const std::string& from, const std::string& via) {
    for (const auto& g : st->grants->grants_of(from))
      if (!prefix || prefix->covers(Uri::parse(g.uri))) out.push_back({g, via});
  };
  add(principal, "");
  if (expand)
    for (const auto& r : st->grants->roles_of(principal)) add(r, r);
  return out;
}

std::vector<std::pair<std::string, Grant>> Service::shared_by(const Actor& a, const std::string& principal,
                                                              const std::string& under) {
  require_view(a, principal);
  auto st = authz_.state();
  if (!st->principals.contains(principal)) throw not_found("principal", principal);
  auto tree = st->grants->tree_of(principal);
  Uri root = under.empty() ? Uri{} : Uri::parse(under);
  std::vector<std::pair<std::string, Grant>> out;
  auto collect = [&](const Uri& u) {
    for (auto& [who, g] : st->grants->grants_under(u, principal)) {
      if (st->principals.count(who) && st->principals.at(who).builtin) continue;  // project roles' own grants
      if (tree->allows(g.uri, Action::manage)) out.emplace_back(who, g);
    }
  };
  if (!under.empty()) {
    collect(root);
  } else {
    for (auto scheme : known_schemes()) collect(Uri::parse(std::string(scheme) + ":"));
  }
  return out;
}

// --- roles

PrincipalInfo Service::create_role(const Actor& a, const std::string& name) {
  validate_role_name(name);
  bool admin = a.system || authz_.is_admin(a.who);
  if (name.starts_with("projects/") || name.starts_with("cluster/") ||
      name.find("/service-accounts/") != std::string::npos)
    throw Error(errc::invalid_argument, "role names under projects/, cluster/ and */service-accounts/ are neurod's own")
        .with_code("invalid_name");
  if (!admin && !name.starts_with(a.who.name + "/roles/"))
    throw Error(errc::forbidden, "your roles are named '" + a.who.name + "/roles/NAME'").with_code("not_yours");
  return mutate([&](soci::session& s, Touched& t) {
    if (repo::principal(s, name))
      throw Error(errc::conflict, "role '" + name + "' already exists").with_code("role_exists");
    repo::PrincipalRow row{name, "role", "", "", a.system ? "" : a.who.name, false, repo::now_ms()};
    repo::insert_principal(s, row);
    t.add(name);
    if (!a.system) {
      repo::upsert_grant(s, a.who.name, {role_uri(name), Action::manage}, a.who.name);
      t.add(a.who.name);
    }
    return info_from(row);
  });
}

void Service::delete_role(const Actor& a, const std::string& name) {
  auto st = authz_.state();
  auto it = st->principals.find(name);
  // Only its managers and holders learn that it exists.
  auto known_to = [&] {
    if (can_manage(a, role_uri(name))) return true;
    auto held = st->grants->roles_of(a.who.name);
    return std::find(held.begin(), held.end(), name) != held.end();
  };
  if (it == st->principals.end() || it->second.kind != "role" || !known_to()) throw not_found("role", name);
  if (it->second.builtin)
    throw Error(errc::invalid_argument, "'" + name + "' is a built-in role; it goes with its project")
        .with_code("builtin_role");
  require_manage(a, role_uri(name));
  mutate([&](soci::session& s, Touched& t) { remove_principal_rows(s, t, name); });
}

std::vector<Service::RoleView> Service::roles_for(const Actor& a) {
  auto st = authz_.state();
  bool admin = a.system || authz_.is_admin(a.who);
  auto held = st->grants->roles_of(a.who.name);
  std::set<std::string> holds(held.begin(), held.end());
  std::vector<RoleView> out;
  for (const auto& [name, p] : st->principals) {
    if (p.kind != "role") continue;
    bool manages = can_manage(a, role_uri(name));
    bool h = holds.contains(name);
    if (!admin && !manages && !h) continue;
    out.push_back({name, h, manages, p.builtin});
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  return out;
}

// --- projects

ProjectInfo Service::create_project(const Actor& a, const std::string& name) {
  validate_user_name(name, "project");
  if (!a.system && !options_.users_create_projects) authz_.require_admin(a.who);
  if (!a.system && a.who.kind != "user")
    throw Error(errc::forbidden, "service accounts cannot create projects").with_code("not_a_user");
  return mutate([&](soci::session& s, Touched& t) {
    if (repo::project(s, name) || repo::principal(s, name))
      throw Error(errc::conflict, "the name '" + name + "' is taken by a user or project").with_code("project_exists");
    create_project_rows(s, t, name, false, a.system ? "" : a.who.name);
    auto row = repo::project(s, name);
    return ProjectInfo{row->name, row->personal, row->created_by, row->created_at};
  });
}

void Service::delete_project(const Actor& a, const std::string& name) {
  auto p = db_.read([&](soci::session& s) { return repo::project(s, name); });
  if (!p) throw not_found("project", name);
  require_manage(a, authz_.resource_uri("project", name));
  if (p->personal)
    throw Error(errc::invalid_argument, "'" + name + "' is a personal project; it is removed with its user")
        .with_code("personal_project");
  mutate([&](soci::session& s, Touched& t) { remove_project_rows(s, t, name); });
}

void Service::require_not_last_project_admin(const std::string& project, const std::string& user) {
  std::size_t admins = 0;
  for (const auto& m : members(Actor::daemon(), project)) admins += m.role == "admin";
  if (admins <= 1)
    throw Error(errc::conflict, "'" + user + "' is the project's last admin; make someone else admin first")
        .with_code("last_admin");
}

std::string Service::project_role(const std::string& project, const std::string& user) const {
  auto st = authz_.state();
  std::string best;
  int best_rank = -1;
  for (const auto& g : st->grants->grants_of(user)) {
    if (g.action < Action::read) continue;
    for (int i = 0; i < 4; ++i)
      if (g.uri == role_uri(project_role_name(project, kProjectRoles[i])) && i > best_rank) {
        best_rank = i;
        best = kProjectRoles[i];
      }
  }
  return best;
}

ProjectInfo Service::get_project(const Actor& a, const std::string& name) {
  auto p = db_.read([&](soci::session& s) { return repo::project(s, name); });
  if (!p || (!a.system && !authz_.allowed(a.who, authz_.resource_uri("project", name), Action::read)))
    throw not_found("project", name);  // non-members do not learn which projects exist
  return {p->name, p->personal, p->created_by, p->created_at};
}

std::vector<std::pair<ProjectInfo, std::string>> Service::list_projects(const Actor& a, bool all) {
  if (all && !a.system) authz_.require_admin(a.who);
  auto rows = db_.read([&](soci::session& s) { return repo::projects(s); });
  std::vector<std::pair<ProjectInfo, std::string>> out;
  for (const auto& p : rows) {
    auto role = a.system ? std::string() : project_role(p.name, a.who.name);
    if (!all && role.empty()) continue;
    out.push_back({{p.name, p.personal, p.created_by, p.created_at}, role});
  }
  return out;
}

std::vector<Member> Service::members(const Actor& a, const std::string& project) {
  get_project(a, project);
  auto st = authz_.state();
  std::vector<Member> out;
  for (const auto& [name, p] : st->principals) {
    if (p.kind == "role") continue;
    auto role = project_role(project, name);
    if (!role.empty()) out.push_back({name, role});
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.user < y.user; });
  return out;
}

Member Service::set_member(const Actor& a, const std::string& project, const std::string& user,
                           const std::string& role) {
  if (!is_project_role(role))
    throw Error(errc::invalid_argument, "role must be reader, writer, manager or admin, not '" + role + "'")
        .with_code("invalid_role");
  get_project(a, project);
  auto st = authz_.state();
  auto it = st->principals.find(user);
  if (it == st->principals.end() || it->second.kind == "role") throw not_found("user", user);
  auto old = project_role(project, user);
  std::vector<Requirement> need{{Permission{role_uri(project_role_name(project, role)), Action::manage}}};
  if (!old.empty() && old != role)
    need.push_back({Permission{role_uri(project_role_name(project, old)), Action::manage}});
  if (!a.system) authz_.require(a.who, need);
  if (old == "admin" && role != "admin") {
    require_not_last_project_admin(project, user);
  }
  mutate([&](soci::session& s, Touched& t) {
    for (auto r : kProjectRoles) repo::delete_grant(s, user, role_uri(project_role_name(project, r)));
    repo::upsert_grant(s, user, {role_uri(project_role_name(project, role)), Action::read}, a.who.name);
    t.add(user);
  });
  return {user, role};
}

void Service::remove_member(const Actor& a, const std::string& project, const std::string& user) {
  get_project(a, project);
  auto old = project_role(project, user);
  if (old.empty())
    throw Error(errc::not_found, "'" + user + "' is not a member of project '" + project + "'")
        .with_code("member_not_found");
  if (!a.system && a.who.name != user) require_manage(a, role_uri(project_role_name(project, old)));
  if (old == "admin") {
    require_not_last_project_admin(project, user);
  }
  mutate([&](soci::session& s, Touched& t) {
    for (auto r : kProjectRoles) repo::delete_grant(s, user, role_uri(project_role_name(project, r)));
    t.add(user);
  });
}

// --- service accounts

std::string Service::service_account_name(const Actor& a, const std::string& name) const {
  if (name.find('/') != std::string::npos) return name;
  return a.who.name + "/service-accounts/" + name;
}

Service::ServiceAccount Service::create_service_account(const Actor& a, const std::string& name,
                                                        std::optional<Duration> ttl) {
  if (!a.system && a.who.kind != "user")
    throw Error(errc::forbidden, "only users create service accounts").with_code("not_a_user");
  validate_user_name(name, "service account");
  auto full = a.who.name + "/service-accounts/" + name;
  auto d = clamp_ttl(ttl, options_.default_token_ttl);
  ServiceAccount out;
  out.info = mutate([&](soci::session& s, Touched& t) {
    if (repo::principal(s, full))
      throw Error(errc::conflict, "service account '" + full + "' already exists").with_code("service_account_exists");
    repo::PrincipalRow row{full, "service", "", "", a.who.name, false, repo::now_ms()};
    repo::insert_principal(s, row);
    t.add(full);
    return info_from(row);
  });
  out.token = create_token(Actor::daemon(), full, "service", "created with the account", d);
  return out;
}

std::vector<PrincipalInfo> Service::list_service_accounts(const Actor& a) {
  bool admin = a.system || authz_.is_admin(a.who);
  std::vector<PrincipalInfo> out;
  for (const auto& [name, p] : authz_.state()->principals)
    if (p.kind == "service" && (admin || p.owner == a.who.name)) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  return out;
}

void Service::delete_service_account(const Actor& a, const std::string& name) {
  auto full = service_account_name(a, name);
  auto st = authz_.state();
  auto it = st->principals.find(full);
  if (it == st->principals.end() || it->second.kind != "service") throw not_found("service_account", full);
  if (!a.system && it->second.owner != a.who.name && !authz_.is_admin(a.who)) throw not_found("service_account", full);
  mutate([&](soci::session& s, Touched& t) { remove_principal_rows(s, t, full); });
}

}  // namespace neurod::auth

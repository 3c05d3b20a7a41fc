// The auth module's HTTP API (README.md "HTTP API"): JSON in, JSON out, every decision
// made by Service. Handlers stay thin: parse, call, shape the answer.
#include "modules/auth/module.hpp"

#include "modules/auth/repo.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

namespace neurod::auth {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr std::uint64_t kSmallBody = 64 * 1024;
constexpr std::uint64_t kGrantsBody = 1024 * 1024;

// Principal names with '/' travel as ':' in a path segment (reference §3.3).
std::string principal_param(const Request& req, std::string_view name = "name") {
  auto v = req.param(name);
  std::replace(v.begin(), v.end(), ':', '/');
  // A role may be named by its URI, as users write it: role://alice/roles/team.
  if (v.starts_with("role///")) v.erase(0, 7);
  if (v.empty() || v.size() > 256) throw Error(errc::bad_request, "invalid principal name in the path");
  return v;
}

json body_object(const Request& req) {
  auto j = req.json();
  if (!j.is_object()) throw Error(errc::bad_request, "the request body must be a JSON object");
  return j;
}

std::string string_field(const json& j, std::string_view key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(errc::bad_request, "'" + std::string(key) + "' is required").with_code("missing_field");
    return {};
  }
  if (!it->is_string()) throw Error(errc::bad_request, "'" + std::string(key) + "' must be a string");
  return it->get<std::string>();
}

bool bool_field(const json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(errc::bad_request, "'" + std::string(key) + "' must be true or false");
  return it->get<bool>();
}

std::optional<Duration> duration_field(const json& j, std::string_view key) {
  auto text = string_field(j, key, false);
  if (text.empty()) return std::nullopt;
  auto d = parse_duration(text);
  if (!d)
    throw Error(errc::invalid_argument, "'" + std::string(key) + "' is not a duration: '" + text + "' (try 30d, 12h)");
  return d;
}

bool query_bool(const Request& req, std::string_view key) {
  auto v = req.query_param(key);
  if (!v) return false;
  if (*v == "true" || *v == "1" || v->empty()) return true;
  if (*v == "false" || *v == "0") return false;
  throw Error(errc::bad_request, "query parameter '" + std::string(key) + "' must be true or false");
}

json to_json(const PrincipalInfo& p, const Authorizer& authz) {
  http::Principal who{p.name, p.kind, {}};
  json j{{"name", p.name}, {"kind", p.kind}, {"created_at", p.created_at}};
  if (!p.email.empty()) j["email"] = p.email;
  if (!p.owner.empty()) j["owner"] = p.owner;
  if (p.kind == "user") {
    j["admin"] = authz.is_admin(who);
    j["has_password"] = p.has_password;
  }
  if (p.builtin) j["builtin"] = true;
  return j;
}

json to_json(const TokenInfo& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"kind", t.kind},
          {"principal", t.principal},
          {"created_at", t.created_at},
          {"expires_at", t.expires_at ? json(*t.expires_at) : json()}};
}

json issued_json(const Issued& i) {
  auto j = to_json(i.info);
  j["token"] = i.token;
  return j;
}

json grants_json(const std::vector<Grant>& grants) {
  auto out = json::array();
  for (const auto& g : grants) out.push_back({{"uri", g.uri}, {"action", to_string(g.action)}});
  return out;
}

json project_json(const ProjectInfo& p) {
  return {{"name", p.name}, {"personal", p.personal}, {"created_by", p.created_by}, {"created_at", p.created_at}};
}

json members_json(const std::vector<Member>& ms) {
  auto out = json::array();
  for (const auto& m : ms) out.push_back({{"user", m.user}, {"role", m.role}});
  return out;
}

// One {uri, action} from a request, the URI resolved for the caller.
Permission permission_from(const json& j, const Authorizer& authz, const http::Principal& who) {
  if (!j.is_object()) throw Error(errc::bad_request, "each entry must be an object {\"uri\": …, \"action\": …}");
  auto uri = authz.parse_uri(string_field(j, "uri", true), who);
  return {uri.str(), action_from(string_field(j, "action", true))};
}

// The console's two cookies: the session (HttpOnly: scripts never see the token) and its
// CSRF token (readable by the console's own scripts, which echo it as X-CSRF-Token).
// Empty values with Max-Age=0 clear both.
Response cookie_response(Response r, std::string_view session, std::string_view csrf, std::int64_t max_age_s,
                         bool secure) {
  auto attrs = "; Path=/; SameSite=Strict; Max-Age=" + std::to_string(max_age_s) + (secure ? "; Secure" : "");
  r.headers.add("Set-Cookie", "neurod_session=" + std::string(session) + "; HttpOnly" + attrs);
  r.headers.add("Set-Cookie", "neurod_csrf=" + std::string(csrf) + attrs);
  return r;
}

}  // namespace

void Module::add_routes(http::Router& r) {
  using http::BodyKind;
  const http::RouteOptions get{.body = BodyKind::none};
  const http::RouteOptions del{.body = BodyKind::none};
  const http::RouteOptions small{.body = BodyKind::memory, .body_limit = kSmallBody};
  auto opts = [](http::RouteOptions o, std::string summary) {
    o.summary = std::move(summary);
    return o;
  };
  auto& svc = *service_;
  auto& authz = *authz_;

  // --- session
  auto login_opts = opts(small, "Log in with a user name and password; returns a session token or sets the cookie");
  login_opts.public_route = true;
  r.post(
      "/api/v1/auth/login",
      [this, &svc](Request& req) {
        auto j = body_object(req);
        auto user = string_field(j, "user", true);
        auto password = string_field(j, "password", true);
        bool cookie = bool_field(j, "cookie");
        auto ttl = duration_field(j, "expires_in");
        req.resource = user.substr(0, 64);
        if (auto wait = throttle_->blocked(user, req.remote_address)) {
          auto secs = (wait->count() + 999) / 1000;
          Error e = Error(errc::too_many_requests, "too many failed logins: try again in " + std::to_string(secs) + "s")
                        .with_code("login_throttled");
          auto res = Response::json(error_body(e, req.request_id), 429);
          res.headers.set("Retry-After", std::to_string(secs));
          return res;
        }
        Issued issued;
        try {
          issued = svc.login(user, password, ttl);
        } catch (const Error& e) {
          if (e.code() == errc::unauthenticated) throttle_->failed(user, req.remote_address);
          throw;
        }
        throttle_->succeeded(user);
        json out{{"user", user},
                 {"token_id", issued.info.id},
                 {"expires_at", issued.info.expires_at ? json(*issued.info.expires_at) : json()}};
        if (!cookie) {
          out["token"] = issued.token;
          return Response::json(out);
        }
        auto max_age = issued.info.expires_at ? (*issued.info.expires_at - repo::now_ms()) / 1000 : 0;
        auto csrf = csrf_token(issued.token);
        out["csrf_token"] = csrf;
        return cookie_response(Response::json(out), issued.token, csrf, max_age, secure_cookie_);
      },
      login_opts);

  r.post(
      "/api/v1/auth/logout",
      [this, &svc](Request& req) {
        // Sessions end; API and service tokens are revoked with DELETE /tokens/{id} instead.
        if (auto t = svc.token_info(req.principal.credential); t && t->kind == "session")
          svc.revoke_token(Actor::daemon(), t->id);
        return cookie_response(Response::no_content(), "", "", 0, secure_cookie_);
      },
      opts(http::RouteOptions{.body = BodyKind::memory, .body_limit = 1024},
           "End this session (revokes a session token, clears the cookie)"));

  r.get(
      "/api/v1/auth/whoami",
      [this, &svc, &authz](Request& req) {
        const auto& who = req.principal;
        auto projects = json::array();
        for (const auto& [p, role] : svc.list_projects(Actor::of(who), false))
          projects.push_back({{"name", p.name}, {"role", role}});
        json out{{"name", who.name},           {"kind", who.kind},     {"admin", authz.is_admin(who)},
                 {"cluster", authz.cluster()}, {"projects", projects}, {"roles", authz.held_roles(who.name)}};
        if (auto t = svc.token_info(who.credential)) out["token"] = to_json(*t);
        // A reloaded console page has the cookies but not the token it must echo.
        if (auto session = cookie_session(req)) {
          out["csrf_token"] = csrf_token(*session);
          sodium_memzero(session->data(), session->size());
        }
        return Response::json(out);
      },
      opts(get, "Who the caller is: name, projects, roles, token (and csrf_token with the session cookie)"));

  // --- users
  r.get(
      "/api/v1/users",
      [&svc, &authz](Request& req) {
        auto out = json::array();
        for (const auto& p : svc.list_principals(Actor::of(req.principal), req.query_param("kind").value_or("")))
          out.push_back(to_json(p, authz));
        return Response::json(out);
      },
      opts(get, "List users, service accounts and roles (admin)"));

  r.post(
      "/api/v1/users",
      [&svc, &authz](Request& req) {
        auto j = body_object(req);
        auto name = string_field(j, "name", true);
        req.resource = name;
        auto p = svc.create_user(Actor::of(req.principal), name, string_field(j, "password", false),
                                 string_field(j, "email", false), bool_field(j, "admin"));
        return Response::json(to_json(p, authz), 201);
      },
      opts(small, "Create a user with a personal project (admin)"));

  r.get(
      "/api/v1/users/{name}",
      [&svc, &authz](Request& req) {
        return Response::json(to_json(svc.get_principal(Actor::of(req.principal), principal_param(req)), authz));
      },
      opts(get, "A user, service account or role (self, admin)"));

  r.del(
      "/api/v1/users/{name}",
      [&svc](Request& req) {
        auto name = principal_param(req);
        req.resource = name;
        svc.delete_user(Actor::of(req.principal), name);
        return Response::no_content();
      },
      opts(del, "Delete a user with their tokens, grants and personal project (admin)"));

  r.put(
      "/api/v1/users/{name}/password",
      [&svc](Request& req) {
        auto name = principal_param(req);
        req.resource = name;
        auto j = body_object(req);
        std::optional<std::string> current;
        if (j.contains("current_password")) current = string_field(j, "current_password", true);
        svc.set_password(Actor::of(req.principal), name, string_field(j, "password", true), current);
        return Response::no_content();
      },
      opts(small, "Set a password (self with current_password, admin)"));

  // --- permissions
  r.get(
      "/api/v1/users/{name}/permissions",
      [&svc, &authz](Request& req) {
        auto text = req.query_param("uri").value_or("");
        std::string under = text.empty() ? "" : authz.parse_uri(text, req.principal).str();
        auto out = json::array();
        for (const auto& v : svc.permissions(Actor::of(req.principal), principal_param(req),
                                             query_bool(req, "expand_roles"), under)) {
          json g{{"uri", v.grant.uri}, {"action", to_string(v.grant.action)}};
          if (!v.via.empty()) g["via"] = v.via;
          out.push_back(g);
        }
        return Response::json(out);
      },
      opts(get, "A principal's grants (?uri= prefix, ?expand_roles=true)"));

  r.post(
      "/api/v1/users/{name}/permissions",
      [&svc, &authz](Request& req) {
        auto name = principal_param(req);
        auto j = req.json();
        if (j.is_object()) j = json::array({j});
        if (!j.is_array()) throw Error(errc::bad_request, "the body must be [{\"uri\": …, \"action\": …}, …]");
        std::vector<Grant> grants;
        for (const auto& e : j) {
          auto p = permission_from(e, authz, req.principal);
          grants.push_back({p.uri, p.action});
        }
        req.resource = grants.size() == 1 ? grants.front().uri : name;
        return Response::json(grants_json(svc.grant(Actor::of(req.principal), name, grants)), 201);
      },
      opts(http::RouteOptions{.body = BodyKind::memory, .body_limit = kGrantsBody},
           "Grant permissions (needs manage on each URI)"));

  r.del(
      "/api/v1/users/{name}/permissions",
      [&svc, &authz](Request& req) {
        auto name = principal_param(req);
        auto text = req.query_param("uri");
        if (!text || text->empty())
          throw Error(errc::bad_request, "pass the permission to revoke as ?uri=").with_code("missing_field");
        auto uri = authz.parse_uri(*text, req.principal).str();
        req.resource = uri;
        svc.revoke(Actor::of(req.principal), name, uri);
        return Response::no_content();
      },
      opts(del, "Revoke a grant (?uri=; needs manage on it, or your own)"));

  r.post(
      "/api/v1/users/{name}/permissions/check",
      [&svc, &authz](Request& req) {
        auto name = principal_param(req);
        svc.require_view(Actor::of(req.principal), name);
        auto j = req.json();
        if (j.is_object()) j = json::array({j});
        if (!j.is_array() || j.empty() || j.size() > 1000)
          throw Error(errc::bad_request,
                      "the body must be a list of 1 to 1000 {uri, action} or lists of them (any-of)");
        std::vector<Requirement> need;
        for (const auto& e : j) {
          Requirement alt;
          if (e.is_array()) {
            if (e.empty()) throw Error(errc::bad_request, "an any-of list cannot be empty");
            for (const auto& x : e) alt.push_back(permission_from(x, authz, req.principal));
          } else {
            alt.push_back(permission_from(e, authz, req.principal));
          }
          need.push_back(std::move(alt));
        }
        auto miss = authz.tree_of(name)->missing(need);
        if (miss.empty()) return Response::json({{"missing", json::array()}});
        Error e(errc::forbidden, "'" + name + "' lacks " + std::to_string(miss.size()) + " of the permissions",
                {{"missing", to_json(std::span<const Requirement>(miss))}});
        return Response::json(error_body(e, req.request_id), 403);
      },
      opts(http::RouteOptions{.body = BodyKind::memory, .body_limit = kGrantsBody, .read_only = true},
           "Check permissions; 403 with the missing ones"));

  r.get(
      "/api/v1/users/{name}/permissions/tree",
      [&svc, &authz](Request& req) {
        auto name = principal_param(req);
        svc.require_view(Actor::of(req.principal), name);
        auto text = req.query_param("uri").value_or("");
        int depth = -1;
        if (auto d = req.query_param("depth")) {
          try {
            depth = std::stoi(*d);
          } catch (const std::exception&) {
            throw Error(errc::bad_request, "depth must be a whole number");
          }
        }
        if (text.empty()) {
          auto out = json::object();
          auto tree = authz.tree_of(name);
          for (auto scheme : known_schemes()) {
            auto sub = tree->subtree(Uri::parse(std::string(scheme) + ":"), depth);
            if (!sub.is_null() && !sub.empty()) out[std::string(scheme)] = sub;
          }
          return Response::json(out);
        }
        return Response::json(authz.tree_of(name)->subtree(authz.parse_uri(text, req.principal), depth));
      },
      opts(get, "The effective permission tree under ?uri= (?depth=)"));

  r.get(
      "/api/v1/users/{name}/permissions/shared",
      [&svc, &authz](Request& req) {
        auto text = req.query_param("uri").value_or("");
        std::string under = text.empty() ? "" : authz.parse_uri(text, req.principal).str();
        auto out = json::array();
        for (const auto& [who, g] : svc.shared_by(Actor::of(req.principal), principal_param(req), under))
          out.push_back({{"user", who}, {"uri", g.uri}, {"action", to_string(g.action)}});
        return Response::json(out);
      },
      opts(get, "Grants others hold on what this principal manages"));

  // --- roles
  r.get(
      "/api/v1/roles",
      [&svc](Request& req) {
        auto out = json::array();
        for (const auto& v : svc.roles_for(Actor::of(req.principal)))
          out.push_back({{"name", v.name}, {"holds", v.holds}, {"manages", v.manages}, {"builtin", v.builtin}});
        return Response::json(out);
      },
      opts(get, "Roles you hold or manage (admin: all)"));

  r.post(
      "/api/v1/roles",
      [&svc, &authz](Request& req) {
        auto name = string_field(body_object(req), "name", true);
        req.resource = "role://" + name;
        return Response::json(to_json(svc.create_role(Actor::of(req.principal), name), authz), 201);
      },
      opts(small, "Create a role ({you}/roles/NAME)"));

  r.del(
      "/api/v1/roles/{name}",
      [&svc](Request& req) {
        auto name = principal_param(req);
        req.resource = "role://" + name;
        svc.delete_role(Actor::of(req.principal), name);
        return Response::no_content();
      },
      opts(del, "Delete a role (needs manage on it)"));

  // --- projects
  r.get(
      "/api/v1/projects",
      [&svc](Request& req) {
        auto out = json::array();
        for (const auto& [p, role] : svc.list_projects(Actor::of(req.principal), query_bool(req, "all"))) {
          auto j = project_json(p);
          j["role"] = role.empty() ? json() : json(role);
          out.push_back(j);
        }
        return Response::json(out);
      },
      opts(get, "Your projects and roles (admin: ?all=true)"));

  r.post(
      "/api/v1/projects",
      [&svc, &authz](Request& req) {
        auto name = string_field(body_object(req), "name", true);
        req.resource = authz.resource_uri("project", name);
        auto p = project_json(svc.create_project(Actor::of(req.principal), name));
        p["role"] = "admin";
        return Response::json(p, 201);
      },
      opts(small, "Create a project; you become its admin"));

  r.get(
      "/api/v1/projects/{name}",
      [&svc](Request& req) {
        auto name = req.param("name");
        auto j = project_json(svc.get_project(Actor::of(req.principal), name));
        j["members"] = members_json(svc.members(Actor::of(req.principal), name));
        return Response::json(j);
      },
      opts(get, "A project with its members (members, admin)"));

  r.del(
      "/api/v1/projects/{name}",
      [&svc, &authz](Request& req) {
        auto name = req.param("name");
        req.resource = authz.resource_uri("project", name);
        svc.delete_project(Actor::of(req.principal), name);
        return Response::no_content();
      },
      opts(del, "Delete a project and every grant in it (project admin)"));

  r.get(
      "/api/v1/projects/{name}/members",
      [&svc](Request& req) {
        return Response::json(members_json(svc.members(Actor::of(req.principal), req.param("name"))));
      },
      opts(get, "A project's members and roles"));

  r.put(
      "/api/v1/projects/{name}/members/{user}",
      [&svc, &authz](Request& req) {
        auto project = req.param("name");
        auto user = principal_param(req, "user");
        req.resource = authz.resource_uri("project", project);
        auto role = string_field(body_object(req), "role", true);
        auto m = svc.set_member(Actor::of(req.principal), project, user, role);
        return Response::json({{"user", m.user}, {"role", m.role}});
      },
      opts(small, "Add a member or change their role (needs manage on the role)"));

  r.del(
      "/api/v1/projects/{name}/members/{user}",
      [&svc, &authz](Request& req) {
        auto project = req.param("name");
        req.resource = authz.resource_uri("project", project);
        svc.remove_member(Actor::of(req.principal), project, principal_param(req, "user"));
        return Response::no_content();
      },
      opts(del, "Remove a member (needs manage on their role, or yourself)"));

  // --- tokens
  r.get(
      "/api/v1/tokens",
      [&svc](Request& req) {
        auto who = req.query_param("user").value_or(req.principal.name);
        std::replace(who.begin(), who.end(), ':', '/');
        auto out = json::array();
        for (const auto& t : svc.list_tokens(Actor::of(req.principal), who)) out.push_back(to_json(t));
        return Response::json(out);
      },
      opts(get, "Your tokens (values are never shown again; admin: ?user=)"));

  r.post(
      "/api/v1/tokens",
      [&svc](Request& req) {
        auto j = body_object(req);
        auto issued = svc.create_token(Actor::of(req.principal), req.principal.name,
                                       req.principal.kind == "service" ? "service" : "api",
                                       string_field(j, "name", false), duration_field(j, "expires_in"));
        req.resource = issued.info.id;
        return Response::json(issued_json(issued), 201);
      },
      opts(small, "Create an API token (shown once)"));

  r.del(
      "/api/v1/tokens/{id}",
      [&svc](Request& req) {
        auto id = req.param("id");
        req.resource = id;
        svc.revoke_token(Actor::of(req.principal), id);
        return Response::no_content();
      },
      opts(del, "Revoke a token"));

  // --- service accounts
  r.get(
      "/api/v1/service-accounts",
      [&svc, &authz](Request& req) {
        auto out = json::array();
        for (const auto& p : svc.list_service_accounts(Actor::of(req.principal))) out.push_back(to_json(p, authz));
        return Response::json(out);
      },
      opts(get, "Your service accounts (admin: all)"));

  r.post(
      "/api/v1/service-accounts",
      [&svc, &authz](Request& req) {
        auto j = body_object(req);
        auto name = string_field(j, "name", true);
        auto sa = svc.create_service_account(Actor::of(req.principal), name, duration_field(j, "expires_in"));
        req.resource = sa.info.name;
        auto out = to_json(sa.info, authz);
        if (sa.token) {
          out["token"] = sa.token->token;
          out["token_id"] = sa.token->info.id;
          out["expires_at"] = sa.token->info.expires_at ? json(*sa.token->info.expires_at) : json();
        }
        return Response::json(out, 201);
      },
      opts(small, "Create a service account with its first token (shown once)"));

  r.post(
      "/api/v1/service-accounts/{name}/tokens",
      [&svc](Request& req) {
        auto actor = Actor::of(req.principal);
        auto full = svc.service_account_name(actor, principal_param(req));
        req.resource = full;
        auto j = body_object(req);
        auto issued =
            svc.create_token(actor, full, "service", string_field(j, "name", false), duration_field(j, "expires_in"));
        return Response::json(issued_json(issued), 201);
      },
      opts(small, "Mint another token for your service account"));

  r.del(
      "/api/v1/service-accounts/{name}",
      [&svc](Request& req) {
        auto actor = Actor::of(req.principal);
        auto full = svc.service_account_name(actor, principal_param(req));
        req.resource = full;
        svc.delete_service_account(actor, full);
        return Response::no_content();
      },
      opts(del, "Delete a service account with its tokens and grants"));

  add_quota_and_audit_routes(r);
}

}  // namespace neurod::auth

// Security: every route of the real module list requires authentication unless it is
// on the explicit public list below, and refuses an authenticated user who has no
// business with the thing it names unless it is on the explicit self-service list.
// Adding a public or a self-service route means adding it here, on purpose, in review.
#include "http/auth_helpers.hpp"

#include <doctest/doctest.h>

#include <map>
#include <set>

using namespace neurod;
using authtest::Api;
using authtest::json;

namespace {
const std::set<std::string> kPublic = {
    "GET /api/v1/ping", "GET /api/v1/health",  "GET /api/v1/version", "GET /api/v1/config", "GET /metrics",
    "POST /api/v1/auth/login",
    // The web console's files (module console): the login page loads before any login.
    "GET /{path...}",
    // The job HTTP proxy (monitoring): a job submitted with http.requires_auth=false serves
    // anonymous visitors, so the router lets everyone in and the handler asks for `read`
    // on every other job (the test below and tests/http/http_proxy_test.cpp).
    "GET /api/v1/jobs/{job}/http", "GET /api/v1/jobs/{job}/http/", "POST /api/v1/jobs/{job}/http/",
    "PUT /api/v1/jobs/{job}/http/", "PATCH /api/v1/jobs/{job}/http/", "DELETE /api/v1/jobs/{job}/http/",
    "OPTIONS /api/v1/jobs/{job}/http/", "GET /api/v1/jobs/{job}/http/{path...}", "POST /api/v1/jobs/{job}/http/{path...}",
    "PUT /api/v1/jobs/{job}/http/{path...}", "PATCH /api/v1/jobs/{job}/http/{path...}",
    "DELETE /api/v1/jobs/{job}/http/{path...}", "OPTIONS /api/v1/jobs/{job}/http/{path...}",
};

std::string route_key(const http::Route& r) { return std::string(http::to_string(r.method)) + " " + r.pattern; }

// Fills every {param} with `value`.
std::string concrete_path(const std::string& pattern, const std::string& value = "x") {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      auto close = pattern.find('}', i);
      out += value;
      i = close + 1;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("every non-public route answers 401 without credentials") {
  test::TestServer server;
  auto& routes = server.app().router().routes();
  REQUIRE_FALSE(routes.empty());
  std::set<std::string> seen_public;
  auto client = server.client();
  for (const auto& r : routes) {
    std::string key = route_key(*r);
    CAPTURE(key);
    if (r->options.public_route) {
      seen_public.insert(key);
      CHECK_MESSAGE(kPublic.contains(key), "route is public but not on the reviewed list");
      continue;
    }
    auto res = client.request(std::string(http::to_string(r->method)), concrete_path(r->pattern));
    CHECK(res.status == 401);
    if (r->pattern.starts_with("/v2/")) {
      // The registry answers in the OCI Distribution form, with the token flow's challenge.
      CHECK(res.json()["errors"][0]["code"] == "UNAUTHORIZED");
      CHECK(res.header("WWW-Authenticate").value_or("").starts_with("Bearer realm="));
    } else {
      CHECK(res.json()["error"]["code"] == "unauthenticated");
      CHECK(res.header("WWW-Authenticate").has_value());
    }
  }
  CHECK(seen_public == kPublic);
  // The live job list is a flag on the list route, not a route of its own.
  auto watch = client.request("GET", "/api/v1/jobs?watch=true");
  CHECK(watch.status == 401);
  CHECK(watch.json()["error"]["code"] == "unauthenticated");
}

// The second walk: mallory holds a valid token but no permission beyond her own
// personal project. Every route is called naming somebody else's things (the admin's
// user, token, role, service account, project and quota), with a plausible body so
// that parsing cannot be what stops her.
//
// The acceptable answers for a refused call are 403 (not allowed) and 404 (not allowed
// to learn that it exists). Everything else fails the walk:
//  - 2xx: the call went through: a hole;
//  - 400/409/422: the request was judged on its content or on the state of the target
//    before the caller's authority was checked (it leaks what exists and risks acting);
//  - 401: her valid token was refused, so the walk proves nothing.
// Routes on kSelfService act on the caller's own things only (whoami, their own
// tokens, projects, quota, audit entries, …) and must answer 2xx. Their "somebody
// else's" variants (?user=admin, ?all=true, …) are in kOthersVariants.
namespace {

const std::set<std::string> kSelfService = {
    "GET /api/v1/auth/whoami",      "POST /api/v1/auth/logout",        "GET /api/v1/roles",
    "GET /api/v1/projects",         "POST /api/v1/projects",           "GET /api/v1/tokens",
    "POST /api/v1/tokens",          "GET /api/v1/service-accounts",    "POST /api/v1/service-accounts",
    "GET /api/v1/quota",            "GET /api/v1/audit",               "GET /api/v1/jobs",
    "GET /api/v1/secrets",
    // Notifications: her own subscriptions, delivery log and opt-out.
    "GET /api/v1/notifications/subscriptions", "GET /api/v1/notifications/deliveries",
    "GET /api/v1/notifications/preferences", "PUT /api/v1/notifications/preferences",
    // The registry's version check, its token endpoint (a token for what the caller may do)
    // and the catalog (filtered to what the caller may pull).
    "GET /v2/",                     "GET /v2/token",                   "GET /v2/_catalog",
};

struct Probe {
  std::string target;
  json body;  // null: no body
};

struct Fixture {
  std::string admin_token_id;  // an API token of the admin's
  std::string admin_subscription_id;  // a notification subscription of the admin's
  std::string admin_delivery_id;      // and a delivery of it
};

// What mallory sends for each known route; routes not listed here (a module added
// later) get every parameter filled with "admin" and an empty JSON object as the body.
std::map<std::string, Probe> probes(const Fixture& f) {
  const json self_grant = json::array({{{"uri", "role://cluster/admin"}, {"action", "read"}},
                                       {{"uri", "cluster://test"}, {"action", "manage"}}});
  return {
      {"GET /api/v1/auth/whoami", {"/api/v1/auth/whoami", nullptr}},
      // A well-formed job in somebody else's project.
      {"POST /api/v1/jobs", {"/api/v1/jobs", {{"image", "busybox:1"}, {"project_name", "admin"}}}},
      {"GET /api/v1/jobs", {"/api/v1/jobs", nullptr}},
      // Somebody else's storage: reading, writing, partial writes, deleting, renaming into her own.
      {"GET /api/v1/storage/{path...}", {"/api/v1/storage/admin/data?op=LISTSTATUS", nullptr}},
      {"PUT /api/v1/storage/{path...}", {"/api/v1/storage/admin/data/new.txt", {{"any", "bytes"}}}},
      {"PATCH /api/v1/storage/{path...}", {"/api/v1/storage/admin/data/f.txt", {{"any", "bytes"}}}},
      {"DELETE /api/v1/storage/{path...}", {"/api/v1/storage/admin/data", nullptr}},
      {"POST /api/v1/storage/{path...}", {"/api/v1/storage/admin/data?op=RENAME&destination=/mallory/stolen", nullptr}},
      {"GET /api/v1/jobs/{job}", {"/api/v1/jobs/admin", nullptr}},
      {"GET /api/v1/jobs/{job}/statuses", {"/api/v1/jobs/admin/statuses", nullptr}},
      {"GET /api/v1/jobs/{job}/log", {"/api/v1/jobs/admin/log?follow=true", nullptr}},
      {"GET /api/v1/jobs/{job}/log_ws", {"/api/v1/jobs/admin/log_ws", nullptr}},
      {"DELETE /api/v1/jobs/{job}/log", {"/api/v1/jobs/admin/log", nullptr}},
      {"DELETE /api/v1/jobs/{job}", {"/api/v1/jobs/admin", nullptr}},
      // Somebody else's job's telemetry: live (WebSocket) and history.
      {"GET /api/v1/jobs/{job}/top", {"/api/v1/jobs/admin/top", nullptr}},
      {"GET /api/v1/jobs/{job}/telemetry", {"/api/v1/jobs/admin/telemetry?step=1m", nullptr}},
      // Exec, attach and kill on somebody else's job (WebSocket routes get the upgrade headers).
      {"GET /api/v1/jobs/{job}/exec", {"/api/v1/jobs/admin/exec?cmd=sh&tty=1&stdin=1&stderr=0", nullptr}},
      {"GET /api/v1/jobs/{job}/attach", {"/api/v1/jobs/admin/attach?stdin=1", nullptr}},
      {"POST /api/v1/jobs/{job}/kill", {"/api/v1/jobs/admin/kill?signal=KILL", nullptr}},
      // Acting on somebody else's job: forwarding a port (a WebSocket), saving it into their project.
      {"GET /api/v1/jobs/{job}/port_forward/{port}", {"/api/v1/jobs/admin/port_forward/80", nullptr}},
      {"POST /api/v1/jobs/{job}/save", {"/api/v1/jobs/admin/save", {{"container", {{"image", "image:/admin/stolen:v1"}}}}}},
      {"POST /api/v1/auth/logout", {"/api/v1/auth/logout", nullptr}},
      {"GET /api/v1/users", {"/api/v1/users", nullptr}},
      {"POST /api/v1/users",
       {"/api/v1/users", {{"name", "eve"}, {"password", authtest::kPassword}, {"admin", true}}}},
      {"GET /api/v1/users/{name}", {"/api/v1/users/admin", nullptr}},
      {"DELETE /api/v1/users/{name}", {"/api/v1/users/admin", nullptr}},
      {"PUT /api/v1/users/{name}/password", {"/api/v1/users/admin/password", {{"password", "mallory was here"}}}},
      {"GET /api/v1/users/{name}/permissions", {"/api/v1/users/admin/permissions", nullptr}},
      // Granting herself the admin role: the escalation everyone tries first.
      {"POST /api/v1/users/{name}/permissions", {"/api/v1/users/mallory/permissions", self_grant}},
      {"DELETE /api/v1/users/{name}/permissions",
       {"/api/v1/users/admin/permissions?uri=" + authtest::q("role://cluster/admin"), nullptr}},
      {"POST /api/v1/users/{name}/permissions/check",
       {"/api/v1/users/admin/permissions/check", json::array({{{"uri", "cluster://test"}, {"action", "manage"}}})}},
      {"GET /api/v1/users/{name}/permissions/tree", {"/api/v1/users/admin/permissions/tree", nullptr}},
      {"GET /api/v1/users/{name}/permissions/shared", {"/api/v1/users/admin/permissions/shared", nullptr}},
      {"GET /api/v1/roles", {"/api/v1/roles", nullptr}},
      {"POST /api/v1/roles", {"/api/v1/roles", {{"name", "admin/roles/mallory"}}}},
      {"DELETE /api/v1/roles/{name}", {"/api/v1/roles/admin:roles:ops", nullptr}},
      {"GET /api/v1/projects", {"/api/v1/projects", nullptr}},
      {"POST /api/v1/projects", {"/api/v1/projects", {{"name", "mallory-lab"}}}},
      {"GET /api/v1/projects/{name}", {"/api/v1/projects/secretproj", nullptr}},
      {"DELETE /api/v1/projects/{name}", {"/api/v1/projects/secretproj", nullptr}},
      {"GET /api/v1/projects/{name}/members", {"/api/v1/projects/secretproj/members", nullptr}},
      {"PUT /api/v1/projects/{name}/members/{user}", {"/api/v1/projects/secretproj/members/mallory", {{"role", "admin"}}}},
      {"DELETE /api/v1/projects/{name}/members/{user}", {"/api/v1/projects/secretproj/members/admin", nullptr}},
      {"GET /api/v1/tokens", {"/api/v1/tokens", nullptr}},
      {"POST /api/v1/tokens", {"/api/v1/tokens", {{"name", "walk"}}}},
      {"DELETE /api/v1/tokens/{id}", {"/api/v1/tokens/" + f.admin_token_id, nullptr}},
      {"GET /api/v1/service-accounts", {"/api/v1/service-accounts", nullptr}},
      {"POST /api/v1/service-accounts", {"/api/v1/service-accounts", {{"name", "bot"}}}},
      {"POST /api/v1/service-accounts/{name}/tokens",
       {"/api/v1/service-accounts/admin:service-accounts:ci/tokens", {{"name", "stolen"}}}},
      {"DELETE /api/v1/service-accounts/{name}", {"/api/v1/service-accounts/admin:service-accounts:ci", nullptr}},
      {"GET /api/v1/quota", {"/api/v1/quota", nullptr}},
      {"GET /api/v1/admin/quotas/{kind}/{name}", {"/api/v1/admin/quotas/users/admin", nullptr}},
      {"PUT /api/v1/admin/quotas/{kind}/{name}", {"/api/v1/admin/quotas/users/mallory", {{"cpu_hours", 1e9}}}},
      {"DELETE /api/v1/admin/quotas/{kind}/{name}", {"/api/v1/admin/quotas/users/admin", nullptr}},
      {"GET /api/v1/audit", {"/api/v1/audit", nullptr}},
      // A well-formed secret in somebody else's project, and reading or deleting theirs.
      {"POST /api/v1/secrets", {"/api/v1/secrets", {{"key", "K"}, {"value", "dg=="}, {"project_name", "admin"}}}},
      {"GET /api/v1/secrets", {"/api/v1/secrets?project_name=admin", nullptr}},
      {"GET /api/v1/secrets/{key}", {"/api/v1/secrets/ADMIN_SECRET?project_name=admin", nullptr}},
      {"DELETE /api/v1/secrets/{key}", {"/api/v1/secrets/ADMIN_SECRET?project_name=admin", nullptr}},
      // Somebody else's images: pulling, pushing a manifest, uploading, mounting into theirs, deleting.
      {"GET /v2/token", {"/v2/token?service=neurod&scope=repository:admin/img:pull,push", nullptr}},
      {"GET /v2/{path...}", {"/v2/admin/img/manifests/latest", nullptr}},
      {"PUT /v2/{path...}", {"/v2/admin/img/manifests/latest", {{"schemaVersion", 2}}}},
      {"POST /v2/{path...}", {"/v2/admin/img/blobs/uploads/", nullptr}},
      {"PATCH /v2/{path...}", {"/v2/admin/img/blobs/uploads/0123456789abcdef0123456789abcdef", {{"any", "bytes"}}}},
      {"DELETE /v2/{path...}", {"/v2/admin/img/manifests/latest", nullptr}},
      // Notifications: a project's subscription she has no rights in, and the admin's own.
      {"POST /api/v1/notifications/subscriptions",
       {"/api/v1/notifications/subscriptions",
        {{"channel", "webhook"}, {"target", "http://127.0.0.1:9/steal"}, {"project_name", "secretproj"}}}},
      {"GET /api/v1/notifications/subscriptions", {"/api/v1/notifications/subscriptions", nullptr}},
      {"GET /api/v1/notifications/subscriptions/{id}",
       {"/api/v1/notifications/subscriptions/" + f.admin_subscription_id, nullptr}},
      {"DELETE /api/v1/notifications/subscriptions/{id}",
       {"/api/v1/notifications/subscriptions/" + f.admin_subscription_id, nullptr}},
      {"POST /api/v1/notifications/subscriptions/{id}/test",
       {"/api/v1/notifications/subscriptions/" + f.admin_subscription_id + "/test", nullptr}},
      {"GET /api/v1/notifications/deliveries", {"/api/v1/notifications/deliveries", nullptr}},
      {"GET /api/v1/notifications/deliveries/{id}", {"/api/v1/notifications/deliveries/" + f.admin_delivery_id, nullptr}},
      {"GET /api/v1/notifications/preferences", {"/api/v1/notifications/preferences", nullptr}},
      {"PUT /api/v1/notifications/preferences", {"/api/v1/notifications/preferences", {{"default_email", false}}}},
  };
}

// Somebody else's variants of self-service routes, and other ways in: method, target,
// body, and the one acceptable answer.
struct Variant {
  std::string method;
  std::string target;
  json body;
  int status;
};
std::vector<Variant> others_variants(const Fixture& f) {
  return {
      {"GET", "/api/v1/projects?all=true", nullptr, 403},
      {"GET", "/api/v1/tokens?user=admin", nullptr, 403},
      {"GET", "/api/v1/tokens?user=admin:service-accounts:ci", nullptr, 403},
      {"GET", "/api/v1/quota?user=admin", nullptr, 403},
      {"GET", "/api/v1/quota?project=secretproj", nullptr, 404},
      {"GET", "/api/v1/audit?user=admin", nullptr, 403},
      {"GET", "/api/v1/users?kind=user", nullptr, 403},
      {"GET", "/api/v1/users/admin:service-accounts:ci/permissions", nullptr, 403},
      {"GET", "/api/v1/users/admin:roles:ops/permissions", nullptr, 403},
      {"GET", "/api/v1/users/cluster:admin/permissions", nullptr, 403},
      {"GET", "/api/v1/users/admin/permissions/tree?uri=" + authtest::q("storage://test/admin"), nullptr, 403},
      // Sharing what she does not manage with herself.
      {"POST", "/api/v1/users/mallory/permissions", json::array({{{"uri", "storage://test/secretproj"}, {"action", "read"}}}), 403},
      {"POST", "/api/v1/users/mallory/permissions", json::array({{{"uri", "role://projects/secretproj/admin"}, {"action", "read"}}}), 403},
      {"POST", "/api/v1/users/mallory/permissions", {{"uri", "storage:"}, {"action", "read"}}, 403},
      // Roles in neurod's own namespaces are refused to everyone (admins too), as invalid names.
      {"POST", "/api/v1/roles", {{"name", "cluster/ops"}}, 422},
      {"POST", "/api/v1/roles", {{"name", "projects/secretproj/owner"}}, 422},
      {"PUT", "/api/v1/projects/secretproj/members/mallory", {{"role", "reader"}}, 404},
      {"DELETE", "/api/v1/projects/secretproj", nullptr, 403},
      {"PUT", "/api/v1/users/mallory/password", {{"password", "mallory was here"}}, 422},  // self needs current_password
      // The registry: the other ways at somebody else's images.
      {"GET", "/v2/admin/img/blobs/sha256:" + std::string(64, 'a'), nullptr, 404},
      {"GET", "/v2/admin/img/tags/list", nullptr, 404},
      {"GET", "/v2/admin/img/referrers/sha256:" + std::string(64, 'a'), nullptr, 404},
      {"PUT", "/v2/admin/img/blobs/uploads/0123456789abcdef0123456789abcdef?digest=sha256:" + std::string(64, 'a'), {{"any", "bytes"}}, 403},
      {"POST", "/v2/admin/img/blobs/uploads/?digest=sha256:" + std::string(64, 'a'), {{"any", "bytes"}}, 403},
      {"POST", "/v2/mallory/img/blobs/uploads/?mount=sha256:" + std::string(64, 'a') + "&from=admin/img", nullptr, 202},
      {"DELETE", "/v2/admin/img/blobs/sha256:" + std::string(64, 'a'), nullptr, 403},
      // The admin's delivery log, by subscription.
      {"GET", "/api/v1/notifications/deliveries?subscription_id=" + f.admin_subscription_id, nullptr, 404},
  };
}

}  // namespace

TEST_CASE_TEMPLATE("the job HTTP proxy routes, public at the router, refuse anonymous and other users", B,
                   NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto& admin = env.admin();
  // The admin's job with an HTTP port that needs auth (the default); it need not run: who
  // may open it is decided first.
  auto job = admin.post("/api/v1/jobs", {{"image", "busybox"}, {"command", {"true"}}, {"http", {{"port", 80}}}});
  REQUIRE_STATUS(job, 202);
  std::string id = job.json()["id"];
  auto mallory = env.user("mallory");
  auto anon = env.anonymous();
  std::size_t probed = 0;
  for (const auto& r : env.server().app().router().routes()) {
    if (!r->pattern.starts_with("/api/v1/jobs/{job}/http/")) continue;
    auto key = route_key(*r);
    CAPTURE(key);
    auto method = std::string(http::to_string(r->method));
    auto target = "/api/v1/jobs/" + id + "/http/" + (r->pattern.ends_with("...}") ? "index.html?a=1" : "");
    EXPECT_STATUS(anon.request(method, target, method == "GET" || method == "OPTIONS" ? "" : "{}"), 401);
    EXPECT_STATUS(anon.request(method, target, "", {{"Authorization", "Bearer forged"}}), 401);
    EXPECT_STATUS(mallory.request(method, target, method == "GET" || method == "OPTIONS" ? "" : "{}"), 404);
    // A ticket segment (http_proxy.cpp) is no way around it: a forged one is 401, and a
    // browser of someone who may not read the job gets no ticket.
    auto ticketed = "/api/v1/jobs/" + id + "/http/~t.99999999999.YWRtaW4.AAAA/" +
                    (r->pattern.ends_with("...}") ? "index.html?a=1" : "");
    EXPECT_STATUS(anon.request(method, ticketed, method == "GET" || method == "OPTIONS" ? "" : "{}"), 401);
    // (A cookie mutation without the CSRF token is anonymous: 401 before any job lookup.)
    EXPECT_STATUS(
        anon.request(method, target, "", {{"Cookie", "neurod_session=" + mallory.token()}, {"Accept", "text/html"}}),
        method == "GET" || method == "OPTIONS" ? 404 : 401);
    ++probed;
  }
  CHECK(probed == 12);
  // The slash-less form only redirects (it looks nothing up).
  auto redirect = anon.get("/api/v1/jobs/" + id + "/http");
  EXPECT_STATUS(redirect, 308);
  CHECK(redirect.header("Location") == "/api/v1/jobs/" + id + "/http/");
}

TEST_CASE_TEMPLATE("every non-public route refuses an authenticated user without permissions", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto& admin = env.admin();

  // Somebody else's things, made by the admin.
  Fixture f;
  auto tok = admin.post("/api/v1/tokens", {{"name", "admin-api"}});
  REQUIRE_STATUS(tok, 201);
  f.admin_token_id = tok.json()["id"];
  REQUIRE_STATUS(admin.post("/api/v1/roles", {{"name", "admin/roles/ops"}}), 201);
  REQUIRE_STATUS(admin.post("/api/v1/service-accounts", {{"name", "ci"}}), 201);
  REQUIRE_STATUS(admin.post("/api/v1/projects", {{"name", "secretproj"}}), 201);
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/users/admin", {{"cpu_hours", 5}}), 200);
  REQUIRE_STATUS(admin.request("PUT", "/api/v1/storage/admin/data/f.txt", "admin's"), 201);
  REQUIRE_STATUS(admin.post("/api/v1/secrets", {{"key", "ADMIN_SECRET"}, {"value", "dg=="}}), 201);
  auto admin_job = admin.post("/api/v1/jobs", {{"image", "busybox:1"}, {"name", "admin-job"}});
  REQUIRE_STATUS(admin_job, 202);
  const std::string admin_job_id = admin_job.json()["id"];
  auto sub = admin.post("/api/v1/notifications/subscriptions", {{"channel", "webhook"}, {"target", "http://127.0.0.1:9/"}});
  REQUIRE_STATUS(sub, 201);
  f.admin_subscription_id = sub.json()["id"];
  auto test = admin.post("/api/v1/notifications/subscriptions/" + f.admin_subscription_id + "/test", json::object());
  REQUIRE_STATUS(test, 202);
  f.admin_delivery_id = std::to_string(test.json()["id"].template get<std::int64_t>());

  // mallory: a fresh user with nothing granted, on an API token (logout does not end it).
  auto session = env.user("mallory");
  auto minted = session.post("/api/v1/tokens", {{"name", "walk"}});
  REQUIRE_STATUS(minted, 201);
  Api mallory = env.as(minted.json()["token"].get<std::string>());
  REQUIRE_STATUS(mallory.get("/api/v1/auth/whoami"), 200);

  const auto table = probes(f);
  std::set<std::string> seen_self;
  std::size_t refused = 0;
  std::vector<const http::Route*> ordered;
  for (const auto& r : env.server().app().router().routes())
    if (route_key(*r) != "POST /api/v1/auth/logout") ordered.push_back(r.get());
  for (const auto& r : env.server().app().router().routes())
    if (route_key(*r) == "POST /api/v1/auth/logout") ordered.push_back(r.get());  // last, so nothing after it depends on her session

  for (const auto* r : ordered) {
    auto key = route_key(*r);
    if (r->options.public_route) continue;
    CAPTURE(key);
    auto it = table.find(key);
    Probe p = it != table.end() ? it->second : Probe{concrete_path(r->pattern, "admin"), json::object()};
    // A WebSocket route is asked for the upgrade, so that its own check answers (a plain
    // GET stops at "needs a WebSocket upgrade").
    authtest::Headers upgrade;
    if (r->websocket)
      upgrade = {{"Connection", "Upgrade"},
                 {"Upgrade", "websocket"},
                 {"Sec-WebSocket-Version", "13"},
                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
    auto res = mallory.request(http::to_string(r->method), p.target, p.body.is_null() ? "" : p.body.dump(), upgrade);
    CAPTURE(p.target);
    CAPTURE(res.body);
    if (kSelfService.contains(key)) {
      seen_self.insert(key);
      CHECK_MESSAGE((res.status >= 200 && res.status < 300), "self-service route answered " << res.status);
    } else {
      CHECK_MESSAGE((res.status == 403 || res.status == 404), "answered " << res.status << " instead of 403/404");
      ++refused;
    }
  }
  CHECK(seen_self == kSelfService);  // the list names no route that is gone
  CHECK(refused >= table.size() - kSelfService.size());  // every route in the table was walked

  for (const auto& v : others_variants(f)) {
    CAPTURE(v.method);
    CAPTURE(v.target);
    auto res = mallory.request(v.method, v.target, v.body.is_null() ? "" : v.body.dump());
    EXPECT_STATUS(res, v.status);
  }

  // The live job list (GET /api/v1/jobs?watch=true): her stream starts with an empty list,
  // whatever she filters for, although the admin has a job.
  for (const std::string& filter : {"", "&owner=admin", "&project_name=admin", "&name=admin-job"}) {
    CAPTURE(filter);
    http::ClientOptions o;
    o.token = mallory.token();
    auto c = env.server().client(o);
    std::string got;
    auto r = c.stream("GET", "/api/v1/jobs?watch=true" + filter, [&](std::string_view chunk) {
      got += chunk;
      auto at = got.find("event: snapshot");
      return at == std::string::npos || got.find("\n\n", at) == std::string::npos;
    });
    CHECK(r.status == 200);
    CHECK(got.find("data: {\"jobs\":[]}") != std::string::npos);
    CHECK(got.find(admin_job_id) == std::string::npos);
  }

  // Nothing she tried happened.
  auto who = mallory.get("/api/v1/auth/whoami");
  REQUIRE_STATUS(who, 200);  // her API token survived the walk, logout included
  CHECK(who.json()["admin"] == false);
  for (const auto& role : who.json()["roles"]) {
    CAPTURE(role);
    CHECK((role == "projects/mallory/admin" || role == "projects/mallory-lab/admin"));
  }
  CHECK(admin.get("/api/v1/auth/whoami").json()["admin"] == true);
  auto admin_tokens = admin.get("/api/v1/tokens").json();
  CHECK(std::any_of(admin_tokens.begin(), admin_tokens.end(), [&](const json& t) { return t["id"] == f.admin_token_id; }));
  EXPECT_STATUS(admin.get("/api/v1/users/eve"), 404);
  EXPECT_STATUS(admin.get("/api/v1/projects/secretproj"), 200);
  auto members = admin.get("/api/v1/projects/secretproj/members").json();
  CHECK(members == json::array({{{"user", "admin"}, {"role", "admin"}}}));
  auto roles = admin.get("/api/v1/roles").json();
  CHECK(std::any_of(roles.begin(), roles.end(), [](const json& r) { return r["name"] == "admin/roles/ops"; }));
  auto sas = admin.get("/api/v1/service-accounts").json();
  CHECK(std::any_of(sas.begin(), sas.end(), [](const json& s) { return s["name"] == "admin/service-accounts/ci"; }));
  CHECK(admin.get("/api/v1/admin/quotas/users/admin").json()["limits"]["cpu_hours"] == 5);
  CHECK(admin.get("/api/v1/admin/quotas/users/mallory").json()["limits"]["cpu_hours"].is_null());
  CHECK(env.login("admin", "mallory was here").status == 401);
  CHECK_FALSE(mallory.allowed("mallory", "storage://test/secretproj", "read"));
  EXPECT_STATUS(admin.get("/api/v1/notifications/subscriptions/" + f.admin_subscription_id), 200);
}

TEST_CASE("metrics can be made private") {
  test::ServerSpec spec;
  spec.extra_yaml = "modules:\n  system:\n    metrics_public: false\n";
  test::TestServer server(spec);
  CHECK(server.client().get("/metrics").status == 401);
  CHECK(server.client().get("/api/v1/ping").status == 200);
  // The generated modules.auth keys survive the merge: logins use the cheap test hashing.
  CHECK(server.yaml().find("password_hash_iterations: 1") != std::string::npos);
  CHECK(server.yaml().find("metrics_public: false") != std::string::npos);
}

// Quotas, the audit log, malformed input and a second process on the same database
// (modules/auth/README.md, "Quotas", "Audit", "Credentials").
#include "http/auth_helpers.hpp"

#include "db/database.hpp"
#include "modules/auth/quotas.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::json;
using authtest::kPassword;
using authtest::now_ms;
using authtest::q;

namespace {

json grant(const std::string& uri, const std::string& action) { return {{"uri", uri}, {"action", action}}; }

// The audit entry with this request id, or null.
json entry_for(const json& entries, const std::string& request_id) {
  for (const auto& e : entries)
    if (e["request_id"] == request_id) return e;
  return nullptr;
}

std::string rid(const authtest::Res& r) { return r.header("X-Request-Id").value_or("<none>"); }

}  // namespace

// --- quotas

TEST_CASE_TEMPLATE("quotas: admins set and clear limits - users read their own and their projects'", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");

  auto fresh = admin.get("/api/v1/admin/quotas/users/alice");
  REQUIRE_STATUS(fresh, 200);
  CHECK(fresh.json()["limits"] == json{{"max_running_jobs", nullptr},
                                       {"cpu_hours", nullptr},
                                       {"gpu_hours", nullptr},
                                       {"storage_bytes", nullptr},
                                       {"period", "30d"}});

  auto set = admin.put("/api/v1/admin/quotas/users/alice", {{"max_running_jobs", 2},
                                                            {"cpu_hours", 10.5},
                                                            {"gpu_hours", nullptr},
                                                            {"storage_bytes", "1GiB"},
                                                            {"period", "7d"}});
  REQUIRE_STATUS(set, 200);
  auto limits = json{{"max_running_jobs", 2},
                     {"cpu_hours", 10.5},
                     {"gpu_hours", nullptr},
                     {"storage_bytes", 1073741824},
                     {"period", "7d"}};
  CHECK(set.json()["name"] == "alice");
  CHECK(set.json()["limits"] == limits);
  CHECK(set.json()["usage"]["running_jobs"] == 0);
  CHECK(set.json()["usage"]["cpu_hours"] == 0);
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == limits);

  // Absent keys stay, null clears.
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", 20}}), 200);
  limits["cpu_hours"] = 20.0;
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == limits);
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"max_running_jobs", nullptr}}), 200);
  limits["max_running_jobs"] = nullptr;
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == limits);

  // Bad bodies are refused and change nothing.
  auto unknown = admin.put("/api/v1/admin/quotas/users/alice", {{"cpu", 1}, {"cpu_hours", 1}});
  EXPECT_STATUS(unknown, 400);
  CHECK(unknown.json()["error"]["message"].get<std::string>().find("cpu") != std::string::npos);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", -1}}), 422);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"max_running_jobs", -3}}), 422);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", "lots"}}), 400);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"max_running_jobs", 1.5}}), 400);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"storage_bytes", "huge"}}), 400);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"period", "soon"}}), 400);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"period", "0s"}}), 422);
  EXPECT_STATUS(admin.request("PUT", "/api/v1/admin/quotas/users/alice", "[1]"), 400);
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == limits);

  // Subjects that do not exist.
  EXPECT_STATUS(admin.get("/api/v1/admin/quotas/users/nobody"), 404);
  EXPECT_STATUS(admin.put("/api/v1/admin/quotas/users/nobody", {{"cpu_hours", 1}}), 404);
  EXPECT_STATUS(admin.get("/api/v1/admin/quotas/groups/alice"), 404);
  EXPECT_STATUS(admin.get("/api/v1/admin/quotas/projects/nope"), 404);
  EXPECT_STATUS(admin.get("/api/v1/admin/quotas/users/alice:service-accounts:x"), 404);

  // Admin only.
  EXPECT_STATUS(alice.get("/api/v1/admin/quotas/users/alice"), 403);
  EXPECT_STATUS(alice.put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", 1e6}}), 403);
  EXPECT_STATUS(alice.del("/api/v1/admin/quotas/users/alice"), 403);
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == limits);

  // What alice sees: her own, and her (non-personal) projects'.
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 201);
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/ml", {{"gpu_hours", 4}}), 200);
  auto mine = alice.get("/api/v1/quota");
  REQUIRE_STATUS(mine, 200);
  CHECK(mine.json()["user"]["name"] == "alice");
  CHECK(mine.json()["user"]["limits"] == limits);
  CHECK(mine.json()["user"]["usage"]["running_jobs"] == 0);
  REQUIRE(mine.json()["projects"].size() == 1);
  CHECK(mine.json()["projects"][0]["name"] == "ml");
  CHECK(mine.json()["projects"][0]["limits"]["gpu_hours"] == 4.0);
  auto project = alice.get("/api/v1/quota?project=ml");
  REQUIRE_STATUS(project, 200);
  CHECK(project.json()["projects"][0]["limits"]["gpu_hours"] == 4.0);
  EXPECT_STATUS(bob.get("/api/v1/quota?project=ml"), 404);
  EXPECT_STATUS(bob.get("/api/v1/quota?user=alice"), 403);
  CHECK(bob.get("/api/v1/quota").json()["user"]["limits"]["cpu_hours"].is_null());
  auto by_admin = admin.get("/api/v1/quota?user=alice");
  REQUIRE_STATUS(by_admin, 200);
  CHECK(by_admin.json()["user"]["limits"] == limits);

  // Back to the defaults.
  EXPECT_STATUS(admin.del("/api/v1/admin/quotas/users/alice"), 204);
  CHECK(admin.get("/api/v1/admin/quotas/users/alice").json()["limits"] == fresh.json()["limits"]);
  EXPECT_STATUS(admin.del("/api/v1/admin/quotas/users/nobody"), 404);
}

TEST_CASE_TEMPLATE("Quotas: reserve is all-or-nothing, release stops at zero, hours windows start over", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 201);
  auth::Quotas quotas(env.server().app().db());
  using auth::Resource;
  const auth::Subject user{"user", "alice"}, project{"project", "ml"};
  const std::vector<auth::Subject> both{user, project};

  auth::Limits ul;
  ul.max_running_jobs = 2;
  ul.cpu_hours = 10;
  ul.period = std::chrono::hours(1);
  quotas.set_limits(user, ul);
  auth::Limits pl;
  pl.max_running_jobs = 1;
  quotas.set_limits(project, pl);

  quotas.reserve(both, Resource::running_jobs, 1);
  CHECK(quotas.usage(user).running_jobs == 1);
  CHECK(quotas.usage(project).running_jobs == 1);
  // The project is full: nothing is added, not even to alice, who had room.
  try {
    quotas.reserve(both, Resource::running_jobs, 1);
    FAIL("the project's quota should have been exceeded");
  } catch (const Error& e) {
    CHECK(e.code() == errc::forbidden);
    CHECK(e.code_name() == "quota_exceeded");
    CHECK(e.details()["subject"] == json{{"kind", "project"}, {"name", "ml"}});
    CHECK(e.details()["resource"] == "running_jobs");
    CHECK(std::string(e.what()).find("'ml'") != std::string::npos);
  }
  CHECK(quotas.usage(user).running_jobs == 1);
  CHECK(quotas.usage(project).running_jobs == 1);
  // The HTTP view agrees.
  CHECK(alice.get("/api/v1/quota").json()["user"]["usage"]["running_jobs"] == 1);

  quotas.release(both, Resource::running_jobs, 1);
  CHECK(quotas.usage(user).running_jobs == 0);
  quotas.release(both, Resource::running_jobs, 5);
  CHECK(quotas.usage(user).running_jobs == 0);
  CHECK(quotas.usage(project).running_jobs == 0);
  quotas.reserve(std::vector<auth::Subject>{user}, Resource::running_jobs, 2);
  CHECK_THROWS_AS(quotas.reserve(std::vector<auth::Subject>{user}, Resource::running_jobs, 1), Error);
  CHECK(*quotas.remaining(user, Resource::running_jobs) == 0);
  // No limit, no refusal.
  CHECK_FALSE(quotas.remaining(project, Resource::gpu_hours).has_value());
  quotas.reserve(std::vector<auth::Subject>{project}, Resource::gpu_hours, 1e6);
  CHECK(quotas.usage(project).gpu_hours == 1e6);

  // CPU hours: consume records without a check and may go past the limit.
  auto before = now_ms();
  quotas.consume(std::vector<auth::Subject>{user}, Resource::cpu_hours, 8);
  auto u = quotas.usage(user);
  CHECK(u.cpu_hours == 8);
  CHECK(u.window_start >= before);
  CHECK(u.window_start <= now_ms());
  CHECK_THROWS_AS(quotas.reserve(std::vector<auth::Subject>{user}, Resource::cpu_hours, 3), Error);
  quotas.consume(std::vector<auth::Subject>{user}, Resource::cpu_hours, 5);
  CHECK(quotas.usage(user).cpu_hours == 13);
  CHECK(*quotas.remaining(user, Resource::cpu_hours) == doctest::Approx(-3));

  // Once the window (period: 1h) is over, the count starts from zero.
  env.server().app().db().write([](soci::session& s) {
    s << "UPDATE auth_usage SET window_start = window_start - 7200000 WHERE subject_kind = 'user' AND subject = "
         "'alice' "
         "AND resource = 'cpu_hours'";
  });
  CHECK(quotas.usage(user).cpu_hours == 0);
  CHECK(quotas.usage(user).window_start == 0);
  before = now_ms();
  quotas.reserve(std::vector<auth::Subject>{user}, Resource::cpu_hours, 3);
  u = quotas.usage(user);
  CHECK(u.cpu_hours == 3);
  CHECK(u.window_start >= before);
  CHECK(alice.get("/api/v1/quota").json()["user"]["usage"]["cpu_hours"] == 3.0);
  // Levels have no window: running jobs are not reset by time.
  CHECK(quotas.usage(user).running_jobs == 2);

  // Nonsense is refused.
  // A negative amount is a caller's mistake, never a way to give back or erase use.
  CHECK_THROWS_AS(quotas.reserve(std::vector<auth::Subject>{user}, Resource::cpu_hours, -1), Error);
  CHECK_THROWS_AS(quotas.consume(std::vector<auth::Subject>{user}, Resource::cpu_hours, -1), Error);
  CHECK(quotas.usage(user).cpu_hours == 3);
  CHECK_THROWS_AS(quotas.release(std::vector<auth::Subject>{user}, Resource::cpu_hours, -1), Error);
  CHECK_THROWS_AS(quotas.usage({"group", "x"}), Error);
  auth::Limits negative;
  negative.storage_bytes = -1;
  CHECK_THROWS_AS(quotas.set_limits(user, negative), Error);
  CHECK(quotas.limits(user).cpu_hours == 10);
}

// --- audit

TEST_CASE_TEMPLATE("audit: every mutating request is recorded, refused ones too - reads and checks are not", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto before = now_ms();

  auto made = alice.post("/api/v1/tokens", {{"name", "audited"}});
  REQUIRE_STATUS(made, 201);
  auto denied = alice.post("/api/v1/users", {{"name", "eve"}});
  REQUIRE_STATUS(denied, 403);
  auto shared = alice.post("/api/v1/users/bob/permissions", grant("storage:data/x", "read"));
  REQUIRE_STATUS(shared, 201);
  auto revoked = alice.del("/api/v1/users/bob/permissions?uri=" + q("storage:data/x"));
  REQUIRE_STATUS(revoked, 204);
  REQUIRE_STATUS(alice.get("/api/v1/tokens"), 200);
  REQUIRE_STATUS(alice.check("alice", json::array({grant("storage:data", "read")})), 200);

  // alice reads her own entries on the connection she made them on.
  auto log = alice.get("/api/v1/audit");
  REQUIRE_STATUS(log, 200);
  auto entries = log.json()["entries"];
  auto e = entry_for(entries, rid(made));
  REQUIRE_FALSE(e.is_null());
  CHECK(e["principal"] == "alice");
  CHECK(e["method"] == "POST");
  CHECK(e["path"] == "/api/v1/tokens");
  CHECK(e["route"] == "/api/v1/tokens");
  CHECK(e["status"] == 201);
  CHECK(e["remote"].get<std::string>().starts_with("127.0.0.1"));  // the client's address (a port may follow)
  CHECK(e["resource"] == made.json()["id"]);
  CHECK(e["at"].get<std::int64_t>() >= before);
  CHECK(e["at"].get<std::int64_t>() <= now_ms());
  CHECK(e["id"].is_number_integer());

  auto d = entry_for(entries, rid(denied));
  REQUIRE_FALSE(d.is_null());
  CHECK(d["status"] == 403);
  CHECK(d["path"] == "/api/v1/users");
  CHECK(d["principal"] == "alice");

  auto s = entry_for(entries, rid(shared));
  REQUIRE_FALSE(s.is_null());
  CHECK(s["resource"] == "storage://test/alice/data/x");
  CHECK(s["route"] == "/api/v1/users/{name}/permissions");
  auto r = entry_for(entries, rid(revoked));
  REQUIRE_FALSE(r.is_null());
  CHECK(r["method"] == "DELETE");
  CHECK(r["path"] == "/api/v1/users/bob/permissions");  // never the query string
  CHECK(r["resource"] == "storage://test/alice/data/x");

  for (const auto& x : entries) {
    CAPTURE(x);
    CHECK(x["principal"] == "alice");  // only her own
    CHECK(x["method"] != "GET");
    CHECK(x["path"].get<std::string>().find("/check") == std::string::npos);
  }
  // The newest first.
  for (std::size_t i = 1; i < entries.size(); ++i) CHECK(entries[i - 1]["id"] > entries[i]["id"]);

  auto others = alice.get("/api/v1/audit?user=bob");
  EXPECT_STATUS(others, 403);
  CHECK(code(others) == "not_yours");
  EXPECT_STATUS(alice.get("/api/v1/audit?user=alice"), 200);
  EXPECT_STATUS(alice.get("/api/v1/audit?user="), 403);  // "everyone" is other people too

  // Anonymous attempts are recorded too: a failed login, a POST without a token.
  auto failed_login = env.login("alice", "not the password");
  REQUIRE_STATUS(failed_login, 401);
  auto anon = env.anonymous().post("/api/v1/tokens", {{"name", "x"}});
  REQUIRE_STATUS(anon, 401);

  // The admin sees everyone's (from another connection: poll until the writer caught up).
  json all;
  CHECK(authtest::eventually([&] {
    all = admin.get("/api/v1/audit?limit=1000").json()["entries"];
    return !entry_for(all, rid(failed_login)).is_null() && !entry_for(all, rid(anon)).is_null() &&
           !entry_for(all, rid(made)).is_null();
  }));
  auto fl = entry_for(all, rid(failed_login));
  CHECK(fl["principal"] == "");
  CHECK(fl["path"] == "/api/v1/auth/login");
  CHECK(fl["status"] == 401);
  CHECK(fl["resource"] == "alice");
  auto an = entry_for(all, rid(anon));
  CHECK(an["principal"] == "");
  CHECK(an["status"] == 401);
  CHECK(an["route"] == "/api/v1/tokens");
  auto onlyalice = admin.get("/api/v1/audit?user=alice&limit=1000").json()["entries"];
  CHECK(onlyalice.size() == entries.size());
  for (const auto& x : onlyalice) CHECK(x["principal"] == "alice");
  // Bodies are never recorded: no password of the user creations shows up.
  CHECK(admin.get("/api/v1/audit?limit=1000").body.find(kPassword) == std::string::npos);
}

TEST_CASE_TEMPLATE("audit: filters by time, resource and user - pages with limit and before", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  env.user("bob");
  for (int i = 0; i < 5; ++i) REQUIRE_STATUS(alice.post("/api/v1/tokens", {{"name", "t" + std::to_string(i)}}), 201);
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:data/x", "read")), 201);
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:models", "read")), 201);

  auto all = alice.get("/api/v1/audit").json();
  auto entries = all["entries"];
  REQUIRE(entries.size() == 7);
  CHECK(all["next"].is_null());

  // Paging: limit and before walk the same list, newest first.
  json paged = json::array();
  std::string next_param;
  for (int page = 0; page < 10; ++page) {
    auto r = alice.get("/api/v1/audit?limit=3" + next_param);
    REQUIRE_STATUS(r, 200);
    auto j = r.json();
    CHECK(j["entries"].size() <= 3);
    for (const auto& e : j["entries"]) paged.push_back(e);
    if (j["next"].is_null()) break;
    CHECK(j["next"] == j["entries"].back()["id"]);
    next_param = "&before=" + std::to_string(j["next"].get<std::int64_t>());
  }
  CHECK(paged == entries);

  // Time: since is inclusive, until exclusive; ISO-8601 works too.
  auto mid = entries[3]["at"].get<std::int64_t>();
  auto since = alice.get("/api/v1/audit?since=" + std::to_string(mid)).json()["entries"];
  auto until = alice.get("/api/v1/audit?until=" + std::to_string(mid)).json()["entries"];
  CHECK(since.size() + until.size() == entries.size());
  CHECK(std::any_of(since.begin(), since.end(), [&](const json& e) { return e["id"] == entries[3]["id"]; }));
  for (const auto& e : since) CHECK(e["at"].get<std::int64_t>() >= mid);
  for (const auto& e : until) CHECK(e["at"].get<std::int64_t>() < mid);
  CHECK(alice.get("/api/v1/audit?since=2000-01-01T00:00:00Z").json()["entries"].size() == entries.size());
  CHECK(alice.get("/api/v1/audit?since=2000-01-01").json()["entries"].size() == entries.size());
  CHECK(alice.get("/api/v1/audit?until=2000-01-01T00:00:00Z").json()["entries"].empty());
  CHECK(alice.get("/api/v1/audit?since=2999-01-01T00:00:00Z").json()["entries"].empty());

  // Resource: a URI (relative ones resolve for the caller) covers what is below it; a path as written.
  auto under = alice.get("/api/v1/audit?resource=" + q("storage://test/alice/data")).json()["entries"];
  REQUIRE(under.size() == 1);
  CHECK(under[0]["resource"] == "storage://test/alice/data/x");
  CHECK(alice.get("/api/v1/audit?resource=" + q("storage:data")).json()["entries"] == under);
  CHECK(alice.get("/api/v1/audit?resource=" + q("storage://test/alice")).json()["entries"].size() == 2);
  CHECK(alice.get("/api/v1/audit?resource=" + q("storage://test/alice/dat")).json()["entries"].empty());
  CHECK(alice.get("/api/v1/audit?resource=" + q("/api/v1/tokens")).json()["entries"].size() == 5);
  CHECK(alice.get("/api/v1/audit?resource=" + q("/api/v1/users")).json()["entries"].size() == 2);

  // Nonsense in the query is a 400 that says which parameter.
  for (const auto* bad : {"since=yesterday", "until=2026-13-01", "since=2026-01-01T25:00:00Z", "limit=0", "limit=1001",
                          "limit=ten", "before=abc", "before=0",
                          "resource="
                          "nope%3A%2F%2Fx"}) {
    CAPTURE(bad);
    auto r = alice.get(std::string("/api/v1/audit?") + bad);
    EXPECT_STATUS(r, 400);
  }
  auto bad_since = alice.get("/api/v1/audit?since=yesterday");
  CHECK(bad_since.json()["error"]["message"].get<std::string>().find("since") != std::string::npos);
}

// --- malformed input

TEST_CASE_TEMPLATE("malformed requests get clear 4xx answers and change nothing", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  env.user("bob");

  for (const auto* body : {"{\"name\": ", "[1, 2]", "\"a string\"", "null", "42"}) {
    CAPTURE(body);
    auto r = alice.request("POST", "/api/v1/tokens", body);
    EXPECT_STATUS(r, 400);
    CHECK(code(r) == "bad_request");
  }
  auto malformed = alice.request("POST", "/api/v1/tokens", "{\"name\": ");
  CHECK(malformed.json()["error"]["message"].get<std::string>().find("malformed JSON") != std::string::npos);
  EXPECT_STATUS(alice.request("POST", "/api/v1/projects", ""), 400);

  const std::string grants = "/api/v1/users/bob/permissions";
  for (const auto* uri : {"storage://test/alice/../bob", "nope://x", "", "storage://test/alice/a\x01",
                          "storage://test//x", "://x", "storage://test/alice/a?b"}) {
    CAPTURE(uri);
    auto r = alice.post(grants, grant(uri, "read"));
    EXPECT_STATUS(r, 400);
    CHECK(code(r) == "invalid_uri");
  }
  for (const auto* action : {"own", "READ", "", "admin"}) {
    CAPTURE(action);
    auto r = alice.post(grants, grant("storage:data", action));
    EXPECT_STATUS(r, 400);
    CHECK(code(r) == "invalid_action");
  }
  EXPECT_STATUS(alice.post(grants, json{{"uri", "storage:data"}}), 400);
  EXPECT_STATUS(alice.post(grants, json(42)), 400);
  EXPECT_STATUS(alice.post(grants, json::array({42})), 400);
  EXPECT_STATUS(alice.post(grants, json::array()), 422);
  EXPECT_STATUS(alice.post(grants, json{{"uri", 5}, {"action", "read"}}), 400);
  EXPECT_STATUS(alice.check("alice", json::array()), 400);
  EXPECT_STATUS(alice.check("alice", json::array({json::array()})), 400);
  auto check_uri = alice.check("alice", json::array({grant("storage://test/alice/..", "read")}));
  EXPECT_STATUS(check_uri, 400);
  CHECK(code(check_uri) == "invalid_uri");
  auto revoke_uri = alice.del(grants + "?uri=" + q("nope://x"));
  EXPECT_STATUS(revoke_uri, 400);
  CHECK(code(revoke_uri) == "invalid_uri");
  EXPECT_STATUS(alice.get("/api/v1/users/alice/permissions/tree?uri=" + q("storage://a/../b")), 400);
  EXPECT_STATUS(alice.get("/api/v1/users/" + std::string(300, 'a')), 400);
  EXPECT_STATUS(alice.get("/api/v1/projects?all=maybe"), 400);

  // Oversized bodies are refused on their declared length, before they are read (raw
  // connections: the blocking client would still be writing when the server hangs up).
  auto oversized = [&](const std::string& target, std::size_t length, bool with_token) {
    test::RawConnection conn(env.server().port());
    conn.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
              (with_token ? "Authorization: Bearer " + alice.token() + "\r\n" : std::string()) +
              "Content-Length: " + std::to_string(length) + "\r\n\r\n");
    return conn.read_until_close();
  };
  for (const auto& [target, length] : std::vector<std::pair<std::string, std::size_t>>{
           {"/api/v1/tokens", 70 * 1024}, {grants, 2 * 1024 * 1024}, {"/api/v1/auth/logout", 2048}}) {
    CAPTURE(target);
    auto out = oversized(target, length, true);
    CHECK(out.starts_with("HTTP/1.1 413"));
    CHECK(out.find("payload_too_large") != std::string::npos);
  }
  auto login = oversized("/api/v1/auth/login", 100 * 1024, false);
  CHECK(login.starts_with("HTTP/1.1 413"));
  // The same limit with a body that is really sent.
  auto big = alice.request("POST", "/api/v1/tokens", "{\"name\": \"" + std::string(70 * 1024, 'n') + "\"}");
  EXPECT_STATUS(big, 413);
  CHECK(code(big) == "payload_too_large");

  // Nothing of that reached the data.
  auto after = env.as(alice.token());  // the 413 closed the other connection
  CHECK(after.get("/api/v1/tokens").json().size() == 1);
  CHECK(after.get("/api/v1/users/alice/permissions/shared").json() == json::array());
  CHECK(after.get("/api/v1/projects").json().size() == 1);
}

// --- several processes on one database

TEST_CASE_TEMPLATE("a revocation through one server reaches another on the same database within sync_interval", B,
                   NEUROD_DB_BACKENDS) {
  Env a(B::kDialect, "sync_interval: 100ms\n");
  auto alice = a.user("alice");
  auto made = alice.post("/api/v1/tokens", {{"name", "shared"}});
  REQUIRE_STATUS(made, 201);
  const std::string token = made.json()["token"];

  test::ServerSpec spec;
  spec.backend = test::backend_of(B::kDialect);
  spec.database_url = a.server().database_url();
  spec.auth_yaml = "sync_interval: 100ms\n";
  test::TestServer b(spec);
  Api on_b(b, token);
  REQUIRE_STATUS(on_b.get("/api/v1/auth/whoami"), 200);

  // New things made through A appear on B.
  auto later = alice.post("/api/v1/tokens", {{"name", "later"}});
  REQUIRE_STATUS(later, 201);
  Api later_on_b(b, later.json()["token"].get<std::string>());
  CHECK(authtest::eventually([&] { return later_on_b.get("/api/v1/auth/whoami").status == 200; }));
  REQUIRE_STATUS(a.admin().post("/api/v1/users", {{"name", "bob"}, {"password", kPassword}}), 201);
  CHECK(authtest::eventually([&] {
    return b.client().post_json("/api/v1/auth/login", {{"user", "bob"}, {"password", kPassword}}).status == 200;
  }));
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:data", "read")), 201);
  Api admin_on_b(b, a.server().admin_token());
  CHECK(authtest::eventually([&] { return admin_on_b.allowed("bob", "storage://test/alice/data", "read"); }));

  // A revocation through A: at once on A, within the sync interval on B.
  REQUIRE_STATUS(alice.del("/api/v1/tokens/" + made.json()["id"].get<std::string>()), 204);
  EXPECT_STATUS(a.as(token).get("/api/v1/auth/whoami"), 401);
  auto start = std::chrono::steady_clock::now();
  CHECK(authtest::eventually([&] { return on_b.get("/api/v1/auth/whoami").status == 401; }));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  REQUIRE_STATUS(alice.del("/api/v1/users/bob/permissions?uri=" + q("storage:data")), 204);
  CHECK(authtest::eventually([&] { return !admin_on_b.allowed("bob", "storage://test/alice/data", "read"); }));

  // And the other way round: B's changes reach A.
  REQUIRE_STATUS(admin_on_b.del("/api/v1/users/bob"), 204);
  CHECK(authtest::eventually([&] { return a.admin().get("/api/v1/users/bob").status == 404; }));
  EXPECT_STATUS(later_on_b.get("/api/v1/auth/whoami"), 200);
}

// Identity through HTTP: the first admin, logins and their throttling, the session
// cookie, logout, and every way a request may carry a token (modules/auth/README.md,
// "Credentials" and "Session").
#include "http/auth_helpers.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::json;
using authtest::kPassword;
using authtest::now_ms;

namespace {

// The value of the neurod_session cookie in a Set-Cookie header ("" when cleared).
std::string cookie_value(const std::string& set_cookie) {
  const std::string key = "neurod_session=";
  if (!set_cookie.starts_with(key)) return "<no neurod_session>";
  auto end = set_cookie.find(';');
  return set_cookie.substr(key.size(), end == std::string::npos ? std::string::npos : end - key.size());
}

}  // namespace

TEST_CASE_TEMPLATE("bootstrap: the first admin's token is in a 0600 file, works, and is never logged", B,
                   NEUROD_DB_BACKENDS) {
  std::string log;
  std::vector<std::string> secrets{kPassword};
  {
    test::StderrCapture capture;
    Env env(B::kDialect, "", "log:\n  level: debug\n");  // everything the daemon says
    auto path = env.server().data_dir() / "auth" / "admin.token";
    REQUIRE(std::filesystem::exists(path));
    auto perms = std::filesystem::status(path).permissions() & std::filesystem::perms::all;
    CHECK(perms == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    auto token = env.server().admin_token();
    secrets.push_back(token);
    CHECK(token.starts_with("nd_"));
    CHECK(token.size() == 46);  // nd_ + 43 base64url characters (256 bits)

    auto who = env.admin().get("/api/v1/auth/whoami");
    REQUIRE_STATUS(who, 200);
    auto j = who.json();
    CHECK(j["name"] == "admin");
    CHECK(j["kind"] == "user");
    CHECK(j["admin"] == true);
    CHECK(j["cluster"] == "test");
    CHECK(j["token"]["kind"] == "bootstrap");
    CHECK(j["token"]["expires_at"].is_null());
    CHECK(j["projects"] == json::array({{{"name", "admin"}, {"role", "admin"}}}));
    // There is no default password.
    CHECK(env.login("admin", "admin").status == 401);
    CHECK(env.login("admin", "").status == 401);

    // Tokens travel in every way the daemon accepts them, with the log at debug.
    auto alice = env.user("alice");
    secrets.push_back(alice.token());
    CHECK(alice.get("/api/v1/auth/whoami").status == 200);
    auto api = alice.post("/api/v1/tokens", {{"name", "ci"}});
    REQUIRE_STATUS(api, 201);
    secrets.push_back(api.json()["token"].get<std::string>());
    auto basic = env.anonymous().request("GET", "/api/v1/auth/whoami", "",
                                         {{"Authorization", "Basic " + authtest::base64("x:" + secrets.back())}});
    CHECK(basic.status == 200);
    CHECK(env.anonymous().request("GET", "/api/v1/auth/whoami", "", {{"Authorization", "Bearer nd_wrong"}}).status ==
          401);
    CHECK(env.login("alice", "not the password").status == 401);
    log = capture.text();
  }
  CHECK(log.find("admin.token") != std::string::npos);          // the file's path is logged…
  CHECK(log.find("/api/v1/auth/whoami") != std::string::npos);  // …and so are the requests (the log was on)
  for (const auto& s : secrets) {
    CAPTURE(s);
    CHECK(log.find(s) == std::string::npos);  // …never a token or a password
  }
  CHECK(log.find("not the password") == std::string::npos);
}

TEST_CASE_TEMPLATE("bootstrap happens once: a restart on the same database writes no new token", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  test::ServerSpec again;
  again.database_url = env.server().database_url();
  test::TestServer second(again);
  CHECK_FALSE(std::filesystem::exists(second.data_dir() / "auth" / "admin.token"));
  CHECK(second.client(env.server().admin_token()).get("/api/v1/auth/whoami").json()["name"] == "admin");
}

TEST_CASE_TEMPLATE("login returns a session token - a wrong password and an unknown user get the same 401", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  env.user("alice");
  auto before = now_ms();
  auto ok = env.login("alice");
  REQUIRE_STATUS(ok, 200);
  auto j = ok.json();
  CHECK(j["user"] == "alice");
  CHECK(j["token"].get<std::string>().starts_with("nd_"));
  CHECK(j["expires_at"].get<std::int64_t>() >= before + 7 * 24 * 3600 * 1000LL - 60000);  // session_ttl: 7 days
  CHECK(j["expires_at"].get<std::int64_t>() <= now_ms() + 7 * 24 * 3600 * 1000LL);
  auto who = env.as(j["token"].get<std::string>()).get("/api/v1/auth/whoami").json();
  CHECK(who["name"] == "alice");
  CHECK(who["admin"] == false);
  CHECK(who["token"]["kind"] == "session");
  CHECK(who["token"]["id"] == j["token_id"]);
  CHECK(who["projects"] == json::array({{{"name", "alice"}, {"role", "admin"}}}));
  // GET /api/v1/config tells a signed-in caller who they are; an anonymous one, nothing of the kind.
  auto cfg = env.as(j["token"].get<std::string>()).get("/api/v1/config").json();
  CHECK(cfg["authorized"] == true);
  CHECK(cfg["user"] == "alice");
  CHECK(cfg["admin"] == false);
  CHECK(cfg["projects"] == json::array({{{"name", "alice"}, {"role", "admin"}, {"cluster_name", "test"}}}));
  auto anon_cfg = env.anonymous().get("/api/v1/config").json();
  CHECK(anon_cfg["authorized"] == false);
  CHECK_FALSE(anon_cfg.contains("user"));
  CHECK_FALSE(anon_cfg.contains("projects"));

  // A shorter session on request; never a longer one than session_ttl.
  auto short_one = env.login("alice", kPassword, {{"expires_in", "1h"}});
  REQUIRE_STATUS(short_one, 200);
  CHECK(std::llabs(short_one.json()["expires_at"].get<std::int64_t>() - (now_ms() + 3600000)) < 60000);
  auto long_one = env.login("alice", kPassword, {{"expires_in", "300d"}});
  REQUIRE_STATUS(long_one, 200);
  CHECK(long_one.json()["expires_at"].get<std::int64_t>() <= now_ms() + 7 * 24 * 3600 * 1000LL);

  auto wrong = env.login("alice", "not the password");
  auto unknown = env.login("nobody", "not the password");
  REQUIRE_STATUS(env.admin().post("/api/v1/users", {{"name", "nopass"}}), 201);
  auto no_password = env.login("nopass", "not the password");
  for (const auto* r : {&wrong, &unknown, &no_password}) {
    EXPECT_STATUS(*r, 401);
    CHECK(code(*r) == "invalid_credentials");
    CHECK(r->header("WWW-Authenticate") == "Bearer realm=\"neurod\"");
    CHECK_FALSE(r->json()["error"].contains("token"));
  }
  CHECK(wrong.json()["error"]["message"] == unknown.json()["error"]["message"]);
  CHECK(wrong.json()["error"]["message"] == no_password.json()["error"]["message"]);

  // Malformed logins are 400s, not 401s.
  auto anon = env.anonymous();
  CHECK(anon.post("/api/v1/auth/login", {{"user", "alice"}}).status == 400);
  CHECK(code(anon.post("/api/v1/auth/login", {{"password", kPassword}})) == "missing_field");
  CHECK(anon.post("/api/v1/auth/login", {{"user", "alice"}, {"password", 12}}).status == 400);
  CHECK(anon.post("/api/v1/auth/login", {{"user", "alice"}, {"password", kPassword}, {"cookie", "yes"}}).status == 400);
  CHECK(anon.post("/api/v1/auth/login", {{"user", "alice"}, {"password", kPassword}, {"expires_in", "soon"}}).status ==
        422);
  CHECK(anon.request("POST", "/api/v1/auth/login", "user=alice").status == 400);
}

TEST_CASE_TEMPLATE("logins are throttled per user, even with the right password", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, "login_max_failures_per_user: 3\nlogin_max_failures_per_address: 1000\n");
  auto alice = env.user("alice");
  env.user("bob");
  for (int i = 0; i < 3; ++i) EXPECT_STATUS(env.login("alice", "guess number " + std::to_string(i)), 401);
  for (const auto& password : {std::string("guess again"), kPassword}) {
    auto r = env.login("alice", password);
    EXPECT_STATUS(r, 429);
    CHECK(code(r) == "login_throttled");
    REQUIRE(r.header("Retry-After").has_value());
    auto wait = std::stoi(*r.header("Retry-After"));
    CHECK(wait >= 1);
    CHECK(wait <= 15 * 60);  // login_window
    CHECK_FALSE(r.json().contains("token"));
  }
  // Others log in; alice's existing sessions keep working.
  EXPECT_STATUS(env.login("bob"), 200);
  EXPECT_STATUS(alice.get("/api/v1/auth/whoami"), 200);
}

TEST_CASE_TEMPLATE("logins are throttled per client address", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, "login_max_failures_per_user: 100\nlogin_max_failures_per_address: 3\n");
  env.user("alice");
  const json right{{"user", "alice"}, {"password", kPassword}};
  // Three failures for three different users, all on one connection…
  auto guesser = env.anonymous();
  for (const auto* user : {"nobody1", "nobody2", "nobody3"})
    EXPECT_STATUS(guesser.post("/api/v1/auth/login", json{{"user", user}, {"password", "whatever it is"}}), 401);
  auto r = guesser.post("/api/v1/auth/login", right);
  EXPECT_STATUS(r, 429);
  CHECK(code(r) == "login_throttled");
  CHECK(r.header("Retry-After").has_value());
  // …block that address, whichever connection (source port) the next attempt comes on.
  auto fresh = env.login("alice");
  EXPECT_STATUS(fresh, 429);
  CHECK(code(fresh) == "login_throttled");
}

TEST_CASE_TEMPLATE("a cookie login sets an HttpOnly SameSite=Strict cookie that authenticates - logout ends it", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  env.user("alice");
  auto r = env.login("alice", kPassword, {{"cookie", true}});
  REQUIRE_STATUS(r, 200);
  CHECK_FALSE(r.json().contains("token"));  // the page's script never sees it
  CHECK(r.json()["user"] == "alice");
  CHECK(r.json()["token_id"].is_string());
  auto set = r.header("Set-Cookie").value_or("");
  CAPTURE(set);
  CHECK(set.find("HttpOnly") != std::string::npos);
  CHECK(set.find("SameSite=Strict") != std::string::npos);
  CHECK(set.find("Path=/") != std::string::npos);
  CHECK(set.find("Secure") == std::string::npos);  // plain HTTP here
  auto value = cookie_value(set);
  CHECK(value.starts_with("nd_"));

  auto anon = env.anonymous();
  auto cookie = authtest::Headers{{"Cookie", "theme=dark; neurod_session=" + value + "; other=1"}};
  auto who = anon.request("GET", "/api/v1/auth/whoami", "", cookie);
  REQUIRE_STATUS(who, 200);
  CHECK(who.json()["name"] == "alice");
  CHECK(who.json()["token"]["id"] == r.json()["token_id"]);
  CHECK(anon.request("GET", "/api/v1/auth/whoami", "", {{"Cookie", "neurod_session_x=" + value}}).status == 401);

  // Mutations with the cookie echo its CSRF token (auth_csrf_test.cpp).
  auto with_csrf = cookie;
  with_csrf.emplace_back("X-CSRF-Token", r.json()["csrf_token"].get<std::string>());
  auto out = anon.request("POST", "/api/v1/auth/logout", "", with_csrf);
  EXPECT_STATUS(out, 204);
  auto cleared = out.header("Set-Cookie").value_or("");
  CHECK(cookie_value(cleared) == "");
  CHECK(cleared.find("Max-Age=0") != std::string::npos);
  auto after = anon.request("GET", "/api/v1/auth/whoami", "", cookie);
  EXPECT_STATUS(after, 401);
  CHECK(code(after) == "invalid_token");
}

TEST_CASE_TEMPLATE("logout revokes the session token at once - API tokens survive it", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto other_session = env.as(env.session("alice"));
  auto api = alice.post("/api/v1/tokens", {{"name", "ci"}});
  REQUIRE_STATUS(api, 201);
  auto ci = env.as(api.json()["token"].get<std::string>());

  EXPECT_STATUS(alice.post("/api/v1/auth/logout", json::object()), 204);
  auto r = alice.get("/api/v1/auth/whoami");
  EXPECT_STATUS(r, 401);
  CHECK(code(r) == "invalid_token");
  CHECK(r.header("WWW-Authenticate") == "Bearer realm=\"neurod\"");
  EXPECT_STATUS(other_session.get("/api/v1/auth/whoami"), 200);  // only this session ended

  // API tokens are revoked with DELETE /tokens/{id}; a logout with one leaves it working.
  EXPECT_STATUS(ci.request("POST", "/api/v1/auth/logout"), 204);
  EXPECT_STATUS(ci.get("/api/v1/auth/whoami"), 200);
}

TEST_CASE_TEMPLATE("a token authenticates as Bearer, as a Basic password and as a WebSocket subprotocol", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  const auto& token = alice.token();
  auto anon = env.anonymous();
  auto whoami = [&](authtest::Headers h) { return anon.request("GET", "/api/v1/auth/whoami", "", std::move(h)); };

  auto bearer = whoami({{"Authorization", "Bearer " + token}});
  REQUIRE_STATUS(bearer, 200);
  CHECK(bearer.json()["name"] == "alice");
  CHECK(whoami({{"Authorization", "bearer   " + token + "  "}}).status == 200);  // the scheme is case-insensitive

  auto basic = whoami({{"Authorization", "Basic " + authtest::base64("alice:" + token)}});
  REQUIRE_STATUS(basic, 200);
  CHECK(basic.json()["name"] == "alice");
  CHECK(whoami({{"Authorization", "Basic " + authtest::base64("anyone:" + token)}}).json()["name"] == "alice");

  auto ws = whoami({{"Sec-WebSocket-Protocol", "bearer.neurod-" + token}});
  REQUIRE_STATUS(ws, 200);
  CHECK(ws.json()["name"] == "alice");
  CHECK(whoami({{"Sec-WebSocket-Protocol", "neurod.v1, bearer.neurod-" + token}}).json()["name"] == "alice");

  // Malformed or wrong credentials: 401 with WWW-Authenticate, never anonymous access.
  for (const auto& h :
       std::vector<std::string>{"Token " + token, "Basic !!!notbase64!!!", "Basic " + authtest::base64(token),
                                "Bearer nd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer ",
                                "Basic " + authtest::base64("alice:wrong"), "Bearer " + token + "x"}) {
    CAPTURE(h);
    auto r = whoami({{"Authorization", h}});
    EXPECT_STATUS(r, 401);
    CHECK(code(r) == "invalid_token");
    CHECK(r.header("WWW-Authenticate") == "Bearer realm=\"neurod\"");
  }
  auto bad_ws = whoami({{"Sec-WebSocket-Protocol", "bearer.neurod-nd_nope"}});
  EXPECT_STATUS(bad_ws, 401);
  CHECK(code(bad_ws) == "invalid_token");
  auto none = whoami({});
  EXPECT_STATUS(none, 401);
  CHECK(code(none) == "unauthenticated");
  CHECK(none.header("WWW-Authenticate") == "Bearer realm=\"neurod\"");

  // Public routes answer whatever the credentials.
  CHECK(whoami({{"Authorization", "Token x"}}).status == 401);
  CHECK(anon.request("GET", "/api/v1/ping", "", {{"Authorization", "Token x"}}).status == 200);
  CHECK(anon.request("POST", "/api/v1/auth/login", json{{"user", "alice"}, {"password", kPassword}}.dump(),
                     {{"Authorization", "Bearer nd_stale"}})
            .status == 200);
}

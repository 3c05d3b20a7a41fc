// The console's cookie against cross-site use (modules/auth/README.md, "The console's
// cookie"): the CSRF token that cookie-authenticated mutations must echo, and the Origin
// check on cookie-authenticated mutations and WebSocket upgrades. Bearer, Basic and
// subprotocol credentials are not affected. Every case on SQLite and PostgreSQL.
#include "http/auth_helpers.hpp"
#include "http/test_module.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::Headers;
using authtest::json;
using authtest::kPassword;

namespace {

Env csrf_env(db::Dialect d) {
  auto spec = Env::spec(d, "", "");
  spec.extra_modules.push_back(app::describe_module<testing::Module>());
  return Env(std::move(spec));
}

// The Set-Cookie header that sets `name` ("" when there is none).
std::string set_cookie(const authtest::Res& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == "Set-Cookie" || k == "set-cookie")
      if (v.starts_with(name + "=")) return v;
  return "";
}

std::string cookie_value(const std::string& set) {
  auto eq = set.find('=');
  auto semi = set.find(';');
  if (eq == std::string::npos) return "<none>";
  return set.substr(eq + 1, semi == std::string::npos ? std::string::npos : semi - eq - 1);
}

struct Browser {
  std::string session;  // the neurod_session cookie's value
  std::string csrf;     // csrf_token from the login answer
};

Browser browser_login(Env& env, const std::string& user) {
  auto r = env.login(user, kPassword, {{"cookie", true}});
  REQUIRE_STATUS(r, 200);
  Browser b;
  b.session = cookie_value(set_cookie(r, "neurod_session"));
  b.csrf = r.json().value("csrf_token", "");
  REQUIRE(b.session.starts_with("nd_"));
  REQUIRE_FALSE(b.csrf.empty());
  return b;
}

// What a browser sends with the cookie (plus `more`).
Headers cookie_headers(const Browser& b, Headers more = {}) {
  Headers h{{"Cookie", "theme=dark; neurod_session=" + b.session}};
  for (auto& kv : more) h.push_back(std::move(kv));
  return h;
}

int status_of(const std::string& raw) {
  if (raw.size() < 12 || !raw.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(raw.substr(9, 3));
}

// A WebSocket upgrade sent by hand (the clients cannot send a Cookie or an Origin);
// returns the answer's status and head.
std::pair<int, std::string> upgrade(Env& env, const std::string& target, const Headers& headers) {
  test::RawConnection c(env.server().port());
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(env.server().port()) +
                    "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  c.send(req + "\r\n");
  auto got = c.read_until("\r\n\r\n");
  if (status_of(got) != 101 && got.find("}}") == std::string::npos) got += c.read_until("}}");  // the error body
  return {status_of(got), got};
}

}  // namespace

TEST_CASE_TEMPLATE("csrf: a cookie login sets a readable CSRF cookie - cookie mutations must echo it", B,
                   NEUROD_DB_BACKENDS) {
  auto env = csrf_env(B::kDialect);
  auto alice = env.user("alice");
  auto r = env.login("alice", kPassword, {{"cookie", true}});
  REQUIRE_STATUS(r, 200);
  auto session = set_cookie(r, "neurod_session");
  auto csrf_cookie = set_cookie(r, "neurod_csrf");
  CAPTURE(session);
  CAPTURE(csrf_cookie);
  CHECK(session.find("HttpOnly") != std::string::npos);
  // The CSRF cookie is for the console's scripts: readable, same-site only, everywhere.
  CHECK(csrf_cookie.find("HttpOnly") == std::string::npos);
  CHECK(csrf_cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(csrf_cookie.find("Path=/") != std::string::npos);
  CHECK(csrf_cookie.find("Secure") == std::string::npos);  // plain HTTP here
  CHECK_FALSE(r.json().contains("token"));
  auto csrf = r.json().value("csrf_token", "");
  CHECK(csrf.size() == 43);  // base64url of a 256-bit MAC
  CHECK(cookie_value(csrf_cookie) == csrf);
  Browser b{cookie_value(session), csrf};
  CHECK(csrf.find(b.session) == std::string::npos);

  // The key it is made with is kept beside the other auth keys, for this user only.
  auto key = env.server().data_dir() / "auth" / "csrf.key";
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 32);

  auto anon = env.anonymous();
  auto body = json{{"name", "from-the-console"}}.dump();
  // No token, a wrong one, another session's: refused with what to do.
  auto none = anon.request("POST", "/api/v1/tokens", body, cookie_headers(b));
  EXPECT_STATUS(none, 403);
  CHECK(code(none) == "csrf_failed");
  CHECK(none.body.find("X-CSRF-Token") != std::string::npos);
  auto wrong =
      anon.request("POST", "/api/v1/tokens", body, cookie_headers(b, {{"X-CSRF-Token", "x" + csrf.substr(1)}}));
  EXPECT_STATUS(wrong, 403);
  CHECK(code(wrong) == "csrf_failed");
  auto other = browser_login(env, "alice");
  CHECK(other.csrf != csrf);
  auto swapped = anon.request("POST", "/api/v1/tokens", body, cookie_headers(b, {{"X-CSRF-Token", other.csrf}}));
  EXPECT_STATUS(swapped, 403);
  CHECK(code(swapped) == "csrf_failed");
  // Nothing was made by the refused ones.
  auto tokens = alice.get("/api/v1/tokens").json();
  CHECK(std::none_of(tokens.begin(), tokens.end(), [](const json& t) { return t["name"] == "from-the-console"; }));

  auto right = anon.request("POST", "/api/v1/tokens", body, cookie_headers(b, {{"X-CSRF-Token", csrf}}));
  EXPECT_STATUS(right, 201);
  // PUT and DELETE too.
  auto id = right.json()["id"].template get<std::string>();
  EXPECT_STATUS(anon.request("DELETE", "/api/v1/tokens/" + id, "", cookie_headers(b)), 403);
  EXPECT_STATUS(anon.request("DELETE", "/api/v1/tokens/" + id, "", cookie_headers(b, {{"X-CSRF-Token", csrf}})), 204);

  // Reads need no token.
  EXPECT_STATUS(anon.request("GET", "/api/v1/tokens", "", cookie_headers(b)), 200);
  // Bearer needs no token (the CLI, scripts); nor does Basic (registry clients).
  EXPECT_STATUS(alice.post("/api/v1/tokens", {{"name", "cli"}}), 201);
  EXPECT_STATUS(anon.request("POST", "/api/v1/tokens", json{{"name", "basic"}}.dump(),
                             {{"Authorization", "Basic " + authtest::base64("alice:" + alice.token())}}),
                201);
  // A cookie does not matter when Authorization is there: the header is what authenticates.
  EXPECT_STATUS(anon.request("POST", "/api/v1/tokens", json{{"name", "both"}}.dump(),
                             {{"Cookie", "neurod_session=" + b.session}, {"Authorization", "Bearer " + alice.token()}}),
                201);
  // A stale cookie does not stop a login (a public route).
  EXPECT_STATUS(anon.request("POST", "/api/v1/auth/login", json{{"user", "alice"}, {"password", kPassword}}.dump(),
                             cookie_headers(b)),
                200);
  // An expired or revoked cookie is a 401 (log in again), not a CSRF failure.
  auto bad_cookie =
      anon.request("POST", "/api/v1/tokens", body, {{"Cookie", "neurod_session=nd_" + std::string(43, 'A')}});
  EXPECT_STATUS(bad_cookie, 401);

  // whoami gives a reloaded page its token; Bearer callers have none to give.
  auto who = anon.request("GET", "/api/v1/auth/whoami", "", cookie_headers(b));
  REQUIRE_STATUS(who, 200);
  CHECK(who.json()["csrf_token"] == csrf);
  CHECK_FALSE(alice.get("/api/v1/auth/whoami").json().contains("csrf_token"));
  // A token login (no cookie) has no CSRF token either.
  CHECK_FALSE(env.login("alice").json().contains("csrf_token"));

  // Logout is a mutation too; it clears both cookies.
  EXPECT_STATUS(anon.request("POST", "/api/v1/auth/logout", "", cookie_headers(b)), 403);
  auto out = anon.request("POST", "/api/v1/auth/logout", "", cookie_headers(b, {{"X-CSRF-Token", csrf}}));
  REQUIRE_STATUS(out, 204);
  CHECK(cookie_value(set_cookie(out, "neurod_session")) == "");
  CHECK(cookie_value(set_cookie(out, "neurod_csrf")) == "");
  CHECK(set_cookie(out, "neurod_session").find("Max-Age=0") != std::string::npos);
  CHECK(set_cookie(out, "neurod_csrf").find("Max-Age=0") != std::string::npos);
  EXPECT_STATUS(anon.request("GET", "/api/v1/auth/whoami", "", cookie_headers(b)), 401);
  // The other session lives on.
  EXPECT_STATUS(anon.request("GET", "/api/v1/auth/whoami", "", cookie_headers(other)), 200);
}

TEST_CASE_TEMPLATE("csrf: cookie mutations and WebSocket upgrades from another origin are refused", B,
                   NEUROD_DB_BACKENDS) {
  auto env = csrf_env(B::kDialect);
  auto alice = env.user("alice");
  auto b = browser_login(env, "alice");
  auto anon = env.anonymous();
  const std::string self = "http://127.0.0.1:" + std::to_string(env.server().port());
  auto post = [&](const Headers& more) {
    return anon.request("POST", "/api/v1/tokens", json{{"name", "t"}}.dump(), cookie_headers(b, more));
  };

  for (const std::string& origin :
       {std::string("http://evil.example"), "https://127.0.0.1:" + std::to_string(env.server().port() + 1),
        std::string("null"), self + "/path", std::string("http://127.0.0.1")}) {
    CAPTURE(origin);
    auto r = post({{"X-CSRF-Token", b.csrf}, {"Origin", origin}});
    EXPECT_STATUS(r, 403);
    CHECK(code(r) == "origin_mismatch");
  }
  // The same origin passes (a scheme's default port included), and so does no Origin (not a browser).
  EXPECT_STATUS(post({{"X-CSRF-Token", b.csrf}, {"Origin", self}}), 201);
  EXPECT_STATUS(post({{"X-CSRF-Token", b.csrf}, {"Origin", "HTTP://127.0.0.1:" + std::to_string(env.server().port())}}),
                201);
  EXPECT_STATUS(post({{"X-CSRF-Token", b.csrf}}), 201);
  // A right Origin does not replace the token.
  EXPECT_STATUS(post({{"Origin", self}}), 403);
  // Behind a reverse proxy that rewrote Host, X-Forwarded-Host names the public address.
  EXPECT_STATUS(post({{"X-CSRF-Token", b.csrf},
                      {"Origin", "https://console.example.com"},
                      {"X-Forwarded-Host", "console.example.com"}}),
                201);
  EXPECT_STATUS(
      post({{"X-CSRF-Token", b.csrf}, {"Origin", "https://evil.example"}, {"X-Forwarded-Host", "console.example.com"}}),
      403);
  // Reads with the cookie are not checked (the browser keeps their answers from other sites).
  EXPECT_STATUS(anon.request("GET", "/api/v1/auth/whoami", "", cookie_headers(b, {{"Origin", "http://evil.example"}})),
                200);
  // Bearer callers are not browsers' victims: no Origin check.
  EXPECT_STATUS(anon.request("POST", "/api/v1/tokens", json{{"name", "t2"}}.dump(),
                             {{"Authorization", "Bearer " + alice.token()}, {"Origin", "http://evil.example"}}),
                201);

  // WebSocket upgrades carry the cookie and an Origin, never a custom header.
  auto evil = upgrade(env, "/test/ws_private", cookie_headers(b, {{"Origin", "http://evil.example"}}));
  CAPTURE(evil.second);
  CHECK(evil.first == 403);
  CHECK(evil.second.find("origin_mismatch") != std::string::npos);
  CHECK(upgrade(env, "/test/ws_private", cookie_headers(b, {{"Origin", self}})).first == 101);
  CHECK(upgrade(env, "/test/ws_private", cookie_headers(b)).first == 101);
  // The real routes get the same check (the job does not matter: the check comes first).
  auto log_ws = upgrade(env, "/api/v1/jobs/nope/log_ws", cookie_headers(b, {{"Origin", "http://evil.example"}}));
  CHECK(log_ws.first == 403);
  CHECK(upgrade(env, "/api/v1/jobs/nope/log_ws", cookie_headers(b, {{"Origin", self}})).first == 404);
  // Bearer and subprotocol credentials are not checked.
  CHECK(upgrade(env, "/test/ws_private",
                {{"Authorization", "Bearer " + alice.token()}, {"Origin", "http://evil.example"}})
            .first == 101);
  CHECK(upgrade(env, "/test/ws_private",
                {{"Sec-WebSocket-Protocol", "bearer.neurod-" + alice.token()}, {"Origin", "http://evil.example"}})
            .first == 101);
  // Without credentials: 401 as before.
  CHECK(upgrade(env, "/test/ws_private", {{"Origin", "http://evil.example"}}).first == 401);
}

// Shared by the auth http tests: a server with its first admin, users made through the
// API, and short ways to call it. Every auth test runs on both database backends:
//
//   TEST_CASE_TEMPLATE("…", B, NEUROD_DB_BACKENDS) {
//     authtest::Env env(B::kDialect);
//     auto alice = env.user("alice");   // a client logged in as alice
//     auto r = alice.post("/api/v1/tokens", {{"name", "ci"}});
//     EXPECT_STATUS(r, 201);
//   }
#pragma once

#include "support/server/server.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// A status check that shows the body when it fails.
#define EXPECT_STATUS(res, expected) \
  CHECK_MESSAGE((res).status == (expected), "expected " << (expected) << ", got " << (res).status << ": " << (res).body)
#define REQUIRE_STATUS(res, expected)         \
  REQUIRE_MESSAGE((res).status == (expected), \
                  "expected " << (expected) << ", got " << (res).status << ": " << (res).body)

namespace neurod::authtest {

using nlohmann::json;
using Res = http::ClientResponse;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Wall-clock epoch milliseconds, the unit of every time the auth API returns.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline const std::string kPassword = "correct horse battery";  // over the 10-character minimum

// The error code of an error answer ("" when there is none).
inline std::string code(const Res& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) return "";
  return j["error"].value("code", "");
}

inline std::string base64(std::string_view in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

// Percent-encodes a query value (URIs carry ':' and '/').
inline std::string q(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Polls `ok` until it holds or `timeout` passes (TESTING.md: no fixed sleeps).
template <class F>
bool eventually(F&& ok, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (ok()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// One caller: a client with (or without) a token, JSON in and out.
class Api {
 public:
  Api(const test::TestServer& server, std::string token) : token_(std::move(token)), client_(make(server, token_)) {}
  const std::string& token() const { return token_; }
  Res request(std::string_view method, std::string_view path, std::string body = {}, Headers headers = {}) {
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return client_.request(method, path, std::move(body), std::move(headers));
  }
  Res get(std::string_view path) { return request("GET", path); }
  Res del(std::string_view path) { return request("DELETE", path); }
  Res post(std::string_view path, const json& body) { return request("POST", path, body.dump()); }
  Res put(std::string_view path, const json& body) { return request("PUT", path, body.dump()); }
  // POST /users/{name}/permissions/check: 200 when every permission is there.
  Res check(const std::string& principal, const json& permissions) {
    return post("/api/v1/users/" + principal + "/permissions/check", permissions);
  }
  bool allowed(const std::string& principal, const std::string& uri, const std::string& action) {
    auto r = check(principal, json::array({{{"uri", uri}, {"action", action}}}));
    REQUIRE_MESSAGE((r.status == 200 || r.status == 403), r.status << ": " << r.body);
    return r.status == 200;
  }

 private:
  static http::Client make(const test::TestServer& server, const std::string& token) {
    http::ClientOptions o;
    o.token = token;
    return server.client(o);
  }
  std::string token_;
  http::Client client_;
};

// A server with its bootstrap admin and helpers to add users through the API.
class Env {
 public:
  explicit Env(db::Dialect d, std::string auth_yaml = {}, std::string extra_yaml = {})
      : server_(spec(d, std::move(auth_yaml), std::move(extra_yaml))), admin_(server_, server_.admin_token()) {}
  explicit Env(test::ServerSpec s) : server_(std::move(s)), admin_(server_, server_.admin_token()) {}

  test::TestServer& server() { return server_; }
  Api& admin() { return admin_; }
  const std::string& cluster() const { return cluster_; }
  Api anonymous() { return Api(server_, ""); }
  Api as(const std::string& token) { return Api(server_, token); }

  // POST /auth/login; the whole answer.
  Res login(const std::string& user, const std::string& password = kPassword, json extra = json::object()) {
    auto body = extra;
    body["user"] = user;
    body["password"] = password;
    return anonymous().post("/api/v1/auth/login", body);
  }
  // A session token for user (REQUIREs success).
  std::string session(const std::string& user, const std::string& password = kPassword) {
    auto r = login(user, password);
    REQUIRE_STATUS(r, 200);
    return r.json()["token"].get<std::string>();
  }
  // The admin creates `name` with kPassword; returns a client logged in as them.
  Api user(const std::string& name, bool admin = false) {
    auto r = admin_.post("/api/v1/users", {{"name", name}, {"password", kPassword}, {"admin", admin}});
    REQUIRE_STATUS(r, 201);
    return Api(server_, session(name));
  }

  static test::ServerSpec spec(db::Dialect d, std::string auth_yaml, std::string extra_yaml) {
    test::ServerSpec s;
    s.backend = test::backend_of(d);
    s.auth_yaml = std::move(auth_yaml);
    s.extra_yaml = std::move(extra_yaml);
    return s;
  }

 private:
  test::TestServer server_;
  Api admin_;
  std::string cluster_ = "test";
};

}  // namespace neurod::authtest

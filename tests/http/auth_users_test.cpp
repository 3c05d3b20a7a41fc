// Users, passwords and API tokens through HTTP (modules/auth/README.md, "Users" and
// "Tokens and service accounts").
#include "http/auth_helpers.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::json;
using authtest::kPassword;
using authtest::now_ms;

namespace {

bool has_name(const json& list, const std::string& name, const char* key = "name") {
  return std::any_of(list.begin(), list.end(), [&](const json& e) { return e.value(key, "") == name; });
}

}  // namespace

TEST_CASE_TEMPLATE("users: only admins create them - names are checked - duplicates conflict", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");

  auto denied = alice.post("/api/v1/users", {{"name", "bob"}, {"password", kPassword}});
  EXPECT_STATUS(denied, 403);
  EXPECT_STATUS(admin.get("/api/v1/users/bob"), 404);

  auto bob = admin.post("/api/v1/users", {{"name", "bob"}, {"email", "bob@example.org"}});
  REQUIRE_STATUS(bob, 201);
  CHECK(bob.json()["name"] == "bob");
  CHECK(bob.json()["kind"] == "user");
  CHECK(bob.json()["admin"] == false);
  CHECK(bob.json()["email"] == "bob@example.org");
  CHECK(bob.json()["has_password"] == false);
  CHECK_FALSE(bob.body.find("password_hash") != std::string::npos);

  auto again = admin.post("/api/v1/users", {{"name", "bob"}, {"password", kPassword}});
  EXPECT_STATUS(again, 409);
  CHECK(code(again) == "user_exists");

  for (const auto& bad : std::vector<std::string>{"Bob", "1bob", "b b", "", std::string(41, 'b'), "a/b", "-bob", "b.ob",
                                                  "bob:x", "b\xc3\xa9"}) {
    CAPTURE(bad);
    auto r = admin.post("/api/v1/users", {{"name", bad}});
    EXPECT_STATUS(r, 422);
    CHECK(code(r) == "invalid_name");
  }
  EXPECT_STATUS(admin.post("/api/v1/users", {{"name", std::string(40, 'b')}}), 201);  // the longest name
  for (const auto* reserved : {"projects", "cluster", "service-accounts", "neurod", "system"}) {
    CAPTURE(reserved);
    auto r = admin.post("/api/v1/users", {{"name", reserved}});
    EXPECT_STATUS(r, 422);
    CHECK(code(r) == "invalid_name");
  }
  // Users and projects share one namespace.
  REQUIRE_STATUS(admin.post("/api/v1/projects", {{"name", "ml"}}), 201);
  auto taken = admin.post("/api/v1/users", {{"name", "ml"}});
  EXPECT_STATUS(taken, 409);
  CHECK(code(taken) == "name_taken");
  auto project_taken = alice.post("/api/v1/projects", {{"name", "bob"}});
  EXPECT_STATUS(project_taken, 409);

  auto weak = admin.post("/api/v1/users", {{"name", "carol"}, {"password", "short"}});
  EXPECT_STATUS(weak, 422);
  CHECK(code(weak) == "weak_password");
  auto email = admin.post("/api/v1/users", {{"name", "carol"}, {"email", "not-an-address"}});
  EXPECT_STATUS(email, 422);
  CHECK(code(email) == "invalid_email");
  EXPECT_STATUS(admin.post("/api/v1/users", {{"name", "carol"}, {"admin", "yes"}}), 400);
  EXPECT_STATUS(admin.post("/api/v1/users", {{"name", 7}}), 400);
  EXPECT_STATUS(admin.get("/api/v1/users/carol"), 404);  // none of those made her

  // Listing and reading.
  auto users = admin.get("/api/v1/users?kind=user");
  REQUIRE_STATUS(users, 200);
  CHECK(has_name(users.json(), "alice"));
  CHECK(has_name(users.json(), "bob"));
  CHECK_FALSE(has_name(users.json(), "cluster/admin"));
  CHECK(has_name(admin.get("/api/v1/users?kind=role").json(), "cluster/admin"));
  EXPECT_STATUS(admin.get("/api/v1/users?kind=wizard"), 400);
  EXPECT_STATUS(alice.get("/api/v1/users"), 403);
  auto self = alice.get("/api/v1/users/alice");
  REQUIRE_STATUS(self, 200);
  CHECK(self.json()["has_password"] == true);
  EXPECT_STATUS(alice.get("/api/v1/users/bob"), 403);

  // admin: true makes an administrator.
  REQUIRE_STATUS(admin.post("/api/v1/users", {{"name", "root2"}, {"password", kPassword}, {"admin", true}}), 201);
  auto root2 = env.as(env.session("root2"));
  CHECK(root2.get("/api/v1/auth/whoami").json()["admin"] == true);
  EXPECT_STATUS(root2.get("/api/v1/users"), 200);
}

TEST_CASE_TEMPLATE("deleting a user removes their tokens, service accounts, roles, grants and personal project", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto api = bob.post("/api/v1/tokens", {{"name", "ci"}});
  REQUIRE_STATUS(api, 201);
  auto bob_api = env.as(api.json()["token"].get<std::string>());
  auto sa = bob.post("/api/v1/service-accounts", {{"name", "ci"}});
  REQUIRE_STATUS(sa, 201);
  auto bob_sa = env.as(sa.json()["token"].get<std::string>());
  REQUIRE_STATUS(bob.post("/api/v1/roles", {{"name", "bob/roles/friends"}}), 201);
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", {{"uri", "storage:data"}, {"action", "read"}}), 201);
  REQUIRE_STATUS(bob_sa.get("/api/v1/auth/whoami"), 200);

  EXPECT_STATUS(alice.del("/api/v1/users/bob"), 403);
  EXPECT_STATUS(bob.get("/api/v1/auth/whoami"), 200);

  EXPECT_STATUS(admin.del("/api/v1/users/bob"), 204);
  for (auto* c : {&bob, &bob_api, &bob_sa}) {
    auto r = c->get("/api/v1/auth/whoami");
    EXPECT_STATUS(r, 401);
    CHECK(code(r) == "invalid_token");
  }
  EXPECT_STATUS(admin.get("/api/v1/users/bob"), 404);
  EXPECT_STATUS(admin.get("/api/v1/users/bob:service-accounts:ci"), 404);
  EXPECT_STATUS(admin.get("/api/v1/projects/bob"), 404);
  auto roles = admin.get("/api/v1/users?kind=role").json();
  CHECK_FALSE(has_name(roles, "bob/roles/friends"));
  CHECK_FALSE(has_name(roles, "projects/bob/admin"));
  CHECK_FALSE(has_name(admin.get("/api/v1/projects?all=true").json(), "bob"));
  CHECK(alice.get("/api/v1/users/alice/permissions/shared").json() == json::array());
  EXPECT_STATUS(admin.del("/api/v1/users/bob"), 404);

  // A new bob is a new user: nothing of the old one's comes back.
  REQUIRE_STATUS(admin.post("/api/v1/users", {{"name", "bob"}, {"password", kPassword}}), 201);
  auto bob2 = env.as(env.session("bob"));
  CHECK_FALSE(bob2.allowed("bob", "storage://test/alice/data", "read"));
  CHECK(bob2.get("/api/v1/tokens").json().size() == 1);  // just this session
  CHECK(bob2.get("/api/v1/service-accounts").json() == json::array());
}

TEST_CASE_TEMPLATE("the last administrator cannot be deleted or demoted", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto r = admin.del("/api/v1/users/admin");
  EXPECT_STATUS(r, 409);
  CHECK(code(r) == "last_admin");
  auto demote = admin.del("/api/v1/users/admin/permissions?uri=" + authtest::q("role://cluster/admin"));
  EXPECT_STATUS(demote, 409);
  CHECK(code(demote) == "last_admin");
  CHECK(admin.get("/api/v1/auth/whoami").json()["admin"] == true);

  // With a second admin the first may go; then the second is the last.
  REQUIRE_STATUS(admin.post("/api/v1/users", {{"name", "root2"}, {"password", kPassword}, {"admin", true}}), 201);
  auto root2 = env.as(env.session("root2"));
  EXPECT_STATUS(root2.del("/api/v1/users/admin"), 204);
  EXPECT_STATUS(admin.get("/api/v1/auth/whoami"), 401);
  auto last = root2.del("/api/v1/users/root2");
  EXPECT_STATUS(last, 409);
  CHECK(code(last) == "last_admin");
  EXPECT_STATUS(root2.get("/api/v1/users"), 200);
}

TEST_CASE_TEMPLATE("passwords: self needs the current one, admins do not - other sessions end", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto other = env.as(env.session("alice"));
  auto api = alice.post("/api/v1/tokens", {{"name", "ci"}});
  REQUIRE_STATUS(api, 201);
  auto alice_api = env.as(api.json()["token"].get<std::string>());
  auto bob = env.user("bob");
  const std::string next = "a brand new passphrase";

  auto missing = alice.put("/api/v1/users/alice/password", {{"password", next}});
  EXPECT_STATUS(missing, 422);
  CHECK(code(missing) == "current_password_required");
  auto wrong = alice.put("/api/v1/users/alice/password", {{"password", next}, {"current_password", "not it at all"}});
  EXPECT_STATUS(wrong, 403);
  CHECK(code(wrong) == "invalid_credentials");
  auto weak = alice.put("/api/v1/users/alice/password", {{"password", "short"}, {"current_password", kPassword}});
  EXPECT_STATUS(weak, 422);
  CHECK(code(weak) == "weak_password");
  EXPECT_STATUS(alice.put("/api/v1/users/alice/password", {{"current_password", kPassword}}), 400);
  EXPECT_STATUS(bob.put("/api/v1/users/alice/password", {{"password", next}, {"current_password", kPassword}}), 403);
  EXPECT_STATUS(other.get("/api/v1/auth/whoami"), 200);  // none of that changed anything

  EXPECT_STATUS(alice.put("/api/v1/users/alice/password", {{"password", next}, {"current_password", kPassword}}), 204);
  EXPECT_STATUS(alice.get("/api/v1/auth/whoami"), 200);      // the caller's own session stays
  EXPECT_STATUS(other.get("/api/v1/auth/whoami"), 401);      // sessions opened with the old password end
  EXPECT_STATUS(alice_api.get("/api/v1/auth/whoami"), 200);  // API tokens are not sessions
  EXPECT_STATUS(env.login("alice", kPassword), 401);
  EXPECT_STATUS(env.login("alice", next), 200);

  // An admin sets it without the current one; all of alice's sessions end.
  EXPECT_STATUS(admin.put("/api/v1/users/alice/password", {{"password", "set by the admin"}}), 204);
  EXPECT_STATUS(alice.get("/api/v1/auth/whoami"), 401);
  EXPECT_STATUS(env.login("alice", next), 401);
  EXPECT_STATUS(env.login("alice", "set by the admin"), 200);
  EXPECT_STATUS(admin.get("/api/v1/auth/whoami"), 200);
  EXPECT_STATUS(admin.put("/api/v1/users/nobody/password", {{"password", "set by the admin"}}), 404);
}

TEST_CASE_TEMPLATE("tokens: created once, listed without values, revoked on the very next request", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");

  auto made = alice.post("/api/v1/tokens", {{"name", "ci"}, {"expires_in", "1h"}});
  REQUIRE_STATUS(made, 201);
  auto t = made.json();
  CHECK(t["name"] == "ci");
  CHECK(t["kind"] == "api");
  CHECK(t["token"].get<std::string>().starts_with("nd_"));
  CHECK(std::llabs(t["expires_at"].get<std::int64_t>() - (now_ms() + 3600000)) < 60000);
  const std::string value = t["token"];
  const std::string id = t["id"];
  auto ci = env.as(value);
  auto who = ci.get("/api/v1/auth/whoami");
  REQUIRE_STATUS(who, 200);
  CHECK(who.json()["name"] == "alice");
  CHECK(who.json()["token"]["id"] == id);
  CHECK(who.json()["token"]["kind"] == "api");

  auto defaults = alice.post("/api/v1/tokens", json::object());
  REQUIRE_STATUS(defaults, 201);
  CHECK(std::llabs(defaults.json()["expires_at"].get<std::int64_t>() - (now_ms() + 90 * 24 * 3600000LL)) < 60000);

  auto list = alice.get("/api/v1/tokens");
  REQUIRE_STATUS(list, 200);
  CHECK(list.json().size() == 3);  // the session and the two API tokens
  CHECK(has_name(list.json(), id, "id"));
  for (const auto& e : list.json()) CHECK_FALSE(e.contains("token"));
  CHECK(list.body.find(value) == std::string::npos);
  CHECK(list.body.find(alice.token()) == std::string::npos);
  CHECK(bob.get("/api/v1/tokens").json().size() == 1);
  EXPECT_STATUS(bob.get("/api/v1/tokens?user=alice"), 403);
  auto by_admin = admin.get("/api/v1/tokens?user=alice");
  REQUIRE_STATUS(by_admin, 200);
  CHECK(by_admin.json().size() == 3);

  // Somebody else's token id is not found, and stays valid.
  auto foreign = bob.del("/api/v1/tokens/" + id);
  EXPECT_STATUS(foreign, 404);
  CHECK(code(foreign) == "token_not_found");
  EXPECT_STATUS(ci.get("/api/v1/auth/whoami"), 200);

  EXPECT_STATUS(alice.del("/api/v1/tokens/" + id), 204);
  auto revoked = ci.get("/api/v1/auth/whoami");
  EXPECT_STATUS(revoked, 401);
  CHECK(code(revoked) == "invalid_token");
  EXPECT_STATUS(alice.del("/api/v1/tokens/" + id), 404);
  EXPECT_STATUS(alice.del("/api/v1/tokens/tok_doesnotexist"), 404);
  CHECK_FALSE(has_name(alice.get("/api/v1/tokens").json(), id, "id"));

  // An admin revokes anyone's.
  EXPECT_STATUS(admin.del("/api/v1/tokens/" + defaults.json()["id"].get<std::string>()), 204);
  EXPECT_STATUS(env.as(defaults.json()["token"].get<std::string>()).get("/api/v1/auth/whoami"), 401);

  // Lifetimes are positive and bounded; names are short.
  for (const auto* bad : {"0s", "-1h", "forever", "400d"}) {
    CAPTURE(bad);
    EXPECT_STATUS(alice.post("/api/v1/tokens", {{"name", "x"}, {"expires_in", bad}}), 422);
  }
  EXPECT_STATUS(alice.post("/api/v1/tokens", {{"name", std::string(101, 'n')}}), 422);
  EXPECT_STATUS(alice.post("/api/v1/tokens", {{"name", 5}}), 400);
  CHECK(alice.get("/api/v1/tokens").json().size() == 1);  // none of those made a token
}

TEST_CASE_TEMPLATE("an expired token is refused", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto made = alice.post("/api/v1/tokens", {{"name", "brief"}, {"expires_in", "2s"}});
  REQUIRE_STATUS(made, 201);
  auto brief = env.as(made.json()["token"].get<std::string>());
  EXPECT_STATUS(brief.get("/api/v1/auth/whoami"), 200);
  CHECK(authtest::eventually([&] { return brief.get("/api/v1/auth/whoami").status == 401; }, std::chrono::seconds(6)));
  auto r = brief.get("/api/v1/auth/whoami");
  CHECK(code(r) == "invalid_token");
  CHECK(made.json()["expires_at"].get<std::int64_t>() <= now_ms());
}

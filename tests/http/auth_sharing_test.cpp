// Sharing between users, roles, projects and service accounts through HTTP
// (modules/auth/README.md, "Concepts", "Permissions", "Roles", "Projects").
#include "http/auth_helpers.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::json;
using authtest::kPassword;
using authtest::q;

namespace {

json grant(const std::string& uri, const std::string& action) { return {{"uri", uri}, {"action", action}}; }

bool contains(const json& list, const json& entry) { return std::find(list.begin(), list.end(), entry) != list.end(); }

}  // namespace

TEST_CASE_TEMPLATE("sharing: alice grants bob read on a relative URI - checks, tree, shared and revoke follow", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  env.user("carol");
  const std::string x = "storage://test/alice/data/x";

  CHECK_FALSE(bob.allowed("bob", x, "read"));
  auto granted = alice.post("/api/v1/users/bob/permissions", json::array({grant("storage:data/x", "read")}));
  REQUIRE_STATUS(granted, 201);
  CHECK(contains(granted.json(), grant(x, "read")));  // resolved under alice's personal project

  CHECK(bob.allowed("bob", x, "read"));
  CHECK(bob.allowed("bob", x + "/deeper/file.bin", "read"));
  CHECK_FALSE(bob.allowed("bob", x, "write"));
  CHECK_FALSE(bob.allowed("bob", "storage://test/alice/data/y", "read"));
  CHECK(bob.allowed("bob", "storage://test/alice/data", "list"));        // ancestors are listable…
  CHECK_FALSE(bob.allowed("bob", "storage://test/alice/data", "read"));  // …not readable

  // A 403 from check names what is missing; an any-of list passes when one alternative does.
  auto miss = bob.check("bob", json::array({grant(x, "read"), grant(x, "write")}));
  EXPECT_STATUS(miss, 403);
  CHECK(miss.json()["error"]["missing"] == json::array({grant(x, "write")}));
  EXPECT_STATUS(bob.check("bob", json::array({json::array({grant(x, "write"), grant(x, "read")})})), 200);

  auto tree = bob.get("/api/v1/users/bob/permissions/tree?uri=" + q("storage://test/alice"));
  REQUIRE_STATUS(tree, 200);
  auto t = tree.json();
  CHECK(t["uri"] == "storage://test/alice");
  CHECK(t["action"] == "list");
  CHECK(t["children"]["data"]["action"] == "list");
  CHECK(t["children"]["data"]["children"]["x"]["action"] == "read");
  auto whole = bob.get("/api/v1/users/bob/permissions/tree").json();
  CHECK(whole["storage"]["children"]["test"]["action"] == "list");
  EXPECT_STATUS(bob.get("/api/v1/users/bob/permissions/tree?depth=deep"), 400);
  EXPECT_STATUS(bob.get("/api/v1/users/alice/permissions/tree"), 403);

  // bob cannot pass on what he does not manage.
  auto reshare = bob.post("/api/v1/users/carol/permissions", json::array({grant(x, "read")}));
  EXPECT_STATUS(reshare, 403);
  CHECK(reshare.json()["error"]["missing"] == json::array({grant(x, "manage")}));
  auto escalate = bob.post("/api/v1/users/bob/permissions", json::array({grant(x, "write")}));
  EXPECT_STATUS(escalate, 403);

  // What alice shared, seen from both sides.
  auto shared = alice.get("/api/v1/users/alice/permissions/shared");
  REQUIRE_STATUS(shared, 200);
  CHECK(contains(shared.json(), json{{"user", "bob"}, {"uri", x}, {"action", "read"}}));
  EXPECT_STATUS(bob.get("/api/v1/users/alice/permissions/shared"), 403);
  auto bobs = bob.get("/api/v1/users/bob/permissions");
  REQUIRE_STATUS(bobs, 200);
  CHECK(contains(bobs.json(), grant(x, "read")));
  CHECK(bobs.json().size() == 2);  // that and his own personal project's admin role

  // A grant is an upsert: the new action replaces the old.
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:data/x", "write")), 201);
  CHECK(bob.allowed("bob", x, "write"));

  // Revocation takes effect on the next request; a second revoke has no effect.
  EXPECT_STATUS(bob.del("/api/v1/users/carol/permissions?uri=" + q(x)), 403);
  EXPECT_STATUS(alice.del("/api/v1/users/bob/permissions?uri=" + q("storage:data/x")), 204);
  CHECK_FALSE(bob.allowed("bob", x, "read"));
  auto again = alice.del("/api/v1/users/bob/permissions?uri=" + q("storage:data/x"));
  EXPECT_STATUS(again, 400);
  CHECK(code(again) == "no_effect");
  CHECK(alice.get("/api/v1/users/alice/permissions/shared").json() == json::array());
  EXPECT_STATUS(alice.del("/api/v1/users/bob/permissions"), 400);  // which one?

  // Anyone may drop a grant of their own.
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:data/x", "read")), 201);
  EXPECT_STATUS(bob.del("/api/v1/users/bob/permissions?uri=" + q(x)), 204);
  CHECK_FALSE(bob.allowed("bob", x, "read"));

  // Grants to principals that do not exist.
  EXPECT_STATUS(alice.post("/api/v1/users/nobody/permissions", grant("storage:data", "read")), 404);
}

TEST_CASE_TEMPLATE("deny overrides what a role grants", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  REQUIRE_STATUS(alice.post("/api/v1/roles", {{"name", "alice/roles/team"}}), 201);
  REQUIRE_STATUS(alice.post("/api/v1/users/alice:roles:team/permissions", grant("storage:data", "read")), 201);
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("role://alice/roles/team", "read")), 201);
  CHECK(bob.allowed("bob", "storage://test/alice/data/secret/plans", "read"));

  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("storage:data/secret", "deny")), 201);
  CHECK_FALSE(bob.allowed("bob", "storage://test/alice/data/secret", "read"));
  CHECK_FALSE(bob.allowed("bob", "storage://test/alice/data/secret/plans", "list"));
  CHECK(bob.allowed("bob", "storage://test/alice/data/public", "read"));
  auto tree = bob.get("/api/v1/users/bob/permissions/tree?uri=" + q("storage://test/alice/data")).json();
  CHECK(tree["action"] == "read");
  CHECK_FALSE(tree["children"].contains("secret"));
}

TEST_CASE_TEMPLATE("roles: a user's own roles carry grants to their holders - deleting one takes them away", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  const std::string data = "storage://test/alice/data";

  auto made = alice.post("/api/v1/roles", {{"name", "alice/roles/team"}});
  REQUIRE_STATUS(made, 201);
  CHECK(made.json()["name"] == "alice/roles/team");
  CHECK(made.json()["kind"] == "role");
  auto dup = alice.post("/api/v1/roles", {{"name", "alice/roles/team"}});
  EXPECT_STATUS(dup, 409);
  CHECK(code(dup) == "role_exists");
  for (const auto* bad : {"team", "alice/roles/Team", "alice//x", "alice/roles/", "/alice/roles/x"}) {
    CAPTURE(bad);
    auto r = alice.post("/api/v1/roles", {{"name", bad}});
    EXPECT_STATUS(r, 422);
    CHECK(code(r) == "invalid_name");
  }
  auto foreign = bob.post("/api/v1/roles", {{"name", "alice/roles/bobs"}});
  EXPECT_STATUS(foreign, 403);
  CHECK(code(foreign) == "not_yours");
  EXPECT_STATUS(bob.post("/api/v1/roles", {{"name", "bob/roles/mine"}}), 201);

  REQUIRE_STATUS(alice.post("/api/v1/users/alice:roles:team/permissions", grant("storage:data", "read")), 201);
  CHECK_FALSE(bob.allowed("bob", data, "read"));
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", grant("role://alice/roles/team", "read")), 201);
  CHECK(bob.allowed("bob", data + "/f", "read"));
  auto expanded = bob.get("/api/v1/users/bob/permissions?expand_roles=true").json();
  CHECK(contains(expanded, json{{"uri", data}, {"action", "read"}, {"via", "alice/roles/team"}}));
  auto whoami = bob.get("/api/v1/auth/whoami").json();
  CHECK(contains(whoami["roles"], "alice/roles/team"));

  // A role's manager holds it too (manage is more than read on role://NAME).
  auto roles = bob.get("/api/v1/roles").json();
  CHECK(contains(roles, json{{"name", "alice/roles/team"}, {"holds", true}, {"manages", false}, {"builtin", false}}));
  CHECK(contains(roles, json{{"name", "bob/roles/mine"}, {"holds", true}, {"manages", true}, {"builtin", false}}));
  CHECK(contains(alice.get("/api/v1/roles").json(),
                 json{{"name", "alice/roles/team"}, {"holds", true}, {"manages", true}, {"builtin", false}}));
  // Holding a role is not managing it: bob can neither pass alice's data on through it,
  // nor see its grants, nor delete it.
  auto through = bob.post("/api/v1/users/alice:roles:team/permissions", grant(data, "write"));
  EXPECT_STATUS(through, 403);
  CHECK(through.json()["error"]["missing"] == json::array({grant(data, "manage")}));
  EXPECT_STATUS(bob.get("/api/v1/users/alice:roles:team/permissions"), 403);
  EXPECT_STATUS(alice.get("/api/v1/users/alice:roles:team/permissions"), 200);
  EXPECT_STATUS(bob.del("/api/v1/roles/alice:roles:team"), 403);
  auto builtin = alice.del("/api/v1/roles/projects:alice:admin");
  EXPECT_STATUS(builtin, 422);
  CHECK(code(builtin) == "builtin_role");

  EXPECT_STATUS(alice.del("/api/v1/roles/alice:roles:team"), 204);
  CHECK_FALSE(bob.allowed("bob", data + "/f", "read"));
  CHECK_FALSE(contains(bob.get("/api/v1/auth/whoami").json()["roles"], "alice/roles/team"));
  EXPECT_STATUS(alice.del("/api/v1/roles/alice:roles:team"), 404);
}

TEST_CASE_TEMPLATE("projects: the creator is admin - members get their role's access - who may add whom", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto carol = env.user("carol");
  auto dave = env.user("dave");
  env.user("erin");

  auto made = alice.post("/api/v1/projects", {{"name", "ml"}});
  REQUIRE_STATUS(made, 201);
  CHECK(made.json()["name"] == "ml");
  CHECK(made.json()["role"] == "admin");
  CHECK(made.json()["personal"] == false);
  EXPECT_STATUS(bob.post("/api/v1/projects", {{"name", "ml"}}), 409);
  auto bad = alice.post("/api/v1/projects", {{"name", "ML!"}});
  EXPECT_STATUS(bad, 422);
  CHECK(code(bad) == "invalid_name");
  auto got = alice.get("/api/v1/projects/ml");
  REQUIRE_STATUS(got, 200);
  CHECK(got.json()["members"] == json::array({{{"user", "alice"}, {"role", "admin"}}}));
  auto mine = alice.get("/api/v1/projects").json();
  CHECK(mine.size() == 2);  // personal and ml
  CHECK(alice.allowed("alice", "job://test/ml", "manage"));

  // Non-members learn nothing.
  auto hidden = bob.get("/api/v1/projects/ml");
  EXPECT_STATUS(hidden, 404);
  CHECK(code(hidden) == "project_not_found");
  EXPECT_STATUS(bob.get("/api/v1/projects/ml/members"), 404);
  auto nope = bob.get("/api/v1/projects/nope");  // the same answer as for a project that does not exist
  EXPECT_STATUS(nope, 404);
  CHECK(code(nope) == code(hidden));
  EXPECT_STATUS(admin.get("/api/v1/projects/ml"), 200);

  // A writer gets write on every resource of the project, read on the project itself.
  auto added = alice.put("/api/v1/projects/ml/members/bob", {{"role", "writer"}});
  REQUIRE_STATUS(added, 200);
  CHECK(added.json() == json{{"user", "bob"}, {"role", "writer"}});
  CHECK(bob.allowed("bob", "job://test/ml", "write"));
  CHECK(bob.allowed("bob", "storage://test/ml/data", "write"));
  CHECK(bob.allowed("bob", "project://test/ml", "read"));
  CHECK_FALSE(bob.allowed("bob", "job://test/ml", "manage"));
  CHECK_FALSE(bob.allowed("bob", "project://test/ml", "write"));
  EXPECT_STATUS(bob.get("/api/v1/projects/ml"), 200);
  auto bobs = bob.get("/api/v1/projects").json();
  REQUIRE(bobs.size() == 2);
  auto ml = bobs[0]["name"] == "ml" ? bobs[0] : bobs[1];
  CHECK(ml["name"] == "ml");
  CHECK(ml["role"] == "writer");
  CHECK(ml["personal"] == false);
  CHECK(ml["created_by"] == "alice");

  // A writer cannot add members or raise himself; outsiders cannot add themselves.
  EXPECT_STATUS(bob.put("/api/v1/projects/ml/members/carol", {{"role", "reader"}}), 403);
  EXPECT_STATUS(bob.put("/api/v1/projects/ml/members/bob", {{"role", "manager"}}), 403);
  auto self_add = carol.put("/api/v1/projects/ml/members/carol", {{"role", "reader"}});
  CHECK_MESSAGE((self_add.status == 403 || self_add.status == 404), self_add.status << ": " << self_add.body);
  CHECK_FALSE(carol.allowed("carol", "job://test/ml", "read"));
  EXPECT_STATUS(alice.put("/api/v1/projects/ml/members/bob", {{"role", "owner"}}), 422);
  EXPECT_STATUS(alice.put("/api/v1/projects/ml/members/nobody", {{"role", "reader"}}), 404);

  // A manager may add readers, writers and managers, not admins.
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/dave", {{"role", "manager"}}), 200);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/erin", {{"role", "reader"}}), 200);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/erin", {{"role", "writer"}}), 200);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/carol", {{"role", "manager"}}), 200);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/erin", {{"role", "admin"}}), 403);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/dave", {{"role", "admin"}}), 403);
  EXPECT_STATUS(dave.put("/api/v1/projects/ml/members/alice", {{"role", "reader"}}), 403);  // demoting the admin
  auto members = alice.get("/api/v1/projects/ml/members").json();
  CHECK(members == json::array({{{"user", "alice"}, {"role", "admin"}},
                                {{"user", "bob"}, {"role", "writer"}},
                                {{"user", "carol"}, {"role", "manager"}},
                                {{"user", "dave"}, {"role", "manager"}},
                                {{"user", "erin"}, {"role", "writer"}}}));
  // A manager removes a writer; a member may leave; a writer cannot remove others.
  EXPECT_STATUS(bob.del("/api/v1/projects/ml/members/erin"), 403);
  EXPECT_STATUS(dave.del("/api/v1/projects/ml/members/erin"), 204);
  CHECK_FALSE(authtest::Api(env.server(), env.session("erin")).allowed("erin", "job://test/ml", "read"));
  EXPECT_STATUS(carol.del("/api/v1/projects/ml/members/carol"), 204);
  EXPECT_STATUS(dave.del("/api/v1/projects/ml/members/carol"), 404);  // not a member any more

  // The last admin cannot leave or be demoted; with a second one, they can.
  auto last = alice.del("/api/v1/projects/ml/members/alice");
  EXPECT_STATUS(last, 409);
  CHECK(code(last) == "last_admin");
  EXPECT_STATUS(alice.put("/api/v1/projects/ml/members/alice", {{"role", "writer"}}), 409);
  // Nor drop the admin role through the ACL, by revoking their own grant.
  auto self_revoke = alice.del("/api/v1/users/alice/permissions?uri=role://projects/ml/admin");
  EXPECT_STATUS(self_revoke, 409);
  CHECK(code(self_revoke) == "last_admin");
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/dave", {{"role", "admin"}}), 200);
  EXPECT_STATUS(alice.del("/api/v1/projects/ml/members/alice"), 204);
  EXPECT_STATUS(alice.get("/api/v1/projects/ml"), 404);

  // Only a project admin deletes it; then every member's access is gone.
  EXPECT_STATUS(bob.del("/api/v1/projects/ml"), 403);
  EXPECT_STATUS(dave.del("/api/v1/projects/ml"), 204);
  CHECK_FALSE(bob.allowed("bob", "job://test/ml", "write"));
  CHECK_FALSE(dave.allowed("dave", "job://test/ml", "read"));
  EXPECT_STATUS(dave.get("/api/v1/projects/ml"), 404);
  EXPECT_STATUS(admin.get("/api/v1/projects/ml"), 404);
  CHECK(bob.get("/api/v1/projects").json().size() == 1);
  // A personal project goes only with its user.
  auto personal = alice.del("/api/v1/projects/alice");
  EXPECT_STATUS(personal, 422);
  CHECK(code(personal) == "personal_project");
  // The name is free again.
  EXPECT_STATUS(bob.post("/api/v1/projects", {{"name", "ml"}}), 201);
  CHECK_FALSE(dave.allowed("dave", "job://test/ml", "read"));
}

TEST_CASE_TEMPLATE("projects: users_create_projects: false leaves project creation to admins", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, "users_create_projects: false\n");
  auto alice = env.user("alice");
  EXPECT_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 403);
  EXPECT_STATUS(env.admin().post("/api/v1/projects", {{"name", "ml"}}), 201);
}

TEST_CASE_TEMPLATE("service accounts: a token once, its own identity, grants from the owner, gone when deleted", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto& admin = env.admin();
  auto alice = env.user("alice");
  auto bob = env.user("bob");

  auto made = alice.post("/api/v1/service-accounts", {{"name", "ci"}, {"expires_in", "30d"}});
  REQUIRE_STATUS(made, 201);
  auto m = made.json();
  CHECK(m["name"] == "alice/service-accounts/ci");
  CHECK(m["owner"] == "alice");
  CHECK(m["kind"] == "service");
  CHECK(m["token"].get<std::string>().starts_with("nd_"));
  CHECK(m["token_id"].is_string());
  auto ci = env.as(m["token"].get<std::string>());
  EXPECT_STATUS(alice.post("/api/v1/service-accounts", {{"name", "ci"}}), 409);
  EXPECT_STATUS(alice.post("/api/v1/service-accounts", {{"name", "C I"}}), 422);

  auto who = ci.get("/api/v1/auth/whoami");
  REQUIRE_STATUS(who, 200);
  CHECK(who.json()["name"] == "alice/service-accounts/ci");
  CHECK(who.json()["kind"] == "service");
  CHECK(who.json()["admin"] == false);
  CHECK(who.json()["token"]["kind"] == "service");

  // Listed for its owner (and admins), not for others; the value is never listed.
  auto list = alice.get("/api/v1/service-accounts");
  REQUIRE_STATUS(list, 200);
  CHECK(list.json().size() == 1);
  CHECK(list.json()[0]["name"] == "alice/service-accounts/ci");
  CHECK(list.body.find(m["token"].get<std::string>()) == std::string::npos);
  CHECK(bob.get("/api/v1/service-accounts").json() == json::array());
  CHECK(admin.get("/api/v1/service-accounts").json().size() == 1);
  auto tokens = alice.get("/api/v1/tokens?user=alice:service-accounts:ci");
  REQUIRE_STATUS(tokens, 200);
  CHECK(tokens.json().size() == 1);
  CHECK(tokens.json()[0]["kind"] == "service");
  CHECK(alice.get("/api/v1/tokens").json().size() == 1);  // her own: the session only

  // It has nothing until the owner shares; relative URIs resolve under the owner's project.
  CHECK_FALSE(ci.allowed("alice:service-accounts:ci", "storage://test/alice/data", "read"));
  REQUIRE_STATUS(alice.post("/api/v1/users/alice:service-accounts:ci/permissions", grant("storage:data", "read")), 201);
  CHECK(ci.allowed("alice:service-accounts:ci", "storage://test/alice/data/f", "read"));
  CHECK_FALSE(ci.allowed("alice:service-accounts:ci", "storage://test/alice/data/f", "write"));
  auto rel = ci.check("alice:service-accounts:ci", json::array({grant("storage:data/f", "read")}));
  EXPECT_STATUS(rel, 200);
  // It cannot make more of itself, nor projects; bob cannot touch it.
  EXPECT_STATUS(ci.post("/api/v1/service-accounts", {{"name", "child"}}), 403);
  EXPECT_STATUS(ci.post("/api/v1/projects", {{"name", "botproj"}}), 403);
  EXPECT_STATUS(bob.post("/api/v1/service-accounts/alice:service-accounts:ci/tokens", json::object()), 403);
  EXPECT_STATUS(bob.del("/api/v1/service-accounts/alice:service-accounts:ci"), 404);
  // bob may share his own things with anyone, alice's robot included, but not look at it.
  EXPECT_STATUS(bob.post("/api/v1/users/alice:service-accounts:ci/permissions", grant("storage:data", "read")), 201);
  EXPECT_STATUS(bob.get("/api/v1/users/alice:service-accounts:ci/permissions"), 403);

  // Another token by the short name.
  auto second = alice.post("/api/v1/service-accounts/ci/tokens", {{"name", "deploy"}});
  REQUIRE_STATUS(second, 201);
  CHECK(second.json()["kind"] == "service");
  auto deploy = env.as(second.json()["token"].get<std::string>());
  CHECK(deploy.get("/api/v1/auth/whoami").json()["name"] == "alice/service-accounts/ci");

  EXPECT_STATUS(alice.del("/api/v1/service-accounts/ci"), 204);
  EXPECT_STATUS(ci.get("/api/v1/auth/whoami"), 401);
  EXPECT_STATUS(deploy.get("/api/v1/auth/whoami"), 401);
  CHECK(alice.get("/api/v1/service-accounts").json() == json::array());
  EXPECT_STATUS(alice.del("/api/v1/service-accounts/ci"), 404);
  // A new one with the same name starts from nothing.
  auto again = alice.post("/api/v1/service-accounts", {{"name", "ci"}});
  REQUIRE_STATUS(again, 201);
  CHECK_FALSE(env.as(again.json()["token"].get<std::string>())
                  .allowed("alice:service-accounts:ci", "storage://test/alice/data/f", "read"));
}

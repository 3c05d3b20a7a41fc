#include "modules/auth/permissions.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace neurod::auth;
using neurod::errc;
using nlohmann::json;

namespace {

// "principal uri action" lines, the way every table below writes its grants.
GrantSet make_set(const std::vector<std::string>& lines) {
  std::map<std::string, GrantSet::Grants> by;
  for (const auto& line : lines) {
    std::istringstream in(line);
    std::string principal, uri, action;
    in >> principal >> uri >> action;
    REQUIRE_MESSAGE(!action.empty(), "bad grant line: " << line);
    by[principal].push_back({uri, action_from(action)});
  }
  GrantSet::Map m;
  for (auto& [p, g] : by) m[p] = std::make_shared<const GrantSet::Grants>(std::move(g));
  return GrantSet(std::move(m));
}

struct Row {
  const char* what;
  std::vector<std::string> grants;
  std::string uri;
  std::string action;
  bool allowed;
  std::string principal = "alice";
};

void run_table(const std::vector<Row>& rows) {
  for (const auto& r : rows) {
    auto set = make_set(r.grants);
    bool got = set.tree_of(r.principal)->allows(r.uri, action_from(r.action));
    CHECK_MESSAGE(got == r.allowed, r.what << ": " << r.principal << " " << r.action << " " << r.uri << " expected "
                                           << (r.allowed ? "allowed" : "refused"));
  }
}

void check_invalid_uri(std::string_view text, std::string_view needle, const UriContext* ctx = nullptr) {
  try {
    auto u = Uri::parse(text, ctx);
    FAIL_CHECK("accepted '" << std::string(text).substr(0, 60) << "' as " << u.str().substr(0, 60));
  } catch (const neurod::Error& e) {
    CHECK(e.code() == errc::bad_request);
    CHECK(e.code_name() == "invalid_uri");
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos,
                  "message '" << e.what() << "' lacks '" << needle << "'");
  }
}

Requirement req(std::vector<std::pair<std::string, Action>> alternatives) {
  Requirement r;
  for (auto& [u, a] : alternatives) r.push_back({u, a});
  return r;
}

}  // namespace

TEST_CASE("permissions: subtree coverage") {
  const std::vector<std::string> own{"alice storage://c/alice read"};
  run_table({
      {"grant on the node itself", own, "storage://c/alice", "read", true},
      {"grant covers a child", own, "storage://c/alice/data", "read", true},
      {"grant covers a deep descendant", own, "storage://c/alice/a/b/c/d/e", "read", true},
      {"no more than granted", own, "storage://c/alice/data", "write", false},
      {"sibling not covered", own, "storage://c/bob", "read", false},
      {"segment prefix is not a subtree", own, "storage://c/alicex", "read", false},
      {"ancestor not readable", own, "storage://c", "read", false},
      {"other scheme not covered", own, "job://c/alice", "read", false},
      {"nothing granted", {}, "storage://c/alice", "list", false},
      {"other principal's grants", own, "storage://c/alice", "read", false, "bob"},
      {"scheme root covers everything", {"alice storage:// manage"}, "storage://c/x/y", "manage", true},
      {"scheme root covers its root", {"alice storage:// manage"}, "storage://", "manage", true},
      {"scheme root stays in its scheme", {"alice storage:// manage"}, "job://c", "list", false},
      {"deeper grant does not lift the parent",
       {"alice storage://c/alice/data read"},
       "storage://c/alice",
       "read",
       false},
      {"max of the grants on the path",
       {"alice storage://c/p read", "alice storage://c/p/x write"},
       "storage://c/p/x/y",
       "write",
       true},
      {"a lower grant below does not lower",
       {"alice storage://c/p manage", "alice storage://c/p/x list"},
       "storage://c/p/x/y",
       "manage",
       true},
      {"same URI twice: the highest wins",
       {"alice storage://c/p read", "alice storage://c/p write"},
       "storage://c/p",
       "write",
       true},
  });
}

TEST_CASE("permissions: every action ordering pair") {
  const std::vector<std::string> names{"deny", "list", "read", "write", "manage"};
  std::vector<Row> rows;
  for (std::size_t g = 0; g < names.size(); ++g) {
    for (std::size_t a = 0; a < names.size(); ++a) {
      // deny grants nothing and a check for deny is never allowed.
      bool allowed = g > 0 && a > 0 && a <= g;
      rows.push_back({"ordering", {"alice job://c/p/j " + names[g]}, "job://c/p/j", names[a], allowed});
      rows.push_back({"ordering below", {"alice job://c/p " + names[g]}, "job://c/p/j/x", names[a], allowed});
    }
  }
  run_table(rows);
  CHECK(Action::deny < Action::list);
  CHECK(Action::list < Action::read);
  CHECK(Action::read < Action::write);
  CHECK(Action::write < Action::manage);
}

TEST_CASE("permissions: deny overrides") {
  const std::vector<std::string> p_with_hole{"alice storage://c/p manage", "alice storage://c/p/secret deny"};
  const std::vector<std::string> role_deny{"alice role://team read", "alice storage://c/p manage",
                                           "team storage://c/p/x deny"};
  run_table({
      {"deny on the node", p_with_hole, "storage://c/p/secret", "list", false},
      {"deny on an ancestor", p_with_hole, "storage://c/p/secret/x/y", "read", false},
      {"deny below leaves the ancestor alone", p_with_hole, "storage://c/p", "manage", true},
      {"deny below leaves siblings alone", p_with_hole, "storage://c/p/public", "write", true},
      {"deny beats a grant on the same node",
       {"alice storage://c/p/x manage", "alice storage://c/p/x deny"},
       "storage://c/p/x",
       "list",
       false},
      {"deny beats a grant below it",
       {"alice storage://c/p deny", "alice storage://c/p/x manage"},
       "storage://c/p/x",
       "read",
       false},
      {"deny on the scheme root",
       {"alice storage:// deny", "alice storage://c/p manage"},
       "storage://c/p",
       "list",
       false},
      {"deny in another scheme is irrelevant",
       {"alice job://c deny", "alice storage://c/p read"},
       "storage://c/p",
       "read",
       true},
      {"deny through a role", role_deny, "storage://c/p/x/f", "read", false},
      {"deny through a role, elsewhere allowed", role_deny, "storage://c/p/y", "manage", true},
      {"own deny beats a role's grant",
       {"alice role://team read", "alice storage://c/t deny", "team storage://c/t manage"},
       "storage://c/t/f",
       "read",
       false},
  });
}

TEST_CASE("permissions: implicit list on ancestors") {
  const std::vector<std::string> shared{"alice storage://c/p/data/x read"};
  const std::vector<std::string> under_deny{"alice storage://c/p/data deny", "alice storage://c/p/data/x read"};
  run_table({
      {"parent is listable", shared, "storage://c/p/data", "list", true},
      {"parent is only listable", shared, "storage://c/p/data", "read", false},
      {"grandparent is listable", shared, "storage://c/p", "list", true},
      {"cluster level is listable", shared, "storage://c", "list", true},
      {"scheme root is listable", shared, "storage://", "list", true},
      {"the shared node keeps its grant", shared, "storage://c/p/data/x", "read", true},
      {"sibling is not listable", shared, "storage://c/p/data/y", "list", false},
      {"uncle is not listable", shared, "storage://c/q", "list", false},
      {"other scheme is not listable", shared, "job://c", "list", false},
      {"a list grant is enough", {"alice storage://c/p/x list"}, "storage://c/p", "list", true},
      {"grant under a deny gives nothing", under_deny, "storage://c/p", "list", false},
      {"grant under a deny, the denied node", under_deny, "storage://c/p/data", "list", false},
      {"grant under an ancestor's deny",
       {"alice storage://c deny", "alice storage://c/p/x read"},
       "storage://c/p",
       "list",
       false},
      {"a deny below does not list ancestors", {"alice storage://c/p/x deny"}, "storage://c/p", "list", false},
      {"another effective grant still lists",
       {"alice storage://c/p/data deny", "alice storage://c/p/data/x read", "alice storage://c/p/other read"},
       "storage://c/p",
       "list",
       true},
      {"implicit list does not lower an inherited grant",
       {"alice storage://c/p write", "alice storage://c/p/x/y manage"},
       "storage://c/p/x",
       "write",
       true},
      {"implicit list through a role",
       {"alice role://team read", "team storage://c/t/shared read"},
       "storage://c/t",
       "list",
       true},
  });
}

TEST_CASE("permissions: roles") {
  run_table({
      {"direct role", {"alice role://team read", "team storage://c/t write"}, "storage://c/t/f", "write", true},
      {"manage on the role confers it",
       {"alice role://team manage", "team storage://c/t read"},
       "storage://c/t",
       "read",
       true},
      {"list on the role does not confer it",
       {"alice role://team list", "team storage://c/t read"},
       "storage://c/t",
       "read",
       false},
      {"deny on the role does not confer it",
       {"alice role://team deny", "team storage://c/t read"},
       "storage://c/t",
       "read",
       false},
      {"subtree grant on role:// does not confer",
       {"alice role://org read", "org/team storage://c/t read"},
       "storage://c/t",
       "read",
       false},
      {"role root does not confer",
       {"alice role:// manage", "team storage://c/t read"},
       "storage://c/t",
       "read",
       false},
      {"role names have slashes",
       {"alice role://c/org/manager read", "c/org/manager job://c/org manage"},
       "job://c/org/j",
       "manage",
       true},
      {"transitive", {"alice role://a read", "a role://b read", "b storage://c/b read"}, "storage://c/b", "read", true},
      {"cycle",
       {"alice role://a read", "a role://b read", "b role://a read", "b storage://c/b read"},
       "storage://c/b",
       "read",
       true},
      {"role held only by someone else",
       {"bob role://team read", "team storage://c/t read"},
       "storage://c/t",
       "read",
       false},
      {"the role's own tree",
       {"alice role://team read", "team storage://c/t read"},
       "storage://c/t",
       "read",
       true,
       "team"},
      {"holding a role lets you read it", {"alice role://team read"}, "role://team", "read", true},
  });

  auto set = make_set({"alice role://a read", "alice role://x list", "a role://b write", "b role://a read",
                       "b role://alice read", "b role://c/org/r manage"});
  CHECK(set.roles_of("alice") == std::vector<std::string>{"a", "b", "c/org/r"});
  CHECK(set.roles_of("a") == std::vector<std::string>{"alice", "b", "c/org/r"});
  CHECK(set.roles_of("nobody").empty());
}

TEST_CASE("permissions: missing requirements, all-of and any-of") {
  PermissionTree t(std::vector<Grant>{{"job://c/p", Action::read}});
  CHECK(t.missing({}).empty());
  std::vector<Requirement> all_of{req({{"job://c/p/j", Action::read}}), req({{"job://c/p/j", Action::write}})};
  CHECK(t.missing(all_of) == std::vector<Requirement>{req({{"job://c/p/j", Action::write}})});

  std::vector<Requirement> any_of{req({{"job://c/p/j", Action::write}, {"job://c/p/by-name", Action::read}})};
  CHECK(t.missing(any_of).empty());

  auto neither = req({{"job://c/p/j", Action::write}, {"job://c/q/j", Action::read}});
  std::vector<Requirement> mixed{neither, req({{"job://c/p", Action::list}})};
  CHECK(t.missing(mixed) == std::vector<Requirement>{neither});

  // An any-of with no alternatives can never be met.
  std::vector<Requirement> empty_alt{Requirement{}};
  CHECK(t.missing(empty_alt).size() == 1);
}

TEST_CASE("permissions: URI parsing, accepted forms") {
  UriContext ctx{"c1", "alice"};
  struct Case {
    std::string in;
    bool with_ctx;
    std::string out;
  };
  std::vector<Case> cases{
      {"storage://c/p/x", false, "storage://c/p/x"},
      {"storage:/c/p/x", false, "storage://c/p/x"},
      {"storage://c/p/", false, "storage://c/p"},
      {"storage:/c/", false, "storage://c"},
      {"storage:", false, "storage://"},
      {"storage://", false, "storage://"},
      {"storage:/", false, "storage://"},
      {"storage:", true, "storage://"},
      {"storage:data/x", true, "storage://c1/alice/data/x"},
      {"storage:data/x/", true, "storage://c1/alice/data/x"},
      {"job:j1", true, "job://c1/alice/j1"},
      {"storage://c/p/x", true, "storage://c/p/x"},
      {"role:alice/roles/x", true, "role://alice/roles/x"},
      {"token:abc", true, "token://abc"},
      {"cluster:c1", true, "cluster://c1"},
      {"job://c/p/name with space", false, "job://c/p/name with space"},
      {"storage://c/p/f\xc3\xbc.txt", false, "storage://c/p/f\xc3\xbc.txt"},
      {"storage://c/p/a:b@c,d", false, "storage://c/p/a:b@c,d"},
      {"storage://c/p/..x/.y", false, "storage://c/p/..x/.y"},
  };
  for (auto s : known_schemes()) cases.push_back({std::string(s) + "://c/x", false, std::string(s) + "://c/x"});
  for (const auto& c : cases) {
    CAPTURE(c.in);
    auto u = Uri::parse(c.in, c.with_ctx ? &ctx : nullptr);
    CHECK(u.str() == c.out);
    CHECK(Uri::parse(u.str()) == u);  // canonical text parses back to itself
  }

  auto u = Uri::parse("storage://c/p/x");
  CHECK(u.scheme() == "storage");
  CHECK(u.segments() == std::vector<std::string>{"c", "p", "x"});
  CHECK_FALSE(u.is_root());
  CHECK(Uri::parse("job:").is_root());

  // The limits, at the edge.
  std::string seg255(255, 'a');
  CHECK(Uri::parse("storage://c/" + seg255).segments()[1].size() == 255);
  std::string prefix = "storage://c/";
  std::string at_limit = prefix + std::string(2048 - prefix.size(), 'x');
  at_limit[prefix.size() + 100] = '/';
  at_limit[prefix.size() + 300] = '/';
  at_limit[prefix.size() + 500] = '/';
  at_limit[prefix.size() + 700] = '/';
  at_limit[prefix.size() + 900] = '/';
  at_limit[prefix.size() + 1100] = '/';
  at_limit[prefix.size() + 1300] = '/';
  at_limit[prefix.size() + 1500] = '/';
  at_limit[prefix.size() + 1700] = '/';
  at_limit[prefix.size() + 1900] = '/';
  CHECK(Uri::parse(at_limit).str().size() == 2048);
  check_invalid_uri(at_limit + "x", "at most 2048");
  check_invalid_uri(at_limit + "/x", "at most 2048");
  // A relative URI is measured once resolved.
  UriContext long_ctx{"c", std::string(255, 'p')};
  std::string rel = "storage:";
  for (int i = 0; i < 9; ++i) rel += std::string(199, 'r') + "/";
  rel.pop_back();
  check_invalid_uri(rel, "at most 2048", &long_ctx);

  // covers / parent / child
  auto p = Uri::parse("storage://c/p");
  CHECK(p.covers(p));
  CHECK(p.covers(Uri::parse("storage://c/p/x/y")));
  CHECK_FALSE(p.covers(Uri::parse("storage://c")));
  CHECK_FALSE(p.covers(Uri::parse("storage://c/px")));
  CHECK_FALSE(p.covers(Uri::parse("job://c/p/x")));
  CHECK(Uri::parse("storage:").covers(p));
  CHECK(p.parent() == Uri::parse("storage://c"));
  CHECK(Uri::parse("storage://").parent() == Uri::parse("storage://"));
  CHECK(p.child("x").str() == "storage://c/p/x");
  CHECK_THROWS_AS(p.child(".."), neurod::Error);
  CHECK_THROWS_AS(p.child("a/b"), neurod::Error);
  CHECK_THROWS_AS(p.child(""), neurod::Error);
}

TEST_CASE("permissions: URI parsing, rejections") {
  UriContext ctx{"c1", "alice"};
  check_invalid_uri("", "missing scheme");
  check_invalid_uri("c/p/x", "missing scheme");
  check_invalid_uri(":c/p", "missing scheme");
  check_invalid_uri("//c/p", "missing scheme");
  check_invalid_uri("foo://c/p", "unknown scheme 'foo'");
  check_invalid_uri("foo://c/p", "job, storage, image, secret, disk, blob, flow, app, project, role, cluster, token");
  check_invalid_uri("Storage://c/p", "lower case");
  check_invalid_uri("STORAGE:", "lower case");
  check_invalid_uri("s3://bucket", "unknown scheme");
  check_invalid_uri("http://example.com/x", "unknown scheme");
  check_invalid_uri("storage://c/../x", "'..'");
  check_invalid_uri("storage://c/p/..", "'..'");
  check_invalid_uri("storage://c/./x", "'.'");
  check_invalid_uri("storage://c//x", "empty segment");
  check_invalid_uri("storage:///x", "empty segment");
  check_invalid_uri("storage://c/p//", "empty segment");
  check_invalid_uri("storage://c/p\x01x", "control character");
  check_invalid_uri("storage://c/p\x01x", "\\x01");  // quoted, not raw
  check_invalid_uri(std::string("storage://c/p\0x", 15), "control character");
  check_invalid_uri("storage://c/p\nx", "control character");
  check_invalid_uri("storage://c/p\x7f", "control character");
  check_invalid_uri("storage://c/p?x=1", "'?'");
  check_invalid_uri("storage://c/p#frag", "'#'");
  check_invalid_uri("storage://c/" + std::string(256, 'a'), "longer than 255");
  check_invalid_uri("storage://c/" + std::string(1 << 20, 'a'), "at most 2048");
  check_invalid_uri("storage:data/x", "relative");
  check_invalid_uri("role:alice/roles/x", "relative");
  check_invalid_uri("storage:data//x", "empty segment", &ctx);
  check_invalid_uri("storage:../x", "'..'", &ctx);
  UriContext no_project{"c1", ""};
  check_invalid_uri("storage:data", "cluster and project", &no_project);
  UriContext bad_cluster{"..", "p"};
  check_invalid_uri("storage:data", "cluster and project", &bad_cluster);
  // Non-resource schemes do not need the context's project.
  CHECK(Uri::parse("role:x", &no_project).str() == "role://x");

  // A long input is cut short in the message.
  try {
    Uri::parse("nope://" + std::string(5000, 'z'));
    FAIL_CHECK("accepted");
  } catch (const neurod::Error& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
}

TEST_CASE("permissions: action parsing") {
  const std::vector<std::pair<std::string, Action>> all{{"deny", Action::deny},
                                                        {"list", Action::list},
                                                        {"read", Action::read},
                                                        {"write", Action::write},
                                                        {"manage", Action::manage}};
  for (const auto& [s, a] : all) {
    CHECK(to_string(a) == s);
    CHECK(parse_action(s) == a);
    CHECK(action_from(s) == a);
  }
  for (std::string bad : {"", "READ", "admin", "read ", "owner"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_action(bad).has_value());
    try {
      action_from(bad);
      FAIL_CHECK("accepted");
    } catch (const neurod::Error& e) {
      CHECK(e.code() == errc::bad_request);
      CHECK(e.code_name() == "invalid_action");
      CHECK(std::string(e.what()).find("deny, list, read, write, manage") != std::string::npos);
    }
  }
}

TEST_CASE("permissions: effective() on non-canonical and garbage input") {
  PermissionTree t(std::vector<Grant>{{"storage://c/p", Action::write}});
  CHECK(t.effective("storage://c/p") == Action::write);
  CHECK(t.effective("storage://c/p/") == Action::write);
  CHECK(t.effective("storage:/c/p") == Action::write);
  CHECK(t.effective("storage://c/p/x/y") == Action::write);
  CHECK(t.effective("storage://c") == Action::list);
  CHECK(t.effective("storage:") == Action::list);
  // Refused, not interpreted: a downstream normalisation must not be able to turn an
  // allowed spelling into another path.
  for (std::string bad :
       {"storage://c/p/../q", "storage://c/p/./x", "storage://c//p", "storage://c/p//", "storage:c/p", "STORAGE://c/p",
        "", ":", "storage", "://c/p", "storage://c/p/x?y", "storage://c/p/\x01", "nope://c/p"}) {
    CAPTURE(bad);
    CHECK(t.effective(bad) == Action::deny);
  }
  CHECK(t.effective("storage://c/p/" + std::string(300, 'a')) == Action::deny);
  CHECK(t.effective("storage://c/p/" + std::string(5000, 'a')) == Action::deny);
  CHECK(t.effective(std::string("storage://c/p\0", 14)) == Action::deny);

  PermissionTree empty;
  CHECK(empty.effective("storage://c/p") == Action::deny);
  CHECK(empty.node_count() == 0);
  PermissionTree moved(std::move(t));
  CHECK(moved.effective("storage://c/p") == Action::write);
  CHECK(moved.node_count() == 3);  // storage, c, p
}

TEST_CASE("permissions: tree construction merges and validates") {
  PermissionTree t(std::vector<Grant>{{"job://c/p", Action::read},
                                      {"job://c/p", Action::write},
                                      {"job://c/q", Action::manage},
                                      {"job://c/q", Action::deny}});
  CHECK(t.effective("job://c/p") == Action::write);
  CHECK(t.effective("job://c/q") == Action::deny);
  try {
    PermissionTree bad(std::vector<Grant>{{"job://c/../p", Action::read}});
    FAIL_CHECK("accepted");
  } catch (const neurod::Error& e) {
    CHECK(e.code_name() == "invalid_uri");
  }
}

TEST_CASE("permissions: subtree JSON shape and depth") {
  PermissionTree t(std::vector<Grant>{{"storage://c/p/data", Action::read},
                                      {"storage://c/p/data/x", Action::write},
                                      {"storage://c/p/secret", Action::deny},
                                      {"storage://c/p/secret/y", Action::read},
                                      {"storage://c/q/z", Action::list}});
  auto full = t.subtree(Uri::parse("storage://c"));
  CHECK(full == json::parse(R"({"uri":"storage://c","action":"list","children":{
      "p":{"action":"list","children":{
        "data":{"action":"read","children":{"x":{"action":"write","children":{}}}}}},
      "q":{"action":"list","children":{"z":{"action":"list","children":{}}}}}})"));

  CHECK(t.subtree(Uri::parse("storage://c/p"), 1) ==
        json::parse(R"({"uri":"storage://c/p","action":"list","children":{"data":{"action":"read","children":{}}}})"));
  CHECK(t.subtree(Uri::parse("storage://c"), 1) == json::parse(R"({"uri":"storage://c","action":"list","children":{
      "p":{"action":"list","children":{}},"q":{"action":"list","children":{}}}})"));
  CHECK(t.subtree(Uri::parse("storage://c"), 2)["children"]["p"]["children"] ==
        json::parse(R"({"data":{"action":"read","children":{}}})"));
  CHECK(t.subtree(Uri::parse("storage://c"), 0) ==
        json::parse(R"({"uri":"storage://c","action":"list","children":{}})"));
  CHECK(t.subtree(Uri::parse("storage://c/p"), -1) == t.subtree(Uri::parse("storage://c/p"), 100));
  // Below the trie: inherited, no children.
  CHECK(t.subtree(Uri::parse("storage://c/p/data/new/deep")) ==
        json::parse(R"({"uri":"storage://c/p/data/new/deep","action":"read","children":{}})"));
  CHECK(t.subtree(Uri::parse("storage://c/p/secret")) ==
        json::parse(R"({"uri":"storage://c/p/secret","action":"deny","children":{}})"));
  CHECK(t.subtree(Uri::parse("job:")) == json::parse(R"({"uri":"job://","action":"deny","children":{}})"));
  CHECK(t.subtree(Uri::parse("storage:"))["children"].contains("c"));
}

TEST_CASE("permissions: GrantSet::with is copy-on-write") {
  auto base = std::make_shared<const GrantSet>(make_set(
      {"alice storage://c/alice read", "alice role://team read", "team job://c/t read", "bob job://c/b read"}));
  CHECK(base->principal_count() == 3);
  CHECK(base->grant_count() == 4);
  auto alice_tree = base->tree_of("alice");
  CHECK(base->tree_of("alice") == alice_tree);  // cached
  CHECK(alice_tree->allows("job://c/t", Action::read));

  auto next = base->with(
      "alice", std::make_shared<const GrantSet::Grants>(GrantSet::Grants{{"storage://c/alice", Action::manage}}));
  CHECK(next->tree_of("alice")->allows("storage://c/alice", Action::manage));
  CHECK_FALSE(next->tree_of("alice")->allows("job://c/t", Action::read));
  CHECK(next->grant_count() == 3);
  // The old set is untouched, cache included.
  CHECK(base->tree_of("alice") == alice_tree);
  CHECK_FALSE(base->tree_of("alice")->allows("storage://c/alice", Action::manage));
  CHECK(base->grants_of("alice").size() == 2);
  CHECK(base->grant_count() == 4);

  // A role's change reaches its holders in the new set only.
  auto role_changed =
      base->with("team", std::make_shared<const GrantSet::Grants>(GrantSet::Grants{{"job://c/t", Action::manage}}));
  CHECK(role_changed->tree_of("alice")->allows("job://c/t", Action::manage));
  CHECK_FALSE(base->tree_of("alice")->allows("job://c/t", Action::manage));

  auto removed = base->with("bob", nullptr);
  CHECK(removed->principal_count() == 2);
  CHECK(removed->grants_of("bob").empty());
  CHECK(removed->tree_of("bob")->node_count() == 0);
  CHECK(base->tree_of("bob")->allows("job://c/b", Action::read));
  CHECK(base->with("bob", std::make_shared<const GrantSet::Grants>())->principal_count() == 2);

  // A stored grant that does not parse is a server-side fault, and fails closed.
  auto broken = base->with(
      "carol", std::make_shared<const GrantSet::Grants>(GrantSet::Grants{{"storage://c/../etc", Action::read}}));
  try {
    broken->tree_of("carol");
    FAIL_CHECK("accepted");
  } catch (const neurod::Error& e) {
    CHECK(e.code() == errc::internal);
    CHECK(e.code_name() == "invalid_grant");
  }
  CHECK(broken->tree_of("alice")->allows("storage://c/alice", Action::read));

  GrantSet empty;
  CHECK(empty.principal_count() == 0);
  CHECK(empty.tree_of("anyone")->node_count() == 0);
  CHECK(empty.grants_of("anyone").empty());
}

TEST_CASE("permissions: grants_under") {
  auto set = make_set({"alice storage://c/alice manage", "alice storage://c/alice/data read",
                       "bob storage://c/alice/shared read", "carol storage://c/alicex read", "dave storage://c read",
                       "erin job://c/alice read"});
  using Entry = std::pair<std::string, Grant>;
  auto under = set.grants_under(Uri::parse("storage://c/alice"));
  CHECK(under == std::vector<Entry>{{"alice", {"storage://c/alice", Action::manage}},
                                    {"alice", {"storage://c/alice/data", Action::read}},
                                    {"bob", {"storage://c/alice/shared", Action::read}}});
  CHECK(set.grants_under(Uri::parse("storage://c/alice"), "alice") ==
        std::vector<Entry>{{"bob", {"storage://c/alice/shared", Action::read}}});
  CHECK(set.grants_under(Uri::parse("storage:")).size() == 5);
  CHECK(set.grants_under(Uri::parse("job:")) == std::vector<Entry>{{"erin", {"job://c/alice", Action::read}}});
  CHECK(set.grants_under(Uri::parse("disk:")).empty());
}

TEST_CASE("permissions: concurrent tree_of agrees with a single thread") {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) {
    auto u = "u" + std::to_string(i);
    lines.push_back(u + " storage://c/" + u + " manage");
    lines.push_back(u + " role://r" + std::to_string(i % 7) + " read");
  }
  for (int r = 0; r < 7; ++r) lines.push_back("r" + std::to_string(r) + " job://c/p" + std::to_string(r) + " write");
  auto set = make_set(lines);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 200; ++i) {
          auto u = "u" + std::to_string((i + t * 50) % 200);
          auto tree = set.tree_of(u);
          int idx = std::stoi(u.substr(1));
          if (!tree->allows("storage://c/" + u + "/f", Action::manage)) ++bad[t];
          if (!tree->allows("job://c/p" + std::to_string(idx % 7) + "/j", Action::write)) ++bad[t];
          if (tree->allows("job://c/p" + std::to_string((idx + 1) % 7) + "/j", Action::read)) ++bad[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

namespace {

// The rules at the top of permissions.hpp read literally, with no trie: the reference
// the property test below holds the implementation to.
Action reference_effective(const std::vector<Grant>& grants, const Uri& u) {
  std::vector<std::pair<Uri, Action>> parsed;
  for (const auto& g : grants) parsed.emplace_back(Uri::parse(g.uri), g.action);
  Action best = Action::deny;
  for (const auto& [gu, a] : parsed) {
    if (!gu.covers(u)) continue;
    if (a == Action::deny) return Action::deny;
    best = std::max(best, a);
  }
  for (const auto& [gu, a] : parsed) {
    if (a == Action::deny || !u.covers(gu) || gu == u) continue;
    bool under_deny = std::any_of(parsed.begin(), parsed.end(),
                                  [&](const auto& d) { return d.second == Action::deny && d.first.covers(gu); });
    if (!under_deny) return std::max(best, Action::list);
  }
  return best;
}

std::vector<std::string> reference_roles(const std::map<std::string, std::vector<Grant>>& by, const std::string& p) {
  std::set<std::string> held;
  std::vector<std::string> todo{p};
  while (!todo.empty()) {
    auto cur = todo.back();
    todo.pop_back();
    auto it = by.find(cur);
    if (it == by.end()) continue;
    for (const auto& g : it->second) {
      auto u = Uri::parse(g.uri);
      if (u.scheme() != "role" || u.is_root() || g.action < Action::read) continue;
      std::string name;
      for (const auto& s : u.segments()) name += (name.empty() ? "" : "/") + s;
      if (name != p && held.insert(name).second) todo.push_back(name);
    }
  }
  return {held.begin(), held.end()};
}

}  // namespace

TEST_CASE("permissions: trie and role expansion agree with a literal reading of the rules") {
  std::mt19937 rng(20240611);
  const std::vector<std::string> principals{"alice", "r1", "r2", "r3"};
  const std::vector<std::string> segs{"a", "b", "c"};
  // Every storage URI up to four segments deep, and the role URIs grants can name.
  std::vector<std::string> universe{"storage://"};
  for (std::size_t i = 0; i < universe.size(); ++i) {
    auto depth = static_cast<std::size_t>(std::count(universe[i].begin(), universe[i].end(), '/')) - 1;
    if (universe[i] == "storage://") depth = 0;
    if (depth >= 4) continue;
    for (const auto& s : segs)
      universe.push_back(universe[i] == "storage://" ? "storage://" + s : universe[i] + "/" + s);
  }
  const std::vector<std::string> role_uris{"role://", "role://r1", "role://r2", "role://r3", "role://r1/x"};
  std::uniform_int_distribution<std::size_t> pick_uri(0, universe.size() - 1), pick_role(0, role_uris.size() - 1),
      pick_action(0, 4), count(0, 6), coin(0, 3);

  std::size_t checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::map<std::string, std::vector<Grant>> by;
    for (const auto& p : principals) {
      for (auto n = count(rng); n > 0; --n) {
        auto uri = coin(rng) == 0 ? role_uris[pick_role(rng)] : universe[pick_uri(rng)];
        by[p].push_back({uri, static_cast<Action>(pick_action(rng))});
      }
    }
    GrantSet::Map m;
    for (const auto& [p, g] : by) m[p] = std::make_shared<const GrantSet::Grants>(g);
    GrantSet set(std::move(m));
    for (const auto& p : principals) {
      auto roles = reference_roles(by, p);
      REQUIRE(set.roles_of(p) == roles);
      auto all = by[p];
      for (const auto& r : roles) all.insert(all.end(), by[r].begin(), by[r].end());
      auto tree = set.tree_of(p);
      for (const auto& u : universe) {
        auto expected = reference_effective(all, Uri::parse(u));
        auto got = tree->effective(u);
        if (got != expected) {
          std::string dump;
          for (const auto& g : all) dump += g.uri + " " + std::string(to_string(g.action)) + "; ";
          FAIL_CHECK(p << " on " << u << ": got " << to_string(got) << ", expected " << to_string(expected) << " with "
                       << dump);
        }
        ++checked;
      }
    }
  }
  CHECK(checked > 100000);
}

TEST_CASE("permissions: many siblings, long segments and deep paths") {
  std::vector<Grant> grants;
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) {
    // Lengths from 1 to 255, several names per length, short and long keys mixed.
    auto len = static_cast<std::size_t>(1 + (i * 37) % 255);
    std::string name(len, static_cast<char>('a' + i % 26));
    name[0] = static_cast<char>('A' + i % 26);
    name += std::to_string(i);
    if (name.size() > 255) name.resize(255);
    names.push_back(name);
    grants.push_back({"job://c/p/" + name, i % 5 == 0 ? Action::deny : Action::write});
  }
  std::string deep = "job://c/deep";
  for (int i = 0; i < 100; ++i) deep += "/level-" + std::to_string(i);
  grants.push_back({deep, Action::read});
  PermissionTree t(grants);
  for (std::size_t i = 0; i < names.size(); ++i) {
    CAPTURE(names[i]);
    auto expected = i % 5 == 0 ? Action::deny : Action::write;
    CHECK(t.effective("job://c/p/" + names[i]) == expected);
    CHECK(t.effective("job://c/p/" + names[i] + "/x") == expected);
    CHECK(t.effective("job://c/p/" + names[i].substr(0, names[i].size() - 1) + "~") == Action::deny);
  }
  CHECK(t.effective("job://c/p") == Action::list);
  CHECK(t.effective(deep) == Action::read);
  CHECK(t.effective(deep + "/more") == Action::read);
  CHECK(t.effective(deep.substr(0, deep.rfind('/'))) == Action::list);
  CHECK(t.effective("job://c/deep/level-0/level-2") == Action::deny);
  auto view = t.subtree(Uri::parse("job://c/p"), 1);
  CHECK(view["children"].size() == 240);  // the denied fifth is left out
}

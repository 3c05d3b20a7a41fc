// The secrets API (modules/secrets/README.md) through the in-process server, on both
// database backends: round trips, permissions, input errors, encryption at rest, tamper
// detection, the master key file and rotation.
#include "http/auth_helpers.hpp"

#include "db/database.hpp"
#include "db/rows.hpp"
#include "modules/secrets/module.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <random>
#include <sstream>

using namespace neurod;
using authtest::Api;
using authtest::json;
using authtest::Res;

namespace {

std::string decode(const json& j) {
  auto raw = secrets::base64_decode(j.at("value").get<std::string>());
  REQUIRE(raw.has_value());
  return *raw;
}

Res put(Api& a, const std::string& key, std::string_view value, const std::string& project = "") {
  json body{{"key", key}, {"value", authtest::base64(value)}};
  if (!project.empty()) body["project_name"] = project;
  return a.post("/api/v1/secrets", body);
}

std::string in(const std::string& project) { return "?project_name=" + authtest::q(project); }

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 07777);
}

// Every file under dir (the SQLite database and its WAL included) that contains needle.
std::vector<std::string> files_containing(const std::filesystem::path& dir, std::string_view needle) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && read_all(e.path()).find(needle) != std::string::npos) out.push_back(e.path().string());
  return out;
}

// Every stored column of every secret row, as text.
std::string table_dump(db::Database& db) {
  return db.read([](soci::session& s) {
    std::string out;
    soci::rowset<soci::row> rs = (s.prepare << "SELECT project, name, owner, key_id, nonce, ciphertext FROM secrets");
    for (const auto& r : rs)
      for (std::size_t i = 0; i < 6; ++i) out += db::as_string(r, i) + "\n";
    return out;
  });
}

std::map<std::string, std::int64_t> key_ids(db::Database& db) {
  return db.read([](soci::session& s) { return secrets::repo::count_by_key(s); });
}

// What `neurod secrets …` gets, on a running server's config and database.
class Offline final : public app::OfflineContext {
 public:
  explicit Offline(test::TestServer& s) : s_(s) {}
  const config::GlobalConfig& global() const override { return s_.app().config().global; }
  const std::string& config_file() const override { return s_.app().config().file; }
  const void* module_config() const override {
    const auto& m = s_.app().config().modules;
    auto it = m.find("secrets");
    return it == m.end() ? nullptr : it->second.get();
  }
  db::Database& db() override { return s_.app().db(); }

 private:
  test::TestServer& s_;
};

int offline(test::TestServer& s, std::vector<std::string> args) {
  Offline ctx(s);
  for (const auto& c : secrets::Module::offline_commands())
    if (c.name == "secrets") return c.run(args, ctx);
  FAIL("no `neurod secrets` command");
  return -1;
}

std::filesystem::path key_file(test::TestServer& s) { return s.data_dir() / "secrets" / "master.key"; }

}  // namespace

TEST_CASE_TEMPLATE("secrets: round trip of text, binary and 1 MiB values, replace, and a list without values", B,
                   NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");

  auto r = put(alice, "API_TOKEN", "hunter2");
  REQUIRE_STATUS(r, 201);
  auto created = r.json();
  CHECK(created["key"] == "API_TOKEN");
  CHECK(created["owner"] == "alice");
  CHECK(created["project_name"] == "alice");  // the caller's own project by default
  CHECK(created["uri"] == "secret://test/alice/API_TOKEN");
  CHECK_FALSE(created.contains("value"));
  CHECK(created["created_at"].get<std::string>().ends_with("Z"));

  r = alice.get("/api/v1/secrets/API_TOKEN");
  REQUIRE_STATUS(r, 200);
  CHECK(decode(r.json()) == "hunter2");
  CHECK(r.header("Cache-Control") == std::optional<std::string>("no-store"));
  EXPECT_STATUS(alice.get("/api/v1/secrets/API_TOKEN" + in("alice")), 200);

  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  binary += std::string("\0\0tail", 6);
  REQUIRE_STATUS(put(alice, "bin.blob-1", binary), 201);
  CHECK(decode(alice.get("/api/v1/secrets/bin.blob-1").json()) == binary);

  auto big = random_bytes(secrets::kMaxValueBytes, 42);
  REQUIRE_STATUS(put(alice, "_big", big), 201);
  CHECK(decode(alice.get("/api/v1/secrets/_big").json()) == big);

  REQUIRE_STATUS(put(alice, "empty", ""), 201);
  CHECK(decode(alice.get("/api/v1/secrets/empty").json()).empty());

  // Replace: a new value, the same owner and creation time.
  r = put(alice, "API_TOKEN", "correct horse");
  REQUIRE_STATUS(r, 201);
  CHECK(r.json()["created_at"] == created["created_at"]);
  CHECK(decode(alice.get("/api/v1/secrets/API_TOKEN").json()) == "correct horse");

  auto list = alice.get("/api/v1/secrets");
  REQUIRE_STATUS(list, 200);
  std::vector<std::string> keys;
  for (const auto& s : list.json()) {
    CHECK_FALSE(s.contains("value"));
    keys.push_back(s["key"]);
  }
  CHECK(keys == std::vector<std::string>{"API_TOKEN", "_big", "bin.blob-1", "empty"});
  CHECK(list.body.find(authtest::base64("correct horse")) == std::string::npos);
  CHECK(alice.get("/api/v1/secrets" + in("alice")).json().size() == 4);
  CHECK(alice.get("/api/v1/secrets" + in("nobody")).json().empty());

  EXPECT_STATUS(alice.del("/api/v1/secrets/API_TOKEN"), 204);
  r = alice.get("/api/v1/secrets/API_TOKEN");
  EXPECT_STATUS(r, 404);
  CHECK(authtest::code(r) == "secret_not_found");
  EXPECT_STATUS(alice.del("/api/v1/secrets/API_TOKEN"), 404);
  CHECK(alice.get("/api/v1/secrets").json().size() == 3);
}

TEST_CASE_TEMPLATE("secrets: others get 404, readers 403 on delete, project writers share", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  REQUIRE_STATUS(put(alice, "db_password", "alice-only"), 201);

  // Somebody else's secret looks exactly like a missing one.
  auto theirs = bob.get("/api/v1/secrets/db_password" + in("alice"));
  auto missing = bob.get("/api/v1/secrets/no_such" + in("alice"));
  EXPECT_STATUS(theirs, 404);
  EXPECT_STATUS(missing, 404);
  CHECK(authtest::code(theirs) == authtest::code(missing));
  CHECK(theirs.body.find("alice-only") == std::string::npos);
  EXPECT_STATUS(bob.del("/api/v1/secrets/db_password" + in("alice")), 404);
  CHECK(bob.get("/api/v1/secrets").json().empty());
  CHECK(bob.get("/api/v1/secrets" + in("alice")).json().empty());
  auto w = put(bob, "db_password", "overwritten", "alice");
  EXPECT_STATUS(w, 403);
  CHECK(w.json()["error"]["missing"][0]["uri"] == "secret://test/alice/db_password");
  CHECK(decode(alice.get("/api/v1/secrets/db_password").json()) == "alice-only");

  // A read grant on one key: bob reads it, cannot delete or replace it, sees nothing else.
  REQUIRE_STATUS(put(alice, "other", "x"), 201);
  REQUIRE_STATUS(
      alice.post("/api/v1/users/bob/permissions", {{"uri", "secret://test/alice/db_password"}, {"action", "read"}}),
      201);
  auto r = bob.get("/api/v1/secrets/db_password" + in("alice"));
  REQUIRE_STATUS(r, 200);
  CHECK(decode(r.json()) == "alice-only");
  auto d = bob.del("/api/v1/secrets/db_password" + in("alice"));
  EXPECT_STATUS(d, 403);
  CHECK(d.json()["error"]["missing"][0]["action"] == "write");
  EXPECT_STATUS(put(bob, "db_password", "overwritten", "alice"), 403);
  auto listed = bob.get("/api/v1/secrets").json();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["key"] == "db_password");
  CHECK(listed[0]["project_name"] == "alice");
  EXPECT_STATUS(bob.get("/api/v1/secrets/other" + in("alice")), 404);

  // A shared project: writers create and read, readers get nothing (auth's role table).
  auto carol = env.user("carol");
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 201);
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/bob", {{"role", "writer"}}), 200);
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/carol", {{"role", "reader"}}), 200);
  REQUIRE_STATUS(put(bob, "S3_KEY", "team-secret", "ml"), 201);
  CHECK(decode(alice.get("/api/v1/secrets/S3_KEY" + in("ml")).json()) == "team-secret");
  EXPECT_STATUS(carol.get("/api/v1/secrets/S3_KEY" + in("ml")), 404);
  CHECK(carol.get("/api/v1/secrets" + in("ml")).json().empty());
  EXPECT_STATUS(put(carol, "S3_KEY", "x", "ml"), 403);
  // The admin reads everything.
  CHECK(env.admin().get("/api/v1/secrets").json().size() == 3);
  EXPECT_STATUS(bob.del("/api/v1/secrets/S3_KEY" + in("ml")), 204);
}

TEST_CASE_TEMPLATE("secrets: bad keys, bad base64, oversize values and bodies, no credentials", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");

  for (std::string key : std::vector<std::string>{"", "1abc", "-x", ".x", "a b", "a/b", "é", std::string(256, 'a'),
                                                  std::string("a\nb")}) {
    CAPTURE(key);
    auto r = put(alice, key, "v");
    EXPECT_STATUS(r, 400);
    CHECK(authtest::code(r) == "invalid_secret_key");
  }
  REQUIRE_STATUS(put(alice, std::string(255, 'k'), "v"), 201);
  EXPECT_STATUS(alice.get("/api/v1/secrets/1abc"), 400);
  EXPECT_STATUS(alice.del("/api/v1/secrets/a%20b"), 400);

  auto r = alice.post("/api/v1/secrets", {{"key", "k"}, {"value", "not base64!"}});
  EXPECT_STATUS(r, 400);
  CHECK(authtest::code(r) == "invalid_base64");
  EXPECT_STATUS(alice.post("/api/v1/secrets", {{"key", "k"}, {"value", "YWJj"}, {"x", 1}}), 201);  // extra keys ignored
  EXPECT_STATUS(alice.post("/api/v1/secrets", {{"key", "k"}}), 400);
  EXPECT_STATUS(alice.post("/api/v1/secrets", {{"key", "k"}, {"value", 12}}), 400);
  EXPECT_STATUS(alice.post("/api/v1/secrets", json::array()), 400);

  // A malformed body's error never quotes it: the text around the fault is the value.
  r = alice.request("POST", "/api/v1/secrets", R"({"key": "k", "value": "Y2FuYXJ5LXNlY3JldA==)");
  EXPECT_STATUS(r, 400);
  CHECK(r.body.find("Y2FuYXJ5") == std::string::npos);

  r = put(alice, "too_big", std::string(secrets::kMaxValueBytes + 1, 'x'));
  EXPECT_STATUS(r, 413);
  CHECK(authtest::code(r) == "secret_too_large");
  CHECK(r.body.find("1 MiB") != std::string::npos);
  r = put(alice, "way_too_big", std::string(2 * secrets::kMaxValueBytes, 'x'));  // refused before it is read
  EXPECT_STATUS(r, 413);
  EXPECT_STATUS(alice.get("/api/v1/secrets/too_big"), 404);

  auto anon = env.anonymous();
  EXPECT_STATUS(put(anon, "k", "v"), 401);
  EXPECT_STATUS(anon.get("/api/v1/secrets"), 401);
  EXPECT_STATUS(anon.get("/api/v1/secrets/k"), 401);
  EXPECT_STATUS(anon.del("/api/v1/secrets/k"), 401);
}

TEST_CASE_TEMPLATE("secrets: the plaintext is nowhere at rest, in logs or in the audit log", B, NEUROD_DB_BACKENDS) {
  test::StderrCapture log;
  authtest::Env env(B::kDialect, {}, "log:\n  level: debug\n");
  auto alice = env.user("alice");
  const std::string canary = "neurod-canary-plaintext-7f3e9a1c";
  const std::string canary64 = authtest::base64(canary);
  REQUIRE_STATUS(put(alice, "CANARY", canary), 201);
  REQUIRE_STATUS(put(alice, "CANARY", canary + "-2"), 201);
  EXPECT_STATUS(alice.get("/api/v1/secrets/CANARY"), 200);
  EXPECT_STATUS(alice.request("POST", "/api/v1/secrets", "{\"key\": \"bad key\", \"value\": \"" + canary64 + "\"}"),
                400);
  EXPECT_STATUS(alice.del("/api/v1/secrets/CANARY"), 204);
  REQUIRE_STATUS(put(alice, "CANARY2", canary), 201);

  auto dump = table_dump(env.server().app().db());
  CHECK(dump.find("CANARY2") != std::string::npos);
  CHECK(dump.find(canary) == std::string::npos);
  CHECK(dump.find(canary64) == std::string::npos);

  // The audit log has the request, not the body.
  std::string audit;
  CHECK(authtest::eventually([&] {
    audit = env.admin().get("/api/v1/audit?user=alice").body;
    return audit.find("secret://test/alice/CANARY2") != std::string::npos;
  }));
  CHECK(audit.find(canary) == std::string::npos);
  CHECK(audit.find(canary64) == std::string::npos);

  env.server().app().stop();  // flushes everything (WAL, audit) to the data dir
  CHECK(files_containing(env.server().data_dir(), canary).empty());
  CHECK(files_containing(env.server().data_dir(), canary64).empty());
  auto text = log.text();
  CHECK(text.find("/api/v1/secrets") != std::string::npos);  // the access log did run
  CHECK(text.find(canary) == std::string::npos);
  CHECK(text.find(canary64) == std::string::npos);
}

TEST_CASE_TEMPLATE("secrets: tampered or moved ciphertext fails closed", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(put(alice, "A", "value-of-a"), 201);
  REQUIRE_STATUS(put(alice, "B", "value-of-b"), 201);
  auto& db = env.server().app().db();

  // Move A's sealed value onto B: the associated data (B's URI) does not match.
  db.write([](soci::session& s) {
    std::string nonce, ct;
    s << "SELECT nonce, ciphertext FROM secrets WHERE name = 'A'", soci::into(nonce), soci::into(ct);
    s << "UPDATE secrets SET nonce = :n, ciphertext = :c WHERE name = 'B'", soci::use(nonce), soci::use(ct);
  });
  auto r = alice.get("/api/v1/secrets/B");
  EXPECT_STATUS(r, 500);
  CHECK(authtest::code(r) == "secret_undecryptable");
  CHECK(r.body.find("value-of-a") == std::string::npos);
  CHECK(r.body.find(authtest::base64("value-of-a")) == std::string::npos);
  EXPECT_STATUS(alice.get("/api/v1/secrets/A"), 200);

  // Flip one bit of A's ciphertext.
  db.write([](soci::session& s) {
    std::string ct;
    s << "SELECT ciphertext FROM secrets WHERE name = 'A'", soci::into(ct);
    auto raw = *secrets::base64_decode(ct);
    raw[0] = static_cast<char>(raw[0] ^ 1);
    ct = secrets::base64_encode(raw);
    s << "UPDATE secrets SET ciphertext = :c WHERE name = 'A'", soci::use(ct);
  });
  r = alice.get("/api/v1/secrets/A");
  EXPECT_STATUS(r, 500);
  CHECK(authtest::code(r) == "secret_undecryptable");
  // Listing still works (no values), and the broken ones can be replaced or deleted.
  CHECK(alice.get("/api/v1/secrets").json().size() == 2);
  EXPECT_STATUS(alice.del("/api/v1/secrets/B"), 204);
  REQUIRE_STATUS(put(alice, "A", "fresh"), 201);
  CHECK(decode(alice.get("/api/v1/secrets/A").json()) == "fresh");
}

TEST_CASE_TEMPLATE("secrets: the master key file is 0600 and a bad one stops neurod", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto path = key_file(env.server());
  REQUIRE(std::filesystem::exists(path));
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path.parent_path()) == 0700);
  CHECK(std::filesystem::file_size(path) == 32);

  test::TempDir dir;
  auto start = [&](const std::string& secrets_yaml) {
    test::ServerSpec s;
    s.backend = test::backend_of(B::kDialect);
    s.extra_yaml = "modules:\n  secrets:\n" + secrets_yaml;
    try {
      test::TestServer server(s);
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  auto loose = dir.write("loose.key", std::string(32, 'k'));
  std::filesystem::permissions(loose, std::filesystem::perms(0644));
  auto err = start("    master_key_file: " + loose.string() + "\n");
  CHECK(err.find("cannot start module 'secrets'") != std::string::npos);
  CHECK(err.find("chmod 600") != std::string::npos);

  auto short_key = dir.write("short.key", "too short");
  std::filesystem::permissions(short_key, std::filesystem::perms(0600));
  err = start("    master_key_file: " + short_key.string() + "\n");
  CHECK(err.find("exactly 32") != std::string::npos);

  // A configured path that does not exist yet is made, 0600.
  auto fresh = dir.path() / "keys" / "neurod.key";
  CHECK(start("    master_key_file: " + fresh.string() + "\n").empty());
  CHECK(mode_of(fresh) == 0600);

  // From the environment: base64 of 32 bytes; a bad or unset variable stops it.
  ::setenv("NEUROD_TEST_SECRETS_KEY", secrets::Key::generate().base64().c_str(), 1);
  CHECK(start("    master_key_env: NEUROD_TEST_SECRETS_KEY\n").empty());
  ::setenv("NEUROD_TEST_SECRETS_KEY", "c2hvcnQ=", 1);
  CHECK(start("    master_key_env: NEUROD_TEST_SECRETS_KEY\n").find("32 random bytes in base64") != std::string::npos);
  ::unsetenv("NEUROD_TEST_SECRETS_KEY");
  CHECK(start("    master_key_env: NEUROD_TEST_SECRETS_KEY\n").find("not set") != std::string::npos);
  CHECK(start("    master_key_env: X\n    master_key_file: /x\n").find("not both") != std::string::npos);
}

TEST_CASE_TEMPLATE("secrets: a database with values refuses a missing or wrong master key", B, NEUROD_DB_BACKENDS) {
  test::TempDir keys;
  auto key_path = keys.path() / "master.key";
  std::string url, yaml = "modules:\n  secrets:\n    master_key_file: " + key_path.string() + "\n";
  std::unique_ptr<test::TestServer> first;
  {
    test::ServerSpec s;
    s.backend = test::backend_of(B::kDialect);
    s.extra_yaml = yaml;
    first = std::make_unique<test::TestServer>(s);
    Api admin(*first, first->admin_token());
    REQUIRE_STATUS(put(admin, "K", "v"), 201);
    first->app().stop();
  }
  auto again = [&](const std::string& extra) {
    test::ServerSpec s;
    s.backend = test::backend_of(B::kDialect);
    s.database_url = first->database_url();
    s.extra_yaml = extra;
    try {
      test::TestServer server(s);
      Api admin(server, first->admin_token());
      auto r = admin.get("/api/v1/secrets/K");
      REQUIRE_STATUS(r, 200);
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  // The default path (in the second server's data dir) does not exist: a new key would not do.
  auto err = again("");
  CHECK(err.find("is missing") != std::string::npos);
  // Another key is refused too.
  auto other = keys.path() / "other.key";
  secrets::write_key_file(other, secrets::Key::generate());
  err = again("modules:\n  secrets:\n    master_key_file: " + other.string() + "\n");
  CHECK(err.find("is it the right key?") != std::string::npos);
  // The right one works.
  CHECK(again(yaml).empty());
}

TEST_CASE_TEMPLATE("secrets: rotate-key re-encrypts every value while neurod runs", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");
  auto big = random_bytes(secrets::kMaxValueBytes, 7);
  REQUIRE_STATUS(put(alice, "one", "first value"), 201);
  REQUIRE_STATUS(put(alice, "big", big), 201);
  auto& db = env.server().app().db();
  auto path = key_file(env.server());
  auto old_id = secrets::read_key_file(path)->id();
  CHECK(key_ids(db) == std::map<std::string, std::int64_t>{{old_id, 2}});

  REQUIRE(offline(env.server(), {"rotate-key"}) == 0);
  auto new_id = secrets::read_key_file(path)->id();
  CHECK(new_id != old_id);
  CHECK(key_ids(db) == std::map<std::string, std::int64_t>{{new_id, 2}});
  CHECK(mode_of(path) == 0600);
  CHECK(secrets::read_key_file(secrets::sibling(path, ".old"))->id() == old_id);
  CHECK(mode_of(secrets::sibling(path, ".old")) == 0600);
  CHECK_FALSE(std::filesystem::exists(secrets::sibling(path, ".new")));

  // The running server reads them, and writes under the new key.
  CHECK(decode(alice.get("/api/v1/secrets/one").json()) == "first value");
  CHECK(decode(alice.get("/api/v1/secrets/big").json()) == big);
  REQUIRE_STATUS(put(alice, "two", "after"), 201);
  CHECK(key_ids(db) == std::map<std::string, std::int64_t>{{new_id, 3}});

  // A crash after the commit, before the files moved: values under master.key.new only.
  auto next = secrets::Key::generate();
  secrets::write_key_file(secrets::sibling(path, ".new"), next);
  db.write([&](soci::session& s) {
    auto current = *secrets::read_key_file(path);
    std::vector<secrets::repo::Row> rows;
    secrets::repo::for_each(s, [&](const secrets::repo::Row& r) { rows.push_back(r); });
    for (const auto& r : rows) {
      auto ad = secrets::secret_uri("test", r.meta.project, r.meta.name);
      auto plain = secrets::open(current, r.sealed, ad);
      REQUIRE(plain.has_value());
      secrets::repo::update_sealed(s, r.meta.project, r.meta.name, secrets::seal(next, *plain, ad));
    }
  });
  CHECK(decode(alice.get("/api/v1/secrets/one").json()) == "first value");  // found in master.key.new
  REQUIRE(offline(env.server(), {"rotate-key"}) == 0);                      // finishes it
  CHECK(secrets::read_key_file(path)->id() == next.id());
  CHECK_FALSE(std::filesystem::exists(secrets::sibling(path, ".new")));
  CHECK(key_ids(db) == std::map<std::string, std::int64_t>{{next.id(), 3}});
  CHECK(decode(alice.get("/api/v1/secrets/two").json()) == "after");

  // A tampered value stops the rotation before anything changes.
  db.write([](soci::session& s) {
    std::string ct;
    s << "SELECT ciphertext FROM secrets WHERE name = 'one'", soci::into(ct);
    auto raw = *secrets::base64_decode(ct);
    raw.back() = static_cast<char>(raw.back() ^ 0x80);
    ct = secrets::base64_encode(raw);
    s << "UPDATE secrets SET ciphertext = :c WHERE name = 'one'", soci::use(ct);
  });
  CHECK_THROWS_AS(offline(env.server(), {"rotate-key"}), Error);
  CHECK(key_ids(db) == std::map<std::string, std::int64_t>{{next.id(), 3}});
  CHECK(secrets::read_key_file(path)->id() == next.id());
  CHECK(decode(alice.get("/api/v1/secrets/two").json()) == "after");
  // Unknown arguments are usage errors.
  CHECK(offline(env.server(), {"rotate-key", "--bogus"}) == 2);
}

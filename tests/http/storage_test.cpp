// The storage API (modules/storage/README.md) through a real server, on both database
// backends: round trips, ranges, listings, resumable and interrupted uploads, concurrent
// writers, traversal and symlink escapes, ACL masking and quota refusals.
#include "http/auth_helpers.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

using namespace neurod;
using authtest::Api;
using authtest::code;
using authtest::Env;
using authtest::json;
using authtest::Res;

namespace {

const std::string kBase = "/api/v1/storage/";

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

Res put_file(Api& api, const std::string& path, std::string body, authtest::Headers h = {}) {
  h.emplace_back("Content-Type", "application/octet-stream");
  return api.request("PUT", kBase + path, std::move(body), std::move(h));
}

std::filesystem::path root_of(Env& env) { return env.server().data_dir() / "storage"; }

json names(const Res& r) {
  json out = json::array();
  auto body = r.json();  // iterating a part of a temporary would outlive it
  for (const auto& s : body["FileStatuses"]["FileStatus"]) out.push_back(s["path"]);
  return out;
}

// A request with exactly these headers (Api adds a JSON Content-Type to bodies).
Res raw(Env& env, Api& api, std::string_view method, const std::string& path, std::string body,
        authtest::Headers h) {
  auto c = env.server().client(api.token());
  return c.request(method, kBase + path, std::move(body), std::move(h));
}

// The storage_bytes usage auth reports for a user or project (kind: "users"/"projects").
std::int64_t quota_usage(Api& admin, const std::string& kind, const std::string& name) {
  auto r = admin.get("/api/v1/admin/quotas/" + kind + "/" + name);
  REQUIRE_STATUS(r, 200);
  return r.json()["usage"]["storage_bytes"].get<std::int64_t>();
}

json disk_usage(Api& api, const std::string& project) {
  auto r = api.get(kBase + project + "?op=GETDISKUSAGE");
  REQUIRE_STATUS(r, 200);
  return r.json()["project"];
}

}  // namespace

TEST_CASE_TEMPLATE("storage: files round trip with ranges, status and listings", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");

  // The project's directory lists as empty before its first write.
  auto empty = alice.get(kBase + "alice?op=LISTSTATUS");
  REQUIRE_STATUS(empty, 200);
  CHECK(names(empty) == json::array());

  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{3 << 20}}) {
    CAPTURE(size);
    auto data = random_bytes(size, static_cast<unsigned>(size));
    auto path = "alice/data/f" + std::to_string(size);
    auto r = put_file(alice, path, data);
    REQUIRE_STATUS(r, 201);
    CHECK(r.json()["FileStatus"]["length"] == size);
    CHECK(r.json()["FileStatus"]["type"] == "FILE");
    auto g = alice.get(kBase + path);
    REQUIRE_STATUS(g, 200);
    CHECK(g.body == data);
    CHECK(g.header("X-File-Length").value_or("") == std::to_string(size));
    CHECK(g.header("X-File-Type").value_or("") == "FILE");
    CHECK(g.header("X-File-Permission").value_or("") == "manage");
    CHECK(g.header("Last-Modified").has_value());
    // The file on disk is exactly it (no temp names left next to it).
    CHECK(std::filesystem::file_size(root_of(env) / path) == size);
  }
  // Ranges.
  auto data = random_bytes(3 << 20, 3 << 20);
  auto r = alice.request("GET", kBase + "alice/data/f3145728", {}, {{"Range", "bytes=100-199"}});
  REQUIRE_STATUS(r, 206);
  CHECK(r.body == data.substr(100, 100));
  CHECK(r.header("Content-Range").value_or("") == "bytes 100-199/3145728");
  r = alice.request("GET", kBase + "alice/data/f3145728", {}, {{"Range", "bytes=-10"}});
  REQUIRE_STATUS(r, 206);
  CHECK(r.body == data.substr(data.size() - 10));
  EXPECT_STATUS(alice.request("GET", kBase + "alice/data/f3145728", {}, {{"Range", "bytes=4000000-"}}), 416);
  // HEAD: the headers without the body; 404 for a missing file.
  auto h = alice.request("HEAD", kBase + "alice/data/f4096");
  EXPECT_STATUS(h, 200);
  CHECK(h.body.empty());
  CHECK(h.header("X-File-Length").value_or("") == "4096");
  EXPECT_STATUS(alice.request("HEAD", kBase + "alice/data/nope"), 404);

  // Listing, JSON and ndjson; file status; a file lists as itself.
  auto l = alice.get(kBase + "alice/data?op=LISTSTATUS");
  REQUIRE_STATUS(l, 200);
  CHECK(names(l) == json::array({"f0", "f1", "f3145728", "f4096"}));
  auto nd = alice.request("GET", kBase + "alice/data?LISTSTATUS", {}, {{"Accept", "application/x-ndjson"}});
  REQUIRE_STATUS(nd, 200);
  CHECK(nd.header("Content-Type").value_or("").starts_with("application/x-ndjson"));
  std::istringstream lines(nd.body);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    CHECK(json::parse(line)["FileStatus"]["type"] == "FILE");
    ++n;
  }
  CHECK(n == 4);
  auto st = alice.get(kBase + "alice/data?op=GETFILESTATUS");
  REQUIRE_STATUS(st, 200);
  CHECK(st.json()["FileStatus"]["type"] == "DIRECTORY");
  CHECK(st.json()["FileStatus"]["path"] == "/alice/data");
  CHECK(names(alice.get(kBase + "alice/data/f1?op=LISTSTATUS")) == json::array({"f1"}));
  EXPECT_STATUS(alice.get(kBase + "alice/data?op=LISTSTATUS&GETFILESTATUS"), 400);
  EXPECT_STATUS(alice.get(kBase + "alice/data?op=BOGUS"), 400);
  // A directory is not a file to open.
  auto dir = alice.get(kBase + "alice/data");
  EXPECT_STATUS(dir, 400);
  CHECK(dir.json()["error"]["errno"] == "EISDIR");

  // Disk usage with the project's own use.
  auto du = alice.get(kBase + "alice?op=GETDISKUSAGE");
  REQUIRE_STATUS(du, 200);
  CHECK(du.json()["total"].template get<std::uint64_t>() > 0);
  CHECK(du.json()["project"]["used"].template get<std::uint64_t>() == 4096 + 1 + (3u << 20));
  CHECK(du.json()["project"]["limit"].is_null());
}

TEST_CASE_TEMPLATE("storage: mkdirs, rename, partial writes and deletes", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(alice.request("PUT", kBase + "alice/a/b/c?op=MKDIRS"), 201);
  EXPECT_STATUS(alice.request("PUT", kBase + "alice/a/b/c?op=MKDIRS"), 201);  // exist_ok by default
  auto again = alice.request("PUT", kBase + "alice/a/b/c?op=MKDIRS&exist_ok=false");
  EXPECT_STATUS(again, 400);
  CHECK(again.json()["error"]["errno"] == "EEXIST");
  auto np = alice.request("PUT", kBase + "alice/x/y?op=MKDIRS&parents=false");
  EXPECT_STATUS(np, 404);
  REQUIRE_STATUS(put_file(alice, "alice/a/file", "hello"), 201);
  auto through = alice.request("PUT", kBase + "alice/a/file/sub?op=MKDIRS");
  EXPECT_STATUS(through, 400);
  CHECK(through.json()["error"]["errno"] == "ENOTDIR");
  auto onto_dir = put_file(alice, "alice/a/b", "x");
  EXPECT_STATUS(onto_dir, 400);
  CHECK(onto_dir.json()["error"]["errno"] == "EISDIR");
  EXPECT_STATUS(alice.request("PUT", kBase + "alice/a/m?op=MKDIRS", "body"), 400);

  // PATCH WRITE: bytes in place, growing the file.
  authtest::Headers ph{{"Content-Type", "application/octet-stream"}, {"Content-Range", "bytes 3-6/*"}};
  auto w = raw(env, alice, "PATCH", "alice/a/file", "LOWO", ph);
  REQUIRE_STATUS(w, 200);
  CHECK(alice.get(kBase + "alice/a/file").body == "helLOWO");
  EXPECT_STATUS(raw(env, alice, "PATCH", "alice/a/file", "LOWO", {{"Content-Range", "bytes 3-6/*"}}), 415);
  EXPECT_STATUS(raw(env, alice, "PATCH", "alice/a/file", "LOWO",
                    {{"Content-Type", "application/octet-stream"}, {"Content-Range", "bytes 3-9/*"}}),
                400);
  EXPECT_STATUS(raw(env, alice, "PATCH", "alice/a/file", "LOWO",
                    {{"Content-Type", "application/octet-stream"}, {"Content-Range", "bytes 3-6/*"}, {"If-Match", "x"}}),
                400);
  EXPECT_STATUS(raw(env, alice, "PATCH", "alice/a/none", "LOWO", ph), 404);

  // Rename: relative and absolute destinations; replacing a file; refusing a non-empty directory.
  EXPECT_STATUS(alice.request("POST", kBase + "alice/a/file?op=RENAME&destination=renamed"), 204);
  CHECK(alice.get(kBase + "alice/a/renamed").body == "helLOWO");
  EXPECT_STATUS(alice.get(kBase + "alice/a/file"), 404);
  EXPECT_STATUS(alice.request("POST", kBase + "alice/a/renamed?destination=/alice/top"), 204);
  CHECK(alice.get(kBase + "alice/top").body == "helLOWO");
  REQUIRE_STATUS(put_file(alice, "alice/other", "o"), 201);
  EXPECT_STATUS(alice.request("POST", kBase + "alice/other?destination=/alice/top"), 204);
  CHECK(alice.get(kBase + "alice/top").body == "o");
  auto into = alice.request("POST", kBase + "alice/a?destination=/alice/a/b/c/inside");
  EXPECT_STATUS(into, 400);
  EXPECT_STATUS(alice.request("POST", kBase + "alice/a"), 400);  // no destination
  EXPECT_STATUS(alice.request("POST", kBase + "alice/a?destination=../../etc"), 400);

  // Delete: a non-empty directory needs recursive (the default); files go alone.
  auto nr = alice.del(kBase + "alice/a?recursive=false");
  EXPECT_STATUS(nr, 400);
  CHECK(nr.json()["error"]["errno"] == "ENOTEMPTY");
  EXPECT_STATUS(alice.del(kBase + "alice/top"), 204);
  EXPECT_STATUS(alice.del(kBase + "alice/a"), 204);
  EXPECT_STATUS(alice.del(kBase + "alice/a"), 404);
  CHECK(!std::filesystem::exists(root_of(env) / "alice/a"));
  // Deleting the project's directory empties it.
  EXPECT_STATUS(alice.del(kBase + "alice"), 204);
  CHECK(names(alice.get(kBase + "alice?op=LISTSTATUS")) == json::array());
}

TEST_CASE_TEMPLATE("storage: paths cannot escape the project", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  REQUIRE_STATUS(put_file(bob, "bob/secret.txt", "bob's"), 201);
  REQUIRE_STATUS(put_file(alice, "alice/mine.txt", "alice's"), 201);
  for (std::string bad : std::vector<std::string>{"alice/../bob/secret.txt", "alice/%2e%2e/bob/secret.txt", "alice/./mine.txt",
                          "alice/a%00b", "alice//mine.txt", "alice/" + std::string(256, 'n')}) {
    CAPTURE(bad);
    auto r = alice.get(kBase + bad);
    EXPECT_STATUS(r, 400);
    // NUL never gets past the HTTP layer; the rest is the storage path check's.
    CHECK((code(r) == "invalid_path" || bad.find("%00") != std::string::npos));
    EXPECT_STATUS(put_file(alice, bad, "x"), 400);
  }
  // Symlinks made behind the API's back (by a job in a rw volume): ones leading out of
  // the project are refused, whether absolute or relative; ones inside are followed.
  auto root = root_of(env);
  std::filesystem::create_symlink("/etc", root / "alice/etc");
  std::filesystem::create_symlink("../bob", root / "alice/tobob");
  std::filesystem::create_symlink("mine.txt", root / "alice/link.txt");
  for (std::string esc : {"alice/etc/passwd", "alice/tobob/secret.txt"}) {
    CAPTURE(esc);
    auto r = alice.get(kBase + esc);
    EXPECT_STATUS(r, 400);
    CHECK(code(r) == "path_escapes");
    EXPECT_STATUS(put_file(alice, esc, "x"), 400);
    EXPECT_STATUS(alice.get(kBase + esc + "?op=LISTSTATUS"), 400);
  }
  CHECK(std::filesystem::exists("/etc/passwd"));
  CHECK(alice.get(kBase + "alice/link.txt").body == "alice's");
  auto l = alice.get(kBase + "alice?op=LISTSTATUS");
  REQUIRE_STATUS(l, 200);
  bool saw_link = false;
  auto listing = l.json();
  for (const auto& s : listing["FileStatuses"]["FileStatus"])
    if (s["path"] == "etc") saw_link = s["type"] == "SYMLINK";
  CHECK(saw_link);
  // Deleting a symlink removes the link, never what it points at.
  EXPECT_STATUS(alice.del(kBase + "alice/tobob"), 204);
  CHECK(bob.get(kBase + "bob/secret.txt").body == "bob's");
  // The server's own folder is not reachable as a project.
  EXPECT_STATUS(alice.get(kBase + ".neurod/tmp?op=LISTSTATUS"), 400);
}

TEST_CASE_TEMPLATE("storage: others see 404, read-only sharees 403, anonymous 401", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto carol = env.user("carol");
  REQUIRE_STATUS(put_file(alice, "alice/data/x", "x"), 201);
  REQUIRE_STATUS(put_file(alice, "alice/private/y", "y"), 201);
  // Bob: 404 on what exists and on what does not, with the same answer.
  auto exists = bob.get(kBase + "alice/data/x");
  auto missing = bob.get(kBase + "alice/data/none");
  EXPECT_STATUS(exists, 404);
  EXPECT_STATUS(missing, 404);
  CHECK(code(exists) == code(missing));
  EXPECT_STATUS(put_file(bob, "alice/data/x", "bob"), 404);
  EXPECT_STATUS(bob.del(kBase + "alice/data/x"), 404);
  EXPECT_STATUS(bob.request("POST", kBase + "alice/data/x?destination=/bob/x"), 404);
  EXPECT_STATUS(bob.get(kBase + "alice?op=LISTSTATUS"), 404);
  CHECK(alice.get(kBase + "alice/data/x").body == "x");
  // Share alice/data read-only with carol.
  auto g = alice.post("/api/v1/users/carol/permissions",
                      json::array({{{"uri", "storage://test/alice/data"}, {"action", "read"}}}));
  REQUIRE_MESSAGE((g.status == 201 || g.status == 200), g.body);
  CHECK(carol.get(kBase + "alice/data/x").body == "x");
  auto w = put_file(carol, "alice/data/x", "carol");
  EXPECT_STATUS(w, 403);
  EXPECT_STATUS(carol.del(kBase + "alice/data/x"), 403);
  EXPECT_STATUS(carol.get(kBase + "alice/private/y"), 404);
  // Carol lists alice's project root and sees only what is shared.
  auto l = carol.get(kBase + "alice?op=LISTSTATUS");
  REQUIRE_STATUS(l, 200);
  CHECK(names(l) == json::array({"data"}));
  CHECK(alice.get(kBase + "alice/data/x").body == "x");
  // Anonymous.
  auto anon = env.anonymous().get(kBase + "alice/data/x");
  EXPECT_STATUS(anon, 401);
}

TEST_CASE_TEMPLATE("storage: the project's quota refuses writes past it, keeping nothing", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(put_file(alice, "alice/base", std::string(400, 'b')), 201);
  REQUIRE_STATUS(env.admin().put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 1000}}), 200);
  // The limit is read at most a few seconds late.
  CHECK(authtest::eventually(
      [&] {
        if (put_file(alice, "alice/big", std::string(700, 'x')).status == 403) return true;
        alice.del(kBase + "alice/big");
        return false;
      },
      std::chrono::seconds(10)));
  auto r = put_file(alice, "alice/big", std::string(700, 'x'));
  EXPECT_STATUS(r, 403);
  CHECK(code(r) == "quota_exceeded");
  CHECK(r.json()["error"]["message"].template get<std::string>().find("quota") != std::string::npos);
  EXPECT_STATUS(alice.get(kBase + "alice/big"), 404);
  CHECK(!std::filesystem::exists(root_of(env) / "alice/big"));
  // What fits goes; replacing a file counts only the difference; deleting frees.
  REQUIRE_STATUS(put_file(alice, "alice/small", std::string(500, 's')), 201);
  REQUIRE_STATUS(put_file(alice, "alice/small", std::string(600, 's')), 201);
  EXPECT_STATUS(put_file(alice, "alice/more", std::string(10, 'm')), 403);
  EXPECT_STATUS(alice.del(kBase + "alice/base"), 204);
  EXPECT_STATUS(put_file(alice, "alice/more", std::string(300, 'm')), 201);
  auto du = alice.get(kBase + "alice?op=GETDISKUSAGE");
  CHECK(du.json()["project"]["used"] == 900);
  CHECK(du.json()["project"]["limit"] == 1000);
  // No temp or partial files are left by the refused uploads.
  CHECK(std::filesystem::is_empty(root_of(env) / ".neurod/tmp"));
}

// Regression: a quota set (or changed) after the project's first write was checked
// against a limit cached at that write for a few seconds, and auth showed the usage only
// after the next flush. Every step below follows the change at once, no waiting.
TEST_CASE_TEMPLATE(
    "storage: a quota set after the first writes counts them and applies at once, raised, lowered, removed", B,
    NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto& admin = env.admin();
  REQUIRE_STATUS(put_file(alice, "alice/a", std::string(60000, 'a')), 201);
  REQUIRE_STATUS(put_file(alice, "alice/dir/b", std::string(40000, 'b')), 201);
  CHECK(disk_usage(alice, "alice")["limit"].is_null());
  // Set: the answer already counts the bytes written before it.
  auto set = admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 300000}});
  REQUIRE_STATUS(set, 200);
  CHECK(set.json()["usage"]["storage_bytes"] == 100000);
  auto big = put_file(alice, "alice/big", std::string(400000, 'x'));
  EXPECT_STATUS(big, 403);
  CHECK(code(big) == "quota_exceeded");
  CHECK(big.json()["error"]["used"] == 100000);
  CHECK(!std::filesystem::exists(root_of(env) / "alice/big"));
  auto du = disk_usage(alice, "alice");
  CHECK(du["used"] == 100000);
  CHECK(du["limit"] == 300000);
  auto mine = alice.get("/api/v1/quota?project=alice");
  REQUIRE_STATUS(mine, 200);
  CHECK(mine.json()["projects"][0]["usage"]["storage_bytes"] == 100000);
  CHECK(mine.json()["projects"][0]["limits"]["storage_bytes"] == 300000);
  REQUIRE_STATUS(put_file(alice, "alice/c", std::string(150000, 'c')), 201);
  CHECK(quota_usage(admin, "projects", "alice") == 250000);
  EXPECT_STATUS(put_file(alice, "alice/d", std::string(60000, 'd')), 403);
  // A chunked body (no declared length) is held to the quota too.
  {
    test::RawConnection c(env.server().port());
    c.send("PUT " + kBase + "alice/d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token() +
           "\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\nea60\r\n" +
           std::string(60000, 'd') + "\r\n0\r\n\r\n");
    auto answer = c.read_until("\r\n\r\n");
    CHECK_MESSAGE(answer.starts_with("HTTP/1.1 403"), answer);
  }
  CHECK(!std::filesystem::exists(root_of(env) / "alice/d"));

  // Raised: the next write has the room.
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 1000000}}), 200);
  REQUIRE_STATUS(put_file(alice, "alice/big", std::string(400000, 'x')), 201);
  CHECK(disk_usage(alice, "alice")["used"] == 650000);
  CHECK(quota_usage(admin, "projects", "alice") == 650000);

  // Lowered below the usage: nothing more goes in until enough is deleted.
  auto low = admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 500000}});
  REQUIRE_STATUS(low, 200);
  CHECK(low.json()["usage"]["storage_bytes"] == 650000);
  EXPECT_STATUS(put_file(alice, "alice/e", std::string(10, 'e')), 403);
  EXPECT_STATUS(alice.del(kBase + "alice/big"), 204);
  CHECK(quota_usage(admin, "projects", "alice") == 250000);
  REQUIRE_STATUS(put_file(alice, "alice/e", std::string(200000, 'e')), 201);
  EXPECT_STATUS(put_file(alice, "alice/f", std::string(60000, 'f')), 403);

  // Removed (null, then the whole quota): unlimited at once, still counted.
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", nullptr}}), 200);
  REQUIRE_STATUS(put_file(alice, "alice/f", std::string(60000, 'f')), 201);
  CHECK(disk_usage(alice, "alice")["limit"].is_null());
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 100}}), 200);
  EXPECT_STATUS(put_file(alice, "alice/g", std::string(1000, 'g')), 403);
  EXPECT_STATUS(admin.del("/api/v1/admin/quotas/projects/alice"), 204);
  REQUIRE_STATUS(put_file(alice, "alice/g", std::string(1000000, 'g')), 201);
  CHECK(disk_usage(alice, "alice")["used"] == 1510000);
  CHECK(quota_usage(admin, "projects", "alice") == 1510000);
  CHECK(std::filesystem::is_empty(root_of(env) / ".neurod/tmp"));
}

TEST_CASE_TEMPLATE("storage: a user's storage quota covers her personal project, whenever it is set", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto& admin = env.admin();
  REQUIRE_STATUS(put_file(alice, "alice/a", std::string(100000, 'a')), 201);
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "team"}}), 201);
  REQUIRE_STATUS(put_file(alice, "team/t", std::string(500000, 't')), 201);
  auto set = admin.put("/api/v1/admin/quotas/users/alice", {{"storage_bytes", 300000}});
  REQUIRE_STATUS(set, 200);
  CHECK(set.json()["usage"]["storage_bytes"] == 100000);  // her personal project's bytes, not team's
  auto mine = alice.get("/api/v1/quota");
  REQUIRE_STATUS(mine, 200);
  CHECK(mine.json()["user"]["usage"]["storage_bytes"] == 100000);
  CHECK(mine.json()["user"]["limits"]["storage_bytes"] == 300000);
  auto big = put_file(alice, "alice/big", std::string(400000, 'x'));
  EXPECT_STATUS(big, 403);
  CHECK(code(big) == "quota_exceeded");
  CHECK(big.json()["error"]["message"].template get<std::string>().find("user alice") != std::string::npos);
  CHECK(disk_usage(alice, "alice")["limit"] == 300000);
  // Other projects are not hers alone: their own quotas apply.
  REQUIRE_STATUS(put_file(alice, "team/big", std::string(400000, 'x')), 201);
  // The tighter of the user's and the project's quota applies.
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 1000000}}), 200);
  EXPECT_STATUS(put_file(alice, "alice/big", std::string(400000, 'x')), 403);
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 150000}}), 200);
  EXPECT_STATUS(put_file(alice, "alice/c", std::string(60000, 'c')), 403);
  CHECK(disk_usage(alice, "alice")["limit"] == 150000);
  REQUIRE_STATUS(put_file(alice, "alice/c", std::string(50000, 'c')), 201);
  CHECK(quota_usage(admin, "users", "alice") == 150000);
  CHECK(quota_usage(admin, "projects", "alice") == 150000);
  // Raised and removed.
  EXPECT_STATUS(admin.del("/api/v1/admin/quotas/projects/alice"), 204);
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"storage_bytes", 600000}}), 200);
  REQUIRE_STATUS(put_file(alice, "alice/big", std::string(400000, 'x')), 201);
  EXPECT_STATUS(put_file(alice, "alice/d", std::string(60000, 'd')), 403);
  EXPECT_STATUS(admin.del("/api/v1/admin/quotas/users/alice"), 204);
  REQUIRE_STATUS(put_file(alice, "alice/d", std::string(60000, 'd')), 201);
  CHECK(disk_usage(alice, "alice")["limit"].is_null());
  CHECK(quota_usage(admin, "users", "alice") == 610000);
}

TEST_CASE_TEMPLATE("storage: after a restart, bytes never counted are counted and a quota set then holds", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(put_file(alice, "alice/a", std::string(1000, 'a')), 201);
  env.server().app().stop();
  // Bytes that no write through the API counted (a job's rw volume, or data from before
  // the quota was tracked).
  {
    std::ofstream out(root_of(env) / "alice/direct", std::ios::binary);
    out << std::string(200000, 'd');
  }
  test::ServerSpec again;
  again.backend = test::backend_of(B::kDialect);
  again.database_url = env.server().database_url();
  again.extra_yaml = "modules:\n  storage:\n    root: " + root_of(env).string() + "\n";
  test::TestServer second(again);
  Api admin(second, env.server().admin_token());
  Api alice2(second, alice.token());
  // The scan at start counts them, for the project and for its user.
  CHECK(authtest::eventually([&] { return disk_usage(alice2, "alice")["used"] == 201000; }, std::chrono::seconds(10)));
  auto set = admin.put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 300000}});
  REQUIRE_STATUS(set, 200);
  CHECK(set.json()["usage"]["storage_bytes"] == 201000);
  CHECK(quota_usage(admin, "users", "alice") == 201000);
  EXPECT_STATUS(put_file(alice2, "alice/big", std::string(150000, 'x')), 403);
  REQUIRE_STATUS(put_file(alice2, "alice/fits", std::string(90000, 'x')), 201);
  CHECK(quota_usage(admin, "projects", "alice") == 291000);
}

TEST_CASE_TEMPLATE("storage: resumable uploads continue where they stopped", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto data = random_bytes(300000, 7);
  auto piece = [&](std::size_t a, std::size_t b) {
    return put_file(alice, "alice/big.bin", data.substr(a, b - a + 1),
                    {{"Content-Range", "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/300000"}});
  };
  EXPECT_STATUS(alice.get(kBase + "alice/big.bin?op=UPLOADSTATUS"), 404);
  auto r = piece(0, 99999);
  REQUIRE_STATUS(r, 202);
  CHECK(r.json()["offset"] == 100000);
  EXPECT_STATUS(alice.get(kBase + "alice/big.bin"), 404);  // never visible before it is whole
  auto s = alice.get(kBase + "alice/big.bin?op=UPLOADSTATUS");
  REQUIRE_STATUS(s, 200);
  CHECK(s.json()["offset"] == 100000);
  CHECK(s.json()["length"] == 300000);
  auto wrong = piece(150000, 199999);
  EXPECT_STATUS(wrong, 409);
  CHECK(code(wrong) == "offset_mismatch");
  CHECK(wrong.json()["error"]["offset"] == 100000);
  REQUIRE_STATUS(piece(100000, 199999), 202);
  auto done = piece(200000, 299999);
  REQUIRE_STATUS(done, 201);
  CHECK(alice.get(kBase + "alice/big.bin").body == data);
  EXPECT_STATUS(alice.get(kBase + "alice/big.bin?op=UPLOADSTATUS"), 404);
  EXPECT_STATUS(put_file(alice, "alice/c", "abc", {{"Content-Range", "bytes 0-2/*"}}), 400);
  EXPECT_STATUS(put_file(alice, "alice/c", "abc", {{"Content-Range", "bytes 0-5/10"}}), 400);
}

TEST_CASE_TEMPLATE("storage: an interrupted upload leaves no file, and its part can be continued", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto data = random_bytes(1 << 20, 11);
  {
    test::RawConnection c(env.server().port());
    c.send("PUT " + kBase + "alice/cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token() +
           "\r\nContent-Length: " + std::to_string(data.size()) + "\r\n\r\n");
    c.send(std::string_view(data).substr(0, 300000));
    // Wait until the upload has begun before going away.
    CHECK(authtest::eventually([&] {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(root_of(env) / ".neurod/tmp", ec))
        if (std::filesystem::file_size(e.path()) > 0) return true;
      return false;
    }));
  }
  auto s = alice.get(kBase + "alice/cut.bin?op=UPLOADSTATUS");
  CHECK(authtest::eventually([&] {
    s = alice.get(kBase + "alice/cut.bin?op=UPLOADSTATUS");
    return s.status == 200;
  }));
  REQUIRE_STATUS(s, 200);
  CHECK(s.json()["offset"] == 300000);
  CHECK(s.json()["length"] == data.size());
  EXPECT_STATUS(alice.get(kBase + "alice/cut.bin"), 404);
  CHECK(!std::filesystem::exists(root_of(env) / "alice/cut.bin"));
  auto rest = put_file(alice, "alice/cut.bin", data.substr(300000),
                       {{"Content-Range", "bytes 300000-" + std::to_string(data.size() - 1) + "/" +
                                              std::to_string(data.size())}});
  REQUIRE_STATUS(rest, 201);
  CHECK(alice.get(kBase + "alice/cut.bin").body == data);
  // A chunked body cut off has no known length: nothing is kept.
  {
    test::RawConnection c(env.server().port());
    c.send("PUT " + kBase + "alice/chunked.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token() +
           "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  }
  CHECK(authtest::eventually([&] { return std::filesystem::is_empty(root_of(env) / ".neurod/tmp"); }));
  EXPECT_STATUS(alice.get(kBase + "alice/chunked.bin"), 404);
  EXPECT_STATUS(alice.get(kBase + "alice/chunked.bin?op=UPLOADSTATUS"), 404);
}

TEST_CASE_TEMPLATE("storage: concurrent writers to one path leave one whole file", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  constexpr int kWriters = 6;
  std::vector<std::string> bodies;
  for (int i = 0; i < kWriters; ++i) bodies.push_back(random_bytes(512 * 1024, 100 + i));
  std::vector<std::thread> threads;
  std::vector<int> statuses(kWriters);
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] {
      Api api(env.server(), alice.token());
      for (int round = 0; round < 3; ++round) statuses[i] = put_file(api, "alice/same.bin", bodies[i]).status;
    });
  // Readers during the writes only ever see a whole body.
  std::thread reader([&] {
    Api api(env.server(), alice.token());
    for (int i = 0; i < 20; ++i) {
      auto r = api.get(kBase + "alice/same.bin");
      if (r.status == 200) CHECK(std::find(bodies.begin(), bodies.end(), r.body) != bodies.end());
    }
  });
  for (auto& t : threads) t.join();
  reader.join();
  for (int s : statuses) CHECK(s == 201);
  auto final = alice.get(kBase + "alice/same.bin");
  REQUIRE_STATUS(final, 200);
  CHECK(std::find(bodies.begin(), bodies.end(), final.body) != bodies.end());
  CHECK(std::filesystem::is_empty(root_of(env) / ".neurod/tmp"));
}

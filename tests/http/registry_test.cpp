// The OCI registry (modules/registry/README.md) through a real server, on both database
// backends: uploads (monolithic, single POST, chunked, cancelled, cut off), digests checked,
// mounts, manifests and indexes, tags and their pages, referrers, the catalog, deletes and
// garbage collection, the token flow, ACLs between projects and the storage quota.
#include "http/auth_helpers.hpp"
#include "modules/registry/module.hpp"
#include "modules/registry/oci.hpp"
#include "db/database.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <random>
#include <atomic>
#include <set>
#include <thread>

using namespace neurod;
using authtest::Api;
using authtest::Env;
using authtest::json;
using authtest::Res;
using registry::sha256_digest;

namespace {

const std::string kGc = "modules:\n  registry:\n    gc_grace: 0s\n";

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// The first error's code of an OCI error body ("" when there is none).
std::string oci_code(const Res& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array() || j["errors"].empty())
    return "";
  return j["errors"][0].value("code", "");
}

// A registry client: raw requests with a Bearer token (or none), no JSON Content-Type added.
struct Reg {
  Env& env;
  std::string token;
  Res req(std::string_view method, const std::string& path, std::string body = {}, authtest::Headers h = {}) {
    auto c = token.empty() ? env.server().client() : env.server().client(token);
    return c.request(method, path, std::move(body), std::move(h));
  }
  // POST then PUT ?digest=: the blob's digest.
  std::string push_blob(const std::string& name, const std::string& data) {
    auto start = req("POST", "/v2/" + name + "/blobs/uploads/");
    REQUIRE_STATUS(start, 202);
    auto loc = start.header("Location").value_or("");
    REQUIRE_FALSE(loc.empty());
    auto digest = sha256_digest(data);
    auto put = req("PUT", loc + "?digest=" + digest, data, {{"Content-Type", "application/octet-stream"}});
    REQUIRE_STATUS(put, 201);
    CHECK(put.header("Docker-Content-Digest").value_or("") == digest);
    return digest;
  }
  Res put_manifest(const std::string& name, const std::string& ref, const std::string& body,
                   const std::string& type = std::string(registry::kOciManifest)) {
    return req("PUT", "/v2/" + name + "/manifests/" + ref, body, {{"Content-Type", type}});
  }
};

json descriptor(const std::string& type, const std::string& data) {
  return {{"mediaType", type}, {"digest", sha256_digest(data)}, {"size", data.size()}};
}

// An image: config + layers pushed, manifest JSON returned (not pushed).
std::string image(Reg& r, const std::string& name, const std::vector<std::string>& layers, std::string config = "{}",
                  std::string config_type = "application/vnd.oci.image.config.v1+json") {
  r.push_blob(name, config);
  json ls = json::array();
  for (const auto& l : layers) {
    r.push_blob(name, l);
    ls.push_back(descriptor("application/vnd.oci.image.layer.v1.tar", l));
  }
  return json{{"schemaVersion", 2},
              {"mediaType", registry::kOciManifest},
              {"config", descriptor(config_type, config)},
              {"layers", ls}}
      .dump();
}

std::filesystem::path blob_file(Env& env, const std::string& digest) {
  auto hex = digest.substr(7);
  return env.server().data_dir() / "registry" / "blobs" / "sha256" / hex.substr(0, 2) / hex;
}

}  // namespace

TEST_CASE_TEMPLATE("registry: the base check, the Bearer challenge and errors in the OCI form", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  Reg anon{env, ""};
  auto r = anon.req("GET", "/v2/");
  EXPECT_STATUS(r, 401);
  CHECK(oci_code(r) == "UNAUTHORIZED");
  auto challenge = r.header("WWW-Authenticate").value_or("");
  CHECK(challenge.starts_with("Bearer realm=\"http://127.0.0.1:"));
  CHECK(challenge.find("/v2/token\",service=\"neurod\"") != std::string::npos);
  r = anon.req("GET", "/v2/alice/app/manifests/latest");
  EXPECT_STATUS(r, 401);
  CHECK(r.header("WWW-Authenticate").value_or("").find("scope=\"repository:alice/app:pull\"") != std::string::npos);
  r = anon.req("PUT", "/v2/alice/app/manifests/latest", "{}");
  EXPECT_STATUS(r, 401);
  CHECK(r.header("WWW-Authenticate").value_or("").find("scope=\"repository:alice/app:pull,push\"") != std::string::npos);
  // A bad token is refused the same way.
  Reg bad{env, "nd_not-a-token"};
  EXPECT_STATUS(bad.req("GET", "/v2/"), 401);

  Reg a{env, alice.token()};
  r = a.req("GET", "/v2/");
  EXPECT_STATUS(r, 200);
  CHECK(r.header("Docker-Distribution-API-Version").value_or("") == "registry/2.0");
  // Basic with the token as the password works as well.
  r = anon.req("GET", "/v2/", "", {{"Authorization", "Basic " + authtest::base64("alice:" + alice.token())}});
  EXPECT_STATUS(r, 200);
  r = a.req("GET", "/v2/alice/app/manifests/latest");
  EXPECT_STATUS(r, 404);
  CHECK(oci_code(r) == "NAME_UNKNOWN");
}

TEST_CASE_TEMPLATE("registry: monolithic, single-POST and chunked uploads with digests checked", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  Reg a{env, alice.token()};

  // Monolithic: POST, then PUT with the bytes; then HEAD, GET and a range.
  auto data = random_bytes(300000, 1);
  auto digest = a.push_blob("alice/app", data);
  auto h = a.req("HEAD", "/v2/alice/app/blobs/" + digest);
  EXPECT_STATUS(h, 200);
  CHECK(h.header("Content-Length").value_or("") == std::to_string(data.size()));
  CHECK(h.header("Docker-Content-Digest").value_or("") == digest);
  auto g = a.req("GET", "/v2/alice/app/blobs/" + digest);
  EXPECT_STATUS(g, 200);
  CHECK(g.body == data);
  auto part = a.req("GET", "/v2/alice/app/blobs/" + digest, "", {{"Range", "bytes=10-19"}});
  EXPECT_STATUS(part, 206);
  CHECK(part.body == data.substr(10, 10));
  CHECK(std::filesystem::file_size(blob_file(env, digest)) == data.size());

  // A single POST with ?digest=.
  auto small = random_bytes(1000, 2);
  auto d2 = sha256_digest(small);
  auto post = a.req("POST", "/v2/alice/app/blobs/uploads/?digest=" + d2, small,
                    {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(post, 201);
  CHECK(post.header("Location").value_or("") == "/v2/alice/app/blobs/" + d2);
  CHECK(a.req("GET", "/v2/alice/app/blobs/" + d2).body == small);

  // Chunked: PATCH with Content-Range, status, a chunk out of order refused, the rest, PUT.
  auto big = random_bytes(200000, 3);
  auto start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  REQUIRE_STATUS(start, 202);
  auto loc = start.header("Location").value_or("");
  CHECK(start.header("Docker-Upload-UUID").has_value());
  auto p1 = a.req("PATCH", loc, big.substr(0, 70000),
                  {{"Content-Type", "application/octet-stream"}, {"Content-Range", "0-69999"}});
  EXPECT_STATUS(p1, 202);
  CHECK(p1.header("Range").value_or("") == "0-69999");
  auto st = a.req("GET", loc);
  EXPECT_STATUS(st, 204);
  CHECK(st.header("Range").value_or("") == "0-69999");
  auto wrong = a.req("PATCH", loc, big.substr(80000, 10),
                     {{"Content-Type", "application/octet-stream"}, {"Content-Range", "80000-80009"}});
  EXPECT_STATUS(wrong, 416);
  CHECK(wrong.header("Range").value_or("") == "0-69999");
  auto p2 = a.req("PATCH", loc, big.substr(70000), {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(p2, 202);
  CHECK(p2.header("Range").value_or("") == "0-199999");
  auto d3 = sha256_digest(big);
  auto fin = a.req("PUT", loc + "?digest=" + d3);
  EXPECT_STATUS(fin, 201);
  CHECK(a.req("GET", "/v2/alice/app/blobs/" + d3).body == big);
  EXPECT_STATUS(a.req("GET", loc), 404);  // the session is gone

  // A wrong digest: refused, nothing kept under either digest, the session gone.
  start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  loc = start.header("Location").value_or("");
  auto other = random_bytes(5000, 4);
  auto claimed = sha256_digest("something else");
  auto bad = a.req("PUT", loc + "?digest=" + claimed, other, {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(bad, 400);
  CHECK(oci_code(bad) == "DIGEST_INVALID");
  CHECK(oci_code(a.req("HEAD", "/v2/alice/app/blobs/" + claimed)) == "");
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/app/blobs/" + claimed), 404);
  EXPECT_STATUS(a.req("GET", "/v2/alice/app/blobs/" + sha256_digest(other)), 404);
  CHECK_FALSE(std::filesystem::exists(blob_file(env, sha256_digest(other))));
  CHECK(oci_code(a.req("GET", loc)) == "BLOB_UPLOAD_UNKNOWN");
  // Malformed digests.
  CHECK(oci_code(a.req("GET", "/v2/alice/app/blobs/sha256:xyz")) == "DIGEST_INVALID");

  // Cancelling an upload.
  start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  loc = start.header("Location").value_or("");
  EXPECT_STATUS(a.req("DELETE", loc), 204);
  EXPECT_STATUS(a.req("GET", loc), 404);

  // A body cut off half-way: nothing is stored as a blob; the session keeps what came.
  start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  loc = start.header("Location").value_or("");
  auto whole = random_bytes(100000, 5);
  auto wd = sha256_digest(whole);
  {
    test::RawConnection raw(env.server().port());
    raw.send("PUT " + loc + "?digest=" + wd + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token() +
             "\r\nContent-Length: 100000\r\n\r\n" + whole.substr(0, 40000));
  }
  CHECK(authtest::eventually([&] { return a.req("GET", loc).header("Range").value_or("") == "0-39999"; }));
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/app/blobs/" + wd), 404);
  CHECK_FALSE(std::filesystem::exists(blob_file(env, wd)));
  // The client goes on from where it was cut off.
  auto rest = a.req("PUT", loc + "?digest=" + wd, whole.substr(40000), {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(rest, 201);
  CHECK(a.req("GET", "/v2/alice/app/blobs/" + wd).body == whole);
}

TEST_CASE_TEMPLATE("registry: blobs are stored once and mounted across repositories with read on the source", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  Reg a{env, alice.token()}, b{env, bob.token()};
  auto data = random_bytes(4096, 7);
  auto d = a.push_blob("alice/one", data);
  auto m = a.req("POST", "/v2/alice/two/blobs/uploads/?mount=" + d + "&from=alice/one");
  EXPECT_STATUS(m, 201);
  CHECK(m.header("Docker-Content-Digest").value_or("") == d);
  CHECK(a.req("GET", "/v2/alice/two/blobs/" + d).body == data);
  // The same bytes pushed again to a third repository: still one file.
  a.push_blob("alice/three", data);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(env.server().data_dir() / "registry" / "blobs"))
    if (e.is_regular_file()) ++files;
  CHECK(files == 1);

  // bob may not read alice/one: his mount becomes an ordinary upload, and nothing is linked.
  auto bm = b.req("POST", "/v2/bob/x/blobs/uploads/?mount=" + d + "&from=alice/one");
  EXPECT_STATUS(bm, 202);
  CHECK(bm.header("Location").value_or("").starts_with("/v2/bob/x/blobs/uploads/"));
  EXPECT_STATUS(b.req("HEAD", "/v2/bob/x/blobs/" + d), 404);
  // Other projects' repositories: pull hidden, push denied.
  auto pull = b.req("GET", "/v2/alice/one/blobs/" + d);
  EXPECT_STATUS(pull, 404);
  CHECK(oci_code(pull) == "NAME_UNKNOWN");
  auto push = b.req("POST", "/v2/alice/one/blobs/uploads/");
  EXPECT_STATUS(push, 403);
  CHECK(oci_code(push) == "DENIED");
  // Shared read lets bob pull but not push.
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions",
                            json::array({{{"uri", "image://test/alice/one"}, {"action", "read"}}})),
                 201);
  CHECK(authtest::eventually([&] { return b.req("GET", "/v2/alice/one/blobs/" + d).status == 200; }));
  CHECK(oci_code(b.req("DELETE", "/v2/alice/one/blobs/" + d)) == "DENIED");
  // ... and now mount from it.
  EXPECT_STATUS(b.req("POST", "/v2/bob/x/blobs/uploads/?mount=" + d + "&from=alice/one"), 201);
}

TEST_CASE_TEMPLATE("registry: manifests and indexes by tag and digest, and bad ones refused", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, {}, "modules:\n  registry:\n    max_manifest_size: 64KiB\n");
  auto alice = env.user("alice");
  Reg a{env, alice.token()};
  auto manifest = image(a, "alice/app", {random_bytes(2000, 1), random_bytes(3000, 2)});
  auto md = sha256_digest(manifest);
  auto put = a.put_manifest("alice/app", "v1", manifest);
  REQUIRE_STATUS(put, 201);
  CHECK(put.header("Docker-Content-Digest").value_or("") == md);
  CHECK(put.header("Location").value_or("") == "/v2/alice/app/manifests/" + md);
  for (const auto& ref : {std::string("v1"), md}) {
    auto g = a.req("GET", "/v2/alice/app/manifests/" + ref);
    REQUIRE_STATUS(g, 200);
    CHECK(g.body == manifest);
    CHECK(g.header("Content-Type").value_or("") == registry::kOciManifest);
    CHECK(g.header("Docker-Content-Digest").value_or("") == md);
    auto h = a.req("HEAD", "/v2/alice/app/manifests/" + ref);
    EXPECT_STATUS(h, 200);
    CHECK(h.header("Content-Length").value_or("") == std::to_string(manifest.size()));
  }

  // Docker schema 2, and a manifest list / OCI index over it and the OCI one.
  auto cfg = std::string("{\"architecture\":\"arm64\"}");
  auto docker = image(a, "alice/app", {random_bytes(100, 3)}, cfg, "application/vnd.docker.container.image.v1+json");
  auto dj = json::parse(docker);
  dj["mediaType"] = registry::kDockerManifest;
  docker = dj.dump();
  REQUIRE_STATUS(a.put_manifest("alice/app", "docker", docker, std::string(registry::kDockerManifest)), 201);
  CHECK(a.req("GET", "/v2/alice/app/manifests/docker").header("Content-Type").value_or("") == registry::kDockerManifest);
  for (auto type : {registry::kOciIndex, registry::kDockerList}) {
    auto index = json{{"schemaVersion", 2},
                      {"mediaType", type},
                      {"manifests", json::array({descriptor(std::string(registry::kOciManifest), manifest),
                                                 descriptor(std::string(registry::kDockerManifest), docker)})}}
                     .dump();
    auto r = a.put_manifest("alice/app", "multi", index, std::string(type));
    EXPECT_STATUS(r, 201);
    CHECK(a.req("GET", "/v2/alice/app/manifests/multi").body == index);
  }
  // An index over a manifest that is not there.
  auto missing = json{{"schemaVersion", 2},
                      {"mediaType", registry::kOciIndex},
                      {"manifests", json::array({descriptor(std::string(registry::kOciManifest), "nope")})}}
                     .dump();
  auto r = a.put_manifest("alice/app", "broken", missing, std::string(registry::kOciIndex));
  EXPECT_STATUS(r, 400);
  CHECK(oci_code(r) == "MANIFEST_BLOB_UNKNOWN");

  // A manifest whose layer was never pushed: refused, and nothing of it is stored.
  auto orphan = json{{"schemaVersion", 2},
                     {"mediaType", registry::kOciManifest},
                     {"config", descriptor("application/vnd.oci.image.config.v1+json", "{}")},
                     {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar", "never pushed")})}}
                    .dump();
  r = a.put_manifest("alice/app", "orphan", orphan);
  EXPECT_STATUS(r, 400);
  CHECK(oci_code(r) == "MANIFEST_BLOB_UNKNOWN");
  CHECK(oci_code(a.req("GET", "/v2/alice/app/manifests/orphan")) == "MANIFEST_UNKNOWN");
  CHECK(oci_code(a.req("GET", "/v2/alice/app/manifests/" + sha256_digest(orphan))) == "MANIFEST_UNKNOWN");
  CHECK_FALSE(std::filesystem::exists(blob_file(env, sha256_digest(orphan))));

  // Invalid JSON, wrong shapes, a mismatched digest, a huge body, a bad tag.
  CHECK(oci_code(a.put_manifest("alice/app", "x", "{not json")) == "MANIFEST_INVALID");
  CHECK(oci_code(a.put_manifest("alice/app", "x", "[]")) == "MANIFEST_INVALID");
  CHECK(oci_code(a.put_manifest("alice/app", "x", R"({"schemaVersion":2,"layers":[]})")) == "MANIFEST_INVALID");
  CHECK(oci_code(a.put_manifest("alice/app", "x", manifest, "application/vnd.oci.image.index.v1+json")) ==
        "MANIFEST_INVALID");
  r = a.put_manifest("alice/app", sha256_digest("other"), manifest);
  EXPECT_STATUS(r, 400);
  CHECK(oci_code(r) == "DIGEST_INVALID");
  auto huge = json{{"schemaVersion", 2}, {"padding", std::string(100000, 'x')}}.dump();
  r = a.put_manifest("alice/app", "huge", huge);
  EXPECT_STATUS(r, 413);
  CHECK(oci_code(r) == "SIZE_INVALID");
  CHECK(oci_code(a.put_manifest("alice/app", "-bad", manifest)) == "MANIFEST_INVALID");
  CHECK(oci_code(a.req("GET", "/v2/alice/app/manifests/huge")) == "MANIFEST_UNKNOWN");

  // Repository names: '..', uppercase, one component, empty parts.
  for (auto name : {"alice/../bob", "alice/App", "Alice/app", "alice//app", "alice/app-", "alice/a..b"}) {
    CAPTURE(name);
    auto res = a.req("GET", std::string("/v2/") + name + "/manifests/v1");
    EXPECT_STATUS(res, 400);
    CHECK(oci_code(res) == "NAME_INVALID");
    CHECK(oci_code(a.req("POST", std::string("/v2/") + name + "/blobs/uploads/")) == "NAME_INVALID");
  }
  CHECK(oci_code(a.req("GET", "/v2/alice/manifests/v1")) == "NAME_INVALID");
}

TEST_CASE_TEMPLATE("registry: tags page with n and last, and the catalog shows what the caller may pull", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  Reg a{env, alice.token()}, b{env, bob.token()};
  auto manifest = image(a, "alice/app", {random_bytes(10, 1)});
  std::vector<std::string> want;
  for (int i = 0; i < 7; ++i) {
    auto tag = "t" + std::to_string(i);
    REQUIRE_STATUS(a.put_manifest("alice/app", tag, manifest), 201);
    want.push_back(tag);
  }
  std::vector<std::string> got;
  std::string next = "/v2/alice/app/tags/list?n=3";
  int pages = 0;
  while (!next.empty() && pages < 10) {
    auto r = a.req("GET", next);
    REQUIRE_STATUS(r, 200);
    auto body = r.json();
    CHECK(body["name"] == "alice/app");
    CHECK(body["tags"].size() <= 3);
    for (const auto& t : body["tags"]) got.push_back(t.template get<std::string>());
    next.clear();
    if (auto link = r.header("Link")) {
      auto lt = link->find('<'), gt = link->find('>');
      REQUIRE(lt != std::string::npos);
      next = link->substr(lt + 1, gt - lt - 1);
      CHECK(link->find("rel=\"next\"") != std::string::npos);
    }
    ++pages;
  }
  CHECK(pages == 3);
  CHECK(got == want);
  auto all = a.req("GET", "/v2/alice/app/tags/list").json();
  CHECK(all["tags"].size() == 7);
  auto after = a.req("GET", "/v2/alice/app/tags/list?last=t4").json();
  CHECK(after["tags"] == json::array({"t5", "t6"}));
  CHECK(oci_code(a.req("GET", "/v2/alice/nothing/tags/list")) == "NAME_UNKNOWN");
  CHECK(oci_code(b.req("GET", "/v2/alice/app/tags/list")) == "NAME_UNKNOWN");

  // The catalog: each sees their own.
  image(b, "bob/tool", {random_bytes(10, 2)});
  image(a, "alice/zeta", {random_bytes(10, 3)});
  auto ca = a.req("GET", "/v2/_catalog").json();
  CHECK(ca["repositories"] == json::array({"alice/app", "alice/zeta"}));
  auto cb = b.req("GET", "/v2/_catalog").json();
  CHECK(cb["repositories"] == json::array({"bob/tool"}));
  auto p1 = a.req("GET", "/v2/_catalog?n=1");
  CHECK(p1.json()["repositories"] == json::array({"alice/app"}));
  CHECK(p1.header("Link").value_or("").find("last=alice/app") != std::string::npos);
  CHECK(a.req("GET", "/v2/_catalog?n=1&last=alice/app").json()["repositories"] == json::array({"alice/zeta"}));
  auto admin = Reg{env, env.admin().token()}.req("GET", "/v2/_catalog").json();
  CHECK(admin["repositories"].size() == 3);
}

TEST_CASE_TEMPLATE("registry: referrers list manifests by subject with artifactType filtering", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  Reg a{env, alice.token()};
  auto manifest = image(a, "alice/app", {random_bytes(10, 1)});
  auto md = sha256_digest(manifest);
  REQUIRE_STATUS(a.put_manifest("alice/app", "v1", manifest), 201);
  // Two artifacts about it: a signature and an SBOM (artifactType from the field and from the config).
  a.push_blob("alice/app", "{}");
  auto subject = descriptor(std::string(registry::kOciManifest), manifest);
  auto empty_cfg = descriptor("application/vnd.oci.empty.v1+json", "{}");
  auto sig = json{{"schemaVersion", 2},
                  {"mediaType", registry::kOciManifest},
                  {"artifactType", "application/vnd.example.signature"},
                  {"config", empty_cfg},
                  {"layers", json::array()},
                  {"subject", subject},
                  {"annotations", {{"org.example.kind", "sig"}}}}
                 .dump();
  auto sbom_cfg = std::string("{\"sbom\":1}");
  a.push_blob("alice/app", sbom_cfg);
  auto sbom = json{{"schemaVersion", 2},
                   {"mediaType", registry::kOciManifest},
                   {"config", descriptor("application/vnd.example.sbom", sbom_cfg)},
                   {"layers", json::array()},
                   {"subject", subject}}
                  .dump();
  auto r = a.put_manifest("alice/app", sha256_digest(sig), sig);
  REQUIRE_STATUS(r, 201);
  CHECK(r.header("OCI-Subject").value_or("") == md);
  REQUIRE_STATUS(a.put_manifest("alice/app", sha256_digest(sbom), sbom), 201);

  auto all = a.req("GET", "/v2/alice/app/referrers/" + md);
  REQUIRE_STATUS(all, 200);
  CHECK(all.header("Content-Type").value_or("") == registry::kOciIndex);
  CHECK_FALSE(all.header("OCI-Filters-Applied").has_value());
  auto body = all.json();
  REQUIRE(body["manifests"].size() == 2);
  std::set<std::string> types;
  for (const auto& m : body["manifests"]) types.insert(m["artifactType"].template get<std::string>());
  CHECK(types == std::set<std::string>{"application/vnd.example.signature", "application/vnd.example.sbom"});
  auto f = a.req("GET", "/v2/alice/app/referrers/" + md + "?artifactType=application/vnd.example.signature");
  REQUIRE_STATUS(f, 200);
  CHECK(f.header("OCI-Filters-Applied").value_or("") == "artifactType");
  auto fb = f.json();
  REQUIRE(fb["manifests"].size() == 1);
  CHECK(fb["manifests"][0]["digest"] == sha256_digest(sig));
  CHECK(fb["manifests"][0]["annotations"]["org.example.kind"] == "sig");
  // A subject with no referrers: an empty index, not an error.
  auto none = a.req("GET", "/v2/alice/app/referrers/" + sha256_digest("x"));
  EXPECT_STATUS(none, 200);
  CHECK(none.json()["manifests"].empty());
  CHECK(oci_code(a.req("GET", "/v2/alice/app/referrers/sha256:zz")) == "DIGEST_INVALID");
}

TEST_CASE_TEMPLATE("registry: deletes, and garbage collection keeps what is referenced and frees the rest", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, {}, kGc);
  auto alice = env.user("alice");
  Reg a{env, alice.token()};
  auto l1 = random_bytes(5000, 1), l2 = random_bytes(6000, 2), l3 = random_bytes(7000, 3);
  auto keep = image(a, "alice/app", {l1, l2});
  REQUIRE_STATUS(a.put_manifest("alice/app", "keep", keep), 201);
  auto drop = image(a, "alice/app", {l3}, "{\"drop\":1}");
  REQUIRE_STATUS(a.put_manifest("alice/app", "drop", drop), 201);
  auto stray = random_bytes(8000, 4);
  a.push_blob("alice/app", stray);
  // l1 is also in another repository whose manifest is deleted: still kept for alice/app.
  auto other = image(a, "alice/other", {l1});
  REQUIRE_STATUS(a.put_manifest("alice/other", "v1", other), 201);

  // Deleting a tag leaves the manifest; deleting by digest removes it and its tags.
  EXPECT_STATUS(a.req("DELETE", "/v2/alice/app/manifests/drop"), 202);
  CHECK(oci_code(a.req("GET", "/v2/alice/app/manifests/drop")) == "MANIFEST_UNKNOWN");
  EXPECT_STATUS(a.req("GET", "/v2/alice/app/manifests/" + sha256_digest(drop)), 200);
  EXPECT_STATUS(a.req("DELETE", "/v2/alice/app/manifests/" + sha256_digest(drop)), 202);
  EXPECT_STATUS(a.req("GET", "/v2/alice/app/manifests/" + sha256_digest(drop)), 404);
  CHECK(oci_code(a.req("DELETE", "/v2/alice/app/manifests/" + sha256_digest(drop))) == "MANIFEST_UNKNOWN");
  EXPECT_STATUS(a.req("DELETE", "/v2/alice/other/manifests/" + sha256_digest(other)), 202);
  // A blob delete unlinks it from that repository only.
  auto sd = sha256_digest(stray);
  a.push_blob("alice/other", stray);
  EXPECT_STATUS(a.req("DELETE", "/v2/alice/other/blobs/" + sd), 202);
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/other/blobs/" + sd), 404);
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/app/blobs/" + sd), 200);
  CHECK(oci_code(a.req("DELETE", "/v2/alice/other/blobs/" + sd)) == "BLOB_UNKNOWN");

  // An upload in progress is no blob and must survive.
  auto start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  auto loc = start.header("Location").value_or("");
  REQUIRE_STATUS(a.req("PATCH", loc, "partial", {{"Content-Type", "application/octet-stream"}}), 202);

  registry::BlobStore store(env.server().data_dir() / "registry");
  auto result = registry::collect_garbage(env.server().app().db(), store, std::chrono::milliseconds(0));
  // Blobs: l3, drop's config, both deleted manifests and the stray blob. Links: drop's
  // config, l3 and stray in alice/app; the config and l1 in alice/other.
  CHECK(result.blobs == 5);
  CHECK(result.links == 5);

  for (const auto& d : {sha256_digest(keep), sha256_digest(l1), sha256_digest(l2), sha256_digest("{}")}) {
    CAPTURE(d);
    CHECK(std::filesystem::exists(blob_file(env, d)));
  }
  CHECK(a.req("GET", "/v2/alice/app/manifests/keep").body == keep);
  CHECK(a.req("GET", "/v2/alice/app/blobs/" + sha256_digest(l2)).body == l2);
  for (const auto& d : {sha256_digest(l3), sha256_digest(drop), sha256_digest("{\"drop\":1}"), sd}) {
    CAPTURE(d);
    CHECK_FALSE(std::filesystem::exists(blob_file(env, d)));
  }
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/app/blobs/" + sd), 404);
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/other/blobs/" + sha256_digest(l1)), 404);
  // The upload goes on and completes.
  EXPECT_STATUS(a.req("PUT", loc + "?digest=" + sha256_digest("partial")), 201);
  // A second pass finds nothing more to do.
  auto again = registry::collect_garbage(env.server().app().db(), store, std::chrono::hours(1));
  CHECK(again.blobs == 0);
}

TEST_CASE_TEMPLATE("registry: the token flow issues scoped tokens that cannot exceed their scope", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  Reg full{env, alice.token()};
  auto manifest = image(full, "alice/app", {random_bytes(10, 1)});
  REQUIRE_STATUS(full.put_manifest("alice/app", "v1", manifest), 201);
  Reg bb{env, bob.token()};
  REQUIRE_STATUS(bb.put_manifest("bob/x", "v1", image(bb, "bob/x", {random_bytes(10, 2)})), 201);

  Reg anon{env, ""};
  auto basic = authtest::Headers{{"Authorization", "Basic " + authtest::base64("alice:" + alice.token())}};
  auto refused = anon.req("GET", "/v2/token?service=neurod&scope=repository:alice/app:pull");
  EXPECT_STATUS(refused, 401);
  CHECK(oci_code(refused) == "UNAUTHORIZED");

  auto t = anon.req("GET", "/v2/token?service=neurod&scope=repository:alice/app:pull&scope=repository:bob/x:pull,push",
                    "", basic);
  REQUIRE_STATUS(t, 200);
  auto tj = t.json();
  CHECK(tj["token"] == tj["access_token"]);
  CHECK(tj["expires_in"] == 300);
  CHECK(tj["issued_at"].template get<std::string>().size() == 20);
  Reg scoped{env, tj["token"].template get<std::string>()};
  // It pulls alice/app ...
  CHECK(scoped.req("GET", "/v2/alice/app/manifests/v1").body == manifest);
  // ... but cannot push there (the answer asks for a wider token), nor read bob's.
  auto push = scoped.req("POST", "/v2/alice/app/blobs/uploads/");
  EXPECT_STATUS(push, 401);
  CHECK(push.header("WWW-Authenticate").value_or("").find("scope=\"repository:alice/app:pull,push\"") !=
        std::string::npos);
  EXPECT_STATUS(scoped.req("GET", "/v2/bob/x/tags/list"), 401);
  EXPECT_STATUS(scoped.req("GET", "/v2/alice/other/tags/list"), 401);
  // Not a token for the rest of the API.
  EXPECT_STATUS(scoped.req("GET", "/api/v1/auth/whoami"), 401);
  // Exchanged at /v2/token (what podman does with a job's pull token), it yields no more
  // than it holds.
  auto ex = scoped.req("GET", "/v2/token?scope=repository:alice/app:pull,push&scope=repository:bob/x:pull"
                              "&scope=registry:catalog:*");
  REQUIRE_STATUS(ex, 200);
  const auto exj = ex.json();
  Reg exchanged{env, exj["token"].template get<std::string>()};
  CHECK(exchanged.req("GET", "/v2/alice/app/manifests/v1").body == manifest);
  EXPECT_STATUS(exchanged.req("POST", "/v2/alice/app/blobs/uploads/"), 401);
  EXPECT_STATUS(exchanged.req("GET", "/v2/bob/x/tags/list"), 401);
  EXPECT_STATUS(exchanged.req("GET", "/v2/_catalog"), 401);
  // Altered, it is refused.
  auto forged = tj["token"].template get<std::string>();
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_STATUS((Reg{env, forged}).req("GET", "/v2/alice/app/manifests/v1"), 401);

  // A push token works for push.
  auto tp = anon.req("GET", "/v2/token?service=neurod&scope=repository:alice/app:pull,push", "", basic);
  REQUIRE_STATUS(tp, 200);
  Reg pusher{env, tp.json()["token"].template get<std::string>()};
  pusher.push_blob("alice/app", "pushed with a scoped token");

  // Asking for what one may not have yields a token without it.
  auto tb = anon.req("GET", "/v2/token?service=neurod&scope=repository:bob/x:pull,push", "", basic);
  REQUIRE_STATUS(tb, 200);
  EXPECT_STATUS((Reg{env, tb.json()["token"].template get<std::string>()}).req("GET", "/v2/bob/x/manifests/v1"), 401);
}

TEST_CASE_TEMPLATE("registry: registry bytes count against the project's storage quota", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  REQUIRE_STATUS(env.admin().put("/api/v1/admin/quotas/projects/alice", {{"storage_bytes", 10000}}), 200);
  Reg a{env, alice.token()};
  auto first = random_bytes(6000, 1);
  a.push_blob("alice/app", first);
  // The same blob in another repository of the project costs nothing more.
  EXPECT_STATUS(a.req("POST", "/v2/alice/two/blobs/uploads/?mount=" + sha256_digest(first) + "&from=alice/app"), 201);
  auto second = random_bytes(6000, 2);
  auto start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  auto loc = start.header("Location").value_or("");
  auto r = a.req("PUT", loc + "?digest=" + sha256_digest(second), second, {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(r, 403);
  CHECK(oci_code(r) == "DENIED");
  CHECK(r.body.find("quota") != std::string::npos);
  EXPECT_STATUS(a.req("HEAD", "/v2/alice/app/blobs/" + sha256_digest(second)), 404);
  CHECK_FALSE(std::filesystem::exists(blob_file(env, sha256_digest(second))));
  // The storage API sees the same usage.
  auto s = alice.request("PUT", "/api/v1/storage/alice/f.bin", random_bytes(5000, 3),
                         {{"Content-Type", "application/octet-stream"}});
  EXPECT_STATUS(s, 403);
  // /metrics shows the project's registry bytes (the one blob, once).
  auto metrics = env.admin().get("/metrics").body;
  CHECK_MESSAGE(metrics.find("\nneurod_registry_bytes{project=\"alice\"} 6000\n") != std::string::npos, metrics);
}

TEST_CASE_TEMPLATE("registry: the background pass expires idle uploads and collects unreferenced blobs", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, {}, "modules:\n  registry:\n    gc_grace: 3s\n    gc_interval: 1s\n    upload_ttl: 1s\n");
  auto alice = env.user("alice");
  Reg a{env, alice.token()};
  auto manifest = image(a, "alice/app", {random_bytes(100, 1)});
  REQUIRE_STATUS(a.put_manifest("alice/app", "v1", manifest), 201);
  auto stray = random_bytes(100, 2);
  auto sd = a.push_blob("alice/app", stray);
  auto start = a.req("POST", "/v2/alice/app/blobs/uploads/");
  auto loc = start.header("Location").value_or("");
  REQUIRE_STATUS(a.req("PATCH", loc, "abc", {{"Content-Type", "application/octet-stream"}}), 202);
  CHECK(authtest::eventually([&] { return !std::filesystem::exists(blob_file(env, sd)); }, std::chrono::seconds(15)));
  CHECK(authtest::eventually([&] { return a.req("GET", loc).status == 404; }, std::chrono::seconds(15)));
  CHECK(a.req("GET", "/v2/alice/app/manifests/v1").body == manifest);
  CHECK(a.req("GET", "/v2/alice/app/blobs/" + sha256_digest("{}")).status == 200);
}

TEST_CASE("registry: an upload session survives a restart and goes on hashing where it stopped") {
  test::TempDir dir;
  registry::BlobStore store(dir.path() / "registry");
  auto data = random_bytes(300000, 9);
  std::string id;
  {
    registry::Uploads before(store, std::chrono::hours(1));
    auto s = before.start("alice/app", "alice", "alice");
    id = s->id;
    registry::AppendSink sink(s, 1 << 20);
    sink.write(data.data(), 100000);
    // One body at a time per session.
    CHECK_THROWS_AS(registry::AppendSink(s, 1 << 20), Error);
  }
  registry::Uploads after(store, std::chrono::hours(1));  // neurod restarted: nothing in memory
  auto s = after.find(id);
  REQUIRE(s);
  CHECK(s->size == 100000);
  CHECK(s->repository == "alice/app");
  {
    registry::AppendSink sink(s, 1 << 20);
    sink.write(data.data() + 100000, data.size() - 100000);
  }
  auto lock = store.commit_lock();
  CHECK(after.commit(s, sha256_digest(data)) == data.size());
  CHECK(store.read_blob(sha256_digest(data), 1 << 20) == data);
  CHECK_FALSE(after.find(id));
  // A size limit refuses the piece that passes it and keeps the session consistent.
  auto t = after.start("alice/app", "alice", "alice");
  {
    registry::AppendSink sink(t, 10);
    sink.write("12345", 5);
    CHECK_THROWS_AS(sink.write("678901", 6), Error);
  }
  CHECK(t->size == 5);
  CHECK_THROWS_AS(after.commit(t, sha256_digest("1234567890")), Error);  // wrong digest: dropped
  CHECK_FALSE(after.find(t->id));
}

TEST_CASE_TEMPLATE("registry: garbage collection racing pushes never leaves a link without its bytes", B,
                   NEUROD_DB_BACKENDS) {
  Env env(B::kDialect);
  auto alice = env.user("alice");
  auto data = random_bytes(200000, 11);
  auto digest = sha256_digest(data);
  registry::BlobStore store(env.server().data_dir() / "registry");
  std::vector<std::string> problems;
  std::atomic<bool> done{false};
  // The collector, with no grace at all, as often as it can.
  std::thread collector([&] {
    while (!done) registry::collect_garbage(env.server().app().db(), store, std::chrono::milliseconds(0));
  });
  for (int i = 0; i < 25; ++i) {
    auto c = env.server().client(alice.token());
    auto repo = "/v2/alice/r" + std::to_string(i % 3);
    auto start = c.request("POST", repo + "/blobs/uploads/");
    auto loc = start.header("Location").value_or("");
    auto put = c.request("PUT", loc + "?digest=" + digest, data, {{"Content-Type", "application/octet-stream"}});
    if (put.status != 201) problems.push_back("push: " + std::to_string(put.status) + " " + put.body);
    auto get = c.request("GET", repo + "/blobs/" + digest);
    // Collected meanwhile (no grace, no manifest) is fine; a link to missing bytes is not.
    if (get.status == 200 && get.body != data) problems.push_back("a partial or wrong body");
    if (get.status != 200 && get.body.find("missing on disk") != std::string::npos) problems.push_back(get.body);
  }
  done = true;
  collector.join();
  CHECK(problems.empty());
  for (const auto& p : problems) MESSAGE(p);
  // Every link the database holds has its bytes.
  auto links = env.server().app().db().read([](soci::session& s) {
    std::vector<std::string> out;
    soci::rowset<soci::row> rs = (s.prepare << "SELECT digest FROM registry_links");
    for (const auto& r : rs) out.push_back(r.get<std::string>(0));
    return out;
  });
  for (const auto& d : links) CHECK(std::filesystem::exists(blob_file(env, d)));
}

TEST_CASE_TEMPLATE("registry: an exchanged token never outlives the token it came from", B, NEUROD_DB_BACKENDS) {
  Env env(B::kDialect, {}, "modules:\n  registry:\n    token_ttl: 2s\n");
  auto alice = env.user("alice");
  Reg anon{env, ""};
  auto basic = authtest::Headers{{"Authorization", "Basic " + authtest::base64("alice:" + alice.token())}};
  auto first = anon.req("GET", "/v2/token?service=neurod&scope=repository:alice/app:pull", "", basic);
  REQUIRE_STATUS(first, 200);
  std::string original = first.json()["token"].template get<std::string>();
  std::string latest = original;
  // Exchanged again and again, as a client following challenges would.
  bool original_expired = authtest::eventually(
      [&] {
        auto ex = (Reg{env, latest}).req("GET", "/v2/token?service=neurod&scope=repository:alice/app:pull");
        if (ex.status == 200) latest = ex.json()["token"].template get<std::string>();
        return (Reg{env, original}).req("GET", "/v2/").status == 401;
      },
      std::chrono::seconds(10));
  REQUIRE(original_expired);
  EXPECT_STATUS((Reg{env, latest}).req("GET", "/v2/"), 401);
  // Over Basic too (the token as the password).
  auto again = anon.req("GET", "/v2/token?scope=repository:alice/app:pull", "",
                        {{"Authorization", "Basic " + authtest::base64("x:" + latest)}});
  EXPECT_STATUS(again, 401);
}

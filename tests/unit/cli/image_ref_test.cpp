#include "cli/image_ref.hpp"
#include "cli/output.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace neurod::cli;
using nlohmann::json;

namespace {

Exit exit_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CliError& e) {
    return e.exit();
  }
  return Exit::ok;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CliError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("image URIs: short, absolute and with a cluster") {
  auto s = ImageUri::parse("image:train:1");
  CHECK(s.relative);
  CHECK_FALSE(s.cluster);
  CHECK(s.name == "train");
  CHECK(s.tag == "1");
  CHECK(s.digest.empty());
  auto sr = s.resolved("alice");
  CHECK(sr.repository() == "alice/train");
  CHECK(sr.reference() == "1");
  CHECK(sr.display() == "image:train:1");

  auto nt = ImageUri::parse("image:train").resolved("alice");
  CHECK(nt.tag.empty());
  CHECK_FALSE(nt.has_reference());
  CHECK(nt.reference() == "latest");

  auto a = ImageUri::parse("image:/ml/team/train:v2.0-rc_1");
  CHECK_FALSE(a.relative);
  CHECK(a.project == "ml");
  CHECK(a.name == "team/train");
  CHECK(a.tag == "v2.0-rc_1");
  CHECK(a.repository() == "ml/team/train");
  CHECK(a.display() == "image:/ml/team/train:v2.0-rc_1");
  CHECK(a.display("ml") == "image:team/train:v2.0-rc_1");
  CHECK(a.display("alice") == "image:/ml/team/train:v2.0-rc_1");
  CHECK(a.resolved("alice").project == "ml");

  auto c = ImageUri::parse("image://e2e/bob/x:1");
  REQUIRE(c.cluster);
  CHECK(*c.cluster == "e2e");
  CHECK(c.project == "bob");
  CHECK(c.repository() == "bob/x");

  auto d = ImageUri::parse("image:x@sha256:0123abcd");
  CHECK(d.name == "x");
  CHECK(d.tag.empty());
  CHECK(d.digest == "sha256:0123abcd");
  CHECK(d.reference() == "sha256:0123abcd");
  CHECK(d.display() == "image:x@sha256:0123abcd");

  // A short name may hold '/': it is all the name, in the current project.
  auto n = ImageUri::parse("image:a/b.c__d-e:1").resolved("alice");
  CHECK(n.repository() == "alice/a/b.c__d-e");
  CHECK(is_image_uri("image:x"));
  CHECK_FALSE(is_image_uri("storage:x"));
}

TEST_CASE("image URIs: malformed ones are usage errors that say why") {
  for (const char* bad : {"train:1", "image:", "image:/ml", "image:/ml/", "image://", "image://e2e", "image:Train:1",
                          "image:x..y", "image:x/../y", "image:-x", "image:x:", "image:x:-1", "image:x:a b",
                          "image:x@sha256", "image:x:1@sha256:00", "image:/ML/x:1", "image:x//y"}) {
    CAPTURE(bad);
    CHECK(exit_of([&] { ImageUri::parse(bad); }) == Exit::usage);
  }
  CHECK(message_of([] { ImageUri::parse("image:Train"); }).find("lower-case") != std::string::npos);
  CHECK(message_of([] { ImageUri::parse("x:1"); }).find("image:NAME[:TAG]") != std::string::npos);
  CHECK(exit_of([] { ImageUri::parse("image:x:" + std::string(128, 'a')); }) == Exit::ok);
  CHECK(exit_of([] { ImageUri::parse("image:x:" + std::string(129, 'a')); }) == Exit::usage);
}

TEST_CASE("local image names: registry hosts and docker.io's library dropped, latest by default") {
  auto l = parse_local_image("train:1");
  CHECK(l.ref == "train:1");
  CHECK(l.name == "train");
  CHECK(l.tag == "1");
  CHECK(parse_local_image("localhost/train:1").name == "train");
  CHECK(parse_local_image("localhost:5000/team/train").name == "team/train");
  CHECK(parse_local_image("localhost:5000/team/train").tag == "latest");
  CHECK(parse_local_image("docker.io/library/ubuntu:24.04").name == "ubuntu");
  CHECK(parse_local_image("quay.io/library/x").name == "library/x");
  CHECK(parse_local_image("ubuntu").tag == "latest");
  CHECK(parse_local_image("x@sha256:00").by_digest);
  CHECK(exit_of([] { parse_local_image("image:x:1"); }) == Exit::usage);
  CHECK(exit_of([] { parse_local_image("Upper:1"); }) == Exit::usage);
  CHECK(exit_of([] { parse_local_image("localhost/"); }) == Exit::usage);
}

TEST_CASE("the registry host is the server URL's host and port") {
  CHECK(registry_host("http", "127.0.0.1", "8080") == "127.0.0.1:8080");
  CHECK(registry_host("http", "box", "80") == "box:80");
  CHECK(registry_host("https", "neuro.example.com", "443") == "neuro.example.com");
  CHECK(registry_host("https", "neuro.example.com", "8443") == "neuro.example.com:8443");
  CHECK(registry_host("http", "::1", "8080") == "[::1]:8080");

  CHECK(normalize_registry("127.0.0.1:8080\n") == "127.0.0.1:8080");
  CHECK(normalize_registry("http://127.0.0.1:8080/v2/") == "127.0.0.1:8080");
  CHECK(normalize_registry("https://Neuro.Example.com:443") == "neuro.example.com");
  CHECK(normalize_registry("neuro.example.com") == "neuro.example.com");
}

TEST_CASE("Link pagination: the next page's target") {
  CHECK(next_link("</v2/_catalog?last=b&n=2>; rel=\"next\"") == "/v2/_catalog?last=b&n=2");
  CHECK(next_link("<http://127.0.0.1:8080/v2/a/b/tags/list?n=1&last=1>; rel=\"next\"") ==
        "/v2/a/b/tags/list?n=1&last=1");
  CHECK(next_link("</v2/x?p=1>; rel=\"prev\", </v2/x?p=3>; rel=\"next\"") == "/v2/x?p=3");
  CHECK(next_link("</v2/x?p=3>;rel=next") == "/v2/x?p=3");
  CHECK_FALSE(next_link("</v2/x?p=1>; rel=\"prev\""));
  CHECK_FALSE(next_link(""));
  CHECK_FALSE(next_link("garbage"));
}

TEST_CASE("registry errors: the spec's error list, readable, with exit codes") {
  auto e = registry_error(404, R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"alice/x"}}]})",
                          "req-1");
  CHECK(e.exit() == Exit::server);
  CHECK(std::string(e.what()) ==
        "repository name not known to registry (HTTP 404 Not Found, NAME_UNKNOWN, request id req-1)");

  auto two = registry_error(400, R"({"errors":[{"code":"DIGEST_INVALID","message":"bad digest","detail":"sha256:00"},{"code":"SIZE_INVALID","message":"bad size"}]})");
  CHECK(std::string(two.what()) == "bad digest: sha256:00; bad size (HTTP 400 Bad Request, DIGEST_INVALID, SIZE_INVALID)");

  auto unauth = registry_error(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})");
  CHECK(unauth.exit() == Exit::auth);
  CHECK(std::string(unauth.what()).find("neuro login") != std::string::npos);

  auto denied = registry_error(403, R"({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})");
  CHECK(denied.exit() == Exit::auth);
  CHECK(std::string(denied.what()).starts_with("permission denied: "));
  auto missing = registry_error(403, R"({"errors":[{"code":"DENIED","message":"requested access to alice/x is denied",
    "detail":{"missing":[{"uri":"image://c/alice/x","action":"write"}]}}]})", "r9");
  CHECK(std::string(missing.what()) ==
        "permission denied: requested access to alice/x is denied (HTTP 403 Forbidden, DENIED, request id r9)\n"
        "Missing:\n  write on image://c/alice/x");

  // neurod's own error body, and a HEAD's empty one.
  auto own = registry_error(404, R"({"error":{"code":"not_found","message":"no route","request_id":"r"}})");
  CHECK(own.exit() == Exit::server);
  CHECK(std::string(own.what()) == "no route (HTTP 404 Not Found, not_found, request id r)");
  auto empty = registry_error(500, "", "r2");
  CHECK(empty.exit() == Exit::server);
  CHECK(std::string(empty.what()).find("request id r2") != std::string::npos);
  CHECK(registry_error(401, "", "r3").exit() == Exit::auth);
}

TEST_CASE("manifest sizes: config plus layers, indexes by media type, platforms") {
  auto m = json::parse(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":100},
    "layers":[{"digest":"sha256:a","size":1000},{"digest":"sha256:b","size":24}]})");
  CHECK_FALSE(is_index(m, ""));
  CHECK(image_size(m) == 1124);

  auto idx = json::parse(R"({"schemaVersion":2,"manifests":[
    {"digest":"sha256:1","size":5,"platform":{"os":"linux","architecture":"amd64"}},
    {"digest":"sha256:2","size":5,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
    {"digest":"sha256:3","size":5}]})");
  CHECK(is_index(idx, std::string(kOciIndex)));
  CHECK(is_index(idx, ""));  // no mediaType: by its "manifests"
  CHECK(is_index(json{{"mediaType", std::string(kDockerList)}}, ""));
  CHECK_FALSE(is_index(json::object(), std::string(kDockerManifest) + "; charset=utf-8"));
  CHECK(platform_string(idx["manifests"][0]) == "linux/amd64");
  CHECK(platform_string(idx["manifests"][1]) == "linux/arm64/v8");
  CHECK(platform_string(idx["manifests"][2]) == "unknown");

  CHECK(exit_of([] { image_size(json::parse(R"({"layers":[]})")); }) == Exit::server);
  CHECK(exit_of([] { image_size(json::parse(R"({"config":{"size":1},"layers":[{"digest":"x"}]})")); }) == Exit::server);
  CHECK(exit_of([] { image_size(json::parse(R"({"config":{"size":-1},"layers":[]})")); }) == Exit::server);

  auto accept = manifest_accept();
  for (auto t : {kOciManifest, kOciIndex, kDockerManifest, kDockerList}) CHECK(accept.find(t) != std::string::npos);
}

TEST_CASE("push and pull commands keep credentials off the command line") {
  auto pp = push_commands(Engine::podman, "train:1", "127.0.0.1:8080/alice/train:1", "/run/x", false, false);
  REQUIRE(pp.size() == 1);
  CHECK(pp[0] == Argv{"podman", "push", "--authfile", "/run/x/config.json", "--tls-verify=false", "train:1",
                      "docker://127.0.0.1:8080/alice/train:1"});
  auto pq = push_commands(Engine::podman, "train:1", "h/alice/train:1", "/run/x", true, true);
  CHECK(pq[0] == Argv{"podman", "push", "--quiet", "--authfile", "/run/x/config.json", "train:1", "docker://h/alice/train:1"});

  auto dp = push_commands(Engine::docker, "train:1", "h:1/alice/train:1", "/run/x", false, false);
  REQUIRE(dp.size() == 2);
  CHECK(dp[0] == Argv{"docker", "tag", "train:1", "h:1/alice/train:1"});
  CHECK(dp[1] == Argv{"docker", "--config", "/run/x", "push", "h:1/alice/train:1"});

  auto pl = pull_commands(Engine::podman, "h:1/alice/train:1", "train:1", "/run/x", false, false);
  REQUIRE(pl.size() == 2);
  CHECK(pl[0] == Argv{"podman", "pull", "--authfile", "/run/x/config.json", "--tls-verify=false", "docker://h:1/alice/train:1"});
  CHECK(pl[1] == Argv{"podman", "tag", "h:1/alice/train:1", "train:1"});
  auto dl = pull_commands(Engine::docker, "h:1/alice/train:1", "train:1", "/run/x", true, true);
  CHECK(dl[0] == Argv{"docker", "--config", "/run/x", "pull", "--quiet", "h:1/alice/train:1"});

  CHECK(parse_engine("podman") == Engine::podman);
  CHECK(parse_engine("docker") == Engine::docker);
  CHECK_FALSE(parse_engine(""));
  CHECK_FALSE(parse_engine("auto"));
  CHECK(exit_of([] { parse_engine("buildah"); }) == Exit::usage);
}

TEST_CASE("base64 and Basic auth") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode(std::string("\xff\x00\x80", 3)) == "/wCA");
  CHECK(basic_auth("alice", "tok:en") == "Basic YWxpY2U6dG9rOmVu");
}

TEST_CASE("auth files: the helper or the token for the registry, everything else kept") {
  auto existing = json::parse(R"({"auths":{"other:5000":{"auth":"eDp5"},"h:1":{"auth":"b2xkOm9sZA=="}},
    "credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop","HttpHeaders":{"X":"y"}})");
  auto helper = with_registry_auth(existing, "h:1", "neuro", std::nullopt);
  CHECK(helper["credHelpers"]["h:1"] == "neuro");
  CHECK(helper["credHelpers"]["gcr.io"] == "gcloud");
  CHECK(helper["auths"].contains("other:5000"));
  CHECK_FALSE(helper["auths"].contains("h:1"));  // no stale token in clear
  CHECK(helper["credsStore"] == "desktop");
  CHECK(helper["HttpHeaders"]["X"] == "y");

  auto inline_token = with_registry_auth(helper, "h:1", "neuro", std::make_pair(std::string("alice"), std::string("t0k")));
  CHECK(inline_token["auths"]["h:1"]["auth"] == base64_encode("alice:t0k"));
  CHECK_FALSE(inline_token["credHelpers"].contains("h:1"));
  CHECK(inline_token["credHelpers"]["gcr.io"] == "gcloud");

  auto fresh = with_registry_auth(json(nullptr), "h:1", "neuro", std::nullopt);
  CHECK(fresh == json::parse(R"({"credHelpers":{"h:1":"neuro"}})"));
  // Emptied maps go away rather than stay as {}.
  auto only = with_registry_auth(json::parse(R"({"credHelpers":{"h:1":"neuro"}})"), "h:1", "",
                                 std::make_pair(std::string("a"), std::string("b")));
  CHECK_FALSE(only.contains("credHelpers"));

  CHECK(exit_of([] { with_registry_auth(json::array(), "h", "neuro", std::nullopt); }) == Exit::usage);
  CHECK(exit_of([] { with_registry_auth(json::parse(R"({"auths":[]})"), "h", "neuro", std::nullopt); }) == Exit::usage);
  CHECK(exit_of([] { with_registry_auth(json::parse(R"({"credHelpers":"x"})"), "h", "neuro", std::nullopt); }) ==
        Exit::usage);
}

TEST_CASE("the credential helper protocol: get, store, erase, list") {
  auto got = credential_helper("get", "127.0.0.1:8080\n", "127.0.0.1:8080", "alice", "tok");
  CHECK(got.exit == 0);
  auto j = json::parse(got.out);
  CHECK(j == json{{"ServerURL", "127.0.0.1:8080"}, {"Username", "alice"}, {"Secret", "tok"}});
  CHECK(got.out.back() == '\n');

  // Written as a URL, it is the same registry.
  CHECK(credential_helper("get", "http://127.0.0.1:8080/v2/", "127.0.0.1:8080", "alice", "tok").exit == 0);

  // Another registry, or no token: the protocol's "not found".
  auto other = credential_helper("get", "docker.io", "127.0.0.1:8080", "alice", "tok");
  CHECK(other.exit == 1);
  CHECK(other.out == std::string(kHelperNotFound) + "\n");
  CHECK(credential_helper("get", "127.0.0.1:8080", "127.0.0.1:8080", "alice", "").exit == 1);
  CHECK(credential_helper("get", "", "127.0.0.1:8080", "alice", "tok").exit == 1);

  CHECK(credential_helper("store", R"({"ServerURL":"h","Username":"u","Secret":"s"})", "h", "u", "t").exit == 0);
  CHECK(credential_helper("erase", "h", "h", "u", "t").exit == 0);

  auto list = credential_helper("list", "", "127.0.0.1:8080", "alice", "tok");
  CHECK(list.exit == 0);
  CHECK(json::parse(list.out) == json{{"127.0.0.1:8080", "alice"}});
  CHECK(json::parse(credential_helper("list", "", "h", "alice", "").out) == json::object());

  auto bad = credential_helper("steal", "", "h", "u", "SECRET");
  CHECK(bad.exit == 1);
  CHECK(bad.out.find("get, store, erase or list") != std::string::npos);
  CHECK(bad.out.find("SECRET") == std::string::npos);
}

TEST_CASE("a plain-HTTP registry: the registries.conf drop-in") {
  CHECK(insecure_registry_file_name("127.0.0.1:8080") == "neuro-127.0.0.1_8080.conf");
  CHECK(insecure_registry_file_name("[::1]:80") == "neuro-___1__80.conf");
  auto conf = insecure_registry_conf("127.0.0.1:8080", "http://127.0.0.1:8080");
  CHECK(conf ==
        "# Written by `neuro config docker`: neurod's registry at http://127.0.0.1:8080 is plain HTTP.\n"
        "[[registry]]\nlocation = \"127.0.0.1:8080\"\ninsecure = true\n");
}

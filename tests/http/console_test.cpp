// The console module: the embedded build served from the binary, the single-page app's
// fallback, security and cache headers, and the development directory mode.
#include "support/server/server.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>

using namespace neurod;
using test::TestServer;

namespace {

std::string first_asset(const std::string& html, const std::string& ext) {
  std::smatch m;
  std::regex re("/assets/[^\"]+\\." + ext);
  REQUIRE_MESSAGE(std::regex_search(html, m, re), "index.html names no ." << ext << " asset");
  return m.str();
}

void write(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

}  // namespace

TEST_CASE("console: index.html for every page path, with a strict CSP and revalidation") {
  TestServer server;
  auto c = server.client();
  auto root = c.get("/");
  REQUIRE(root.status == 200);
  CHECK(root.header("Content-Type").value_or("").starts_with("text/html"));
  CHECK(root.body.find("<div id=\"app\">") != std::string::npos);
  auto csp = std::string(root.header("Content-Security-Policy").value_or(""));
  CHECK(csp.find("default-src 'self'") != std::string::npos);
  CHECK(csp.find("script-src 'self';") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(root.header("Cache-Control") == "no-cache");
  CHECK(root.header("X-Content-Type-Options") == "nosniff");
  CHECK(root.header("X-Frame-Options") == "DENY");
  auto etag = std::string(root.header("ETag").value_or(""));
  REQUIRE(etag.size() > 2);

  // Deep links land on the same page: the app routes in the browser.
  for (auto path : {"/jobs", "/jobs/job-123", "/storage/data/a%20b", "/login", "/admin/users"}) {
    CAPTURE(path);
    auto r = c.get(path);
    CHECK(r.status == 200);
    CHECK(r.body == root.body);
    CHECK(r.header("ETag") == etag);
  }

  auto again = c.request("GET", "/", {}, {{"If-None-Match", etag}});
  CHECK(again.status == 304);
  CHECK(again.body.empty());

  auto head = c.request("HEAD", "/jobs");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
}

TEST_CASE("console: hashed assets are immutable, gzip when accepted, missing files are 404") {
  TestServer server;
  auto c = server.client();
  auto html = c.get("/").body;
  auto js = first_asset(html, "js");
  auto css = first_asset(html, "css");

  auto plain = c.get(js);
  REQUIRE(plain.status == 200);
  CHECK(plain.header("Content-Type").value_or("").starts_with("text/javascript"));
  CHECK(plain.header("Cache-Control") == "public, max-age=31536000, immutable");
  CHECK_FALSE(plain.header("Content-Encoding").has_value());
  CHECK(plain.header("Vary") == "Accept-Encoding");

  auto gz = c.request("GET", js, {}, {{"Accept-Encoding", "gzip, deflate, br"}});
  REQUIRE(gz.status == 200);
  CHECK(gz.header("Content-Encoding") == "gzip");
  CHECK(gz.body.size() < plain.body.size());
  CHECK(gz.body.substr(0, 2) == std::string("\x1f\x8b"));
  auto refused = c.request("GET", js, {}, {{"Accept-Encoding", "gzip;q=0"}});
  CHECK_FALSE(refused.header("Content-Encoding").has_value());

  CHECK(c.get(css).header("Content-Type").value_or("").starts_with("text/css"));
  CHECK(c.get("/favicon.svg").header("Content-Type") == "image/svg+xml");

  // A stale or mistyped script is a 404, never index.html parsed as JavaScript.
  CHECK(c.get("/assets/index-doesnotexist.js").status == 404);
  CHECK(c.get("/robots-nope.txt").status == 404);
}

TEST_CASE("console: the API's namespaces keep their JSON 404 and methods other than GET are not served") {
  TestServer server;
  auto c = server.client();
  auto api = c.get("/api/v1/nope");
  CHECK(api.status == 404);
  CHECK(api.json()["error"]["code"] == "route_not_found");
  CHECK(c.get("/api").status == 404);
  CHECK(c.get("/v2/nope/nope").status != 200);
  auto post = c.request("POST", "/jobs", "{}", {{"Content-Type", "application/json"}});
  CHECK(post.status == 404);
  CHECK(post.json()["error"]["code"] == "route_not_found");
  // The console's files need no login; the API behind them does.
  CHECK(c.get("/api/v1/auth/whoami").status == 401);
}

TEST_CASE("console: modules.console.directory serves a build from disk and nothing outside it") {
  test::TempDir dir;
  auto root = dir.path() / "dist";
  write(root / "index.html", "<!doctype html><title>dev</title><div id=\"app\"></div>");
  write(root / "assets" / "app-abc123.js", "console.log('dev build')");
  write(dir.path() / "secret.txt", "not for the web");

  test::ServerSpec spec;
  spec.extra_yaml = "modules:\n  console:\n    directory: " + root.string() + "\n";
  TestServer server(spec);
  auto c = server.client();
  auto index = c.get("/projects");
  CHECK(index.status == 200);
  CHECK(index.body.find("<title>dev</title>") != std::string::npos);
  auto js = c.get("/assets/app-abc123.js");
  CHECK(js.status == 200);
  CHECK(js.body == "console.log('dev build')");
  CHECK(js.header("Cache-Control") == "public, max-age=31536000, immutable");
  auto etag = std::string(js.header("ETag").value_or(""));
  CHECK(c.request("GET", "/assets/app-abc123.js", {}, {{"If-None-Match", etag}}).status == 304);

  for (auto path : {"/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"}) {
    CAPTURE(path);
    auto r = c.get(path);
    CHECK(r.body.find("not for the web") == std::string::npos);
  }
}

TEST_CASE("console: a directory without index.html stops start-up with what to do") {
  test::TempDir dir;
  test::ServerSpec spec;
  spec.extra_yaml = "modules:\n  console:\n    directory: " + (dir.path() / "nope").string() + "\n";
  try {
    TestServer server(spec);
    FAIL("start-up should have failed");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("npm run build") != std::string::npos);
  }
}

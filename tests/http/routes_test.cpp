// Security: every route of the real module list requires authentication unless it is
// on the explicit public list below. Adding a public route means adding it here, on
// purpose, in review.
#include "support/server/server.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace neurod;

namespace {
const std::set<std::string> kPublic = {
    "GET /api/v1/ping", "GET /api/v1/health", "GET /api/v1/version", "GET /api/v1/config", "GET /metrics",
};

std::string concrete_path(const std::string& pattern) {
  // Fill parameters with plausible values so the route matches.
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      auto close = pattern.find('}', i);
      out += "x";
      i = close + 1;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("every non-public route answers 401 without credentials") {
  test::TestServer server;
  auto& routes = server.app().router().routes();
  REQUIRE_FALSE(routes.empty());
  std::set<std::string> seen_public;
  auto client = server.client();
  for (const auto& r : routes) {
    std::string key = std::string(http::to_string(r->method)) + " " + r->pattern;
    CAPTURE(key);
    if (r->options.public_route) {
      seen_public.insert(key);
      CHECK_MESSAGE(kPublic.contains(key), "route is public but not on the reviewed list");
      continue;
    }
    auto res = client.request(std::string(http::to_string(r->method)), concrete_path(r->pattern));
    CHECK(res.status == 401);
    CHECK(res.json()["error"]["code"] == "unauthenticated");
  }
  CHECK(seen_public == kPublic);
}

TEST_CASE("metrics can be made private") {
  test::ServerSpec spec;
  spec.extra_yaml = "modules:\n  system:\n    metrics_public: false\n";
  test::TestServer server(spec);
  CHECK(server.client().get("/metrics").status == 401);
  CHECK(server.client().get("/api/v1/ping").status == 200);
}

#include "cli/api_path.hpp"

#include <doctest/doctest.h>

using neurod::cli::api;
using neurod::cli::path_segment;
using neurod::cli::principal_segment;
using neurod::cli::with_query;

TEST_CASE("cli api paths: the prefix") { CHECK(api("/auth/whoami") == "/api/v1/auth/whoami"); }

TEST_CASE("cli api paths: segments keep unreserved characters and escape the rest") {
  CHECK(path_segment("alice") == "alice");
  CHECK(path_segment("my-proj_1.x~") == "my-proj_1.x~");
  CHECK(path_segment("a b") == "a%20b");
  CHECK(path_segment("a/b") == "a%2Fb");
  CHECK(path_segment("a?b#c%d") == "a%3Fb%23c%25d");
  CHECK(path_segment("é") == "%C3%A9");
  CHECK(path_segment("") == "");
}

TEST_CASE("cli api paths: principal names write '/' as ':'") {
  CHECK(principal_segment("alice") == "alice");
  CHECK(principal_segment("alice/roles/readers") == "alice%3Aroles%3Areaders");
  CHECK(principal_segment("projects/ml/writer") == "projects%3Aml%3Awriter");
  CHECK(principal_segment("alice/service-accounts/ci") == "alice%3Aservice-accounts%3Aci");
  CHECK(principal_segment("x y") == "x%20y");
}

TEST_CASE("cli api paths: query strings skip absent values and encode the rest") {
  CHECK(with_query("/p", {}) == "/p");
  CHECK(with_query("/p", {{"uri", std::nullopt}}) == "/p");
  CHECK(with_query("/p", {{"uri", "storage://c/alice/data x"}, {"depth", std::nullopt}, {"expand_roles", "true"}}) ==
        "/p?uri=storage%3A%2F%2Fc%2Falice%2Fdata%20x&expand_roles=true");
  CHECK(with_query("/p", {{"uri", "storage:data/x"}}) == "/p?uri=storage%3Adata%2Fx");
  CHECK(with_query("/p", {{"q", "a&b=c+d"}}) == "/p?q=a%26b%3Dc%2Bd");
  CHECK(with_query("/p", {{"empty", ""}}) == "/p?empty=");
}

// Scoped tokens (modules/auth/scoped_token.hpp): what one carries comes back only from an
// unaltered, unexpired token signed under the same key; the key file is made once, 0600.
#include "modules/auth/scoped_token.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace neurod;
using auth::ScopedTokens;

TEST_CASE("scoped tokens carry their principal and scopes until they expire") {
  ScopedTokens keys(std::string(32, 'k'));
  http::Principal alice{"alice", "user", "tok-1"};
  auto t = keys.issue(alice, {"repository:alice/app:pull"}, std::chrono::minutes(5), 1000);
  CHECK(t.issued_at_ms == 1000);
  CHECK(t.expires_at_ms == 1000 + 300000);
  CHECK(ScopedTokens::looks_like(t.token));
  auto p = keys.verify(t.token, 2000);
  REQUIRE(p.has_value());
  CHECK(p->name == "alice");
  CHECK(p->kind == "user");
  CHECK(p->credential == "tok-1");
  REQUIRE(p->scopes.has_value());
  CHECK(*p->scopes == std::vector<std::string>{"repository:alice/app:pull"});
  // Expired.
  CHECK_FALSE(keys.verify(t.token, t.expires_at_ms).has_value());
  // Altered anywhere: the payload, the MAC, the prefix, truncated.
  for (std::size_t i : {ScopedTokens::kPrefix.size() + 2, t.token.size() / 2, t.token.size() - 2}) {
    auto bad = t.token;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(keys.verify(bad, 2000).has_value());
  }
  CHECK_FALSE(keys.verify(t.token.substr(0, t.token.size() - 1), 2000).has_value());
  CHECK_FALSE(keys.verify("nd_" + t.token, 2000).has_value());
  CHECK_FALSE(keys.verify("", 2000).has_value());
  // Another key does not accept it.
  ScopedTokens other(std::string(32, 'o'));
  CHECK_FALSE(other.verify(t.token, 2000).has_value());
}

TEST_CASE("the scoped-token key file is made once with mode 0600 and reused") {
  test::TempDir dir;
  auto path = dir.path() / "scoped-token.key";
  ScopedTokens first(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 32);
  auto t = first.issue(http::Principal{"bob", "user", ""}, {}, std::chrono::minutes(1), 0);
  ScopedTokens second(path);  // a restart: the same key
  CHECK(second.verify(t.token, 1).has_value());
}

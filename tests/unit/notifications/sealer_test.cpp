#include "modules/notifications/sealer.hpp"

#include "core/errors.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

using neurod::Error;
using neurod::notifications::Sealer;

TEST_CASE("sealer: a value opens only with its key and its row") {
  std::array<unsigned char, 32> k1{}, k2{};
  k2[0] = 1;
  Sealer a(k1), b(k2);
  auto sealed = a.seal("https://hooks.slack.com/services/T/B/SECRET", "nsub-1");
  CHECK(sealed.rfind("nd1:", 0) == 0);
  CHECK(sealed.find("SECRET") == std::string::npos);
  CHECK(a.open(sealed, "nsub-1") == "https://hooks.slack.com/services/T/B/SECRET");
  CHECK(a.seal("x", "nsub-1") != a.seal("x", "nsub-1"));  // a fresh nonce each time
  CHECK_THROWS_AS(a.open(sealed, "nsub-2"), Error);         // moved to another row
  CHECK_THROWS_AS(b.open(sealed, "nsub-1"), Error);         // another key
  auto tampered = sealed;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  CHECK_THROWS_AS(a.open(tampered, "nsub-1"), Error);
  CHECK_THROWS_AS(a.open("https://plain.example/", "nsub-1"), Error);  // plaintext is never taken
  CHECK(a.open(a.seal("", "r"), "r").empty());
}

TEST_CASE("sealer: the key file is made once, private, and checked") {
  neurod::test::TempDir dir;
  auto file = dir.path() / "seal.key";
  std::string sealed;
  {
    Sealer s(file);
    sealed = s.seal("v", "row");
  }
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::file_size(file) == 32);
  CHECK(Sealer(file).open(sealed, "row") == "v");  // the same key again
  ::chmod(file.c_str(), 0644);
  CHECK_THROWS_AS(Sealer{file}, Error);
  ::chmod(file.c_str(), 0600);
  { std::ofstream(file, std::ios::app) << "x"; }
  CHECK_THROWS_AS(Sealer{file}, Error);
}

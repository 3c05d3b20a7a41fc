// The secrets module's crypto, key files and key store, and Service::value (what jobs
// calls) on both database backends.
#include "db/migrations.hpp"
#include "modules/auth/authorizer.hpp"
#include "modules/secrets/keys.hpp"
#include "modules/secrets/repo.hpp"
#include "modules/secrets/service.hpp"
#include "support/db/backends.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

using namespace neurod;
using namespace neurod::secrets;

namespace {
int mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 07777);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}
}  // namespace

TEST_CASE("secrets crypto: seal and open bind the value to its key and URI") {
  auto key = Key::generate();
  auto other = Key::generate();
  const std::string ad = "secret://c/p/k";
  std::string plain("binary\0value", 12);
  auto sealed = seal(key, plain, ad);
  CHECK(sealed.key_id == key.id());
  CHECK(sealed.nonce.size() == kNonceBytes);
  CHECK(sealed.ciphertext.size() == plain.size() + 16);
  CHECK(sealed.ciphertext.find("binary") == std::string::npos);
  CHECK(open(key, sealed, ad) == plain);

  CHECK_FALSE(open(other, sealed, ad).has_value());               // another key
  CHECK_FALSE(open(key, sealed, "secret://c/p/k2").has_value());  // moved to another key name
  CHECK_FALSE(open(key, sealed, "secret://c/q/k").has_value());   // or project
  for (std::size_t i = 0; i < sealed.ciphertext.size(); ++i) {
    auto t = sealed;
    t.ciphertext[i] = static_cast<char>(t.ciphertext[i] ^ 0x01);
    CHECK_FALSE(open(key, t, ad).has_value());
  }
  auto t = sealed;
  t.nonce[3] = static_cast<char>(t.nonce[3] ^ 0x10);
  CHECK_FALSE(open(key, t, ad).has_value());
  t = sealed;
  t.nonce.clear();
  CHECK_FALSE(open(key, t, ad).has_value());
  t = sealed;
  t.ciphertext.resize(5);
  CHECK_FALSE(open(key, t, ad).has_value());

  // A fresh nonce each time: the same value seals differently.
  auto again = seal(key, plain, ad);
  CHECK(again.nonce != sealed.nonce);
  CHECK(again.ciphertext != sealed.ciphertext);
  CHECK(open(key, seal(key, "", ad), ad) == std::string());
}

TEST_CASE("secrets crypto: key ids and base64") {
  auto a = Key::generate(), b = Key::generate();
  CHECK(a.id().size() == 16);
  CHECK(a.id().find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a.id() != b.id());
  auto copy = Key::from_base64(a.base64() + "\n");
  REQUIRE(copy.has_value());
  CHECK(copy->id() == a.id());
  CHECK_FALSE(Key::from_base64("c2hvcnQ=").has_value());
  CHECK_FALSE(Key::from_base64("not base64").has_value());

  CHECK(base64_encode("") == "");
  CHECK(base64_encode("ab") == "YWI=");
  CHECK(base64_decode("YWI=") == std::string("ab"));
  CHECK(base64_decode("") == std::string());
  CHECK_FALSE(base64_decode("YWI").has_value());  // padding required
  CHECK_FALSE(base64_decode("YW I=").has_value());
  CHECK_FALSE(base64_decode("YWI=YWI=").has_value());  // nothing after the padding
  CHECK_FALSE(base64_decode("YW_-").has_value());      // not the URL-safe alphabet
}

TEST_CASE("secrets key files: written 0600, refused when others may read them or the length is wrong") {
  test::TempDir dir;
  auto path = dir.path() / "sub" / "master.key";
  CHECK_FALSE(read_key_file(path).has_value());
  ::umask(0);  // the file is 0600 whatever the umask
  auto key = Key::generate();
  write_key_file(path, key);
  ::umask(022);
  CHECK(mode_of(path) == 0600);
  CHECK(std::filesystem::file_size(path) == kKeyBytes);
  CHECK(read_key_file(path)->id() == key.id());
  CHECK_FALSE(std::filesystem::exists(sibling(path, ".tmp")));

  std::filesystem::permissions(path, std::filesystem::perms(0640));
  auto err = error_of([&] { read_key_file(path); });
  CHECK(err.find("mode 0640") != std::string::npos);
  CHECK(err.find("chmod 600") != std::string::npos);
  std::filesystem::permissions(path, std::filesystem::perms(0604));
  CHECK(error_of([&] { read_key_file(path); }).find("chmod 600") != std::string::npos);

  auto longer = dir.write("long.key", std::string(33, 'x'));
  std::filesystem::permissions(longer, std::filesystem::perms(0600));
  CHECK(error_of([&] { read_key_file(longer); }).find("33 bytes") != std::string::npos);
  auto folder = dir.path() / "folder.key";
  std::filesystem::create_directory(folder);
  std::filesystem::permissions(folder, std::filesystem::perms(0700));
  CHECK(error_of([&] { read_key_file(folder); }).find("not a regular file") != std::string::npos);
}

TEST_CASE("secrets key store: made on first use, with a rotation's .new and .old") {
  test::TempDir dir;
  KeySource src{dir.path() / "secrets" / "master.key", ""};
  CHECK(error_of([&] { KeyStore::load(src); }).find("does not exist") != std::string::npos);
  KeyStore store(src, true);
  CHECK(store.created());
  auto first = store.keyring()->current().id();
  CHECK(KeyStore(src, true).created() == false);
  CHECK(KeyStore(src, true).keyring()->current().id() == first);

  auto n = Key::generate(), o = Key::generate();
  write_key_file(sibling(src.file, ".new"), n);
  write_key_file(sibling(src.file, ".old"), o);
  auto ring = store.reload();
  CHECK(ring->current().id() == first);
  CHECK(ring->find(n.id()));
  CHECK(ring->find(o.id()));
  CHECK(ring->ids().size() == 3);

  // A master.key replaced on disk is picked up by keyring() without a reload().
  std::filesystem::rename(sibling(src.file, ".new"), src.file);
  CHECK(store.keyring()->current().id() == n.id());

  ::setenv("NEUROD_UNIT_SECRETS_KEY", o.base64().c_str(), 1);
  KeyStore env_store(KeySource{dir.path() / "unused.key", "NEUROD_UNIT_SECRETS_KEY"}, true);
  CHECK(env_store.keyring()->current().id() == o.id());
  CHECK_FALSE(std::filesystem::exists(dir.path() / "unused.key"));
  ::unsetenv("NEUROD_UNIT_SECRETS_KEY");
}

TEST_CASE("secrets key names") {
  for (const std::string& ok : std::vector<std::string>{"a", "_", "A_B", "a.b-c_9", std::string(255, 'x')})
    CHECK_NOTHROW(Service::validate_key(ok));
  for (const std::string& bad : std::vector<std::string>{"", "9", "-a", ".a", "a b", "a/b", "a:b",
                                                         std::string(256, 'x'), std::string("a\0b", 3)}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Service::validate_key(bad), Error);
  }
}

TEST_CASE_TEMPLATE("secrets Service::value: the plaintext by URI, nullopt when missing, fails closed", B,
                   NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  db::Migrator(t.db(), db::embedded_migrations(t.db().dialect())).migrate({"secrets"});
  test::TempDir dir;
  KeyStore keys(KeySource{dir.path() / "master.key", ""}, true);
  auth::Authorizer authz("c1");
  Service svc(t.db(), authz, keys);

  const std::string plain("line one\nline two\0", 18);
  auto ad = secret_uri("c1", "proj", "TOKEN");
  CHECK(ad == "secret://c1/proj/TOKEN");
  t.db().write([&](soci::session& s) {
    repo::upsert(s, {"proj", "TOKEN", "alice", 1, 1}, seal(keys.keyring()->current(), plain, ad));
  });
  CHECK(svc.value("secret://c1/proj/TOKEN") == plain);
  CHECK_FALSE(svc.value("secret://c1/proj/OTHER").has_value());
  CHECK_FALSE(svc.value("secret://c2/proj/TOKEN").has_value());  // another cluster's
  CHECK_FALSE(svc.value("secret://c1/proj").has_value());
  CHECK_FALSE(svc.value("secret://c1/proj/TOKEN/x").has_value());
  CHECK_FALSE(svc.value("storage://c1/proj/TOKEN").has_value());
  CHECK_FALSE(svc.value("").has_value());

  // The stored row is ciphertext: neither the value nor its base64 is in it.
  auto row = t.db().read([](soci::session& s) { return repo::load(s, "proj", "TOKEN"); });
  REQUIRE(row.has_value());
  CHECK(row->sealed.ciphertext.find("line one") == std::string::npos);
  auto stored = t.db().read([](soci::session& s) {
    std::string ct;
    s << "SELECT ciphertext FROM secrets", soci::into(ct);
    return ct;
  });
  CHECK(stored.find("line one") == std::string::npos);
  CHECK(stored.find(base64_encode("line one")) == std::string::npos);

  // Sealed for another URI and stored here: refused, loudly.
  t.db().write([&](soci::session& s) {
    repo::upsert(s, {"proj", "MOVED", "alice", 1, 1}, seal(keys.keyring()->current(), plain, ad));
  });
  auto err = error_of([&] { svc.value("secret://c1/proj/MOVED"); });
  CHECK(err.find("cannot be decrypted") != std::string::npos);
  CHECK(err.find("line one") == std::string::npos);

  auto metas = t.db().read([](soci::session& s) { return repo::list(s, ""); });
  CHECK(metas.size() == 2);
  CHECK(t.db().write([](soci::session& s) { return repo::remove(s, "proj", "MOVED"); }));
  CHECK_FALSE(t.db().write([](soci::session& s) { return repo::remove(s, "proj", "MOVED"); }));
}

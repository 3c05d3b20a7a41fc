#include "db/database.hpp"
#include "support/db/backends.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace neurod;
using namespace std::chrono_literals;

namespace {

long long count_rows(db::Database& d, const std::string& table) {
  return d.read([&](soci::session& s) {
    long long n = 0;
    s << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
  });
}

// Runs fn and returns the Error it throws; fails the test when it throws nothing else.
template <class F>
Error catch_error(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected neurod::Error");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE_TEMPLATE("database opens, pings and reports pool stats", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto& d = t.db();
  CHECK(d.dialect() == B::kDialect);
  CHECK(d.ping());
  auto s = d.stats();
  CHECK(s.size == 4);
  CHECK(s.in_use == 0);
  CHECK(s.waiting == 0);
  {
    auto a = d.session();
    auto b = d.session();
    CHECK(d.stats().in_use == 2);
    int one = 0;
    *a << "SELECT 1", soci::into(one);
    CHECK(one == 1);
  }
  CHECK(d.stats().in_use == 0);
  CHECK(d.read([](soci::session& s) {
    int v = 0;
    s << "SELECT 41 + 1", soci::into(v);
    return v;
  }) == 42);
}

TEST_CASE("sqlite: a relative path is resolved under data_dir, parent folders created") {
  test::TempDir dir;
  db::Options o;
  o.url = "sqlite:sub/dir/neurod.db";
  auto d = db::Database::open(o, dir.path());
  CHECK(d->display_url() == "sqlite:" + (dir.path() / "sub/dir/neurod.db").string());
  d->write([](soci::session& s) { s << "CREATE TABLE t (x INTEGER)"; });
  CHECK(std::filesystem::is_regular_file(dir.path() / "sub/dir/neurod.db"));
}

TEST_CASE("sqlite: an absolute path ignores data_dir") {
  test::TempDir dir, other;
  db::Options o;
  o.url = "sqlite:" + (other.path() / "abs.db").string();
  auto d = db::Database::open(o, dir.path());
  d->write([](soci::session& s) { s << "CREATE TABLE t (x INTEGER)"; });
  CHECK(std::filesystem::is_regular_file(other.path() / "abs.db"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "abs.db"));
}

TEST_CASE("sqlite: a path that cannot be created gives one clear unavailable error") {
  test::TempDir dir;
  dir.write("file", "not a directory");
  db::Options o;
  o.url = "sqlite:file/sub/neurod.db";
  auto e = catch_error([&] { db::Database::open(o, dir.path()); });
  CHECK(e.code() == errc::unavailable);
  std::string msg = e.what();
  CHECK(msg.find("cannot open database sqlite:" + (dir.path() / "file/sub/neurod.db").string() + ": ") == 0);
  CHECK(msg.find("Not a directory") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("sqlite: an unwritable directory gives one clear unavailable error") {
  // Root ignores permission bits, so the directory is made unusable another way there:
  // the database path is itself an existing directory.
  test::TempDir dir;
  db::Options o;
  std::string expected;
  if (::geteuid() == 0) {
    std::filesystem::create_directories(dir.path() / "ro" / "neurod.db");
    expected = "unable to open database file";
  } else {
    std::filesystem::create_directories(dir.path() / "ro");
    std::filesystem::permissions(dir.path() / "ro",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    expected = "is not writable";
  }
  o.url = "sqlite:ro/neurod.db";
  auto e = catch_error([&] { db::Database::open(o, dir.path()); });
  std::filesystem::permissions(dir.path() / "ro", std::filesystem::perms::owner_all);
  CHECK(e.code() == errc::unavailable);
  std::string msg = e.what();
  CHECK(msg.find("cannot open database sqlite:" + (dir.path() / "ro/neurod.db").string() + ": ") == 0);
  CHECK_MESSAGE(msg.find(expected) != std::string::npos, msg);
}

TEST_CASE("postgres: an unreachable database gives an unavailable error with the password masked") {
  auto admin = test::postgres_admin_url();
  // Trust auth ignores the password; the database does not exist.
  auto url = test::with_database_name(admin, "no_such_db_neurod");
  url.replace(url.find("postgres@"), 9, "postgres:s3cret@");
  db::Options o;
  o.url = url;
  auto e = catch_error([&] { db::Database::open(o, "/nonexistent"); });
  CHECK(e.code() == errc::unavailable);
  std::string msg = e.what();
  CHECK_MESSAGE(msg.find("cannot open database postgresql://postgres:***@") == 0, msg);
  CHECK(msg.find("s3cret") == std::string::npos);
  CHECK_MESSAGE(msg.find("no_such_db_neurod") != std::string::npos, msg);
}

TEST_CASE("an unsupported url is rejected") {
  db::Options o;
  o.url = "mysql://u:pw@host/db";
  auto e = catch_error([&] { db::Database::open(o, "/tmp"); });
  CHECK(e.code() == errc::invalid_argument);
  CHECK(std::string(e.what()).find("pw") == std::string::npos);
}

TEST_CASE("sqlite: :memory: is one database seen by every lease") {
  db::Options o;
  o.url = "sqlite::memory:";
  auto d = db::Database::open(o, "/nonexistent");
  CHECK(d->stats().size == 1);
  d->write([](soci::session& s) {
    s << "CREATE TABLE t (x INTEGER)";
    s << "INSERT INTO t VALUES (1)";
  });
  CHECK(count_rows(*d, "t") == 1);
}

TEST_CASE("sqlite: every session runs in WAL mode with foreign keys, busy timeout and synchronous=NORMAL") {
  test::TestDatabase t(db::Dialect::sqlite);
  std::vector<db::Database::Lease> leases;
  for (int i = 0; i < 4; ++i) leases.push_back(t.db().session());
  for (auto& l : leases) {
    std::string mode;
    int fk = 0, timeout = 0, sync = -1;
    *l << "PRAGMA journal_mode", soci::into(mode);
    *l << "PRAGMA foreign_keys", soci::into(fk);
    *l << "PRAGMA busy_timeout", soci::into(timeout);
    *l << "PRAGMA synchronous", soci::into(sync);
    CHECK(mode == "wal");
    CHECK(fk == 1);
    CHECK(timeout == 5000);
    CHECK(sync == 1);  // NORMAL
  }
}

TEST_CASE_TEMPLATE("foreign keys are enforced on every session", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto& d = t.db();
  d.write([](soci::session& s) {
    db::exec_script(s,
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));"
                    "INSERT INTO parent (id) VALUES (1);");
  });
  for (int i = 0; i < 4; ++i) {
    // Hold the other sessions so that each write below runs on a different one.
    std::vector<db::Database::Lease> held;
    for (int j = 0; j < i; ++j) held.push_back(d.session());
    auto e = catch_error(
        [&] { d.write([](soci::session& s) { s << "INSERT INTO child (id, parent_id) VALUES (1, 99)"; }); });
    CHECK(e.code() == errc::internal);
  }
  d.write([](soci::session& s) { s << "INSERT INTO child (id, parent_id) VALUES (1, 1)"; });
  CHECK(count_rows(d, "child") == 1);
}

TEST_CASE_TEMPLATE("an exhausted pool answers db_busy after busy_timeout", B, NEUROD_DB_BACKENDS) {
  auto o = test::TestDatabase::default_options();
  o.pool_size = 2;
  o.busy_timeout = 150ms;
  test::TestDatabase t(B::kDialect, o);
  auto& d = t.db();
  auto a = d.session();
  auto b = d.session();
  auto start = std::chrono::steady_clock::now();
  auto e = catch_error([&] { d.session(); });
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK(e.code() == errc::db_busy);
  CHECK(waited >= 140ms);
  CHECK(waited < 5s);
  CHECK(d.stats().waiting == 0);

  // A waiter is counted and gets the session released within the timeout.
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        auto c = d.session();
        got = true;
        return;
      } catch (const Error&) {
      }
    }
  });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (d.stats().waiting == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(d.stats().waiting == 1);
  { auto released = std::move(a); }
  waiter.join();
  CHECK(got);
  CHECK(d.stats().in_use == 1);
}

TEST_CASE_TEMPLATE("concurrent writers all succeed", B, NEUROD_DB_BACKENDS) {
  auto o = test::TestDatabase::default_options();
  o.busy_timeout = 20s;
  test::TestDatabase t(B::kDialect, o);
  t.db().write([](soci::session& s) {
    db::exec_script(s,
                    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);"
                    "INSERT INTO counter VALUES (1, 0);"
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, seen INTEGER NOT NULL);");
  });
  // A second pool on the same database stands in for a second process: its writers do
  // not share the first pool's writer mutex, so only the database's own locking (BEGIN
  // IMMEDIATE + busy_timeout on SQLite) keeps them from failing.
  auto other = t.open_another(o);
  constexpr int kThreads = 6, kWrites = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto& d = i % 2 ? t.db() : *other;
      for (int w = 0; w < kWrites; ++w) {
        try {
          d.write([&](soci::session& s) {
            // Read, then write: a deferred SQLite transaction would hit SQLITE_BUSY here.
            long long n = 0;
            s << "SELECT n FROM counter WHERE id = 1", soci::into(n);
            s << "INSERT INTO events (id, seen) VALUES (:id, :seen)", soci::use(i * 1000 + w), soci::use(n);
            s << "UPDATE counter SET n = n + 1 WHERE id = 1";
          });
        } catch (const std::exception& e) {
          ++failures;
          MESSAGE("write failed: " << std::string(e.what()));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(count_rows(t.db(), "events") == kThreads * kWrites);
  CHECK(t.db().read([](soci::session& s) {
    long long n = 0;
    s << "SELECT n FROM counter WHERE id = 1", soci::into(n);
    return n;
  }) == kThreads * kWrites);
}

TEST_CASE_TEMPLATE("a write blocked by another writer past busy_timeout answers db_busy", B, NEUROD_DB_BACKENDS) {
  auto o = test::TestDatabase::default_options();
  o.busy_timeout = 200ms;
  test::TestDatabase t(B::kDialect, o);
  t.db().write([](soci::session& s) {
    db::exec_script(s, "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 0);");
  });
  auto other = t.open_another(o);
  auto holder = other->session();
  db::Database::Transaction tx(*holder, B::kDialect);
  *holder << "UPDATE t SET v = 1 WHERE id = 1";
  auto e = catch_error([&] { t.db().write([](soci::session& s) { s << "UPDATE t SET v = 2 WHERE id = 1"; }); });
  CHECK(e.code() == errc::db_busy);
  tx.commit();
  t.db().write([](soci::session& s) { s << "UPDATE t SET v = 3 WHERE id = 1"; });
}

TEST_CASE_TEMPLATE("write rolls back when its function throws", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto& d = t.db();
  d.write([](soci::session& s) { s << "CREATE TABLE t (x INTEGER)"; });

  auto e = catch_error([&] {
    d.write([](soci::session& s) {
      s << "INSERT INTO t VALUES (1)";
      throw Error(errc::invalid_argument, "bad input");
    });
  });
  CHECK(e.code() == errc::invalid_argument);
  CHECK(std::string(e.what()) == "bad input");
  CHECK(count_rows(d, "t") == 0);

  e = catch_error([&] {
    d.write([](soci::session& s) {
      s << "INSERT INTO t VALUES (1)";
      throw std::runtime_error("boom");
    });
  });
  CHECK(e.code() == errc::internal);
  CHECK(count_rows(d, "t") == 0);

  // The session is clean afterwards: the next write commits.
  CHECK(d.write([](soci::session& s) {
    s << "INSERT INTO t VALUES (2)";
    return 7;
  }) == 7);
  CHECK(count_rows(d, "t") == 1);
  CHECK(d.stats().in_use == 0);
}

TEST_CASE_TEMPLATE("a unique violation is a conflict with a clean message", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto& d = t.db();
  d.write([](soci::session& s) { s << "CREATE TABLE users (email TEXT NOT NULL UNIQUE)"; });
  d.write([](soci::session& s) { s << "INSERT INTO users VALUES ('a@example.com')"; });
  auto e = catch_error([&] { d.write([](soci::session& s) { s << "INSERT INTO users VALUES ('a@example.com')"; }); });
  CHECK(e.code() == errc::conflict);
  std::string msg = e.what();
  CHECK(msg == "a record with the same unique key already exists");
  CHECK(count_rows(d, "users") == 1);
}

TEST_CASE_TEMPLATE("other database errors are internal and do not leak SQL", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto e = catch_error([&] { t.db().read([](soci::session& s) { s << "SELECT secret_column FROM no_such_table"; }); });
  CHECK(e.code() == errc::internal);
  std::string msg = e.what();
  CHECK(msg.find("no_such_table") == std::string::npos);
  CHECK(msg.find("secret_column") == std::string::npos);
}

TEST_CASE_TEMPLATE("exec_script runs several statements, semicolons in strings and comments included", B,
                   NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  t.db().write([](soci::session& s) {
    db::exec_script(s,
                    "CREATE TABLE t (x TEXT); -- a comment; with a semicolon\n"
                    "INSERT INTO t VALUES ('a;b'); /* block; comment */ INSERT INTO t VALUES ('c');\n");
  });
  CHECK(count_rows(t.db(), "t") == 2);
  CHECK(t.db().read([](soci::session& s) {
    std::string x;
    s << "SELECT x FROM t WHERE x LIKE 'a%'", soci::into(x);
    return x;
  }) == "a;b");
}

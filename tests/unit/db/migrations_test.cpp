#include "db/migrations.hpp"
#include "support/db/backends.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

using namespace neurod;

namespace {

bool table_exists(db::Database& d, const std::string& table) {
  return d.read([&](soci::session& s) {
    long long n = 0;
    if (d.dialect() == db::Dialect::sqlite)
      s << "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = :t", soci::use(table), soci::into(n);
    else
      s << "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = :t",
          soci::use(table), soci::into(n);
    return n > 0;
  });
}

std::vector<std::string> recorded(db::Database& d) {
  return d.read([](soci::session& s) {
    std::vector<std::string> out;
    soci::rowset<soci::row> rows = (s.prepare << "SELECT module, name FROM schema_migrations ORDER BY module, version");
    for (const auto& r : rows) out.push_back(r.get<std::string>(0) + ":" + r.get<std::string>(1));
    return out;
  });
}

long long count_rows(db::Database& d, const std::string& table) {
  return d.read([&](soci::session& s) {
    long long n = 0;
    s << "SELECT COUNT(*) FROM " + table, soci::into(n);
    return n;
  });
}

db::Migration m(std::string module, int version, std::string name, std::string sql) {
  return db::Migration{std::move(module), version, std::move(name), std::move(sql)};
}

// Two steps where the second needs the first; given out of order on purpose.
std::vector<db::Migration> two_steps() {
  return {
      m("shop", 2, "0002_seed",
        "INSERT INTO shop_items (name) VALUES ('a;b'); -- seeded; see 0001\n"
        "INSERT INTO shop_items (name) VALUES ('c');"),
      m("shop", 1, "0001_items", "CREATE TABLE shop_items (name TEXT NOT NULL);"),
  };
}

}  // namespace

TEST_CASE_TEMPLATE("migrations apply in order, are recorded, and a second run does nothing", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  db::Migrator migrator(t.db(), two_steps());

  auto status = migrator.status({"shop"});
  REQUIRE(status.pending.size() == 2);
  CHECK(status.pending[0].name == "0001_items");
  CHECK(status.pending[1].name == "0002_seed");
  CHECK(status.applied.empty());

  auto applied = migrator.migrate({"shop"});
  CHECK(applied == std::vector<std::string>{"shop:0001_items", "shop:0002_seed"});
  CHECK(recorded(t.db()) == std::vector<std::string>{"shop:0001_items", "shop:0002_seed"});
  CHECK(count_rows(t.db(), "shop_items") == 2);

  status = migrator.status({"shop"});
  CHECK(status.pending.empty());
  CHECK(status.applied == std::vector<std::string>{"shop:0001", "shop:0002"});

  // Again, and from a fresh pool as a restarted neurod would.
  CHECK(migrator.migrate({"shop"}).empty());
  auto reopened = t.open_another(t.options());
  CHECK(db::Migrator(*reopened, two_steps()).migrate({"shop"}).empty());
  CHECK(count_rows(t.db(), "shop_items") == 2);
  CHECK(t.db()
            .read([](soci::session& s) {
              std::string at;
              s << "SELECT CAST(applied_at AS TEXT) FROM schema_migrations WHERE version = 1", soci::into(at);
              return at;
            })
            .substr(0, 2) == "20");
}

TEST_CASE_TEMPLATE("a new migration is applied on top of the recorded ones", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto first = two_steps();
  first.erase(first.begin());  // only 0001
  CHECK(db::Migrator(t.db(), first).migrate({"shop"}) == std::vector<std::string>{"shop:0001_items"});
  CHECK(db::Migrator(t.db(), two_steps()).migrate({"shop"}) == std::vector<std::string>{"shop:0002_seed"});
  CHECK(count_rows(t.db(), "shop_items") == 2);
}

TEST_CASE_TEMPLATE("only the listed modules are migrated, and an empty list means all", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto known = two_steps();
  known.push_back(m("audit", 1, "0001_log", "CREATE TABLE audit_log (line TEXT);"));
  db::Migrator migrator(t.db(), known);
  CHECK(migrator.migrate({"audit"}) == std::vector<std::string>{"audit:0001_log"});
  CHECK(table_exists(t.db(), "audit_log"));
  CHECK_FALSE(table_exists(t.db(), "shop_items"));
  CHECK(migrator.status({}).pending.size() == 2);
  CHECK(migrator.migrate({}).size() == 2);
  CHECK(table_exists(t.db(), "shop_items"));
}

TEST_CASE_TEMPLATE("a failing migration leaves nothing half-applied and names itself", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  auto known = two_steps();
  known.push_back(m("shop", 3, "0003_broken",
                    "CREATE TABLE shop_half (x INTEGER); INSERT INTO shop_items (name) VALUES ('x');"
                    "INSERT INTO no_such_table VALUES (1);"));
  known.push_back(m("shop", 4, "0004_after", "CREATE TABLE shop_after (x INTEGER);"));
  db::Migrator migrator(t.db(), known);
  try {
    migrator.migrate({"shop"});
    FAIL("the broken migration did not throw");
  } catch (const Error& e) {
    CHECK(e.code() == errc::internal);
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find("shop:0003_broken") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("no_such_table") != std::string::npos, msg);
  }
  // 0001 and 0002 stay; nothing of 0003 exists; 0004 never ran.
  CHECK(recorded(t.db()) == std::vector<std::string>{"shop:0001_items", "shop:0002_seed"});
  CHECK_FALSE(table_exists(t.db(), "shop_half"));
  CHECK_FALSE(table_exists(t.db(), "shop_after"));
  CHECK(count_rows(t.db(), "shop_items") == 2);
  CHECK(migrator.status({"shop"}).pending.size() == 2);
  CHECK(t.db().stats().in_use == 0);
}

TEST_CASE_TEMPLATE("a database migrated by a newer neurod is refused", B, NEUROD_DB_BACKENDS) {
  test::TestDatabase t(B::kDialect);
  db::Migrator(t.db(), two_steps()).migrate({"shop"});
  auto older = two_steps();
  older.erase(older.begin());  // this "binary" knows only 0001
  db::Migrator migrator(t.db(), older);
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0)
        migrator.status({"shop"});
      else
        migrator.migrate({"shop"});
      FAIL("a newer database was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == errc::conflict);
      CHECK(std::string(e.what()) ==
            "the database was migrated by a newer neurod: module shop is at version 2, this binary knows 1");
    }
  }
  // A module this binary has no migrations for at all is refused too.
  try {
    db::Migrator(t.db(), {}).status({"shop"});
    FAIL("a newer database was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == errc::conflict);
  }
}

TEST_CASE("two migrations with one version are a programming error") {
  test::TestDatabase t(db::Dialect::sqlite);
  std::vector<db::Migration> known{m("shop", 1, "0001_a", "SELECT 1;"), m("shop", 1, "0001_b", "SELECT 1;")};
  CHECK_THROWS_AS(db::Migrator(t.db(), known), Error);
}

TEST_CASE_TEMPLATE("the embedded migrations apply", B, NEUROD_DB_BACKENDS) {
  auto embedded = db::embedded_migrations(B::kDialect);
  REQUIRE_FALSE(embedded.empty());
  CHECK(std::is_sorted(embedded.begin(), embedded.end(), [](const db::Migration& a, const db::Migration& b) {
    return std::tie(a.module, a.version) < std::tie(b.module, b.version);
  }));
  auto instance = std::find_if(embedded.begin(), embedded.end(),
                               [](const db::Migration& x) { return x.module == "system" && x.version == 1; });
  REQUIRE(instance != embedded.end());
  CHECK(instance->name == "0001_instance");
  // Each dialect gets its own file.
  auto other =
      db::embedded_migrations(B::kDialect == db::Dialect::sqlite ? db::Dialect::postgresql : db::Dialect::sqlite);
  CHECK(other.size() == embedded.size());
  CHECK(other.front().sql != embedded.front().sql);

  test::TestDatabase t(B::kDialect);
  std::vector<std::string> modules;
  for (const auto& x : embedded)
    if (modules.empty() || modules.back() != x.module) modules.push_back(x.module);
  db::Migrator migrator(t.db(), embedded);
  CHECK(migrator.migrate(modules).size() == embedded.size());
  CHECK(migrator.status(modules).pending.empty());
  CHECK(table_exists(t.db(), "system_instance"));
  t.db().write([](soci::session& s) {
    s << "INSERT INTO system_instance (id, created_at) VALUES ('i1', '2024-01-02T03:04:05Z')";
  });
  CHECK(count_rows(t.db(), "system_instance") == 1);
}

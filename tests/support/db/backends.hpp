// Every database test runs on SQLite and on the PostgreSQL server that pg.sh starts
// (TESTING.md). A test is written once over the backend tags:
//
//   TEST_CASE_TEMPLATE("orders are stored", B, NEUROD_DB_BACKENDS) {
//     test::TestDatabase t(B::kDialect);
//     t.db().write(...);
//   }
//
// Each TestDatabase is a fresh, empty database: a SQLite file in its own temp dir, or a
// `CREATE DATABASE t_<random>` on the test server, dropped again on destruction. When the
// server's URL file is missing the PostgreSQL variant fails with a message saying how to
// start it; it is never skipped.
#pragma once

#include "db/database.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>

namespace neurod::test {

struct Sqlite {
  static constexpr db::Dialect kDialect = db::Dialect::sqlite;
};
struct Postgres {
  static constexpr db::Dialect kDialect = db::Dialect::postgresql;
};

#define NEUROD_DB_BACKENDS ::neurod::test::Sqlite, ::neurod::test::Postgres

// The superuser URL of the test server, read from $NEUROD_TEST_PG_DIR/url (falling back to
// the build's test-pg dir). Throws std::runtime_error with instructions when it is missing.
std::string postgres_admin_url();

// `url` with its database name replaced (postgresql://u@h:p/old?x -> .../name?x).
std::string with_database_name(const std::string& url, const std::string& name);

class TestDatabase {
 public:
  // Creates the empty database and opens a pool on it with `options` (its url is ignored).
  explicit TestDatabase(db::Dialect dialect, db::Options options = default_options());
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  // Small pools: ctest runs many test processes against one server at once.
  static db::Options default_options();

  db::Dialect dialect() const { return dialect_; }
  db::Database& db() { return *db_; }
  db::Database* operator->() { return db_.get(); }
  // What Database::open needs to open this same database again.
  const std::string& url() const { return url_; }
  const std::filesystem::path& data_dir() const { return dir_.path(); }
  db::Options options() const { return options_; }
  // Opens another pool on the same database (e.g. with other options).
  std::unique_ptr<db::Database> open_another(db::Options options) const;
  // Closes the pool, e.g. before reopening with open_another.
  void close() { db_.reset(); }

 private:
  db::Dialect dialect_;
  TempDir dir_;
  db::Options options_;
  std::string url_;
  std::string admin_url_;  // PostgreSQL only
  std::string pg_name_;    // PostgreSQL only
  std::unique_ptr<db::Database> db_;
};

}  // namespace neurod::test

TYPE_TO_STRING_AS("sqlite", neurod::test::Sqlite);
TYPE_TO_STRING_AS("postgres", neurod::test::Postgres);

#include "support/db/backends.hpp"

#include <libpq-fe.h>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <stdexcept>

namespace neurod::test {

namespace fs = std::filesystem;

namespace {

std::string random_suffix() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 16; ++i) out += kHex[rd() % 16];
  return out;
}

// CREATE/DROP DATABASE on the server's maintenance database, straight through libpq.
void admin_exec(const std::string& admin_url, const std::string& sql) {
  PGconn* conn = PQconnectdb(admin_url.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = std::string("cannot connect to the PostgreSQL test server ") + admin_url + ": " + PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error = sql + ": " + PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(conn);
  if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace

std::string postgres_admin_url() {
  const char* env = std::getenv("NEUROD_TEST_PG_DIR");
  fs::path dir = env && *env ? fs::path(env) : fs::path(NEUROD_TEST_PG_DIR);
  std::ifstream in(dir / "url");
  std::string url;
  if (!in || !std::getline(in, url) || url.empty())
    throw std::runtime_error("the PostgreSQL test server is not running: " + (dir / "url").string() +
                             " is missing. Start it with `tests/support/pg.sh start DIR` and run the tests with "
                             "NEUROD_TEST_PG_DIR=DIR (ctest does both)");
  return url;
}

std::string with_database_name(const std::string& url, const std::string& name) {
  auto authority = url.find("://");
  if (authority == std::string::npos) throw std::invalid_argument("not a URL: " + url);
  auto slash = url.find('/', authority + 3);
  auto query = url.find('?', authority + 3);
  std::string base = url.substr(0, std::min(slash, query));
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + name + rest;
}

db::Options TestDatabase::default_options() {
  db::Options o;
  o.pool_size = 4;
  o.busy_timeout = Duration(5000);
  return o;
}

TestDatabase::TestDatabase(db::Dialect dialect, db::Options options) : dialect_(dialect), options_(std::move(options)) {
  if (dialect_ == db::Dialect::sqlite) {
    url_ = "sqlite:" + (dir_.path() / "test.db").string();
  } else {
    admin_url_ = postgres_admin_url();
    pg_name_ = "t_" + random_suffix();
    admin_exec(admin_url_, "CREATE DATABASE " + pg_name_);
    url_ = with_database_name(admin_url_, pg_name_);
  }
  options_.url = url_;
  db_ = db::Database::open(options_, dir_.path());
}

std::unique_ptr<db::Database> TestDatabase::open_another(db::Options options) const {
  options.url = url_;
  return db::Database::open(options, dir_.path());
}

TestDatabase::~TestDatabase() {
  db_.reset();
  if (pg_name_.empty()) return;
  try {
    admin_exec(admin_url_, "DROP DATABASE IF EXISTS " + pg_name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "warning: cannot drop test database " << pg_name_ << ": " << e.what() << "\n";
  }
}

}  // namespace neurod::test

#include "db/database.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <system_error>

namespace neurod::db {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSqlitePrefix = "sqlite:";
constexpr std::string_view kMemory = ":memory:";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Backend messages come with SOCI's prefix and libpq's multi-line hints; one line reads
// better in an error body and a log.
std::string one_line(std::string_view message) {
  constexpr std::string_view kSociPrefix = "Cannot establish connection to the database.";
  if (starts_with(message, kSociPrefix)) message.remove_prefix(kSociPrefix.size());
  std::string out;
  bool space = false;
  for (char c : message) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// postgresql://user:secret@host/db -> postgresql://user:***@host/db; also ?password=...
std::string mask_password(const std::string& url) {
  std::string out = url;
  auto scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    auto authority = scheme_end + 3;
    auto at = out.find('@', authority);
    auto slash = out.find('/', authority);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      auto colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (std::string_view key : {"password="}) {
    auto pos = out.find(key);
    while (pos != std::string::npos) {
      auto value = pos + key.size();
      auto end = out.find_first_of("& ", value);
      if (end == std::string::npos) end = out.size();
      out.replace(value, end - value, "***");
      pos = out.find(key, value + 3);
    }
  }
  return out;
}

// SOCI 4.0's PostgreSQL backend re-tokenises its connect string as key=value pairs, which
// mangles a URL. So the URL is parsed by libpq itself and handed over as key="'value'":
// SOCI strips the double quotes, libpq then reads the single-quoted value (spaces and
// quotes in a password survive).
std::string pg_conninfo(const std::string& url, const std::string& display_url) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  if (!options) {
    std::string reason = err ? one_line(err) : "cannot parse it";
    PQfreemem(err);
    throw Error(errc::invalid_argument, "invalid database url " + display_url + ": " + reason);
  }
  std::string out;
  bool unsupported = false;
  for (auto* o = options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string value = o->val;
    if (value.find('"') != std::string::npos) unsupported = true;
    std::string escaped;
    for (char c : value) {
      if (c == '\\' || c == '\'') escaped += '\\';
      escaped += c;
    }
    if (!out.empty()) out += ' ';
    out += std::string(o->keyword) + "=\"'" + escaped + "'\"";
  }
  PQconninfoFree(options);
  if (unsupported)
    throw Error(errc::invalid_argument,
                "invalid database url " + display_url + ": a value holds '\"', which SOCI cannot pass on");
  return out;
}

// libpq prints NOTICEs ("relation already exists, skipping") to stderr; route them to the log.
void log_pg_notice(void*, const char* message) { spdlog::debug("postgresql: {}", one_line(message)); }

bool is_sqlite(const soci::session& session) {
  return const_cast<soci::session&>(session).get_backend_name() == "sqlite3";
}

}  // namespace

std::string_view to_string(Dialect d) {
  switch (d) {
    case Dialect::sqlite:
      return "sqlite";
    case Dialect::postgresql:
      return "postgresql";
  }
  return "unknown";
}

void exec_script(soci::session& session, const std::string& sql) {
  if (is_sqlite(session)) {
    auto* conn = static_cast<soci::sqlite3_session_backend*>(session.get_backend())->conn_;
    char* err = nullptr;
    int rc = sqlite_api::sqlite3_exec(conn, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string message = err ? err : sqlite_api::sqlite3_errmsg(conn);
      sqlite_api::sqlite3_free(err);
      throw soci::sqlite3_soci_error(message, rc);
    }
    return;
  }
  auto* conn = static_cast<soci::postgresql_session_backend*>(session.get_backend())->conn_;
  PGresult* result = PQexec(conn, sql.c_str());
  auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    PQclear(result);
    return;
  }
  std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state && std::string_view(state).size() == 5 ? state : "XX000";
  PQclear(result);
  throw soci::postgresql_soci_error(one_line(message), sqlstate.c_str());
}

[[noreturn]] void rethrow_as_error(const std::exception& e) {
  if (auto* err = dynamic_cast<const Error*>(&e)) throw *err;

  constexpr std::string_view kBusy = "the database is busy; retry shortly";
  constexpr std::string_view kDuplicate = "a record with the same unique key already exists";
  std::string_view what = e.what();

  if (auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&e)) {
    auto state = pg->sqlstate();
    // 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available.
    if (state == "40001" || state == "40P01" || state == "55P03") throw Error(errc::db_busy, std::string(kBusy));
    if (state == "23505") throw Error(errc::conflict, std::string(kDuplicate));
    if (starts_with(state, "08")) {
      spdlog::error("database connection error: {}", one_line(what));
      throw Error(errc::unavailable, "the database is unreachable");
    }
  } else if (auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&e)) {
    int primary = lite->result() & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) throw Error(errc::db_busy, std::string(kBusy));
  }
  // Some paths (SOCI's own statements) report only text.
  if (contains(what, "database is locked") || contains(what, "database table is locked") ||
      contains(what, "database is busy"))
    throw Error(errc::db_busy, std::string(kBusy));
  if (contains(what, "UNIQUE constraint failed") || contains(what, "duplicate key value"))
    throw Error(errc::conflict, std::string(kDuplicate));

  spdlog::error("database error: {}", one_line(what));
  throw Error(errc::internal, "internal database error");
}

// --- Transaction ---------------------------------------------------------------------

Database::Transaction::Transaction(soci::session& session, Dialect dialect) : session_(session) {
  exec_script(session_, dialect == Dialect::sqlite ? "BEGIN IMMEDIATE" : "BEGIN");
  open_ = true;
}

Database::Transaction::~Transaction() {
  if (!open_) return;
  try {
    exec_script(session_, "ROLLBACK");
  } catch (const std::exception& e) {
    // SQLite rolls back by itself after some errors; nothing is left to undo then.
    spdlog::debug("rollback: {}", e.what());
  }
}

void Database::Transaction::commit() {
  exec_script(session_, "COMMIT");
  open_ = false;
}

// --- Database ------------------------------------------------------------------------

std::unique_ptr<Database> Database::open(const Options& options, const fs::path& data_dir) {
  std::unique_ptr<Database> db(new Database());
  db->options_ = options;
  const std::string& url = options.url;
  std::string connect;
  std::size_t pool_size = std::max<std::size_t>(1, options.pool_size);
  fs::path sqlite_file;

  if (starts_with(url, kSqlitePrefix)) {
    db->dialect_ = Dialect::sqlite;
    std::string path = url.substr(kSqlitePrefix.size());
    if (path.empty()) throw Error(errc::invalid_argument, "database url 'sqlite:' needs a file path");
    if (path == kMemory) {
      // A private in-memory database exists per connection, so the pool has one.
      connect = std::string(kMemory);
      pool_size = 1;
      db->display_url_ = url;
    } else {
      sqlite_file = fs::path(path);
      if (sqlite_file.is_relative()) sqlite_file = data_dir / sqlite_file;
      sqlite_file = sqlite_file.lexically_normal();
      connect = sqlite_file.string();
      db->display_url_ = "sqlite:" + connect;
      std::error_code ec;
      fs::create_directories(sqlite_file.parent_path(), ec);
      if (ec)
        throw Error(errc::unavailable, "cannot open database " + db->display_url_ + ": cannot create directory " +
                                           sqlite_file.parent_path().string() + ": " + ec.message());
    }
  } else if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    db->dialect_ = Dialect::postgresql;
    db->display_url_ = mask_password(url);
    connect = pg_conninfo(url, db->display_url_);
  } else {
    throw Error(errc::invalid_argument, "unsupported database url '" + mask_password(url) +
                                            "': use sqlite:PATH, sqlite::memory: or postgresql://...");
  }

  try {
    for (std::size_t i = 0; i < pool_size; ++i) {
      auto session = db->dialect_ == Dialect::sqlite ? std::make_unique<soci::session>(soci::sqlite3, connect)
                                                     : std::make_unique<soci::session>(soci::postgresql, connect);
      db->configure(*session);
      db->sessions_.push_back(std::move(session));
    }
  } catch (const std::exception& e) {
    std::string reason = one_line(e.what());
    if (!sqlite_file.empty()) {
      auto dir = sqlite_file.parent_path();
      if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        int err = errno;
        reason = "directory " + dir.string() + " is not writable (" + std::generic_category().message(err) + ")";
      }
    }
    throw Error(errc::unavailable, "cannot open database " + db->display_url_ + ": " + reason);
  }
  db->busy_.assign(db->sessions_.size(), false);
  return db;
}

void Database::configure(soci::session& session) const {
  auto busy_ms = std::to_string(options_.busy_timeout.count());
  if (dialect_ == Dialect::postgresql) {
    PQsetNoticeProcessor(static_cast<soci::postgresql_session_backend*>(session.get_backend())->conn_, log_pg_notice,
                         nullptr);
    // Waiting on a row lock ends like SQLite's busy timeout: 55P03 -> db_busy.
    exec_script(session, "SET lock_timeout = " + busy_ms);
    return;
  }
  exec_script(session, "PRAGMA busy_timeout = " + busy_ms);
  exec_script(session, "PRAGMA foreign_keys = ON");
  exec_script(session, "PRAGMA synchronous = NORMAL");
  if (options_.url != std::string(kSqlitePrefix) + std::string(kMemory)) {
    std::string mode;
    session << "PRAGMA journal_mode = WAL", soci::into(mode);
    if (mode != "wal") throw std::runtime_error("cannot switch to WAL mode (journal mode is " + mode + ")");
  }
}

Database::~Database() {
  std::lock_guard lock(mu_);
  auto in_use = std::count(busy_.begin(), busy_.end(), true);
  if (in_use > 0) spdlog::error("database {} closed with {} sessions still leased", display_url_, in_use);
}

Database::Lease::~Lease() {
  if (db_) db_->release(index_);
}

soci::session& Database::Lease::operator*() const { return *db_->sessions_[index_]; }

Database::Lease Database::session() {
  std::unique_lock lock(mu_);
  auto free_slot = [&] { return std::find(busy_.begin(), busy_.end(), false); };
  ++waiting_;
  bool got = cv_.wait_for(lock, options_.busy_timeout, [&] { return free_slot() != busy_.end(); });
  --waiting_;
  if (!got)
    throw Error(errc::db_busy, "all " + std::to_string(busy_.size()) + " database sessions are busy; retry shortly");
  auto it = free_slot();
  *it = true;
  return Lease(*this, static_cast<std::size_t>(it - busy_.begin()));
}

void Database::release(std::size_t index) {
  {
    std::lock_guard lock(mu_);
    busy_[index] = false;
  }
  cv_.notify_one();
}

PoolStats Database::stats() const {
  std::lock_guard lock(mu_);
  PoolStats s;
  s.size = busy_.size();
  s.in_use = static_cast<std::size_t>(std::count(busy_.begin(), busy_.end(), true));
  s.waiting = waiting_;
  return s;
}

bool Database::ping() {
  try {
    auto lease = session();
    try {
      exec_script(*lease, "SELECT 1");
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("database {} ping failed ({}); reconnecting", display_url_, one_line(e.what()));
      lease->reconnect();
      configure(*lease);
      exec_script(*lease, "SELECT 1");
      return true;
    }
  } catch (const std::exception& e) {
    spdlog::warn("database {} unreachable: {}", display_url_, one_line(e.what()));
    return false;
  }
}

}  // namespace neurod::db

// The database (DESIGN §6): SOCI over SQLite (embedded default) or PostgreSQL.
// A pool of sessions; reads run concurrently; writes go through write(), which runs
// them in one transaction and, on SQLite, one writer at a time.
#pragma once

#include "core/errors.hpp"
#include "core/units.hpp"

#include <soci/soci.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace neurod::db {

enum class Dialect { sqlite, postgresql };
std::string_view to_string(Dialect d);

struct Options {
  std::string url = "sqlite:neurod.db";
  std::size_t pool_size = 8;
  Duration busy_timeout{5000};
};

struct PoolStats {
  std::size_t size = 0;
  std::size_t in_use = 0;
  std::size_t waiting = 0;
};

// Maps a database exception to neurod::Error: locked/busy -> db_busy (503 with
// Retry-After), unique violation -> conflict, anything else -> internal (the detail
// is logged, not returned).
[[noreturn]] void rethrow_as_error(const std::exception& e);

// Runs SQL that may hold several statements (a migration, a test fixture) through the
// backend's native API (sqlite3_exec, PQexec), inside whatever transaction is open.
// Throws the backend's soci error on failure, so rethrow_as_error maps it.
void exec_script(soci::session& session, const std::string& sql);

class Database {
 public:
  // Opens the pool. URLs: "sqlite:PATH" (relative to data_dir, parent folders created),
  // "sqlite::memory:" (a private in-memory database; the pool has one session so every
  // lease sees the same data), "postgresql://..." or "postgres://..." (handed to libpq).
  // SQLite gets WAL, busy_timeout, foreign_keys=ON, synchronous=NORMAL on every session;
  // PostgreSQL gets lock_timeout = busy_timeout. Throws Error(unavailable) with a clear
  // message when the database cannot be opened, Error(invalid_argument) on a bad URL.
  static std::unique_ptr<Database> open(const Options& options, const std::filesystem::path& data_dir);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Dialect dialect() const { return dialect_; }
  // The URL with any password masked, for logs.
  const std::string& display_url() const { return display_url_; }

  class Lease {
   public:
    Lease(Database& db, std::size_t index) : db_(&db), index_(index) {}
    Lease(Lease&& o) noexcept : db_(o.db_), index_(o.index_) { o.db_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    soci::session& operator*() const;
    soci::session* operator->() const { return &**this; }

   private:
    Database* db_;
    std::size_t index_;
  };
  // Waits up to busy_timeout for a free session; Error(db_busy) past it.
  Lease session();

  // Runs fn(session) in a transaction, committing on return and rolling back on
  // exception. Database exceptions are rethrown through rethrow_as_error. On SQLite the
  // transaction is BEGIN IMMEDIATE (the write lock is taken up front, so a transaction
  // that reads before it writes cannot fail with SQLITE_BUSY half-way) and writers
  // queue on one in-process mutex for up to busy_timeout.
  template <class F>
  auto write(F&& fn) -> decltype(fn(std::declval<soci::session&>()));
  template <class F>
  auto read(F&& fn) -> decltype(fn(std::declval<soci::session&>()));

  PoolStats stats() const;
  bool ping();  // SELECT 1; on failure tries to reconnect that session once

  // A transaction on a leased session: BEGIN IMMEDIATE on SQLite, BEGIN on PostgreSQL;
  // rolled back on destruction unless committed. write() uses it; the migrator too.
  class Transaction {
   public:
    Transaction(soci::session& session, Dialect dialect);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

   private:
    soci::session& session_;
    bool open_ = false;
  };

 private:
  Database() = default;
  friend class Lease;
  void release(std::size_t index);
  void configure(soci::session& session) const;  // per-session pragmas / settings

  Dialect dialect_ = Dialect::sqlite;
  std::string display_url_;
  Options options_;
  std::vector<std::unique_ptr<soci::session>> sessions_;
  std::vector<bool> busy_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::size_t waiting_ = 0;
  std::timed_mutex writer_;  // SQLite: one writer at a time
};

template <class F>
auto Database::write(F&& fn) -> decltype(fn(std::declval<soci::session&>())) {
  std::unique_lock<std::timed_mutex> writer(writer_, std::defer_lock);
  if (dialect_ == Dialect::sqlite && !writer.try_lock_for(options_.busy_timeout))
    throw Error(errc::db_busy, "the database is busy with another write; retry shortly");
  auto lease = session();
  try {
    Transaction tx(*lease, dialect_);
    if constexpr (std::is_void_v<decltype(fn(*lease))>) {
      fn(*lease);
      tx.commit();
    } else {
      auto result = fn(*lease);
      tx.commit();
      return result;
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_as_error(e);
  }
}

template <class F>
auto Database::read(F&& fn) -> decltype(fn(std::declval<soci::session&>())) {
  auto lease = session();
  try {
    return fn(*lease);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_as_error(e);
  }
}

}  // namespace neurod::db

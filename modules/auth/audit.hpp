// The audit log: every mutating request, whichever module served it and whatever the
// result. Entries are queued by a router observer (on the I/O thread, so it must not
// block) and written in batches by a background task; stop() flushes what is left.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace neurod::db {
class Database;
}

namespace neurod::auth {

struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t at = 0;    // epoch ms
  std::string principal;  // "" for anonymous
  std::string method;
  std::string path;
  std::string route;
  std::string resource;
  int status = 0;
  std::string remote;
  std::string request_id;
};
nlohmann::json to_json(const AuditEntry& e);

struct AuditQuery {
  std::string user;                    // exact principal; empty = everyone
  std::optional<std::int64_t> since;   // epoch ms, inclusive
  std::optional<std::int64_t> until;   // epoch ms, exclusive
  std::string resource;                // the resource or path, or anything below it
  std::optional<std::int64_t> before;  // id, for paging (newest first)
  int limit = 100;
};

class AuditLog {
 public:
  explicit AuditLog(db::Database& db, std::size_t max_queue = 100000) : db_(db), max_queue_(max_queue) {}

  // Never blocks on the database. Past max_queue (the database is down), the oldest
  // queued entries are dropped and counted.
  void record(AuditEntry e);
  // Writes everything queued; returns how many. Safe to call from several threads.
  std::size_t flush();
  // Waits up to `timeout` for something to be queued (the writer task's pacing).
  void wait(std::chrono::milliseconds timeout);
  std::vector<AuditEntry> query(const AuditQuery& q);
  std::size_t purge_before(std::int64_t cutoff_ms);
  std::uint64_t dropped() const;
  std::size_t queued() const;

 private:
  db::Database& db_;
  std::size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AuditEntry> queue_;
  std::uint64_t dropped_ = 0;
  std::mutex flush_mu_;  // one writer at a time keeps ids in arrival order
};

}  // namespace neurod::auth

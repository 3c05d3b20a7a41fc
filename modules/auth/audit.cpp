#include "modules/auth/audit.hpp"

#include "db/database.hpp"
#include "db/rows.hpp"

#include <spdlog/spdlog.h>

#include <limits>

namespace neurod::auth {

nlohmann::json to_json(const AuditEntry& e) {
  return {{"id", e.id},
          {"at", e.at},
          {"principal", e.principal},
          {"method", e.method},
          {"path", e.path},
          {"route", e.route},
          {"resource", e.resource},
          {"status", e.status},
          {"remote", e.remote},
          {"request_id", e.request_id}};
}

void AuditLog::record(AuditEntry e) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queue_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(e));
  }
  cv_.notify_one();
}

void AuditLog::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty(); });
}

std::size_t AuditLog::flush() {
  std::lock_guard writer(flush_mu_);
  std::deque<AuditEntry> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  if (batch.empty()) return 0;
  try {
    db_.write([&](soci::session& s) {
      AuditEntry e;
      long long at = 0;
      soci::statement st =
          (s.prepare
               << "INSERT INTO auth_audit (at, principal, method, path, route, resource, status, remote, request_id) "
                  "VALUES (:at, :p, :m, :pa, :r, :res, :st, :re, :id)",
           soci::use(at), soci::use(e.principal), soci::use(e.method), soci::use(e.path), soci::use(e.route),
           soci::use(e.resource), soci::use(e.status), soci::use(e.remote), soci::use(e.request_id));
      for (auto& entry : batch) {
        e = std::move(entry);
        at = e.at;
        st.execute(true);
      }
    });
  } catch (const std::exception& ex) {
    // Put them back in front (order kept) and try again on the next round.
    std::lock_guard lock(mu_);
    spdlog::warn("audit log: cannot write {} entries yet: {}", batch.size(), ex.what());
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      if (queue_.size() >= max_queue_) {
        ++dropped_;
        continue;
      }
      queue_.push_front(std::move(*it));
    }
    return 0;
  }
  return batch.size();
}

std::vector<AuditEntry> AuditLog::query(const AuditQuery& q) {
  // One fixed statement: a filter that is not wanted gets a neutral value.
  std::string user = q.user, res = q.resource, res_prefix = q.resource + (q.resource.ends_with('/') ? "" : "/");
  long long since = q.since.value_or(0), until = q.until.value_or(std::numeric_limits<long long>::max()),
            before = q.before.value_or(std::numeric_limits<long long>::max());
  int n = static_cast<int>(res_prefix.size());
  int limit = q.limit;
  return db_.read([&](soci::session& s) {
    soci::rowset<soci::row> rs =
        (s.prepare
             << "SELECT id, at, principal, method, path, route, resource, status, remote, request_id FROM auth_audit "
                "WHERE (:u0 = '' OR principal = :u1) AND at >= :since AND at < :until AND id < :before "
                "AND (:r0 = '' OR resource = :r1 OR substr(resource, 1, :n1) = :rp1 OR path = :r2 "
                "OR substr(path, 1, :n2) = :rp2) ORDER BY id DESC LIMIT :limit",
         soci::use(user), soci::use(user), soci::use(since), soci::use(until), soci::use(before), soci::use(res),
         soci::use(res), soci::use(n), soci::use(res_prefix), soci::use(res), soci::use(n), soci::use(res_prefix),
         soci::use(limit));
    std::vector<AuditEntry> out;
    for (const auto& row : rs) {
      auto i64 = [&](std::size_t i) { return db::as_int64(row, i); };
      AuditEntry e;
      e.id = i64(0);
      e.at = i64(1);
      e.principal = row.get<std::string>(2);
      e.method = row.get<std::string>(3);
      e.path = row.get<std::string>(4);
      e.route = row.get<std::string>(5);
      e.resource = row.get<std::string>(6);
      e.status = static_cast<int>(i64(7));
      e.remote = row.get<std::string>(8);
      e.request_id = row.get<std::string>(9);
      out.push_back(std::move(e));
    }
    return out;
  });
}

std::size_t AuditLog::purge_before(std::int64_t cutoff_ms) {
  return db_.write([&](soci::session& s) {
    long long cutoff = cutoff_ms;
    soci::statement st = (s.prepare << "DELETE FROM auth_audit WHERE at < :c", soci::use(cutoff));
    st.execute(true);
    return static_cast<std::size_t>(st.get_affected_rows());
  });
}

std::uint64_t AuditLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::size_t AuditLog::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace neurod::auth

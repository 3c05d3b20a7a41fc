// The notifications service (README.md here): subscriptions with their permission
// checks, the fan-out of events into the durable outbox of deliveries, and the delivery
// worker that sends due deliveries with retries and back-off.
#pragma once

#include <memory>

#include "core/events.hpp"
#include "http/types.hpp"
#include "modules/notifications/channels.hpp"
#include "modules/notifications/model.hpp"
#include "modules/notifications/repo.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <stop_token>

namespace neurod::db {
class Database;
}
namespace neurod::auth {
class Authorizer;
}

namespace neurod::notifications {

class Sealer;

struct ServiceOptions {
  // Seals targets and webhook secrets at rest (sealer.hpp); required.
  std::shared_ptr<const Sealer> sealer;
  Duration retry_initial = std::chrono::seconds(10);
  Duration retry_max = std::chrono::hours(1);
  int max_attempts = 8;
  Duration send_timeout = std::chrono::seconds(10);
  Duration poll_interval = std::chrono::seconds(1);
  // A gap in the job status outbox (PostgreSQL: a transaction that took a seq has not
  // committed yet, or rolled back) is waited for this long before it is skipped.
  Duration gap_grace = std::chrono::seconds(10);
  SmtpSettings smtp;
  bool default_email_owner = false;
  std::vector<std::string> default_events{std::string(kJobStatus)};
  std::vector<std::string> default_statuses = notifications::default_statuses();
  int max_subscriptions = 100;  // per owner
  Duration log_retention = std::chrono::hours(24 * 30);  // delivered and dead deliveries
};

// One row of another module's outbox (jobs' status history), already as an event.
struct OutboxRow {
  std::int64_t seq = 0;
  std::int64_t time_ms = 0;
  Event event;
};
// Reads up to `limit` rows after `after` in seq order; latest() is the newest seq.
struct OutboxSource {
  std::function<std::vector<OutboxRow>(std::int64_t after, std::size_t limit)> after;
  std::function<std::int64_t()> latest;
};

class Service {
 public:
  Service(db::Database& db, auth::Authorizer& authz, ServiceOptions options);

  // --- the API (api.cpp); every call checks the caller.
  // Returns the subscription's JSON, with "secret" for a webhook (the only time it is shown).
  nlohmann::json create(const http::Principal& who, const nlohmann::json& body);
  std::vector<repo::Subscription> list(const http::Principal& who);
  repo::Subscription get(const http::Principal& who, const std::string& id);  // 404 unless visible
  void remove(const http::Principal& who, const std::string& id);
  // Queues a test notification to the subscription and wakes the worker.
  repo::Delivery test(const http::Principal& who, const std::string& id);
  std::vector<repo::Delivery> log(const http::Principal& who, const std::string& subscription_id, std::size_t limit);
  std::pair<repo::Delivery, std::vector<repo::Attempt>> delivery(const http::Principal& who, std::int64_t id);
  nlohmann::json preferences(const http::Principal& who);
  nlohmann::json set_preferences(const http::Principal& who, const nlohmann::json& body);

  static nlohmann::json to_json(const repo::Subscription& s);
  static nlohmann::json to_json(const repo::Delivery& d);
  static nlohmann::json to_json(const repo::Attempt& a);

  // --- events and delivery.
  // The bus handler: queues job.cannot_start, quota.threshold and job.life_span_ending,
  // and wakes the worker for job.status (read from the outbox, not from the bus).
  void on_event(const events::Event& e);
  void set_outbox(OutboxSource source) { outbox_ = std::move(source); }
  void wake();
  // The worker: pump() until stopped, waiting poll_interval (or a wake) between passes.
  void run(std::stop_token stop);
  // One pass: reads the outbox after the cursor, fans queued events out, then sends
  // every due delivery. Returns how many deliveries it attempted.
  std::size_t pump();

  // Every delivery an event gives, with its idempotency key (in the caller's transaction).
  std::vector<repo::Delivery> fan_out(soci::session& s, const Event& e, std::int64_t now);

 private:
  repo::Subscription visible(const http::Principal& who, const std::string& id);
  bool can_see(const http::Principal& who, const repo::Subscription& s) const;
  void catch_up(std::int64_t now);
  void drain_queue(std::int64_t now);
  bool send(const repo::Delivery& d);

  db::Database& db_;
  auth::Authorizer& authz_;
  ServiceOptions options_;
  OutboxSource outbox_;

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Event> queue_;  // bus events waiting for fan-out
  bool woken_ = false;

  // Worker thread only: the outbox cursor and the seqs above it already fanned out.
  std::optional<std::int64_t> cursor_;
  std::set<std::int64_t> done_;
  std::int64_t last_purge_ = 0;
};

}  // namespace neurod::notifications

// The notifications tables (migrations/notifications). Every function runs inside the
// caller's transaction (Database::write/read).
#pragma once

#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace neurod::notifications {
class Sealer;
}

// Targets and webhook secrets are sealed (sealer.hpp) on the way in and opened on the way
// out: what is in the tables is never the plaintext.
namespace neurod::notifications::repo {

struct Subscription {
  std::string id;
  std::string owner;
  std::string project;  // empty: personal
  std::string channel;  // email | slack | webhook
  std::string target;   // address or URL (a Slack URL is a secret: never logged)
  std::string secret;   // webhook: the HMAC key; never shown after creation
  std::vector<std::string> events;
  std::vector<std::string> statuses;  // job.status filter
  std::int64_t created_at = 0;
};

void insert(soci::session& s, const Subscription& sub, const Sealer& k);
std::optional<Subscription> get(soci::session& s, const std::string& id, const Sealer& k);
// The caller's own subscriptions and every project one (the service filters those by
// permission), oldest first.
std::vector<Subscription> candidates(soci::session& s, const std::string& owner, const Sealer& k);
// Subscriptions that may want an event about `user` (personal) or `project`.
std::vector<Subscription> matching(soci::session& s, const std::string& user, const std::string& project,
                                   const Sealer& k);
bool remove(soci::session& s, const std::string& id);

bool opted_out(soci::session& s, const std::string& principal);
void set_opted_out(soci::session& s, const std::string& principal, bool out, std::int64_t now);

// The read position in another module's outbox; nullopt before the first read.
std::optional<std::int64_t> cursor(soci::session& s, const std::string& name);
void set_cursor(soci::session& s, const std::string& name, std::int64_t seq);

struct Delivery {
  std::int64_t id = 0;
  std::string key;  // idempotency key
  std::string event_id, topic, subscription_id, owner, channel, target;
  std::string payload;  // JSON: {"event": {id, topic, data}}
  std::string status;   // pending | failed | delivered | dead
  int attempts = 0;
  std::int64_t next_attempt_at = 0;
  std::string last_error;
  std::int64_t created_at = 0, updated_at = 0;
};
// Inserts unless a delivery with the same key exists; true when inserted.
bool enqueue(soci::session& s, const Delivery& d, const Sealer& k);
std::vector<Delivery> due(soci::session& s, std::int64_t now, std::size_t limit, const Sealer& k);
std::optional<Delivery> delivery(soci::session& s, std::int64_t id, const Sealer& k);
std::optional<Delivery> delivery_by_key(soci::session& s, const std::string& key, const Sealer& k);

struct Attempt {
  std::int64_t delivery_id = 0;
  int attempt = 0;
  std::int64_t time = 0;
  bool ok = false;
  std::optional<int> response_status;
  std::string error;
  std::int64_t duration_ms = 0;
};
// Logs the attempt and moves the delivery to `status` (next_attempt_at for a retry).
void record(soci::session& s, const Attempt& a, const std::string& status, std::int64_t next_attempt_at);
std::vector<Attempt> attempts(soci::session& s, std::int64_t delivery_id);

// Deletes delivered and dead deliveries (and their attempts) last changed before `before`.
std::size_t purge(soci::session& s, std::int64_t before);

// Deliveries whose owner is `owner` or whose subscription is one of `subscription_ids`
// (ids the service checked), newest first; `only_subscription` narrows to one.
std::vector<Delivery> log(soci::session& s, const std::string& owner, const std::vector<std::string>& subscription_ids,
                          const std::string& only_subscription, std::size_t limit, const Sealer& k);

}  // namespace neurod::notifications::repo

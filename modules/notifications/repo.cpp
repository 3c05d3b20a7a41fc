#include "modules/notifications/repo.hpp"

#include "db/rows.hpp"
#include "modules/notifications/sealer.hpp"

namespace neurod::notifications::repo {

namespace {

using db::as_int64;
using db::as_string;
using nlohmann::json;

constexpr const char* kSubCols = "id, owner, project, channel, target, secret, events, statuses, created_at";

std::vector<std::string> list_of(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& v : j)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

Subscription sub_from(const soci::row& r, const Sealer& k) {
  Subscription s;
  s.id = as_string(r, 0);
  s.owner = as_string(r, 1);
  s.project = as_string(r, 2);
  s.channel = as_string(r, 3);
  s.target = k.open(as_string(r, 4), s.id);
  auto secret = as_string(r, 5);
  if (!secret.empty()) s.secret = k.open(secret, s.id);
  s.events = list_of(as_string(r, 6));
  s.statuses = list_of(as_string(r, 7));
  s.created_at = as_int64(r, 8);
  return s;
}

constexpr const char* kDelCols =
    "id, idempotency_key, event_id, topic, subscription_id, owner, channel, target, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at";

Delivery del_from(const soci::row& r, const Sealer& k) {
  Delivery d;
  d.id = as_int64(r, 0);
  d.key = as_string(r, 1);
  d.event_id = as_string(r, 2);
  d.topic = as_string(r, 3);
  d.subscription_id = as_string(r, 4);
  d.owner = as_string(r, 5);
  d.channel = as_string(r, 6);
  d.target = k.open(as_string(r, 7), d.key);
  d.payload = as_string(r, 8);
  d.status = as_string(r, 9);
  d.attempts = static_cast<int>(as_int64(r, 10));
  d.next_attempt_at = as_int64(r, 11);
  d.last_error = as_string(r, 12);
  d.created_at = as_int64(r, 13);
  d.updated_at = as_int64(r, 14);
  return d;
}

std::vector<Subscription> subs(soci::rowset<soci::row>& rs, const Sealer& k) {
  std::vector<Subscription> out;
  for (const auto& r : rs) out.push_back(sub_from(r, k));
  return out;
}

// Ids are made by the service ("nsub-" and hex); anything else never reaches SQL text.
bool safe_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace

void insert(soci::session& s, const Subscription& sub, const Sealer& k) {
  auto target = k.seal(sub.target, sub.id);
  auto secret = sub.secret.empty() ? std::string() : k.seal(sub.secret, sub.id);
  std::string events = json(sub.events).dump(), statuses = json(sub.statuses).dump();
  soci::indicator pi = sub.project.empty() ? soci::i_null : soci::i_ok;
  s << "INSERT INTO notify_subscriptions (id, owner, project, channel, target, secret, events, statuses, created_at) "
       "VALUES (:i, :o, :p, :c, :t, :s, :e, :st, :at)",
      soci::use(sub.id), soci::use(sub.owner), soci::use(sub.project, pi), soci::use(sub.channel),
      soci::use(target), soci::use(secret), soci::use(events), soci::use(statuses), soci::use(sub.created_at);
}

std::optional<Subscription> get(soci::session& s, const std::string& id, const Sealer& k) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kSubCols + " FROM notify_subscriptions WHERE id = :i", soci::use(id));
  for (const auto& r : rs) return sub_from(r, k);
  return std::nullopt;
}

std::vector<Subscription> candidates(soci::session& s, const std::string& owner, const Sealer& k) {
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kSubCols +
                                                 " FROM notify_subscriptions WHERE owner = :o OR project IS NOT NULL "
                                                 "ORDER BY created_at, id",
                                soci::use(owner));
  return subs(rs, k);
}

std::vector<Subscription> matching(soci::session& s, const std::string& user, const std::string& project,
                                   const Sealer& k) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kSubCols +
                        " FROM notify_subscriptions WHERE (project IS NULL AND owner = :u) OR project = :p "
                        "ORDER BY created_at, id",
       soci::use(user), soci::use(project));
  return subs(rs, k);
}

bool remove(soci::session& s, const std::string& id) {
  soci::statement st = (s.prepare << "DELETE FROM notify_subscriptions WHERE id = :i", soci::use(id));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

bool opted_out(soci::session& s, const std::string& principal) {
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT principal FROM notify_optouts WHERE principal = :p", soci::use(principal));
  return rs.begin() != rs.end();
}

void set_opted_out(soci::session& s, const std::string& principal, bool out, std::int64_t now) {
  if (out)
    s << "INSERT INTO notify_optouts (principal, created_at) VALUES (:p, :t) ON CONFLICT (principal) DO NOTHING",
        soci::use(principal), soci::use(now);
  else
    s << "DELETE FROM notify_optouts WHERE principal = :p", soci::use(principal);
}

std::optional<std::int64_t> cursor(soci::session& s, const std::string& name) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT seq FROM notify_cursors WHERE name = :n", soci::use(name));
  for (const auto& r : rs) return as_int64(r, 0);
  return std::nullopt;
}

void set_cursor(soci::session& s, const std::string& name, std::int64_t seq) {
  long long v = seq;
  s << "INSERT INTO notify_cursors (name, seq) VALUES (:n, :s) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
      soci::use(name), soci::use(v);
}

bool enqueue(soci::session& s, const Delivery& d, const Sealer& k) {
  auto target = k.seal(d.target, d.key);
  long long next = d.next_attempt_at, created = d.created_at;
  soci::statement st =
      (s.prepare << "INSERT INTO notify_deliveries (idempotency_key, event_id, topic, subscription_id, owner, channel, "
                    "target, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at) VALUES "
                    "(:k, :e, :t, :s, :o, :c, :tg, :p, 'pending', 0, :n, '', :ca, :ua) "
                    "ON CONFLICT (idempotency_key) DO NOTHING",
       soci::use(d.key), soci::use(d.event_id), soci::use(d.topic), soci::use(d.subscription_id), soci::use(d.owner),
       soci::use(d.channel), soci::use(target), soci::use(d.payload), soci::use(next), soci::use(created),
       soci::use(created));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

std::vector<Delivery> due(soci::session& s, std::int64_t now, std::size_t limit, const Sealer& k) {
  long long n = now, l = static_cast<long long>(limit);
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kDelCols +
                                                 " FROM notify_deliveries WHERE status IN ('pending', 'failed') AND "
                                                 "next_attempt_at <= :n ORDER BY next_attempt_at, id LIMIT :l",
                                soci::use(n), soci::use(l));
  std::vector<Delivery> out;
  for (const auto& r : rs) out.push_back(del_from(r, k));
  return out;
}

std::optional<Delivery> delivery(soci::session& s, std::int64_t id, const Sealer& k) {
  long long i = id;
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kDelCols + " FROM notify_deliveries WHERE id = :i", soci::use(i));
  for (const auto& r : rs) return del_from(r, k);
  return std::nullopt;
}

std::optional<Delivery> delivery_by_key(soci::session& s, const std::string& key, const Sealer& k) {
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kDelCols +
                                                 " FROM notify_deliveries WHERE idempotency_key = :k",
                                soci::use(key));
  for (const auto& r : rs) return del_from(r, k);
  return std::nullopt;
}

void record(soci::session& s, const Attempt& a, const std::string& status, std::int64_t next_attempt_at) {
  long long did = a.delivery_id, t = a.time, dur = a.duration_ms, next = next_attempt_at;
  int ok = a.ok ? 1 : 0;
  int code = a.response_status.value_or(0);
  soci::indicator ci = a.response_status ? soci::i_ok : soci::i_null;
  s << "INSERT INTO notify_attempts (delivery_id, attempt, time, ok, response_status, error, duration_ms) VALUES "
       "(:d, :a, :t, :ok, :c, :e, :dur)",
      soci::use(did), soci::use(a.attempt), soci::use(t), soci::use(ok), soci::use(code, ci), soci::use(a.error),
      soci::use(dur);
  s << "UPDATE notify_deliveries SET status = :s, attempts = :a, next_attempt_at = :n, last_error = :e, updated_at = "
       ":t WHERE id = :d",
      soci::use(status), soci::use(a.attempt), soci::use(next), soci::use(a.error), soci::use(t), soci::use(did);
}

std::vector<Attempt> attempts(soci::session& s, std::int64_t delivery_id) {
  long long d = delivery_id;
  soci::rowset<soci::row> rs = (s.prepare << "SELECT delivery_id, attempt, time, ok, response_status, error, "
                                             "duration_ms FROM notify_attempts WHERE delivery_id = :d ORDER BY id",
                                soci::use(d));
  std::vector<Attempt> out;
  for (const auto& r : rs) {
    Attempt a;
    a.delivery_id = as_int64(r, 0);
    a.attempt = static_cast<int>(as_int64(r, 1));
    a.time = as_int64(r, 2);
    a.ok = as_int64(r, 3) != 0;
    if (auto c = db::as_opt_int64(r, 4)) a.response_status = static_cast<int>(*c);
    a.error = as_string(r, 5);
    a.duration_ms = as_int64(r, 6);
    out.push_back(std::move(a));
  }
  return out;
}

std::size_t purge(soci::session& s, std::int64_t before) {
  long long b = before;
  s << "DELETE FROM notify_attempts WHERE delivery_id IN (SELECT id FROM notify_deliveries WHERE status IN "
       "('delivered', 'dead') AND updated_at < :b)",
      soci::use(b);
  soci::statement st = (s.prepare << "DELETE FROM notify_deliveries WHERE status IN ('delivered', 'dead') AND "
                                     "updated_at < :b",
                        soci::use(b));
  st.execute(true);
  return static_cast<std::size_t>(st.get_affected_rows());
}

std::vector<Delivery> log(soci::session& s, const std::string& owner, const std::vector<std::string>& subscription_ids,
                          const std::string& only_subscription, std::size_t limit, const Sealer& k) {
  std::string where = "(owner = :o";
  std::string ids;
  for (const auto& id : subscription_ids)
    if (safe_id(id)) ids += (ids.empty() ? "'" : ", '") + id + "'";
  if (!ids.empty()) where += " OR subscription_id IN (" + ids + ")";
  where += ")";
  long long l = static_cast<long long>(limit);
  std::vector<Delivery> out;
  if (only_subscription.empty()) {
    soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kDelCols + " FROM notify_deliveries WHERE " +
                                                   where + " ORDER BY id DESC LIMIT :l",
                                  soci::use(owner), soci::use(l));
    for (const auto& r : rs) out.push_back(del_from(r, k));
  } else {
    soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kDelCols + " FROM notify_deliveries WHERE " +
                                                   where + " AND subscription_id = :s ORDER BY id DESC LIMIT :l",
                                  soci::use(owner), soci::use(only_subscription), soci::use(l));
    for (const auto& r : rs) out.push_back(del_from(r, k));
  }
  return out;
}

}  // namespace neurod::notifications::repo

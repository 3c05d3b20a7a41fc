#include "modules/notifications/service.hpp"
#include "modules/notifications/sealer.hpp"

#include "core/errors.hpp"
#include "core/ids.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "modules/auth/authorizer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace neurod::notifications {

namespace {

using nlohmann::json;
constexpr const char* kJobCursor = "job_statuses";

Error not_found(const std::string& id) {
  return Error(errc::not_found, fmt::format("no subscription '{}' that you can see (neuro notify ls lists yours)", id))
      .with_code("subscription_not_found");
}

Error bad(const std::string& message) { return Error(errc::bad_request, message); }

std::vector<std::string> string_list(const json& body, const char* name, const std::vector<std::string>& allowed) {
  auto it = body.find(name);
  if (!it->is_array() || it->empty()) throw bad(fmt::format("{}: must be a non-empty list of strings", name));
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) throw bad(fmt::format("{}: must be a non-empty list of strings", name));
    auto s = v.get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string all;
      for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
      throw Error(errc::bad_request, fmt::format("{}: unknown value '{}'; one of: {}", name, one_line(s, 60), all))
          .with_code(std::string(name) == "events" ? "unknown_event" : "unknown_status");
    }
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

bool valid_project(const std::string& p) {
  if (p.empty() || p.size() > 100) return false;
  for (char c : p)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

http::Principal principal_of(const std::string& name) {
  http::Principal p;
  p.name = name;
  p.kind = name.find('/') == std::string::npos ? "user" : "service";
  return p;
}

// The user an event is about (a service account's owner) and its project.
std::pair<std::string, std::string> user_and_project(const Event& e) {
  const auto& d = e.data;
  if (e.topic == kQuotaThreshold) {
    auto kind = d.value("subject_kind", "");
    auto name = d.value("subject", "");
    return kind == "user" ? std::pair{name, std::string()} : std::pair{std::string(), name};
  }
  auto owner = d.value("owner", "");
  return {owner.substr(0, owner.find('/')), d.value("project", "")};
}

bool wants(const std::vector<std::string>& events, const std::vector<std::string>& statuses, const Event& e) {
  if (std::find(events.begin(), events.end(), e.topic) == events.end()) return false;
  if (e.topic != kJobStatus) return true;
  auto st = e.data.value("status", "");
  return std::find(statuses.begin(), statuses.end(), st) != statuses.end();
}

json event_json(const Event& e) { return {{"id", e.id}, {"topic", e.topic}, {"data", e.data}}; }

Event event_from(const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  Event e;
  if (!j.is_object()) return e;
  e.id = j.value("id", "");
  e.topic = j.value("topic", "");
  e.data = j.value("data", json::object());
  return e;
}

}  // namespace

Service::Service(db::Database& db, auth::Authorizer& authz, ServiceOptions options)
    : db_(db), authz_(authz), options_(std::move(options)) {
  if (!options_.sealer) throw std::logic_error("notifications::Service needs a Sealer");
}

// ---------------------------------------------------------------- subscriptions

bool Service::can_see(const http::Principal& who, const repo::Subscription& s) const {
  if (s.owner == who.name) return true;
  return !s.project.empty() && authz_.allowed(who, authz_.resource_uri("job", s.project), auth::Action::write);
}

repo::Subscription Service::visible(const http::Principal& who, const std::string& id) {
  if (id.empty() || id.size() > 64) throw not_found(id);
  auto s = db_.read([&](soci::session& ses) { return repo::get(ses, id, *options_.sealer); });
  if (!s || !can_see(who, *s)) throw not_found(id);
  return *s;
}

json Service::create(const http::Principal& who, const json& body) {
  if (!body.is_object()) throw bad("the body must be a JSON object {\"channel\", \"target\", \"events\", …}");
  static const std::set<std::string> known{"channel", "target", "project_name", "events", "statuses"};
  for (const auto& [k, v] : body.items())
    if (!known.count(k))
      throw bad(fmt::format("unknown field '{}'; fields: channel, target, project_name, events, statuses",
                            one_line(k, 60)));
  auto str = [&](const char* name) -> std::string {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return {};
    if (!it->is_string()) throw bad(fmt::format("{}: must be a string", name));
    return it->get<std::string>();
  };
  repo::Subscription s;
  s.channel = str("channel");
  if (s.channel != kEmail && s.channel != kSlack && s.channel != kWebhook)
    throw Error(errc::bad_request, "channel: required, one of email, slack, webhook").with_code("unknown_channel");
  s.target = str("target");
  if (s.channel == kEmail && options_.smtp.url.empty())
    throw Error(errc::bad_request,
                "email notifications are not set up on this cluster (an administrator sets "
                "modules.notifications.email.url); use slack or webhook")
        .with_code("email_not_configured");
  if (s.channel == kEmail)
    validate_email("target", s.target);
  else
    validate_url("target", s.target);
  s.project = str("project_name");
  if (body.contains("project_name") && !body["project_name"].is_null() && !valid_project(s.project))
    throw bad("project_name: a project name (letters, digits, '-', '_', '.')");
  if (!s.project.empty()) {
    // A project's subscriptions tell about everyone's jobs there: those who may run
    // jobs in it (write) set them up.
    authz_.require(who, authz_.resource_uri("job", s.project), auth::Action::write);
  }
  s.events = body.contains("events") ? string_list(body, "events", event_kinds())
                                     : std::vector<std::string>{std::string(kJobStatus)};
  s.statuses = body.contains("statuses") ? string_list(body, "statuses", job_statuses()) : default_statuses();
  s.owner = who.name;
  s.id = new_id("nsub");
  s.created_at = now_ms();
  if (s.channel == kWebhook) s.secret = new_secret();
  db_.write([&](soci::session& ses) {
    auto mine = repo::candidates(ses, who.name, *options_.sealer);
    auto n = std::count_if(mine.begin(), mine.end(), [&](const auto& x) { return x.owner == who.name; });
    if (n >= options_.max_subscriptions)
      throw Error(errc::conflict, fmt::format("you already have {} subscriptions, the most one may have; remove one "
                                              "(neuro notify rm ID)",
                                              n))
          .with_code("too_many_subscriptions");
    repo::insert(ses, s, *options_.sealer);
  });
  spdlog::info("notifications: {} subscribed {} ({}) to {}", who.name, s.id, s.channel,
               shown_target(s.channel, s.target));
  auto out = to_json(s);
  if (!s.secret.empty()) out["secret"] = s.secret;
  return out;
}

std::vector<repo::Subscription> Service::list(const http::Principal& who) {
  auto all = db_.read([&](soci::session& ses) { return repo::candidates(ses, who.name, *options_.sealer); });
  std::vector<repo::Subscription> out;
  for (auto& s : all)
    if (can_see(who, s)) out.push_back(std::move(s));
  return out;
}

repo::Subscription Service::get(const http::Principal& who, const std::string& id) { return visible(who, id); }

void Service::remove(const http::Principal& who, const std::string& id) {
  auto s = visible(who, id);
  db_.write([&](soci::session& ses) { repo::remove(ses, s.id); });
}

repo::Delivery Service::test(const http::Principal& who, const std::string& id) {
  auto s = visible(who, id);
  auto now = now_ms();
  Event e{"notification.test:" + random_hex(8), std::string(kTest),
          {{"subscription_id", s.id}, {"requested_by", who.name}, {"time", format_time(now)}}};
  repo::Delivery d;
  d.key = idempotency_key(e.id, s.id, s.target);
  d.event_id = e.id;
  d.topic = e.topic;
  d.subscription_id = s.id;
  d.owner = s.owner;
  d.channel = s.channel;
  d.target = s.target;
  d.payload = event_json(e).dump();
  d.next_attempt_at = now;
  d.created_at = now;
  auto stored = db_.write([&](soci::session& ses) {
    repo::enqueue(ses, d, *options_.sealer);
    return repo::delivery_by_key(ses, d.key, *options_.sealer);
  });
  wake();
  return stored ? *stored : d;
}

std::vector<repo::Delivery> Service::log(const http::Principal& who, const std::string& subscription_id,
                                         std::size_t limit) {
  std::vector<std::string> ids;
  for (const auto& s : list(who))
    if (s.owner != who.name) ids.push_back(s.id);
  if (!subscription_id.empty()) visible(who, subscription_id);  // 404 for others'
  return db_.read([&](soci::session& ses) { return repo::log(ses, who.name, ids, subscription_id, limit, *options_.sealer); });
}

std::pair<repo::Delivery, std::vector<repo::Attempt>> Service::delivery(const http::Principal& who, std::int64_t id) {
  auto d = db_.read([&](soci::session& ses) { return repo::delivery(ses, id, *options_.sealer); });
  auto hidden = Error(errc::not_found, fmt::format("no delivery {} that you can see (neuro notify log lists yours)", id))
                    .with_code("delivery_not_found");
  if (!d) throw hidden;
  if (d->owner != who.name) {
    auto s = db_.read([&](soci::session& ses) { return repo::get(ses, d->subscription_id, *options_.sealer); });
    if (!s || !can_see(who, *s)) throw hidden;
  }
  auto attempts = db_.read([&](soci::session& ses) { return repo::attempts(ses, id); });
  return {*d, attempts};
}

json Service::preferences(const http::Principal& who) {
  auto state = authz_.state();
  auto it = state->principals.find(who.name);
  std::string email = it == state->principals.end() ? "" : it->second.email;
  bool out = db_.read([&](soci::session& ses) { return repo::opted_out(ses, who.name); });
  return {{"default_email", !out},
          {"defaults_enabled", options_.default_email_owner},
          {"default_events", options_.default_events},
          {"default_statuses", options_.default_statuses},
          {"email", email.empty() ? json() : json(email)}};
}

json Service::set_preferences(const http::Principal& who, const json& body) {
  if (!body.is_object() || !body.contains("default_email") || !body["default_email"].is_boolean() || body.size() != 1)
    throw bad("the body must be {\"default_email\": true|false}");
  bool want = body["default_email"].get<bool>();
  db_.write([&](soci::session& ses) { repo::set_opted_out(ses, who.name, !want, now_ms()); });
  return preferences(who);
}

json Service::to_json(const repo::Subscription& s) {
  return {{"id", s.id},
          {"owner", s.owner},
          {"project_name", s.project.empty() ? json() : json(s.project)},
          {"channel", s.channel},
          {"target", shown_target(s.channel, s.target)},
          {"events", s.events},
          {"statuses", s.statuses},
          {"created_at", format_time(s.created_at)}};
}

json Service::to_json(const repo::Delivery& d) {
  auto e = event_from(d.payload);
  bool open = d.status == "pending" || d.status == "failed";
  return {{"id", d.id},
          {"idempotency_key", d.key},
          {"event_id", d.event_id},
          {"type", d.topic},
          {"subscription_id", d.subscription_id},
          {"channel", d.channel},
          {"target", shown_target(d.channel, d.target)},
          {"subject", render(e).subject},
          {"status", d.status},
          {"attempts", d.attempts},
          {"next_attempt_at", open ? json(format_time(d.next_attempt_at)) : json()},
          {"last_error", d.last_error},
          {"created_at", format_time(d.created_at)},
          {"updated_at", format_time(d.updated_at)}};
}

json Service::to_json(const repo::Attempt& a) {
  return {{"attempt", a.attempt},
          {"time", format_time(a.time)},
          {"ok", a.ok},
          {"response_status", a.response_status ? json(*a.response_status) : json()},
          {"error", a.error},
          {"duration_ms", a.duration_ms}};
}

// ---------------------------------------------------------------- events

void Service::on_event(const events::Event& e) {
  std::lock_guard lock(mu_);
  if (e.topic != kJobStatus) {
    if (!is_event_kind(e.topic)) return;
    auto id = e.data.value("event_id", "");
    if (id.empty()) id = fmt::format("{}:{}", e.topic, random_hex(8));
    queue_.push_back(Event{id, e.topic, e.data});
  }
  woken_ = true;
  cv_.notify_all();
}

void Service::wake() {
  std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

std::vector<repo::Delivery> Service::fan_out(soci::session& s, const Event& e, std::int64_t now) {
  auto [user, project] = user_and_project(e);
  std::vector<repo::Delivery> out;
  auto add = [&](const std::string& sub_id, const std::string& owner, const std::string& channel,
                 const std::string& target) {
    repo::Delivery d;
    d.key = idempotency_key(e.id, sub_id, target);
    d.event_id = e.id;
    d.topic = e.topic;
    d.subscription_id = sub_id;
    d.owner = owner;
    d.channel = channel;
    d.target = target;
    d.payload = event_json(e).dump();
    d.next_attempt_at = now;
    d.created_at = now;
    out.push_back(std::move(d));
  };
  if (user.empty() && project.empty()) return out;
  bool user_has_email_sub = false;
  std::string email;
  if (!user.empty()) {
    auto state = authz_.state();
    if (auto it = state->principals.find(user); it != state->principals.end()) email = it->second.email;
  }
  for (const auto& sub : repo::matching(s, user, project, *options_.sealer)) {
    if (!wants(sub.events, sub.statuses, e)) continue;
    // A project subscription keeps telling only while its owner may still see the project.
    if (!sub.project.empty() &&
        !authz_.allowed(principal_of(sub.owner), authz_.resource_uri("job", sub.project), auth::Action::read))
      continue;
    if (sub.channel == kEmail && sub.project.empty() && sub.target == email) user_has_email_sub = true;
    add(sub.id, sub.owner, sub.channel, sub.target);
  }
  // The admin's defaults: the user's address on record, unless they opted out or already
  // subscribed that address themselves.
  if (options_.default_email_owner && !user.empty() && !email.empty() && !user_has_email_sub &&
      wants(options_.default_events, options_.default_statuses, e) && !repo::opted_out(s, user))
    add("default", user, std::string(kEmail), email);
  return out;
}

void Service::catch_up(std::int64_t now) {
  if (!outbox_.after) return;
  if (!cursor_) {
    cursor_ = db_.read([](soci::session& s) { return repo::cursor(s, kJobCursor); });
    if (!cursor_) {
      // The first start: notify from now on, not the whole history.
      auto latest = outbox_.latest();
      db_.write([&](soci::session& s) { repo::set_cursor(s, kJobCursor, latest); });
      cursor_ = latest;
      spdlog::info("notifications: reading job status changes after seq {}", latest);
    }
  }
  for (int page = 0; page < 20; ++page) {
    auto rows = outbox_.after(*cursor_, 500);
    if (rows.empty()) return;
    // Fan out what is new, then move the cursor over the contiguous prefix; a gap is
    // waited for (gap_grace) in case its transaction has not committed yet.
    std::vector<repo::Delivery> deliveries;
    db_.read([&](soci::session& s) {
      for (const auto& r : rows)
        if (!done_.count(r.seq))
          for (auto& d : fan_out(s, r.event, now)) deliveries.push_back(std::move(d));
      return 0;
    });
    auto next = *cursor_;
    bool stalled = false;
    for (const auto& r : rows) {
      if (r.seq != next + 1 && r.time_ms > now - options_.gap_grace.count()) {
        stalled = true;
        break;
      }
      next = r.seq;
    }
    db_.write([&](soci::session& s) {
      for (const auto& d : deliveries) repo::enqueue(s, d, *options_.sealer);
      repo::set_cursor(s, kJobCursor, next);
    });
    for (const auto& r : rows)
      if (r.seq > next) done_.insert(r.seq);
    cursor_ = next;
    std::erase_if(done_, [&](std::int64_t seq) { return seq <= next; });
    if (stalled || rows.size() < 500) return;
  }
}

void Service::drain_queue(std::int64_t now) {
  std::deque<Event> events;
  {
    std::lock_guard lock(mu_);
    events.swap(queue_);
  }
  if (events.empty()) return;
  db_.write([&](soci::session& s) {
    for (const auto& e : events)
      for (const auto& d : fan_out(s, e, now)) repo::enqueue(s, d, *options_.sealer);
  });
}

bool Service::send(const repo::Delivery& d) {
  auto e = event_from(d.payload);
  auto started = now_ms();
  SendResult r;
  if (d.channel == kEmail) {
    auto smtp = options_.smtp;
    smtp.timeout = options_.send_timeout;
    r = send_email(smtp, d.target, render(e), d.key);
  } else if (d.channel == kSlack) {
    r = post_json(d.target, slack_payload(e).dump(), {{"Idempotency-Key", d.key}, {"X-Neurod-Delivery", d.key}},
                  options_.send_timeout);
  } else if (d.channel == kWebhook) {
    auto sub = db_.read([&](soci::session& s) { return repo::get(s, d.subscription_id, *options_.sealer); });
    if (!sub) {
      r = {false, std::nullopt, "the subscription was removed"};
    } else {
      auto body = webhook_payload(e, d.key).dump();
      auto ts = now_ms() / 1000;
      r = post_json(d.target, body,
                    {{"Idempotency-Key", d.key},
                     {"X-Neurod-Delivery", d.key},
                     {"X-Neurod-Event", e.topic},
                     {"X-Neurod-Timestamp", std::to_string(ts)},
                     {"X-Neurod-Signature", "sha256=" + sign(sub->secret, ts, body)}},
                    options_.send_timeout);
    }
  } else {
    r = {false, std::nullopt, "unknown channel " + d.channel};
  }
  auto now = now_ms();
  repo::Attempt a;
  a.delivery_id = d.id;
  a.attempt = d.attempts + 1;
  a.time = now;
  a.ok = r.ok;
  a.response_status = r.status;
  a.error = one_line(r.error, 500);
  a.duration_ms = now - started;
  std::string status = "delivered";
  std::int64_t next = now;
  bool gone = !r.ok && r.error == "the subscription was removed";
  if (!r.ok) {
    if (a.attempt >= options_.max_attempts || gone) {
      status = "dead";
    } else {
      status = "failed";
      next = now + backoff(a.attempt, options_.retry_initial, options_.retry_max).count();
    }
    spdlog::warn("notifications: delivery {} ({} to {}) attempt {}/{} failed: {}{}", d.id, d.channel,
                 shown_target(d.channel, d.target), a.attempt, options_.max_attempts, a.error,
                 status == "dead" ? "; giving up" : "");
  }
  db_.write([&](soci::session& s) { repo::record(s, a, status, next); });
  return r.ok;
}

std::size_t Service::pump() {
  auto now = now_ms();
  try {
    catch_up(now);
  } catch (const std::exception& ex) {
    spdlog::warn("notifications: reading job status changes failed (retrying): {}", ex.what());
  }
  try {
    drain_queue(now);
  } catch (const std::exception& ex) {
    spdlog::warn("notifications: queueing events failed (dropped): {}", ex.what());
  }
  if (now - last_purge_ > 3'600'000) {
    last_purge_ = now;
    try {
      auto gone = db_.write([&](soci::session& s) { return repo::purge(s, now - options_.log_retention.count()); });
      if (gone) spdlog::info("notifications: removed {} deliveries older than {} from the log", gone, format_duration(options_.log_retention));
    } catch (const std::exception& ex) {
      spdlog::warn("notifications: trimming the delivery log failed: {}", ex.what());
    }
  }
  std::size_t n = 0;
  auto due = db_.read([&](soci::session& s) { return repo::due(s, now_ms(), 50, *options_.sealer); });
  for (const auto& d : due) {
    try {
      send(d);
    } catch (const std::exception& ex) {
      spdlog::warn("notifications: delivery {} failed unexpectedly (retrying): {}", d.id, ex.what());
    }
    ++n;
  }
  return n;
}

void Service::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    std::size_t sent = 0;
    try {
      sent = pump();
    } catch (const std::exception& ex) {
      spdlog::warn("notifications: delivery pass failed (retrying): {}", ex.what());
    }
    if (sent >= 50) continue;  // more may be due
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, stop, options_.poll_interval, [&] { return woken_; });
    woken_ = false;
  }
}

}  // namespace neurod::notifications

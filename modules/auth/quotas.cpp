#include "modules/auth/quotas.hpp"

#include "core/errors.hpp"
#include "db/database.hpp"
#include "db/rows.hpp"
#include "modules/auth/repo.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace neurod::auth {

namespace {

bool windowed(Resource r) { return r == Resource::cpu_hours || r == Resource::gpu_hours; }

void check_subject(const Subject& s) {
  if (s.kind != "user" && s.kind != "project")
    throw Error(errc::invalid_argument, "a quota belongs to a user or a project, not a '" + s.kind + "'");
}

using db::as_double;
using db::as_opt_double;

Limits read_limits(soci::session& s, const Subject& subj) {
  Limits l;
  soci::rowset<soci::row> rs = (s.prepare << "SELECT max_running_jobs, cpu_hours, gpu_hours, storage_bytes, period_ms "
                                             "FROM auth_quotas WHERE subject_kind = :k AND subject = :n",
                                soci::use(subj.kind), soci::use(subj.name));
  for (const auto& r : rs) {
    if (auto v = as_opt_double(r, 0)) l.max_running_jobs = static_cast<std::int64_t>(*v);
    l.cpu_hours = as_opt_double(r, 1);
    l.gpu_hours = as_opt_double(r, 2);
    if (auto v = as_opt_double(r, 3)) l.storage_bytes = static_cast<std::int64_t>(*v);
    l.period = Duration(static_cast<std::int64_t>(as_double(r, 4)));
  }
  return l;
}

struct Row {
  double used = 0;
  std::int64_t window_start = 0;
};

// The row as it stands now: an hours window past its period counts as empty.
Row read_usage(soci::session& s, const Subject& subj, Resource res, Duration period, std::int64_t now) {
  Row row;
  std::string rname(to_string(res));
  soci::rowset<soci::row> rs = (s.prepare << "SELECT used, window_start FROM auth_usage WHERE subject_kind = :k AND "
                                             "subject = :n AND resource = :r",
                                soci::use(subj.kind), soci::use(subj.name), soci::use(rname));
  for (const auto& r : rs) {
    row.used = as_double(r, 0);
    row.window_start = static_cast<std::int64_t>(as_double(r, 1));
  }
  if (windowed(res) && row.window_start && now - row.window_start >= period.count()) row = {};
  return row;
}

void write_usage(soci::session& s, const Subject& subj, Resource res, const Row& row) {
  std::string rname(to_string(res));
  double used = row.used;
  long long start = row.window_start;
  s << "INSERT INTO auth_usage (subject_kind, subject, resource, used, window_start) VALUES (:k, :n, :r, :u, :w) "
       "ON CONFLICT (subject_kind, subject, resource) DO UPDATE SET used = excluded.used, window_start = "
       "excluded.window_start",
      soci::use(subj.kind), soci::use(subj.name), soci::use(rname), soci::use(used), soci::use(start);
}

std::string amount_text(Resource r, double v) {
  if (r == Resource::storage_bytes) return format_size(static_cast<std::uint64_t>(std::max(0.0, v)));
  if (r == Resource::running_jobs) return std::to_string(static_cast<std::int64_t>(v)) + " running jobs";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, r == Resource::cpu_hours ? "CPU hours" : "GPU hours");
  return buf;
}

}  // namespace

std::string_view to_string(Resource r) {
  switch (r) {
    case Resource::running_jobs:
      return "running_jobs";
    case Resource::cpu_hours:
      return "cpu_hours";
    case Resource::gpu_hours:
      return "gpu_hours";
    case Resource::storage_bytes:
      return "storage_bytes";
  }
  return "?";
}

std::optional<double> Limits::of(Resource r) const {
  switch (r) {
    case Resource::running_jobs:
      return max_running_jobs ? std::optional<double>(double(*max_running_jobs)) : std::nullopt;
    case Resource::cpu_hours:
      return cpu_hours;
    case Resource::gpu_hours:
      return gpu_hours;
    case Resource::storage_bytes:
      return storage_bytes ? std::optional<double>(double(*storage_bytes)) : std::nullopt;
  }
  return std::nullopt;
}

double Usage::of(Resource r) const {
  switch (r) {
    case Resource::running_jobs:
      return running_jobs;
    case Resource::cpu_hours:
      return cpu_hours;
    case Resource::gpu_hours:
      return gpu_hours;
    case Resource::storage_bytes:
      return storage_bytes;
  }
  return 0;
}

nlohmann::json to_json(const Limits& l) {
  auto j = nlohmann::json::object();
  j["max_running_jobs"] = l.max_running_jobs ? nlohmann::json(*l.max_running_jobs) : nlohmann::json();
  j["cpu_hours"] = l.cpu_hours ? nlohmann::json(*l.cpu_hours) : nlohmann::json();
  j["gpu_hours"] = l.gpu_hours ? nlohmann::json(*l.gpu_hours) : nlohmann::json();
  j["storage_bytes"] = l.storage_bytes ? nlohmann::json(*l.storage_bytes) : nlohmann::json();
  j["period"] = format_duration(l.period);
  return j;
}

nlohmann::json to_json(const Usage& u) {
  return {{"running_jobs", static_cast<std::int64_t>(u.running_jobs)},
          {"cpu_hours", u.cpu_hours},
          {"gpu_hours", u.gpu_hours},
          {"storage_bytes", static_cast<std::int64_t>(u.storage_bytes)},
          {"window_start", u.window_start ? nlohmann::json(u.window_start) : nlohmann::json()}};
}

Limits Quotas::limits(const Subject& s) {
  check_subject(s);
  return db_.read([&](soci::session& ses) { return read_limits(ses, s); });
}

void Quotas::set_limits(const Subject& s, const Limits& l) {
  check_subject(s);
  if (l.period.count() <= 0) throw Error(errc::invalid_argument, "period must be a positive duration such as 30d");
  auto negative = [](auto v) { return v && *v < 0; };
  if (negative(l.max_running_jobs) || negative(l.cpu_hours) || negative(l.gpu_hours) || negative(l.storage_bytes))
    throw Error(errc::invalid_argument, "quota limits cannot be negative (use null for unlimited)");
  db_.write([&](soci::session& ses) {
    long long jobs = l.max_running_jobs.value_or(0), bytes = l.storage_bytes.value_or(0), period = l.period.count();
    double cpu = l.cpu_hours.value_or(0), gpu = l.gpu_hours.value_or(0);
    soci::indicator ji = l.max_running_jobs ? soci::i_ok : soci::i_null, ci = l.cpu_hours ? soci::i_ok : soci::i_null,
                    gi = l.gpu_hours ? soci::i_ok : soci::i_null, bi = l.storage_bytes ? soci::i_ok : soci::i_null;
    ses << "INSERT INTO auth_quotas (subject_kind, subject, max_running_jobs, cpu_hours, gpu_hours, storage_bytes, "
           "period_ms) "
           "VALUES (:k, :n, :j, :c, :g, :b, :p) ON CONFLICT (subject_kind, subject) DO UPDATE SET "
           "max_running_jobs = excluded.max_running_jobs, cpu_hours = excluded.cpu_hours, gpu_hours = "
           "excluded.gpu_hours, "
           "storage_bytes = excluded.storage_bytes, period_ms = excluded.period_ms",
        soci::use(s.kind), soci::use(s.name), soci::use(jobs, ji), soci::use(cpu, ci), soci::use(gpu, gi),
        soci::use(bytes, bi), soci::use(period);
  });
  limits_version_.fetch_add(1, std::memory_order_acq_rel);
}

void Quotas::reset_limits(const Subject& s) {
  check_subject(s);
  db_.write([&](soci::session& ses) {
    ses << "DELETE FROM auth_quotas WHERE subject_kind = :k AND subject = :n", soci::use(s.kind), soci::use(s.name);
  });
  limits_version_.fetch_add(1, std::memory_order_acq_rel);
}

void Quotas::sync_usage() {
  if (!usage_sync_) return;
  try {
    usage_sync_();
  } catch (const std::exception& e) {
    spdlog::warn("auth: could not bring quota usage up to date: {}", e.what());
  }
}

Usage Quotas::usage(const Subject& s) {
  check_subject(s);
  return db_.read([&](soci::session& ses) {
    auto l = read_limits(ses, s);
    auto now = repo::now_ms();
    Usage u;
    u.running_jobs = read_usage(ses, s, Resource::running_jobs, l.period, now).used;
    auto cpu = read_usage(ses, s, Resource::cpu_hours, l.period, now);
    auto gpu = read_usage(ses, s, Resource::gpu_hours, l.period, now);
    u.cpu_hours = cpu.used;
    u.gpu_hours = gpu.used;
    u.window_start = cpu.window_start ? cpu.window_start : gpu.window_start;
    u.storage_bytes = read_usage(ses, s, Resource::storage_bytes, l.period, now).used;
    return u;
  });
}

// amount < 0 gives back (release); the level never goes below zero. With `level`, each
// subject's amount is what brings its usage to that level.
void Quotas::change(std::span<const Subject> subjects, Resource r, double amount, bool check,
                    std::optional<double> level) {
  if (!std::isfinite(amount) || (level && !std::isfinite(*level)))
    throw Error(errc::invalid_argument, "a quota amount must be a finite number");
  for (const auto& s : subjects) check_subject(s);
  std::vector<events::Event> crossings;  // notifications: published once committed
  db_.write([&](soci::session& ses) {
    auto now = repo::now_ms();
    for (const auto& s : subjects) {
      auto l = read_limits(ses, s);
      auto row = read_usage(ses, s, r, l.period, now);
      if (level) amount = std::max(0.0, *level) - row.used;
      auto limit = l.of(r);
      if (check && limit && row.used + amount > *limit + 1e-9)
        throw Error(errc::forbidden,
                    "the " + s.kind + " '" + s.name + "' is over its quota: " + amount_text(r, row.used) + " of " +
                        amount_text(r, *limit) + " used, " + amount_text(r, amount) + " more requested",
                    {{"subject", {{"kind", s.kind}, {"name", s.name}}},
                     {"resource", to_string(r)},
                     {"limit", *limit},
                     {"used", row.used},
                     {"requested", amount}})
            .with_code("quota_exceeded");
      auto before = row.used;
      row.used = std::max(0.0, row.used + amount);
      if (windowed(r) && !row.window_start) row.window_start = now;
      write_usage(ses, s, r, row);
      // Notifications: 80% and 100% of the limit, each once per crossing. The event id
      // names the window (hours) or the moment (levels), so a repeat is dropped.
      // The running-jobs limit is a concurrency cap, not use: crossing it is routine, not news.
      if (bus_ && limit && *limit > 0 && amount > 0 && r != Resource::running_jobs)
        for (int percent : {80, 100}) {
          double at = *limit * percent / 100.0;
          if (before + 1e-9 < at && row.used + 1e-9 >= at)
            crossings.push_back(events::Event{
                "quota.threshold", 0,
                {{"event_id", fmt::format("quota.threshold:{}:{}:{}:{}:{}", s.kind, s.name, to_string(r), percent,
                                          windowed(r) ? row.window_start : now)},
                 {"subject_kind", s.kind},
                 {"subject", s.name},
                 {"resource", to_string(r)},
                 {"percent", percent},
                 {"used", row.used},
                 {"limit", *limit},
                 {"time", now}}});
        }
    }
  });
  if (bus_)
    for (const auto& e : crossings) bus_->publish(e);
}

void Quotas::reserve(std::span<const Subject> subjects, Resource r, double amount) {
  if (!(amount >= 0)) throw Error(errc::invalid_argument, "a quota amount cannot be negative");
  change(subjects, r, amount, true);
}
void Quotas::consume(std::span<const Subject> subjects, Resource r, double amount) {
  if (!(amount >= 0)) throw Error(errc::invalid_argument, "a quota amount cannot be negative");
  change(subjects, r, amount, false);
}

void Quotas::set_level(std::span<const Subject> subjects, Resource r, double level) {
  if (!(level >= 0)) throw Error(errc::invalid_argument, "a quota level cannot be negative");
  change(subjects, r, 0, false, level);
}

void Quotas::release(std::span<const Subject> subjects, Resource r, double amount) {
  if (!(amount >= 0)) throw Error(errc::invalid_argument, "a quota amount cannot be negative");
  change(subjects, r, -amount, false);
}

std::optional<double> Quotas::remaining(const Subject& s, Resource r) {
  auto l = limits(s);
  auto limit = l.of(r);
  if (!limit) return std::nullopt;
  return *limit - usage(s).of(r);
}

}  // namespace neurod::auth

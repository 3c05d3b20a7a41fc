// Quotas per user and per project, and what has been used against them. `auth` stores
// them; the modules that consume resources enforce them through reserve/release/consume
// (jobs: running jobs and CPU/GPU hours; storage: bytes).
#pragma once

#include "core/events.hpp"
#include "core/units.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace neurod::db {
class Database;
}

namespace neurod::auth {

enum class Resource { running_jobs, cpu_hours, gpu_hours, storage_bytes };
std::string_view to_string(Resource r);

struct Subject {
  std::string kind;  // "user" | "project"
  std::string name;
};

// nullopt = unlimited. cpu_hours and gpu_hours count within a window of `period` that
// starts with the first use after the previous one ended; the other two are levels.
struct Limits {
  std::optional<std::int64_t> max_running_jobs;
  std::optional<double> cpu_hours;
  std::optional<double> gpu_hours;
  std::optional<std::int64_t> storage_bytes;
  Duration period = std::chrono::hours(24 * 30);
  std::optional<double> of(Resource r) const;
};

struct Usage {
  double running_jobs = 0;
  double cpu_hours = 0;
  double gpu_hours = 0;
  double storage_bytes = 0;
  std::int64_t window_start = 0;  // epoch ms of the hours window (0: none open)
  double of(Resource r) const;
};

nlohmann::json to_json(const Limits& l);
nlohmann::json to_json(const Usage& u);

class Quotas {
 public:
  explicit Quotas(db::Database& db) : db_(db) {}

  // Notifications: when set, reserve/consume publish "quota.threshold" on the bus each
  // time a subject's use crosses 80% or 100% of a limit (once per crossing: the use was
  // below before the change and is at or above after it); not for running jobs.
  void set_events(events::Bus* bus) { bus_ = bus; }

  Limits limits(const Subject& s);
  void set_limits(const Subject& s, const Limits& l);
  void reset_limits(const Subject& s);
  Usage usage(const Subject& s);
  // Bumped by every set_limits/reset_limits of this process: a module that caches limits
  // (storage) compares it to drop its cache the moment an admin changes a quota.
  std::uint64_t limits_version() const { return limits_version_.load(std::memory_order_acquire); }

  // A module that counts a level in memory and writes it here in batches (storage bytes)
  // registers how to write what it has pending; the quota API calls sync_usage() before it
  // answers, so that the usage it shows includes the last write. One hook; nullptr removes it.
  void set_usage_sync(std::function<void()> sync) { usage_sync_ = std::move(sync); }
  void sync_usage();

  // Adds `amount` of r to every subject if each has room, all in one transaction; else
  // throws Error(forbidden, code "quota_exceeded") naming the first without room, and
  // nothing is added.
  void reserve(std::span<const Subject> subjects, Resource r, double amount);
  // Gives back what reserve took (not below zero).
  void release(std::span<const Subject> subjects, Resource r, double amount);
  // Records use that already happened (CPU hours of a running job), without a check.
  void consume(std::span<const Subject> subjects, Resource r, double amount);
  // Sets a level counted elsewhere (storage bytes) on every subject, without a check:
  // the counter is the truth, whatever the stored usage said before. Threshold
  // notifications as for consume.
  void set_level(std::span<const Subject> subjects, Resource r, double level);
  // What is left before the limit (nullopt: unlimited; may be negative after consume).
  std::optional<double> remaining(const Subject& s, Resource r);

 private:
  // amount < 0 gives back; with `level`, each subject's amount is level - its usage.
  void change(std::span<const Subject> subjects, Resource r, double amount, bool check,
              std::optional<double> level = std::nullopt);
  db::Database& db_;
  events::Bus* bus_ = nullptr;
  std::atomic<std::uint64_t> limits_version_{0};
  std::function<void()> usage_sync_;
};

}  // namespace neurod::auth

#include "modules/storage/accounting.hpp"

#include "core/errors.hpp"
#include "core/units.hpp"
#include "modules/auth/quotas.hpp"

#include <spdlog/spdlog.h>

#include <vector>

namespace neurod::storage {

namespace {
constexpr auto kLimitTtl = std::chrono::seconds(5);
auth::Subject subject(const std::string& project) { return {"project", project}; }
}  // namespace

Accounting::Entry& Accounting::entry(const std::string& project) {
  auto& e = projects_[project];
  auto now = std::chrono::steady_clock::now();
  if (!quotas_) {
    e.seeded = true;
    return e;
  }
  if (!e.seeded) {
    auto u = quotas_->usage(subject(project));
    // What was counted before (releases seen before the seed stay applied). flushed stays
    // empty: the first flush writes the level, to the user's usage too.
    add(e, "", static_cast<std::int64_t>(u.storage_bytes));
    e.seeded = true;
  }
  if (!e.owner_known && owner_of_) {
    try {
      e.owner = owner_of_(project);
      e.owner_known = true;
    } catch (const std::exception& ex) {
      spdlog::warn("storage: could not tell whose personal project {} is (asking again later): {}", project, ex.what());
    }
  }
  // Read at most kLimitTtl late, and at once after an admin changed a quota here.
  auto version = quotas_->limits_version();
  if (e.limit_at == std::chrono::steady_clock::time_point{} || now - e.limit_at > kLimitTtl ||
      e.limit_version != version) {
    auto clamp = [](std::optional<std::int64_t> v) {
      return v ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *v))) : std::nullopt;
    };
    e.limit = clamp(quotas_->limits(subject(project)).storage_bytes);
    e.limit_of = "project " + project;
    if (e.owner) {
      auto user = clamp(quotas_->limits({"user", *e.owner}).storage_bytes);
      if (user && (!e.limit || *user < *e.limit)) {
        e.limit = user;
        e.limit_of = "user " + *e.owner;
      }
    }
    e.limit_at = now;
    e.limit_version = version;
  }
  return e;
}

void Accounting::add(Entry& e, std::string_view source, std::int64_t delta) {
  auto it = e.by_source.find(source);
  if (it == e.by_source.end()) it = e.by_source.emplace(std::string(source), 0).first;
  auto next = std::max<std::int64_t>(0, it->second + delta);
  e.used += next - it->second;
  it->second = next;
}

void Accounting::reserve(const std::string& project, std::uint64_t bytes, std::string_view source) {
  if (bytes == 0) return;
  std::lock_guard lock(mu_);
  auto& e = entry(project);
  if (e.limit && static_cast<std::uint64_t>(std::max<std::int64_t>(0, e.used)) + bytes > *e.limit) {
    auto left = *e.limit > static_cast<std::uint64_t>(std::max<std::int64_t>(0, e.used))
                    ? *e.limit - static_cast<std::uint64_t>(e.used)
                    : 0;
    auto whose = e.limit_of.starts_with("user ")
                     ? " (the storage quota of " + e.limit_of + ", whose personal project it is)"
                     : std::string();
    throw Error(errc::forbidden,
                "project " + project + " is over its storage quota" + whose + ": this write needs " +
                    format_size_human(bytes) + " but only " + format_size_human(left) + " of " +
                    format_size_human(*e.limit) + " is left; delete files or ask an admin to raise the quota",
                nlohmann::json{{"limit", *e.limit}, {"used", e.used}, {"needed", bytes}, {"quota_of", e.limit_of}})
        .with_code("quota_exceeded");
  }
  add(e, source, static_cast<std::int64_t>(bytes));
}

void Accounting::release(const std::string& project, std::uint64_t bytes, std::string_view source) {
  if (bytes == 0) return;
  std::lock_guard lock(mu_);
  add(projects_[project], source, -static_cast<std::int64_t>(bytes));
}

void Accounting::adjust(const std::string& project, std::int64_t delta, std::string_view source) {
  if (delta == 0) return;
  std::lock_guard lock(mu_);
  add(projects_[project], source, delta);
}

std::uint64_t Accounting::used(const std::string& project) {
  std::lock_guard lock(mu_);
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, entry(project).used));
}

std::optional<std::uint64_t> Accounting::limit(const std::string& project) {
  std::lock_guard lock(mu_);
  return entry(project).limit;
}

void Accounting::set_used(const std::string& project, std::uint64_t bytes, std::string_view source) {
  std::lock_guard lock(mu_);
  auto& e = entry(project);
  if (auto seed = e.by_source.find(""); seed != e.by_source.end()) {
    e.used -= seed->second;
    e.by_source.erase(seed);
  }
  auto& part = e.by_source[std::string(source)];
  e.used += static_cast<std::int64_t>(bytes) - part;
  part = static_cast<std::int64_t>(bytes);
}

void Accounting::flush() {
  if (!quotas_) return;
  std::lock_guard serial(flush_mu_);
  struct Pending {
    std::string project;
    std::int64_t used;
    std::optional<std::string> owner;
  };
  std::vector<Pending> pending;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : projects_) {
      if (!e.seeded || e.flushed == e.used) continue;
      pending.push_back({name, std::max<std::int64_t>(0, e.used), e.owner});
      e.flushed = e.used;
    }
  }
  for (const auto& p : pending) {
    std::vector<auth::Subject> subjects{subject(p.project)};
    if (p.owner) subjects.push_back({"user", *p.owner});
    try {
      quotas_->set_level(subjects, auth::Resource::storage_bytes, static_cast<double>(p.used));
    } catch (const std::exception& ex) {
      spdlog::warn("storage: could not record project {}'s usage: {}", p.project, ex.what());
      std::lock_guard lock(mu_);
      projects_[p.project].flushed.reset();  // try again next time
    }
  }
}

std::map<std::string, std::uint64_t> Accounting::by_source(std::string_view source) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::uint64_t> out;
  for (const auto& [project, e] : projects_)
    if (auto it = e.by_source.find(source); it != e.by_source.end())
      out[project] = static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->second));
  return out;
}

}  // namespace neurod::storage

// Per-project storage bytes against the `auth` storage quota, kept in memory so that
// 10,000 small uploads cost 10,000 additions, not 10,000 database transactions. Limits
// are read from `auth` (cached a few seconds); usage changes are written back to `auth`
// by flush() (the module's background task), and a rescan of the project's tree corrects
// drift (jobs write into read-write volumes behind the API's back).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace neurod::auth {
class Quotas;
}

namespace neurod::storage {

class Accounting {
 public:
  explicit Accounting(auth::Quotas* quotas) : quotas_(quotas) {}

  // Adds `bytes` to the project's usage if it stays within the limit; else throws
  // Error(forbidden, code quota_exceeded) saying how much is left.
  void reserve(const std::string& project, std::uint64_t bytes);
  void release(const std::string& project, std::uint64_t bytes);
  // Adds (or with a negative delta, removes) bytes that are already on disk: no check.
  void adjust(const std::string& project, std::int64_t delta);
  // The bytes counted now (seeds from auth's stored usage on first use).
  std::uint64_t used(const std::string& project);
  std::optional<std::uint64_t> limit(const std::string& project);
  // Sets the usage to what a scan of the tree counted.
  void set_used(const std::string& project, std::uint64_t bytes);
  // Writes the usage changes since the last flush to auth.
  void flush();

 private:
  struct Entry {
    bool seeded = false;
    std::int64_t used = 0;
    std::int64_t flushed = 0;  // what auth has
    std::optional<std::uint64_t> limit;
    std::chrono::steady_clock::time_point limit_at{};
  };
  Entry& entry(const std::string& project);  // mutex held

  auth::Quotas* quotas_;
  std::mutex mu_;
  std::map<std::string, Entry> projects_;
};

}  // namespace neurod::storage

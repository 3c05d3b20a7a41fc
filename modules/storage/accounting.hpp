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
#include <string_view>

namespace neurod::auth {
class Quotas;
}

namespace neurod::storage {

// Usage is kept per source: the storage tree ("storage") and other modules whose bytes
// count against the same quota (the registry's blobs, "registry"). A rescan of one source
// replaces that source's part only, so storage's periodic tree scan keeps registry bytes.
class Accounting {
 public:
  static constexpr std::string_view kStorage = "storage";

  explicit Accounting(auth::Quotas* quotas) : quotas_(quotas) {}

  // Adds `bytes` to the project's usage if it stays within the limit; else throws
  // Error(forbidden, code quota_exceeded) saying how much is left.
  void reserve(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  void release(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  // Adds (or with a negative delta, removes) bytes that are already on disk: no check.
  void adjust(const std::string& project, std::int64_t delta, std::string_view source = kStorage);
  // The bytes counted now, every source (seeds from auth's stored usage on first use).
  std::uint64_t used(const std::string& project);
  std::optional<std::uint64_t> limit(const std::string& project);
  // Sets the source's part of the usage to what a scan of it counted. The first scan of
  // any source also drops the usage seeded from auth, which no source can claim.
  void set_used(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  // Writes the usage changes since the last flush to auth.
  void flush();
  // Metrics: the bytes one source counts now, by project (only projects it has counted;
  // never touches the database).
  std::map<std::string, std::uint64_t> by_source(std::string_view source);

 private:
  struct Entry {
    bool seeded = false;
    std::int64_t used = 0;  // the sum of by_source
    // "" holds the usage seeded from auth until a source is scanned.
    std::map<std::string, std::int64_t, std::less<>> by_source;
    std::int64_t flushed = 0;  // what auth has
    std::optional<std::uint64_t> limit;
    std::chrono::steady_clock::time_point limit_at{};
  };
  Entry& entry(const std::string& project);  // mutex held
  static void add(Entry& e, std::string_view source, std::int64_t delta);  // clamps at 0

  auth::Quotas* quotas_;
  std::mutex mu_;
  std::map<std::string, Entry> projects_;
};

}  // namespace neurod::storage

// Per-project storage bytes against the `auth` storage quota, kept in memory so that
// 10,000 small uploads cost 10,000 additions, not 10,000 database transactions. Limits
// are read from `auth` and cached a few seconds, but dropped at once when this process
// changes a quota (auth::Quotas::limits_version), so a quota set or changed after the
// project's first write applies to the next write. The usage is written back to `auth`
// as a level (the count here is the truth) by flush(): the module's background task,
// and auth's quota API before it answers. A rescan of the project's tree corrects drift
// (jobs write into read-write volumes behind the API's back); the one at start counts
// bytes that were never tracked. A personal project's bytes also count against its
// user's storage quota: the tighter of the two limits applies.
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

  // The user whose personal project `project` is (nullopt: not a personal project, or
  // no such project). May throw (database errors); asked again later then.
  using OwnerOf = std::function<std::optional<std::string>(const std::string& project)>;

  explicit Accounting(auth::Quotas* quotas, OwnerOf owner_of = {}) : quotas_(quotas), owner_of_(std::move(owner_of)) {}

  // Adds `bytes` to the project's usage if it stays within the limit; else throws
  // Error(forbidden, code quota_exceeded) saying how much is left.
  void reserve(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  void release(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  // Adds (or with a negative delta, removes) bytes that are already on disk: no check.
  void adjust(const std::string& project, std::int64_t delta, std::string_view source = kStorage);
  // The bytes counted now, every source (seeds from auth's stored usage on first use).
  std::uint64_t used(const std::string& project);
  // The limit that applies: the project's, or its user's when that is tighter (personal
  // projects); nullopt: unlimited.
  std::optional<std::uint64_t> limit(const std::string& project);
  // Sets the source's part of the usage to what a scan of it counted. The first scan of
  // any source also drops the usage seeded from auth, which no source can claim.
  void set_used(const std::string& project, std::uint64_t bytes, std::string_view source = kStorage);
  // Writes the usage of each project counted here to auth (the project's and, for a
  // personal project, its user's storage_bytes usage), if it changed since the last
  // flush or was not written by this process yet.
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
    std::optional<std::int64_t> flushed;  // what auth has from this process (none yet: write it)
    std::optional<std::uint64_t> limit;   // the tighter of the project's and its user's
    std::string limit_of;                 // whose limit that is: "project X" or "user X"
    std::chrono::steady_clock::time_point limit_at{};
    std::uint64_t limit_version = 0;  // auth's limits_version when the limit was read
    bool owner_known = false;
    std::optional<std::string> owner;  // the user of a personal project
  };
  Entry& entry(const std::string& project);  // mutex held
  static void add(Entry& e, std::string_view source, std::int64_t delta);  // clamps at 0

  auth::Quotas* quotas_;
  OwnerOf owner_of_;
  std::mutex mu_;
  std::mutex flush_mu_;  // one flush at a time: a caller of flush() sees everything written
  std::map<std::string, Entry> projects_;
};

}  // namespace neurod::storage

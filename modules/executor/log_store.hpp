// The per-job log store: one append-only file per job under the executor's data dir,
// one record per line: "<RFC 3339 UTC time with nanoseconds> <text>\n". Runners append
// lines as the job prints them; the jobs API reads and follows them. A job's log is
// "closed" (a marker file beside it) once the job is finished, which ends followers.
// Thread-safe; survives restarts (everything it knows is on disk).
//
// Followers subscribe (subscribe()): the store sends them the log from its start (read
// from the file by the store's own catch-up thread, in pieces, as fast as the follower
// takes them), then every record append() writes, pushed from append() itself. The split
// is exact: the file's size under the append lock marks where the file part ends and the
// pushed part begins, so nothing is lost or sent twice across the start of following.
// Nothing waits on a follower: deliver() must not block, a follower that falls more than
// kMaxBacklog behind is dropped (end(LogEnd::too_slow)), and neither the job nor other
// followers are slowed.
#pragma once

#include "modules/executor/executor.hpp"

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <memory>
#include <unordered_map>

namespace neurod::executor {

struct LogLine {
  TimePoint time;
  std::string text;  // without the newline
};

std::string format_log_time(TimePoint t);                  // 2026-11-23T15:04:05.123456789Z
std::optional<TimePoint> parse_log_time(std::string_view text);  // also accepts fewer digits

// Why a subscription ended.
enum class LogEnd {
  closed,    // the log is complete (the job finished): every line was delivered
  removed,   // the log was deleted
  too_slow,  // the follower fell more than LogStore::kMaxBacklog behind and was dropped
  stopped,   // the follower asked (deliver returned false), unsubscribe(), or the store is going away
};
std::string_view to_string(LogEnd why);

// The receiving end of a subscription. Called from the store's threads (the catch-up thread
// and whichever thread appends), never two calls at once for one follower, in order.
class LogFollower {
 public:
  virtual ~LogFollower() = default;
  // Whole records in the file's form: "<time> <text>\n" (one or more). Must not block.
  // Returns false to end the subscription (LogEnd::stopped follows).
  virtual bool deliver(std::string_view records) = 0;
  // How many delivered bytes the follower has not passed on yet (its connection's queue):
  // the catch-up waits while it is high, a live follower past kMaxBacklog is dropped.
  virtual std::size_t backlog() const = 0;
  // The last call.
  virtual void end(LogEnd why) = 0;
};

class LogStore {
 public:
  // A follower whose backlog is above this is dropped rather than buffered further.
  static constexpr std::size_t kMaxBacklog = 8u << 20;
  // The catch-up sends a follower more of the file only while its backlog is below this.
  static constexpr std::size_t kCatchUpBacklog = 1u << 20;

  explicit LogStore(std::filesystem::path dir);
  ~LogStore();

  // One line printed by the job at `time` (a trailing "\r" or "\n" is dropped; a line
  // that contains "\n" is split). Never throws on a full disk: the error is logged once.
  void append(const std::string& job_id, TimePoint time, std::string_view line);
  // The time of the last line stored (to resume after a restart without duplicates).
  std::optional<TimePoint> last_time(const std::string& job_id);
  // No more lines will come: followers stop after the last one.
  void close(const std::string& job_id);
  bool is_closed(const std::string& job_id);
  bool exists(const std::string& job_id);
  void remove(const std::string& job_id);
  // Deletes logs of closed jobs last written before `cutoff`; returns how many.
  int sweep(TimePoint cutoff);

  // Reads the lines with time >= since (all when nullopt) and calls fn for each, in order;
  // fn returns false to stop. With follow, waits for new lines until the log is closed,
  // fn returns false, or keep_going() returns false (checked at least every 200 ms).
  // Returns false when stopped by fn or keep_going.
  bool read(const std::string& job_id, std::optional<TimePoint> since, bool follow,
            const std::function<bool(const LogLine&)>& fn, const std::function<bool()>& keep_going = {});

  // Follows a job's log: every record from the start, then live ones, then end() once the
  // log is closed or removed (at once for a log already closed, after its records). Returns
  // an id for unsubscribe(). Never blocks on the disk (the catch-up runs on its own thread).
  std::uint64_t subscribe(const std::string& job_id, std::shared_ptr<LogFollower> follower);
  // Ends a subscription (the follower went away); end(stopped) is called unless it ended already.
  void unsubscribe(std::uint64_t id);
  std::size_t followers();  // how many subscriptions are active (tests, metrics)

  std::filesystem::path path_of(const std::string& job_id) const;

 private:
  struct Open;
  struct Sub;
  Open& open_locked(const std::string& job_id);
  void push_locked(const std::string& job_id, std::string_view records);
  void end_locked(const std::string& job_id, LogEnd why);
  void catch_up_loop();

  std::filesystem::path dir_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::uint64_t seq_ = 0;  // moves on every append and close: wakes followers
  std::unordered_map<std::string, std::unique_ptr<Open>> open_;
  bool reported_error_ = false;

  // Subscriptions, by job; the catch-up thread starts with the first subscription.
  std::uint64_t next_sub_ = 1;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Sub>>> subs_;
  std::condition_variable catch_up_wake_;
  std::thread catch_up_;
  bool stopping_ = false;
};

}  // namespace neurod::executor

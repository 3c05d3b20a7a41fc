// The per-job log store: one append-only file per job under the executor's data dir,
// one record per line: "<RFC 3339 UTC time with nanoseconds> <text>\n". Runners append
// lines as the job prints them; the jobs API reads and follows them. A job's log is
// "closed" (a marker file beside it) once the job is finished, which ends followers.
// Thread-safe; survives restarts (everything it knows is on disk).
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
#include <unordered_map>

namespace neurod::executor {

struct LogLine {
  TimePoint time;
  std::string text;  // without the newline
};

std::string format_log_time(TimePoint t);                  // 2026-11-23T15:04:05.123456789Z
std::optional<TimePoint> parse_log_time(std::string_view text);  // also accepts fewer digits

class LogStore {
 public:
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

  std::filesystem::path path_of(const std::string& job_id) const;

 private:
  struct Open;
  Open& open_locked(const std::string& job_id);

  std::filesystem::path dir_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::uint64_t seq_ = 0;  // moves on every append and close: wakes followers
  std::unordered_map<std::string, std::unique_ptr<Open>> open_;
  bool reported_error_ = false;
};

}  // namespace neurod::executor

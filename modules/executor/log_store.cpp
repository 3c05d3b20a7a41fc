#include "modules/executor/log_store.hpp"

#include "core/log.hpp"
#include "core/times.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>

namespace neurod::executor {

namespace fs = std::filesystem;

std::string format_log_time(TimePoint t) {
  return format_rfc3339(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(), 9);
}

std::optional<TimePoint> parse_log_time(std::string_view text) {
  auto ns = parse_rfc3339_ns(text);
  if (!ns) return std::nullopt;
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(*ns)));
}

// What the store keeps per job it has written to since start: the append descriptor and
// the last line's time (read from the file's tail on first use).
struct LogStore::Open {
  int fd = -1;
  std::optional<TimePoint> last;
  ~Open() {
    if (fd >= 0) ::close(fd);
  }
};

LogStore::LogStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

LogStore::~LogStore() = default;

fs::path LogStore::path_of(const std::string& job_id) const { return dir_ / (job_id + ".log"); }

namespace {

fs::path done_path(const fs::path& log) {
  auto p = log;
  p.replace_extension(".done");
  return p;
}

// The time of the file's last record, reading only its tail.
std::optional<TimePoint> last_record_time(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  off_t size = ::lseek(fd, 0, SEEK_END);
  std::optional<TimePoint> out;
  off_t chunk = 4096;
  std::string tail;
  for (off_t end = size; end > 0 && !out;) {
    off_t start = end > chunk ? end - chunk : 0;
    std::string buf(static_cast<std::size_t>(end - start), '\0');
    if (::pread(fd, buf.data(), buf.size(), start) != static_cast<ssize_t>(buf.size())) break;
    tail = buf + tail;
    // The last complete line: drop the final newline, find the one before it.
    std::string_view t(tail);
    if (!t.empty() && t.back() == '\n') t.remove_suffix(1);
    auto nl = t.rfind('\n');
    if (nl != std::string_view::npos || start == 0) {
      auto line = nl == std::string_view::npos ? t : t.substr(nl + 1);
      auto space = line.find(' ');
      if (space != std::string_view::npos) out = parse_log_time(line.substr(0, space));
      break;
    }
    end = start;
  }
  ::close(fd);
  return out;
}

}  // namespace

LogStore::Open& LogStore::open_locked(const std::string& job_id) {
  auto& slot = open_[job_id];
  if (!slot) {
    slot = std::make_unique<Open>();
    auto path = path_of(job_id);
    slot->last = last_record_time(path);
    slot->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (slot->fd < 0 && !reported_error_) {
      reported_error_ = true;
      spdlog::error("log store: cannot open {}: {}", path.string(), std::strerror(errno));
    }
  }
  return *slot;
}

void LogStore::append(const std::string& job_id, TimePoint time, std::string_view line) {
  std::string record;
  auto add = [&](std::string_view one) {
    while (!one.empty() && (one.back() == '\n' || one.back() == '\r')) one.remove_suffix(1);
    record += format_log_time(time);
    record += ' ';
    record += one;
    record += '\n';
  };
  for (std::size_t start = 0;;) {
    auto nl = line.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < line.size() || start == 0) add(line.substr(start));
      break;
    }
    add(line.substr(start, nl - start));
    start = nl + 1;
    if (start == line.size()) break;
  }
  std::lock_guard lock(mu_);
  auto& open = open_locked(job_id);
  if (open.fd < 0) return;
  std::string_view rest(record);
  while (!rest.empty()) {
    auto n = ::write(open.fd, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!reported_error_) {
        reported_error_ = true;
        spdlog::error("log store: cannot write {}: {}", path_of(job_id).string(), std::strerror(errno));
      }
      return;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (!open.last || time > *open.last) open.last = time;
  ++seq_;
  changed_.notify_all();
}

std::optional<TimePoint> LogStore::last_time(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (auto it = open_.find(job_id); it != open_.end()) return it->second->last;
  return last_record_time(path_of(job_id));
}

void LogStore::close(const std::string& job_id) {
  std::lock_guard lock(mu_);
  auto path = path_of(job_id);
  if (auto it = open_.find(job_id); it != open_.end()) {
    if (it->second->fd >= 0) ::fsync(it->second->fd);
    open_.erase(it);
  }
  // Make sure the log exists (a job that printed nothing still has an empty log).
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  int done = ::open(done_path(path).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (done >= 0) ::close(done);
  ++seq_;
  changed_.notify_all();
}

bool LogStore::is_closed(const std::string& job_id) { return fs::exists(done_path(path_of(job_id))); }

bool LogStore::exists(const std::string& job_id) { return fs::exists(path_of(job_id)); }

void LogStore::remove(const std::string& job_id) {
  std::lock_guard lock(mu_);
  open_.erase(job_id);
  std::error_code ec;
  auto path = path_of(job_id);
  fs::remove(path, ec);
  fs::remove(done_path(path), ec);
  changed_.notify_all();
}

int LogStore::sweep(TimePoint cutoff) {
  int removed = 0;
  std::error_code ec;
  std::vector<std::string> old;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path().extension() != ".done") continue;
    auto log = entry.path();
    log.replace_extension(".log");
    auto written = fs::last_write_time(fs::exists(log) ? log : entry.path(), ec);
    if (ec) continue;
    auto sys = std::chrono::file_clock::to_sys(written);
    if (sys < cutoff) old.push_back(entry.path().stem().string());
  }
  for (const auto& id : old) {
    remove(id);
    ++removed;
  }
  return removed;
}

bool LogStore::read(const std::string& job_id, std::optional<TimePoint> since, bool follow,
                    const std::function<bool(const LogLine&)>& fn, const std::function<bool()>& keep_going) {
  auto path = path_of(job_id);
  int fd = -1;
  off_t offset = 0;
  std::string partial;
  auto close_fd = [&] {
    if (fd >= 0) ::close(fd);
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { f(); }
  } guard{close_fd};
  char buf[64 * 1024];
  for (;;) {
    // Whether the log was closed is checked before reading, so that lines written just
    // before the close are still read in this pass.
    std::uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = seq_;
    }
    bool done = !follow || is_closed(job_id);
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    bool progressed = false;
    if (fd >= 0) {
      for (;;) {
        auto n = ::pread(fd, buf, sizeof buf, offset);
        if (n <= 0) break;
        offset += n;
        progressed = true;
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (;;) {
          auto nl = partial.find('\n', start);
          if (nl == std::string::npos) break;
          std::string_view rec(partial.data() + start, nl - start);
          start = nl + 1;
          auto space = rec.find(' ');
          if (space == std::string_view::npos) continue;
          auto t = parse_log_time(rec.substr(0, space));
          if (!t) continue;
          if (since && *t < *since) continue;
          if (!fn(LogLine{*t, std::string(rec.substr(space + 1))})) return false;
        }
        partial.erase(0, start);
      }
    }
    if (done) return true;
    if (keep_going && !keep_going()) return false;
    if (!progressed) {
      // Woken by any append or close (seq_ moves); the timeout re-checks keep_going and
      // lines written by another process.
      std::unique_lock lock(mu_);
      changed_.wait_for(lock, std::chrono::milliseconds(200), [&] { return seq_ != seen; });
    }
  }
}

}  // namespace neurod::executor

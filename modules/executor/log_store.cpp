#include "modules/executor/log_store.hpp"

#include "core/log.hpp"
#include "core/times.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

std::string_view to_string(LogEnd why) {
  switch (why) {
    case LogEnd::closed:
      return "closed";
    case LogEnd::removed:
      return "removed";
    case LogEnd::too_slow:
      return "too_slow";
    case LogEnd::stopped:
      return "stopped";
  }
  return "stopped";
}

// One subscription. A follower still catching up is only ever called by the catch-up
// thread (records appended meanwhile wait in `pending`, an end in `pending_end`); once live
// it is called under mu_ by append(), close() and remove(). Either way one call at a time.
struct LogStore::Sub {
  std::uint64_t id = 0;
  std::string job_id;
  std::shared_ptr<LogFollower> follower;
  std::uint64_t offset = 0;  // the file part still to send: [offset, end)
  std::uint64_t end = 0;
  int fd = -1;
  bool live = false;
  bool ended = false;
  std::string pending;
  std::optional<LogEnd> pending_end;
  ~Sub() {
    if (fd >= 0) ::close(fd);
  }
};

LogStore::LogStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

LogStore::~LogStore() {
  std::vector<std::shared_ptr<Sub>> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    catch_up_wake_.notify_all();
  }
  if (catch_up_.joinable()) catch_up_.join();
  std::lock_guard lock(mu_);
  for (auto& [job, subs] : subs_)
    for (auto& s : subs)
      if (!s->ended) {
        s->ended = true;
        s->follower->end(LogEnd::stopped);
      }
  subs_.clear();
}

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
  push_locked(job_id, record);
}

void LogStore::push_locked(const std::string& job_id, std::string_view records) {
  auto it = subs_.find(job_id);
  if (it == subs_.end()) return;
  bool wake = false;
  std::erase_if(it->second, [&](const std::shared_ptr<Sub>& s) {
    if (s->ended) return true;
    if (!s->live) {
      s->pending.append(records);
      if (s->pending.size() > kMaxBacklog && !s->pending_end) s->pending_end = LogEnd::too_slow;
      wake = true;
      return false;
    }
    std::optional<LogEnd> why;
    if (s->follower->backlog() > kMaxBacklog)
      why = LogEnd::too_slow;
    else if (!s->follower->deliver(records))
      why = LogEnd::stopped;
    if (!why) return false;
    s->ended = true;
    s->follower->end(*why);
    return true;
  });
  if (it->second.empty()) subs_.erase(it);
  if (wake) catch_up_wake_.notify_all();
}

void LogStore::end_locked(const std::string& job_id, LogEnd why) {
  auto it = subs_.find(job_id);
  if (it == subs_.end()) return;
  std::erase_if(it->second, [&](const std::shared_ptr<Sub>& s) {
    if (s->ended) return true;
    if (!s->live) {
      // The catch-up thread ends it: after the rest of the log for `closed`, at once otherwise.
      if (!s->pending_end || why != LogEnd::closed) s->pending_end = why;
      return false;
    }
    s->ended = true;
    s->follower->end(why);
    return true;
  });
  if (it->second.empty()) subs_.erase(it);
  catch_up_wake_.notify_all();
}

std::uint64_t LogStore::subscribe(const std::string& job_id, std::shared_ptr<LogFollower> follower) {
  auto sub = std::make_shared<Sub>();
  sub->job_id = job_id;
  sub->follower = std::move(follower);
  std::lock_guard lock(mu_);
  sub->id = next_sub_++;
  // Appends write under mu_: the file's size now is exactly where pushed records begin.
  struct stat sb {};
  auto path = path_of(job_id);
  if (::stat(path.c_str(), &sb) == 0) sub->end = static_cast<std::uint64_t>(sb.st_size);
  if (fs::exists(done_path(path))) sub->pending_end = LogEnd::closed;
  subs_[job_id].push_back(sub);
  if (!catch_up_.joinable()) catch_up_ = std::thread([this] { catch_up_loop(); });
  catch_up_wake_.notify_all();
  return sub->id;
}

void LogStore::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mu_);
  for (auto it = subs_.begin(); it != subs_.end(); ++it) {
    auto& v = it->second;
    auto s = std::find_if(v.begin(), v.end(), [&](const auto& x) { return x->id == id; });
    if (s == v.end()) continue;
    if ((*s)->live) {
      if (!(*s)->ended) {
        (*s)->ended = true;
        (*s)->follower->end(LogEnd::stopped);
      }
      v.erase(s);
      if (v.empty()) subs_.erase(it);
    } else {
      (*s)->pending_end = LogEnd::stopped;
      catch_up_wake_.notify_all();
    }
    return;
  }
}

std::size_t LogStore::followers() {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [job, v] : subs_)
    for (const auto& s : v) n += s->ended ? 0 : 1;
  return n;
}

// Sends followers that are catching up the file part of their log, 256 KiB at a time,
// round-robin, each only while its backlog is low; then switches them to live.
void LogStore::catch_up_loop() {
  constexpr std::size_t kPiece = 256 * 1024;
  std::string buf;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    std::vector<std::shared_ptr<Sub>> todo;
    for (const auto& [job, v] : subs_)
      for (const auto& s : v)
        if (!s->live && !s->ended) todo.push_back(s);
    if (todo.empty()) {
      catch_up_wake_.wait(lock);
      continue;
    }
    bool progressed = false;
    for (const auto& s : todo) {
      if (stopping_) break;
      auto finish = [&](LogEnd why) {
        s->ended = true;
        s->follower->end(why);
        progressed = true;
      };
      if (s->pending_end && *s->pending_end != LogEnd::closed) {
        finish(*s->pending_end);
        continue;
      }
      if (s->offset < s->end) {
        if (s->follower->backlog() > kCatchUpBacklog) continue;
        auto path = path_of(s->job_id);
        lock.unlock();
        if (s->fd < 0) s->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, s->end - s->offset));
        buf.resize(want);
        ssize_t n = s->fd >= 0 ? ::pread(s->fd, buf.data(), want, static_cast<off_t>(s->offset)) : -1;
        bool ok = true;
        if (n <= 0) {
          s->offset = s->end;  // gone or cut short (deleted): nothing more from the file
        } else {
          std::string_view piece(buf.data(), static_cast<std::size_t>(n));
          auto nl = piece.rfind('\n');
          // Whole records only; a record longer than a piece goes as it is.
          if (nl != std::string_view::npos && s->offset + static_cast<std::uint64_t>(n) < s->end) piece = piece.substr(0, nl + 1);
          s->offset += piece.size();
          ok = s->follower->deliver(piece);
        }
        lock.lock();
        progressed = true;
        if (!ok) {
          finish(LogEnd::stopped);
          continue;
        }
        if (s->pending_end && *s->pending_end != LogEnd::closed) {
          finish(*s->pending_end);
          continue;
        }
      }
      if (s->offset >= s->end) {
        // Caught up: what was appended meanwhile, then live (under mu_, so no append slips between).
        if (!s->pending.empty()) {
          bool ok = s->follower->deliver(s->pending);
          std::string().swap(s->pending);
          if (!ok) {
            finish(LogEnd::stopped);
            continue;
          }
        }
        if (s->fd >= 0) {
          ::close(s->fd);
          s->fd = -1;
        }
        s->live = true;
        progressed = true;
        if (s->pending_end) finish(*s->pending_end);  // closed: everything was sent
      }
    }
    // Drop the ended ones.
    for (auto it = subs_.begin(); it != subs_.end();) {
      std::erase_if(it->second, [](const auto& s) { return s->ended; });
      it = it->second.empty() ? subs_.erase(it) : std::next(it);
    }
    // Followers with a full backlog are looked at again shortly.
    if (!progressed) catch_up_wake_.wait_for(lock, std::chrono::milliseconds(10));
  }
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
  end_locked(job_id, LogEnd::closed);
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
  end_locked(job_id, LogEnd::removed);
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

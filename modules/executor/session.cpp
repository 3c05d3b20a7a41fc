#include "modules/executor/session.hpp"

#include "core/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace neurod::executor {

Error job_not_running(const std::string& job_id) {
  return Error(errc::conflict, "job " + job_id + " is not running: exec, attach and signals need a running job")
      .with_code("job_not_running");
}

std::optional<int> parse_signal(std::string_view text) {
  static const std::pair<const char*, int> names[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
      {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},   {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},   {"SYS", SIGSYS}};
  if (text.empty() || text.size() > 16) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    int n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p != text.data() + text.size() || n < 1 || n >= NSIG) return std::nullopt;
    return n;
  }
  std::string up;
  for (char c : text) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up.starts_with("SIG")) up.erase(0, 3);
  for (const auto& [name, n] : names)
    if (up == name) return n;
  return std::nullopt;
}

// --- SessionSet ---

bool SessionSet::enter(IoSession* s) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  live_.insert(s);
  return true;
}

void SessionSet::leave(IoSession* s) {
  std::lock_guard lock(mu_);
  live_.erase(s);
  idle_.notify_all();
}

void SessionSet::shutdown() {
  std::unique_lock lock(mu_);
  closed_ = true;
  for (auto* s : live_) s->cancel();
  idle_.wait(lock, [&] { return live_.empty(); });
}

// --- IoSession ---

IoSession::IoSession(SessionSet& set, SessionCallbacks callbacks) : set_(set), callbacks_(std::move(callbacks)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw Error(errc::internal, std::string("pipe: ") + std::strerror(errno));
  wake_r_ = fds[0];
  wake_w_ = fds[1];
}

IoSession::~IoSession() {
  close_fds();
  if (wake_r_ >= 0) ::close(wake_r_);
  if (wake_w_ >= 0) ::close(wake_w_);
}

void IoSession::close_fds() {
  std::set<int> fds;
  for (const auto& s : sources_) fds.insert(s.fd);
  fds.insert(in_fd_);
  fds.insert(wait_fd_);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  sources_.clear();
  in_fd_ = wait_fd_ = -1;
}

void IoSession::wake() {
  char c = 1;
  [[maybe_unused]] auto n = ::write(wake_w_, &c, 1);  // a full pipe is awake already
}

void IoSession::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
  }
  auto self = shared_from_this();
  if (!set_.enter(this)) {
    teardown();
    close_fds();
    return;
  }
  try {
    std::thread([self]() mutable {
      self->run();
      // The session goes (when this was the last reference) before the set hears of it,
      // so that shutdown() returns with every session's descriptors closed.
      auto* set = &self->set_;
      auto* key = self.get();
      self.reset();
      set->leave(key);
    }).detach();
  } catch (...) {
    set_.leave(this);
    teardown();
    close_fds();
    throw;
  }
}

void IoSession::write_stdin(std::string data) {
  if (data.empty()) return;
  {
    std::lock_guard lock(mu_);
    if (stdin_close_) return;
    pending_.push_back(std::move(data));
  }
  wake();
}

void IoSession::close_stdin() {
  {
    std::lock_guard lock(mu_);
    stdin_close_ = true;
  }
  wake();
}

void IoSession::resize(unsigned height, unsigned width) {
  if (height == 0 || width == 0) return;
  {
    std::lock_guard lock(mu_);
    resize_ = {height, width};
  }
  wake();
}

void IoSession::cancel() {
  cancelled_ = true;
  wake();
}

void IoSession::emit(int stream, std::string_view data) {
  if (data.empty() || cancelled_) return;
  if (callbacks_.on_output) callbacks_.on_output(stream, data);
}

void IoSession::do_close_stdin() {
  if (in_fd_ < 0) return;
  bool shared = std::any_of(sources_.begin(), sources_.end(), [&](const Source& s) { return s.fd == in_fd_; });
  if (shared) {
    ::shutdown(in_fd_, SHUT_WR);
  } else {
    ::close(in_fd_);
  }
  in_fd_ = -1;
}

void IoSession::run() {
  try {
    if (!cancelled_) prepare();
  } catch (const std::exception& e) {
    teardown();
    close_fds();
    if (!cancelled_ && callbacks_.on_exit) callbacks_.on_exit(std::nullopt, e.what());
    return;
  }
  for (const auto& s : sources_) ::fcntl(s.fd, F_SETFL, ::fcntl(s.fd, F_GETFL) | O_NONBLOCK);
  if (in_fd_ >= 0) ::fcntl(in_fd_, F_SETFL, ::fcntl(in_fd_, F_GETFL) | O_NONBLOCK);
  std::vector<bool> open(sources_.size(), true);
  bool stdin_closed = in_fd_ < 0;
  auto next_tick = std::chrono::steady_clock::now() + tick_;
  std::string buf(64 * 1024, '\0');
  bool ended = false;

  // Reads what a source has now; false at its end.
  auto read_source = [&](std::size_t i) {
    for (;;) {
      auto n = ::read(sources_[i].fd, buf.data(), buf.size());
      if (n > 0) {
        std::string_view data(buf.data(), static_cast<std::size_t>(n));
        if (sources_[i].stream == 0)
          on_raw(data);
        else
          emit(sources_[i].stream, data);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;  // 0: EOF; EIO: a pty whose other side is closed; other errors alike
    }
  };

  while (!cancelled_ && !ended && !end_requested_) {
    std::optional<std::pair<unsigned, unsigned>> resize;
    bool want_write = false;
    bool close_now = false;
    {
      std::lock_guard lock(mu_);
      resize.swap(resize_);
      want_write = !pending_.empty();
      close_now = stdin_close_ && pending_.empty();
    }
    if (resize) do_resize(resize->first, resize->second);
    if (!stdin_closed && close_now) {
      do_close_stdin();
      stdin_closed = true;
    }

    std::vector<pollfd> pfds;
    pfds.push_back({wake_r_, POLLIN, 0});
    std::vector<std::size_t> index;  // pfds[k + 1] ↔ sources_[index[k]]
    for (std::size_t i = 0; i < sources_.size(); ++i)
      if (open[i]) {
        pfds.push_back({sources_[i].fd, POLLIN, 0});
        index.push_back(i);
      }
    int wait_at = -1, in_at = -1;
    if (wait_fd_ >= 0) {
      wait_at = static_cast<int>(pfds.size());
      pfds.push_back({wait_fd_, POLLIN, 0});
    }
    if (!stdin_closed && want_write && in_fd_ >= 0) {
      in_at = static_cast<int>(pfds.size());
      pfds.push_back({in_fd_, POLLOUT, 0});
    }
    int timeout = -1;
    if (tick_.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    }
    int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      warn("exec session: poll: {}", std::strerror(errno));
      break;
    }
    if (n > 0 && (pfds[0].revents & POLLIN)) {
      char drain[256];
      while (::read(wake_r_, drain, sizeof drain) > 0) {
      }
    }
    if (cancelled_) break;
    for (std::size_t k = 0; k < index.size(); ++k)
      if (pfds[k + 1].revents) open[index[k]] = read_source(index[k]);
    if (in_at >= 0 && pfds[in_at].revents) {
      if (pfds[in_at].revents & (POLLERR | POLLHUP)) {
        stdin_closed = true;  // nobody reads it any more
        std::lock_guard lock(mu_);
        pending_.clear();
      } else {
        std::unique_lock lock(mu_);
        while (!pending_.empty()) {
          auto& front = pending_.front();
          auto w = ::write(in_fd_, front.data() + pending_offset_, front.size() - pending_offset_);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (w < 0) {
            pending_.clear();
            pending_offset_ = 0;
            stdin_closed = true;
            break;
          }
          pending_offset_ += static_cast<std::size_t>(w);
          if (pending_offset_ == front.size()) {
            pending_.pop_front();
            pending_offset_ = 0;
          }
        }
      }
    }
    if (tick_.count() > 0 && std::chrono::steady_clock::now() >= next_tick) {
      on_tick();
      next_tick = std::chrono::steady_clock::now() + tick_;
    }
    if (wait_at >= 0 && (pfds[wait_at].revents & POLLIN)) {
      // The process ended: what it wrote last is still in the pipes.
      for (std::size_t i = 0; i < sources_.size(); ++i)
        if (open[i]) open[i] = read_source(i);
      ended = true;
    } else if (wait_fd_ < 0 && !sources_.empty() && std::none_of(open.begin(), open.end(), [](bool b) { return b; })) {
      ended = true;
    }
  }

  if (cancelled_) {
    teardown();
    close_fds();
    return;
  }
  std::pair<std::optional<int>, std::string> outcome;
  try {
    outcome = finish();
  } catch (const std::exception& e) {
    outcome = {std::nullopt, e.what()};
  }
  teardown();
  close_fds();
  if (!cancelled_ && callbacks_.on_exit) callbacks_.on_exit(outcome.first, outcome.second);
}

}  // namespace neurod::executor

// The session machinery of exec and attach (session.{hpp,cpp}) without a runtime: a
// session over pipes, its end, cancel and shutdown, and that nothing is left open.
#include "modules/executor/session.hpp"

#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace neurod;
using namespace neurod::executor;
using namespace std::chrono_literals;

namespace {

int open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (auto* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the DIR itself
}

// "cat" in-process: what is written to stdin comes back on stdout; the exit code is how
// many bytes came through.
class PipeSession final : public IoSession {
 public:
  PipeSession(SessionSet& set, SessionCallbacks cb) : IoSession(set, std::move(cb)) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    in_fd_ = in[1];
    sources_.push_back({out[0], 1});
    relay_in_ = in[0];
    relay_out_ = out[1];
  }
  ~PipeSession() override {
    // The session closed stdin's write end: the relay has its end of file.
    if (relay_.joinable()) relay_.join();
    if (relay_in_ >= 0) ::close(relay_in_);
    if (relay_out_ >= 0) ::close(relay_out_);
  }
  std::atomic<bool> torn_down{false};

 protected:
  void prepare() override {
    relay_ = std::thread([this] {
      char buf[256];
      for (;;) {
        auto n = ::read(relay_in_, buf, sizeof buf);
        if (n <= 0) break;
        total_ += n;
        [[maybe_unused]] auto w = ::write(relay_out_, buf, static_cast<std::size_t>(n));
      }
      ::close(relay_out_);
      relay_out_ = -1;
    });
  }
  std::pair<std::optional<int>, std::string> finish() override {
    relay_.join();  // stdin was closed: the relay ended
    return {static_cast<int>(total_), ""};
  }
  void teardown() override { torn_down = true; }

 private:
  int relay_in_ = -1, relay_out_ = -1;
  std::thread relay_;
  std::atomic<long> total_{0};
};

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::string out;
  std::optional<int> code;
  bool ended = false;
  SessionCallbacks callbacks() {
    return {[this](int stream, std::string_view d) {
              std::lock_guard l(mu);
              if (stream == 1) out += d;
              cv.notify_all();
            },
            [this](std::optional<int> c, const std::string&) {
              std::lock_guard l(mu);
              code = c;
              ended = true;
              cv.notify_all();
            }};
  }
  template <class P>
  bool wait(P p) {
    std::unique_lock l(mu);
    return cv.wait_for(l, 5s, p);
  }
};

}  // namespace

TEST_CASE("signals: names, SIG names and numbers are read, anything else is refused") {
  CHECK(parse_signal("SIGTERM") == SIGTERM);
  CHECK(parse_signal("TERM") == SIGTERM);
  CHECK(parse_signal("term") == SIGTERM);
  CHECK(parse_signal("15") == 15);
  CHECK(parse_signal("SIGUSR1") == SIGUSR1);
  CHECK(parse_signal("KILL") == SIGKILL);
  CHECK_FALSE(parse_signal(""));
  CHECK_FALSE(parse_signal("0"));
  CHECK_FALSE(parse_signal("99"));
  CHECK_FALSE(parse_signal("15x"));
  CHECK_FALSE(parse_signal("SIGNOPE"));
  CHECK_FALSE(parse_signal("-9"));
}

TEST_CASE("sessions: stdin round trip, close, exit code, and no descriptor or thread left") {
  int before = open_fds();
  {
    SessionSet set;
    Recorder rec;
    auto s = std::make_shared<PipeSession>(set, rec.callbacks());
    s->start();
    s->write_stdin("hello ");
    s->write_stdin("world");
    CHECK(rec.wait([&] { return rec.out == "hello world"; }));
    s->close_stdin();
    CHECK(rec.wait([&] { return rec.ended; }));
    CHECK(rec.code == 11);
    set.shutdown();
  }
  CHECK(open_fds() == before);
}

TEST_CASE("sessions: cancel ends a session without an exit callback, and shutdown waits for it") {
  int before = open_fds();
  {
    SessionSet set;
    Recorder rec;
    auto s = std::make_shared<PipeSession>(set, rec.callbacks());
    s->start();
    s->write_stdin("x");
    CHECK(rec.wait([&] { return rec.out == "x"; }));
    s->cancel();
    std::this_thread::sleep_for(100ms);
    set.shutdown();
    CHECK(s->torn_down);
    CHECK_FALSE(rec.ended);
    // A session started after shutdown never runs.
    auto late = std::make_shared<PipeSession>(set, rec.callbacks());
    late->start();
    CHECK(late->torn_down);
  }
  CHECK(open_fds() == before);
}

// LogStore subscriptions (follow without a thread per follower): the log from its start
// then live lines, nothing lost or repeated across the moment following starts, the end
// once the log is closed or removed, and a slow follower dropped without slowing the job.
#include "modules/executor/log_store.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using neurod::executor::Clock;
using neurod::executor::LogEnd;
using neurod::executor::LogFollower;
using neurod::executor::LogStore;

// Collects the texts of the records it gets; `backlog` is what the test says it is.
class Collector : public LogFollower {
 public:
  bool deliver(std::string_view records) override {
    std::lock_guard lock(mu_);
    ++calls_;
    while (!records.empty()) {
      auto nl = records.find('\n');
      auto rec = records.substr(0, nl);
      records = nl == std::string_view::npos ? std::string_view{} : records.substr(nl + 1);
      auto sp = rec.find(' ');
      lines_.emplace_back(rec.substr(sp + 1));
    }
    cv_.notify_all();
    return !refuse_;
  }
  std::size_t backlog() const override { return backlog_.load(); }
  void end(LogEnd why) override {
    std::lock_guard lock(mu_);
    ++ends_;
    why_ = why;
    cv_.notify_all();
  }
  std::optional<LogEnd> wait_end(std::chrono::milliseconds d = 10s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return why_.has_value(); });
    return why_;
  }
  bool wait_lines(std::size_t n, std::chrono::milliseconds d = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return lines_.size() >= n; });
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  int ends() {
    std::lock_guard lock(mu_);
    return ends_;
  }
  std::atomic<std::size_t> backlog_{0};
  bool refuse_ = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::optional<LogEnd> why_;
  int calls_ = 0;
  int ends_ = 0;
};

}  // namespace

TEST_CASE("log store: a follower gets the stored lines, then live ones, then the end") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  store.append("j1", Clock::now(), "one\ntwo\n");
  auto c = std::make_shared<Collector>();
  auto id = store.subscribe("j1", c);
  CHECK(id != 0);
  REQUIRE(c->wait_lines(2));
  store.append("j1", Clock::now(), "three");
  store.append("other", Clock::now(), "not mine");
  REQUIRE(c->wait_lines(3));
  CHECK(store.followers() == 1);
  store.close("j1");
  CHECK(c->wait_end() == LogEnd::closed);
  CHECK(c->lines() == std::vector<std::string>{"one", "two", "three"});
  CHECK(c->ends() == 1);
  CHECK(store.followers() == 0);
  store.unsubscribe(id);  // after the end: nothing more happens
  CHECK(c->ends() == 1);
}

TEST_CASE("log store: following a closed log sends it whole and ends, an empty one ends at once") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  for (int i = 0; i < 5000; ++i) store.append("done", Clock::now(), "line " + std::to_string(i));
  store.close("done");
  store.close("empty");
  auto c = std::make_shared<Collector>();
  store.subscribe("done", c);
  CHECK(c->wait_end() == LogEnd::closed);
  auto lines = c->lines();
  REQUIRE(lines.size() == 5000);
  CHECK(lines.front() == "line 0");
  CHECK(lines.back() == "line 4999");
  auto e = std::make_shared<Collector>();
  store.subscribe("empty", e);
  CHECK(e->wait_end() == LogEnd::closed);
  CHECK(e->lines().empty());
}

TEST_CASE("log store: followers starting while lines are appended see every line once, in order") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  constexpr int kLines = 20000;
  std::thread writer([&] {
    for (int i = 1; i <= kLines; ++i) store.append("job", Clock::now(), std::to_string(i));
    store.close("job");
  });
  std::vector<std::shared_ptr<Collector>> followers;
  for (int k = 0; k < 20; ++k) {
    auto c = std::make_shared<Collector>();
    store.subscribe("job", c);
    followers.push_back(c);
    std::this_thread::sleep_for(1ms);
  }
  writer.join();
  for (auto& c : followers) {
    REQUIRE(c->wait_end() == LogEnd::closed);
    auto lines = c->lines();
    REQUIRE(lines.size() == kLines);
    bool contiguous = true;
    for (int i = 0; i < kLines; ++i) contiguous = contiguous && lines[i] == std::to_string(i + 1);
    CHECK(contiguous);
  }
}

TEST_CASE("log store: removing a log ends its followers, unsubscribe ends one") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  store.append("j", Clock::now(), "x");
  auto a = std::make_shared<Collector>();
  auto b = std::make_shared<Collector>();
  store.subscribe("j", a);
  auto idb = store.subscribe("j", b);
  REQUIRE(a->wait_lines(1));
  REQUIRE(b->wait_lines(1));
  store.unsubscribe(idb);
  CHECK(b->wait_end() == LogEnd::stopped);
  store.remove("j");
  CHECK(a->wait_end() == LogEnd::removed);
  CHECK(!store.exists("j"));
}

TEST_CASE("log store: a slow follower is dropped, the job and a fast follower go on") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  store.append("j", Clock::now(), "first");
  auto slow = std::make_shared<Collector>();
  auto fast = std::make_shared<Collector>();
  store.subscribe("j", slow);
  store.subscribe("j", fast);
  REQUIRE(slow->wait_lines(1));
  REQUIRE(fast->wait_lines(1));
  slow->backlog_ = LogStore::kMaxBacklog + 1;  // its connection stopped draining
  auto began = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) store.append("j", Clock::now(), "more");
  CHECK(std::chrono::steady_clock::now() - began < 5s);  // append never waited on it
  CHECK(slow->wait_end() == LogEnd::too_slow);
  REQUIRE(fast->wait_lines(1001));
  store.close("j");
  CHECK(fast->wait_end() == LogEnd::closed);
  CHECK(fast->lines().size() == 1001);
}

TEST_CASE("log store: the catch-up waits while a follower's backlog is high") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  std::string big(1000, 'x');
  for (int i = 0; i < 2000; ++i) store.append("j", Clock::now(), big);  // about 2 MB: several pieces
  store.close("j");
  auto c = std::make_shared<Collector>();
  c->backlog_ = LogStore::kCatchUpBacklog + 1;
  store.subscribe("j", c);
  std::this_thread::sleep_for(100ms);
  CHECK(c->lines().empty());  // nothing sent while its queue is full
  c->backlog_ = 0;
  CHECK(c->wait_end() == LogEnd::closed);
  CHECK(c->lines().size() == 2000);
}

TEST_CASE("log store: a follower that refuses more is ended") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  auto c = std::make_shared<Collector>();
  c->refuse_ = true;
  store.subscribe("j", c);
  std::this_thread::sleep_for(20ms);
  store.append("j", Clock::now(), "a");
  CHECK(c->wait_end() == LogEnd::stopped);
  CHECK(store.followers() == 0);
}

TEST_CASE("log store: retention sweeps closed logs past the cutoff and keeps the rest") {
  neurod::test::TempDir tmp;
  LogStore store(tmp.path() / "logs");
  store.append("old", Clock::now(), "a");
  store.close("old");
  store.append("open", Clock::now(), "b");  // a running job's log is never swept
  store.append("recent", Clock::now(), "c");
  store.close("recent");
  // "old" was last written two days ago.
  auto two_days_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
  std::filesystem::last_write_time(store.path_of("old"), two_days_ago);
  CHECK(store.sweep(Clock::now() - std::chrono::hours(24)) == 1);
  CHECK_FALSE(store.exists("old"));
  CHECK_FALSE(store.is_closed("old"));
  CHECK(store.exists("open"));
  CHECK(store.exists("recent"));
  // A follower of what is left still works.
  auto c = std::make_shared<Collector>();
  store.subscribe("recent", c);
  CHECK(c->wait_end() == LogEnd::closed);
  CHECK(c->lines() == std::vector<std::string>{"c"});
}

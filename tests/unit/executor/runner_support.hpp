// Shared by the runners' tests: unique names, waiting for a condition, and a recorder of
// the events a runner emits from its own threads.
#pragma once

#include "modules/executor/executor.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace neurod::executor::test {

inline constexpr std::chrono::milliseconds kWait{10000};

// prefix-PID-N: distinct across test processes running at once and within one.
inline std::string unique(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;

  EventSink sink() {
    return [this](const Event& e) {
      std::lock_guard lock(mu);
      events.push_back(e);
      cv.notify_all();
    };
  }
  // The first event of this kind for the job, waiting up to timeout for it.
  std::optional<Event> wait(const std::string& job, Event::Kind kind, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu);
    std::optional<Event> found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& e : events)
        if (e.job_id == job && e.kind == kind) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }
  std::vector<Event> of(const std::string& job) {
    std::lock_guard lock(mu);
    std::vector<Event> out;
    for (const auto& e : events)
      if (e.job_id == job) out.push_back(e);
    return out;
  }
};

}  // namespace neurod::executor::test

// The live job list (README.md "Watching the job list"): `GET /api/v1/jobs?watch=true`
// answers with Server-Sent Events: a snapshot of the list, then the full JSON of each job
// the caller can read as it changes, so that a console's table updates without polling.
//
// No watcher holds a thread. The event bus handler only queues the changed job's id (it
// runs on the publisher's thread, inside the scheduler's loop); one worker thread loads
// each changed job once, checks it against every watcher's filter and permissions (the
// list endpoint's check, at the moment of sending, so a revoked grant stops the next
// event) and hands the rendered event to the watcher's stream queue. A stream whose token
// is revoked or expires (a logout) ends. A watcher whose
// queue grows past a bound is cut off (the client reconnects and gets a fresh snapshot).
#pragma once

#include "core/events.hpp"
#include "core/units.hpp"
#include "http/types.hpp"
#include "modules/jobs/repo.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <unordered_set>
#include <vector>

namespace neurod::jobs {

class Service;

struct WatchOptions {
  // A watcher with more than this many bytes of events waiting for its connection (beyond
  // its snapshot) is cut off.
  std::size_t max_backlog = 1 << 20;
  // How often an idle stream gets a `: keepalive` comment line.
  Duration keepalive = std::chrono::seconds(15);
};

// Whether a job is in what a list filter selects (statuses, owners, projects, name, tags,
// since/until), as repo::list's WHERE clause would say; limit, reverse and paging are
// for the snapshot only.
bool matches(const repo::Filter& f, const Job& job);

class Watchers : public std::enable_shared_from_this<Watchers> {
 public:
  Watchers(Service& service, events::Bus& bus, WatchOptions options = {});
  ~Watchers();
  Watchers(const Watchers&) = delete;
  Watchers& operator=(const Watchers&) = delete;

  // Subscribes to the bus; call once, after construction (handlers hold a weak pointer).
  void start();
  // Unsubscribes and ends every stream; the worker returns.
  void stop();

  // The text/event-stream response: reads the snapshot now (the caller is on the blocking
  // pool) after registering the watcher, so no change made after the read is missed.
  http::Response open(const http::Principal& who, repo::Filter filter);
  // A job changed in a way the bus does not announce (its life span).
  void changed(const std::string& job_id);

  // The worker: loads changed jobs and fans them out; sends keep-alives. Returns when
  // stop is requested or stop() was called.
  void run(std::stop_token stop);

  std::size_t count() const;
  std::uint64_t dropped() const { return dropped_.load(); }

 private:
  struct Watcher;
  class Source;
  void attach(const std::shared_ptr<Watcher>& w, std::shared_ptr<http::StreamWriter> writer);
  void detach(const std::shared_ptr<Watcher>& w);
  // Queues text for one watcher; cuts it off when it is too far behind.
  void send(Watcher& w, const std::string& text);
  // Whether the watcher's token still authenticates it (rechecked when the identity data
  // changed, or always with `force`); ends its stream with an `end` event when not.
  bool authenticated(Watcher& w, bool force);
  // Compares every watcher's rows with a fresh read of its list after the identity data
  // changed: sends the jobs that became visible and removes those that are no longer.
  void resync();
  void deliver(const std::string& job_id);
  void keepalive();

  Service& service_;
  events::Bus& bus_;
  WatchOptions options_;
  std::size_t subscription_ = 0;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
  std::deque<std::string> queue_;  // changed job ids, each at most once
  std::unordered_set<std::string> queued_;
  bool stopped_ = false;
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace neurod::jobs

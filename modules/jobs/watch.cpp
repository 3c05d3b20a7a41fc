#include "modules/jobs/watch.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "modules/jobs/service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace neurod::jobs {

bool matches(const repo::Filter& f, const Job& job) {
  auto in = [](const std::vector<std::string>& v, std::string_view x) {
    return v.empty() || std::find(v.begin(), v.end(), x) != v.end();
  };
  if (!in(f.statuses, to_string(job.current().status))) return false;
  if (!in(f.owners, job.owner)) return false;
  if (!in(f.projects, job.spec.project)) return false;
  if (!f.name.empty() && job.spec.name != f.name) return false;
  for (const auto& t : f.tags)
    if (std::find(job.spec.tags.begin(), job.spec.tags.end(), t) == job.spec.tags.end()) return false;
  if (f.since_ms && job.created_ms < *f.since_ms) return false;
  if (f.until_ms && job.created_ms > *f.until_ms) return false;
  return true;
}

struct Watchers::Watcher {
  http::Principal who;
  repo::Filter filter;
  std::mutex mu;
  std::shared_ptr<http::StreamWriter> writer;  // set when the server starts the stream
  std::string snapshot;                        // the first event, written at the start
  std::string early;                           // events that came before the start
  std::unordered_set<std::string> shown;       // the ids the client has a row for
  bool ready = false;                          // the snapshot was read
  bool done = false;                           // cut off, cancelled or stopped
  std::size_t allowance = 0;                   // queued bytes allowed (the snapshot's, then max_backlog)
  std::int64_t identity_version = 0;           // of the auth data when the token was last checked
};

// The stream the server drives: attaches the watcher when the response starts and
// detaches it when the client goes, the server stops, or the response is dropped unsent.
class Watchers::Source final : public http::StreamSource {
 public:
  Source(std::shared_ptr<Watchers> hub, std::shared_ptr<Watcher> w) : hub_(std::move(hub)), w_(std::move(w)) {}
  ~Source() override { hub_->detach(w_); }
  void start(std::shared_ptr<http::StreamWriter> writer) override { hub_->attach(w_, std::move(writer)); }
  void cancel() override { hub_->detach(w_); }

 private:
  std::shared_ptr<Watchers> hub_;
  std::shared_ptr<Watcher> w_;
};

Watchers::Watchers(Service& service, events::Bus& bus, WatchOptions options)
    : service_(service), bus_(bus), options_(options) {}

Watchers::~Watchers() = default;

void Watchers::start() {
  // On the publisher's thread (the scheduler's loop, a request): queue the id, nothing more.
  subscription_ = bus_.subscribe("job.status", [weak = weak_from_this()](const events::Event& e) {
    auto self = weak.lock();
    if (!self) return;
    auto it = e.data.find("job_id");
    if (it != e.data.end() && it->is_string()) self->changed(it->get<std::string>());
  });
}

void Watchers::stop() {
  if (subscription_) bus_.unsubscribe(std::exchange(subscription_, 0));
  std::vector<std::shared_ptr<Watcher>> ws;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ws.swap(watchers_);
    queue_.clear();
    queued_.clear();
  }
  cv_.notify_all();
  for (auto& w : ws) {
    std::lock_guard lock(w->mu);
    w->done = true;
    if (w->writer) w->writer->close();
  }
}

std::size_t Watchers::count() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

void Watchers::changed(const std::string& job_id) {
  {
    std::lock_guard lock(mu_);
    if (watchers_.empty() || stopped_) return;
    if (!queued_.insert(job_id).second) return;  // already waiting: it is loaded fresh anyway
    queue_.push_back(job_id);
  }
  cv_.notify_one();
}

http::Response Watchers::open(const http::Principal& who, repo::Filter filter) {
  auto w = std::make_shared<Watcher>();
  w->who = who;
  w->filter = filter;
  w->identity_version = service_.identity_version();  // the request was authenticated just now
  // Registered before the snapshot is read: a change committed after the read has its
  // event after registration, so it reaches this watcher (after the snapshot).
  {
    std::lock_guard lock(mu_);
    if (stopped_) throw Error(errc::unavailable, "the server is stopping; reconnect in a moment");
    watchers_.push_back(w);
  }
  try {
    auto now = now_ms();
    std::string jobs = "[";
    std::vector<std::string> ids;
    service_.list(who, filter, [&](const Job& j) {
      if (jobs.size() > 1) jobs += ',';
      jobs += to_json(j, now, false).dump();
      ids.push_back(j.id);
      return true;
    });
    jobs += ']';
    std::lock_guard lock(w->mu);
    // retry: how long EventSource waits before it reconnects after the stream breaks.
    w->snapshot = "retry: 3000\nevent: snapshot\ndata: {\"jobs\":" + jobs + "}\n\n";
    w->shown.insert(ids.begin(), ids.end());
    w->ready = true;
  } catch (...) {
    detach(w);
    throw;
  }
  return http::Response::stream("text/event-stream", std::make_shared<Source>(shared_from_this(), w));
}

void Watchers::attach(const std::shared_ptr<Watcher>& w, std::shared_ptr<http::StreamWriter> writer) {
  std::lock_guard lock(w->mu);
  if (w->done) {
    // Cut off before it started (too far behind) or the server is stopping.
    writer->abort();
    return;
  }
  std::string first = std::move(w->snapshot);
  first += w->early;
  w->allowance = first.size() + options_.max_backlog;
  w->snapshot.clear();
  w->early.clear();
  w->writer = std::move(writer);
  if (!w->writer->write(std::move(first))) w->done = true;
}

void Watchers::detach(const std::shared_ptr<Watcher>& w) {
  {
    std::lock_guard lock(w->mu);
    w->done = true;
  }
  std::lock_guard lock(mu_);
  std::erase(watchers_, w);
}

void Watchers::send(Watcher& w, const std::string& text) {
  if (w.done) return;
  if (!w.writer) {
    if (w.early.size() + text.size() > options_.max_backlog) {
      w.done = true;  // attach() ends it
      ++dropped_;
      return;
    }
    w.early += text;
    return;
  }
  auto queued = w.writer->queued_bytes();
  if (queued <= options_.max_backlog) w.allowance = options_.max_backlog;  // the snapshot has gone out
  if (queued + text.size() > w.allowance) {
    // An incomplete body: the client sees the stream break and reconnects for a fresh snapshot.
    spdlog::warn("jobs: cut off a job-list watcher of {}: more than {} bytes of events behind", w.who.name,
                 options_.max_backlog);
    w.writer->abort();
    w.done = true;
    ++dropped_;
    return;
  }
  if (!w.writer->write(text)) w.done = true;
}

bool Watchers::authenticated(Watcher& w, bool force) {
  if (w.done) return false;
  auto version = service_.identity_version();
  if (!force && version == w.identity_version) return true;
  w.identity_version = version;
  if (service_.still_authenticated(w.who)) return true;
  // The session ended (logout, revocation, expiry): say so, then end the stream cleanly;
  // EventSource reconnects and gets a 401.
  const std::string end =
      "event: end\ndata: {\"code\":\"unauthenticated\",\"message\":\"the session ended: log in again\"}\n\n";
  if (w.writer) {
    w.writer->write(end);
    w.writer->close();
  }
  w.done = true;
  return false;
}

void Watchers::deliver(const std::string& job_id) {
  std::vector<std::shared_ptr<Watcher>> ws;
  {
    std::lock_guard lock(mu_);
    std::erase_if(watchers_, [](const std::shared_ptr<Watcher>& w) {
      std::lock_guard l(w->mu);
      return w->done;
    });
    ws = watchers_;
  }
  if (ws.empty()) return;
  std::optional<Job> job;
  try {
    job = service_.find(job_id);
  } catch (const std::exception& e) {
    // The next change of the job sends its state; a client that must not wait reconnects.
    spdlog::warn("jobs: cannot load job {} for the job-list watchers: {}", job_id, e.what());
    return;
  }
  std::string job_event;
  if (job) job_event = "event: job\ndata: " + to_json(*job, now_ms(), false).dump() + "\n\n";
  const std::string remove_event = "event: remove\ndata: " + nlohmann::json({{"id", job_id}}).dump() + "\n\n";
  for (auto& w : ws) {
    std::lock_guard lock(w->mu);
    if (!authenticated(*w, false)) continue;
    // The list endpoint's check, now: a revoked grant stops the next event.
    bool readable = job && service_.readable(w->who, *job);
    if (readable && matches(w->filter, *job)) {
      w->shown.insert(job_id);
      send(*w, job_event);
    } else if (w->shown.erase(job_id) > 0 || (!w->ready && readable)) {
      // It left the filter (or the caller's sight): the client drops its row. Before the
      // snapshot was read the client may have it from the snapshot: tell it too, but only
      // about jobs it may read (an id of somebody else's job is not for it).
      send(*w, remove_event);
    }
  }
}

// The identity data changed (a grant, a revoke, a role, a project member): a job the
// caller could not see may now be visible, or the other way round, with no change to the
// job itself. Each watcher's list is read again and compared with the rows it has.
void Watchers::resync() {
  std::vector<std::shared_ptr<Watcher>> ws;
  {
    std::lock_guard lock(mu_);
    ws = watchers_;
  }
  for (auto& w : ws) {
    std::vector<Job> visible;
    try {
      service_.list(w->who, w->filter, [&](const Job& j) {
        visible.push_back(j);
        return true;
      });
    } catch (const std::exception& e) {
      spdlog::warn("jobs: cannot re-read the job list of a watcher of {}: {}", w->who.name, e.what());
      continue;
    }
    auto now = now_ms();
    std::lock_guard lock(w->mu);
    if (!w->ready || !authenticated(*w, false)) continue;
    std::unordered_set<std::string> seen;
    for (const auto& j : visible) {
      seen.insert(j.id);
      if (w->shown.insert(j.id).second) send(*w, "event: job\ndata: " + to_json(j, now, false).dump() + "\n\n");
    }
    // Rows the client has that are not in the new list: gone when the caller may no longer
    // read them (a job merely outside the snapshot's limit keeps its row).
    for (auto it = w->shown.begin(); it != w->shown.end();) {
      if (seen.contains(*it)) {
        ++it;
        continue;
      }
      std::optional<Job> job;
      try {
        job = service_.find(*it);
      } catch (const std::exception&) {
        ++it;
        continue;
      }
      if (job && service_.readable(w->who, *job) && matches(w->filter, *job)) {
        ++it;
        continue;
      }
      send(*w, "event: remove\ndata: " + nlohmann::json({{"id", *it}}).dump() + "\n\n");
      it = w->shown.erase(it);
    }
  }
}

void Watchers::keepalive() {
  std::vector<std::shared_ptr<Watcher>> ws;
  {
    std::lock_guard lock(mu_);
    ws = watchers_;
  }
  for (auto& w : ws) {
    std::lock_guard lock(w->mu);
    // Tokens also expire without any change to the identity data: check each time.
    if (w->writer && authenticated(*w, true)) send(*w, ": keepalive\n\n");
  }
}

void Watchers::run(std::stop_token stop) {
  auto next_keepalive = std::chrono::steady_clock::now() + options_.keepalive;
  auto identity = service_.identity_version();
  std::unique_lock lock(mu_);
  while (!stop.stop_requested() && !stopped_) {
    // Wakes at least once a second to notice identity changes (an atomic load), which
    // the bus does not announce.
    auto until = std::min(next_keepalive, std::chrono::steady_clock::now() + std::chrono::seconds(1));
    cv_.wait_until(lock, stop, until, [&] { return !queue_.empty() || stopped_; });
    if (stop.stop_requested() || stopped_) break;
    if (auto v = service_.identity_version(); v != identity) {
      identity = v;
      if (!watchers_.empty()) {
        lock.unlock();
        resync();
        lock.lock();
      }
    }
    if (!queue_.empty()) {
      auto id = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase(id);
      lock.unlock();
      deliver(id);
      lock.lock();
    }
    if (std::chrono::steady_clock::now() >= next_keepalive) {
      lock.unlock();
      keepalive();
      lock.lock();
      next_keepalive = std::chrono::steady_clock::now() + options_.keepalive;
    }
  }
}

}  // namespace neurod::jobs

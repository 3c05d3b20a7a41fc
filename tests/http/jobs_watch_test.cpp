// The live job list (modules/jobs/README.md, "Watching the job list"): GET
// /api/v1/jobs?watch=true as Server-Sent Events, read the way a browser's EventSource
// reads it. Jobs run on the process runtime; every case on SQLite and PostgreSQL.
#include "http/jobs_helpers.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

using namespace neurod;
using namespace neurod::jobtest;
using authtest::code;
using authtest::Headers;

namespace {

struct SseEvent {
  std::string event;
  std::string data;
  json body() const { return json::parse(data); }
};

// One EventSource-like reader on its own thread: parses events as they arrive.
class Watch {
 public:
  Watch(const test::TestServer& server, const std::string& token, std::string target, Headers headers = {}) {
    http::ClientOptions o;
    o.token = token;
    o.timeout = std::chrono::seconds(60);
    client_ = std::make_unique<http::Client>(server.client(o));
    thread_ = std::thread([this, target = std::move(target), headers = std::move(headers)] {
      try {
        auto r = client_->stream(
            "GET", target,
            [this](std::string_view chunk) {
              feed(chunk);
              return true;
            },
            "", headers,
            [this](const http::ClientResponse& head) {
              std::lock_guard lock(mu_);
              status_ = head.status;
              content_type_ = head.header("Content-Type").value_or("");
              cv_.notify_all();
              return head.status == 200;
            });
        std::lock_guard lock(mu_);
        if (r.status != 200) error_body_ = r.body;
      } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        failure_ = e.what();
      }
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~Watch() {
    client_->cancel();
    thread_.join();
  }

  int status() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return status_ != 0 || ended_; });
    return status_;
  }
  std::string content_type() {
    std::lock_guard lock(mu_);
    return content_type_;
  }
  std::string error_body() {
    std::lock_guard lock(mu_);
    return error_body_;
  }

  // The first event (from the start) for which pred holds; fails the test after the deadline.
  template <class Pred>
  SseEvent wait(Pred pred, const std::string& what, std::chrono::seconds deadline = std::chrono::seconds(60)) {
    std::unique_lock lock(mu_);
    std::optional<SseEvent> found;
    cv_.wait_for(lock, deadline, [&] {
      for (const auto& e : events_)
        if (pred(e)) {
          found = e;
          return true;
        }
      return ended_;
    });
    if (!found) {
      std::string seen;
      for (const auto& e : events_) seen += e.event + " " + e.data.substr(0, 300) + "\n";
      FAIL_CHECK("no event: " << what << "; got:\n" << seen << "failure: " << failure_);
      return {};
    }
    return *found;
  }
  json snapshot() {
    return wait([](const SseEvent& e) { return e.event == "snapshot"; }, "snapshot").body();
  }
  // The first `job` event for job `id` in `status`.
  json job_event(const std::string& id, const std::string& status) {
    return wait(
               [&](const SseEvent& e) {
                 if (e.event != "job") return false;
                 auto j = e.body();
                 return j["id"] == id && j["status"] == status;
               },
               "job " + id + " " + status)
        .body();
  }
  // The first `job` event for job `id`, whatever its status (the worker loads a job when it
  // gets to it, so a short-lived state may be skipped for a later one).
  json any_job_event(const std::string& id) {
    return wait([&](const SseEvent& e) { return e.event == "job" && e.body()["id"] == id; }, "job " + id).body();
  }
  void removed(const std::string& id) {
    wait([&](const SseEvent& e) { return e.event == "remove" && e.body()["id"] == id; }, "remove " + id);
  }
  std::vector<SseEvent> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::string raw() {
    std::lock_guard lock(mu_);
    return raw_;
  }
  int keepalives() {
    std::lock_guard lock(mu_);
    return keepalives_;
  }
  int retry_ms() {
    std::lock_guard lock(mu_);
    return retry_;
  }
  // Whether the stream ended (the server closed it) within the timeout.
  bool ended_within(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ended_; });
  }

 private:
  // The text/event-stream format: events end with a blank line; "field: value" lines;
  // lines starting with ':' are comments.
  void feed(std::string_view chunk) {
    std::lock_guard lock(mu_);
    raw_.append(chunk);
    buffer_.append(chunk);
    for (auto end = buffer_.find("\n\n"); end != std::string::npos; end = buffer_.find("\n\n")) {
      std::string block = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      SseEvent e;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        auto line = block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? block.size() + 1 : nl + 1;
        if (line.starts_with(":")) {
          if (line == ": keepalive") ++keepalives_;
        } else if (line.starts_with("event: ")) {
          e.event = line.substr(7);
        } else if (line.starts_with("data: ")) {
          e.data += line.substr(6);
        } else if (line.starts_with("retry: ")) {
          retry_ = std::stoi(line.substr(7));
        }
      }
      if (!e.event.empty() || !e.data.empty()) events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  std::unique_ptr<http::Client> client_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 0;
  std::string content_type_, error_body_, failure_, raw_, buffer_;
  std::vector<SseEvent> events_;
  int keepalives_ = 0;
  int retry_ = 0;
  bool ended_ = false;
};

authtest::Env process_env(db::Dialect d, const std::string& jobs_extra = "") {
  return authtest::Env(d, "", executor_yaml("process", jobs_extra));
}

bool has_id(const json& snapshot, const std::string& id) {
  for (const auto& j : snapshot["jobs"])
    if (j["id"] == id) return true;
  return false;
}

double gauge(Api& api, const std::string& name) {
  auto body = api.get("/metrics").body;
  auto at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE_TEMPLATE("jobs watch: a snapshot, then the full job on each submit, status change and kill - others see none",
                   B, NEUROD_DB_BACKENDS) {
  auto env = process_env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto first = submit_job(alice, sh_job("sleep 30", {{"name", "first"}}));

  Watch mine(env.server(), alice.token(), "/api/v1/jobs?watch=true");
  Watch theirs(env.server(), bob.token(), "/api/v1/jobs?watch=true");
  REQUIRE(mine.status() == 200);
  CHECK(mine.content_type().starts_with("text/event-stream"));
  auto snap = mine.snapshot();
  // The list endpoint's shape.
  REQUIRE(snap["jobs"].size() == 1);
  auto listed = alice.get("/api/v1/jobs").json()["jobs"][0];
  CHECK(snap["jobs"][0]["id"] == first);
  CHECK(snap["jobs"][0]["name"] == "first");
  for (const auto& [k, v] : listed.items()) {
    CAPTURE(k);
    CHECK(snap["jobs"][0].contains(k));
  }
  CHECK(mine.retry_ms() > 0);  // EventSource reconnects after that long
  CHECK(theirs.snapshot()["jobs"].empty());

  auto id = submit_job(alice, sh_job("sleep 30", {{"tags", {"exp=1"}}}));
  auto created = mine.any_job_event(id);
  CHECK(created["owner"] == "alice");
  CHECK(created["tags"] == json::array({"exp=1"}));
  CHECK(created["statuses"].is_null());  // the list's shape: no history array
  mine.job_event(id, "running");
  REQUIRE_STATUS(alice.del("/api/v1/jobs/" + id), 204);
  auto killed = mine.job_event(id, "cancelled");
  CHECK(killed["history"]["reason"] == "UserRequested");
  // A job's history is whole in each event: a client just replaces its row.
  CHECK(killed["id"] == id);

  // Bob's stream is past alice's changes once his own job's event arrives (one worker, in order).
  auto his = submit_job(bob, sh_job("true"));
  theirs.any_job_event(his);
  auto seen = theirs.raw();
  CHECK(seen.find(id) == std::string::npos);
  CHECK(seen.find(first) == std::string::npos);
  CHECK(mine.raw().find(his) == std::string::npos);
  REQUIRE_STATUS(alice.del("/api/v1/jobs/" + first), 204);
  mine.job_event(first, "cancelled");
}

TEST_CASE_TEMPLATE(
    "jobs watch: the console's cookie works - a shared job appears after the grant, goes after the revoke", B,
    NEUROD_DB_BACKENDS) {
  auto env = process_env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto shared = submit_job(alice, sh_job("sleep 30", {{"name", "shared-one"}}));
  wait_status(alice, shared, "running");

  // EventSource sends the cookie; a GET needs no CSRF token.
  auto login = env.login("bob", authtest::kPassword, {{"cookie", true}});
  REQUIRE_STATUS(login, 200);
  std::string session;
  for (const auto& [k, v] : login.headers)
    if (v.starts_with("neurod_session=")) session = v.substr(15, v.find(';') - 15);
  REQUIRE_FALSE(session.empty());
  Watch theirs(env.server(), "", "/api/v1/jobs?watch=true", {{"Cookie", "neurod_session=" + session}});
  REQUIRE(theirs.status() == 200);
  CHECK(theirs.snapshot()["jobs"].empty());

  auto uri = "job://test/alice/" + shared;
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions", {{"uri", uri}, {"action", "read"}}), 201);
  // The grant alone brings it to bob's list (the watchers re-read their lists when the
  // identity data changes), with no change to the job.
  theirs.wait([&](const SseEvent& e) { return e.event == "job" && e.body()["id"] == shared; }, "the job just shared");
  // Its next change reaches bob, whole (the life span, too, is a change).
  REQUIRE_STATUS(alice.put("/api/v1/jobs/" + shared + "/max_run_time_minutes", {{"max_run_time_minutes", 50}}), 200);
  auto got = theirs
                 .wait(
                     [&](const SseEvent& e) {
                       return e.event == "job" && e.body()["id"] == shared && e.body()["max_run_time_minutes"] == 50;
                     },
                     "the shared job")
                 .body();
  CHECK(got["owner"] == "alice");
  CHECK(got["status"] == "running");

  REQUIRE_STATUS(alice.del("/api/v1/users/bob/permissions?uri=" + authtest::q(uri)), 204);
  REQUIRE_STATUS(alice.put("/api/v1/jobs/" + shared + "/max_run_time_minutes", {{"max_run_time_minutes", 60}}), 200);
  // He had its row: it goes, with nothing more than its id.
  theirs.removed(shared);
  REQUIRE_STATUS(alice.del("/api/v1/jobs/" + shared), 204);
  auto his = submit_job(bob, sh_job("true"));
  theirs.any_job_event(his);
  for (const auto& e : theirs.events()) {
    if (e.event != "job") continue;
    auto j = e.body();
    CAPTURE(e.data);
    CHECK((j["id"] == his || j["id"] == shared));
    if (j["id"] == shared) {
      CHECK(j["max_run_time_minutes"] != 60);  // the change after the revoke did not reach him
      CHECK(j["status"] != "cancelled");
    }
  }
}

TEST_CASE_TEMPLATE("jobs watch: filters select the snapshot and the events - a job leaving the filter is removed", B,
                   NEUROD_DB_BACKENDS) {
  auto env = process_env(B::kDialect);
  auto alice = env.user("alice");
  auto old_tagged = submit_job(alice, sh_job("true", {{"tags", {"team=a"}}}));
  wait_finished(alice, old_tagged);

  Watch active(env.server(), alice.token(), "/api/v1/jobs?watch=true&status=active&tag=team%3Da");
  Watch named(env.server(), alice.token(), "/api/v1/jobs?watch=1&name=train");
  Watch all(env.server(), alice.token(), "/api/v1/jobs?watch=true&owner=me");
  CHECK(active.snapshot()["jobs"].empty());  // finished
  CHECK(named.snapshot()["jobs"].empty());
  CHECK(has_id(all.snapshot(), old_tagged));

  auto tagged = submit_job(alice, sh_job("sleep 30", {{"tags", {"team=a"}}}));
  auto other = submit_job(alice, sh_job("sleep 30", {{"name", "train"}}));
  active.job_event(tagged, "running");
  named.job_event(other, "running");
  all.job_event(tagged, "running");
  all.job_event(other, "running");
  REQUIRE_STATUS(alice.del("/api/v1/jobs/" + tagged), 204);
  REQUIRE_STATUS(alice.del("/api/v1/jobs/" + other), 204);
  // Cancelled is not active: the row goes.
  active.removed(tagged);
  all.job_event(tagged, "cancelled");
  named.job_event(other, "cancelled");  // still named train
  all.job_event(other, "cancelled");
  CHECK(active.raw().find(other) == std::string::npos);
  CHECK(named.raw().find(tagged) == std::string::npos);

  // A bad filter or flag is refused before any stream starts.
  auto bad = alice.get("/api/v1/jobs?watch=true&status=bogus");
  EXPECT_STATUS(bad, 400);
  EXPECT_STATUS(alice.get("/api/v1/jobs?watch=sometimes"), 400);
}

TEST_CASE_TEMPLATE(
    "jobs watch: 401 without credentials, keep-alives, counted, ends at logout and when the server stops", B,
    NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", "modules:\n  jobs:\n    watch_keepalive: 200ms\n");
  auto alice = env.user("alice");
  auto anon = env.anonymous().get("/api/v1/jobs?watch=true");
  EXPECT_STATUS(anon, 401);
  CHECK(code(anon) == "unauthenticated");

  auto& admin = env.admin();
  {
    Watch w(env.server(), alice.token(), "/api/v1/jobs?watch=true");
    w.snapshot();
    CHECK(authtest::eventually([&] { return w.keepalives() >= 2; }, std::chrono::seconds(10)));
    CHECK(gauge(admin, "neurod_jobs_watchers") == 1);
  }
  // The client went: the watcher goes.
  CHECK(authtest::eventually([&] { return gauge(admin, "neurod_jobs_watchers") == 0; }, std::chrono::seconds(10)));

  // A logout ends the stream of that session (at the latest at the next keep-alive), saying why.
  {
    auto session = env.session("alice");
    Watch w(env.server(), session, "/api/v1/jobs?watch=true");
    w.snapshot();
    REQUIRE_STATUS(env.as(session).post("/api/v1/auth/logout", json::object()), 204);
    auto end = w.wait([](const SseEvent& e) { return e.event == "end"; }, "the end event");
    CHECK(end.body()["code"] == "unauthenticated");
    CHECK(w.ended_within(std::chrono::seconds(5)));
    CHECK(env.as(session).get("/api/v1/jobs?watch=true").status == 401);
  }

  Watch w(env.server(), alice.token(), "/api/v1/jobs?watch=true");
  w.snapshot();
  auto start = std::chrono::steady_clock::now();
  env.server().app().stop();
  CHECK(w.ended_within(std::chrono::seconds(5)));
  // The stream did not hold the drain (http.drain_timeout: 15 s by default).
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE_TEMPLATE("jobs watch: a client that stops reading is cut off - the others keep up", B, NEUROD_DB_BACKENDS) {
  // The default bound (1 MiB): the reader that keeps up stays far below it even on a busy machine.
  authtest::Env env(B::kDialect);
  auto alice = env.user("alice");
  auto& admin = env.admin();
  // A client that sends the request and never reads: once the sockets' buffers are full,
  // events pile up in its queue.
  test::RawConnection stuck(env.server().port());
  stuck.send("GET /api/v1/jobs?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + alice.token() + "\r\n\r\n");
  Watch reader(env.server(), alice.token(), "/api/v1/jobs?watch=true");
  reader.snapshot();
  REQUIRE(authtest::eventually([&] { return gauge(admin, "neurod_jobs_watchers") == 2; }));
  // Big jobs (60 KiB of env each) until the stuck one is dropped; the jobs wait (no executor).
  json env_vars = json::object();
  for (int i = 0; i < 60; ++i) env_vars["V" + std::to_string(i)] = std::string(1000, 'x');
  std::string last;
  int submitted = 0;
  for (; submitted < 500 && gauge(admin, "neurod_jobs_watchers_dropped_total") < 1; ++submitted)
    last = submit_job(alice, {{"image", "busybox:1"}, {"env", env_vars}});
  CAPTURE(submitted);
  CHECK(gauge(admin, "neurod_jobs_watchers_dropped_total") == 1);
  // The reader that keeps up got every one of them.
  reader.any_job_event(last);
  std::set<std::string> ids;
  for (const auto& e : reader.events())
    if (e.event == "job") ids.insert(e.body()["id"].template get<std::string>());
  CHECK(ids.size() == static_cast<std::size_t>(submitted));
  // The stuck one's stream ends unfinished (no last chunk) and is no longer counted.
  auto got = stuck.read_until_close(std::chrono::seconds(20));
  CHECK(got.starts_with("HTTP/1.1 200"));
  CHECK_FALSE(got.ends_with("\r\n0\r\n\r\n"));
  CHECK(authtest::eventually([&] { return gauge(admin, "neurod_jobs_watchers") == 1; }));
}

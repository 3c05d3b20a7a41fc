// The monitoring module's log routes end to end in one process, on both runtimes (the
// docker executor on the test Podman service, and the process executor) and both
// databases: following over chunked HTTP and WebSocket with nothing lost or repeated
// across the start of following, 100 followers on a server whose blocking pool is far
// smaller, deletion, and who may do what.
#include "core/times.hpp"
#include "http/jobs_helpers.hpp"
#include "http/ws_client.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

using namespace neurod;
using namespace neurod::jobtest;

namespace {

// A server with a blocking pool of `pool` threads.
authtest::Env logs_env(db::Dialect d, const std::string& runtime, int pool = 8) {
  return authtest::Env(d, "", executor_yaml(runtime) + "http:\n  blocking_threads: " + std::to_string(pool) + "\n");
}

// Prints 1..n, pausing 10 ms every 10 lines (about n ms in all); `mid` adds a pause of
// `pause` seconds after that line.
std::string counter_script(int n, int mid = 0, int pause = 0) {
  return "i=1; while [ $i -le " + std::to_string(n) + " ]; do echo $i; " +
         (mid ? "[ $i -eq " + std::to_string(mid) + " ] && sleep " + std::to_string(pause) + "; " : std::string()) +
         "[ $((i % 10)) -eq 0 ] && sleep 0.01; i=$((i+1)); done; true";
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Whether lines are exactly "1".."n".
bool is_counter(const std::vector<std::string>& lines, int n) {
  if (static_cast<int>(lines.size()) != n) return false;
  for (int i = 0; i < n; ++i)
    if (lines[i] != std::to_string(i + 1)) return false;
  return true;
}

// Follows over chunked HTTP to the end; returns the body.
std::string follow_http(const test::TestServer& server, const std::string& token, const std::string& target,
                        std::atomic<int>* lines = nullptr) {
  http::ClientOptions o;
  o.token = token;
  auto c = server.client(o);
  c.set_timeout(std::chrono::seconds(120));
  std::string body;
  auto r = c.stream("GET", target, [&](std::string_view chunk) {
    body.append(chunk);
    if (lines) *lines += static_cast<int>(std::count(chunk.begin(), chunk.end(), '\n'));
    return true;
  });
  CHECK(r.status == 200);
  return body;
}

// Follows over the WebSocket to the close; returns the text and the close code.
std::pair<std::string, int> follow_ws(const test::TestServer& server, const std::string& token,
                                      const std::string& target, std::atomic<int>* lines = nullptr) {
  http::ClientOptions o;
  o.token = token;
  http::WebSocketClient ws(server.url(), target, o, {"logs.apolo.us"});
  std::string text;
  while (auto m = ws.read()) {
    CHECK_FALSE(m->binary);
    text += m->data;
    if (lines) *lines += static_cast<int>(std::count(m->data.begin(), m->data.end(), '\n'));
  }
  return {text, ws.close_code()};
}

// Waits until the job's stored log has at least `n` lines; returns how many it had.
int wait_lines(Api& api, const std::string& id, int n) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int have = 0;
  while (std::chrono::steady_clock::now() < until) {
    have = static_cast<int>(split_lines(api.get("/api/v1/jobs/" + id + "/log").body).size());
    if (have >= n) return have;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL_CHECK("the log of " << id << " did not reach " << n << " lines (has " << have << ")");
  return have;
}

double run_seconds(const json& job) {
  std::int64_t started = 0, finished = 0;
  for (const auto& s : job["statuses"]) {
    if (s["status"] == "running" && started == 0)
      started = parse_rfc3339_ns(s["transition_time"].get<std::string>()).value_or(0) / 1000000;
    if (s["status"] == "succeeded")
      finished = parse_rfc3339_ns(s["transition_time"].get<std::string>()).value_or(0) / 1000000;
  }
  return static_cast<double>(finished - started) / 1000.0;
}

}  // namespace

TEST_CASE_TEMPLATE("logs: a follower starting mid-way sees every line once, in order, over HTTP and WebSocket", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    auto env = logs_env(B::kDialect, runtime);
    auto alice = env.user("alice");
    constexpr int kLines = 3000;
    auto id = submit_job(alice, sh_job(counter_script(kLines)));
    wait_status(alice, id, "running");
    int before = wait_lines(alice, id, 50);
    std::string http_body;
    std::pair<std::string, int> ws_result;
    std::thread h(
        [&] { http_body = follow_http(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log?follow=true"); });
    std::thread w([&] { ws_result = follow_ws(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log_ws"); });
    h.join();
    w.join();
    CHECK(before < kLines);  // following really started while the job was printing
    CHECK(is_counter(split_lines(http_body), kLines));
    CHECK(is_counter(split_lines(ws_result.first), kLines));
    CHECK(ws_result.second == 1000);
    CHECK(wait_finished(alice, id)["status"] == "succeeded");

    // since and timestamps apply to followers too; a finished log is sent whole and ends.
    auto stamped =
        split_lines(follow_http(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log?follow=1&timestamps=true"));
    REQUIRE(stamped.size() == kLines);
    CHECK(stamped.back().ends_with("Z " + std::to_string(kLines)));
    CHECK(follow_http(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log?follow=true&since=2100-01-01T00:00:00Z")
              .empty());
    auto ws_since = follow_ws(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log_ws?since=1h&timestamps=true");
    CHECK(split_lines(ws_since.first).size() == kLines);
    CHECK(ws_since.second == 1000);
  }
}

TEST_CASE_TEMPLATE("logs: 100 followers of one job get every line, hold no pool thread and do not slow the job", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    auto env = logs_env(B::kDialect, runtime, /*pool=*/4);
    auto alice = env.user("alice");
    constexpr int kLines = 2000;
    constexpr int kHalf = kLines / 2;
    // The pace of the job alone.
    auto baseline = submit_job(alice, sh_job(counter_script(kLines, kHalf, 2)));
    double alone = run_seconds(wait_finished(alice, baseline));

    auto id = submit_job(alice, sh_job(counter_script(kLines, kHalf, 2)));
    wait_status(alice, id, "running");
    constexpr int kHttp = 80, kWs = 20;
    std::vector<std::string> bodies(kHttp + kWs);
    std::vector<int> codes(kWs, 0);
    std::vector<std::atomic<int>> counts(kHttp + kWs);
    std::vector<std::thread> threads;
    for (int i = 0; i < kHttp; ++i)
      threads.emplace_back([&, i] {
        bodies[i] = follow_http(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log?follow=true", &counts[i]);
      });
    for (int i = 0; i < kWs; ++i)
      threads.emplace_back([&, i] {
        auto [text, code] =
            follow_ws(env.server(), alice.token(), "/api/v1/jobs/" + id + "/log_ws", &counts[kHttp + i]);
        bodies[kHttp + i] = std::move(text);
        codes[i] = code;
      });
    // While the job pauses half-way, all 100 are connected and waiting: the pool of 4 must
    // still answer other requests at once.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto all_half = [&] {
      for (auto& c : counts)
        if (c.load() < kHalf) return false;
      return true;
    };
    while (!all_half() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(all_half());
    for (int i = 0; i < 8; ++i) {
      auto began = std::chrono::steady_clock::now();
      REQUIRE_STATUS(alice.get("/api/v1/jobs/" + id), 200);
      CHECK(std::chrono::steady_clock::now() - began < std::chrono::milliseconds(500));
    }
    for (auto& t : threads) t.join();
    int complete = 0;
    for (const auto& b : bodies) complete += is_counter(split_lines(b), kLines) ? 1 : 0;
    CHECK(complete == kHttp + kWs);
    for (int c : codes) CHECK(c == 1000);
    auto job = wait_finished(alice, id);
    CHECK(job["status"] == "succeeded");
    double followed = run_seconds(job);
    CAPTURE(alone);
    CAPTURE(followed);
    CHECK(followed < alone * 1.5 + 1.0);
  }
}

TEST_CASE_TEMPLATE("logs: deletion, bad parameters, and who may read or delete a log", B, NEUROD_DB_BACKENDS) {
  auto env = logs_env(B::kDialect, "process");
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto mallory = env.user("mallory");
  auto anonymous = env.anonymous();
  auto id = submit_job(alice, sh_job("echo kept; sleep 30"));
  wait_status(alice, id, "running");
  wait_lines(alice, id, 1);
  auto path = "/api/v1/jobs/" + id + "/log";

  // Bad parameters are refused with what is wrong.
  auto bad_since = alice.get(path + "?since=yesterday");
  CHECK(bad_since.status == 400);
  CHECK(bad_since.body.find("since") != std::string::npos);
  CHECK(alice.get(path + "?timestamps=maybe").status == 400);
  CHECK(alice.get(path + "?follow=sometimes").status == 400);
  CHECK(alice.get(path + "?tail=5").status == 400);
  CHECK(alice.get("/api/v1/jobs/job-nope/log").status == 404);

  // Who may do what: anonymous 401, another user 404 (the job is hidden), a reader reads
  // but cannot delete.
  CHECK(anonymous.get(path).status == 401);
  CHECK(anonymous.del(path).status == 401);
  CHECK(mallory.get(path).status == 404);
  CHECK(mallory.get(path + "?follow=true").status == 404);
  CHECK(mallory.del(path).status == 404);
  CHECK_THROWS(http::WebSocketClient(env.server().url(), path + "_ws", [&] {
    http::ClientOptions o;
    o.token = mallory.token();
    return o;
  }()));
  CHECK_THROWS(http::WebSocketClient(env.server().url(), path + "_ws"));
  auto grant = alice.post("/api/v1/users/bob/permissions",
                          json::array({{{"uri", "job://test/alice/" + id}, {"action", "read"}}}));
  REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
  CHECK(bob.get(path).body == "kept\n");
  // The log subprotocol is echoed when offered (the upgrade seen as plain HTTP, on a client of its own).
  {
    http::ClientOptions o;
    o.token = bob.token();
    auto c = env.server().client(o);
    auto up = c.request("GET", path + "_ws", "",
                        {{"Connection", "Upgrade"},
                         {"Upgrade", "websocket"},
                         {"Sec-WebSocket-Version", "13"},
                         {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                         {"Sec-WebSocket-Protocol", "logs.apolo.us"}});
    CHECK(up.status == 101);
    CHECK(up.header("Sec-WebSocket-Protocol") == "logs.apolo.us");
  }
  // A reader follows; the follow ends (1000) once the job is cancelled below.
  std::pair<std::string, int> bob_follow;
  std::thread follower([&] { bob_follow = follow_ws(env.server(), bob.token(), path + "_ws?timestamps=true"); });
  CHECK(bob.del(path).status == 403);

  // Not while it runs.
  auto running = alice.del(path);
  CHECK(running.status == 409);
  CHECK(authtest::code(running) == "job_not_finished");
  CHECK(alice.del("/api/v1/jobs/" + id).status == 204);
  wait_finished(alice, id);
  follower.join();
  CHECK(bob_follow.second == 1000);
  CHECK(bob_follow.first.ends_with("Z kept\n"));
  CHECK(alice.get(path).body.find("kept\n") != std::string::npos);
  // Cancelled at once; the log is complete once the job has really stopped.
  CHECK(authtest::eventually([&] { return alice.del(path).status == 204; }, std::chrono::seconds(30)));
  CHECK(alice.get(path).body.empty());
  CHECK(follow_http(env.server(), alice.token(), path + "?follow=true").empty());
  CHECK(alice.del(path).status == 204);  // deleting again is no error
}

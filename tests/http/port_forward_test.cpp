// Port-forward and save (modules/monitoring/port_forward.cpp) against real jobs: the docker
// runtime on the test Podman service and the process runtime, every case on SQLite and
// PostgreSQL.
#include "http/jobs_helpers.hpp"
#include "http/tunnel_helpers.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

using namespace neurod;
using namespace neurod::jobtest;

namespace {

const char* const kRuntimes[] = {"docker", "process"};

std::string forward_path(const std::string& job, std::uint16_t port) {
  return "/api/v1/jobs/" + job + "/port_forward/" + std::to_string(port);
}

// A WebSocket upgrade request as a raw GET, to see the refusal's status and headers.
authtest::Res upgrade(Api& api, const std::string& target) {
  return api.request("GET", target, "",
                     {{"Connection", "Upgrade"},
                      {"Upgrade", "websocket"},
                      {"Sec-WebSocket-Version", "13"},
                      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
}

// A running job with a persistent echo server (busybox nc, one process per connection)
// on `port`; returns once the port answers through the tunnel.
// The echo server: busybox nc in the test image (docker); on the host (process), where
// busybox nc's persistent mode refused or dropped some of many concurrent connections,
// a threaded Python one.
constexpr const char* kPythonEcho = R"(import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
def echo(c):
    while True:
        d = c.recv(262144)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
)";

std::string echo_job(Api& api, const std::string& url, std::uint16_t port, const std::string& runtime) {
  auto body = runtime == "docker" ? sh_job("exec busybox nc -ll -p " + std::to_string(port) + " -e cat")
                                  : json{{"image", test_image()},
                                         {"command", {"/usr/bin/python3", "-c", kPythonEcho, std::to_string(port)}}};
  auto id = submit_job(api, body);
  wait_status(api, id, "running");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string last;
  for (;;) {
    try {
      auto r = tunneltest::echo_through(url, forward_path(id, port), api.token(), 3);
      if (r.got == 3) return id;
      last = "echoed " + std::to_string(r.got) + " of 3 bytes";
    } catch (const Error& e) {
      if (std::string(e.what()).find("nothing listens") == std::string::npos) throw;
      last = e.what();
    }
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until,
                    "the echo server of job " << id << " never answered: " << last << "; job: "
                                              << api.get("/api/v1/jobs/" + id).body
                                              << "; log: " << api.get("/api/v1/jobs/" + id + "/log").body);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("port-forward: 100 MiB go both ways intact, many tunnels at once, no listener is a clear 400", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : kRuntimes) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", executor_yaml(runtime));
    auto alice = env.user("alice");
    auto url = env.server().url();
    std::uint16_t port = runtime == "docker" ? 7000 : free_port();
    auto id = echo_job(alice, url, port, runtime);

    auto big = tunneltest::echo_through(url, forward_path(id, port), alice.token(), 100ull << 20);
    CHECK(big.sent == 100ull << 20);
    CHECK(big.got == big.sent);
    CHECK(big.got_hash == big.sent_hash);

    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    std::mutex mu;
    std::string failures;
    for (int i = 0; i < 12; ++i)
      threads.emplace_back([&, i] {
        std::string why;
        try {
          auto e = tunneltest::echo_through(url, forward_path(id, port), alice.token(), 2 << 20, std::uint64_t(i) + 3);
          if (e.sent == (2u << 20) && e.got == e.sent && e.got_hash == e.sent_hash)
            ++ok;
          else
            why = "sent " + std::to_string(e.sent) + ", got " + std::to_string(e.got);
        } catch (const std::exception& e) {
          why = e.what();
        }
        std::lock_guard lock(mu);
        if (!why.empty()) failures += why + "; ";
      });
    for (auto& t : threads) t.join();
    CHECK_MESSAGE(ok == 12, failures);

    // No listener: 400 before the upgrade, the reason in the body and in X-Error.
    std::uint16_t closed = runtime == "docker" ? 7001 : free_port();
    auto refused = upgrade(alice, forward_path(id, closed));
    EXPECT_STATUS(refused, 400);
    CHECK(refused.json()["error"]["code"] == "port_not_listening");
    auto why = "nothing listens on port " + std::to_string(closed) + " in job " + id;
    CHECK(refused.json()["error"]["message"] == why);
    CHECK(refused.header("X-Error") == why);
    try {
      tunneltest::echo_through(url, forward_path(id, closed), alice.token(), 1);
      FAIL_CHECK("the tunnel to a closed port opened");
    } catch (const Error& e) {
      CHECK(e.code() == errc::bad_request);
      CHECK(std::string(e.what()) == why);
    }
    EXPECT_STATUS(upgrade(alice, forward_path(id, 0)), 400);
    EXPECT_STATUS(upgrade(alice, "/api/v1/jobs/" + id + "/port_forward/http"), 400);

    // A job that is not running has nothing to forward to.
    alice.del("/api/v1/jobs/" + id);
    wait_finished(alice, id);
    EXPECT_STATUS(upgrade(alice, forward_path(id, port)), 409);
  }
}

TEST_CASE_TEMPLATE("port-forward and save: anonymous, other and read-only users are refused", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", executor_yaml("process"));
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto url = env.server().url();
  auto port = free_port();
  auto id = echo_job(alice, url, port, "process");
  auto anon = env.anonymous();
  json save_body = {{"container", {{"image", "image:stolen:v1"}}}};

  EXPECT_STATUS(upgrade(anon, forward_path(id, port)), 401);
  EXPECT_STATUS(anon.post("/api/v1/jobs/" + id + "/save", save_body), 401);
  EXPECT_STATUS(upgrade(bob, forward_path(id, port)), 404);
  EXPECT_STATUS(bob.post("/api/v1/jobs/" + id + "/save", save_body), 404);
  try {
    tunneltest::echo_through(url, forward_path(id, port), bob.token(), 1);
    FAIL_CHECK("bob opened a tunnel into alice's job");
  } catch (const Error& e) {
    CHECK(e.code() == errc::not_found);
  }
  // Read access shows the job but does not let him act on it.
  auto grant = alice.post("/api/v1/users/bob/permissions",
                          json::array({{{"uri", "job://test/alice/" + id}, {"action", "read"}}}));
  REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
  wait_job(bob, id, [](const json&) { return true; });
  EXPECT_STATUS(upgrade(bob, forward_path(id, port)), 403);
  EXPECT_STATUS(bob.post("/api/v1/jobs/" + id + "/save", save_body), 403);
  // The process runtime has no images.
  auto r = alice.post("/api/v1/jobs/" + id + "/save", save_body);
  EXPECT_STATUS(r, 400);
  CHECK(r.json()["error"]["code"] == "save_not_supported");
  alice.del("/api/v1/jobs/" + id);
}

TEST_CASE_TEMPLATE("save: a running container is pushed to the registry and a new job runs it", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", executor_yaml("docker"));
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto id = submit_job(alice, sh_job("echo saved-by-first-job > /marker && echo ready && exec sleep 300"));
  wait_status(alice, id, "running");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (alice.get("/api/v1/jobs/" + id + "/log").body.find("ready") == std::string::npos) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Bad targets first: a foreign registry, a digest, no image.
  auto foreign = alice.post("/api/v1/jobs/" + id + "/save", {{"container", {{"image", "docker.io/alice/x:1"}}}});
  EXPECT_STATUS(foreign, 400);
  CHECK(foreign.json()["error"]["message"].get<std::string>().find("Unknown registry host") != std::string::npos);
  EXPECT_STATUS(alice.post("/api/v1/jobs/" + id + "/save",
                           {{"container", {{"image", "image:x@sha256:" + std::string(64, 'a')}}}}),
                400);
  EXPECT_STATUS(alice.post("/api/v1/jobs/" + id + "/save", json::object()), 400);
  // Writing into a project she cannot write: 403, nothing pushed.
  EXPECT_STATUS(alice.post("/api/v1/jobs/" + id + "/save", {{"container", {{"image", "image:/bob/x:1"}}}}), 403);

  auto r = alice.post("/api/v1/jobs/" + id + "/save", {{"container", {{"image", "image:snap:v1"}}}});
  REQUIRE_STATUS(r, 200);
  CHECK(r.header("Content-Type").value_or("").find("ndjson") != std::string::npos);
  std::vector<json> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = r.body.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(json::parse(r.body.substr(start, nl - start)));
  CAPTURE(r.body);
  REQUIRE(lines.size() >= 3);
  for (const auto& l : lines) CHECK_MESSAGE(!l.contains("error"), l.dump());
  CHECK(lines.front()["status"].get<std::string>().find("Committing") == 0);
  CHECK(lines.back()["image"] == "image://test/alice/snap:v1");
  CHECK(lines.back()["digest"].get<std::string>().starts_with("sha256:"));

  // The registry has the tag.
  auto tags = alice.request("GET", "/v2/alice/snap/tags/list", "",
                            {{"Authorization", "Basic " + authtest::base64("alice:" + alice.token())}});
  REQUIRE_STATUS(tags, 200);
  CHECK(tags.json()["tags"] == json::array({"v1"}));

  // A new job from the saved image sees what the first one wrote.
  auto second = submit_job(alice, {{"image", "image:snap:v1"}, {"command", {"cat", "/marker"}}});
  auto done = wait_finished(alice, second, std::chrono::seconds(120));
  CHECK(done["status"] == "succeeded");
  CHECK(alice.get("/api/v1/jobs/" + second + "/log").body == "saved-by-first-job\n");
  alice.del("/api/v1/jobs/" + id);
}

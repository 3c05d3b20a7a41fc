// Exec, attach and kill end to end (modules/monitoring/exec.cpp): a real job on Podman (the
// docker runtime) and in bubblewrap (the process runtime), reached over WebSocket with the
// channel framing, every case on SQLite and PostgreSQL.
#include "http/jobs_helpers.hpp"
#include "http/ws_client.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using namespace neurod::jobtest;
using namespace std::chrono_literals;

namespace {

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// One exec or attach over WebSocket: what came on each channel, until channel 3.
struct Session {
  Session(authtest::Env& env, const std::string& token, const std::string& target)
      : ws(env.server().url(), target, [&] {
          http::ClientOptions o;
          o.token = token;
          o.timeout = std::chrono::seconds(30);
          return o;
        }(), {"v2.channels.neu.ro"}) {}

  void send(char channel, const std::string& data) { ws.send_binary(std::string(1, channel) + data); }
  void resize(int h, int w) { send(4, json({{"height", h}, {"width", w}}).dump()); }

  // Reads until `pred` holds or the session ends; true when pred held.
  template <class Pred>
  bool read_until(Pred pred) {
    while (!pred()) {
      if (ended) return false;
      auto m = ws.read();
      if (!m) {
        ended = true;
        return pred();
      }
      if (m->data.empty()) continue;
      char ch = m->data[0];
      auto payload = m->data.substr(1);
      if (ch == 1) out += payload;
      if (ch == 2) err += payload;
      if (ch == 3) {
        exit = json::parse(payload);
      }
    }
    return true;
  }
  json wait_exit() {
    read_until([&] { return !exit.is_null(); });
    return exit;
  }

  http::WebSocketClient ws;
  std::string out, err;
  json exit;
  bool ended = false;
};

std::string exec_target(const std::string& id, const std::string& cmd, const std::string& query) {
  return "/api/v1/jobs/" + id + "/exec?cmd=" + url_encode(cmd) + (query.empty() ? "" : "&" + query);
}

// The status of a WebSocket request the server refuses before the upgrade.
int upgrade_status(Api& api, const std::string& target, std::string* code = nullptr) {
  auto r = api.request("GET", target, "",
                       {{"Connection", "Upgrade"},
                        {"Upgrade", "websocket"},
                        {"Sec-WebSocket-Version", "13"},
                        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
  if (code && r.status >= 400) *code = r.json()["error"]["code"].get<std::string>();
  return r.status;
}

std::string job_log(Api& api, const std::string& id) { return api.get("/api/v1/jobs/" + id + "/log").body; }

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds deadline = 20s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// A job that reports USR1, ends with 3 on TERM, and otherwise waits.
const char* kTrapScript =
    "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 3' TERM; echo started; "
    "while true; do sleep 0.1; done";

}  // namespace

TEST_CASE_TEMPLATE("exec: TTY and pipes, exit codes, stdin, resize and kill with a signal on both runtimes", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", executor_yaml(runtime));
    auto alice = env.user("alice");
    auto id = submit_job(alice, sh_job(kTrapScript));
    wait_status(alice, id, "running");
    REQUIRE(eventually([&] { return job_log(alice, id).find("started") != std::string::npos; }));

    // TTY: output and the exit code.
    {
      Session s(env, alice.token(), exec_target(id, "sh -c 'echo hello; exit 7'", "tty=1&stderr=0"));
      auto exit = s.wait_exit();
      CHECK(exit == json({{"exit_code", 7}}));
      CHECK(s.out.find("hello") != std::string::npos);
    }
    // Pipes: stdin round trip, stdout and stderr apart, stdin closed by an empty frame.
    {
      Session s(env, alice.token(), exec_target(id, "sh -c 'cat; echo oops >&2'", "stdin=1"));
      s.send(0, "ping\n");
      s.send(0, "pong\n");
      CHECK(s.read_until([&] { return s.out.find("pong") != std::string::npos; }));
      s.send(0, "");
      auto exit = s.wait_exit();
      CHECK(exit == json({{"exit_code", 0}}));
      CHECK(s.out == "ping\npong\n");
      CHECK(s.err == "oops\n");
    }
    // Repeated cmd is argv as it is; the working directory and environment are the job's.
    {
      Session s(env, alice.token(),
                "/api/v1/jobs/" + id + "/exec?cmd=sh&cmd=-c&cmd=" + url_encode("echo \"$NEURO_JOB_ID\"; exit 0"));
      CHECK(s.wait_exit() == json({{"exit_code", 0}}));
      CHECK(s.out == id + "\n");
    }
    // Resize: the initial size from the query, then a resize message.
    {
      Session s(env, alice.token(),
                exec_target(id, "sh -c 'stty size; read x; stty size'", "tty=1&stdin=1&stderr=0&height=30&width=100"));
      CHECK(s.read_until([&] { return s.out.find("30 100") != std::string::npos; }));
      s.resize(40, 120);
      std::this_thread::sleep_for(300ms);
      s.send(0, "go\r");
      CHECK(s.read_until([&] { return s.out.find("40 120") != std::string::npos; }));
      CHECK(s.wait_exit() == json({{"exit_code", 0}}));
    }
    // A command that does not exist: the runtime's exit code for it.
    {
      Session s(env, alice.token(), exec_target(id, "no-such-command-x", ""));
      auto exit = s.wait_exit();
      REQUIRE(exit.contains("exit_code"));
      CHECK((exit["exit_code"] == 127 || exit["exit_code"] == 126));
    }
    // Leaving in the middle ends the session; the job runs on.
    {
      Session s(env, alice.token(), exec_target(id, "sleep 300", ""));
      std::this_thread::sleep_for(300ms);
      s.ws.close();
    }
    CHECK(alice.get("/api/v1/jobs/" + id).json()["status"] == "running");

    // Signals: USR1 is trapped, an unknown one refused, TERM ends it with the trap's code.
    auto r = alice.request("POST", "/api/v1/jobs/" + id + "/kill?signal=SIGUSR1");
    CHECK(r.status == 204);
    CHECK(eventually([&] { return job_log(alice, id).find("got-usr1") != std::string::npos; }));
    r = alice.request("POST", "/api/v1/jobs/" + id + "/kill?signal=SIGNOPE");
    CHECK(r.status == 400);
    CHECK(r.json()["error"]["code"] == "invalid_signal");
    r = alice.request("POST", "/api/v1/jobs/" + id + "/kill?signal=15");
    CHECK(r.status == 204);
    auto job = wait_finished(alice, id);
    CHECK(job["history"]["exit_code"] == 3);
    CHECK(job_log(alice, id).find("got-term") != std::string::npos);

    // A finished job: 409 for exec, attach and kill.
    std::string code;
    CHECK(upgrade_status(alice, exec_target(id, "true", ""), &code) == 409);
    CHECK(code == "job_not_running");
    CHECK(upgrade_status(alice, "/api/v1/jobs/" + id + "/attach") == 409);
    r = alice.request("POST", "/api/v1/jobs/" + id + "/kill?signal=TERM");
    CHECK(r.status == 409);
    CHECK(r.json()["error"]["code"] == "job_not_running");
  }
}

TEST_CASE_TEMPLATE("exec: a client that reads slowly gets every byte of a large output", B, NEUROD_DB_BACKENDS) {
  // 32 MiB is more than the session lets queue for a client (4 MiB): the command waits on its
  // full pipe while the client does not read, and nothing is lost when it does.
  authtest::Env env(B::kDialect, "", executor_yaml("process"));
  auto alice = env.user("alice");
  auto id = submit_job(alice, sh_job("echo started; sleep 600"));
  wait_status(alice, id, "running");
  REQUIRE(eventually([&] { return job_log(alice, id).find("started") != std::string::npos; }));
  Session s(env, alice.token(), exec_target(id, "head -c 33554432 /dev/zero", "stderr=0"));
  std::this_thread::sleep_for(1500ms);
  auto exit = s.wait_exit();
  CHECK(exit == json({{"exit_code", 0}}));
  CHECK(s.out.size() == 33554432u);
  CHECK(s.out.find_first_not_of('\0') == std::string::npos);
}

TEST_CASE_TEMPLATE("attach: the job's own output live, and its stdin where the runtime keeps one", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", executor_yaml(runtime));
    auto alice = env.user("alice");
    auto ticker = submit_job(alice, sh_job("i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"));
    wait_status(alice, ticker, "running");
    {
      Session s(env, alice.token(), "/api/v1/jobs/" + ticker + "/attach?stderr=0");
      CHECK(s.read_until([&] { return s.out.find("tick-") != std::string::npos; }));
    }
    std::string code;
    CHECK(upgrade_status(alice, "/api/v1/jobs/" + ticker + "/attach?stdin=1", &code) == 400);
    CHECK(code == "stdin_unavailable");
    CHECK(alice.get("/api/v1/jobs/" + ticker).json()["status"] == "running");
    CHECK(alice.del("/api/v1/jobs/" + ticker).status == 204);

    if (runtime == "docker") {
      // A TTY job keeps stdin open: what attach types reaches it, and it outlives the attach.
      auto echo = submit_job(alice, sh_job("while read l; do echo \"got-$l\"; done; echo stdin-closed", {{"tty", true}}));
      wait_status(alice, echo, "running");
      {
        Session s(env, alice.token(), "/api/v1/jobs/" + echo + "/attach?tty=1&stdin=1&stderr=0");
        std::this_thread::sleep_for(300ms);
        s.send(0, "hello\r");
        CHECK(s.read_until([&] { return s.out.find("got-hello") != std::string::npos; }));
      }
      std::this_thread::sleep_for(500ms);
      CHECK(alice.get("/api/v1/jobs/" + echo).json()["status"] == "running");
      {
        Session s(env, alice.token(), "/api/v1/jobs/" + echo + "/attach?tty=1&stdin=1&stderr=0");
        std::this_thread::sleep_for(300ms);
        s.send(0, "again\r");
        CHECK(s.read_until([&] { return s.out.find("got-again") != std::string::npos; }));
        // The job ends (^D at the start of a line is end of file): the attach says how.
        s.send(0, "\x04");
        auto exit = s.wait_exit();
        CHECK(exit == json({{"exit_code", 0}}));
      }
      CHECK(wait_finished(alice, echo)["status"] == "succeeded");
      CHECK(upgrade_status(alice, "/api/v1/jobs/" + echo + "/attach?tty=1&stdin=1&stderr=0") == 409);
    }
  }
}

TEST_CASE_TEMPLATE("exec, attach and kill: who may, and malformed requests", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", executor_yaml("docker"));
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto carol = env.user("carol");
  auto id = submit_job(alice, sh_job("echo started; while true; do sleep 0.1; done"));
  wait_status(alice, id, "running");
  auto grant = alice.post("/api/v1/users/carol/permissions",
                          json::array({{{"uri", "job://test/alice/" + id}, {"action", "read"}}}));
  REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
  auto anonymous = env.anonymous();

  auto exec = exec_target(id, "sh -c 'echo pwned > /tmp/x'", "");
  auto attach = "/api/v1/jobs/" + id + "/attach";
  auto kill = "/api/v1/jobs/" + id + "/kill?signal=KILL";
  CHECK(upgrade_status(anonymous, exec) == 401);
  CHECK(upgrade_status(anonymous, attach) == 401);
  CHECK(anonymous.request("POST", kill).status == 401);
  CHECK(upgrade_status(bob, exec) == 404);
  CHECK(upgrade_status(bob, attach) == 404);
  CHECK(bob.request("POST", kill).status == 404);
  CHECK(upgrade_status(carol, exec) == 403);
  CHECK(upgrade_status(carol, attach) == 403);
  CHECK(carol.request("POST", kill).status == 403);
  // A WebSocket client refused is told so (the CLI's path).
  CHECK_THROWS_AS(Session(env, bob.token(), exec), Error);

  std::string code;
  CHECK(upgrade_status(alice, exec_target(id, "true", "tty=1"), &code) == 400);
  CHECK(code == "invalid_streams");
  CHECK(upgrade_status(alice, exec_target(id, "true", "stdout=0&stderr=0"), &code) == 400);
  CHECK(code == "invalid_streams");
  CHECK(upgrade_status(alice, "/api/v1/jobs/" + id + "/exec", &code) == 400);
  CHECK(code == "command_required");
  CHECK(upgrade_status(alice, exec_target(id, "sh -c 'oops", ""), &code) == 400);
  CHECK(code == "invalid_command");
  CHECK(upgrade_status(alice, exec_target(id, "true", "tty=maybe"), &code) == 400);
  CHECK(upgrade_status(alice, "/api/v1/jobs/job-nope/exec?cmd=true") == 404);

  // Nothing the refused callers tried took effect: the job runs, /tmp/x is not there.
  CHECK(alice.get("/api/v1/jobs/" + id).json()["status"] == "running");
  Session s(env, alice.token(), exec_target(id, "sh -c 'test -e /tmp/x && echo there || echo absent'", ""));
  CHECK(s.wait_exit() == json({{"exit_code", 0}}));
  CHECK(s.out == "absent\n");
  // The owner's plain kill (SIGKILL by default) ends it.
  CHECK(alice.request("POST", "/api/v1/jobs/" + id + "/kill").status == 204);
  CHECK(wait_finished(alice, id)["history"]["exit_code"] == 137);
}

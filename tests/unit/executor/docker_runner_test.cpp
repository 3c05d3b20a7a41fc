// The docker runner against a real engine: the Podman API service that tests/support/podman.sh
// starts (DIR/socket) and the busybox image it builds offline (DIR/image). Each case
// uses its own node id, so its containers are its own; the fixture removes them at the end.
#include "core/errors.hpp"
#include "http/client.hpp"
#include "modules/executor/docker_api.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/log_store.hpp"
#include "modules/executor/secret_files.hpp"
#include "unit/executor/runner_support.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using neurod::executor::DockerApi;
using neurod::executor::Event;
using neurod::executor::LaunchSpec;
using neurod::executor::LogStore;
using neurod::executor::Runner;
using neurod::executor::test::eventually;
using neurod::executor::test::Recorder;
using neurod::executor::test::unique;
using nlohmann::json;

// The fixture's directory: $NEUROD_TEST_PODMAN_DIR, else the build's (ctest starts it there).
std::string podman_file(const std::string& name) {
  const char* env = std::getenv("NEUROD_TEST_PODMAN_DIR");
  fs::path dir = env && *env ? fs::path(env) : fs::path(NEUROD_TEST_PODMAN_DIR);
  std::ifstream in(dir / name);
  std::string value;
  std::getline(in, value);
  REQUIRE_MESSAGE(!value.empty(), "no " << name << " in " << dir.string()
                                        << ": run through ctest, or start the fixture with `tests/support/podman.sh "
                                           "start DIR` and set NEUROD_TEST_PODMAN_DIR=DIR");
  return value;
}
std::string engine_socket() { return podman_file("socket"); }
std::string test_image() { return podman_file("image"); }

struct Fixture {
  neurod::test::TempDir tmp;
  std::string socket = engine_socket();
  std::string image = test_image();
  std::string node = unique("test-node");
  LogStore logs{tmp / "logs"};
  Recorder rec;
  std::unique_ptr<Runner> runner;

  Fixture() { runner = make(rec); }
  ~Fixture() {
    runner.reset();
    // Whatever a case left behind on its node goes, running or not.
    try {
      DockerApi api(socket, "1.41");
      for (const auto& c : api.list_containers("io.neurod.node=" + node)) api.remove_container(c.value("Id", ""));
    } catch (const std::exception& e) {
      MESSAGE("cleanup failed: " << e.what());
    }
  }

  neurod::executor::DockerOptions options() const {
    neurod::executor::DockerOptions o;
    o.socket = socket;
    // TESTING.md: without explicit ulimits no higher than the host's, the runtime fails.
    o.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
    o.pids_limit = 512;
    o.pull_timeout = 30s;
    o.node_id = node;
    o.secrets_dir = (tmp / "secrets").string();
    return o;
  }
  std::unique_ptr<Runner> make(Recorder& r) { return neurod::executor::make_docker_runner(options(), logs, r.sink()); }
  fs::path secrets_of(const std::string& id) const { return tmp / "secrets" / node / id; }

  LaunchSpec sh(const std::string& script) {
    LaunchSpec s;
    s.job_id = unique("job-test");
    s.attempt = 0;
    s.owner = "alice";
    s.project = "proj";
    s.image = image;
    s.command = {"sh", "-c", script};
    s.env = {{"NEURO_JOB_ID", s.job_id}};
    return s;
  }
  std::vector<neurod::executor::LogLine> records(const std::string& id) {
    std::vector<neurod::executor::LogLine> out;
    logs.read(id, std::nullopt, false, [&](const neurod::executor::LogLine& l) {
      out.push_back(l);
      return true;
    });
    return out;
  }
  std::vector<std::string> lines(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& l : records(id)) out.push_back(l.text);
    return out;
  }
  Event exited(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    auto e = rec.wait(id, Event::Kind::exited, timeout);
    REQUIRE_MESSAGE(e.has_value(), "no exited event for " << id);
    return *e;
  }
  std::optional<json> inspect(const std::string& id) {
    DockerApi api(socket, "1.41");
    return api.inspect_container("neurod-" + id);
  }
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// --- pure helpers ---

TEST_CASE("docker api: image references split as the engine wants them") {
  using neurod::executor::parse_docker_image_ref;
  auto r = parse_docker_image_ref("busybox:1");
  REQUIRE(r);
  CHECK(r->domain == "");
  CHECK(r->repository() == "busybox");
  CHECK(r->pull_tag() == "1");
  CHECK(r->registry() == "docker.io");

  r = parse_docker_image_ref("registry.example.com:5000/team/app");
  REQUIRE(r);
  CHECK(r->domain == "registry.example.com:5000");
  CHECK(r->path == "team/app");
  CHECK(r->pull_tag() == "latest");

  r = parse_docker_image_ref("localhost/neurod-test/busybox:1");
  REQUIRE(r);
  CHECK(r->domain == "localhost");
  CHECK(r->path == "neurod-test/busybox");

  std::string digest = "sha256:" + std::string(64, 'a');
  r = parse_docker_image_ref("host:5000/p/x@" + digest);
  REQUIRE(r);
  CHECK(r->repository() == "host:5000/p/x");
  CHECK(r->pull_tag() == digest);

  for (const char* bad :
       {"", "Busybox", "busybox:", "busy box", "a//b", "x:bad tag", "x@sha256:abc", "-x", "x/", "UPPER/x/"})
    CHECK_MESSAGE(!parse_docker_image_ref(bad), bad);
}

TEST_CASE("docker api: registry credentials become a base64url X-Registry-Auth and match by server") {
  auto h = neurod::executor::docker_registry_auth_header({"reg:5000", "bob", "s3cr?t>>"});
  CHECK(h.find_first_of("+/") == std::string::npos);
  CHECK(h.size() % 4 == 0);
  CHECK(neurod::executor::docker_registry_matches("reg:5000", "reg:5000"));
  CHECK(!neurod::executor::docker_registry_matches("reg:5001", "reg:5000"));
  CHECK(neurod::executor::docker_registry_matches("https://index.docker.io/v1/", "docker.io"));
}

TEST_CASE("docker api: the multiplexed log stream is split into timed lines across frames") {
  struct Got {
    std::string time, start, text;
    bool operator==(const Got&) const = default;
  };
  std::vector<Got> got;
  neurod::executor::DockerLogDecoder d(false, [&](const neurod::executor::DockerLogLine& l) {
    got.push_back(
        {neurod::executor::format_log_time(l.time), neurod::executor::format_log_time(l.start), std::string(l.text)});
  });
  auto frame = [](int stream, const std::string& payload) {
    std::string f(8, '\0');
    f[0] = static_cast<char>(stream);
    auto n = payload.size();
    f[4] = static_cast<char>((n >> 24) & 0xff);
    f[5] = static_cast<char>((n >> 16) & 0xff);
    f[6] = static_cast<char>((n >> 8) & 0xff);
    f[7] = static_cast<char>(n & 0xff);
    return f + payload;
  };
  std::string all = frame(1, "2026-11-23T15:04:05.123456789Z hello\n") + frame(2, "2026-11-23T15:04:06Z err\n") +
                    frame(1, "2026-11-23T15:04:07Z part") + frame(1, "2026-11-23T15:04:08Z ial\n") +
                    frame(1, "2026-11-23T15:04:09+01:00 a\nb\n") + frame(2, "2026-11-23T15:04:10Z no newline");
  // Byte by byte: frames and lines cut anywhere.
  for (char c : all) d.feed(std::string_view(&c, 1));
  CHECK(got.size() == 5);
  REQUIRE(d.pending_start());
  CHECK(neurod::executor::format_log_time(*d.pending_start()) == "2026-11-23T15:04:10.000000000Z");
  d.finish();
  CHECK(!d.pending_start());
  REQUIRE(got.size() == 6);
  auto t = [](const char* s) { return std::string("2026-11-23T") + s + "Z"; };
  CHECK(got[0] == Got{t("15:04:05.123456789"), t("15:04:05.123456789"), "hello"});
  CHECK(got[1] == Got{t("15:04:06.000000000"), t("15:04:06.000000000"), "err"});
  // A line in pieces has the time of its end, and its start.
  CHECK(got[2] == Got{t("15:04:08.000000000"), t("15:04:07.000000000"), "partial"});
  CHECK(got[3] == Got{t("14:04:09.000000000"), t("14:04:09.000000000"), "a"});
  CHECK(got[4] == Got{t("14:04:09.000000000"), t("14:04:09.000000000"), "b"});
  CHECK(got[5] == Got{t("15:04:10.000000000"), t("15:04:10.000000000"), "no newline"});
}

TEST_CASE("docker api: the raw (TTY) log stream is split into timed lines") {
  std::vector<std::string> got;
  neurod::executor::DockerLogDecoder d(true, [&](const neurod::executor::DockerLogLine& l) {
    got.push_back(neurod::executor::format_log_time(l.time) + " " + std::string(l.text));
  });
  d.feed("2026-11-23T15:04:05Z one\r\n2026-11-23T15:0");
  d.feed("4:06Z two\r\n2026-11-23T15:04:07Z three");
  d.finish();
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "2026-11-23T15:04:05.000000000Z one\r");
  CHECK(got[2] == "2026-11-23T15:04:07.000000000Z three");
}

// --- the client and the engine ---

TEST_CASE("http client: unix:// URLs reach a local socket, and cancel() cuts a long wait") {
  auto socket = engine_socket();
  neurod::http::Client c("unix://" + socket);
  CHECK(c.url().str() == "unix://" + socket);
  auto r = c.get("/_ping");
  CHECK(r.status == 200);
  CHECK(r.body == "OK");
  CHECK(c.get("/v1.41/version").json().contains("ApiVersion"));  // the connection is reused
  CHECK_THROWS_AS(neurod::http::Url::parse("unix://relative.sock"), neurod::Error);

  // A long poll with no timeout, cut from another thread.
  neurod::http::Client slow("unix://" + socket, {.timeout = neurod::Duration::zero()});
  std::thread cutter([&] {
    std::this_thread::sleep_for(300ms);
    slow.cancel();
  });
  auto start = std::chrono::steady_clock::now();
  // Events stream until the client goes away.
  CHECK_THROWS_AS(slow.stream("GET", "/v1.41/events", [](std::string_view) { return true; }), neurod::Error);
  cutter.join();
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK_THROWS_AS(slow.get("/_ping"), neurod::Error);  // cancelled for good

  neurod::http::Client missing("unix:///nonexistent/neurod.sock");
  CHECK_THROWS_AS(missing.get("/_ping"), neurod::Error);
}

TEST_CASE("docker runner: describe() names the engine, an unreachable socket is unavailable") {
  Fixture f;
  CHECK(f.runner->kind() == "docker");
  CHECK(f.runner->describe().starts_with("podman "));
  CHECK(f.runner->describe().ends_with(" at " + f.socket));

  auto o = f.options();
  o.socket = (f.tmp / "nothing.sock").string();
  try {
    neurod::executor::make_docker_runner(o, f.logs, f.rec.sink());
    FAIL("expected an error");
  } catch (const neurod::Error& e) {
    CHECK(e.code() == neurod::errc::unavailable);
    CHECK(std::string(e.what()).find("cannot reach the container engine at " + o.socket) != std::string::npos);
    CHECK(std::string(e.what()).find("modules.executor.docker.socket") != std::string::npos);
  }
}

TEST_CASE("docker runner: find_engine_socket finds $DOCKER_HOST when it answers") {
  auto socket = engine_socket();
  const char* old = std::getenv("DOCKER_HOST");
  std::string saved = old ? old : "";
  ::setenv("DOCKER_HOST", ("unix://" + socket).c_str(), 1);
  auto found = neurod::executor::find_engine_socket();
  if (old)
    ::setenv("DOCKER_HOST", saved.c_str(), 1);
  else
    ::unsetenv("DOCKER_HOST");
  REQUIRE(found);
  CHECK(*found == socket);
}

// --- jobs ---

TEST_CASE("docker runner: output reaches the log store with the engine's times and exit 0 is Completed") {
  Fixture f;
  auto s = f.sh("echo one; echo two >&2; printf 'a\\nb\\n'; printf partial");
  auto before = neurod::executor::Clock::now();
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  auto after = neurod::executor::Clock::now();
  CHECK(e.reason == "Completed");
  CHECK(e.exit_code == 0);
  CHECK(e.attempt == 0);
  auto events = f.rec.of(s.job_id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Event::Kind::running);
  // Every line is stored before the exited event goes out.
  auto lines = f.lines(s.job_id);
  CHECK(sorted(lines) == sorted({"one", "two", "a", "b", "partial"}));
  CHECK(std::find(lines.begin(), lines.end(), "a") < std::find(lines.begin(), lines.end(), "b"));
  for (const auto& l : f.records(s.job_id)) {
    CHECK(l.time >= std::chrono::floor<std::chrono::seconds>(before) - 1s);
    CHECK(l.time <= after + 1s);
  }
}

TEST_CASE("docker runner: a non-zero exit is Error with the code") {
  Fixture f;
  auto s = f.sh("echo failing; exit 3");
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Error");
  CHECK(e.exit_code == 3);
  CHECK(e.message == "exit code 3");
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"failing"});
}

TEST_CASE("docker runner: a job over its memory limit is OOMKilled") {
  Fixture f;
  // sh (PID 1) holds 100 MB in a variable under a 16 MiB limit without swap.
  auto s = f.sh("x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived");
  s.memory = 16 * 1024 * 1024;
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "OOMKilled");
  CHECK(e.exit_code == 137);
  auto info = f.inspect(s.job_id);
  REQUIRE(info);
  CHECK((*info)["HostConfig"]["Memory"] == 16 * 1024 * 1024);
  CHECK((*info)["HostConfig"]["MemorySwap"] == 16 * 1024 * 1024);
  CHECK((*info)["State"]["OOMKilled"] == true);  // the engine saw it (the fixture's conmon fix)
}

TEST_CASE("docker runner: a command that does not exist is ContainerCannotRun") {
  Fixture f;
  auto s = f.sh("");
  s.command = {"/no/such/program", "arg"};
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "ContainerCannotRun");
  CHECK(e.exit_code == 127);
  CHECK(e.message.find("no such file or directory") != std::string::npos);
  CHECK(f.rec.of(s.job_id).size() == 1);  // never running

  auto t = f.sh("");
  t.command = {"nosuchcommand"};
  f.runner->launch(t);
  auto e2 = f.exited(t.job_id);
  CHECK(e2.reason == "ContainerCannotRun");
  CHECK(e2.exit_code == 127);
  CHECK(e2.message.find("executable file not found") != std::string::npos);
}

TEST_CASE("docker runner: a missing image is ErrImagePull after Pulling, a malformed one InvalidImageName") {
  Fixture f;
  auto s = f.sh("true");
  s.image = "localhost/neurod-test/missing:1";
  s.registry_auth = neurod::executor::RegistryAuth{"localhost", "bob", "hunter2"};
  f.runner->launch(s);
  auto e = f.exited(s.job_id, 30s);
  CHECK(e.reason == "ErrImagePull");
  CHECK(e.message.find("localhost/neurod-test/missing:1") != std::string::npos);
  CHECK(e.message.find("hunter2") == std::string::npos);
  auto events = f.rec.of(s.job_id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Event::Kind::pulling);
  CHECK(events[0].reason == "Pulling");
  CHECK(!f.inspect(s.job_id));

  auto bad = f.sh("true");
  bad.image = "Not A/Valid:image";
  f.runner->launch(bad);
  auto e2 = f.exited(bad.job_id);
  CHECK(e2.reason == "InvalidImageName");
  CHECK(f.rec.of(bad.job_id).size() == 1);
}

TEST_CASE("docker runner: stop ends a job within the grace period as Killed") {
  Fixture f;
  // sh as PID 1 ignores SIGTERM: the engine kills it when the grace period ends.
  auto s = f.sh("sleep 60");
  f.runner->launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  auto start = std::chrono::steady_clock::now();
  f.runner->stop(s.job_id, 1s);
  auto e = f.exited(s.job_id);
  CHECK(std::chrono::steady_clock::now() - start < 6s);
  CHECK(e.reason == "Killed");
  CHECK(e.exit_code == 137);

  // One that handles SIGTERM ends at once, still Killed.
  auto t = f.sh("trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.1; done");
  f.runner->launch(t);
  REQUIRE(eventually([&] { return f.lines(t.job_id).size() == 1; }));
  start = std::chrono::steady_clock::now();
  f.runner->stop(t.job_id, 30s);
  auto e2 = f.exited(t.job_id);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(e2.reason == "Killed");
  CHECK(e2.exit_code == 0);
  CHECK(f.lines(t.job_id) == std::vector<std::string>{"up", "bye"});

  f.runner->stop("job-unknown", 1s);  // a no-op
}

TEST_CASE("docker runner: a stop during the pull ends the launch as Killed without a container") {
  Fixture f;
  auto s = f.sh("true");
  s.image = "localhost/neurod-test/missing:2";
  f.runner->launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::pulling));
  f.runner->stop(s.job_id, 1s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Killed");
  CHECK(!f.inspect(s.job_id));
}

TEST_CASE(
    "docker runner: env, labels, limits, working dir and mounts are applied, and remove() deletes the container") {
  Fixture f;
  fs::create_directories(f.tmp / "rw");
  f.tmp.write("ro/data.txt", "from the host\n");
  auto s = f.sh(
      "echo id=$NEURO_JOB_ID; echo secret=${SECRET_TOKEN}; pwd; cat /in/data.txt; "
      "echo written > /out/result.txt && echo rw-ok; touch /in/x 2>/dev/null || echo ro-ok");
  s.env.emplace_back("SECRET_TOKEN", "t0ps3cret");
  s.working_dir = "/tmp";
  s.cpu = 0.5;
  s.memory = 64 * 1024 * 1024;
  s.shm = 8 * 1024 * 1024;
  s.attempt = 2;
  s.mounts = {{(f.tmp / "ro").string(), "/in", true}, {(f.tmp / "rw").string(), "/out", false}};
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  CHECK(e.attempt == 2);
  CHECK(f.lines(s.job_id) ==
        std::vector<std::string>{"id=" + s.job_id, "secret=t0ps3cret", "/tmp", "from the host", "rw-ok", "ro-ok"});
  std::ifstream result(f.tmp / "rw" / "result.txt");
  std::string text;
  std::getline(result, text);
  CHECK(text == "written");

  auto info = f.inspect(s.job_id);
  REQUIRE(info);
  auto labels = (*info)["Config"]["Labels"];
  CHECK(labels["io.neurod.job"] == s.job_id);
  CHECK(labels["io.neurod.attempt"] == "2");
  CHECK(labels["io.neurod.node"] == f.node);
  CHECK(labels["io.neurod.owner"] == "alice");
  CHECK(labels["io.neurod.project"] == "proj");
  auto host = (*info)["HostConfig"];
  CHECK(host["NanoCpus"] == 500000000);
  CHECK(host["PidsLimit"] == 512);
  CHECK(host["ShmSize"] == 8 * 1024 * 1024);
  CHECK(host["RestartPolicy"]["Name"].get<std::string>() != "always");
  CHECK((*info)["Config"]["WorkingDir"] == "/tmp");

  f.runner->remove(s.job_id);
  CHECK(!f.inspect(s.job_id));
  f.runner->remove(s.job_id);  // twice is fine
}

TEST_CASE("docker runner: a TTY job's raw log is stored line by line") {
  Fixture f;
  auto s = f.sh("echo one; echo two");
  s.tty = true;
  f.runner->launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"one", "two"});
}

TEST_CASE("docker runner: a running job outlives its runner and is adopted without duplicate lines") {
  Fixture f;
  fs::create_directories(f.tmp / "ctl");
  // Bursts (many lines share each whole-second engine timestamp) until the test says stop.
  auto s = f.sh("i=0; while [ ! -e /ctl/done ]; do i=$((i+1)); seq 1 150 | sed \"s/^/line $i./\"; sleep 0.25; done");
  s.mounts = {{(f.tmp / "ctl").string(), "/ctl", true}};
  f.runner->launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() >= 1; }));
  auto start = std::chrono::steady_clock::now();
  f.runner.reset();  // as if neurod went away: the container keeps running
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  std::this_thread::sleep_for(500ms);

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{s.job_id, 0}});
  auto running = again.wait(s.job_id, Event::Kind::running, 3s);
  CHECK(running.has_value());
  std::this_thread::sleep_for(1s);
  f.tmp.write("ctl/done", "");
  auto e = again.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Completed");
  CHECK(again.of(s.job_id).front().kind == Event::Kind::running);
  auto lines = f.lines(s.job_id);
  REQUIRE(!lines.empty());
  std::vector<std::string> expected;
  int rounds = static_cast<int>(lines.size() / 150);
  for (int i = 1; i <= rounds; ++i)
    for (int j = 1; j <= 150; ++j) expected.push_back("line " + std::to_string(i) + "." + std::to_string(j));
  CHECK(rounds >= 4);
  CHECK(lines == expected);
}

TEST_CASE("docker runner: a job that ended while no runner existed is collected by adopt with its logs") {
  Fixture f;
  auto s = f.sh("echo a; sleep 1; echo b; exit 4");
  f.runner->launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  f.runner.reset();
  REQUIRE(eventually([&] {
    auto info = f.inspect(s.job_id);
    return info && (*info)["State"]["Running"] == false;
  }));

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{s.job_id, 0}});
  auto e = again.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Error");
  CHECK(e->exit_code == 4);
  CHECK(again.of(s.job_id).size() == 1);
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("docker runner: adopt reports missing attempts as NotFound and removes containers nobody expects") {
  Fixture f;
  // A container of this node that no job expects (left over from a finished job).
  DockerApi api(f.socket, "1.41");
  json body = {{"Image", f.image},
               {"Cmd", {"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"}},
               {"Labels", {{"io.neurod.node", f.node}, {"io.neurod.job", "job-stray"}, {"io.neurod.attempt", "0"}}},
               {"HostConfig",
                {{"Ulimits",
                  {{{"Name", "nofile"}, {"Soft", 1024}, {"Hard", 1024}},
                   {{"Name", "nproc"}, {"Soft", 4096}, {"Hard", 4096}}}}}}};
  auto stray = api.create_container(unique("neurod-stray"), body);
  api.start_container(stray);
  // Another node's container is not ours to touch.
  auto other_node = unique("test-other");
  body["Labels"]["io.neurod.node"] = other_node;
  auto foreign = api.create_container(unique("neurod-foreign"), body);

  f.runner->adopt({{"job-gone", 1}});
  auto e = f.exited("job-gone");
  CHECK(e.reason == "NotFound");
  CHECK(e.attempt == 1);
  CHECK(e.message == "the container vanished while neurod was down");
  CHECK(eventually([&] { return !api.inspect_container(stray); }));
  CHECK(api.inspect_container(foreign));
  api.remove_container(foreign);
}

TEST_CASE("docker runner: shutdown is prompt and leaves jobs running, and an attempt launched twice runs once") {
  Fixture f;
  auto s = f.sh("echo up; sleep 30");
  f.runner->launch(s);
  f.runner->launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() == 1; }));
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"up"});
  CHECK(f.rec.of(s.job_id).size() == 1);
  auto start = std::chrono::steady_clock::now();
  f.runner->shutdown();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  auto info = f.inspect(s.job_id);
  REQUIRE(info);
  CHECK((*info)["State"]["Running"] == true);
  CHECK(f.rec.of(s.job_id).size() == 1);  // no exited event for a job that still runs
}

TEST_CASE("docker runner: a burst of output is stored whole and in order") {
  Fixture f;
  auto s = f.sh("seq 1 20000; for i in 1 2 3; do echo err$i >&2; done");
  f.runner->launch(s);
  auto e = f.exited(s.job_id, 20s);
  CHECK(e.reason == "Completed");
  auto lines = f.lines(s.job_id);
  CHECK(lines.size() == 20003);
  std::vector<std::string> out, err;
  for (const auto& l : lines) (l.starts_with("err") ? err : out).push_back(l);
  std::vector<std::string> expected;
  for (int i = 1; i <= 20000; ++i) expected.push_back(std::to_string(i));
  CHECK(out == expected);
  CHECK(err == std::vector<std::string>{"err1", "err2", "err3"});
}

TEST_CASE("docker runner: adopt starts a container that was created but never started") {
  Fixture f;
  auto job_id = unique("job-test");
  DockerApi api(f.socket, "1.41");
  json body = {{"Image", f.image},
               {"Cmd", {"sh", "-c", "echo late start"}},
               {"Labels", {{"io.neurod.node", f.node}, {"io.neurod.job", job_id}, {"io.neurod.attempt", "3"}}},
               {"HostConfig",
                {{"Ulimits",
                  {{{"Name", "nofile"}, {"Soft", 1024}, {"Hard", 1024}},
                   {{"Name", "nproc"}, {"Soft", 4096}, {"Hard", 4096}}}}}}};
  api.create_container("neurod-" + job_id, body);
  f.runner->adopt({{job_id, 3}});
  auto e = f.exited(job_id);
  CHECK(e.reason == "Completed");
  CHECK(e.attempt == 3);
  auto events = f.rec.of(job_id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Event::Kind::running);
  CHECK(f.lines(job_id) == std::vector<std::string>{"late start"});
}

TEST_CASE("docker runner: secret files are read-only at their targets, 0444 in a 0700 dir, gone when the attempt ends") {
  Fixture f;
  fs::create_directories(f.tmp / "out");
  std::string value = unique("s3cr3t-file");
  // The test image has no /etc and no /var: the engine makes the parents.
  auto s = f.sh(
      "wc -c < /etc/key; cat /var/secrets/token; echo; stat -c %a /etc/key; "
      "echo x 2>/dev/null > /etc/key || echo ro; cp /etc/key /out/key-copy; echo ready; sleep 30");
  s.secret_files = {{"/etc/key", value}, {"/var/secrets/token", "tok"}};
  s.mounts = {{(f.tmp / "out").string(), "/out", false}};
  f.runner->launch(s);
  REQUIRE(eventually(
      [&] {
        auto l = f.lines(s.job_id);
        return !l.empty() && l.back() == "ready";
      },
      20s));
  std::string lines;
  for (const auto& l : f.lines(s.job_id)) lines += (lines.empty() ? "" : " ") + l;
  CHECK(lines == std::to_string(value.size()) + " tok 444 ro ready");
  auto dir = f.secrets_of(s.job_id);
  CHECK((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all);
  REQUIRE(fs::exists(dir / "0"));
  CHECK((fs::status(dir / "0").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read));
  std::ifstream copy(f.tmp / "out" / "key-copy");
  std::string copied;
  std::getline(copy, copied);
  CHECK(copied == value);
  auto info = f.inspect(s.job_id);
  REQUIRE(info);
  int read_only = 0;
  for (const auto& m : (*info)["Mounts"])
    if (m.value("Destination", "") == "/etc/key" || m.value("Destination", "") == "/var/secrets/token")
      read_only += m.value("RW", true) ? 0 : 1;
  CHECK(read_only == 2);

  f.runner->stop(s.job_id, 1s);
  CHECK(f.exited(s.job_id).reason == "Killed");
  CHECK_FALSE(fs::exists(dir));

  // remove() takes the files of a job that still runs.
  auto running = f.sh("echo up; sleep 30");
  running.secret_files = {{"/k", "v"}};
  f.runner->launch(running);
  REQUIRE(f.rec.wait(running.job_id, Event::Kind::running, 20s));
  REQUIRE(fs::exists(f.secrets_of(running.job_id)));
  f.runner->remove(running.job_id);
  CHECK_FALSE(fs::exists(f.secrets_of(running.job_id)));

  // A secret inside a volume is refused before anything is made.
  auto inside = f.sh("true");
  inside.mounts = {{(f.tmp / "out").string(), "/out", false}};
  inside.secret_files = {{"/out/key", "v"}};
  f.runner->launch(inside);
  auto e = f.exited(inside.job_id);
  CHECK(e.reason == "ContainerCannotRun");
  CHECK(e.message.find("inside the volume at /out") != std::string::npos);
  CHECK_FALSE(fs::exists(f.tmp / "out" / "key"));
  CHECK_FALSE(f.inspect(inside.job_id));
}

TEST_CASE("docker runner: adopt removes the secret files of jobs nobody expects and keeps the others'") {
  Fixture f;
  auto kept = f.sh("echo up; sleep 30");
  kept.secret_files = {{"/k", "v"}};
  f.runner->launch(kept);
  REQUIRE(f.rec.wait(kept.job_id, Event::Kind::running, 20s));
  f.runner.reset();
  {
    neurod::executor::SecretFiles stray(f.tmp / "secrets", f.node);
    stray.materialise("job-stray", {{"/k", "v"}});
  }
  Recorder rec;
  f.runner = f.make(rec);
  f.runner->adopt({{kept.job_id, 0}});
  CHECK_FALSE(fs::exists(f.secrets_of("job-stray")));
  CHECK(fs::exists(f.secrets_of(kept.job_id) / "0"));
  REQUIRE(rec.wait(kept.job_id, Event::Kind::running));
  f.runner->stop(kept.job_id, 1s);
  REQUIRE(rec.wait(kept.job_id, Event::Kind::exited));
  CHECK_FALSE(fs::exists(f.secrets_of(kept.job_id)));
  f.runner.reset();  // before `rec` goes
}

TEST_CASE("docker api: the engine's log file is decoded in Podman's k8s-file and Docker's json-file forms") {
  using neurod::executor::EngineLogFileDecoder;
  auto run = [](const std::string& bytes, bool byte_by_byte, EngineLogFileDecoder::Format* fmt = nullptr) {
    std::vector<std::string> got;
    EngineLogFileDecoder d([&](const neurod::executor::DockerLogLine& l) {
      got.push_back(neurod::executor::format_log_time(l.start) + " " + neurod::executor::format_log_time(l.time) +
                    " " + std::string(l.text));
    });
    bool ok = true;
    if (byte_by_byte)
      for (char c : bytes) ok = d.feed(std::string_view(&c, 1)) && ok;
    else
      ok = d.feed(bytes);
    CHECK(ok);
    if (fmt) *fmt = d.format();
    d.finish();
    return got;
  };
  // k8s-file: pieces (P) joined per stream up to F, stdout and stderr apart, times with offsets.
  std::string k8s =
      "2026-12-06T16:36:43.311656329+00:00 stdout F one\n"
      "2026-12-06T16:36:43.311656329+00:00 stdout P par\n"
      "2026-12-06T16:36:43.400000000+00:00 stderr F err\n"
      "2026-12-06T16:36:43.512536043+00:00 stdout F tial\n"
      "2026-12-06T16:36:44.000000001+01:00 stdout F\n"
      "2026-12-06T16:36:45.5Z stdout P unended";
  for (bool bb : {false, true}) {
    EngineLogFileDecoder::Format fmt{};
    auto got = run(k8s + "\n", bb, &fmt);
    CHECK(fmt == EngineLogFileDecoder::Format::k8s_file);
    REQUIRE(got.size() == 5);
    CHECK(got[0] == "2026-12-06T16:36:43.311656329Z 2026-12-06T16:36:43.311656329Z one");
    CHECK(got[1] == "2026-12-06T16:36:43.400000000Z 2026-12-06T16:36:43.400000000Z err");
    CHECK(got[2] == "2026-12-06T16:36:43.311656329Z 2026-12-06T16:36:43.512536043Z partial");
    CHECK(got[3] == "2026-12-06T15:36:44.000000001Z 2026-12-06T15:36:44.000000001Z ");
    CHECK(got[4] == "2026-12-06T16:36:45.500000000Z 2026-12-06T16:36:45.500000000Z unended");  // flushed by finish()
  }
  // A record not ended by "\n" yet waits (it may be half-written).
  {
    std::vector<std::string> got;
    EngineLogFileDecoder d([&](const neurod::executor::DockerLogLine& l) { got.emplace_back(l.text); });
    CHECK(d.feed("2026-12-06T16:36:43.3Z stdout F whole\n2026-12-06T16:36:43.4Z stdout F half"));
    CHECK(got == std::vector<std::string>{"whole"});
    CHECK(!d.pending_start());
    CHECK(d.feed("-written\n"));
    CHECK(got == std::vector<std::string>{"whole", "half-written"});
  }
  // json-file: a record whose log has no "\n" is a piece.
  std::string js =
      R"({"log":"hello\n","stream":"stdout","time":"2026-12-06T16:36:43.1Z"})" "\n"
      R"({"log":"big ","stream":"stderr","time":"2026-12-06T16:36:43.2Z"})" "\n"
      R"({"log":"line\r\n","stream":"stderr","time":"2026-12-06T16:36:43.3Z"})" "\n"
      R"({"log":"\u00e9t\u00e9\n","stream":"stdout","time":"2026-12-06T16:36:43.4Z"})" "\n";
  for (bool bb : {false, true}) {
    EngineLogFileDecoder::Format fmt{};
    auto got = run(js, bb, &fmt);
    CHECK(fmt == EngineLogFileDecoder::Format::json_file);
    REQUIRE(got.size() == 3);
    CHECK(got[0] == "2026-12-06T16:36:43.100000000Z 2026-12-06T16:36:43.100000000Z hello");
    CHECK(got[1] == "2026-12-06T16:36:43.200000000Z 2026-12-06T16:36:43.300000000Z big line");
    CHECK(got[2] == "2026-12-06T16:36:43.400000000Z 2026-12-06T16:36:43.400000000Z \xc3\xa9t\xc3\xa9");
  }
  // Anything else is refused, so that the runner reads the API instead.
  EngineLogFileDecoder bad([](const neurod::executor::DockerLogLine&) {});
  CHECK_FALSE(bad.feed("this is not a log record\n"));
  EngineLogFileDecoder bad_json([](const neurod::executor::DockerLogLine&) {});
  CHECK_FALSE(bad_json.feed("{\"message\":\"no log key\"}\n"));
}

TEST_CASE("docker runner: a running job's lines reach the store within a fraction of a second") {
  Fixture f;
  // One line, then a long pause: the line must be stored while the job still runs, long
  // before the API's polling (1 s) and its settle time (2 s) would have stored it.
  auto s = f.sh("sleep 0.5; echo first; sleep 5; echo second");
  f.runner->launch(s);
  REQUIRE(eventually([&] { return !f.rec.of(s.job_id).empty(); }, 10s));  // running
  REQUIRE(eventually([&] { return !f.lines(s.job_id).empty(); }, 10s));
  auto stored = f.records(s.job_id).front();
  auto seen = neurod::executor::Clock::now();
  // The store was checked every few ms; the line's own time (the engine's) is when it was printed.
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"first"});
  CHECK(seen - stored.time < 1s);
  f.runner->stop(s.job_id, std::chrono::seconds(0));
  f.exited(s.job_id, 20s);
}

TEST_CASE("docker runner: runners switching between the log file and the API lose and repeat no line") {
  Fixture f;
  fs::create_directories(f.tmp / "ctl");
  // Bursts: many lines share each whole second of the API's times, none of the file's.
  auto s = f.sh("i=0; while [ ! -e /ctl/done ]; do i=$((i+1)); seq 1 150 | sed \"s/^/line $i./\"; sleep 0.25; done");
  s.mounts = {{(f.tmp / "ctl").string(), "/ctl", true}};
  f.runner->launch(s);  // reads the log file
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() >= 150; }));
  std::this_thread::sleep_for(700ms);
  f.runner.reset();

  auto api_only = f.options();
  api_only.read_log_file = false;
  Recorder second;
  f.runner = neurod::executor::make_docker_runner(api_only, f.logs, second.sink());  // the API, after file times
  f.runner->adopt({{s.job_id, 0}});
  REQUIRE(second.wait(s.job_id, Event::Kind::running, 3s));
  auto had = f.lines(s.job_id).size();
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() > had; }, 10s));
  std::this_thread::sleep_for(1200ms);
  f.runner.reset();

  Recorder third;
  f.runner = f.make(third);  // the file again, after API times
  f.runner->adopt({{s.job_id, 0}});
  REQUIRE(third.wait(s.job_id, Event::Kind::running, 3s));
  std::this_thread::sleep_for(1s);
  f.tmp.write("ctl/done", "");
  auto e = third.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Completed");
  auto lines = f.lines(s.job_id);
  std::vector<std::string> expected;
  int rounds = static_cast<int>(lines.size() / 150);
  for (int i = 1; i <= rounds; ++i)
    for (int j = 1; j <= 150; ++j) expected.push_back("line " + std::to_string(i) + "." + std::to_string(j));
  CHECK(rounds >= 8);
  CHECK(lines == expected);
  for (std::size_t i = 0; i < std::min(lines.size(), expected.size()); ++i)
    if (lines[i] != expected[i]) {
      std::string around;
      auto recs = f.records(s.job_id);
      for (std::size_t k = i > 3 ? i - 3 : 0; k < std::min(lines.size(), i + 4); ++k)
        around += lines[k] + " @" + neurod::executor::format_log_time(recs[k].time) + " | ";
      MESSAGE("first difference at " << i << " of " << lines.size() << ": " << around);
      break;
    }
}

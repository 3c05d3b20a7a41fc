// The process runner against the real thing: bubblewrap sandboxes and kernel cgroups.
// Each case makes its own run dir, log store and cgroup parent, so cases can run in
// parallel processes.
#include "modules/executor/cgroups.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/log_store.hpp"
#include "modules/executor/secret_files.hpp"
#include "unit/executor/runner_support.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
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
using neurod::executor::Event;
using neurod::executor::LaunchSpec;
using neurod::executor::LogStore;
using neurod::executor::Runner;
using neurod::executor::test::eventually;
using neurod::executor::test::Recorder;
using neurod::executor::test::unique;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Fixture {
  neurod::test::TempDir tmp;
  std::string parent = unique("neurod-test");
  LogStore logs{tmp / "logs"};
  Recorder rec;
  std::unique_ptr<Runner> runner;
  std::vector<std::string> launched;

  Fixture() { runner = make(rec); }
  ~Fixture() {
    if (!runner) runner = make(rec);
    for (const auto& id : launched) runner->remove(id);
    runner.reset();
    neurod::executor::cgroups::Manager(parent).remove_parent();
  }

  neurod::executor::ProcessOptions options() const {
    neurod::executor::ProcessOptions o;
    o.run_dir = (tmp / "run").string();
    o.cgroup_parent = parent;
    o.pids_limit = 256;
    o.node_id = "node-test";
    o.secrets_dir = (tmp / "secrets").string();
    return o;
  }
  std::unique_ptr<Runner> make(Recorder& r) { return neurod::executor::make_process_runner(options(), logs, r.sink()); }
  fs::path run_dir(const std::string& id) const { return tmp / "run" / id; }
  fs::path secrets_of(const std::string& id) const { return tmp / "secrets" / "node-test" / id; }

  LaunchSpec spec(std::vector<std::string> command) {
    LaunchSpec s;
    s.job_id = unique("job-test");
    s.attempt = 0;
    s.command = std::move(command);
    s.env = {{"NEURO_JOB_ID", s.job_id}};
    return s;
  }
  LaunchSpec sh(const std::string& script) { return spec({"/bin/sh", "-c", script}); }
  void launch(const LaunchSpec& s) {
    launched.push_back(s.job_id);
    runner->launch(s);
  }
  std::vector<std::string> lines(const std::string& id) {
    std::vector<std::string> out;
    logs.read(id, std::nullopt, false, [&](const neurod::executor::LogLine& l) {
      out.push_back(l.text);
      return true;
    });
    return out;
  }
  Event exited(const std::string& id, std::chrono::milliseconds timeout = 8s) {
    auto e = rec.wait(id, Event::Kind::exited, timeout);
    REQUIRE_MESSAGE(e.has_value(), "no exited event for " << id);
    return *e;
  }
};

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : " ") + l;
  return out;
}

bool cgroups_available(const std::string& parent) {
  neurod::executor::cgroups::Manager m(parent);
  if (!m.available()) MESSAGE("cgroups are not available here (" << m.problem() << "): skipping the cgroup checks");
  return m.available();
}

}  // namespace

TEST_CASE("process runner: output reaches the log store and exit 0 is Completed") {
  Fixture f;
  CHECK(f.runner->kind() == "process");
  CHECK(f.runner->describe().find("bubblewrap") != std::string::npos);
  auto s = f.sh("echo one; echo two >&2; printf three");
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  CHECK(e.exit_code == 0);
  CHECK(e.attempt == 0);
  auto events = f.rec.of(s.job_id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Event::Kind::running);
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("process runner: a non-zero exit is Error with the code") {
  Fixture f;
  auto s = f.sh("echo failing; exit 3");
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Error");
  CHECK(e.exit_code == 3);
  CHECK(e.message == "exit code 3");
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"failing"});
}

TEST_CASE("process runner: the job gets its environment, and secrets stay off command lines and disk") {
  Fixture f;
  std::string secret = unique("s3cr3t-value");
  auto s = f.sh(
      "echo $NEURO_JOB_ID; echo ${#SECRET_TOKEN}; uname -n; echo $HOME; pwd; env | cut -d= -f1 | sort | tr '\\n' ' ';"
      "echo; sleep 1");
  s.env.emplace_back("SECRET_TOKEN", secret);
  f.launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  // While it runs: no process on the host shows the value in its argv.
  for (const auto& entry : fs::directory_iterator("/proc")) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = slurp(entry.path() / "cmdline");
    CHECK_MESSAGE(cmdline.find(secret) == std::string::npos, "pid " << name << " shows the secret");
  }
  for (const auto& entry : fs::recursive_directory_iterator(f.run_dir(s.job_id)))
    if (entry.is_regular_file()) CHECK(slurp(entry.path()).find(secret) == std::string::npos);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  CHECK(f.lines(s.job_id) == std::vector<std::string>{s.job_id, std::to_string(secret.size()), s.job_id, "/tmp", "/",
                                                      "HOME NEURO_JOB_ID PATH PWD SECRET_TOKEN "});
}

TEST_CASE("process runner: a job over its memory limit is OOMKilled") {
  Fixture f;
  if (!cgroups_available(f.parent)) return;
  // The shell keeps the command substitution's 200 MB in its own memory.
  auto s = f.sh("echo start; x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived ${#x}");
  s.memory = 32ull << 20;
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "OOMKilled");
  CHECK(e.exit_code == 137);
  CHECK(e.message.find("32") != std::string::npos);
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"start"});
}

TEST_CASE("process runner: a command that does not exist is ContainerCannotRun") {
  Fixture f;
  auto s = f.spec({"no-such-command-here", "arg"});
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "ContainerCannotRun");
  CHECK(e.exit_code == 127);
  CHECK(e.message == "command not found: no-such-command-here");

  auto bad_mount = f.sh("true");
  bad_mount.mounts.push_back({(f.tmp / "missing").string(), "/data", true});
  f.launch(bad_mount);
  auto m = f.exited(bad_mount.job_id);
  CHECK(m.reason == "ContainerCannotRun");
  CHECK(m.message.find("missing") != std::string::npos);

  auto empty = f.spec({});
  f.launch(empty);
  CHECK(f.exited(empty.job_id).reason == "ContainerCannotRun");
}

TEST_CASE("process runner: stop ends a job with SIGTERM within the grace period") {
  Fixture f;
  auto s = f.spec({"sleep", "30"});
  f.launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  auto t0 = std::chrono::steady_clock::now();
  f.runner->stop(s.job_id, 5s);
  auto e = f.exited(s.job_id, 4s);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(e.reason == "Killed");
  CHECK(e.exit_code == 143);
  f.runner->stop("job-unknown", 1s);  // a no-op
}

TEST_CASE("process runner: a job that ignores SIGTERM is killed when the grace period ends") {
  Fixture f;
  auto s = f.sh("trap '' TERM; echo ready; while :; do sleep 0.1; done");
  f.launch(s);
  REQUIRE(eventually([&] { return !f.lines(s.job_id).empty(); }));
  auto t0 = std::chrono::steady_clock::now();
  f.runner->stop(s.job_id, 1s);
  auto e = f.exited(s.job_id, 6s);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 900ms);
  CHECK(took < 4s);
  CHECK(e.reason == "Killed");
  CHECK(e.exit_code == 137);
}

TEST_CASE("process runner: mounts are read-only or read-write as asked, the working dir is writable") {
  Fixture f;
  fs::create_directories(f.tmp / "ro");
  fs::create_directories(f.tmp / "rw");
  auto s = f.sh("echo x > /ro/f || echo ro refused; echo y > /rw/f && echo rw ok; pwd; echo z > here && echo wd ok");
  s.mounts.push_back({(f.tmp / "ro").string(), "/ro", true});
  s.mounts.push_back({(f.tmp / "rw").string(), "/rw", false});
  s.working_dir = "/workspace/project";
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  auto lines = f.lines(s.job_id);
  CHECK(std::find(lines.begin(), lines.end(), "ro refused") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "rw ok") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "/workspace/project") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "wd ok") != lines.end());
  CHECK_FALSE(fs::exists(f.tmp / "ro" / "f"));
  CHECK(slurp(f.tmp / "rw" / "f") == "y\n");
}

TEST_CASE("process runner: limits are written to the job's cgroups, which remove() deletes") {
  Fixture f;
  if (!cgroups_available(f.parent)) return;
  auto s = f.sh("cat /proc/self/cgroup; sleep 30");
  s.cpu = 0.5;
  s.memory = 64ull << 20;
  f.launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  auto spec = nlohmann::json::parse(slurp(f.run_dir(s.job_id) / "spec.json"));
  std::vector<std::string> dirs = spec["cgroups"];
  REQUIRE_FALSE(dirs.empty());
  bool memory = false, cpu = false, pids = false;
  for (const auto& d : dirs) {
    fs::path dir(d);
    CHECK_FALSE(slurp(dir / "cgroup.procs").empty());  // the job is in it
    if (fs::exists(dir / "memory.limit_in_bytes")) memory = slurp(dir / "memory.limit_in_bytes") == "67108864\n";
    if (fs::exists(dir / "memory.max")) memory = slurp(dir / "memory.max") == "67108864\n";
    if (fs::exists(dir / "cpu.cfs_quota_us")) cpu = slurp(dir / "cpu.cfs_quota_us") == "50000\n";
    if (fs::exists(dir / "cpu.max")) cpu = slurp(dir / "cpu.max") == "50000 100000\n";
    if (fs::exists(dir / "pids.max")) pids = slurp(dir / "pids.max") == "256\n";
  }
  CHECK(memory);
  CHECK(cpu);
  CHECK(pids);
  // The job sees its own cgroup (no cgroup namespace), so it can find its limits under /sys.
  REQUIRE(eventually([&] { return !f.lines(s.job_id).empty(); }));
  auto lines = f.lines(s.job_id);
  CHECK(std::any_of(lines.begin(), lines.end(),
                    [&](const std::string& l) { return l.ends_with(":/" + f.parent + "/" + s.job_id); }));
  f.runner->remove(s.job_id);
  for (const auto& d : dirs) CHECK_FALSE(fs::exists(d));
  CHECK_FALSE(fs::exists(f.run_dir(s.job_id)));
}

TEST_CASE("process runner: a running job outlives its runner and is adopted without duplicates or a second run") {
  Fixture f;
  fs::create_directories(f.tmp / "data");
  auto s = f.sh("echo run >> /data/count; i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo line $i; sleep 0.2; done");
  s.mounts.push_back({(f.tmp / "data").string(), "/data", false});
  f.launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() >= 2; }));
  f.runner.reset();  // as if neurod went away: the job keeps running
  std::this_thread::sleep_for(600ms);

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{s.job_id, 0}});
  auto running = again.wait(s.job_id, Event::Kind::running, 2s);
  CHECK(running.has_value());
  auto e = again.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Completed");
  CHECK(again.of(s.job_id).front().kind == Event::Kind::running);
  std::vector<std::string> expected;
  for (int i = 1; i <= 12; ++i) expected.push_back("line " + std::to_string(i));
  CHECK(f.lines(s.job_id) == expected);
  CHECK(slurp(f.tmp / "data" / "count") == "run\n");
}

TEST_CASE("process runner: a job that ended while no runner existed is collected by adopt") {
  Fixture f;
  auto s = f.sh("echo a; sleep 0.5; echo b; exit 4");
  f.launch(s);
  REQUIRE(f.rec.wait(s.job_id, Event::Kind::running));
  f.runner.reset();
  REQUIRE(eventually([&] { return fs::exists(f.run_dir(s.job_id) / "exit"); }));

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{s.job_id, 0}});
  auto e = again.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Error");
  CHECK(e->exit_code == 4);
  CHECK(again.of(s.job_id).size() == 1);  // no running: it was over before adopt
  CHECK(f.lines(s.job_id) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("process runner: a stop survives a restart") {
  Fixture f;
  auto s = f.sh("trap '' TERM; echo ready; while :; do sleep 0.1; done");
  f.launch(s);
  REQUIRE(eventually([&] { return !f.lines(s.job_id).empty(); }));
  f.runner->stop(s.job_id, 1500ms);
  f.runner.reset();

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{s.job_id, 0}});
  auto e = again.wait(s.job_id, Event::Kind::exited, 6s);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Killed");
  CHECK(e->exit_code == 137);
}

TEST_CASE("process runner: adopt reports missing attempts as NotFound and removes the ones nobody expects") {
  Fixture f;
  auto done = f.sh("echo finished");
  f.launch(done);
  f.exited(done.job_id);
  auto running = f.spec({"sleep", "30"});
  f.launch(running);
  REQUIRE(f.rec.wait(running.job_id, Event::Kind::running));
  fs::create_directories(f.tmp / "run" / "job-garbage");
  f.runner.reset();

  Recorder again;
  f.runner = f.make(again);
  f.runner->adopt({{"job-missing", 2}});
  auto e = again.wait("job-missing", Event::Kind::exited, 2s);
  REQUIRE(e.has_value());
  CHECK(e->reason == "NotFound");
  CHECK(e->attempt == 2);
  CHECK_FALSE(fs::exists(f.run_dir(done.job_id)));
  CHECK_FALSE(fs::exists(f.tmp / "run" / "job-garbage"));
  // The running one is stopped (SIGTERM ends sleep), then removed; no events for either.
  CHECK(eventually([&] { return !fs::exists(f.run_dir(running.job_id)); }, 5s));
  CHECK(again.of(done.job_id).empty());
  CHECK(again.of(running.job_id).empty());
}

TEST_CASE("process runner: launching the same attempt twice runs it once") {
  Fixture f;
  fs::create_directories(f.tmp / "data");
  auto s = f.sh("echo run >> /data/count; sleep 0.5");
  s.mounts.push_back({(f.tmp / "data").string(), "/data", false});
  f.launch(s);
  f.launch(s);
  CHECK(f.exited(s.job_id).reason == "Completed");
  std::this_thread::sleep_for(300ms);
  CHECK(slurp(f.tmp / "data" / "count") == "run\n");
  CHECK(f.rec.of(s.job_id).size() == 2);
}

TEST_CASE("process runner: large output reaches the log store whole, and the disk under it is given back") {
  Fixture f;
  auto s = f.sh("seq -f '%0100.0f' 1 60000; printf '\\n\\nlast'");  // 6 MB, two empty lines, no final newline
  f.launch(s);
  CHECK(f.exited(s.job_id).reason == "Completed");
  std::size_t count = 0;
  std::string first;
  bool ordered = true;
  std::vector<std::string> tail;
  f.logs.read(s.job_id, std::nullopt, false, [&](const neurod::executor::LogLine& l) {
    ++count;
    if (first.empty()) first = l.text;
    if (count <= 60000)
      ordered = ordered && l.text.size() == 100 && std::stoul(l.text) == count;
    else
      tail.push_back(l.text);
    return true;
  });
  CHECK(count == 60003);
  CHECK(ordered);
  CHECK(first == std::string(99, '0') + "1");
  CHECK(tail == std::vector<std::string>{"", "", "last"});
  struct stat sb {};
  REQUIRE(::stat((f.run_dir(s.job_id) / "output").c_str(), &sb) == 0);
  CHECK(sb.st_size > (5 << 20));
  CHECK(static_cast<off_t>(sb.st_blocks) * 512 < sb.st_size - (3 << 20));  // holes punched under consumed output
}

// What a restart finds after neurod died in the middle of appending a batch: the offset
// record names the batch's start and time, and k of its lines made it to the store.
TEST_CASE("process runner: resuming after a crash in the middle of a batch neither repeats nor loses lines") {
  Fixture f;
  for (int k : {0, 1, 3}) {
    CAPTURE(k);
    auto id = unique("job-crashed");
    auto dir = f.run_dir(id);
    fs::create_directories(dir);
    f.tmp.write("run/" + id + "/spec.json", nlohmann::json{{"job_id", id}, {"attempt", 0}, {"cgroups", {}}}.dump());
    f.tmp.write("run/" + id + "/output", "l1\nl2\nl3\nl4\n");
    f.tmp.write("run/" + id + "/status", "{ \"child-pid\": 1, \"pid-namespace\": 1 }\n{ \"exit-code\": 0 }\n");
    f.tmp.write("run/" + id + "/exit", "0\n");
    auto t0 = neurod::executor::Clock::now() - 10s;
    auto t1 = t0 + 1s;
    f.logs.append(id, t0, "l1");
    const char* batch[] = {"l2", "l3", "l4"};
    for (int i = 0; i < k; ++i) f.logs.append(id, t1, batch[i]);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1.time_since_epoch()).count();
    f.tmp.write("run/" + id + "/offset", "3 " + std::to_string(ns) + "\n");
    f.launched.push_back(id);
    f.runner->adopt({{id, 0}});
    auto e = f.exited(id);
    CHECK(e.reason == "Completed");
    CHECK(f.lines(id) == std::vector<std::string>{"l1", "l2", "l3", "l4"});
  }
}

TEST_CASE("process runner: cgroup files for v2 and v1 layouts (a fake hierarchy)") {
  using neurod::executor::cgroups::Manager;
  neurod::test::TempDir t;
  SUBCASE("v2") {
    auto root = t / "unified";
    t.write("unified/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    t.write("mountinfo", "41 31 0:38 / " + root.string() + " rw,relatime - cgroup2 cgroup2 rw\n");
    Manager m("neurod", t / "mountinfo");
    CHECK(m.available());
    CHECK(m.describe() == "cgroup v2 (cpu, memory, pids) under neurod");
    auto dirs = m.create("job-1", {0.5, 64ull << 20, 100});
    REQUIRE(dirs == std::vector<std::string>{(root / "neurod" / "job-1").string()});
    CHECK(slurp(root / "neurod" / "job-1" / "memory.max") == "67108864");
    CHECK(slurp(root / "neurod" / "job-1" / "cpu.max") == "50000 100000");
    CHECK(slurp(root / "neurod" / "job-1" / "pids.max") == "100");
    CHECK_FALSE(neurod::executor::cgroups::oom_killed(dirs));
    t.write("unified/neurod/job-1/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
    CHECK(neurod::executor::cgroups::oom_killed(dirs));
  }
  SUBCASE("v1 on a hybrid system") {
    t.write("memory/memory.limit_in_bytes", "9223372036854771712\n");
    fs::create_directories(t / "cpu,cpuacct");
    fs::create_directories(t / "pids");
    fs::create_directories(t / "unified");
    t.write("mountinfo", "32 31 0:29 / " + (t / "cpu,cpuacct").string() +
                             " rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
                             "35 31 0:32 / " +
                             (t / "memory").string() +
                             " rw,relatime - cgroup cgroup rw,memory\n"
                             "39 31 0:36 / " +
                             (t / "pids").string() +
                             " rw,relatime - cgroup cgroup rw,pids\n"
                             "41 31 0:38 / " +
                             (t / "unified").string() + " rw,relatime - cgroup2 cgroup2 rw\n");
    Manager m("neurod", t / "mountinfo");
    CHECK(m.available());
    CHECK(m.describe() == "cgroup v1 (cpu, memory, pids) under neurod");
    auto dirs = m.create("job-1", {1.5, 32ull << 20, 0});
    CHECK(dirs.size() == 3);
    CHECK(slurp(t / "memory" / "neurod" / "job-1" / "memory.limit_in_bytes") == "33554432");
    CHECK(slurp(t / "cpu,cpuacct" / "neurod" / "job-1" / "cpu.cfs_quota_us") == "150000");
    CHECK(slurp(t / "cpu,cpuacct" / "neurod" / "job-1" / "cpu.cfs_period_us") == "100000");
    CHECK_FALSE(fs::exists(t / "pids" / "neurod" / "job-1" / "pids.max"));  // 0: not limited
    t.write("memory/neurod/job-1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    CHECK_FALSE(neurod::executor::cgroups::oom_killed(dirs));
    t.write("memory/neurod/job-1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    CHECK(neurod::executor::cgroups::oom_killed(dirs));
  }
  SUBCASE("none") {
    t.write("mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n");
    Manager m("neurod", t / "mountinfo");
    CHECK_FALSE(m.available());
    CHECK(m.describe() == "no cgroups");
    CHECK_FALSE(m.problem().empty());
  }
}

TEST_CASE("process runner: a job survives its launcher being SIGKILLed and is adopted once") {
  Fixture f;
  f.runner.reset();  // the launcher is a child process here; no runner thread while forking
  fs::create_directories(f.tmp / "data");
  auto s = f.sh("echo run >> /data/count; i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo line $i; sleep 0.2; done");
  s.mounts.push_back({(f.tmp / "data").string(), "/data", false});
  f.launched.push_back(s.job_id);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    LogStore logs(f.tmp / "logs");
    Recorder r;
    auto runner = neurod::executor::make_process_runner(f.options(), logs, r.sink());
    runner->launch(s);
    for (;;) std::this_thread::sleep_for(1s);  // until SIGKILL, in the middle of tailing
  }
  REQUIRE(eventually([&] { return f.lines(s.job_id).size() >= 3; }));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);

  f.runner = f.make(f.rec);
  f.runner->adopt({{s.job_id, 0}});
  CHECK(f.rec.wait(s.job_id, Event::Kind::running, 2s).has_value());
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "Completed");
  std::vector<std::string> expected;
  for (int i = 1; i <= 12; ++i) expected.push_back("line " + std::to_string(i));
  CHECK(f.lines(s.job_id) == expected);
  CHECK(slurp(f.tmp / "data" / "count") == "run\n");
}

TEST_CASE("process runner: without cgroups jobs still run, and their log says the limits are not enforced") {
  neurod::test::TempDir tmp;
  LogStore logs(tmp / "logs");
  Recorder rec;
  neurod::executor::ProcessOptions o;
  o.run_dir = (tmp / "run").string();
  o.cgroup_parent = "../not-allowed";  // the cgroups manager refuses it: as if none were mounted
  auto runner = neurod::executor::make_process_runner(o, logs, rec.sink());
  CHECK(runner->describe().find("limits not enforced") != std::string::npos);
  LaunchSpec s;
  s.job_id = unique("job-test");
  s.command = {"/bin/sh", "-c", "echo hello"};
  s.memory = 64ull << 20;
  runner->launch(s);
  auto e = rec.wait(s.job_id, Event::Kind::exited);
  REQUIRE(e.has_value());
  CHECK(e->reason == "Completed");
  std::vector<std::string> lines;
  logs.read(s.job_id, std::nullopt, false, [&](const neurod::executor::LogLine& l) {
    lines.push_back(l.text);
    return true;
  });
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].starts_with("neurod: cgroups are not available on this node"));
  CHECK(lines[1] == "hello");
  runner->remove(s.job_id);
  CHECK_FALSE(fs::exists(tmp / "run" / s.job_id));
}

TEST_CASE("process runner: secret files are read-only at their targets, 0444 in a 0700 dir, gone when the attempt ends") {
  Fixture f;
  std::string value = unique("s3cr3t-file");
  // /etc/…: a read-only host directory that lacks the file; /var/neurod-test/…: a parent
  // the host lacks; /out/key-copy: a read-write volume beside them.
  fs::create_directories(f.tmp / "out");
  auto s = f.sh(
      "wc -c < /etc/neurod-test-key; cat /var/neurod-test/secrets/token; echo; stat -c %a /etc/neurod-test-key; "
      "echo x 2>/dev/null > /etc/neurod-test-key || echo ro; test -s /etc/passwd && echo etc-intact; "
      "cp /etc/neurod-test-key /out/key-copy; echo ready; sleep 30");
  s.secret_files = {{"/etc/neurod-test-key", value}, {"/var/neurod-test/secrets/token", "tok"}};
  s.mounts.push_back({(f.tmp / "out").string(), "/out", false});
  f.launch(s);
  REQUIRE(eventually([&] {
    auto l = f.lines(s.job_id);
    return !l.empty() && l.back() == "ready";
  }));
  CHECK(joined(f.lines(s.job_id)) == std::to_string(value.size()) + " tok 444 ro etc-intact ready");
  auto dir = f.secrets_of(s.job_id);
  CHECK((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all);
  REQUIRE(fs::exists(dir / "0"));
  CHECK((fs::status(dir / "0").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read));
  CHECK(slurp(f.tmp / "out" / "key-copy") == value);
  // Nothing was made on the host, and the value is in no file of the run dir.
  CHECK_FALSE(fs::exists("/etc/neurod-test-key"));
  CHECK_FALSE(fs::exists("/var/neurod-test"));
  for (const auto& entry : fs::recursive_directory_iterator(f.run_dir(s.job_id)))
    if (entry.is_regular_file()) CHECK(slurp(entry.path()).find(value) == std::string::npos);

  f.runner->stop(s.job_id, 1s);
  CHECK(f.exited(s.job_id).reason == "Killed");
  CHECK_FALSE(fs::exists(dir));

  // A job that ends on its own loses its files too; remove() takes those of a running one.
  auto done = f.sh("cat /k");
  done.secret_files = {{"/k", "v"}};
  f.launch(done);
  CHECK(f.exited(done.job_id).reason == "Completed");
  CHECK(f.lines(done.job_id) == std::vector<std::string>{"v"});
  CHECK_FALSE(fs::exists(f.secrets_of(done.job_id)));

  auto running = f.sh("echo up; sleep 30");
  running.secret_files = {{"/k", "v"}};
  f.launch(running);
  REQUIRE(eventually([&] { return !f.lines(running.job_id).empty(); }));
  REQUIRE(fs::exists(f.secrets_of(running.job_id)));
  f.runner->remove(running.job_id);
  CHECK_FALSE(fs::exists(f.secrets_of(running.job_id)));
}

TEST_CASE("process runner: a secret file inside a volume is ContainerCannotRun, and nothing is left") {
  Fixture f;
  fs::create_directories(f.tmp / "data");
  auto s = f.sh("true");
  s.mounts.push_back({(f.tmp / "data").string(), "/data", false});
  s.secret_files = {{"/data/key", "v"}};
  f.launch(s);
  auto e = f.exited(s.job_id);
  CHECK(e.reason == "ContainerCannotRun");
  CHECK(e.message == "the secret file /data/key is inside the volume at /data: put it elsewhere");
  CHECK_FALSE(fs::exists(f.tmp / "data" / "key"));
  CHECK_FALSE(fs::exists(f.secrets_of(s.job_id)));
}

TEST_CASE("process runner: adopt removes the secret files of jobs nobody expects and keeps the others'") {
  Fixture f;
  auto kept = f.sh("echo up; sleep 30");
  kept.secret_files = {{"/k", "v"}};
  f.launch(kept);
  REQUIRE(eventually([&] { return !f.lines(kept.job_id).empty(); }));
  f.runner->shutdown();
  f.runner.reset();
  // A launch that died after writing its secrets but before its run dir.
  {
    neurod::executor::SecretFiles stray(f.tmp / "secrets", "node-test");
    stray.materialise("job-stray", {{"/k", "v"}});
  }
  REQUIRE(fs::exists(f.secrets_of("job-stray")));
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

// Telemetry sources of the executor: cgroup counters (v1, v2, a container's cgroups found
// through /proc/PID/cgroup) and nvidia-smi's GPU figures, on fake files and a fake binary.
#include "modules/executor/telemetry.hpp"
#include "modules/executor/cgroups.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

namespace fs = std::filesystem;
using namespace neurod::executor;

TEST_CASE("telemetry: cgroup v1 and v2 counters give CPU seconds, the working set and the limit") {
  neurod::test::TempDir t;
  SUBCASE("v1: cpuacct, memory without inactive files") {
    t.write("cpuacct/job/cpuacct.usage", "2500000000\n");
    t.write("memory/job/memory.usage_in_bytes", "10485760\n");
    t.write("memory/job/memory.stat", "cache 4194304\nrss 6291456\ntotal_cache 4194304\ntotal_inactive_file 2097152\n");
    t.write("memory/job/memory.limit_in_bytes", "67108864\n");
    auto u = cgroups::usage({(t / "cpu/job").string(), (t / "cpuacct/job").string(), (t / "memory/job").string()});
    REQUIRE(u.cpu_seconds);
    CHECK(*u.cpu_seconds == doctest::Approx(2.5));
    CHECK(u.memory == 10485760u - 2097152u);
    CHECK(u.memory_limit == 67108864u);
  }
  SUBCASE("v1: an unlimited memory cgroup has no limit") {
    t.write("memory/job/memory.usage_in_bytes", "4096\n");
    t.write("memory/job/memory.limit_in_bytes", "9223372036854771712\n");
    auto u = cgroups::usage({(t / "memory/job").string()});
    CHECK(u.memory == 4096u);
    CHECK_FALSE(u.memory_limit);
    CHECK_FALSE(u.cpu_seconds);
  }
  SUBCASE("v2: cpu.stat and memory.current") {
    t.write("job/cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n");
    t.write("job/memory.current", "8388608\n");
    t.write("job/memory.stat", "anon 4194304\nfile 4194304\ninactive_file 1048576\n");
    t.write("job/memory.max", "max\n");
    auto u = cgroups::usage({(t / "job").string()});
    REQUIRE(u.cpu_seconds);
    CHECK(*u.cpu_seconds == doctest::Approx(1.5));
    CHECK(u.memory == 8388608u - 1048576u);
    CHECK_FALSE(u.memory_limit);
    t.write("job/memory.max", "16777216\n");
    CHECK(cgroups::usage({(t / "job").string()}).memory_limit == 16777216u);
  }
  SUBCASE("nothing readable") {
    auto u = cgroups::usage({(t / "gone").string()});
    CHECK_FALSE(u.cpu_seconds);
    CHECK_FALSE(u.memory);
  }
}

TEST_CASE("telemetry: a process's cgroup directories come from /proc/PID/cgroup and the mount table") {
  neurod::test::TempDir t;
  const std::string path = "/libpod_parent/libpod-abc";
  for (const char* h : {"cpu", "cpuacct", "memory", "pids", "unified"})
    fs::create_directories(t / h / "libpod_parent/libpod-abc");
  fs::create_directories(t / "nested/libpod-abc");
  t.write("mountinfo", "32 31 0:29 / " + (t / "cpu").string() + " rw - cgroup cgroup rw,cpu\n" + "33 31 0:30 / " +
                           (t / "cpuacct").string() + " rw - cgroup cgroup rw,cpuacct\n" + "35 31 0:32 / " +
                           (t / "memory").string() + " rw - cgroup cgroup rw,memory\n" + "39 31 0:36 / " +
                           (t / "pids").string() + " rw - cgroup cgroup rw,pids\n" + "41 31 0:38 / " +
                           (t / "unified").string() + " rw - cgroup2 cgroup2 rw\n");
  t.write("proc/42/cgroup", "9:name=systemd:" + path + "\n8:pids:" + path + "\n4:memory:" + path +
                                "\n2:cpuacct:" + path + "\n1:cpu:" + path + "\n0::" + path + "\n");
  auto dirs = cgroups::dirs_of_pid(42, t / "proc", t / "mountinfo");
  std::vector<std::string> want = {
      (t / "memory" / "libpod_parent/libpod-abc").string(), (t / "cpuacct" / "libpod_parent/libpod-abc").string(),
      (t / "cpu" / "libpod_parent/libpod-abc").string(), (t / "unified" / "libpod_parent/libpod-abc").string()};
  CHECK(dirs == want);
  CHECK(cgroups::dirs_of_pid(43, t / "proc", t / "mountinfo").empty());  // no such process
  CHECK(cgroups::dirs_of_pid(0, t / "proc", t / "mountinfo").empty());

  // A mount that shows only part of the hierarchy (its root is /libpod_parent).
  t.write("mountinfo2", "35 31 0:32 /libpod_parent " + (t / "nested").string() + " rw - cgroup cgroup rw,memory\n");
  CHECK(cgroups::dirs_of_pid(42, t / "proc", t / "mountinfo2") ==
        std::vector<std::string>{(t / "nested" / "libpod-abc").string()});
}

TEST_CASE("telemetry: this process's own cgroups can be read") {
  auto dirs = cgroups::dirs_of_pid(::getpid());
  if (dirs.empty()) return;  // a machine without cgroup mounts
  auto u = cgroups::usage(dirs);
  CHECK((u.cpu_seconds || u.memory));
}

TEST_CASE("telemetry: nvidia-smi's GPU figures are parsed, and a failing or hanging nvidia-smi gives none") {
  auto gpus = parse_nvidia_smi_usage("0, 37, 1024, 16384\n1, [N/A], 0, 16384\n2, 100, 16384, 16384\n\ngarbage\n");
  REQUIRE(gpus.size() == 2);
  CHECK(gpus[0].id == "0");
  CHECK(gpus[0].utilization == 37);
  CHECK(gpus[0].memory_used == 1024ull << 20);
  CHECK(gpus[0].memory_total == 16384ull << 20);
  CHECK(gpus[1].id == "2");

  neurod::test::TempDir t;
  auto script = [&](const std::string& name, const std::string& body) {
    auto p = t / name;
    t.write(name, "#!/bin/sh\n" + body);
    ::chmod(p.c_str(), 0755);
    return p.string();
  };
  auto ok = script("ok", "case \"$*\" in *utilization.gpu*) echo '0, 5, 100, 200' ;; esac\n");
  auto got = query_gpu_usage(ok);
  REQUIRE(got.size() == 1);
  CHECK(got[0].utilization == 5);
  CHECK(query_gpu_usage(script("fails", "echo '0, 5, 100, 200'; exit 9\n")).empty());
  CHECK(query_gpu_usage((t / "missing").string()).empty());
  auto start = std::chrono::steady_clock::now();
  CHECK(query_gpu_usage(script("hangs", "exec sleep 30\n"), std::chrono::milliseconds(300)).empty());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

// The cgroups the process runner puts each job in (DESIGN §8): resource limits and OOM
// detection for jobs that run without a container engine. Both layouts are supported:
// the unified hierarchy (cgroup v2, when it has the memory controller) and the legacy
// per-controller v1 hierarchies (memory, cpu, pids), as on hybrid systems.
//
// A job's cgroups are plain directories (<mount>/<parent>/<job> in each hierarchy). The
// runner keeps their paths in the job's run directory, so the free functions below work
// on a job found again after a restart, without a Manager.
#pragma once

#include "core/units.hpp"
#include "modules/executor/executor.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace neurod::executor::cgroups {

struct Limits {
  double cpu = 0;            // cores; 0: not limited
  std::uint64_t memory = 0;  // bytes, without swap; 0: not limited
  std::int64_t pids = 0;     // 0: not limited
};

class Manager {
 public:
  // Finds the hierarchies in `mountinfo` and checks that cgroups can be made under `parent`
  // in each (a probe cgroup is made, given a limit and removed). Never throws: a hierarchy
  // that fails is left out and problem() says why.
  explicit Manager(std::string parent, std::filesystem::path mountinfo = "/proc/self/mountinfo");

  // Whether jobs get cgroups at all (at least the memory controller works).
  bool available() const { return memory_ok_; }
  // Why some or all controllers cannot be used; empty when all of them can.
  const std::string& problem() const { return problem_; }
  // "cgroup v1 (memory, cpu, pids) under neurod", "cgroup v2 (memory, cpu, pids) under neurod", "no cgroups".
  std::string describe() const;

  // Makes the job's cgroup in every usable hierarchy and writes the limits; returns the
  // directories. Throws Error(internal) on failure, after removing what it made.
  std::vector<std::string> create(const std::string& name, const Limits& limits) const;
  // Removes <mount>/<parent> where it is empty (tests clean up with it).
  void remove_parent() const;

 private:
  struct Hierarchy {
    std::filesystem::path mount;
    bool v2 = false;
    std::vector<std::string> controllers;  // of those neurod uses: memory, cpu, pids
  };
  std::vector<Hierarchy> hierarchies_;
  std::string parent_;
  std::string problem_;
  bool memory_ok_ = false;
};

// The processes in the cgroups (host pids), deduplicated.
std::vector<pid_t> procs(const std::vector<std::string>& dirs);
// Sends `sig` to every process in them (cgroup.kill for SIGKILL on v2 where present).
void kill_all(const std::vector<std::string>& dirs, int sig);
// Whether the kernel's OOM killer killed a process in them (memory.events oom_kill on v2;
// memory.oom_control oom_kill on v1, or memory.failcnt on kernels without that counter).
bool oom_killed(const std::vector<std::string>& dirs);
// Removes them, retrying for up to `wait` while their last processes exit. False when
// some remain.
bool remove(const std::vector<std::string>& dirs, Duration wait);

// Telemetry: what the processes in the cgroups use, read from the kernel's counters.
// What the job's cgroups say it uses now (executor::Usage): cumulative CPU time (v1
// cpuacct.usage, v2 cpu.stat usage_usec); memory as the working set, usage less the page
// cache the kernel can reclaim at once (inactive files), as `docker stats` and the kubelet
// count it; the memory limit (nullopt: not limited).
Usage usage(const std::vector<std::string>& dirs);
// The cgroup directories of a process (host pid) for the hierarchies that count CPU and
// memory (v1 cpu, cpuacct, memory; v2), from /proc/PID/cgroup and the mount table; empty
// when the process is gone or its cgroups are not visible here (another cgroup namespace).
std::vector<std::string> dirs_of_pid(pid_t pid, const std::filesystem::path& proc = "/proc",
                                     const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

}  // namespace neurod::executor::cgroups

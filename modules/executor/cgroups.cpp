#include "modules/executor/cgroups.hpp"

#include "core/errors.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace neurod::executor::cgroups {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t kCpuPeriodUs = 100000;

// mountinfo escapes blanks and backslashes in paths as \NNN (octal).
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (std::size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes one value the way the kernel wants it: a single write(2), whose error is the
// kernel's verdict (EINVAL, EBUSY, EACCES...).
void write_value(const fs::path& path, std::string_view value) {
  std::FILE* f = std::fopen(path.c_str(), "we");
  if (!f) throw Error(errc::internal, "cannot open " + path.string() + ": " + std::strerror(errno));
  int err = 0;
  if (std::fwrite(value.data(), 1, value.size(), f) != value.size()) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0)
    throw Error(errc::internal,
                "cannot write " + std::string(value) + " to " + path.string() + ": " + std::strerror(err));
}

bool try_write_value(const fs::path& path, std::string_view value) {
  try {
    write_value(path, value);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The value of `key` in a flat keyed file ("oom_kill 3\n..."); -1 when absent.
std::int64_t keyed_value(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.find(' ');
    if (space == std::string::npos || std::string_view(line).substr(0, space) != key) continue;
    std::int64_t v = -1;
    std::from_chars(line.data() + space + 1, line.data() + line.size(), v);
    return v;
  }
  return -1;
}

bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

void write_limits(const fs::path& dir, bool v2, const std::vector<std::string>& controllers, const Limits& limits) {
  if (v2) {
    if (has(controllers, "memory") && limits.memory > 0) {
      write_value(dir / "memory.max", std::to_string(limits.memory));
      // No swap, so that the limit means what it says (as v1's memsw below); optional.
      if (fs::exists(dir / "memory.swap.max")) try_write_value(dir / "memory.swap.max", "0");
    }
    if (has(controllers, "cpu") && limits.cpu > 0) {
      auto quota = std::max<std::int64_t>(1000, std::llround(limits.cpu * kCpuPeriodUs));
      write_value(dir / "cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs));
    }
    if (has(controllers, "pids") && limits.pids > 0) write_value(dir / "pids.max", std::to_string(limits.pids));
    return;
  }
  for (const auto& c : controllers) {
    if (c == "memory" && limits.memory > 0) {
      write_value(dir / "memory.limit_in_bytes", std::to_string(limits.memory));
      // memsw (memory + swap) exists only with swap accounting; it must be >= the memory limit.
      if (fs::exists(dir / "memory.memsw.limit_in_bytes"))
        try_write_value(dir / "memory.memsw.limit_in_bytes", std::to_string(limits.memory));
    } else if (c == "cpu" && limits.cpu > 0) {
      auto quota = std::max<std::int64_t>(1000, std::llround(limits.cpu * kCpuPeriodUs));
      write_value(dir / "cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
      write_value(dir / "cpu.cfs_quota_us", std::to_string(quota));
    } else if (c == "pids" && limits.pids > 0) {
      write_value(dir / "pids.max", std::to_string(limits.pids));
    }
  }
}

}  // namespace

Manager::Manager(std::string parent, fs::path mountinfo) : parent_(std::move(parent)) {
  while (!parent_.empty() && parent_.front() == '/') parent_.erase(0, 1);
  while (!parent_.empty() && parent_.back() == '/') parent_.pop_back();
  if (parent_.empty() || parent_.find("..") != std::string::npos) {
    problem_ = "invalid cgroup parent \"" + parent_ + "\"";
    return;
  }

  // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
  std::optional<fs::path> unified;
  std::vector<Hierarchy> legacy;
  std::ifstream in(mountinfo);
  for (std::string line; std::getline(in, line);) {
    auto fields = split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || std::distance(dash, fields.end()) < 4) continue;
    const auto& fstype = *(dash + 1);
    fs::path mount = unescape(fields[4]);
    if (fstype == "cgroup2") {
      if (!unified) unified = mount;
    } else if (fstype == "cgroup") {
      Hierarchy h{mount, false, {}};
      for (const auto& opt : split(*(dash + 3), ','))
        // cpuacct limits nothing; it is made for the job's CPU time (usage()), which the v1
        // cpu controller does not count when mounted on its own (as on hybrid systems).
        if (opt == "memory" || opt == "cpu" || opt == "cpuacct" || opt == "pids") h.controllers.push_back(opt);
      // The same controller can be mounted twice (bind mounts): keep the first.
      bool seen = false;
      for (const auto& other : legacy)
        for (const auto& c : h.controllers) seen = seen || has(other.controllers, c);
      if (!h.controllers.empty() && !seen) legacy.push_back(std::move(h));
    }
  }

  // v2 wins when it carries the memory controller: on a hybrid system the unified mount
  // exists but is empty, and the v1 ones hold the controllers.
  if (unified) {
    auto available = split(read_file(*unified / "cgroup.controllers"), ' ');
    Hierarchy h{*unified, true, {}};
    for (auto c : available) {
      while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
      if (c == "memory" || c == "cpu" || c == "pids") h.controllers.push_back(c);
    }
    if (has(h.controllers, "memory")) legacy = {std::move(h)};
  }
  if (legacy.empty()) {
    problem_ = "no cgroup hierarchy with the memory controller is mounted";
    return;
  }

  std::vector<std::string> problems;
  for (auto& h : legacy) {
    auto probe = h.mount / parent_ / (".probe-" + std::to_string(::getpid()));
    try {
      std::error_code ec;
      fs::create_directories(h.mount / parent_, ec);
      if (ec) throw Error(errc::internal, "cannot create " + (h.mount / parent_).string() + ": " + ec.message());
      if (h.v2) {
        // Limits on <parent>/<job> need the controllers enabled from the root down to <parent>.
        std::vector<std::string> enabled;
        for (const auto& c : h.controllers) {
          bool ok = true;
          fs::path dir = h.mount;
          for (const auto& part : fs::path(parent_)) {
            ok = ok && try_write_value(dir / "cgroup.subtree_control", "+" + c);
            dir /= part;
          }
          ok = ok && try_write_value(dir / "cgroup.subtree_control", "+" + c);
          if (ok)
            enabled.push_back(c);
          else
            problems.push_back(c + ": cannot enable the controller under " + (h.mount / parent_).string());
        }
        h.controllers = enabled;
      }
      fs::create_directory(probe, ec);
      if (ec) throw Error(errc::internal, "cannot create " + probe.string() + ": " + ec.message());
      std::vector<std::string> working;
      for (const auto& c : h.controllers) {
        try {
          if (h.v2 && c == "memory")
            write_value(probe / "memory.max", "max");
          else if (h.v2 && c == "cpu")
            write_value(probe / "cpu.max", "max");
          else if (c == "pids")
            write_value(probe / "pids.max", "max");
          else if (c == "memory")
            write_value(probe / "memory.limit_in_bytes", "-1");
          else if (c == "cpu")
            write_value(probe / "cpu.cfs_quota_us", "-1");
          else if (c == "cpuacct" && !fs::exists(probe / "cpuacct.usage"))
            continue;  // only counts: without it the job has no CPU figure, and nothing else is lost
          working.push_back(c);
        } catch (const Error& e) {
          problems.push_back(c + ": " + e.what());
        }
      }
      ::rmdir(probe.c_str());
      h.controllers = working;
      if (!working.empty()) hierarchies_.push_back(h);
    } catch (const Error& e) {
      ::rmdir(probe.c_str());
      problems.push_back(join(h.controllers) + ": " + e.what());
    }
  }
  for (const auto& h : hierarchies_) memory_ok_ = memory_ok_ || has(h.controllers, "memory");
  if (!memory_ok_) hierarchies_.clear();
  for (const auto& p : problems) problem_ += (problem_.empty() ? "" : "; ") + p;
}

std::string Manager::describe() const {
  if (!available()) return "no cgroups";
  std::vector<std::string> controllers;  // the ones that limit (cpuacct only counts)
  for (const auto& h : hierarchies_)
    for (const auto& c : h.controllers)
      if (c != "cpuacct") controllers.push_back(c);
  return std::string("cgroup ") + (hierarchies_.front().v2 ? "v2" : "v1") + " (" + join(controllers) + ") under " +
         parent_;
}

std::vector<std::string> Manager::create(const std::string& name, const Limits& limits) const {
  std::vector<std::string> made;
  try {
    for (const auto& h : hierarchies_) {
      auto dir = h.mount / parent_ / name;
      // A leftover of the same name would bring its old counters (oom_kill): start afresh.
      if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
        throw Error(errc::internal, "cannot replace " + dir.string() + ": " + std::strerror(errno));
      if (::mkdir(dir.c_str(), 0755) != 0)
        throw Error(errc::internal, "cannot create " + dir.string() + ": " + std::strerror(errno));
      made.push_back(dir.string());
      write_limits(dir, h.v2, h.controllers, limits);
    }
  } catch (const Error&) {
    remove(made, 0ms);
    throw;
  }
  return made;
}

void Manager::remove_parent() const {
  for (const auto& h : hierarchies_) {
    // Deepest first: the parent may be nested ("neurod/jobs").
    for (fs::path p = h.mount / parent_; p != h.mount && p.has_relative_path(); p = p.parent_path())
      if (::rmdir(p.c_str()) != 0) break;
  }
}

std::vector<pid_t> procs(const std::vector<std::string>& dirs) {
  std::vector<pid_t> out;
  for (const auto& dir : dirs) {
    std::istringstream in(read_file(fs::path(dir) / "cgroup.procs"));
    for (pid_t pid; in >> pid;)
      if (std::find(out.begin(), out.end(), pid) == out.end()) out.push_back(pid);
  }
  return out;
}

void kill_all(const std::vector<std::string>& dirs, int sig) {
  if (sig == SIGKILL) {
    bool killed = false;
    for (const auto& dir : dirs) {
      auto file = fs::path(dir) / "cgroup.kill";
      if (!fs::exists(file)) continue;
      try {
        write_value(file, "1");
        killed = true;
      } catch (const Error&) {
      }
    }
    if (killed) return;
  }
  // A few passes: processes forked while the first pass ran are caught by the next.
  for (int pass = 0; pass < (sig == SIGKILL ? 3 : 1); ++pass) {
    auto pids = procs(dirs);
    if (pids.empty()) break;
    for (auto pid : pids)
      if (pid > 1) ::kill(pid, sig);
  }
}

bool oom_killed(const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) {
    fs::path d(dir);
    if (fs::exists(d / "memory.events")) {
      if (keyed_value(read_file(d / "memory.events"), "oom_kill") > 0) return true;
    } else if (fs::exists(d / "memory.oom_control")) {
      auto v = keyed_value(read_file(d / "memory.oom_control"), "oom_kill");
      if (v > 0) return true;
      if (v < 0) {  // kernels before 4.13 do not count kills: hitting the limit is the best hint
        std::int64_t failcnt = 0;
        auto text = read_file(d / "memory.failcnt");
        std::from_chars(text.data(), text.data() + text.size(), failcnt);
        if (failcnt > 0) return true;
      }
    }
  }
  return false;
}

bool remove(const std::vector<std::string>& dirs, Duration wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool all = true;
  for (const auto& dir : dirs) {
    for (;;) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) {
        all = false;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  return all;
}

namespace {

std::optional<std::uint64_t> read_u64(const fs::path& path) {
  auto text = read_file(path);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p == text.data()) return std::nullopt;
  return v;
}

}  // namespace

Usage usage(const std::vector<std::string>& dirs) {
  Usage u;
  for (const auto& dir : dirs) {
    fs::path d(dir);
    if (!u.cpu_seconds) {
      if (auto ns = read_u64(d / "cpuacct.usage")) {
        u.cpu_seconds = static_cast<double>(*ns) / 1e9;
      } else if (auto stat = read_file(d / "cpu.stat"); !stat.empty()) {
        auto us = keyed_value(stat, "usage_usec");
        if (us >= 0) u.cpu_seconds = static_cast<double>(us) / 1e6;
      }
    }
    if (!u.memory) {
      std::optional<std::uint64_t> used;
      std::int64_t inactive = -1;
      bool v2 = false;
      if (auto v = read_u64(d / "memory.current")) {
        used = v;
        v2 = true;
        inactive = keyed_value(read_file(d / "memory.stat"), "inactive_file");
      } else if (auto v1 = read_u64(d / "memory.usage_in_bytes")) {
        used = v1;
        inactive = keyed_value(read_file(d / "memory.stat"), "total_inactive_file");
      }
      if (used) {
        auto free = inactive > 0 ? static_cast<std::uint64_t>(inactive) : 0;
        u.memory = *used > free ? *used - free : 0;
        if (v2) {
          auto max = read_file(d / "memory.max");
          if (auto limit = read_u64(d / "memory.max"); limit && !max.starts_with("max")) u.memory_limit = limit;
        } else if (auto limit = read_u64(d / "memory.limit_in_bytes"); limit && *limit < (1ull << 60)) {
          u.memory_limit = limit;
        }
      }
    }
  }
  return u;
}

std::vector<std::string> dirs_of_pid(pid_t pid, const fs::path& proc, const fs::path& mountinfo) {
  if (pid <= 0) return {};
  // The mounts: for each v1 controller (and "" for v2) the mount point and the part of the
  // hierarchy it shows (its root), so that a cgroup path maps to a directory.
  struct MountOf {
    fs::path mount;
    std::string root;
  };
  std::vector<std::pair<std::string, MountOf>> mounts;
  std::ifstream in(mountinfo);
  for (std::string line; std::getline(in, line);) {
    auto fields = split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || std::distance(dash, fields.end()) < 4) continue;
    const auto& fstype = *(dash + 1);
    MountOf m{unescape(fields[4]), unescape(fields[3])};
    if (fstype == "cgroup2") {
      mounts.emplace_back("", m);
    } else if (fstype == "cgroup") {
      for (const auto& opt : split(*(dash + 3), ','))
        if (opt == "memory" || opt == "cpu" || opt == "cpuacct") mounts.emplace_back(opt, m);
    }
  }
  std::vector<std::string> out;
  std::istringstream cg(read_file(proc / std::to_string(pid) / "cgroup"));
  for (std::string line; std::getline(cg, line);) {
    // "4:memory:/libpod_parent/libpod-…", "2:cpu,cpuacct:/…", "0::/…" (v2)
    auto first = line.find(':');
    auto second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    auto controllers = split(line.substr(first + 1, second - first - 1), ',');
    std::string path = line.substr(second + 1);
    bool v2 = controllers.size() == 1 && controllers[0].empty();
    for (const auto& [name, m] : mounts) {
      bool match = v2 ? name.empty() : !name.empty() && has(controllers, name);
      if (!match) continue;
      // The mount shows the hierarchy from m.root down: the path must lie under it.
      std::string rel = path;
      if (m.root != "/") {
        if (!(rel == m.root || rel.starts_with(m.root + "/"))) continue;
        rel = rel.substr(m.root.size());
      }
      auto dir = (m.mount / fs::path(rel).relative_path()).lexically_normal().string();
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (std::find(out.begin(), out.end(), dir) == out.end() && fs::is_directory(dir)) out.push_back(dir);
      break;
    }
  }
  return out;
}

}  // namespace neurod::executor::cgroups

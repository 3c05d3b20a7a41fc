// The `process` runner (DESIGN §8): a host command in a bubblewrap sandbox, in cgroups made
// by neurod, for machines with no container engine. LaunchSpec::image is unused: the
// command runs from the host's own /usr (read-only), so the spec must carry a command.
//
// Jobs outlive the daemon. Each attempt has a run directory <run_dir>/<job_id>/:
//   spec.json  what adopt() needs again (id, attempt, cgroup paths, limits; never the env)
//   lock       flock()ed by the supervisor for as long as it lives: "alive" without pids
//   pid        the supervisor's pid (checked against its cwd before it is signalled)
//   output     the job's stdout and stderr, appended by the job itself
//   status     bwrap's --json-status-fd: the sandbox's pid 1 and pid namespace, then the
//              job's exit code (absent when bwrap failed to set up or to exec the command)
//   exit       the supervisor's record of bwrap's exit status, written tmp + rename
//   offset     how much of `output` is in the LogStore (see drain())
//   stop       written by stop(): the SIGKILL deadline, so a stop survives a restart
//   tmp/ work/ the job's /tmp and working directory (on disk, not in RAM)
//
// The supervisor is /bin/sh running a fixed script (kSupervisor), started by a double fork
// with setsid, so it is nobody's child and no pipe ties it to neurod. It stays outside the
// job's cgroups (an OOM kill or a cgroup kill never takes it); a second shell (kJoin) joins
// the cgroups and execs bwrap, whose --die-with-parent ends the job if the supervisor is
// ever killed. User strings reach the scripts only as positional parameters, never as
// script text. The job's environment goes to bwrap as --clearenv/--setenv arguments read
// from a memfd (--args 4): never on a command line, never on disk, and never in the
// shells' own environment (where /bin/sh = bash would import BASH_FUNC_* from it).
#include "modules/executor/cgroups.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/log_store.hpp"
#include "modules/executor/port_connect.hpp"
#include "modules/executor/secret_files.hpp"
#include "modules/executor/session.hpp"

#include "core/errors.hpp"
#include "core/log.hpp"

#include <dirent.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace neurod::executor {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr auto kTick = 100ms;                      // how often running jobs are looked at
constexpr auto kStartingTick = 5ms;                // how often a job about to start is looked at
// Output wakes the loop at once (inotify on each job's `output`), then at most once per this
// long while it keeps coming: a line reaches the LogStore within milliseconds, and a job that
// prints without pause costs at most ~200 drains a second, not one per write.
constexpr auto kOutputCoalesce = 5ms;
constexpr std::size_t kMaxLine = 64 * 1024;        // longer output without a newline is cut into lines
constexpr std::size_t kReadChunk = 1 << 20;        // at most this much output per batch
constexpr int kChunksPerTick = 8;                  // so that one chatty job cannot starve the others
constexpr std::uint64_t kPunchEvery = 4ull << 20;  // free the disk under consumed output this often
constexpr Duration kOrphanGrace = 10s;             // for attempts adopt() finds but nobody expects
constexpr auto kSupervisorKillAfter = 2s;          // after SIGKILL, if the job is still there
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// $1 run dir, $2 mv, $3 cgroup.procs files (newline-separated), $4 kJoin, then bwrap's argv.
// fd 4 is the job's environment (bwrap reads and closes it); fd 9 holds the run dir's lock,
// which the job must not inherit (9>&-), or a job that forked a daemon would look alive
// forever.
constexpr const char* kSupervisor = R"sh(d=$1 mv=$2 cg=$3 join=$4
shift 4
echo $$ >"$d/pid"
/bin/sh -c "$join" neurod-job "$cg" "$@" 3>"$d/status" 9>&-
code=$?
echo "$code" >"$d/exit.tmp" && "$mv" -f "$d/exit.tmp" "$d/exit"
)sh";

// Joins the cgroups before exec, so that bwrap and everything it starts is counted from
// the first instruction. A failure is said in the job's own log, and the job still runs.
constexpr const char* kJoin = R"sh(set -f
IFS='
'
for f in $1; do
  echo $$ 2>/dev/null >"$f" || echo "neurod: could not join the cgroup ${f%/cgroup.procs}: limits are not enforced" >&2
done
unset IFS
shift
exec "$@"
)sh";

// ---------------------------------------------------------------------------------------
// Small file and process helpers

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// tmp + rename: a reader (or a restarted neurod) sees the old content or the new, whole.
void write_atomic(const fs::path& path, std::string_view content) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) throw Error(errc::internal, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(errc::internal, "cannot rename " + tmp.string() + ": " + ec.message());
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  std::int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string read_link(const fs::path& path) {
  char buf[4096];
  auto n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::optional<TimePoint> mtime(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(st.st_mtim.tv_sec) +
                                                               std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// The supervisor holds an exclusive flock on `lock` for its whole life; a shared probe that
// fails means it is alive. Unlike a pid, this cannot be fooled by pid reuse or by a zombie
// that nobody reaps (neurod is not the supervisor's parent).
bool supervisor_alive(const fs::path& dir) {
  int fd = ::open((dir / "lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

// The supervisor's pid, only when it is still that supervisor (its cwd is the run dir).
pid_t supervisor_pid(const fs::path& dir) {
  auto text = read_text(dir / "pid");
  auto pid = text ? parse_int(*text) : std::nullopt;
  if (!pid || *pid <= 1) return 0;
  std::error_code ec;
  auto canonical = fs::weakly_canonical(dir, ec);
  if (read_link("/proc/" + std::to_string(*pid) + "/cwd") != canonical.string()) return 0;
  return static_cast<pid_t>(*pid);
}

std::optional<std::string> which(const std::string& name) {
  auto executable = [](const fs::path& p) {
    return ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p) ? std::optional(fs::absolute(p).string())
                                                                    : std::nullopt;
  };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) return executable(name);
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : kDefaultPath;
  std::istringstream in(dirs);
  for (std::string dir; std::getline(in, dir, ':');)
    if (!dir.empty())
      if (auto found = executable(fs::path(dir) / name)) return found;
  return std::nullopt;
}

// Runs a short command and returns its exit status and output (stdout and stderr).
std::pair<int, std::string> run_capture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, std::strerror(errno)};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string path_env = std::string("PATH=") + kDefaultPath;
  char* env[] = {path_env.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    for (;;) {
      auto n = ::read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fds[0]);
  if (rc != 0) return {-1, std::strerror(rc)};
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return {out.empty() ? 0 : -1, out};  // SIGCHLD ignored: judge by the output
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

bool valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id.front() == '.' || id.front() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

bool under(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// ---------------------------------------------------------------------------------------
// bwrap's --json-status-fd output

struct Status {
  pid_t init = 0;                // the sandbox's pid 1 (bwrap's reaper), as a host pid
  std::uint64_t pidns = 0;       // its pid namespace's inode: proves a pid is still this sandbox
  std::optional<int> exit_code;  // the command's; absent when bwrap failed before or at exec
};

Status read_status(const fs::path& dir) {
  Status st;
  auto text = read_text(dir / "status");
  if (!text) return st;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    if (j.contains("child-pid") && j["child-pid"].is_number_integer()) st.init = j["child-pid"].get<pid_t>();
    if (j.contains("pid-namespace") && j["pid-namespace"].is_number_unsigned())
      st.pidns = j["pid-namespace"].get<std::uint64_t>();
    if (j.contains("exit-code") && j["exit-code"].is_number_integer()) st.exit_code = j["exit-code"].get<int>();
  }
  return st;
}

std::string pidns_of(pid_t pid) { return read_link("/proc/" + std::to_string(pid) + "/ns/pid"); }

bool sandbox_present(const Status& st) {
  return st.init > 0 && st.pidns > 0 && pidns_of(st.init) == "pid:[" + std::to_string(st.pidns) + "]";
}

// Signals every process of the job: all those in the sandbox's pid namespace but its pid 1
// (bwrap's reaper, which ends with the command and takes the namespace down with it).
// Returns how many processes it signalled (0 while bwrap has not started the command yet).
int signal_sandbox(const Status& st, int sig) {
  auto want = "pid:[" + std::to_string(st.pidns) + "]";
  DIR* proc = ::opendir("/proc");
  if (!proc) return 0;
  int n = 0;
  while (auto* entry = ::readdir(proc)) {
    auto pid = parse_int(entry->d_name);
    if (!pid || *pid <= 1 || *pid == st.init) continue;
    if (pidns_of(static_cast<pid_t>(*pid)) == want && ::kill(static_cast<pid_t>(*pid), sig) == 0) ++n;
  }
  ::closedir(proc);
  return n;
}

// ---------------------------------------------------------------------------------------
// Output → lines. The same rule must cut the same bytes into the same lines at any later
// time (resuming after a restart counts lines), so it depends only on the bytes: a line
// ends at "\n", or after kMaxLine bytes without one, or at the end of a finished job.

struct Unit {
  std::string_view text;
  std::size_t end;  // offset just past it in the buffer
};

std::vector<Unit> split_units(std::string_view buf, bool final) {
  std::vector<Unit> out;
  std::size_t pos = 0;
  while (pos < buf.size()) {
    auto window = buf.substr(pos, kMaxLine);
    auto nl = window.find('\n');
    if (nl != std::string_view::npos) {
      out.push_back({window.substr(0, nl), pos + nl + 1});
      pos += nl + 1;
    } else if (window.size() == kMaxLine || final) {
      out.push_back({window, pos + window.size()});
      pos += window.size();
    } else {
      break;
    }
  }
  return out;
}

std::string read_range(int fd, std::uint64_t offset, std::size_t max) {
  std::string buf(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    auto n = ::pread(fd, buf.data() + got, max - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  buf.resize(got);
  return buf;
}

std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint from_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// ---------------------------------------------------------------------------------------
// The sandbox

// A failure of the job itself found before it starts (bad mount, no such GPU): an exited
// event with ContainerCannotRun, never an exception out of launch().
struct CannotRun {
  std::string message;
};

// Binds the host directory `dir` read-only at the same place. A mount target inside it
// that the host lacks (a secret file at /etc/key, a volume at /opt/data) would need its
// mount point made inside that read-only bind: bwrap fails there (EROFS), and a writable
// bind would get it made on the host. So then the directory is a directory of the
// sandbox's own root instead, with each host entry bound into it, and so on down the
// target's path: the mount point is made in the sandbox, the rest looks the same.
void bind_host_dir(const std::string& dir, const std::vector<std::string>& targets, std::vector<std::string>& a) {
  bool expand = std::any_of(targets.begin(), targets.end(), [&](const std::string& t) {
    std::error_code ec;
    return t != dir && under(t, dir) && !fs::exists(fs::symlink_status(t, ec));
  });
  if (!expand) {
    a.insert(a.end(), {"--ro-bind", dir, dir});
    return;
  }
  a.insert(a.end(), {"--dir", dir});
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto path = dir + "/" + name;
    auto st = fs::symlink_status(path, ec);
    if (ec) continue;
    if (fs::is_symlink(st))
      a.insert(a.end(), {"--symlink", read_link(path), path});
    else if (fs::is_directory(st))
      bind_host_dir(path, targets, a);
    else
      a.insert(a.end(), {"--ro-bind-try", path, path});
  }
}

// Host directories every job sees read-only: the OS and its software (/usr, /opt), its
// configuration (/etc, with the password hashes and neurod's own configuration hidden),
// /sys (CPU topology, GPUs), and systemd-resolved's directory that /etc/resolv.conf may
// point into. `targets`: the job's mount targets (see bind_host_dir).
void system_args(bool root, std::vector<std::string>& a, const std::vector<std::string>& targets = {}) {
  // No cgroup namespace: with the host's /sys, the job finds its own limits through its real
  // cgroup path in /proc/self/cgroup (as the JVM, Go and PyTorch look for them).
  a.insert(a.end(), {"--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"});
  if (root) {
    // The job runs as root (files in mounts keep their owners, as in a container), with
    // Docker's default capabilities less NET_RAW (the network is the host's) and MKNOD (no
    // device cgroup stops a made block device).
    a.insert(a.end(), {"--cap-drop", "ALL"});
    for (const char* cap :
         {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
          "CAP_SETPCAP", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"})
      a.insert(a.end(), {"--cap-add", cap});
  } else {
    a.push_back("--unshare-user");  // unprivileged namespaces: the job keeps neurod's uid
  }
  bind_host_dir("/usr", targets, a);
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    auto st = fs::symlink_status(d, ec);
    if (ec) continue;
    if (fs::is_symlink(st))
      a.insert(a.end(), {"--symlink", read_link(d), d});
    else if (fs::is_directory(st))
      bind_host_dir(d, targets, a);
  }
  for (const char* d : {"/opt", "/etc", "/run/systemd/resolve"})
    if (fs::is_directory(d)) bind_host_dir(d, targets, a);
  if (fs::is_directory("/sys")) a.insert(a.end(), {"--ro-bind", "/sys", "/sys"});
  for (const char* f : {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"})
    if (fs::exists(f)) a.insert(a.end(), {"--ro-bind", "/dev/null", f});
  if (fs::is_directory("/etc/neurod")) a.insert(a.end(), {"--tmpfs", "/etc/neurod"});
  // A fresh /proc for the pid namespace; its /proc/sys is host-wide, so read-only.
  a.insert(a.end(), {"--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger",
                     "/proc/sysrq-trigger", "--dev", "/dev"});
}

// Paths the system binds above put in place (a working dir under them must exist already).
const std::vector<std::string>& system_paths() {
  static const std::vector<std::string> paths = {"/usr", "/bin", "/sbin", "/lib",  "/lib32", "/lib64", "/libx32",
                                                 "/opt", "/etc", "/sys",  "/proc", "/dev",   "/run"};
  return paths;
}

struct Launch {
  std::vector<std::string> bwrap_args;  // after the bwrap path, before "--"
  std::string env_args;                 // NUL-separated --clearenv, --setenv K V... for --args
};

// `secret_mounts`: the job's secret files on the host (SecretFiles::materialise), bound
// read-only at their targets. The caller has checked the targets (check_targets).
Launch sandbox_for(const LaunchSpec& spec, const fs::path& dir, bool root, const std::vector<Mount>& secret_mounts) {
  Launch out;
  auto& a = out.bwrap_args;
  // All of them, parents before children (bwrap mounts in order); check_targets() keeps
  // secret files out of the volumes, so they sort among them safely.
  auto mounts = spec.mounts;
  mounts.insert(mounts.end(), secret_mounts.begin(), secret_mounts.end());
  for (auto& m : mounts) {
    while (m.target.size() > 1 && m.target.back() == '/') m.target.pop_back();
    if (m.source.empty() || m.source.front() != '/')
      throw CannotRun{"invalid mount source \"" + m.source + "\": it must be an absolute path"};
    for (const char* p : {"/proc", "/sys"})
      if (under(m.target, p)) throw CannotRun{"cannot mount a volume at " + m.target + ": " + p + " is the kernel's"};
  }
  std::stable_sort(mounts.begin(), mounts.end(), [](const Mount& x, const Mount& y) { return x.target < y.target; });
  std::vector<std::string> targets;
  for (const auto& m : mounts) targets.push_back(m.target);
  system_args(root, a, targets);
  a.insert(a.end(), {"--hostname", spec.job_id.substr(0, 63)});

  if (spec.shm > 0) a.insert(a.end(), {"--size", std::to_string(spec.shm)});
  a.insert(a.end(), {"--tmpfs", "/dev/shm"});

  std::vector<std::string> gpus;
  for (const auto& id : spec.gpu_ids) {
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw CannotRun{"invalid GPU id \"" + id + "\""};
    auto node = "/dev/nvidia" + id;
    if (!fs::exists(node)) throw CannotRun{"GPU " + id + ": " + node + " does not exist on this node"};
    a.insert(a.end(), {"--dev-bind", node, node});
    gpus.push_back(id);
  }
  if (!gpus.empty())
    for (const char* node : {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"})
      if (fs::exists(node)) a.insert(a.end(), {"--dev-bind", node, node});

  a.insert(a.end(), {"--bind", (dir / "tmp").string(), "/tmp"});

  // The working directory: inside a mount or a system path it must exist; under /tmp it is
  // made there; anywhere else it is the run dir's work/ (on disk, kept until remove()).
  // Before the mounts, which may lie inside it.
  std::string wd = spec.working_dir.empty() ? "/" : spec.working_dir;
  if (wd.front() != '/') throw CannotRun{"invalid working directory \"" + wd + "\": it must be an absolute path"};
  while (wd.size() > 1 && wd.back() == '/') wd.pop_back();
  bool covered = wd == "/";
  for (const auto& p : system_paths()) covered = covered || under(wd, p);
  for (const auto& m : mounts) covered = covered || under(wd, m.target);
  if (!covered && under(wd, "/tmp")) {
    a.insert(a.end(), {"--dir", wd});
  } else if (!covered) {
    fs::create_directories(dir / "work");
    a.insert(a.end(), {"--bind", (dir / "work").string(), wd});
  }

  for (const auto& m : mounts) a.insert(a.end(), {m.read_only ? "--ro-bind" : "--bind", m.source, m.target});
  // Everything else on the sandbox's root stays read-only (it is RAM, and not the job's).
  a.insert(a.end(), {"--remount-ro", "/", "--chdir", wd, "--json-status-fd", "3"});

  // The environment, exactly the spec's (with PATH, HOME and PWD where it has none).
  std::vector<std::pair<std::string, std::string>> env;
  auto set = [&](const std::string& k, const std::string& v) {
    for (auto& kv : env)
      if (kv.first == k) {
        kv.second = v;
        return;
      }
    env.emplace_back(k, v);
  };
  auto has = [&](const std::string& k) {
    return std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == k; });
  };
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      warn("process runner: job {}: skipping the environment variable \"{}\" (invalid name)", spec.job_id, k);
      continue;
    }
    set(k, v);
  }
  if (!has("PATH")) set("PATH", kDefaultPath);
  if (!has("HOME")) set("HOME", wd == "/" ? "/tmp" : wd);
  if (!gpus.empty()) {
    std::string host_ids, ordinals;
    for (std::size_t i = 0; i < gpus.size(); ++i) {
      host_ids += (i ? "," : "") + gpus[i];
      ordinals += (i ? "," : "") + std::to_string(i);
    }
    // Only the assigned device nodes exist in the sandbox, so CUDA numbers them from 0.
    if (!has("NVIDIA_VISIBLE_DEVICES")) set("NVIDIA_VISIBLE_DEVICES", host_ids);
    if (!has("CUDA_VISIBLE_DEVICES")) set("CUDA_VISIBLE_DEVICES", ordinals);
  }
  if (!has("PWD")) set("PWD", wd);
  out.env_args = std::string("--clearenv") + '\0';
  for (const auto& [k, v] : env) out.env_args += std::string("--setenv") + '\0' + k + '\0' + v + '\0';
  return out;
}

// Starts the supervisor: fork, setsid, fork again (so that it is nobody's child and outlives
// neurod), reset what neurod's threads set (signal mask and dispositions, open fds), exec.
// Between fork and exec only async-signal-safe calls: neurod has other threads.
void spawn_supervisor(const fs::path& dir, const std::vector<std::string>& argv, const std::string& env_args,
                      int lock_fd, int out_fd) {
  // The job's environment, for bwrap's --args 4: in memory only, readable once.
  int env_fd = ::memfd_create("neurod-job-env", MFD_CLOEXEC);
  if (env_fd < 0) throw Error(errc::internal, std::string("memfd_create: ") + std::strerror(errno));
  for (std::size_t done = 0; done < env_args.size();) {
    auto n = ::write(env_fd, env_args.data() + done, env_args.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(env_fd);
      throw Error(errc::internal, std::string("cannot write the job's environment: ") + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  ::lseek(env_fd, 0, SEEK_SET);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  // Above 9 so that dup2 to 0, 1, 2, 4 and 9 cannot clobber one of them.
  int fds[4] = {null_fd < 0 ? -1 : ::fcntl(null_fd, F_DUPFD_CLOEXEC, 10), ::fcntl(out_fd, F_DUPFD_CLOEXEC, 10),
                ::fcntl(lock_fd, F_DUPFD_CLOEXEC, 10), ::fcntl(env_fd, F_DUPFD_CLOEXEC, 10)};
  if (null_fd >= 0) ::close(null_fd);
  ::close(env_fd);
  auto close_all = [&] {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  };
  if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0) {
    close_all();
    throw Error(errc::internal, std::string("cannot duplicate descriptors: ") + std::strerror(errno));
  }
  std::vector<char*> args, envp;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  std::string path_env = std::string("PATH=") + kDefaultPath;
  envp.push_back(path_env.data());
  envp.push_back(nullptr);
  auto dir_string = dir.string();
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;

  pid_t child = ::fork();
  if (child < 0) {
    int err = errno;
    close_all();
    throw Error(errc::internal, std::string("fork: ") + std::strerror(err));
  }
  if (child == 0) {
    if (::setsid() < 0) ::_exit(1);
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    if (::dup2(fds[0], 0) < 0 || ::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0 || ::dup2(fds[3], 4) < 0 ||
        ::dup2(fds[2], 9) < 0)
      ::_exit(1);
    if (::close_range(3, 3, 0) != 0 || ::close_range(5, 8, 0) != 0 || ::close_range(10, ~0U, 0) != 0) {
      for (int fd = 3; fd < max_fd; ++fd)
        if (fd != 4 && fd != 9) ::close(fd);
    }
    if (::chdir(dir_string.c_str()) != 0) ::_exit(1);
    ::execve("/bin/sh", args.data(), envp.data());
    ::_exit(127);
  }
  close_all();
  int status = 0;
  pid_t waited;
  while ((waited = ::waitpid(child, &status, 0)) < 0 && errno == EINTR) {
  }
  // (ECHILD: SIGCHLD is ignored, the status is lost; the watcher still sees a dead supervisor.)
  if (waited == child && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    throw Error(errc::internal, "could not start the job's supervisor (setsid or fork failed)");
}

// ---------------------------------------------------------------------------------------
// Interactive sessions: exec and attach; signals

// The job's command: the process of the sandbox whose parent is its pid 1 (bwrap's reaper).
pid_t main_pid(const Status& st) {
  if (!sandbox_present(st)) return 0;
  auto want = "pid:[" + std::to_string(st.pidns) + "]";
  DIR* proc = ::opendir("/proc");
  if (!proc) return 0;
  pid_t found = 0;
  while (auto* entry = ::readdir(proc)) {
    auto pid = parse_int(entry->d_name);
    if (!pid || *pid <= 1 || *pid == st.init) continue;
    auto stat = read_text("/proc/" + std::to_string(*pid) + "/stat");
    if (!stat) continue;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    auto close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat->substr(close + 1));
    std::string state;
    long ppid = 0;
    in >> state >> ppid;
    if (ppid == st.init && pidns_of(static_cast<pid_t>(*pid)) == want) {
      found = static_cast<pid_t>(*pid);
      break;
    }
  }
  ::closedir(proc);
  return found;
}

// Docker's default capabilities less NET_RAW and MKNOD, as the job has (system_args).
constexpr const char* kExecCaps =
    "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+setfcap,+net_bind_service,"
    "+sys_chroot,+audit_write";

// A command run inside a running job's sandbox: nsenter into the namespaces of the job's
// command (mount with its root and working directory, pid, ipc, uts; the network is the
// host's anyway), after joining the job's cgroups, with the job's environment and no more
// capabilities than the job has. A pty for a TTY, pipes otherwise.
class ProcessExec final : public IoSession {
 public:
  ProcessExec(SessionSet& set, SessionCallbacks callbacks, fs::path dir, std::vector<std::string> cgroups,
              SessionSpec spec)
      : IoSession(set, std::move(callbacks)), dir_(std::move(dir)), cgroups_(std::move(cgroups)), spec_(std::move(spec)) {}

 protected:
  void prepare() override {
    auto target = main_pid(read_status(dir_));
    if (target <= 0) throw Error(errc::conflict, "the job is not running");
    auto environ = read_text("/proc/" + std::to_string(target) + "/environ");
    if (!environ) throw Error(errc::conflict, "the job is not running");
    auto nsenter = which("nsenter");
    if (!nsenter) throw Error(errc::unavailable, "exec in the process runtime needs nsenter (util-linux)");
    auto setpriv = which("setpriv");

    std::vector<std::string> argv = {*nsenter, "-t", std::to_string(target), "-m", "-p", "-i", "-u", "-r", "-w", "--"};
    // With a terminal, the command gets a session of its own inside the job's pid namespace:
    // an interactive shell sets the terminal's process group, and one from outside the
    // namespace (neurod's side) is not there to set back ("Cannot set tty process group").
    if (spec_.tty)
      if (auto setsid = which("setsid")) argv.insert(argv.end(), {*setsid, "-w", "-c"});
    if (setpriv)
      argv.insert(argv.end(), {*setpriv, "--no-new-privs", "--inh-caps=-all", std::string("--bounding-set=") + kExecCaps,
                               "--"});
    argv.insert(argv.end(), spec_.command.begin(), spec_.command.end());
    std::vector<std::string> env;
    for (std::size_t pos = 0; pos < environ->size();) {
      auto end = environ->find('\0', pos);
      if (end == std::string::npos) end = environ->size();
      if (end > pos) env.push_back(environ->substr(pos, end - pos));
      pos = end + 1;
    }
    std::vector<std::string> procs;
    for (const auto& c : cgroups_) procs.push_back((fs::path(c) / "cgroup.procs").string());

    // Descriptors for the child: 0, 1, 2.
    int child_fds[3] = {-1, -1, -1};
    std::vector<int> to_close;  // the child's ends, closed here after the fork
    auto fail = [&](const char* what) {
      int err = errno;
      for (int fd : to_close) ::close(fd);
      throw Error(errc::internal, std::string(what) + ": " + std::strerror(err));
    };
    if (spec_.tty) {
      int master = -1, slave = -1;
      winsize ws{};
      ws.ws_row = static_cast<unsigned short>(spec_.height ? spec_.height : 24);
      ws.ws_col = static_cast<unsigned short>(spec_.width ? spec_.width : 80);
      if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) fail("openpty");
      ::fcntl(master, F_SETFD, FD_CLOEXEC);
      ::fcntl(slave, F_SETFD, FD_CLOEXEC);
      master_ = master;
      sources_.push_back({master, 1});
      in_fd_ = master;
      child_fds[0] = child_fds[1] = child_fds[2] = slave;
      to_close.push_back(slave);
    } else {
      int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (null_fd < 0) fail("open /dev/null");
      to_close.push_back(null_fd);
      child_fds[0] = child_fds[1] = child_fds[2] = null_fd;
      int p[2];
      if (spec_.use_stdin) {
        if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe");
        child_fds[0] = p[0];
        to_close.push_back(p[0]);
        in_fd_ = p[1];
      }
      if (spec_.use_stdout) {
        if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe");
        child_fds[1] = p[1];
        to_close.push_back(p[1]);
        sources_.push_back({p[0], 1});
      }
      if (spec_.use_stderr) {
        if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe");
        child_fds[2] = p[1];
        to_close.push_back(p[1]);
        sources_.push_back({p[0], 2});
      }
    }
    // Above 9 so that dup2 to 0, 1 and 2 cannot clobber one of them.
    int high[3];
    for (int i = 0; i < 3; ++i) {
      high[i] = ::fcntl(child_fds[i], F_DUPFD_CLOEXEC, 10);
      if (high[i] < 0) fail("fcntl");
      to_close.push_back(high[i]);
    }
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<const char*> proc_paths;
    for (const auto& p : procs) proc_paths.push_back(p.c_str());
    bool tty = spec_.tty;

    // Between fork and exec only async-signal-safe calls: neurod has other threads.
    pid_t child = ::fork();
    if (child < 0) fail("fork");
    if (child == 0) {
      ::setsid();
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
      if (::dup2(high[0], 0) < 0 || ::dup2(high[1], 1) < 0 || ::dup2(high[2], 2) < 0) ::_exit(126);
      if (tty) ::ioctl(0, TIOCSCTTY, 0);
      ::close_range(3, ~0U, 0);
      // Join the job's cgroups: the command's memory and CPU count against the job.
      char pid_text[24];
      int len = 0;
      char rev[24];
      for (auto v = static_cast<unsigned long>(::getpid()); v > 0; v /= 10) rev[len++] = static_cast<char>('0' + v % 10);
      for (int i = 0; i < len; ++i) pid_text[i] = rev[len - 1 - i];
      for (const char* path : proc_paths) {
        int fd = ::open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          [[maybe_unused]] auto n = ::write(fd, pid_text, static_cast<std::size_t>(len));
          ::close(fd);
        }
      }
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    child_ = child;
    for (int fd : to_close) ::close(fd);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    if (pidfd >= 0) {
      wait_fd_ = pidfd;
    } else {
      tick_ = std::chrono::milliseconds(50);  // no pidfd: look with waitpid
    }
  }

  void on_tick() override {
    if (wait_fd_ >= 0 || child_ <= 0) return;
    reap(false);
    if (child_ <= 0) end_now();
  }

  void do_resize(unsigned height, unsigned width) override {
    if (master_ < 0) return;
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(height);
    ws.ws_col = static_cast<unsigned short>(width);
    ::ioctl(master_, TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH to the foreground group
  }

  void do_close_stdin() override {
    if (master_ >= 0) {
      // A terminal has no half-close: end-of-file is ^D at the start of a line.
      char eot = 4;
      [[maybe_unused]] auto n = ::write(master_, &eot, 1);
      return;
    }
    IoSession::do_close_stdin();
  }

  std::pair<std::optional<int>, std::string> finish() override {
    reap(true);
    if (!status_) return {std::nullopt, "the command's exit status was lost"};
    int st = *status_;
    if (WIFEXITED(st)) return {WEXITSTATUS(st), ""};
    if (WIFSIGNALED(st)) return {128 + WTERMSIG(st), ""};
    return {std::nullopt, "the command's exit status was lost"};
  }

  void teardown() override {
    if (child_ <= 0) return;
    ::kill(-child_, SIGKILL);
    ::kill(child_, SIGKILL);
    reap(true);
  }

 private:
  void reap(bool block) {
    if (child_ <= 0) return;
    int st = 0;
    pid_t r;
    while ((r = ::waitpid(child_, &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == child_) {
      status_ = st;
      child_ = 0;
    } else if (r < 0) {
      child_ = 0;  // ECHILD: someone reaped it (SIGCHLD ignored): the status is lost
    }
  }

  fs::path dir_;
  std::vector<std::string> cgroups_;
  SessionSpec spec_;
  int master_ = -1;  // the pty (owned through sources_)
  pid_t child_ = 0;
  std::optional<int> status_;
};

// Attach in the process runtime: the job's output as it is written (stdout and stderr
// together, as the runtime records them, on the stdout channel). The job's stdin is
// /dev/null, so attach cannot give it input, and it has no terminal to resize.
class ProcessAttach final : public IoSession {
 public:
  ProcessAttach(SessionSet& set, SessionCallbacks callbacks, fs::path dir)
      : IoSession(set, std::move(callbacks)), dir_(std::move(dir)) {
    tick_ = std::chrono::milliseconds(50);
  }

 protected:
  void prepare() override {
    fd_ = ::open((dir_ / "output").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(errc::conflict, "the job is not running");
    struct stat sb {};
    ::fstat(fd_, &sb);
    offset_ = static_cast<std::uint64_t>(sb.st_size);
  }

  void on_tick() override {
    bool ended = !supervisor_alive(dir_) || fs::exists(dir_ / "exit");
    read_new();
    if (ended) {
      read_new();
      end_now();
    }
  }

  std::pair<std::optional<int>, std::string> finish() override {
    auto st = read_status(dir_);
    if (st.exit_code) return {*st.exit_code, ""};
    if (auto text = read_text(dir_ / "exit"))
      if (auto v = parse_int(*text)) return {static_cast<int>(*v), ""};
    return {std::nullopt, "the job ended without an exit status"};
  }

  void teardown() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void read_new() {
    for (int i = 0; i < 16; ++i) {
      auto chunk = read_range(fd_, offset_, 64 * 1024);
      if (chunk.empty()) return;
      offset_ += chunk.size();
      emit(1, chunk);
    }
  }

  fs::path dir_;
  int fd_ = -1;
  std::uint64_t offset_ = 0;
};

// ---------------------------------------------------------------------------------------

class ProcessRunner final : public Runner {
 public:
  ProcessRunner(const ProcessOptions& options, LogStore& logs, EventSink sink)
      : options_(options),
        logs_(logs),
        sink_(std::move(sink)),
        cgroups_(options.cgroup_parent),
        secrets_(options.secrets_dir, options.node_id) {
    if (options_.run_dir.empty())
      throw Error(errc::unavailable, "the process runtime needs a run directory (modules.executor data dir)");
    run_dir_ = fs::absolute(options_.run_dir);
    std::error_code ec;
    fs::create_directories(run_dir_, ec);
    if (ec)
      throw Error(errc::unavailable,
                  "cannot create the process runtime's run directory " + run_dir_.string() + ": " + ec.message());
    fs::permissions(run_dir_, fs::perms::owner_all, ec);

    auto bwrap = which(options_.bwrap);
    if (!bwrap)
      throw Error(errc::unavailable, "bubblewrap (" + options_.bwrap +
                                         ") not found: install it (apt install bubblewrap) or set "
                                         "modules.executor.process.bwrap");
    bwrap_ = *bwrap;
    mv_ = which("mv").value_or("/bin/mv");
    root_ = ::geteuid() == 0;
    auto [vrc, version] = run_capture({bwrap_, "--version"});
    version_ = vrc == 0 && !version.empty() ? version : "bubblewrap";

    // One sandbox like a job's, so that a host where bwrap cannot work says so now.
    std::vector<std::string> check = {bwrap_};
    system_args(root_, check);
    check.insert(check.end(), {"--tmpfs", "/tmp", "--remount-ro", "/", "--", "/bin/true"});
    auto [rc, output] = run_capture(check);
    if (rc != 0)
      throw Error(errc::unavailable, "bubblewrap cannot make a sandbox here (" +
                                         (output.empty() ? "exit " + std::to_string(rc) : output) +
                                         "): run neurod as root, or allow unprivileged user namespaces "
                                         "(sysctl kernel.unprivileged_userns_clone=1)");

    if (!cgroups_.available())
      warn("process runner: cgroups unavailable ({}): memory, CPU and process limits of jobs will not be enforced",
           cgroups_.problem());
    else if (!cgroups_.problem().empty())
      warn("process runner: some cgroup controllers cannot be used ({}): those limits will not be enforced",
           cgroups_.problem());
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { loop(); });
    if (inotify_fd_ >= 0 && stop_fd_ >= 0)
      output_watch_ = std::thread([this] { watch_output(); });
    else
      warn("process runner: inotify unavailable ({}): job output is collected every {} ms", std::strerror(errno),
           std::chrono::duration_cast<std::chrono::milliseconds>(kTick).count());
  }

  ~ProcessRunner() override {
    shutdown();
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  std::string_view kind() const override { return "process"; }

  std::string describe() const override {
    auto out = version_ + " at " + bwrap_ + ", " + cgroups_.describe();
    if (!cgroups_.available()) out += " (limits not enforced: " + cgroups_.problem() + ")";
    return out;
  }

  void launch(const LaunchSpec& spec) override {
    auto fail = [&](const std::string& message) {
      Event e;
      e.job_id = spec.job_id;
      e.attempt = spec.attempt;
      e.kind = Event::Kind::exited;
      e.exit_code = 125;
      e.reason = "ContainerCannotRun";
      e.message = message;
      std::lock_guard lock(mu_);
      pending_.push_back(std::move(e));
      poke_ = true;
      wake_.notify_all();
    };
    if (!valid_job_id(spec.job_id)) return fail("invalid job id \"" + spec.job_id + "\"");
    std::vector<std::string> command = spec.entrypoint;
    command.insert(command.end(), spec.command.begin(), spec.command.end());
    if (command.empty()) return fail("the process runtime needs a command (it has no image to take one from)");

    auto dir = run_dir_ / spec.job_id;
    {
      std::unique_lock lock(mu_);
      if (auto it = jobs_.find(spec.job_id); it != jobs_.end()) {
        if (it->second->attempt == spec.attempt && !it->second->done) {
          warn("process runner: job {} attempt {} is already running; not starting it twice", spec.job_id,
               spec.attempt);
          return;
        }
        auto old = it->second;
        jobs_.erase(it);
        lock.unlock();
        destroy(old->dir, old->cgroups);
      } else if (fs::exists(dir)) {
        // Launched before a restart and still running (launch() came without adopt()):
        // watch it rather than run it twice.
        if (auto found = load(dir); found && found->attempt == spec.attempt && supervisor_alive(dir)) {
          warn("process runner: job {} attempt {} is already running; watching it instead of starting it again",
               spec.job_id, spec.attempt);
          jobs_[spec.job_id] = found;
          poke_ = true;
          wake_.notify_all();
          return;
        }
        lock.unlock();
        warn("process runner: job {}: removing a run directory left by an earlier attempt", spec.job_id);
        destroy(dir, cgroups_of(dir));
      }
    }

    std::vector<std::string> cgroup_dirs;
    try {
      std::error_code ec;
      fs::create_directory(dir, ec);
      if (ec) throw Error(errc::internal, "cannot create " + dir.string() + ": " + ec.message());
      fs::permissions(dir, fs::perms::owner_all, ec);
      fs::create_directory(dir / "tmp", ec);
      fs::permissions(dir / "tmp", fs::perms::all | fs::perms::sticky_bit, ec);

      Launch sandbox;
      try {
        std::vector<Mount> secret_mounts;
        if (auto bad = check_targets(spec)) throw CannotRun{*bad};
        try {
          secret_mounts = secrets_.materialise(spec.job_id, spec.secret_files);
        } catch (const Error& e) {
          throw CannotRun{std::string("cannot write the job's secret files: ") + e.what()};
        }
        sandbox = sandbox_for(spec, dir, root_, secret_mounts);
      } catch (const CannotRun& e) {
        destroy(dir, {});
        secrets_.remove(spec.job_id);
        return fail(e.message);
      }

      bool limited = spec.memory > 0 || spec.cpu > 0;
      if (cgroups_.available()) {
        try {
          cgroup_dirs = cgroups_.create(spec.job_id, {spec.cpu, spec.memory, options_.pids_limit});
        } catch (const Error& e) {
          warn("process runner: job {}: cannot make its cgroups ({}): its limits are not enforced", spec.job_id,
               e.what());
          logs_.append(spec.job_id, Clock::now(),
                       std::string("neurod: cannot make the job's cgroups (") + e.what() +
                           "): memory and CPU limits are not enforced");
        }
      } else if (limited) {
        logs_.append(spec.job_id, Clock::now(),
                     "neurod: cgroups are not available on this node (" + cgroups_.problem() +
                         "): memory and CPU limits are not enforced");
      }

      json record = {{"job_id", spec.job_id},
                     {"attempt", spec.attempt},
                     {"cgroups", cgroup_dirs},
                     {"memory", spec.memory},
                     {"cpu", spec.cpu},
                     {"command", command},
                     {"working_dir", spec.working_dir},
                     {"launched", to_ns(Clock::now())}};
      write_atomic(dir / "spec.json", record.dump(2) + "\n");

      std::string procs;
      for (const auto& d : cgroup_dirs) procs += (procs.empty() ? "" : "\n") + (fs::path(d) / "cgroup.procs").string();
      std::vector<std::string> argv = {
          "/bin/sh", "-c", kSupervisor, "neurod-supervisor", dir.string(), mv_, procs, kJoin, bwrap_, "--args", "4"};
      argv.insert(argv.end(), sandbox.bwrap_args.begin(), sandbox.bwrap_args.end());
      argv.push_back("--");
      argv.insert(argv.end(), command.begin(), command.end());

      // The lock is taken here, before the fork, and handed to the supervisor: from now on
      // the run dir is "alive" until the supervisor ends, with no gap a restart could hit.
      int lock_fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
        throw Error(errc::internal, "cannot lock " + (dir / "lock").string() + ": " + std::strerror(errno));
      int out_fd = ::open((dir / "output").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (out_fd < 0) {
        int err = errno;
        ::close(lock_fd);
        throw Error(errc::internal, "cannot create " + (dir / "output").string() + ": " + std::strerror(err));
      }
      try {
        spawn_supervisor(dir, argv, sandbox.env_args, lock_fd, out_fd);
      } catch (...) {
        ::close(lock_fd);
        ::close(out_fd);
        throw;
      }
      ::close(lock_fd);
      ::close(out_fd);
    } catch (const std::exception& e) {
      error("process runner: cannot start job {}: {}", spec.job_id, e.what());
      destroy(dir, cgroup_dirs);
      secrets_.remove(spec.job_id);
      return fail(std::string("cannot start the job: ") + e.what());
    }

    auto job = std::make_shared<Job>();
    job->id = spec.job_id;
    job->attempt = spec.attempt;
    job->dir = dir;
    job->cgroups = cgroup_dirs;
    job->memory = spec.memory;
    std::lock_guard lock(mu_);
    jobs_[spec.job_id] = job;
    poke_ = true;
    wake_.notify_all();
  }

  void stop(const std::string& job_id, Duration grace) override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second->done) return;
    auto& job = *it->second;
    auto deadline = Clock::now() + std::max(grace, Duration::zero());
    if (job.stop_deadline && *job.stop_deadline <= deadline) return;
    job.stop_deadline = deadline;
    try {
      write_atomic(job.dir / "stop", std::to_string(to_ns(deadline)) + "\n");
    } catch (const Error& e) {
      warn("process runner: job {}: {} (a restart would forget the stop)", job_id, e.what());
    }
    poke_ = true;
    wake_.notify_all();
  }

  void remove(const std::string& job_id) override {
    if (!valid_job_id(job_id)) return;
    std::shared_ptr<Job> job;
    {
      std::lock_guard lock(mu_);
      if (auto it = jobs_.find(job_id); it != jobs_.end()) {
        job = it->second;
        jobs_.erase(it);
      }
    }
    auto dir = run_dir_ / job_id;
    destroy(dir, job ? job->cgroups : cgroups_of(dir));
    secrets_.remove(job_id);
  }

  void adopt(const std::vector<Known>& expected) override {
    std::map<std::string, int> want;
    for (const auto& k : expected) want[k.job_id] = k.attempt;
    std::vector<std::pair<fs::path, std::vector<std::string>>> leftovers;
    {
      std::lock_guard lock(mu_);
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(run_dir_, ec)) {
        if (!entry.is_directory()) continue;
        auto dir = entry.path();
        auto name = dir.filename().string();
        if (jobs_.count(name)) continue;
        auto job = load(dir);
        bool alive = supervisor_alive(dir);
        if (!job) {
          // No spec.json: a launch that died before starting anything.
          if (!alive) leftovers.emplace_back(dir, std::vector<std::string>{});
          continue;
        }
        auto w = want.find(job->id);
        if (w != want.end() && w->second == job->attempt) {
          job->want_running = alive && !fs::exists(dir / "exit");
          jobs_[job->id] = job;
          info("process runner: adopted job {} attempt {} ({})", job->id, job->attempt,
               job->want_running ? "running" : "ended");
        } else if (alive) {
          // Nobody expects it (its job finished): stop it, then remove it, without events.
          job->orphan = true;
          job->want_running = false;
          auto deadline = Clock::now() + kOrphanGrace;
          if (!job->stop_deadline || *job->stop_deadline > deadline) job->stop_deadline = deadline;
          jobs_[job->id] = job;
          info("process runner: stopping job {} attempt {}: not expected here", job->id, job->attempt);
        } else {
          leftovers.emplace_back(dir, job->cgroups);
        }
      }
      // Secret files of jobs nobody expects go now (orphans keep what is mounted already);
      // those of expected attempts go when they end.
      std::set<std::string> keep;
      for (const auto& [id, job] : jobs_)
        if (!job->orphan) keep.insert(id);
      for (const auto& k : expected) keep.insert(k.job_id);
      for (const auto& id : secrets_.remove_except(keep))
        info("process runner: removed the secret files of job {}: not expected here", id);
      for (const auto& k : expected) {
        auto it = jobs_.find(k.job_id);
        if (it != jobs_.end() && it->second->attempt == k.attempt && !it->second->orphan) continue;
        Event e;
        e.job_id = k.job_id;
        e.attempt = k.attempt;
        e.kind = Event::Kind::exited;
        e.exit_code = 0;
        e.reason = "NotFound";
        e.message = "the job's process is gone: no run directory on this node";
        pending_.push_back(std::move(e));
      }
      poke_ = true;
      wake_.notify_all();
    }
    for (const auto& [dir, cgroups] : leftovers) {
      info("process runner: removing {}: not expected here", dir.string());
      destroy(dir, cgroups);
    }
  }

  // Telemetry: straight from the job's cgroups (cpuacct/cpu.stat and memory).
  std::optional<Usage> usage(const std::string& job_id) override {
    std::vector<std::string> dirs;
    {
      std::lock_guard lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end() || it->second->done || it->second->orphan) return std::nullopt;
      dirs = it->second->cgroups;
    }
    if (dirs.empty()) return std::nullopt;
    auto u = cgroups::usage(dirs);
    if (!u.cpu_seconds && !u.memory) return std::nullopt;
    return u;
  }

  // --- Interactive sessions: exec and attach; signals ---

  std::shared_ptr<Session> exec(const std::string& job_id, const SessionSpec& spec,
                                SessionCallbacks callbacks) override {
    if (spec.command.empty()) throw Error(errc::bad_request, "exec needs a command").with_code("command_required");
    auto job = running_job(job_id);
    if (!root_)
      throw Error(errc::unavailable,
                  "exec in the process runtime enters the job's namespaces, which needs neurod to run as root")
          .with_code("exec_unavailable");
    return std::make_shared<ProcessExec>(sessions_, std::move(callbacks), job->dir, job->cgroups, spec);
  }

  std::shared_ptr<Session> attach(const std::string& job_id, const SessionSpec& spec,
                                  SessionCallbacks callbacks) override {
    auto job = running_job(job_id);
    if (spec.use_stdin)
      throw Error(errc::bad_request,
                  "the process runtime gives its jobs no stdin: attach without stdin (its output only)")
          .with_code("stdin_unavailable");
    return std::make_shared<ProcessAttach>(sessions_, std::move(callbacks), job->dir);
  }

  void signal(const std::string& job_id, int signo) override {
    auto job = running_job(job_id);
    auto pid = main_pid(read_status(job->dir));
    if (pid <= 0 || ::kill(pid, signo) != 0) throw job_not_running(job_id);
  }

  // ---- Port-forward and save ----

  // The sandbox shares the host's network (no --unshare-net): the job's ports are the host's.
  int connect(const std::string& job_id, std::uint16_t port) override {
    {
      std::lock_guard lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end() || it->second->done)
        throw Error(errc::conflict, "job " + job_id + " is not running on this node").with_code("job_not_running");
    }
    return connect_port("127.0.0.1", port, job_id);
  }

  std::string save(const std::string& job_id, const std::string&, const std::optional<RegistryAuth>&,
                   const SaveProgress&) override {
    throw Error(errc::bad_request, "job " + job_id +
                                       " runs on the process runtime, which has no images: save needs the docker "
                                       "runtime (modules.executor.runtime: docker)")
        .with_code("save_not_supported");
  }

  void shutdown() override {
    sessions_.shutdown();
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      wake_.notify_all();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    if (output_watch_.joinable() && output_watch_.get_id() != std::this_thread::get_id()) {
      std::uint64_t one = 1;
      auto ignored = ::write(stop_fd_, &one, sizeof one);
      (void)ignored;
      output_watch_.join();
    }
  }

 private:
  // Wakes the loop when a job's output file grows (see kOutputCoalesce).
  void watch_output() {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    alignas(inotify_event) char buf[4096];
    for (;;) {
      int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      while (::read(inotify_fd_, buf, sizeof buf) > 0) {
      }
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        poke_ = true;
      }
      wake_.notify_all();
      std::this_thread::sleep_for(kOutputCoalesce);
    }
  }

  struct Job {
    std::string id;
    int attempt = 0;
    fs::path dir;
    std::vector<std::string> cgroups;
    std::uint64_t memory = 0;
    bool want_running = true;  // emit running (false: adopted after it ended, or an orphan)
    bool running_sent = false;
    bool done = false;  // the exited event was emitted
    bool orphan = false;
    bool log_ready = false;
    int out_fd = -1;
    int out_wd = -1;           // the inotify watch on `output`
    std::uint64_t offset = 0;  // bytes of output in the LogStore
    std::uint64_t punched = 0;
    TimePoint last_batch{};
    std::optional<TimePoint> stop_deadline;
    bool term_sent = false;
    std::optional<std::chrono::steady_clock::time_point> kill_sent;
    bool supervisor_killed = false;
    ~Job() {
      if (out_fd >= 0) ::close(out_fd);
    }
  };

  // The job, when its command runs here now; job_not_running otherwise.
  std::shared_ptr<Job> running_job(const std::string& job_id) {
    std::shared_ptr<Job> job;
    {
      std::lock_guard lock(mu_);
      if (auto it = jobs_.find(job_id); it != jobs_.end() && !it->second->done && !it->second->orphan)
        job = it->second;
    }
    if (!job || fs::exists(job->dir / "exit") || main_pid(read_status(job->dir)) <= 0) throw job_not_running(job_id);
    return job;
  }

  static std::vector<std::string> cgroups_of(const fs::path& dir) {
    auto text = read_text(dir / "spec.json");
    if (!text) return {};
    auto j = json::parse(*text, nullptr, false);
    std::vector<std::string> out;
    if (j.is_object() && j.contains("cgroups") && j["cgroups"].is_array())
      for (const auto& c : j["cgroups"])
        if (c.is_string()) out.push_back(c.get<std::string>());
    return out;
  }

  static std::shared_ptr<Job> load(const fs::path& dir) {
    auto text = read_text(dir / "spec.json");
    if (!text) return nullptr;
    auto j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("job_id") || !j["job_id"].is_string() ||
        j["job_id"].get<std::string>() != dir.filename().string())
      return nullptr;
    auto job = std::make_shared<Job>();
    job->id = j["job_id"].get<std::string>();
    job->attempt = j.value("attempt", 0);
    job->dir = dir;
    job->cgroups = cgroups_of(dir);
    job->memory = j.value("memory", std::uint64_t{0});
    if (auto stop = read_text(dir / "stop"))
      if (auto ns = parse_int(*stop)) job->stop_deadline = from_ns(*ns);
    return job;
  }

  void loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      std::vector<Event> events = std::move(pending_);
      pending_.clear();
      std::vector<std::pair<fs::path, std::vector<std::string>>> finished_orphans;
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        auto& job = *it->second;
        try {
          tick(job, events);
        } catch (const std::exception& e) {
          warn("process runner: job {}: {}", job.id, e.what());
        }
        if (job.done && job.orphan) {
          finished_orphans.emplace_back(job.dir, job.cgroups);
          it = jobs_.erase(it);
        } else {
          ++it;
        }
      }
      lock.unlock();
      // Outside the lock: the sink may call back into the runner (remove() on exited).
      for (const auto& e : events) {
        try {
          sink_(e);
        } catch (const std::exception& ex) {
          error("process runner: the event sink failed for job {}: {}", e.job_id, ex.what());
        }
      }
      for (const auto& [dir, cgroups] : finished_orphans) destroy(dir, cgroups);
      lock.lock();
      if (stopping_) break;
      // A job about to start is looked at often, so that "running" is reported within a few
      // milliseconds of it (the submit-to-running latency users see); the rest at kTick.
      bool starting = false;
      for (const auto& [id, job] : jobs_) starting = starting || (job->want_running && !job->running_sent && !job->done);
      wake_.wait_for(lock, starting ? kStartingTick : kTick, [&] { return poke_ || stopping_; });
      poke_ = false;
    }
  }

  void tick(Job& job, std::vector<Event>& events) {
    if (job.done) return;
    // Liveness before the exit file: the supervisor writes `exit` before it lets the lock
    // go, so "not alive and no exit" really means it died without writing one.
    bool alive = supervisor_alive(job.dir);
    bool exited = fs::exists(job.dir / "exit");
    bool ended = exited || !alive;
    auto st = read_status(job.dir);
    if (!job.log_ready) {
      resume_log(job, ended);
      job.log_ready = true;
    }
    if (job.want_running && !job.running_sent && st.init > 0 && (!ended || st.exit_code)) {
      Event e;
      e.job_id = job.id;
      e.attempt = job.attempt;
      e.kind = Event::Kind::running;
      // The supervisor writes `pid` just before bwrap starts, and never again (bwrap
      // rewrites `status` at the end).
      e.time = mtime(job.dir / "pid").value_or(Clock::now());
      events.push_back(std::move(e));
      job.running_sent = true;
    }
    if (!ended && job.stop_deadline) handle_stop(job, st);
    drain(job, ended);
    if (!ended) return;
    // The attempt is over: its secrets leave the host before anyone hears it ended.
    secrets_.remove(job.id);
    if (!job.orphan) events.push_back(outcome(job, st, exited));
    job.done = true;
    if (job.out_fd >= 0) {
      ::close(job.out_fd);
      job.out_fd = -1;
    }
    if (job.out_wd >= 0) {
      ::inotify_rm_watch(inotify_fd_, job.out_wd);
      job.out_wd = -1;
    }
  }

  void handle_stop(Job& job, const Status& st) {
    bool present = sandbox_present(st);
    // A stop that comes right after the start may find the sandbox without its command
    // yet: SIGTERM counts as sent only once it reached a process (checked again next tick).
    if (!job.term_sent && present && signal_sandbox(st, SIGTERM) > 0) job.term_sent = true;
    auto now = std::chrono::steady_clock::now();
    if (!job.kill_sent && Clock::now() >= *job.stop_deadline) {
      cgroups::kill_all(job.cgroups, SIGKILL);
      if (present) ::kill(st.init, SIGKILL);  // from outside its namespace, pid 1 cannot refuse
      job.kill_sent = now;
    } else if (job.kill_sent && !job.supervisor_killed && now - *job.kill_sent > kSupervisorKillAfter) {
      // Still there: no cgroups, and the sandbox was not set up when SIGKILL was due. Ending
      // the supervisor ends bwrap and the job (--die-with-parent).
      if (auto pid = supervisor_pid(job.dir)) ::kill(pid, SIGKILL);
      job.supervisor_killed = true;
    }
  }

  TimePoint next_batch_time(Job& job) {
    auto t = Clock::now();
    if (t <= job.last_batch) t = job.last_batch + Clock::duration(1);
    job.last_batch = t;
    return t;
  }

  bool open_output(Job& job) {
    if (job.out_fd >= 0) return true;
    job.out_fd = ::open((job.dir / "output").c_str(), O_RDWR | O_CLOEXEC);
    if (job.out_fd >= 0 && job.out_wd < 0 && inotify_fd_ >= 0 && !job.done)
      job.out_wd = ::inotify_add_watch(inotify_fd_, (job.dir / "output").c_str(), IN_MODIFY);
    return job.out_fd >= 0;
  }

  // Output → LogStore, without loss or duplicates across restarts. Every line of a batch
  // gets the same time T, strictly later than anything before in the job's log; before the
  // batch is appended, `offset` records "<where the batch starts> <T>". After a crash in
  // the middle of a batch, the lines with time >= T in the store are exactly the ones of
  // that batch that made it, and resume_log() skips as many.
  void drain(Job& job, bool final) {
    if (!open_output(job)) return;
    for (int round = 0; round < kChunksPerTick; ++round) {
      struct stat sb {};
      if (::fstat(job.out_fd, &sb) != 0) return;
      auto size = static_cast<std::uint64_t>(sb.st_size);
      if (size <= job.offset) break;
      auto buf = read_range(job.out_fd, job.offset,
                            static_cast<std::size_t>(std::min<std::uint64_t>(size - job.offset, kReadChunk)));
      if (buf.empty()) break;
      bool at_end = job.offset + buf.size() >= size;
      auto units = split_units(buf, final && at_end);
      if (units.empty()) break;
      auto t = next_batch_time(job);
      try {
        write_atomic(job.dir / "offset", std::to_string(job.offset) + " " + std::to_string(to_ns(t)) + "\n");
      } catch (const Error& e) {
        warn("process runner: job {}: {} (a restart may repeat log lines)", job.id, e.what());
      }
      // One append for the batch (one write): the store cuts it at each "\n" into the same
      // records as one append per line would make.
      std::string batch;
      batch.reserve(units.back().end + 1);
      for (const auto& u : units) {
        batch += u.text;
        batch += '\n';
      }
      logs_.append(job.id, t, batch);
      // Everything below the batch's start is in the store for good: give the disk back.
      auto start = job.offset;
      job.offset += units.back().end;
      auto aligned = start / 4096 * 4096;
      if (aligned >= job.punched + kPunchEvery) {
        if (::fallocate(job.out_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(aligned)) == 0)
          job.punched = aligned;
        else
          job.punched = UINT64_MAX / 2;  // the filesystem cannot: stop trying
      }
    }
  }

  void resume_log(Job& job, bool ended) {
    job.last_batch = logs_.last_time(job.id).value_or(TimePoint{});
    auto text = read_text(job.dir / "offset");
    if (!text) return;  // nothing was ever appended (the record comes before the lines)
    std::istringstream in(*text);
    std::uint64_t start = 0;
    std::int64_t ns = 0;
    if (!(in >> start >> ns)) return;
    auto t = from_ns(ns);
    job.offset = start;
    job.punched = start / 4096 * 4096;
    if (job.last_batch >= t) {
      std::size_t stored = 0;
      logs_.read(job.id, t, false, [&](const LogLine&) {
        ++stored;
        return true;
      });
      if (stored > 0 && open_output(job)) {
        struct stat sb {};
        ::fstat(job.out_fd, &sb);
        auto buf = read_range(job.out_fd, start, kReadChunk);
        bool at_end = start + buf.size() >= static_cast<std::uint64_t>(sb.st_size);
        auto units = split_units(buf, ended && at_end);
        auto skip = std::min(stored, units.size());
        if (skip > 0) job.offset = start + units[skip - 1].end;
      }
    }
    if (job.last_batch < t) job.last_batch = t;
  }

  Event outcome(Job& job, const Status& st, bool exited) {
    Event e;
    e.job_id = job.id;
    e.attempt = job.attempt;
    e.kind = Event::Kind::exited;
    e.time = (exited ? mtime(job.dir / "exit") : std::nullopt).value_or(Clock::now());
    std::optional<int> code;
    if (auto text = read_text(job.dir / "exit"))
      if (auto v = parse_int(*text)) code = static_cast<int>(*v);
    // A stop that came after the job had ended on its own does not make it "Killed".
    auto stop_time = mtime(job.dir / "stop");
    auto exit_time = mtime(job.dir / "exit");
    bool stopped = stop_time && (!exit_time || *stop_time <= *exit_time);
    int observed = st.exit_code ? *st.exit_code : code.value_or(137);

    if (stopped) {
      e.reason = "Killed";
      e.exit_code = observed;
      e.message = "stopped on request";
    } else if (!code) {
      e.reason = "Error";
      e.exit_code = observed;
      e.message = "the job's supervisor ended without recording an exit status (was it killed?)";
    } else if (observed != 0 && cgroups::oom_killed(job.cgroups)) {
      e.reason = "OOMKilled";
      e.exit_code = observed;
      e.message = job.memory > 0 ? "out of memory: the job reached its memory limit of " + format_size_human(job.memory)
                                 : "out of memory";
    } else if (st.exit_code || *code == 0) {
      e.exit_code = observed;
      e.reason = observed == 0 ? "Completed" : "Error";
      if (observed != 0) e.message = "exit code " + std::to_string(observed);
    } else {
      // bwrap itself failed: setting the sandbox up (a mount) or exec'ing the command.
      e.reason = "ContainerCannotRun";
      e.exit_code = *code;
      auto message = bwrap_message(job);
      const std::string execvp = "execvp ";
      if (message.starts_with(execvp)) {
        auto colon = message.rfind(": ");
        auto what =
            message.substr(execvp.size(), colon == std::string::npos ? std::string::npos : colon - execvp.size());
        if (message.ends_with("No such file or directory")) {
          e.exit_code = 127;
          message = "command not found: " + what;
        } else if (message.ends_with("Permission denied")) {
          e.exit_code = 126;
          message = "command not executable: " + what;
        }
      }
      e.message =
          message.empty() ? "the sandbox could not start (bwrap exit code " + std::to_string(*code) + ")" : message;
    }
    return e;
  }

  // bwrap's own last complaint ("bwrap: execvp foo: No such file or directory"), from the
  // end of the output, without the prefix.
  static std::string bwrap_message(const Job& job) {
    int fd = ::open((job.dir / "output").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    struct stat sb {};
    ::fstat(fd, &sb);
    auto size = static_cast<std::uint64_t>(sb.st_size);
    auto from = size > 8192 ? size - 8192 : 0;
    auto tail = read_range(fd, from, static_cast<std::size_t>(size - from));
    ::close(fd);
    std::string found;
    std::istringstream in(tail);
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("bwrap: ")) found = line.substr(7);
    return found;
  }

  // Ends whatever still runs in a run dir, then deletes it and the job's cgroups.
  void destroy(const fs::path& dir, const std::vector<std::string>& cgroup_dirs) {
    if (supervisor_alive(dir)) {
      cgroups::kill_all(cgroup_dirs, SIGKILL);
      auto st = read_status(dir);
      if (sandbox_present(st)) ::kill(st.init, SIGKILL);
      if (auto pid = supervisor_pid(dir)) ::kill(pid, SIGKILL);
      auto until = std::chrono::steady_clock::now() + 2s;
      while (supervisor_alive(dir) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    }
    if (!cgroups::remove(cgroup_dirs, 2s))
      warn("process runner: cannot remove the cgroups of {} (processes left in them?)", dir.filename().string());
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) warn("process runner: cannot remove {}: {}", dir.string(), ec.message());
  }

  ProcessOptions options_;
  LogStore& logs_;
  EventSink sink_;
  cgroups::Manager cgroups_;
  SecretFiles secrets_;
  fs::path run_dir_;
  std::string bwrap_;
  std::string version_;
  std::string mv_;
  bool root_ = false;

  std::mutex mu_;
  std::condition_variable wake_;
  bool poke_ = false;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  SessionSet sessions_;  // exec and attach sessions
  std::vector<Event> pending_;  // from launch() and adopt(); the watcher thread emits them
  std::thread thread_;
  int inotify_fd_ = -1;  // watches the running jobs' output files
  int stop_fd_ = -1;     // ends watch_output()
  std::thread output_watch_;
};

}  // namespace

std::unique_ptr<Runner> make_process_runner(const ProcessOptions& options, LogStore& logs, EventSink sink) {
  return std::make_unique<ProcessRunner>(options, logs, std::move(sink));
}

}  // namespace neurod::executor

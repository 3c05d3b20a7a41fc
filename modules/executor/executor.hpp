// The executor interface (DESIGN §8): what the `jobs` scheduler asks of a compute node,
// and what a runtime (docker, process) implements. Plain C++: no Beast, no module context,
// so runners are unit-tested by constructing them directly.
//
// The flow for one job attempt:
//   jobs calls Runner::launch(spec) → the runner reports Event{pulling} (docker, only when
//   it pulls), Event{running} once the process runs, and exactly one Event{exited} at the
//   end, with the exit code and a reason. Every failure of the job itself (bad image,
//   command not found, OOM, engine error) is an exited event, never an exception.
//   Output lines go to the LogStore as they come.
//   Runner::stop(job) asks it to end (SIGTERM, SIGKILL after the grace period); its exited
//   event follows. Runner::remove(job) cleans up once jobs has recorded the outcome.
//   Secret files (LaunchSpec::secret_files) exist on the host from launch until the
//   attempt's exited event goes out (secret_files.hpp); a bad mount or secret file target
//   is an exited event with ContainerCannotRun.
//
// Durability: a runner keeps what it needs to find a job again outside neurod's memory
// (container labels; a run directory for the process runner). After a restart, jobs calls
// Runner::adopt() with the attempts it believes launched; the runner re-attaches to those
// still running (emitting running, then exited later), reports those that ended while
// neurod was down (after catching their logs up), and reports exited/NotFound for those
// that vanished. Jobs are never started twice by adopt().
#pragma once

#include "core/errors.hpp"
#include "core/units.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neurod::executor {

class LogStore;

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

struct Mount {
  std::string source;  // host path
  std::string target;  // absolute path inside the job
  bool read_only = true;
};

// A secret as a file inside the job (secret_files.hpp): written on a tmpfs on the host,
// bind-mounted read-only at `target`, removed when the attempt ends.
struct SecretFile {
  std::string target;  // absolute path inside the job
  std::string value;   // never logged, never written anywhere but secrets_dir
};

struct RegistryAuth {
  std::string server;  // "host:port"
  std::string username;
  std::string password;
};

struct Ulimit {
  std::string name;  // nofile, nproc, …
  std::int64_t soft = 0;
  std::int64_t hard = 0;
};

// One attempt of one job, fully resolved by the scheduler.
struct LaunchSpec {
  std::string job_id;    // "job-<uuid>"
  int attempt = 0;       // 0 for the first run, +1 per restart
  std::string job_name;  // may be empty
  std::string owner;
  std::string project;
  std::string cluster;
  std::string preset;  // may be empty

  std::string image;  // an engine reference ("busybox:1", "host:5000/p/x@sha256:…"); process: unused
  std::optional<RegistryAuth> registry_auth;
  std::vector<std::string> entrypoint;  // argv; empty: the image's own
  std::vector<std::string> command;     // argv; empty: the image's own
  std::vector<std::pair<std::string, std::string>> env;  // includes the NEURO_JOB_* variables
  std::string working_dir;                                // empty: the image's own (process: "/")
  bool tty = false;

  double cpu = 0;             // cores; 0: not limited
  std::uint64_t memory = 0;   // bytes; 0: not limited
  std::uint64_t shm = 0;      // /dev/shm size in bytes; 0: the runtime's default
  std::vector<std::string> gpu_ids;  // whole devices assigned by the scheduler (nvidia indexes)
  std::vector<Mount> mounts;
  std::vector<SecretFile> secret_files;
};

struct Event {
  enum class Kind { pulling, running, exited };
  std::string job_id;
  int attempt = 0;
  Kind kind = Kind::running;
  TimePoint time = Clock::now();
  // exited only:
  int exit_code = 0;
  // exited: "Completed" (exit 0), "Error" (non-zero exit), "OOMKilled", "ErrImagePull",
  // "InvalidImageName", "ContainerCannotRun" (e.g. command not found), "NotFound" (vanished),
  // "Killed" (stopped through stop()); pulling: "Pulling".
  std::string reason;
  std::string message;  // for people: "image busybox:9 not found", "exit code 3", …
};
using EventSink = std::function<void(const Event&)>;

// Telemetry: what a running job uses now (the monitoring module samples it about once a
// second and works out rates from the deltas).
struct Usage {
  TimePoint time = Clock::now();
  std::optional<double> cpu_seconds;         // cumulative CPU time of the job's processes
  std::optional<std::uint64_t> memory;       // bytes in use now (without reclaimable page cache)
  std::optional<std::uint64_t> memory_limit; // the job's limit; nullopt: none known
};

// What the engine knows about an attempt, for adopt().
struct Known {
  std::string job_id;
  int attempt = 0;
};

// Interactive sessions: exec and attach; signals
//
// A Session is a live connection to a running job: a command exec'd in it, or the job's
// own stdio (attach). Runner::exec/attach prepare it (blocking: they may call the engine;
// they throw Error: conflict/job_not_running for a job that is not running here,
// bad_request for what the runtime cannot do) and return it unstarted; start() then runs
// it on a thread of its own. Every other method returns at once (stdin is queued), so
// they may be called from an I/O thread. on_output comes with the stream (1 stdout,
// 2 stderr) from the session's thread; on_exit comes exactly once at the end, unless
// cancel() came first: with the exit code, or without one and a message when the
// session failed. cancel() ends it: the exec'd process is killed, the attach let go
// (the job keeps running); the thread and its descriptors go. A session also ends when
// its job ends, and every session ends at Runner::shutdown().
struct SessionSpec {
  std::vector<std::string> command;  // exec only: argv, not empty
  bool tty = false;
  bool use_stdin = false;
  bool use_stdout = true;
  bool use_stderr = true;
  unsigned height = 0;  // the terminal's initial size (tty); 0: the runtime's default
  unsigned width = 0;
};

struct SessionCallbacks {
  std::function<void(int stream, std::string_view data)> on_output;
  std::function<void(std::optional<int> exit_code, const std::string& error)> on_exit;
};

class Session {
 public:
  virtual ~Session() = default;
  virtual void start() = 0;
  virtual void write_stdin(std::string data) = 0;
  virtual void close_stdin() = 0;
  virtual void resize(unsigned height, unsigned width) = 0;
  virtual void cancel() = 0;
};

// The error for a job that is not running here (409 job_not_running).
Error job_not_running(const std::string& job_id);
// "SIGTERM", "TERM", "sigterm", "15" → 15; nullopt for anything else (session.cpp).
std::optional<int> parse_signal(std::string_view text);

class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::string_view kind() const = 0;  // "docker" | "process"
  // One line for the log and /health: "podman 4.3.1 at /run/podman/podman.sock".
  virtual std::string describe() const = 0;
  // Starts the attempt asynchronously (returns at once); events follow on the sink.
  virtual void launch(const LaunchSpec& spec) = 0;
  // Asks the job to end: SIGTERM now, SIGKILL after grace. No-op for an unknown job.
  virtual void stop(const std::string& job_id, Duration grace) = 0;
  // Forgets the job and frees what it left (container, run dir, cgroup).
  virtual void remove(const std::string& job_id) = 0;
  // After a restart: see the file comment. Attempts the runner finds but that are not in
  // `expected` (left over from jobs that finished) are stopped and removed.
  virtual void adopt(const std::vector<Known>& expected) = 0;
  // Stops watching (threads end); running jobs keep running.
  virtual void shutdown() = 0;

  // Telemetry
  // What the job's current attempt uses now, from its cgroups (read directly, or through
  // the engine's stats when they cannot be read here); nullopt when the job does not run
  // here or nothing can be measured. May block briefly (an engine call); never call it
  // from an I/O thread.
  virtual std::optional<Usage> usage(const std::string& job_id) {
    (void)job_id;
    return std::nullopt;
  }

  // Interactive sessions: exec and attach; signals (see Session above).
  virtual std::shared_ptr<Session> exec(const std::string& job_id, const SessionSpec& spec,
                                        SessionCallbacks callbacks) = 0;
  virtual std::shared_ptr<Session> attach(const std::string& job_id, const SessionSpec& spec,
                                          SessionCallbacks callbacks) = 0;
  // Sends signo to the job's main process (the container's pid 1; the process runtime's
  // command, never its supervisor). Error conflict/job_not_running when it is not running.
  virtual void signal(const std::string& job_id, int signo) = 0;

  // ---- Port-forward and save (modules/monitoring: port_forward.cpp) ----

  // A stream socket connected to `port` on the job's own loopback/network, for the
  // port-forward tunnel; the caller owns (closes) it. Blocking (a short connect).
  // Throws Error(bad_request, "port_not_listening") when nothing listens there,
  // Error(conflict, "job_not_running") when the job has no running process here.
  virtual int connect(const std::string& job_id, std::uint16_t port) = 0;

  // Commits the job's running container as `image` ("host:port/project/name:tag") and
  // pushes it with `auth`. Reports progress as docker-style JSON lines (one object each,
  // no newline: {"status": …, "id": …, "progressDetail": …}) as they come; returns the
  // pushed digest ("sha256:…", empty when the engine did not say). Blocking. Throws
  // Error: bad_request (the runtime has no images: process), conflict (not running),
  // bad_gateway with the engine's message when the commit or push fails.
  using SaveProgress = std::function<void(const std::string& json_line)>;
  virtual std::string save(const std::string& job_id, const std::string& image, const std::optional<RegistryAuth>& auth,
                           const SaveProgress& progress) = 0;
};

struct DockerOptions {
  std::string socket;                 // unix socket path of the Docker/Podman API
  std::vector<Ulimit> ulimits;        // applied to every container
  std::int64_t pids_limit = 4096;     // 0: not limited
  Duration pull_timeout = std::chrono::minutes(10);
  std::vector<RegistryAuth> registry_auths;  // used when the spec has none, by server
  std::string node_id;                // label io.neurod.node: which neurod owns a container
  std::string secrets_dir = "/dev/shm/neurod-secrets";  // secret files: <secrets_dir>/<node_id>/<job_id>/
  // Tail the container's own log file when it can be read (docker_runner.cpp, LogTail);
  // false: the API only (tests of the fallback).
  bool read_log_file = true;
};

struct ProcessOptions {
  std::string bwrap = "bwrap";        // the bubblewrap binary
  std::string run_dir;                // where each job's run directory lives (survives restarts)
  std::string cgroup_parent = "neurod";  // cgroups are made under <mount>/<cgroup_parent>/<job>
  std::int64_t pids_limit = 4096;
  std::string node_id;
  std::string secrets_dir = "/dev/shm/neurod-secrets";  // secret files: <secrets_dir>/<node_id>/<job_id>/
};

// Factories (docker_runner.cpp, process_runner.cpp). Throw Error(unavailable) with a
// message that says what to do when the runtime cannot work here (no socket, no bwrap).
std::unique_ptr<Runner> make_docker_runner(const DockerOptions& options, LogStore& logs, EventSink sink);
std::unique_ptr<Runner> make_process_runner(const ProcessOptions& options, LogStore& logs, EventSink sink);

// The first Docker/Podman API socket that answers /_ping among $DOCKER_HOST (unix://),
// /run/podman/podman.sock, /var/run/docker.sock, $XDG_RUNTIME_DIR/podman/podman.sock;
// nullopt when none does.
std::optional<std::string> find_engine_socket();

}  // namespace neurod::executor

// The docker runner (DESIGN §8): jobs as containers of a Docker or Podman engine, driven
// through the Engine API's compat endpoints on a unix socket (docker_api.hpp).
//
// Threads: one worker per job attempt (pull, create, start, then reading the log and state
// until the container stops, report) and a short-lived one per stop request. All of them
// are detached and counted; shutdown() cancels their connections and waits for the count
// to reach zero. Containers carry labels (io.neurod.job/attempt/node) so that a restarted
// neurod finds them again (adopt).
#include "core/errors.hpp"
#include "core/log.hpp"
#include "modules/executor/cgroups.hpp"
#include "modules/executor/docker_api.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/log_store.hpp"
#include "modules/executor/port_connect.hpp"
#include "modules/executor/secret_files.hpp"
#include "modules/executor/session.hpp"

#include <fmt/format.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

namespace neurod::executor {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The compat API version neurod is written against; negotiated down (old engines) or up
// (engines that dropped it) from /version.
constexpr std::string_view kApiVersion = "1.41";
constexpr Duration kCallTimeout = 60s;
// A running job's log and state are read every kPollInterval, less often when reading its
// log takes long (DockerRunner::watch).
constexpr Duration kPollInterval = 1s;
constexpr Duration kMaxPollInterval = 30s;
// Lines this young may still be half-written in the engine's log file.
constexpr Duration kSettle = 2s;
// Engine errors in a row that end watching a job (about a second apart).
constexpr int kMaxFailures = 30;
// Exit codes for a job that never ran, as `docker run` uses them.
constexpr int kEngineFailed = 125;
constexpr int kCannotInvoke = 126;
constexpr int kNotFound = 127;
constexpr int kKilled = 137;

std::string container_name(const std::string& job_id) { return "neurod-" + job_id; }

std::pair<int, int> api_version_number(const std::string& v) {
  int major = 0, minor = 0;
  std::sscanf(v.c_str(), "%d.%d", &major, &minor);
  return {major, minor};
}

std::string negotiate_version(const json& version) {
  std::string want(kApiVersion);
  auto max = version.value("ApiVersion", std::string());
  auto min = version.value("MinAPIVersion", std::string());
  if (!max.empty() && api_version_number(max) < api_version_number(want)) return max;
  if (!min.empty() && api_version_number(want) < api_version_number(min)) return min;
  return want;
}

// Engine times; Go's zero time ("0001-01-01T00:00:00Z") means "not yet".
std::optional<TimePoint> engine_time(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return std::nullopt;
  auto s = obj[key].get<std::string>();
  if (s.starts_with("0001-")) return std::nullopt;
  return parse_log_time(s);
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != haystack.end();
}

// Where a job's stored log ends: the time of its last line and how many lines carry exactly
// that time (Podman's compat API gives whole seconds, so several lines often share one).
struct LogCursor {
  std::optional<TimePoint> last;
  int at_last = 0;
};

TimePoint whole_second(TimePoint t) { return std::chrono::floor<std::chrono::seconds>(t); }

// Passes the lines after `from` (drops those already stored) and tracks where the store ends.
// The compat API's times are whole seconds, the engine's log file has nanoseconds: a cursor
// in whole seconds (lines stored from the API) compares the file's times by their second, so
// the file can take over from the API without repeating lines (and read_logs() turns a
// nanosecond cursor into a whole-second one before it reads the API: coarse_cursor()).
class LogFilter {
 public:
  explicit LogFilter(LogCursor from)
      : start_(from.last), skip_(from.at_last), coarse_(from.last && whole_second(*from.last) == *from.last),
        cursor_(from) {}

  bool accept(TimePoint time) {
    auto t = coarse_ ? whole_second(time) : time;
    if (start_ && t < *start_) return false;
    if (start_ && t == *start_ && skip_ > 0) {
      --skip_;
      return false;
    }
    if (cursor_.last && time == *cursor_.last) {
      ++cursor_.at_last;
    } else if (!cursor_.last || time > *cursor_.last) {
      cursor_.last = time;
      cursor_.at_last = 1;
    }
    return true;
  }
  const LogCursor& cursor() const { return cursor_; }

 private:
  std::optional<TimePoint> start_;
  int skip_;
  bool coarse_;
  LogCursor cursor_;
};

// Whether the container has stopped for good: its exit code is known. (Podman's "stopping"
// is not running either, but its exit code is not known yet.)
bool has_stopped(const json& info) {
  auto status = info.value("State", json::object()).value("Status", std::string());
  return status == "exited" || status == "dead" || status == "stopped";
}

// Where a job's log stands between reads of the engine's log.
struct LogState {
  LogCursor cursor;                 // what the store has
  std::optional<TimePoint> resume;  // the start of the oldest line not stored yet
};

// How often a running job's log file is read when it is tailed (LogTail): a line reaches
// the store (and followers) within this long. The engine is not asked: it is a read(2)
// of a file that usually has not grown.
constexpr Duration kTailInterval = 20ms;

// The engine's own log file of a container (inspect's LogPath), read directly while it can
// be: the file is there and readable (same host and mount namespace), in a known format, and
// not rotated. Otherwise the runner reads the log through the API (read_logs()).
struct LogTail {
  std::string path;
  int fd = -1;
  ino_t ino = 0;
  std::uint64_t offset = 0;
  LogFilter filter{LogCursor{}};
  std::unique_ptr<EngineLogFileDecoder> decoder;
  ~LogTail() {
    if (fd >= 0) ::close(fd);
  }
};

// --- Interactive sessions: exec and attach ---

// An exec (POST /containers/{id}/exec, then /exec/{id}/start hijacked) or an attach
// (/containers/{id}/attach hijacked). Without a TTY the engine multiplexes stdout and
// stderr in frames with 8-byte headers (stream, 0, 0, 0, size big-endian).
class DockerSession final : public IoSession {
 public:
  DockerSession(SessionSet& set, SessionCallbacks callbacks, std::string socket, std::string version,
                std::string container, bool exec, SessionSpec spec)
      : IoSession(set, std::move(callbacks)),
        socket_(std::move(socket)),
        version_(std::move(version)),
        container_(std::move(container)),
        exec_(exec),
        spec_(std::move(spec)) {}

 protected:
  void prepare() override {
    DockerApi api(socket_, version_, 30s);
    std::string early;
    int fd = -1;
    if (exec_) {
      json body = {{"AttachStdin", spec_.use_stdin}, {"AttachStdout", spec_.use_stdout},
                   {"AttachStderr", spec_.use_stderr}, {"Tty", spec_.tty}, {"Cmd", spec_.command}};
      if (spec_.tty && spec_.height > 0 && spec_.width > 0) body["ConsoleSize"] = {spec_.height, spec_.width};
      auto r = api.call("POST", "/containers/" + container_ + "/exec", &body);
      if (r.status == 404 || r.status == 409) throw Error(errc::conflict, "the job is not running: " + docker_error_message(r));
      if (r.status != 201 && r.status != 200) throw DockerEngineError(r.status, docker_error_message(r));
      exec_id_ = r.json().value("Id", std::string());
      if (exec_id_.empty()) throw Error(errc::bad_gateway, "the container engine gave the exec no id");
      json start = {{"Detach", false}, {"Tty", spec_.tty}};
      // The initial size goes with the start (Docker: ConsoleSize; Podman: h and w): a resize
      // right after it may come before the engine made the terminal, and be lost.
      if (spec_.tty && spec_.height > 0 && spec_.width > 0) {
        start["ConsoleSize"] = {spec_.height, spec_.width};
        start["h"] = spec_.height;
        start["w"] = spec_.width;
      }
      fd = api.hijack("POST", "/exec/" + exec_id_ + "/start", &start, early);
    } else {
      auto target = fmt::format("/containers/{}/attach?stream=1&stdin={}&stdout={}&stderr={}", container_,
                                spec_.use_stdin ? 1 : 0, spec_.use_stdout ? 1 : 0, spec_.use_stderr ? 1 : 0);
      fd = api.hijack("POST", target, nullptr, early);
    }
    sources_.push_back({fd, spec_.tty ? 1 : 0});
    if (spec_.use_stdin) in_fd_ = fd;
    if (!exec_ && spec_.height > 0 && spec_.width > 0) do_resize(spec_.height, spec_.width);
    if (!early.empty()) on_raw(early);
  }

  void on_raw(std::string_view data) override {
    if (spec_.tty) return emit(1, data);
    frames_.append(data);
    std::size_t pos = 0;
    while (frames_.size() - pos >= 8) {
      auto h = reinterpret_cast<const unsigned char*>(frames_.data() + pos);
      std::size_t size = (std::size_t{h[4]} << 24) | (std::size_t{h[5]} << 16) | (std::size_t{h[6]} << 8) | h[7];
      if (frames_.size() - pos - 8 < size) break;
      int stream = h[0] == 2 ? 2 : 1;
      emit(stream, std::string_view(frames_).substr(pos + 8, size));
      pos += 8 + size;
    }
    frames_.erase(0, pos);
  }

  void do_resize(unsigned height, unsigned width) override {
    if (!spec_.tty) return;
    try {
      DockerApi api(socket_, version_, 10s);
      auto path = exec_ ? "/exec/" + exec_id_ : "/containers/" + container_;
      auto r = api.call("POST", fmt::format("{}/resize?h={}&w={}", path, height, width));
      if (r.status >= 300) debug("docker: resize of {}: {}", container_, docker_error_message(r));
    } catch (const std::exception& e) {
      debug("docker: resize of {}: {}", container_, e.what());
    }
  }

  std::pair<std::optional<int>, std::string> finish() override {
    DockerApi api(socket_, version_, 10s);
    // The stream ends a moment before the engine records the exit code.
    for (int i = 0; i < 100; ++i) {
      if (exec_) {
        auto r = api.call("GET", "/exec/" + exec_id_ + "/json");
        if (r.status != 200) return {std::nullopt, "cannot read the exit code: " + docker_error_message(r)};
        auto j = r.json();
        if (!j.value("Running", false) && j.contains("ExitCode") && j["ExitCode"].is_number_integer())
          return {j["ExitCode"].get<int>(), ""};
      } else {
        auto info = api.inspect_container(container_);
        if (!info) return {std::nullopt, "the job's container is gone"};
        auto state = info->value("State", json::object());
        if (!state.value("Running", false) && state.contains("ExitCode")) return {state.value("ExitCode", 0), ""};
        if (i >= 20) return {std::nullopt, "the container engine ended the attach while the job still runs"};
      }
      std::this_thread::sleep_for(50ms);
    }
    return {std::nullopt, "the container engine did not record the command's exit code"};
  }

  // An exec'd command still running when the session is cancelled is killed: the engine
  // has no call for that, so it gets SIGKILL by the host pid the engine reports (neurod
  // and the engine share the host).
  void teardown() override {
    if (!exec_ || exec_id_.empty() || !cancelled()) return;
    try {
      DockerApi api(socket_, version_, 10s);
      auto r = api.call("GET", "/exec/" + exec_id_ + "/json");
      if (r.status != 200) return;
      auto j = r.json();
      if (j.value("Running", false) && j.contains("Pid") && j["Pid"].is_number_integer()) {
        auto pid = j["Pid"].get<int>();
        if (pid > 1) ::kill(pid, SIGKILL);
      }
    } catch (const std::exception& e) {
      debug("docker: ending exec {}: {}", exec_id_, e.what());
    }
  }

 private:
  std::string socket_, version_, container_;
  bool exec_;
  SessionSpec spec_;
  std::string exec_id_;
  std::string frames_;  // an incomplete frame
};

class DockerRunner final : public Runner {
 public:
  DockerRunner(const DockerOptions& options, LogStore& logs, EventSink sink)
      : options_(options), logs_(logs), sink_(std::move(sink)), secrets_(options.secrets_dir, options.node_id) {
    if (options_.socket.empty()) {
      auto found = find_engine_socket();
      if (!found)
        throw Error(errc::unavailable,
                    "no Docker or Podman API socket answers at $DOCKER_HOST, /run/podman/podman.sock, "
                    "/var/run/docker.sock or $XDG_RUNTIME_DIR/podman/podman.sock; start one (podman system service "
                    "/ dockerd) or set modules.executor.docker.socket");
      options_.socket = *found;
    }
    json version;
    try {
      DockerApi api(options_.socket, "", 10s);
      version = api.version();
    } catch (const std::exception& e) {
      std::string why = e.what();
      if (auto said = "cannot connect to unix://" + options_.socket + ": "; why.starts_with(said))
        why.erase(0, said.size());
      throw Error(errc::unavailable, fmt::format("cannot reach the container engine at {}: {}; start it (podman system "
                                                 "service / dockerd) or set modules.executor.docker.socket",
                                                 options_.socket, why));
    }
    version_ = negotiate_version(version);
    std::string engine = "docker";
    if (version.contains("Components") && version["Components"].is_array())
      for (const auto& c : version["Components"])
        if (c.is_object() && contains_ci(c.value("Name", std::string()), "podman")) engine = "podman";
    describe_ = fmt::format("{} {} at {}", engine, version.value("Version", std::string("?")), options_.socket);
  }

  ~DockerRunner() override { shutdown(); }

  std::string_view kind() const override { return "docker"; }
  std::string describe() const override { return describe_; }

  void launch(const LaunchSpec& spec) override {
    auto job = std::make_shared<Job>();
    job->id = spec.job_id;
    job->attempt = spec.attempt;
    {
      std::lock_guard lock(mu_);
      if (shutting_down_) return;
      if (jobs_.contains(spec.job_id)) {
        spdlog::warn("docker: job {} is already running here; launch of attempt {} ignored", spec.job_id, spec.attempt);
        return;
      }
      jobs_[spec.job_id] = job;
    }
    spawn(job, [this, job, spec] { run_launch(job, spec); });
  }

  void stop(const std::string& job_id, Duration grace) override {
    std::shared_ptr<Job> job;
    {
      std::lock_guard lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end()) return;
      job = it->second;
      job->stop_requested = true;
      job->grace = grace;
      // A pull is cut at once; before the container exists the worker sees the flag.
      if (job->pull) job->pull->cancel();
      if (job->container.empty()) return;
    }
    request_stop(job);
  }

  void remove(const std::string& job_id) override {
    {
      std::lock_guard lock(mu_);
      if (auto it = jobs_.find(job_id); it != jobs_.end()) {
        it->second->removed = true;
        jobs_.erase(it);
      }
    }
    secrets_.remove(job_id);
    try {
      DockerApi api(options_.socket, version_, kCallTimeout);
      api.remove_container(container_name(job_id));
    } catch (const std::exception& e) {
      spdlog::warn("docker: cannot remove the container of job {}: {}", job_id, e.what());
    }
  }

  void adopt(const std::vector<Known>& expected) override {
    std::set<std::string> launched;  // by this runner before: their containers are not strays
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, job] : jobs_) launched.insert(id);
    }
    // Secret files of attempts nobody expects (their jobs finished while neurod was down,
    // or a launch died half-way) go now; those of expected attempts go when they end.
    auto keep = launched;
    for (const auto& k : expected) keep.insert(k.job_id);
    for (const auto& id : secrets_.remove_except(keep))
      spdlog::info("docker: removed the secret files of job {}: no job of this node expects them", id);
    DockerApi api(options_.socket, version_, kCallTimeout);
    auto list = api.list_containers("io.neurod.node=" + options_.node_id);
    std::map<std::string, std::string> found;                 // job id → container id, for the expected attempt
    std::vector<std::pair<std::string, std::string>> strays;  // container id, job id
    for (const auto& c : list) {
      auto labels = c.value("Labels", json::object());
      if (!labels.is_object()) labels = json::object();
      auto job_id = labels.value("io.neurod.job", std::string());
      auto attempt = labels.value("io.neurod.attempt", std::string());
      auto id = c.value("Id", std::string());
      bool wanted = std::any_of(expected.begin(), expected.end(), [&](const Known& k) {
        return k.job_id == job_id && std::to_string(k.attempt) == attempt;
      });
      if (wanted)
        found[job_id] = id;
      else
        strays.emplace_back(id, job_id);
    }
    for (const auto& k : expected) {
      auto job = std::make_shared<Job>();
      job->id = k.job_id;
      job->attempt = k.attempt;
      {
        std::lock_guard lock(mu_);
        if (shutting_down_) return;
        if (jobs_.contains(k.job_id)) continue;  // already watched by this runner
        jobs_[k.job_id] = job;
      }
      if (auto it = found.find(k.job_id); it != found.end()) {
        spawn(job, [this, job, id = it->second] { run_adopted(job, id); });
      } else {
        spawn(job,
              [this, job] { exited(job, kEngineFailed, "NotFound", "the container vanished while neurod was down"); });
      }
    }
    for (const auto& [id, job_id] : strays) {
      if (launched.contains(job_id)) continue;
      spdlog::info("docker: stopping and removing container {} (job {}): no job of this node expects it",
                   id.substr(0, 12), job_id.empty() ? "?" : job_id);
      spawn(nullptr, [this, id] {
        DockerApi a(options_.socket, version_, kCallTimeout + 10s);
        track(a, [&] {
          a.stop_container(id, 10);
          a.remove_container(id);
        });
      });
    }
  }

  // Telemetry. The container's cgroup files are read directly (found once through
  // State.Pid and /proc/PID/cgroup): microseconds, where one stats call costs Podman 4.3
  // 50–110 ms of its own time per container. When they cannot be read here (neurod in
  // another pid or cgroup namespace than the engine), the engine's one-shot stats answer.
  std::optional<Usage> usage(const std::string& job_id) override {
    std::shared_ptr<Job> job;
    std::string id;
    std::vector<std::string> dirs;
    int known_pid = 0;
    {
      std::lock_guard lock(mu_);
      if (shutting_down_) return std::nullopt;
      auto it = jobs_.find(job_id);
      if (it == jobs_.end() || it->second->container.empty()) return std::nullopt;
      job = it->second;
      id = job->container;
      dirs = job->cgroup_dirs;
      known_pid = job->pid;
    }
    auto from_dirs = [](const std::vector<std::string>& d) -> std::optional<Usage> {
      auto u = cgroups::usage(d);
      if (!u.cpu_seconds && !u.memory) return std::nullopt;
      return u;
    };
    // The cached directories stay right while the same process runs.
    if (!dirs.empty() && known_pid > 0 && ::kill(known_pid, 0) == 0)
      if (auto u = from_dirs(dirs)) return u;
    try {
      DockerApi api(options_.socket, version_, std::chrono::seconds(5));
      return track(api, [&]() -> std::optional<Usage> {
        auto info = api.inspect_container(id);
        if (!info) return std::nullopt;
        auto state = info->value("State", json::object());
        if (!state.value("Running", false)) return std::nullopt;
        int pid = state.value("Pid", 0);
        auto found = cgroups::dirs_of_pid(pid);
        if (!found.empty()) {
          if (auto u = from_dirs(found)) {
            std::lock_guard lock(mu_);
            job->pid = pid;
            job->cgroup_dirs = found;
            return u;
          }
        }
        auto stats = api.stats(id);
        if (!stats || !stats->is_object()) return std::nullopt;
        Usage out;
        auto cpu = stats->value("cpu_stats", json::object()).value("cpu_usage", json::object());
        if (cpu.contains("total_usage") && cpu["total_usage"].is_number())
          out.cpu_seconds = cpu["total_usage"].get<double>() / 1e9;
        auto mem = stats->value("memory_stats", json::object());
        if (mem.contains("usage") && mem["usage"].is_number_unsigned()) {
          auto used = mem["usage"].get<std::uint64_t>();
          auto st = mem.value("stats", json::object());
          std::uint64_t inactive = st.value("total_inactive_file", st.value("inactive_file", std::uint64_t{0}));
          out.memory = used > inactive ? used - inactive : 0;
          if (mem.contains("limit") && mem["limit"].is_number_unsigned() && mem["limit"].get<std::uint64_t>() < (1ull << 60))
            out.memory_limit = mem["limit"].get<std::uint64_t>();
        }
        if (!out.cpu_seconds && !out.memory) return std::nullopt;
        return out;
      });
    } catch (const std::exception& e) {
      spdlog::debug("docker: usage of job {}: {}", job_id, e.what());
      return std::nullopt;
    }
  }

  // --- Interactive sessions: exec and attach; signals ---

  std::shared_ptr<Session> exec(const std::string& job_id, const SessionSpec& spec,
                                SessionCallbacks callbacks) override {
    if (spec.command.empty()) throw Error(errc::bad_request, "exec needs a command").with_code("command_required");
    running_container(job_id);
    return std::make_shared<DockerSession>(sessions_, std::move(callbacks), options_.socket, version_,
                                           container_name(job_id), true, spec);
  }

  std::shared_ptr<Session> attach(const std::string& job_id, const SessionSpec& spec,
                                  SessionCallbacks callbacks) override {
    auto info = running_container(job_id);
    auto config = info.value("Config", json::object());
    bool tty = config.value("Tty", false);
    if (spec.use_stdin && !config.value("OpenStdin", false))
      throw Error(errc::bad_request,
                  "this job's stdin is closed: only jobs submitted with a TTY (tty: true) keep stdin open for attach")
          .with_code("stdin_unavailable");
    if (spec.tty != tty)
      throw Error(errc::bad_request, tty ? "this job runs with a TTY: attach with tty=1"
                                         : "this job runs without a TTY: attach with tty=0")
          .with_code("tty_mismatch");
    return std::make_shared<DockerSession>(sessions_, std::move(callbacks), options_.socket, version_,
                                           container_name(job_id), false, spec);
  }

  void signal(const std::string& job_id, int signo) override {
    running_container(job_id);
    DockerApi api(options_.socket, version_, kCallTimeout);
    auto r = api.call("POST", fmt::format("/containers/{}/kill?signal={}", container_name(job_id), signo));
    if (r.status == 404 || r.status == 409) throw job_not_running(job_id);
    if (r.status >= 300) throw Error(errc::bad_gateway, "the container engine refused the signal: " + docker_error_message(r));
  }

  void shutdown() override {
    sessions_.shutdown();
    std::unique_lock lock(mu_);
    shutting_down_ = true;
    for (auto* api : apis_) api->cancel();
    wake_.notify_all();
    // A worker thread that calls shutdown (through the event sink) does not wait for itself.
    int self = t_worker_of == this ? 1 : 0;
    idle_.wait(lock, [&] { return active_ <= self; });
  }

  // ---- Port-forward and save ----

  int connect(const std::string& job_id, std::uint16_t port) override {
    auto info = running_container(job_id);
    // The container's network namespace: 127.0.0.1 there is the job's own loopback,
    // whatever its network mode. Without the right to enter it, the container's address.
    auto state = info.value("State", json::object());
    pid_t pid = state.is_object() ? state.value("Pid", 0) : 0;
    if (auto fd = connect_port_in_netns(pid, port, job_id)) return *fd;
    std::string ip;
    auto net = info.value("NetworkSettings", json::object());
    if (net.is_object()) {
      ip = net.value("IPAddress", std::string());
      if (ip.empty() && net.contains("Networks") && net["Networks"].is_object())
        for (const auto& [name, n] : net["Networks"].items())
          if (n.is_object() && !n.value("IPAddress", std::string()).empty()) {
            ip = n.value("IPAddress", std::string());
            break;
          }
    }
    if (ip.empty())
      throw Error(errc::unavailable, "cannot reach job " + job_id +
                                         ": its network namespace cannot be entered here (neurod needs "
                                         "CAP_SYS_ADMIN) and the container has no address of its own")
          .with_code("port_unreachable");
    return connect_port(ip, port, job_id);
  }

  std::string save(const std::string& job_id, const std::string& image, const std::optional<RegistryAuth>& auth,
                   const SaveProgress& progress) override {
    auto info = running_container(job_id);
    auto id = info.value("Id", container_name(job_id));
    auto slash = image.rfind('/');
    auto colon = image.rfind(':');
    std::string repo = image, tag = "latest";
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      repo = image.substr(0, colon);
      tag = image.substr(colon + 1);
    }
    DockerApi api(options_.socket, version_, options_.pull_timeout);
    progress(json{{"status", "Committing container " + id.substr(0, 12) + " of job " + job_id}}.dump());
    std::string image_id;
    try {
      image_id = api.commit(id, repo, tag);
    } catch (const DockerEngineError& e) {
      throw Error(errc::bad_gateway, std::string("cannot commit the container of job ") + job_id + ": " + e.what())
          .with_code("commit_failed");
    }
    progress(json{{"status", "Committed as " + repo + ":" + tag}, {"id", image_id}}.dump());
    std::string digest;
    std::string auth_header;
    if (auth) auth_header = docker_registry_auth_header(*auth);
    try {
      api.push(repo, tag, auth_header, [&](const std::string& line) {
        // The digest: Docker's {"aux": {"Digest"}}; also in a status line "…digest: sha256:… size: N".
        try {
          auto j = json::parse(line);
          if (j.contains("aux") && j["aux"].is_object() && j["aux"].contains("Digest"))
            digest = j["aux"].value("Digest", digest);
          else if (auto st = j.value("status", std::string()); st.find("digest: sha256:") != std::string::npos) {
            auto at = st.find("sha256:");
            digest = st.substr(at, st.find(' ', at) == std::string::npos ? std::string::npos : st.find(' ', at) - at);
          }
        } catch (const std::exception&) {
        }
        progress(line);
      });
    } catch (const DockerEngineError& e) {
      best_effort_remove_image(api, repo + ":" + tag);
      throw Error(errc::bad_gateway, std::string("cannot push ") + image + ": " + e.what()).with_code("push_failed");
    }
    // The registry is the image's home: the engine's copy goes, so later jobs pull it.
    best_effort_remove_image(api, repo + ":" + tag);
    return digest;
  }

 private:
  static void best_effort_remove_image(DockerApi& api, const std::string& name) {
    try {
      api.remove_image(name);
    } catch (const std::exception&) {
    }
  }

  struct Job {
    std::string id;
    int attempt = 0;
    std::string container;  // the engine's id once created: stop() goes to the engine from then on
    bool stop_requested = false;
    Duration grace{0};
    bool removed = false;       // remove() was called: no more events
    DockerApi* pull = nullptr;  // the pull in progress, cut by stop()
    // Telemetry: the container's cgroup directories, found once from its pid.
    int pid = 0;
    std::vector<std::string> cgroup_dirs;
  };

  // --- threads ---

  static thread_local const DockerRunner* t_worker_of;

  template <class F>
  void spawn(const std::shared_ptr<Job>& job, F fn) {
    {
      std::lock_guard lock(mu_);
      if (shutting_down_) {
        if (auto it = job ? jobs_.find(job->id) : jobs_.end(); it != jobs_.end() && it->second == job) jobs_.erase(it);
        return;
      }
      ++active_;
    }
    auto body = [this, job, fn = std::move(fn)]() mutable {
      t_worker_of = this;
      try {
        fn();
      } catch (const std::exception& e) {
        spdlog::error("docker: job {}: {}", job ? job->id : "-", e.what());
      }
      {
        // Captures go before the count does: after it reaches zero the runner may be gone.
        auto done = std::move(fn);
      }
      std::lock_guard lock(mu_);
      --active_;
      idle_.notify_all();
    };
    try {
      std::thread(std::move(body)).detach();
    } catch (...) {
      std::lock_guard lock(mu_);
      --active_;
      idle_.notify_all();
      throw;
    }
  }

  // Runs fn with the api registered, so that shutdown() can cut its connection.
  template <class F>
  std::invoke_result_t<F&> track(DockerApi& api, F&& fn) {
    {
      std::lock_guard lock(mu_);
      apis_.insert(&api);
      if (shutting_down_) api.cancel();
    }
    struct Untrack {
      DockerRunner* self;
      DockerApi* api;
      ~Untrack() {
        std::lock_guard lock(self->mu_);
        self->apis_.erase(api);
      }
    } untrack{this, &api};
    return fn();
  }

  // The inspection of the job's container; job_not_running unless it runs.
  json running_container(const std::string& job_id) {
    DockerApi api(options_.socket, version_, kCallTimeout);
    auto info = api.inspect_container(container_name(job_id));
    if (!info || !info->value("State", json::object()).value("Running", false)) throw job_not_running(job_id);
    return *info;
  }

  bool shutting_down() {
    std::lock_guard lock(mu_);
    return shutting_down_;
  }

  // Sleeps unless shutdown() comes first; false then.
  bool pause(Duration d) {
    std::unique_lock lock(mu_);
    return !wake_.wait_for(lock, d, [&] { return shutting_down_; });
  }

  // --- events ---

  void emit(const std::shared_ptr<Job>& job, Event e) {
    {
      std::lock_guard lock(mu_);
      if (shutting_down_ || job->removed) return;
    }
    e.job_id = job->id;
    e.attempt = job->attempt;
    sink_(e);
  }

  // The one exited event of an attempt. The job is forgotten first, so that the sink may
  // launch the next attempt at once.
  void exited(const std::shared_ptr<Job>& job, int code, std::string reason, std::string message,
              std::optional<TimePoint> when = std::nullopt) {
    {
      std::lock_guard lock(mu_);
      if (shutting_down_) return;  // adopt() reports it after the restart
      if (auto it = jobs_.find(job->id); it != jobs_.end() && it->second == job) jobs_.erase(it);
    }
    // The attempt is over: its secrets leave the host before anyone hears it ended.
    secrets_.remove(job->id);
    spdlog::info("docker: job {} attempt {} exited: {} (exit code {}){}{}", job->id, job->attempt, reason, code,
                 message.empty() ? "" : ": ", message);
    Event e;
    e.kind = Event::Kind::exited;
    e.exit_code = code;
    e.reason = std::move(reason);
    e.message = std::move(message);
    if (when) e.time = *when;
    emit(job, std::move(e));
  }

  bool stop_requested(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(mu_);
    return job->stop_requested;
  }

  void killed_before_start(const std::shared_ptr<Job>& job) {
    exited(job, kKilled, "Killed", "stopped before the container started");
  }

  // The engine failed us (not the job): unreachable, or an answer that makes no sense.
  void engine_failed(const std::shared_ptr<Job>& job, const std::exception& e) {
    if (shutting_down()) return;
    exited(job, kEngineFailed, "Error", std::string("container engine error: ") + e.what());
  }

  // --- launch ---

  std::string auth_header_for(const LaunchSpec& spec, const DockerImageRef& ref) const {
    if (spec.registry_auth) return docker_registry_auth_header(*spec.registry_auth);
    for (const auto& a : options_.registry_auths)
      if (docker_registry_matches(a.server, ref.registry())) return docker_registry_auth_header(a);
    return {};
  }

  json create_body(const LaunchSpec& s, const std::vector<Mount>& secret_mounts) const {
    json labels = {{"io.neurod.job", s.job_id},
                   {"io.neurod.attempt", std::to_string(s.attempt)},
                   {"io.neurod.node", options_.node_id},
                   {"io.neurod.owner", s.owner},
                   {"io.neurod.project", s.project}};
    json env = json::array();
    for (const auto& [k, v] : s.env) env.push_back(k + "=" + v);
    // No restart policy: neurod restarts jobs itself, as new attempts.
    json host = {{"RestartPolicy", {{"Name", "no"}}}};
    if (s.memory > 0) {
      host["Memory"] = static_cast<std::int64_t>(s.memory);
      // Without swap the limit is real: the job is OOM-killed instead of swapping.
      host["MemorySwap"] = static_cast<std::int64_t>(s.memory);
    }
    if (s.cpu > 0) host["NanoCpus"] = static_cast<std::int64_t>(std::llround(s.cpu * 1e9));
    if (options_.pids_limit > 0) host["PidsLimit"] = options_.pids_limit;
    if (s.shm > 0) host["ShmSize"] = static_cast<std::int64_t>(s.shm);
    if (!options_.ulimits.empty()) {
      json ulimits = json::array();
      for (const auto& u : options_.ulimits) ulimits.push_back({{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
      host["Ulimits"] = ulimits;
    }
    if (!s.mounts.empty() || !secret_mounts.empty()) {
      // Mounts, not Binds: a missing source is an error instead of a new empty directory.
      // Secret files last: check_targets() keeps them out of the other mounts.
      json mounts = json::array();
      for (const auto* list : {&s.mounts, &secret_mounts})
        for (const auto& m : *list)
          mounts.push_back({{"Type", "bind"}, {"Source", m.source}, {"Target", m.target}, {"ReadOnly", m.read_only}});
      host["Mounts"] = mounts;
    }
    if (!s.gpu_ids.empty())
      host["DeviceRequests"] = json::array(
          {{{"Driver", "nvidia"}, {"DeviceIDs", s.gpu_ids}, {"Capabilities", json::array({json::array({"gpu"})})}}});
    json body = {{"Image", s.image},   {"Env", env},           {"Labels", labels},  {"Tty", s.tty},
                 {"OpenStdin", s.tty}, {"AttachStdin", false}, {"HostConfig", host}};
    // A TTY job keeps its stdin open for `neuro attach` (StdinOnce false: it stays open when
    // an attach ends). Other jobs read EOF from stdin, as before.
    if (s.tty) body["StdinOnce"] = false;
    if (!s.entrypoint.empty()) body["Entrypoint"] = s.entrypoint;
    if (!s.command.empty()) body["Cmd"] = s.command;
    if (!s.working_dir.empty()) body["WorkingDir"] = s.working_dir;
    return body;
  }

  void run_launch(const std::shared_ptr<Job>& job, const LaunchSpec& spec) {
    DockerApi api(options_.socket, version_, kCallTimeout);
    track(api, [&] {
      try {
        launch_tracked(job, spec, api);
      } catch (const std::exception& e) {
        engine_failed(job, e);
      }
    });
  }

  void launch_tracked(const std::shared_ptr<Job>& job, const LaunchSpec& spec, DockerApi& api) {
    auto ref = parse_docker_image_ref(spec.image);
    if (!ref)
      return exited(job, kEngineFailed, "InvalidImageName", fmt::format("invalid image name \"{}\"", spec.image));
    if (auto bad = check_targets(spec)) return exited(job, kEngineFailed, "ContainerCannotRun", *bad);

    if (!api.image_exists(spec.image)) {
      if (stop_requested(job)) return killed_before_start(job);
      if (!pull(job, spec, *ref)) return;
    }
    if (stop_requested(job)) return killed_before_start(job);

    // A container left by an earlier attempt (or a launch cut short) has the same name.
    auto name = container_name(job->id);
    api.remove_container(name);
    std::vector<Mount> secret_mounts;
    try {
      secret_mounts = secrets_.materialise(job->id, spec.secret_files);
    } catch (const std::exception& e) {
      return exited(job, kEngineFailed, "ContainerCannotRun", std::string("cannot write the job's secret files: ") + e.what());
    }
    std::string id;
    try {
      id = api.create_container(name, create_body(spec, secret_mounts));
    } catch (const DockerEngineError& e) {
      std::string msg = e.what();
      bool no_image = e.status() == 404 && contains_ci(msg, "image");
      return exited(job, kEngineFailed, no_image ? "ErrImagePull" : "ContainerCannotRun",
                    "cannot create the container: " + msg);
    }
    {
      std::lock_guard lock(mu_);
      job->container = id;
    }
    if (stop_requested(job)) {
      api.remove_container(id);
      return killed_before_start(job);
    }
    try {
      api.start_container(id);
    } catch (const DockerEngineError& e) {
      // The engine reports what the runtime said: "executable file not found in $PATH",
      // "no such file or directory", "permission denied".
      std::string msg = e.what();
      int code = kEngineFailed;
      if (contains_ci(msg, "not found") || contains_ci(msg, "no such file"))
        code = kNotFound;
      else if (contains_ci(msg, "permission denied"))
        code = kCannotInvoke;
      if (contains_ci(msg, "rlimit"))
        msg += " (the engine may not raise limits above its own: set modules.executor.docker.ulimits, e.g. "
               "nofile and nproc no higher than the engine's `ulimit -n` and `ulimit -u`)";
      return exited(job, code, "ContainerCannotRun", msg);
    }
    spdlog::info("docker: job {} attempt {} started in container {} ({})", job->id, job->attempt, id.substr(0, 12),
                 spec.image);
    Event running;
    running.kind = Event::Kind::running;
    emit(job, running);
    // stop() may have come between create and start, and reached a container not yet running.
    if (stop_requested(job)) request_stop(job);
    watch(job, api, id, spec.tty, LogCursor{});
  }

  // Pulls the image; false when the attempt ended (its exited event is out).
  bool pull(const std::shared_ptr<Job>& job, const LaunchSpec& spec, const DockerImageRef& ref) {
    Event pulling;
    pulling.kind = Event::Kind::pulling;
    pulling.reason = "Pulling";
    pulling.message = "pulling image " + spec.image;
    emit(job, pulling);
    spdlog::info("docker: job {} attempt {}: pulling image {}", job->id, job->attempt, spec.image);
    DockerApi api(options_.socket, version_, options_.pull_timeout);
    std::string failure;
    track(api, [&] {
      {
        std::lock_guard lock(mu_);
        job->pull = &api;
        if (job->stop_requested) api.cancel();
      }
      try {
        api.pull(ref, auth_header_for(spec, ref), Clock::now() + options_.pull_timeout);
      } catch (const std::exception& e) {
        failure = e.what();
        if (failure.empty()) failure = "unknown error";
      }
      std::lock_guard lock(mu_);
      job->pull = nullptr;
    });
    if (shutting_down()) return false;
    if (stop_requested(job)) {
      killed_before_start(job);
      return false;
    }
    if (!failure.empty()) {
      bool invalid = contains_ci(failure, "invalid reference format");
      exited(job, kEngineFailed, invalid ? "InvalidImageName" : "ErrImagePull",
             fmt::format("cannot pull image {}: {}", spec.image, failure));
      return false;
    }
    DockerApi check(options_.socket, version_, kCallTimeout);
    if (!track(check, [&] { return check.image_exists(spec.image); })) {
      exited(job, kEngineFailed, "ErrImagePull", fmt::format("image {} not found after pulling it", spec.image));
      return false;
    }
    return true;
  }

  void request_stop(const std::shared_ptr<Job>& job) {
    std::string id;
    Duration grace;
    {
      std::lock_guard lock(mu_);
      id = job->container;
      grace = job->grace;
    }
    if (id.empty()) return;
    int seconds = static_cast<int>(std::ceil(std::max<double>(0, std::chrono::duration<double>(grace).count())));
    spdlog::info("docker: stopping job {} (grace {}s)", job->id, seconds);
    // The engine sends SIGTERM, then SIGKILL after `seconds`; its answer waits for that.
    spawn(nullptr, [this, id, seconds, job_id = job->id] {
      DockerApi api(options_.socket, version_, std::chrono::seconds(seconds) + kCallTimeout);
      try {
        track(api, [&] { api.stop_container(id, seconds); });
      } catch (const std::exception& e) {
        if (!shutting_down()) spdlog::warn("docker: cannot stop job {}: {}", job_id, e.what());
      }
    });
  }

  // --- watching ---

  // Where the stored log ends. When lines of its last second came from the API (whole-second
  // times, possibly after lines of that second stored from the log file, so the latest time
  // is not the last line's), the cursor is in whole seconds: coarse_cursor().
  LogCursor stored_cursor(const std::string& job_id) {
    LogCursor c;
    c.last = logs_.last_time(job_id);
    if (!c.last) return c;
    bool from_api = false;
    auto second = whole_second(*c.last);
    logs_.read(job_id, second, false, [&](const LogLine& l) {
      if (l.time == *c.last) ++c.at_last;
      if (l.time == second) from_api = true;
      return true;
    });
    return from_api ? coarse_cursor(job_id) : c;
  }

  // Reads the engine's log from where the store ends and appends what is new.
  //
  // Why not a followed stream: Podman 4.3 drops lines from it under bursts of output and
  // ends it early, and its `tail` mangles lines written in pieces; the plain read from a
  // time on is the one exact answer (of Docker too). Its cost grows with the log's size,
  // which the polling interval follows (watch()).
  //
  // While the container runs, the last record of the log file may be half-written: lines
  // younger than kSettle wait for the next read. The final read (after the container
  // stopped) takes everything, unfinished lines too.
  void read_logs(const std::shared_ptr<Job>& job, DockerApi& api, const std::string& id, bool tty, LogState& st,
                 bool final) {
    // Lines stored from the log file carry nanoseconds, the API's whole seconds.
    if (st.cursor.last && whole_second(*st.cursor.last) != *st.cursor.last) st.cursor = coarse_cursor(job->id);
    auto from = st.cursor.last;
    if (st.resume && (!from || *st.resume < *from)) from = st.resume;
    std::optional<std::int64_t> since;
    // A second early: engines filter by whole seconds, the filter drops what is stored.
    if (from) since = std::chrono::duration_cast<std::chrono::seconds>(from->time_since_epoch()).count() - 1;
    auto settled = final ? TimePoint::max() : Clock::now() - kSettle;
    LogFilter filter(st.cursor);
    std::optional<TimePoint> unstored;
    DockerLogDecoder decoder(tty, [&](const DockerLogLine& l) {
      // Lines come in time order: once one is too young, so are the rest.
      if (unstored || l.time >= settled) {
        if (!unstored || l.start < *unstored) unstored = l.start;
        return;
      }
      if (filter.accept(l.time)) logs_.append(job->id, l.time, l.text);
    });
    api.logs(id, false, since, [&](std::string_view chunk) {
      decoder.feed(chunk);
      return true;
    });
    if (final) decoder.finish();
    st.cursor = filter.cursor();
    st.resume = unstored;
    if (auto p = decoder.pending_start(); p && (!st.resume || *p < *st.resume)) st.resume = p;
  }

  // The stored log's cursor in whole seconds (see LogFilter): the last stored second and how
  // many stored lines fall in it, for reading the API after lines were stored from the file.
  LogCursor coarse_cursor(const std::string& job_id) {
    LogCursor c;
    auto last = logs_.last_time(job_id);
    if (!last) return c;
    c.last = whole_second(*last);
    logs_.read(job_id, c.last, false, [&](const LogLine& l) {
      if (whole_second(l.time) == *c.last) ++c.at_last;
      return true;
    });
    return c;
  }

  // Opens the container's log file for tailing; nullptr when it cannot be read here.
  std::unique_ptr<LogTail> open_tail(const std::shared_ptr<Job>& job, const json& info, const LogCursor& from) {
    auto path = info.value("LogPath", std::string());
    if (path.empty()) return nullptr;
    auto t = std::make_unique<LogTail>();
    t->path = path;
    t->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat sb {};
    if (t->fd < 0 || ::fstat(t->fd, &sb) != 0) {
      spdlog::debug("docker: job {}: cannot read the engine's log file {} ({}); reading the log through the API",
                    job->id, path, std::strerror(errno));
      return nullptr;
    }
    t->ino = sb.st_ino;
    t->filter = LogFilter(from);
    auto* tail = t.get();
    t->decoder = std::make_unique<EngineLogFileDecoder>([this, tail, job](const DockerLogLine& l) {
      if (tail->filter.accept(l.time)) logs_.append(job->id, l.time, l.text);
    });
    return t;
  }

  // Reads what the log file gained. False when the file cannot be tailed any more (rotated,
  // gone, not a format neurod knows): the caller goes on through the API.
  bool read_tail(LogTail& t, LogState& st, bool final) {
    char buf[64 * 1024];
    bool ok = true;
    for (;;) {
      auto n = ::pread(t.fd, buf, sizeof buf, static_cast<off_t>(t.offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ok = false;
        break;
      }
      if (n == 0) break;
      t.offset += static_cast<std::uint64_t>(n);
      if (!t.decoder->feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
        ok = false;
        break;
      }
    }
    if (ok && !final) {
      // Rotated (json-file max-size): the name now holds a new file; this one was read to its end.
      struct stat sb {};
      if (::stat(t.path.c_str(), &sb) != 0 || sb.st_ino != t.ino) ok = false;
    }
    if (ok && final) t.decoder->finish();
    st.cursor = t.filter.cursor();
    st.resume = ok ? t.decoder->pending_start() : std::nullopt;
    if (!ok) {
      // Whatever piece was waiting comes again from the API, which starts from the cursor.
      if (auto p = t.decoder->pending_start()) st.resume = p;
    }
    return ok;
  }

  // Keeps the log current while the container runs, then reports the outcome once it has
  // stopped. Every line is stored before the exited event goes out. The log comes from the
  // engine's log file when it can be tailed (every kTailInterval), from the API otherwise
  // (every second or less often, see read_logs()); the state from inspect, on the API's pace.
  void watch(const std::shared_ptr<Job>& job, DockerApi& api, const std::string& id, bool tty, LogCursor from) {
    LogState st{from, std::nullopt};
    std::optional<json> info;
    std::unique_ptr<LogTail> tail;
    bool tail_tried = false;
    auto stop_tailing = [&](const char* why) {
      spdlog::info("docker: job {}: stopped reading the engine's log file ({}); reading the log through the API",
                   job->id, why);
      tail.reset();
    };
    Duration floor = 200ms;  // short jobs are reported quickly; the floor grows to kPollInterval
    auto next_inspect = std::chrono::steady_clock::now();
    for (int failures = 0;;) {
      auto began = std::chrono::steady_clock::now();
      try {
        bool due = !tail || began >= next_inspect;
        if (due) info = api.inspect_container(id);
        if (!tail_tried && info) {
          tail_tried = !options_.read_log_file;
        }
        if (!tail_tried && info) {
          tail_tried = true;
          tail = open_tail(job, *info, st.cursor);
          if (tail) spdlog::debug("docker: job {}: tailing the engine's log file {}", job->id, tail->path);
        }
        if (tail && !read_tail(*tail, st, false)) stop_tailing("rotated, gone or in an unknown format");
        if (!tail) read_logs(job, api, id, tty, st, false);
        if (tail && due) {
          auto took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - began);
          next_inspect = began + std::clamp<Duration>(took * 5, floor, kMaxPollInterval);
          floor = std::min<Duration>(floor * 2, kPollInterval);
        }
        failures = 0;
      } catch (const DockerEngineError& e) {
        if (e.status() == 404 || contains_ci(e.what(), "no such container"))
          return exited(job, kEngineFailed, "NotFound", "the container was removed before it finished");
        if (++failures > kMaxFailures) throw;
        if (!pause(1s)) return;
        continue;
      } catch (const Error& e) {
        // Ride out a short engine outage (a restarted podman service).
        if (shutting_down()) return;
        if (++failures > kMaxFailures) throw;
        spdlog::debug("docker: job {}: {}; retrying", job->id, e.what());
        if (!pause(1s)) return;
        continue;
      }
      if (!info) return exited(job, kEngineFailed, "NotFound", "the container was removed before it finished");
      if (has_stopped(*info)) break;
      if (tail) {
        if (!pause(kTailInterval)) return;
        continue;
      }
      // Reading a big log costs the engine: read it less often.
      auto took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - began);
      auto interval = std::clamp<Duration>(took * 5, floor, kMaxPollInterval);
      floor = std::min<Duration>(floor * 2, kPollInterval);
      if (!pause(interval)) return;
    }
    if (tail && !read_tail(*tail, st, true)) stop_tailing("unreadable at the end");
    if (!tail) read_logs(job, api, id, tty, st, true);
    report(job, *info);
  }

  void report(const std::shared_ptr<Job>& job, const json& info) {
    auto state = info.value("State", json::object());
    int code = state.value("ExitCode", 0);
    bool oom = state.value("OOMKilled", false);
    std::int64_t memory = info.value("HostConfig", json::object()).value("Memory", std::int64_t{0});
    auto when = engine_time(state, "FinishedAt");
    if (stop_requested(job))
      return exited(job, code, "Killed", fmt::format("stopped on request (exit code {})", code), when);
    if (oom)
      return exited(job, kKilled, "OOMKilled", fmt::format("out of memory (limit {})", format_size_human(memory)),
                    when);
    if (code == 0) return exited(job, 0, "Completed", "", when);
    // Podman 4.3 with conmon 2.1.6 misses OOM kills when the service's working directory
    // is not the container's bundle: a SIGKILL under a memory limit is most likely one.
    if (code == kKilled && memory > 0)
      return exited(job, kKilled, "OOMKilled",
                    fmt::format("killed by SIGKILL under a memory limit of {}: most likely out of memory",
                                format_size_human(memory)),
                    when);
    exited(job, code, "Error", fmt::format("exit code {}", code), when);
  }

  void run_adopted(const std::shared_ptr<Job>& job, const std::string& id) {
    DockerApi api(options_.socket, version_, kCallTimeout);
    track(api, [&] {
      try {
        adopt_tracked(job, id, api);
      } catch (const std::exception& e) {
        engine_failed(job, e);
      }
    });
  }

  void adopt_tracked(const std::shared_ptr<Job>& job, const std::string& id, DockerApi& api) {
    auto info = api.inspect_container(id);
    if (!info) return exited(job, kEngineFailed, "NotFound", "the container vanished while neurod was down");
    auto state = info->value("State", json::object());
    auto status = state.value("Status", std::string());
    bool tty = info->value("Config", json::object()).value("Tty", false);
    {
      std::lock_guard lock(mu_);
      job->container = id;
    }
    if (status == "created" || status == "configured" || status == "initialized") {
      // neurod went down between create and start: the attempt never ran, so run it now.
      try {
        api.start_container(id);
      } catch (const DockerEngineError& e) {
        return exited(job, kEngineFailed, "ContainerCannotRun", e.what());
      }
      spdlog::info("docker: job {} attempt {}: started adopted container {}", job->id, job->attempt, id.substr(0, 12));
      Event running;
      running.kind = Event::Kind::running;
      emit(job, running);
      return watch(job, api, id, tty, stored_cursor(job->id));
    }
    if (!has_stopped(*info)) {  // running, paused, stopping
      spdlog::info("docker: job {} attempt {}: watching container {} again", job->id, job->attempt, id.substr(0, 12));
      Event running;
      running.kind = Event::Kind::running;
      if (auto t = engine_time(state, "StartedAt")) running.time = *t;
      emit(job, running);
      return watch(job, api, id, tty, stored_cursor(job->id));
    }
    // It ended while neurod was down.
    LogState st{stored_cursor(job->id), std::nullopt};
    read_logs(job, api, id, tty, st, true);
    report(job, *info);
  }

  DockerOptions options_;
  LogStore& logs_;
  EventSink sink_;
  SecretFiles secrets_;
  std::string version_;
  std::string describe_;

  std::mutex mu_;
  std::condition_variable idle_;  // active_ went down
  std::condition_variable wake_;  // shutdown started
  int active_ = 0;
  bool shutting_down_ = false;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // attempts being launched or watched
  SessionSet sessions_;  // exec and attach sessions
  std::set<DockerApi*> apis_;                         // connections in use, cut by shutdown()
};

thread_local const DockerRunner* DockerRunner::t_worker_of = nullptr;

}  // namespace

std::unique_ptr<Runner> make_docker_runner(const DockerOptions& options, LogStore& logs, EventSink sink) {
  return std::make_unique<DockerRunner>(options, logs, std::move(sink));
}

std::optional<std::string> find_engine_socket() {
  std::vector<std::string> candidates;
  if (const char* host = std::getenv("DOCKER_HOST"); host && std::string_view(host).starts_with("unix://"))
    candidates.emplace_back(host + 7);
  candidates.emplace_back("/run/podman/podman.sock");
  candidates.emplace_back("/var/run/docker.sock");
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg)
    candidates.push_back(std::string(xdg) + "/podman/podman.sock");
  for (const auto& path : candidates) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    try {
      http::Client client("unix://" + path, http::ClientOptions{.timeout = 1s});
      if (client.get("/_ping").status == 200) return path;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

}  // namespace neurod::executor

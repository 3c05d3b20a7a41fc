#include "modules/executor/module.hpp"

#include "modules/executor/secret_files.hpp"

#include "core/errors.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"


#include <condition_variable>
#include <fstream>

namespace neurod::executor {

void UlimitConfig::describe(config::Schema<UlimitConfig>& s) {
  s.field("name", &UlimitConfig::name, "The limit: nofile, nproc, memlock, stack, core, …").non_empty();
  s.field("soft", &UlimitConfig::soft, "Soft limit.").min(0);
  s.field("hard", &UlimitConfig::hard, "Hard limit (no higher than the engine's own).").min(0);
}

void RegistryConfig::describe(config::Schema<RegistryConfig>& s) {
  s.field("server", &RegistryConfig::server, "Registry host[:port] these credentials are for.").non_empty();
  s.field("username", &RegistryConfig::username, "User name.");
  s.field("password", &RegistryConfig::password, "Password or token (use file: or ${ENV} to keep it out of the file).");
}

void DockerConfig::describe(config::Schema<DockerConfig>& s) {
  s.field("socket", &DockerConfig::socket,
          "Unix socket of the Docker Engine API (Docker or `podman system service`). Empty: the first that\n"
          "answers of $DOCKER_HOST, /run/podman/podman.sock, /var/run/docker.sock, $XDG_RUNTIME_DIR/podman/podman.sock.");
  s.field("ulimits", &DockerConfig::ulimits,
          "Ulimits of every container (an explicit list replaces the engine's defaults). Empty: the engine's\n"
          "defaults. An engine without CAP_SYS_RESOURCE cannot raise limits above its own: there, list\n"
          "nofile and nproc no higher than the engine's (e.g. {name: nofile, soft: 1024, hard: 1024}).");
  s.field("pids_limit", &DockerConfig::pids_limit, "Most processes in one job; 0: no limit.").min(0);
  s.field("pull_timeout", &DockerConfig::pull_timeout, "An image pull taking longer fails the job (ErrImagePull).")
      .min(1);
  s.field("registries", &DockerConfig::registries, "Credentials for private registries jobs pull from.");
}

void ProcessConfig::describe(config::Schema<ProcessConfig>& s) {
  s.field("bwrap", &ProcessConfig::bwrap, "The bubblewrap binary (Debian package bubblewrap).").non_empty();
  s.field("cgroup_parent", &ProcessConfig::cgroup_parent, "Jobs' cgroups are made under this one.").non_empty();
  s.field("pids_limit", &ProcessConfig::pids_limit, "Most processes in one job; 0: no limit.").min(0);
}

void CapacityConfig::describe(config::Schema<CapacityConfig>& s) {
  s.field("cpu", &CapacityConfig::cpu, "CPU cores jobs may use; 0: all of the machine's.").min(0);
  s.field("memory", &CapacityConfig::memory, "Memory jobs may use; 0: all (or neurod's cgroup limit).");
  s.field("gpus", &CapacityConfig::gpus, "NVIDIA GPUs; -1: detect with nvidia-smi, 0: none.").min(-1).max(64);
  s.field("gpu_model", &CapacityConfig::gpu_model, "The model of configured GPUs (gpus >= 0).");
}

void Config::describe(config::Schema<Config>& s) {
  s.field("runtime", &Config::runtime,
          "How jobs run: docker (Docker Engine API: Docker or Podman), process (a bubblewrap sandbox with\n"
          "cgroups, for machines without a container engine), or auto (docker when an engine answers).")
      .one_of({"auto", "docker", "process"});
  s.field("stop_grace", &Config::stop_grace, "Between SIGTERM and SIGKILL when a job is stopped.");
  s.field("log_retention", &Config::log_retention, "Logs of finished jobs are deleted this long after they end.")
      .min(1);
  s.field("secrets_dir", &Config::secrets_dir,
          "Where jobs' secret files (secret:KEY:/path volumes) are written, under <node-id>/<job-id>/ (0700),\n"
          "and bind-mounted read-only from; removed when the job's attempt ends. Keep it on a tmpfs so secret\n"
          "values never reach a disk (neurod warns at start when it is not).")
      .non_empty();
  s.field("nvidia_smi", &Config::nvidia_smi,
          "The nvidia-smi binary (a path, or a name looked up on PATH) that detects the node's GPUs and samples\n"
          "their utilisation and memory for job telemetry.")
      .non_empty();
  s.field("docker", &Config::docker, "The docker runtime.");
  s.field("process", &Config::process, "The process runtime.");
  s.field("capacity", &Config::capacity, "What jobs may use on this node (the scheduler's capacity).");
}

namespace {

// A stable id for this node's data dir: labels its containers, so that two neurods
// sharing one engine never touch each other's jobs.
std::string load_node_id(const std::filesystem::path& dir) {
  auto path = dir / "node-id";
  {
    std::ifstream in(path);
    std::string id;
    if (in >> id && !id.empty()) return id;
  }
  auto id = "node-" + random_hex(8);
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out) throw Error(errc::unavailable, "cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
  return id;
}

Capacity resolve_capacity(const CapacityConfig& c, const std::string& nvidia_smi) {
  Capacity cap = detect_capacity();
  // Configured GPUs need no detection (and a fake or slow nvidia-smi is not run for it).
  if (c.gpus < 0) cap.gpus = detect_nvidia_gpus(nvidia_smi);
  bool configured = false;
  if (c.cpu > 0) cap.cpu = c.cpu, configured = true;
  if (c.memory.bytes > 0) cap.memory = c.memory.bytes, configured = true;
  if (c.gpus >= 0) {
    configured = true;
    cap.gpus.resize(static_cast<std::size_t>(c.gpus));
    for (int i = 0; i < c.gpus; ++i) {
      auto& g = cap.gpus[static_cast<std::size_t>(i)];
      if (g.id.empty()) g.id = std::to_string(i);
      if (!c.gpu_model.empty()) g.model = c.gpu_model;
    }
  }
  if (configured) cap.source = "config";
  return cap;
}

}  // namespace

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config) {
  auto dir = ctx.module_dir(kName);
  node_id_ = load_node_id(dir);
  capacity_ = resolve_capacity(config.capacity, config.nvidia_smi);
  errors_ = &ctx.metrics().counter(
      "neurod_executor_errors_total",
      "Job attempts the executor could not run or lost, by reason: ErrImagePull, InvalidImageName,\n"
      "ContainerCannotRun, NotFound (vanished), EngineError (the container engine failed).");
  logs_ = std::make_unique<LogStore>(dir / "logs");
  EventSink sink = [this](const Event& e) { deliver(e); };

  if (auto problem = not_in_memory(config.secrets_dir))
    spdlog::warn("executor: modules.executor.secrets_dir: {}: jobs' secret files would be written to a disk; set it to a "
                 "directory on a tmpfs (such as /dev/shm/neurod-secrets or /run/neurod/secrets)",
                 *problem);

  std::string runtime = config.runtime;
  std::string socket = config.docker.socket;
  if (runtime == "auto") {
    if (socket.empty()) socket = find_engine_socket().value_or("");
    runtime = socket.empty() ? "process" : "docker";
  }
  if (runtime == "docker") {
    if (socket.empty()) {
      auto found = find_engine_socket();
      if (!found)
        throw Error(errc::unavailable,
                    "runtime docker: no Docker or Podman API socket answers; start one (`podman system service "
                    "--time=0` or dockerd), set modules.executor.docker.socket, or use runtime: process");
      socket = *found;
    }
    DockerOptions o;
    o.socket = socket;
    for (const auto& u : config.docker.ulimits) o.ulimits.push_back({u.name, u.soft, u.hard});
    o.pids_limit = config.docker.pids_limit;
    o.pull_timeout = config.docker.pull_timeout;
    for (const auto& r : config.docker.registries) o.registry_auths.push_back({r.server, r.username, r.password});
    o.node_id = node_id_;
    o.secrets_dir = config.secrets_dir;
    runner_ = make_docker_runner(o, *logs_, sink);
  } else {
    ProcessOptions o;
    o.bwrap = config.process.bwrap;
    o.run_dir = (dir / "process").string();
    o.cgroup_parent = config.process.cgroup_parent;
    o.pids_limit = config.process.pids_limit;
    o.node_id = node_id_;
    o.secrets_dir = config.secrets_dir;
    runner_ = make_process_runner(o, *logs_, sink);
  }
  spdlog::info("executor: runtime {}: {}; capacity {} CPU, {} memory, {} GPU ({})", runner_->kind(),
               runner_->describe(), capacity_.cpu, format_size_human(capacity_.memory), capacity_.gpus.size(),
               capacity_.source);

  ctx.add_task("executor-log-retention", [this](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      try {
        int n = logs_->sweep(Clock::now() - config_.log_retention);
        if (n > 0) spdlog::info("executor: deleted the logs of {} jobs past log_retention", n);
      } catch (const std::exception& e) {
        spdlog::warn("executor: log retention sweep failed: {}", e.what());
      }
      std::unique_lock lock(mu);
      cv.wait_for(lock, stop, std::chrono::hours(1), [] { return false; });
    }
  });
}

Module::~Module() {
  if (runner_) runner_->shutdown();
}

void Module::on_stopping() {
  // Jobs keep running without neurod; only the watchers stop.
  if (runner_) runner_->shutdown();
}

app::Health Module::health() {
  app::Health h;
  h.message = std::string(runner_->kind()) + ": " + runner_->describe();
  h.details = {{"runtime", runner_->kind()}, {"engine", runner_->describe()}, {"node_id", node_id_},
               {"capacity", capacity_.to_json()}};
  return h;
}

void Module::set_listener(EventSink sink) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(sink);
  while (!early_.empty()) {
    listener_(early_.front());
    early_.pop_front();
  }
}

void Module::deliver(const Event& e) {
  if (e.kind == Event::Kind::exited && errors_) {
    std::string reason;
    if (e.reason == "ErrImagePull" || e.reason == "InvalidImageName" || e.reason == "ContainerCannotRun" ||
        e.reason == "NotFound")
      reason = e.reason;
    else if (e.reason == "Error" && e.message.starts_with("container engine error"))
      reason = "EngineError";
    if (!reason.empty()) errors_->with({{"reason", reason}}).inc();
  }
  std::lock_guard lock(listener_mu_);
  if (listener_)
    listener_(e);
  else
    early_.push_back(e);
}

}  // namespace neurod::executor

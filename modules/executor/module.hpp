// The `executor` module (compute; DESIGN §8): runs jobs on this node through one runtime
// (docker or process), keeps their logs, and reports the node's capacity. The `jobs`
// scheduler drives it through runner() and receives its events through set_listener().
#pragma once

#include "app/module.hpp"
#include "modules/executor/capacity.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/log_store.hpp"

#include <deque>
#include <memory>
#include <mutex>

namespace neurod::executor {

struct UlimitConfig {
  std::string name;
  std::int64_t soft = 0;
  std::int64_t hard = 0;
  static void describe(config::Schema<UlimitConfig>& s);
};

struct RegistryConfig {
  std::string server;
  std::string username;
  std::string password;
  static void describe(config::Schema<RegistryConfig>& s);
};

struct DockerConfig {
  std::string socket;  // empty: the first of the usual places that answers
  std::vector<UlimitConfig> ulimits;  // empty: the engine's defaults
  int pids_limit = 4096;
  Duration pull_timeout = std::chrono::minutes(10);
  std::vector<RegistryConfig> registries;
  static void describe(config::Schema<DockerConfig>& s);
};

struct ProcessConfig {
  std::string bwrap = "bwrap";
  std::string cgroup_parent = "neurod";
  int pids_limit = 4096;
  static void describe(config::Schema<ProcessConfig>& s);
};

struct CapacityConfig {
  double cpu = 0;         // 0: detect
  config::Size memory{0};  // 0: detect
  int gpus = -1;          // -1: detect with nvidia-smi; 0: none
  std::string gpu_model;  // for configured GPUs
  static void describe(config::Schema<CapacityConfig>& s);
};

struct Config {
  std::string runtime = "auto";  // auto | docker | process
  Duration stop_grace = std::chrono::seconds(10);
  Duration log_retention = std::chrono::hours(24 * 30);
  std::string secrets_dir = "/dev/shm/neurod-secrets";
  std::string nvidia_smi = "nvidia-smi";  // GPU detection and telemetry
  DockerConfig docker;
  ProcessConfig process;
  CapacityConfig capacity;
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "executor";
  static constexpr app::Roles kRoles = app::kCompute;
  static constexpr std::array<std::string_view, 1> kDepends{"system"};
  using Config = executor::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_stopping() override;
  app::Health health() override;

  Runner& runner() { return *runner_; }
  LogStore& logs() { return *logs_; }
  const Capacity& capacity() const { return capacity_; }
  Duration stop_grace() const { return config_.stop_grace; }
  const std::string& node_id() const { return node_id_; }
  // The nvidia-smi the node's GPUs are detected and sampled with (modules.executor.nvidia_smi).
  const std::string& nvidia_smi() const { return config_.nvidia_smi; }

  // Where runner events go. Events that come before a listener is set are kept and
  // delivered to it in order.
  void set_listener(EventSink sink);

 private:
  void deliver(const Event& e);

  Config config_;
  std::string node_id_;
  Capacity capacity_;
  std::unique_ptr<LogStore> logs_;
  std::mutex listener_mu_;
  EventSink listener_;
  std::deque<Event> early_;
  metrics::Family<metrics::Counter>* errors_ = nullptr;  // neurod_executor_errors_total
  std::unique_ptr<Runner> runner_;
};

}  // namespace neurod::executor

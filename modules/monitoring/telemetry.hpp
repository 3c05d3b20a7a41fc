// Job telemetry (README.md "Telemetry"): one sampler thread for every running job. About
// once a second it asks the runner what each job uses (Runner::usage: cgroups or the
// engine), runs nvidia-smi once for all GPUs when a running job has any, works out CPU
// cores from the deltas, and then
//   - keeps the last `recent_window` of samples per job in memory,
//   - pushes one message to each /top watcher of the job (through the WebSocket's queued
//     sends: no thread per watcher),
//   - folds the sample into the job's current history step, written to job_telemetry when
//     the step ends (one row per job per history_step),
//   - serves the per-job gauges on /metrics.
// Watchers of a job are closed (1000) when the job finishes (the "job.status" event).
#pragma once

#include "core/metrics.hpp"
#include "core/units.hpp"
#include "http/types.hpp"
#include "modules/executor/executor.hpp"
#include "modules/executor/telemetry.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

namespace neurod::db {
class Database;
}

namespace neurod::monitoring {

struct TelemetryOptions {
  Duration sample_interval = std::chrono::seconds(1);
  Duration history_step = std::chrono::seconds(15);
  Duration history_retention = std::chrono::hours(24 * 30);
  Duration recent_window = std::chrono::minutes(5);
  std::string nvidia_smi = "nvidia-smi";
};

// One sample of one job.
struct Sample {
  std::int64_t time_ms = 0;
  double cpu = 0;  // cores used since the previous sample
  std::uint64_t memory = 0;
  std::optional<std::uint64_t> memory_limit;
  std::optional<double> gpu_duty_cycle;     // percent, the mean over the job's GPUs
  std::optional<std::uint64_t> gpu_memory;  // bytes, the sum over the job's GPUs
  std::optional<std::uint64_t> gpu_memory_total;
  // The /top message: {"cpu", "memory" (MiB), "memory_bytes", "timestamp" (epoch seconds),
  // "gpu_duty_cycle"?, "gpu_memory" (MiB)?, "gpu_memory_bytes"?}.
  nlohmann::json top_json() const;
};

// A running job as the sampler needs it (from the scheduler).
struct RunningJob {
  std::string id, name, owner, project;
  std::vector<std::string> gpu_ids;
};

// One /top connection. Made before the job is checked (so that no "finished" event can
// slip between the check and the registration), opened when the upgrade completes.
class Watcher {
 public:
  explicit Watcher(std::string job_id) : job_id_(std::move(job_id)) {}
  const std::string& job_id() const { return job_id_; }
  void open(std::shared_ptr<http::WebSocket> ws);
  void send(const std::string& message);
  void finish();  // closes with 1000 now, or as soon as it opens

 private:
  std::string job_id_;
  std::mutex mu_;
  std::shared_ptr<http::WebSocket> ws_;
  bool finished_ = false;
};

class Telemetry {
 public:
  using RunningFn = std::function<std::vector<RunningJob>()>;
  using GpuFn = std::function<std::vector<executor::GpuUsage>()>;

  // runner may be null (no executor here: nothing is sampled, history still answers).
  Telemetry(db::Database& db, executor::Runner* runner, RunningFn running, TelemetryOptions options,
            metrics::Registry& metrics);
  ~Telemetry();

  // The sampler loop (a module task); writes the open steps when asked to stop.
  void run(std::stop_token stop);
  // One pass: samples every running job at `now`.
  void tick(std::int64_t now_ms);
  // Writes every job's open history step (at shutdown).
  void flush();
  // Deletes history older than the retention; returns the rows deleted.
  std::int64_t sweep(std::int64_t now_ms);

  std::shared_ptr<Watcher> watch(const std::string& job_id);
  void job_finished(const std::string& job_id);
  // The samples in memory (the last recent_window) of a running job, oldest first.
  std::vector<Sample> recent(const std::string& job_id) const;
  // The history as the telemetry route answers it (README.md).
  nlohmann::json history(const std::string& job_id, std::int64_t since_ms, std::int64_t until_ms,
                         std::int64_t step_ms) const;
  const TelemetryOptions& options() const { return options_; }
  bool sampling() const { return runner_ != nullptr; }
  void set_gpu_source(GpuFn fn) { gpus_ = std::move(fn); }  // tests

 private:
  struct Step {
    std::int64_t start = -1;
    int samples = 0;
    double cpu_sum = 0, cpu_max = 0;
    double memory_sum = 0;
    std::uint64_t memory_max = 0;
    int gpu_samples = 0;
    double gpu_sum = 0, gpu_max = 0;
    std::optional<std::uint64_t> gpu_memory_max;
  };
  struct Row {
    std::string job_id;
    std::int64_t step_ms;
    Step step;
  };
  struct JobState {
    RunningJob job;
    std::optional<executor::Usage> prev;
    std::deque<Sample> recent;
    Step step;
  };
  void add_to_step(JobState& s, const Sample& sample, std::vector<Row>& rows) const;
  void write(const std::vector<Row>& rows);

  db::Database& db_;
  executor::Runner* runner_;
  RunningFn running_;
  GpuFn gpus_;
  TelemetryOptions options_;

  mutable std::mutex mu_;
  std::map<std::string, JobState> jobs_;                                 // running jobs, by id
  std::map<std::string, std::vector<std::weak_ptr<Watcher>>> watchers_;  // /top connections, by job id
  std::vector<Row> leftover_;  // open steps of jobs that finished, written by the next tick
};

}  // namespace neurod::monitoring

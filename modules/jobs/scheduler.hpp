// The scheduler (DESIGN §8): one thread owns every live job's state machine. It admits
// pending jobs by priority then waiting time against the node's capacity and the
// owners' quotas, hands them to the executor, turns executor events into statuses,
// restarts by policy with back-off, and enforces schedule timeouts, life spans and
// CPU/GPU-hour quotas. Every status change is written with its history row in one
// transaction, then published on the event bus as "job.status".
#pragma once

#include "core/events.hpp"
#include "modules/executor/capacity.hpp"
#include "modules/executor/executor.hpp"
#include "modules/jobs/model.hpp"
#include "modules/jobs/repo.hpp"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <mutex>
#include <stop_token>
#include <thread>
#include <variant>

namespace neurod::db {
class Database;
}
namespace neurod::auth {
class Quotas;
}
namespace neurod::executor {
class LogStore;
}
namespace neurod::metrics {
class Registry;
class Counter;
class Histogram;
template <class T>
class Family;
}  // namespace neurod::metrics

namespace neurod::jobs {

struct SchedulerOptions {
  std::string cluster;
  // Where image:NAME:TAG points: "local" (the engine's local images, NAME:TAG), a
  // "host:port" registry (host:port/PROJECT/NAME:TAG, credentials from the executor's
  // config), or empty: this neurod's registry when local_registry is set, else local.
  std::string image_registry;
  // The registry module runs here: its "host:port" as the container engine reaches it
  // (empty until the server listens), and pull credentials for a job's owner.
  std::function<std::string()> local_registry;
  std::function<executor::RegistryAuth(const std::string& owner, const std::string& repository)> pull_auth;
  Duration restart_backoff_min = std::chrono::seconds(1);
  Duration restart_backoff_max = std::chrono::minutes(5);
  Duration metering_interval = std::chrono::seconds(10);
  // Notifications: publish job.life_span_ending this long before a life span ends (0: never).
  Duration life_span_warning = std::chrono::minutes(10);
  Duration tick = std::chrono::milliseconds(500);
  // Volumes, resolved at each launch (README "Volumes"). The host path behind a canonical
  // storage URI (storage::Module::resolve_mount: throws Error when it cannot be mounted),
  // and a secret's value by its canonical URI (secrets::Module::value: nullopt when there
  // is none). Unset: that module is not loaded, and jobs that need it fail.
  std::function<std::filesystem::path(std::string_view uri, bool read_only)> storage_mount;
  std::function<std::optional<std::string>(std::string_view uri)> secret_value;
  // Where the scheduler's metrics go (decisions, wait times); none when null.
  metrics::Registry* metrics = nullptr;
};

// The executor in this process, when there is one.
struct ExecutorView {
  executor::Runner* runner = nullptr;
  executor::LogStore* logs = nullptr;
  executor::Capacity capacity;
  Duration stop_grace = std::chrono::seconds(10);
};

class Scheduler {
 public:
  Scheduler(db::Database& db, auth::Quotas* quotas, events::Bus& bus, ExecutorView exec, SchedulerOptions options);
  ~Scheduler();

  // Loads the live jobs, re-adopts those at the executor, and starts the thread.
  void start();
  void stop();

  // A job just inserted by the API (pending, Creating).
  void submitted(const Job& job);
  // Cancels (UserRequested); returns once recorded. No-op for a finished job.
  void cancel(const std::string& id, const std::string& reason = "UserRequested");
  // The life span changed.
  void set_life_span(const std::string& id, int minutes);
  // From the executor's threads.
  void on_executor_event(const executor::Event& e);

  // Why a job could never run here (nullopt: it fits when the node is empty).
  std::optional<std::string> unschedulable(const JobSpec& spec) const;
  bool has_executor() const { return exec_.runner != nullptr; }
  std::string executor_kind() const;

  // Resolves image:NAME[:TAG] for the engine.
  struct ResolvedImage {
    std::string reference;  // what the engine pulls and runs
    std::optional<executor::RegistryAuth> auth;
  };
  ResolvedImage resolve_image(const JobSpec& spec, const std::string& owner) const;
  // The job's environment: the user's plus NEURO_JOB_*.
  std::vector<std::pair<std::string, std::string>> job_env(const Job& job) const;

  struct Stats {
    std::size_t pending = 0, running = 0, launched = 0;
    std::size_t waiting = 0;  // pending and not at the executor: the queue
    double cpu_used = 0;
    std::uint64_t memory_used = 0;
    std::size_t gpus_used = 0;
    std::map<std::string, std::int64_t> finished;  // succeeded, failed, cancelled: every job ever
  };
  Stats stats() const;

  // The jobs running at the executor now (telemetry samples these).
  struct RunningJob {
    std::string id, name, owner, project;
    std::vector<std::string> gpu_ids;
  };
  std::vector<RunningJob> running() const;

 private:
  struct Live {
    Job job;
    repo::RunState run;
    std::int64_t waiting_since = 0;  // for the schedule timeout
    // Notifications: events already published for this job in this process ("cannot_start:quota",
    // "life_span:60"), so each is published once; the subscriber dedupes across restarts.
    std::set<std::string> announced;
  };
  struct Command {
    enum class Kind { submitted, cancel, life_span } kind;
    std::string id;
    std::string reason;
    int minutes = 0;
    std::optional<Job> job;
    std::shared_ptr<std::promise<void>> done;
  };

  void run(std::stop_token stop);
  void handle(Command& c);
  void handle(const executor::Event& e);
  void admit(std::int64_t now);
  void enforce(std::int64_t now);
  void meter(std::int64_t now, bool force);
  // Appends a status (and saves the run state) in one transaction, then publishes it.
  void transition(Live& l, StatusItem item);
  void save_run(Live& l);
  void finish_attempt(Live& l);  // the attempt left the executor: free what it held
  void stop_job(Live& l, const std::string& reason, const std::string& description);
  // What a launch needs beyond the spec: volumes and secrets, resolved.
  struct Resolved {
    std::vector<executor::Mount> mounts;
    std::vector<std::pair<std::string, std::string>> env;  // secret env
    std::vector<executor::SecretFile> secret_files;
  };
  // Resolves the job's volumes and secrets now; on failure, why (CreateContainerConfigError),
  // never with a secret's value in it.
  std::variant<Resolved, std::string> resolve_volumes(const Job& job) const;
  void launch(Live& l, Resolved resolved);
  void charge(Live& l, std::int64_t now);
  // Notifications: publishes job.cannot_start (why: "capacity" | "quota") once per job and why.
  void announce_cannot_start(Live& l, const std::string& why, const std::string& description);

  db::Database& db_;
  auth::Quotas* quotas_;
  events::Bus& bus_;
  ExecutorView exec_;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Command> commands_;
  std::deque<executor::Event> events_;
  std::map<std::string, Live> live_;  // scheduler thread only
  Stats stats_;                       // under mu_
  std::vector<RunningJob> running_;   // under mu_
  std::map<std::string, std::int64_t> finished_;  // scheduler thread; copied into stats_
  // Metrics (null without a registry).
  metrics::Family<metrics::Counter>* decisions_ = nullptr;
  metrics::Histogram* wait_seconds_ = nullptr;
  void decided(const std::string& outcome, const std::string& reason);
  std::int64_t last_meter_ = 0;
  std::jthread thread_;
};

}  // namespace neurod::jobs

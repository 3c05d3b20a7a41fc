// The `jobs` module (DESIGN §8; README.md here): the job API, the scheduler and its
// enforcers. Runs on the control plane; drives the `executor` module when it runs in
// the same process.
#pragma once

#include "app/module.hpp"
#include "modules/jobs/scheduler.hpp"
#include "modules/jobs/service.hpp"
#include "modules/jobs/watch.hpp"

#include <memory>

namespace neurod::jobs {

struct Config {
  Duration schedule_timeout = std::chrono::minutes(5);
  Duration default_life_span = std::chrono::hours(24);
  Duration restart_backoff = std::chrono::seconds(1);
  Duration restart_backoff_max = std::chrono::minutes(5);
  Duration metering_interval = std::chrono::seconds(10);
  std::string image_registry;
  // Notifications: how long before a running job's life span ends `job.life_span_ending` is
  // published (0: never).
  Duration life_span_warning = std::chrono::minutes(10);
  // The live job list (GET /api/v1/jobs?watch=true).
  Duration watch_keepalive = std::chrono::seconds(15);
  config::Size watch_max_backlog{1ull << 20};
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "jobs";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  static constexpr std::array<std::string_view, 3> kAfter{"executor", "storage", "secrets"};
  using Config = jobs::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_all_loaded() override;
  void on_stopping() override;
  app::Health health() override;

  Service& service() { return *service_; }
  Scheduler& scheduler() { return *scheduler_; }

 private:
  void add_routes(http::Router& r);  // api.cpp

  Config config_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Service> service_;
  std::shared_ptr<Watchers> watchers_;  // GET /api/v1/jobs?watch=true (watch.hpp)
};

}  // namespace neurod::jobs

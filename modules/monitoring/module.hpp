// The `monitoring` module (DESIGN §2; README.md here): what users do with a job once it
// runs: its log (chunked and WebSocket follow, deletion), telemetry (/top and history),
// exec and attach, port-forward, kill with a signal, save as an image, and the job
// metrics on /metrics. Control plane beside `jobs` (which resolves jobs and checks
// permissions); it reaches the job through the `executor` module when that runs in the
// same process.
//
// The routes are split by area, one file each: logs_api.cpp, telemetry_api.cpp,
// sessions_api.cpp (exec, attach, port-forward, kill, save).
#pragma once

#include "app/module.hpp"

#include <memory>

namespace neurod::executor {
class LogStore;
class Runner;
class Module;
}  // namespace neurod::executor

namespace neurod::jobs {
class Service;
}

namespace neurod::monitoring {

struct Config {
  // Telemetry
  Duration sample_interval = std::chrono::seconds(1);
  Duration history_step = std::chrono::seconds(15);
  Duration history_retention = std::chrono::hours(24 * 30);
  Duration recent_window = std::chrono::minutes(5);
  // Job HTTP proxy: how long a ticket link (/api/v1/jobs/JOB/http/~t.TICKET/) works.
  Duration http_ticket_ttl = std::chrono::hours(12);
  std::string http_ticket_key_file;  // empty: <data_dir>/monitoring/http-ticket.key
  static void describe(config::Schema<Config>& s);
};

class Telemetry;

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "monitoring";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 3> kDepends{"system", "auth", "jobs"};
  static constexpr std::array<std::string_view, 2> kAfter{"executor", "registry"};
  using Config = monitoring::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_all_loaded() override;
  void on_stopping() override;

 private:
  // One per area (see the file comment); each registers its routes.
  void add_log_routes(http::Router& r);        // logs_api.cpp
  void add_telemetry_routes(http::Router& r);  // telemetry_api.cpp
  void add_session_routes(http::Router& r);    // sessions_api.cpp
  // Exec, attach and kill with a signal (exec.cpp), called from add_session_routes.
  void add_exec_routes(http::Router& r);
  // Port-forward and save: port_forward.cpp (called from add_session_routes).
  void add_forward_routes(http::Router& r);
  // A job's HTTP port, reverse-proxied: http_proxy.cpp (called from add_session_routes).
  void add_http_proxy_routes(http::Router& r);

  // The executor's parts, or nullptr when no executor runs in this process (the routes
  // then answer 503 no_executor).
  executor::Runner& runner() const;
  executor::LogStore& logs() const;

  Config config_;
  app::ModuleContext& ctx_;
  jobs::Service& jobs_;
  executor::Module* executor_ = nullptr;

  // Telemetry (telemetry.{hpp,cpp}, telemetry_api.cpp)
  void start_telemetry();  // telemetry_api.cpp: the sampler, its task and its bus subscription
  std::unique_ptr<Telemetry> telemetry_;
  std::size_t telemetry_sub_ = 0;
};

}  // namespace neurod::monitoring

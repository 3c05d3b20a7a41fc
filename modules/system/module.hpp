// The `system` module: liveness, health, version, public cluster information and
// the Prometheus endpoint. Every node runs it.
#pragma once

#include "app/module.hpp"

namespace neurod::system {

struct Config {
  bool metrics_public = true;  // /metrics without authentication (for a Prometheus scraper)
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "system";
  static constexpr app::Roles kRoles = app::kBothRoles;
  static constexpr std::array<std::string_view, 0> kDepends{};
  using Config = system::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  app::Health health() override;

  // Adds keys to GET /api/v1/config (auth adds the caller's projects and roles). Call
  // from a module constructor; contributors run on the blocking pool for every request.
  using ConfigContributor = std::function<void(const http::Request&, nlohmann::json&)>;
  void add_config_contributor(ConfigContributor c) { contributors_.push_back(std::move(c)); }

  // {"status": "ok"|"unhealthy", "modules": {name: {...}}}; healthy == all modules healthy.
  nlohmann::json health_report(bool& healthy);

 private:
  Config config_;
  app::ModuleContext& ctx_;
  std::vector<ConfigContributor> contributors_;
};

}  // namespace neurod::system

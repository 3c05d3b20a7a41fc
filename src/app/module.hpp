// The module contract (DESIGN §2). A module is a class with:
//
//   static constexpr std::string_view kName = "jobs";          // also its YAML section
//   static constexpr app::Roles kRoles = app::kControlPlane;   // where it runs
//   static constexpr std::array<std::string_view, N> kDepends{"auth"};  // constructed first
//   static constexpr std::array<std::string_view, N> kAfter{"executor"};  // optional: first when it runs
//   struct Config { ...; static void describe(config::Schema<Config>&); };
//   Module(const Config&, app::ModuleContext&);  // leaves it ready: routes, tasks
//   optional overrides of ModuleBase: on_all_loaded(), on_stopping(), health()
//
// and is listed in CMake's NEUROD_MODULES. No Beast or Asio here.
#pragma once

#include "config/global.hpp"
#include "config/schema.hpp"
#include "core/events.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace neurod::db {
class Database;
}

namespace neurod::app {

using Roles = unsigned;
inline constexpr Roles kControlPlane = 1;
inline constexpr Roles kCompute = 2;
inline constexpr Roles kBothRoles = kControlPlane | kCompute;

struct Health {
  bool healthy = true;
  std::string message = "ok";
  nlohmann::json details = nlohmann::json::object();
};

class ModuleBase {
 public:
  virtual ~ModuleBase() = default;
  virtual void on_all_loaded() {}
  virtual void on_stopping() {}
  virtual Health health() { return {}; }
};

// What a module's constructor gets. Lives as long as the process's module set.
class ModuleContext {
 public:
  virtual ~ModuleContext() = default;
  virtual const config::GlobalConfig& global() const = 0;
  virtual http::Router& router() = 0;
  virtual db::Database& db() = 0;
  virtual metrics::Registry& metrics() = 0;
  // The in-process event bus (core/events.hpp): job status changes and the like.
  virtual events::Bus& events() = 0;
  // Names of the modules that run in this process, in construction order.
  virtual const std::vector<std::string>& enabled_modules() const = 0;
  // <data_dir>/<name>, created (mode 0700) on first call.
  virtual std::filesystem::path module_dir(std::string_view name) = 0;
  // A background task started after every module's on_all_loaded() and asked to stop
  // (through the stop_token) before on_stopping(). It runs on its own thread.
  virtual void add_task(std::string name, std::function<void(std::stop_token)> fn) = 0;
  // The server's URL ("http://127.0.0.1:8080") once it listens; empty while modules are
  // constructed. Safe to call from tasks and request handlers.
  virtual std::string address() const = 0;
  // A module constructed before this one (list it in kDepends), or nullptr.
  virtual ModuleBase* find(std::string_view name) = 0;

  template <class M>
  M& get() {
    auto* base = find(M::kName);
    auto* m = dynamic_cast<M*>(base);
    if (!m) throw std::logic_error("module '" + std::string(M::kName) + "' is not loaded before this one");
    return *m;
  }
};

// What an offline subcommand (`neurod admin …`) gets: the config and the database,
// opened and migrated on first use; no HTTP server and no other module runs.
class OfflineContext {
 public:
  virtual ~OfflineContext() = default;
  virtual const config::GlobalConfig& global() const = 0;
  virtual const std::string& config_file() const = 0;
  // The module's parsed Config (cast it back to M::Config).
  virtual const void* module_config() const = 0;
  virtual db::Database& db() = 0;
};

// A module may offer `static std::vector<app::OfflineCommand> offline_commands();`.
// `neurod NAME ARGS…` runs `run(ARGS, ctx)`, which parses ARGS itself and returns the
// process's exit code.
struct OfflineCommand {
  std::string name;
  std::string summary;
  std::function<int(const std::vector<std::string>& args, OfflineContext& ctx)> run;
};

// The type-erased description the app uses; made from a module class by describe_module<M>().
struct ModuleInfo {
  std::string name;
  Roles roles = kBothRoles;
  std::vector<std::string> depends;
  std::vector<std::string> after;  // optional dependencies: constructed first when they run
  // Parses the module's YAML section (may be a null node) into its Config, reporting errors.
  std::function<std::shared_ptr<void>(const YAML::Node&, const std::string& key_prefix, config::Errors&)> parse_config;
  // The commented YAML of the module's keys with their defaults, indented by `indent` spaces.
  std::function<std::string(int indent)> reference;
  std::function<std::unique_ptr<ModuleBase>(const std::shared_ptr<void>& config, ModuleContext&)> construct;
  std::vector<OfflineCommand> offline_commands;
};

template <class M>
ModuleInfo describe_module() {
  using Config = typename M::Config;
  ModuleInfo info;
  info.name = std::string(M::kName);
  info.roles = M::kRoles;
  for (auto d : M::kDepends) info.depends.emplace_back(d);
  if constexpr (requires { M::kAfter; })
    for (auto d : M::kAfter) info.after.emplace_back(d);
  info.parse_config = [](const YAML::Node& node, const std::string& prefix, config::Errors& errors) {
    return std::static_pointer_cast<void>(std::make_shared<Config>(config::parse<Config>(node, prefix, errors)));
  };
  info.reference = [](int indent) { return config::reference<Config>(indent); };
  info.construct = [](const std::shared_ptr<void>& cfg, ModuleContext& ctx) -> std::unique_ptr<ModuleBase> {
    return std::make_unique<M>(*std::static_pointer_cast<Config>(cfg), ctx);
  };
  if constexpr (requires { M::offline_commands(); }) info.offline_commands = M::offline_commands();
  return info;
}

// Generated by CMake from NEUROD_MODULES (src/app/modules_list.cpp.in).
std::vector<ModuleInfo> compiled_modules();

}  // namespace neurod::app

// The running module set (DESIGN §2): loads config, opens the data dir and the
// database, applies migrations, constructs the enabled modules in dependency order,
// serves HTTP, and stops everything in reverse order.
#pragma once

#include "app/module.hpp"
#include "config/loader.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace neurod::db {
class Database;
}

namespace neurod::app {

// The config sections of the given modules, for the loader and the reference.
std::vector<config::SectionSpec> section_specs(const std::vector<ModuleInfo>& modules);

// Loads and validates a config file against the compiled modules (ConfigError lists every problem).
config::LoadedConfig load_config(const std::filesystem::path& path, const std::vector<ModuleInfo>& modules = compiled_modules());

// The modules that run for this config (enabled and matching a role), in construction
// order. Throws std::runtime_error naming the chain on a dependency cycle, and naming
// the module on a missing or disabled dependency.
std::vector<const ModuleInfo*> plan_modules(const config::LoadedConfig& cfg, const std::vector<ModuleInfo>& modules);

class App {
 public:
  explicit App(config::LoadedConfig cfg, std::vector<ModuleInfo> modules = compiled_modules());
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Everything up to a listening server. On failure, whatever was built is torn down
  // in reverse and the exception propagates (std::runtime_error "cannot start module 'X': …"
  // or a neurod::Error for the data dir, database or listener).
  void start();
  // Graceful stop: drain HTTP (bounded by http.drain_timeout unless given), stop tasks,
  // on_stopping() in reverse order, destroy modules in reverse, close the database.
  void stop();
  void stop(Duration drain);

  std::uint16_t port() const;
  std::string address() const;
  const config::LoadedConfig& config() const;
  const std::vector<std::string>& running_modules() const;
  http::Router& router();
  metrics::Registry& metrics();
  db::Database& db();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens <data_dir>, creating it (0750) when missing, checks that it is writable, and
// takes an exclusive lock on <data_dir>/neurod.lock so that two daemons never share
// it. Returns the lock's fd (closed by the caller at exit). Throws Error(unavailable)
// with one clear message on failure.
int prepare_data_dir(const std::filesystem::path& dir);

// Tells systemd (NOTIFY_SOCKET) about READY=1 / STOPPING=1 / STATUS=…; no-op without it.
void sd_notify_state(const std::string& state);

}  // namespace neurod::app

// neurod: the daemon and its administrative subcommands.
//
//   neurod [--config F]                 run (the default)
//   neurod check-config --config F      validate, print every problem, exit 2 on errors
//   neurod config reference             every key with its default and description
//   neurod migrate [--dry-run] --config F
//   neurod version
//   neurod admin …                     offline commands of the modules (auth: users, tokens)
#include "app/app.hpp"
#include "config/loader.hpp"
#include "core/log.hpp"
#include "db/database.hpp"
#include "db/migrations.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

namespace {

using namespace neurod;

constexpr int kExitConfig = 2;
constexpr int kExitStart = 1;

std::string default_config_path() {
  if (const char* env = std::getenv("NEUROD_CONFIG"); env && *env) return env;
  return "/etc/neurod/neurod.yaml";
}

void print_config_errors(const config::ConfigError& e) {
  std::cerr << "neurod: the configuration has " << e.errors.size() << (e.errors.size() == 1 ? " error" : " errors")
            << ":\n";
  for (const auto& line : e.errors) std::cerr << "  " << line << "\n";
}

// Loads the config, or prints every problem in it and returns nullopt.
std::optional<config::LoadedConfig> load_or_report(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::cerr << "neurod: no config file at " << path
              << "\n  pass --config FILE or set NEUROD_CONFIG; config/neurod.yaml in the source tree runs an "
                 "all-in-one node\n";
    return std::nullopt;
  }
  try {
    return app::load_config(path);
  } catch (const config::ConfigError& e) {
    print_config_errors(e);
    return std::nullopt;
  }
}

int run_daemon(const std::string& config_path) {
  auto loaded = load_or_report(config_path);
  if (!loaded) return kExitConfig;
  auto& cfg = *loaded;

  // Block the stop signals in every thread; this one waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  app::App application(std::move(cfg));
  try {
    application.start();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return kExitStart;
  }
  const auto& modules = application.running_modules();
  std::string list;
  for (const auto& m : modules) list += (list.empty() ? "" : ", ") + m;
  info("neurod {} listening on {} (cluster '{}', data_dir {}, modules: {})", NEUROD_VERSION, application.address(),
       application.config().global.cluster_name, application.config().global.data_dir, list);
  app::sd_notify_state("READY=1\nSTATUS=listening on " + application.address() +
                       "\nMAINPID=" + std::to_string(::getpid()));

  int sig = 0;
  sigwait(&stop_signals, &sig);
  info("received {}, draining (up to {})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
       format_duration(application.config().global.http.drain_timeout));
  app::sd_notify_state("STOPPING=1");
  application.stop();
  info("stopped");
  return 0;
}

int check_config(const std::string& path) {
  try {
    auto modules = app::compiled_modules();
    auto cfg = app::load_config(path, modules);
    auto plan = app::plan_modules(cfg, modules);
    std::string list;
    for (const auto* m : plan) list += (list.empty() ? "" : ", ") + m->name;
    std::cout << path << ": OK (roles: ";
    for (std::size_t i = 0; i < cfg.global.roles.size(); ++i) std::cout << (i ? ", " : "") << cfg.global.roles[i];
    std::cout << "; modules: " << list << ")\n";
    return 0;
  } catch (const config::ConfigError& e) {
    print_config_errors(e);
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "neurod: " << path << ": " << e.what() << "\n";
    return kExitConfig;
  }
}

int migrate(const std::string& path, bool dry_run) {
  auto loaded = load_or_report(path);
  if (!loaded) return kExitConfig;
  auto& cfg = *loaded;
  log::init(cfg.global.log.level);
  try {
    auto modules = app::compiled_modules();
    auto plan = app::plan_modules(cfg, modules);
    std::vector<std::string> names;
    for (const auto* m : plan) names.push_back(m->name);
    int lock = app::prepare_data_dir(cfg.global.data_dir);
    db::Options o;
    o.url = cfg.global.database.url;
    o.pool_size = 1;
    o.busy_timeout = cfg.global.database.busy_timeout;
    auto database = db::Database::open(o, cfg.global.data_dir);
    db::Migrator migrator(*database, db::embedded_migrations(database->dialect()));
    if (dry_run) {
      auto status = migrator.status(names);
      if (status.pending.empty())
        std::cout << "the database is up to date (" << status.applied.size() << " migrations applied)\n";
      for (const auto& m : status.pending) std::cout << "would apply " << m.module << ":" << m.name << "\n";
    } else {
      auto applied = migrator.migrate(names);
      if (applied.empty()) std::cout << "the database is up to date\n";
      for (const auto& a : applied) std::cout << "applied " << a << "\n";
    }
    ::close(lock);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "neurod: " << e.what() << "\n";
    return kExitStart;
  }
}

// The config and database of an offline command, loaded on first use (so that
// `neurod admin --help` needs neither). No data-dir lock: these commands are also for a
// running daemon's administrator, and the database takes care of concurrency.
class Offline final : public app::OfflineContext {
 public:
  Offline(std::string path, std::string module) : path_(std::move(path)), module_(std::move(module)) {}
  const config::GlobalConfig& global() const override { return config().global; }
  const std::string& config_file() const override { return config().file; }
  const void* module_config() const override {
    auto it = config().modules.find(module_);
    return it == config().modules.end() ? nullptr : it->second.get();
  }
  db::Database& db() override {
    if (!db_) {
      const auto& cfg = config();
      auto modules = app::compiled_modules();
      auto plan = app::plan_modules(cfg, modules);
      std::vector<std::string> names;
      for (const auto* m : plan) names.push_back(m->name);
      std::error_code ec;
      std::filesystem::create_directories(cfg.global.data_dir, ec);
      db::Options o;
      o.url = cfg.global.database.url;
      o.pool_size = 1;
      o.busy_timeout = cfg.global.database.busy_timeout;
      db_ = db::Database::open(o, cfg.global.data_dir);
      db::Migrator(*db_, db::embedded_migrations(db_->dialect())).migrate(names);
    }
    return *db_;
  }

 private:
  const config::LoadedConfig& config() const {
    if (!cfg_) {
      cfg_ = load_or_report(path_);
      if (!cfg_) throw Error(errc::invalid_argument, "cannot go on without a valid config");
      log::init(cfg_->global.log.level == "debug" ? "debug" : "warn");
    }
    return *cfg_;
  }
  std::string path_;
  std::string module_;
  mutable std::optional<config::LoadedConfig> cfg_;
  std::unique_ptr<db::Database> db_;
};

int run_offline(const std::string& config_path, const std::string& module, const app::OfflineCommand& command,
                const std::vector<std::string>& args) {
  try {
    Offline ctx(config_path, module);
    return command.run(args, ctx);
  } catch (const std::exception& e) {
    std::cerr << "neurod " << command.name << ": " << e.what() << "\n";
    return kExitStart;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"neurod: an on-prem MLOps platform in one binary"};
  cli.require_subcommand(0, 1);
  std::string config_path = default_config_path();
  cli.add_option("-c,--config", config_path, "Config file (default: $NEUROD_CONFIG or /etc/neurod/neurod.yaml)");

  auto* run = cli.add_subcommand("run", "Run the daemon (the default)");
  run->add_option("-c,--config", config_path, "Config file");
  auto* check = cli.add_subcommand("check-config", "Validate a config file and print every problem");
  check->add_option("-c,--config", config_path, "Config file");
  auto* cfgcmd = cli.add_subcommand("config", "Configuration helpers");
  cfgcmd->require_subcommand(1);
  auto* reference = cfgcmd->add_subcommand("reference", "Print every config key with its default and description");
  auto* mig = cli.add_subcommand("migrate", "Apply database migrations and exit");
  mig->add_option("-c,--config", config_path, "Config file");
  bool dry_run = false;
  mig->add_flag("--dry-run", dry_run, "List the migrations that would run");
  auto* version = cli.add_subcommand("version", "Print the version");

  // Offline commands the modules offer; each parses the rest of the line itself.
  struct OfflineEntry {
    CLI::App* cmd;
    std::string module;
    app::OfflineCommand command;
  };
  std::vector<OfflineEntry> offline;
  for (const auto& m : app::compiled_modules()) {
    for (const auto& c : m.offline_commands) {
      auto* cmd = cli.add_subcommand(c.name, c.summary);
      cmd->add_option("-c,--config", config_path, "Config file");
      cmd->prefix_command();
      cmd->set_help_flag();
      offline.push_back({cmd, m.name, c});
    }
  }

  CLI11_PARSE(cli, argc, argv);

  try {
    if (*version) {
      std::cout << "neurod " << NEUROD_VERSION << "\n";
      return 0;
    }
    if (*reference) {
      std::cout << config::reference_document(app::section_specs(app::compiled_modules()));
      return 0;
    }
    if (*check) return check_config(config_path);
    if (*mig) return migrate(config_path, dry_run);
    for (const auto& o : offline)
      if (*o.cmd) return run_offline(config_path, o.module, o.command, o.cmd->remaining());
    return run_daemon(config_path);
  } catch (const std::exception& e) {
    std::cerr << "neurod: " << e.what() << "\n";
    return kExitStart;
  }
}

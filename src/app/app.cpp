#include "app/app.hpp"

#include "core/errors.hpp"
#include "core/log.hpp"
#include "db/database.hpp"
#include "db/migrations.hpp"
#include "http/server.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

namespace neurod::app {

std::vector<config::SectionSpec> section_specs(const std::vector<ModuleInfo>& modules) {
  std::vector<config::SectionSpec> out;
  out.reserve(modules.size());
  for (const auto& m : modules) out.push_back({m.name, m.parse_config, m.reference});
  return out;
}

config::LoadedConfig load_config(const std::filesystem::path& path, const std::vector<ModuleInfo>& modules) {
  return config::load_file(path, section_specs(modules));
}

std::vector<const ModuleInfo*> plan_modules(const config::LoadedConfig& cfg, const std::vector<ModuleInfo>& modules) {
  Roles roles = 0;
  for (const auto& r : cfg.global.roles) roles |= r == "control-plane" ? kControlPlane : r == "compute" ? kCompute : 0;
  std::map<std::string, const ModuleInfo*> by_name;
  for (const auto& m : modules) by_name[m.name] = &m;
  auto runs = [&](const ModuleInfo& m) {
    auto it = cfg.enabled.find(m.name);
    bool enabled = it == cfg.enabled.end() || it->second;
    return enabled && (m.roles & roles) != 0;
  };

  std::vector<const ModuleInfo*> order;
  std::map<std::string, int> state;  // 0 new, 1 visiting, 2 done
  std::vector<std::string> chain;
  std::function<void(const ModuleInfo&)> visit = [&](const ModuleInfo& m) {
    if (state[m.name] == 2) return;
    if (state[m.name] == 1) {
      std::string text;
      auto start = std::find(chain.begin(), chain.end(), m.name);
      for (auto it = start; it != chain.end(); ++it) text += *it + " -> ";
      throw std::runtime_error("module dependency cycle: " + text + m.name);
    }
    state[m.name] = 1;
    chain.push_back(m.name);
    for (const auto& dep : m.depends) {
      auto it = by_name.find(dep);
      if (it == by_name.end()) throw std::runtime_error("module '" + m.name + "' depends on '" + dep + "', which is not compiled in");
      if (!runs(*it->second))
        throw std::runtime_error("module '" + m.name + "' depends on '" + dep +
                                 "', which is disabled or does not run in this node's roles; enable it or disable '" + m.name + "'");
      visit(*it->second);
    }
    for (const auto& dep : m.after) {
      auto it = by_name.find(dep);
      if (it != by_name.end() && runs(*it->second)) visit(*it->second);
    }
    chain.pop_back();
    state[m.name] = 2;
    order.push_back(&m);
  };
  for (const auto& m : modules)
    if (runs(m)) visit(m);
  return order;
}

int prepare_data_dir(const std::filesystem::path& dir) {
  auto fail = [&](const std::string& why) {
    return Error(errc::unavailable, "cannot use data_dir " + dir.string() + ": " + why +
                                        " (set data_dir in the config file, or fix the directory's owner and permissions)");
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw fail(ec.message());
  if (!std::filesystem::is_directory(dir, ec)) throw fail("not a directory");
  auto probe = dir / ".write-test";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw fail(std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  auto lock_path = dir / "neurod.lock";
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) throw fail(std::strerror(errno));
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    auto n = ::pread(lock, buf, sizeof buf - 1, 0);
    ::close(lock);
    throw fail("another neurod (pid " + std::string(buf, n > 0 ? std::size_t(n) : 0) + ") is using it");
  }
  auto pid = std::to_string(::getpid());
  if (::ftruncate(lock, 0) != 0 || ::pwrite(lock, pid.data(), pid.size(), 0) < 0) {
    // The pid is only informational.
  }
  return lock;
}

void sd_notify_state(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  // The protocol is one datagram on a unix socket ('@' = abstract namespace); doing
  // it by hand keeps libsystemd optional.
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string p(path);
  if (p.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return;
  }
  std::memcpy(addr.sun_path, p.data(), p.size());
  if (p[0] == '@') addr.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size());
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) < 0)
    spdlog::warn("sd_notify to {} failed: {}", p, std::strerror(errno));
  ::close(fd);
}

// ---------------------------------------------------------------------------

struct App::Impl : ModuleContext {
  config::LoadedConfig cfg;
  std::vector<ModuleInfo> infos;
  metrics::Registry registry;
  events::Bus bus;
  http::Router router_;
  std::unique_ptr<db::Database> database;
  std::unique_ptr<http::Server> server;
  std::vector<std::string> names;  // running, in construction order
  std::vector<std::pair<std::string, std::unique_ptr<ModuleBase>>> modules;  // constructed so far
  struct Task {
    std::string name;
    std::function<void(std::stop_token)> fn;
    std::jthread thread;
  };
  std::vector<Task> tasks;
  int lock_fd = -1;
  bool started = false;

  const config::GlobalConfig& global() const override { return cfg.global; }
  http::Router& router() override { return router_; }
  db::Database& db() override { return *database; }
  metrics::Registry& metrics() override { return registry; }
  events::Bus& events() override { return bus; }
  const std::vector<std::string>& enabled_modules() const override { return names; }
  std::filesystem::path module_dir(std::string_view name) override {
    auto dir = std::filesystem::path(cfg.global.data_dir) / std::string(name);
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
    return dir;
  }
  void add_task(std::string name, std::function<void(std::stop_token)> fn) override {
    tasks.push_back({std::move(name), std::move(fn), {}});
  }
  std::string address() const override { return server ? server->address() : std::string(); }
  ModuleBase* find(std::string_view name) override {
    for (auto& [n, m] : modules)
      if (n == name) return m.get();
    return nullptr;
  }

  void teardown() {
    for (auto& t : tasks)
      if (t.thread.joinable()) t.thread.request_stop();
    for (auto& t : tasks)
      if (t.thread.joinable()) t.thread.join();
    tasks.clear();
    for (auto it = modules.rbegin(); it != modules.rend(); ++it) {
      try {
        it->second->on_stopping();
      } catch (const std::exception& e) {
        spdlog::warn("module '{}' failed while stopping: {}", it->first, e.what());
      }
    }
    while (!modules.empty()) modules.pop_back();  // destroy in reverse order
    database.reset();
    if (lock_fd >= 0) ::close(lock_fd);
    lock_fd = -1;
  }
};

App::App(config::LoadedConfig cfg, std::vector<ModuleInfo> modules) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->infos = std::move(modules);
}

App::~App() {
  if (impl_->started) stop(Duration(0));
}

void App::start() {
  auto& d = *impl_;
  const auto& g = d.cfg.global;
  log::init(g.log.level, g.log.format == "json" ? log::Format::json : log::Format::text);
  auto plan = plan_modules(d.cfg, d.infos);
  for (const auto* m : plan) d.names.push_back(m->name);

  try {
    d.lock_fd = prepare_data_dir(g.data_dir);
    db::Options dbo;
    dbo.url = g.database.url;
    dbo.pool_size = static_cast<std::size_t>(g.database.pool_size);
    dbo.busy_timeout = g.database.busy_timeout;
    d.database = db::Database::open(dbo, g.data_dir);
    info("database: {}", d.database->display_url());

    db::Migrator migrator(*d.database, db::embedded_migrations(d.database->dialect()));
    migrator.migrate(d.names);  // logs each migration it applies

    metrics::register_process_metrics(d.registry);
    auto* database = d.database.get();
    d.registry.callback_gauge("neurod_db_pool_sessions", "Database sessions by state", [database] {
      auto s = database->stats();
      return std::vector<std::pair<metrics::Labels, double>>{
          {{{"state", "in_use"}}, double(s.in_use)},
          {{{"state", "idle"}}, double(s.size - s.in_use)},
          {{{"state", "waiting"}}, double(s.waiting)},
      };
    });

    for (const auto* m : plan) {
      d.router_.set_current_module(m->name);
      try {
        d.modules.emplace_back(m->name, m->construct(d.cfg.modules.at(m->name), d));
      } catch (const std::exception& e) {
        throw std::runtime_error("cannot start module '" + m->name + "': " + e.what());
      }
    }
    d.router_.set_current_module("");
    for (auto& [name, m] : d.modules) {
      try {
        m->on_all_loaded();
      } catch (const std::exception& e) {
        throw std::runtime_error("cannot start module '" + name + "': " + e.what());
      }
    }
    d.router_.freeze();

    http::ServerOptions so;
    auto [host, port] = http::split_host_port(g.http.listen);
    so.host = host;
    so.port = port;
    so.io_threads = g.http.io_threads;
    so.blocking_threads = g.http.blocking_threads;
    so.max_header_size = g.http.max_header_size.bytes;
    so.max_body_size = g.http.max_body_size.bytes;
    so.max_upload_size = g.http.max_upload_size.bytes;
    so.header_timeout = g.http.header_timeout;
    so.idle_timeout = g.http.idle_timeout;
    so.request_timeout = g.http.request_timeout;
    so.max_connections = g.http.max_connections;
    so.temp_dir = g.http.temp_dir.empty() ? std::filesystem::path(g.data_dir) / "tmp" : std::filesystem::path(g.http.temp_dir);
    so.access_log = g.http.access_log;
    so.tls_cert_file = g.http.tls.cert;
    so.tls_key_file = g.http.tls.key;
    d.server = std::make_unique<http::Server>(so, d.router_, d.registry);
    d.server->start();

    for (auto& t : d.tasks) {
      auto fn = t.fn;
      auto name = t.name;
      t.thread = std::jthread([fn, name](const std::stop_token& st) {
        try {
          fn(st);
        } catch (const std::exception& e) {
          spdlog::error("background task '{}' failed: {}", name, e.what());
        }
      });
    }
    d.started = true;
  } catch (...) {
    if (d.server) d.server->stop(Duration(0));
    d.server.reset();
    d.teardown();
    throw;
  }
}

void App::stop() { stop(impl_->cfg.global.http.drain_timeout); }

void App::stop(Duration drain) {
  auto& d = *impl_;
  if (!d.started) return;
  d.started = false;
  if (d.server) d.server->stop(drain);
  d.teardown();
  d.server.reset();
}

std::uint16_t App::port() const { return impl_->server ? impl_->server->port() : 0; }
std::string App::address() const { return impl_->server ? impl_->server->address() : std::string(); }
const config::LoadedConfig& App::config() const { return impl_->cfg; }
const std::vector<std::string>& App::running_modules() const { return impl_->names; }
http::Router& App::router() { return impl_->router_; }
metrics::Registry& App::metrics() { return impl_->registry; }
db::Database& App::db() { return *impl_->database; }

}  // namespace neurod::app

#include "modules/system/module.hpp"

#include "db/database.hpp"

namespace neurod::system {

void Config::describe(config::Schema<Config>& s) {
  s.field("metrics_public", &Config::metrics_public,
          "Serve /metrics without authentication, for a Prometheus scraper on a trusted network");
}

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config), ctx_(ctx) {
  auto& r = ctx.router();
  const http::RouteOptions cheap{.public_route = true, .body = http::BodyKind::none, .exec = http::Exec::io};

  auto ping_opts = cheap;
  ping_opts.summary = "Liveness: answers while the process serves HTTP";
  // Answers that never change are rendered once: these two are what load balancers and
  // monitors poll.
  static const std::string pong = nlohmann::json{{"pong", true}}.dump();
  r.get(
      "/api/v1/ping", [](http::Request&) { return http::Response::text(pong, 200, "application/json"); }, ping_opts);

  auto version_opts = cheap;
  version_opts.summary = "The daemon's version";
  static const std::string version = nlohmann::json{{"name", "neurod"}, {"version", NEUROD_VERSION}}.dump();
  r.get(
      "/api/v1/version", [](http::Request&) { return http::Response::text(version, 200, "application/json"); },
      version_opts);

  http::RouteOptions health_opts{.public_route = true,
                                 .body = http::BodyKind::none,
                                 .summary = "Health of every module; 503 when any is unhealthy"};
  r.get(
      "/api/v1/health",
      [this](http::Request&) {
        bool healthy = true;
        auto report = health_report(healthy);
        return http::Response::json(report, healthy ? 200 : 503);
      },
      health_opts);

  http::RouteOptions config_opts{.public_route = true,
                                 .body = http::BodyKind::none,
                                 .summary = "Public cluster information: name, version, modules, presets"};
  r.get(
      "/api/v1/config",
      [this](http::Request& req) {
        const auto& g = ctx_.global();
        nlohmann::json out{
            {"cluster_name", g.cluster_name},
            {"version", NEUROD_VERSION},
            {"roles", g.roles},
            {"modules", ctx_.enabled_modules()},
            {"authorized", req.principal.authenticated()},
        };
        if (req.principal.authenticated()) {
          auto presets = nlohmann::json::array();
          for (const auto& p : g.presets)
            presets.push_back({{"name", p.name},
                               {"cpu", p.cpu},
                               {"memory", p.memory.bytes},
                               {"memory_mb", p.memory.bytes >> 20},
                               {"gpu", p.gpu},
                               {"gpu_model", p.gpu_model.empty() ? nlohmann::json() : nlohmann::json(p.gpu_model)},
                               {"shm", p.shm.bytes},
                               {"credits_per_hour", p.credits_per_hour}});
          out["resource_presets"] = presets;
        }
        for (const auto& c : contributors_) c(req, out);
        return http::Response::json(out);
      },
      config_opts);

  http::RouteOptions metrics_opts{.public_route = config_.metrics_public,
                                  .body = http::BodyKind::none,
                                  .summary = "Prometheus metrics (text format 0.0.4)"};
  r.get(
      "/metrics",
      [this](http::Request&) {
        return http::Response::text(ctx_.metrics().render(), 200, "text/plain; version=0.0.4; charset=utf-8");
      },
      metrics_opts);
}

app::Health Module::health() {
  app::Health h;
  auto start = std::chrono::steady_clock::now();
  bool ok = false;
  try {
    ok = ctx_.db().ping();
  } catch (const std::exception& e) {
    h.message = std::string("database: ") + e.what();
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  h.healthy = ok;
  if (ok)
    h.message = "ok";
  else if (h.message == "ok")
    h.message = "database: ping failed";
  auto stats = ctx_.db().stats();
  h.details = {{"database",
                {{"dialect", db::to_string(ctx_.db().dialect())},
                 {"ping_ms", ms},
                 {"pool_size", stats.size},
                 {"pool_in_use", stats.in_use}}}};
  return h;
}

nlohmann::json Module::health_report(bool& healthy) {
  nlohmann::json modules = nlohmann::json::object();
  healthy = true;
  for (const auto& name : ctx_.enabled_modules()) {
    auto* m = ctx_.find(name);
    if (!m) continue;
    app::Health h;
    try {
      h = m->health();
    } catch (const std::exception& e) {
      h.healthy = false;
      h.message = e.what();
    }
    healthy = healthy && h.healthy;
    modules[name] = {{"healthy", h.healthy}, {"message", h.message}, {"details", h.details}};
  }
  return {{"status", healthy ? "ok" : "unhealthy"}, {"version", NEUROD_VERSION}, {"modules", modules}};
}

}  // namespace neurod::system

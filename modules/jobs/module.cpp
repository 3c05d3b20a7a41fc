#include "modules/jobs/module.hpp"

#include "db/database.hpp"
#include "modules/auth/module.hpp"
#include "modules/executor/module.hpp"
#include "modules/secrets/module.hpp"
#include "modules/storage/module.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace neurod::jobs {

namespace {

// "host:port" of this neurod as a container engine on this machine reaches it, from the
// server's URL: a wildcard listen address becomes loopback.
std::string engine_reachable_host(const std::string& url) {
  std::string_view v = url;
  if (auto p = v.find("://"); p != std::string_view::npos) v.remove_prefix(p + 3);
  std::string host(v);
  if (host.starts_with("0.0.0.0:")) return "127.0.0.1" + host.substr(7);
  if (host.starts_with("[::]:")) return "[::1]" + host.substr(4);
  return host;
}

}  // namespace

void Config::describe(config::Schema<Config>& s) {
  s.field("schedule_timeout", &Config::schedule_timeout,
          "How long a job may wait for resources or quota before it fails (a job's own schedule_timeout wins).")
      .min(1000);
  s.field("default_life_span", &Config::default_life_span,
          "Jobs submitted without a life span are cancelled (LifeSpanEnded) after running this long; 0: never.");
  s.field("restart_backoff", &Config::restart_backoff,
          "Wait before the first restart of a job with a restart policy; doubles on each restart.")
      .min(1);
  s.field("restart_backoff_max", &Config::restart_backoff_max, "The longest wait between restarts.").min(1);
  s.field("metering_interval", &Config::metering_interval,
          "How often running jobs' CPU/GPU-hours are charged to quotas (and exhausted quotas enforced).")
      .min(1000);
  s.field("life_span_warning", &Config::life_span_warning,
          "A running job whose life span ends within this long gets one `job.life_span_ending` event (the\n"
          "notifications module tells its owner); 0: no warning.");
  s.field("watch_keepalive", &Config::watch_keepalive,
          "How often an idle job-list stream (GET /api/v1/jobs?watch=true) gets a `: keepalive` line, so that\n"
          "proxies keep it open and clients notice a dead connection.")
      .min(100);
  s.field("watch_max_backlog", &Config::watch_max_backlog,
          "A job-list stream whose client has more than this many bytes of events unread is cut off (the client\n"
          "reconnects and gets a fresh snapshot).")
      .min(1024);
  s.field("image_registry", &Config::image_registry,
          "Where image:NAME:TAG points: empty for this neurod's own registry (the registry module; jobs pull\n"
          "with a short-lived token of their owner), host:port for another registry (jobs pull\n"
          "host:port/PROJECT/NAME:TAG with the executor's registry credentials), or `local` for the\n"
          "container engine's local images (NAME:TAG). Without the registry module, empty means local.");
}

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config) {
  auto& authm = ctx.get<auth::Module>();
  ExecutorView view;
  if (auto* base = ctx.find(executor::Module::kName)) {
    auto& ex = dynamic_cast<executor::Module&>(*base);
    view.runner = &ex.runner();
    view.logs = &ex.logs();
    view.capacity = ex.capacity();
    view.stop_grace = ex.stop_grace();
  }
  SchedulerOptions so;
  so.cluster = ctx.global().cluster_name;
  so.image_registry = config.image_registry;
  so.restart_backoff_min = config.restart_backoff;
  so.restart_backoff_max = config.restart_backoff_max;
  so.metering_interval = config.metering_interval;
  so.life_span_warning = config.life_span_warning;
  // Volumes: through the storage and secrets modules when they run here (both are optional).
  if (auto* base = ctx.find(storage::Module::kName)) {
    auto* storage = &dynamic_cast<storage::Module&>(*base);
    so.storage_mount = [storage](std::string_view uri, bool read_only) {
      return storage->resolve_mount(uri, read_only);
    };
  }
  if (auto* base = ctx.find(secrets::Module::kName)) {
    auto* secrets = &dynamic_cast<secrets::Module&>(*base);
    so.secret_value = [secrets](std::string_view uri) { return secrets->value(uri); };
  }
  // image:NAME:TAG from this neurod's registry: pulled as the job's owner, read-only, with a
  // token that lives about as long as a pull may take.
  const auto& mods = ctx.enabled_modules();
  if (config.image_registry.empty() && std::find(mods.begin(), mods.end(), "registry") != mods.end()) {
    auto* c = &ctx;
    so.local_registry = [c] { return engine_reachable_host(c->address()); };
    auto* a = &authm;
    so.pull_auth = [a, c](const std::string& owner, const std::string& repository) {
      http::Principal who;
      who.name = owner;
      who.kind = "user";
      who.credential = "job-pull";
      auto token = a->issue_scoped_token(who, {"repository:" + repository + ":pull"}, std::chrono::minutes(30));
      return executor::RegistryAuth{engine_reachable_host(c->address()), owner, token.token};
    };
  }
  so.metrics = &ctx.metrics();
  scheduler_ = std::make_unique<Scheduler>(ctx.db(), &authm.quotas(), ctx.events(), view, so);

  ServiceOptions opts;
  opts.cluster = ctx.global().cluster_name;
  opts.presets = ctx.global().presets;
  opts.limits.default_schedule_timeout = config.schedule_timeout;
  if (config.default_life_span.count() > 0)
    opts.limits.default_max_run_time_minutes =
        static_cast<int>(std::max<std::int64_t>(1, (config.default_life_span.count() + 59999) / 60000));
  else
    opts.limits.default_max_run_time_minutes.reset();
  service_ = std::make_unique<Service>(ctx.db(), authm.authorizer(), &authm.quotas(), *scheduler_, ctx.events(), opts);

  if (auto* base = ctx.find(executor::Module::kName))
    dynamic_cast<executor::Module&>(*base).set_listener(
        [this](const executor::Event& e) { scheduler_->on_executor_event(e); });

  auto& m = ctx.metrics();
  m.callback_gauge("neurod_jobs", "Jobs by status: pending, running, suspended, and every finished job ever.", [this] {
    auto s = scheduler_->stats();
    metrics::Registry::Samples out{{{{"status", "pending"}}, static_cast<double>(s.pending)},
                                   {{{"status", "running"}}, static_cast<double>(s.running)},
                                   {{{"status", "suspended"}}, 0.0}};
    for (const char* st : {"succeeded", "failed", "cancelled"}) {
      auto it = s.finished.find(st);
      out.push_back({{{"status", st}}, it == s.finished.end() ? 0.0 : static_cast<double>(it->second)});
    }
    return out;
  });
  m.callback_gauge("neurod_scheduler_queue_length", "Pending jobs waiting to be admitted (not at the executor yet).",
                   [this] { return metrics::Registry::Samples{{{}, static_cast<double>(scheduler_->stats().waiting)}}; });
  m.callback_gauge("neurod_jobs_cpu_allocated", "CPU cores held by jobs at the executor.",
                   [this] { return metrics::Registry::Samples{{{}, scheduler_->stats().cpu_used}}; });
  m.callback_gauge("neurod_jobs_memory_allocated_bytes", "Memory held by jobs at the executor.", [this] {
    return metrics::Registry::Samples{{{}, static_cast<double>(scheduler_->stats().memory_used)}};
  });
  WatchOptions wo;
  wo.keepalive = config.watch_keepalive;
  wo.max_backlog = static_cast<std::size_t>(config.watch_max_backlog.bytes);
  watchers_ = std::make_shared<Watchers>(*service_, ctx.events(), wo);
  watchers_->start();
  service_->set_change_listener([w = watchers_.get()](const std::string& id) { w->changed(id); });
  ctx.add_task("jobs-watch", [w = watchers_](std::stop_token stop) { w->run(stop); });
  m.callback_gauge("neurod_jobs_watchers", "Open job-list streams (GET /api/v1/jobs?watch=true).", [this] {
    return metrics::Registry::Samples{{{}, static_cast<double>(watchers_->count())}};
  });
  m.callback_counter("neurod_jobs_watchers_dropped_total",
                     "Job-list streams cut off because their client fell too far behind.", [this] {
                       return metrics::Registry::Samples{{{}, static_cast<double>(watchers_->dropped())}};
                     });
  add_routes(ctx.router());
}

Module::~Module() {
  watchers_->stop();
  scheduler_->stop();
}

void Module::on_all_loaded() { scheduler_->start(); }

void Module::on_stopping() {
  watchers_->stop();
  scheduler_->stop();
}

app::Health Module::health() {
  app::Health h;
  auto s = scheduler_->stats();
  h.details = {{"executor", scheduler_->has_executor() ? nlohmann::json(scheduler_->executor_kind()) : nlohmann::json()},
               {"pending", s.pending},
               {"running", s.running},
               {"cpu_used", s.cpu_used},
               {"memory_used", s.memory_used},
               {"gpus_used", s.gpus_used}};
  h.message = scheduler_->has_executor() ? "executor: " + scheduler_->executor_kind()
                                         : "no executor in this process: jobs wait";
  return h;
}

}  // namespace neurod::jobs

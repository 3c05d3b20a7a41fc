// Telemetry routes (README.md "Telemetry"): the /top WebSocket and the history.
#include "core/errors.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "modules/executor/module.hpp"
#include "modules/jobs/module.hpp"
#include "modules/monitoring/module.hpp"
#include "modules/monitoring/telemetry.hpp"

#include <fmt/format.h>

namespace neurod::monitoring {

namespace {

using nlohmann::json;

constexpr std::string_view kTopProtocol = "top.apolo.us";
constexpr std::int64_t kMaxPoints = 10000;  // as Telemetry::history allows

// "2026-12-06T10:00:00Z", or a duration meaning that long ago ("10m").
std::int64_t time_param(const std::string& name, const std::string& value) {
  if (auto t = jobs::parse_time_ms(value)) return *t;
  if (auto d = parse_duration(value))
    return now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  throw Error(errc::bad_request,
              fmt::format("{}: '{}' is neither a time (2026-12-06T10:00:00Z) nor a duration (1h30m)", name, value));
}

// "15s", "1m", or a number of seconds.
std::int64_t step_param(const std::string& value) {
  std::int64_t out = 0;
  if (auto d = parse_duration(value)) {
    out = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  } else {
    try {
      std::size_t used = 0;
      double seconds = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
      out = static_cast<std::int64_t>(seconds * 1000);
    } catch (const std::exception&) {
      out = -1;
    }
  }
  if (out <= 0) throw Error(errc::bad_request, "step: '" + value + "' is not a positive duration (15s, 1m) or seconds");
  return out;
}

bool offered(const http::Request& req, std::string_view protocol) {
  for (auto h : req.headers.get_all("Sec-WebSocket-Protocol")) {
    std::string_view v = h;
    while (!v.empty()) {
      auto comma = v.find(',');
      auto item = v.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item == protocol) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

}  // namespace

void Module::start_telemetry() {
  TelemetryOptions o;
  o.sample_interval = config_.sample_interval;
  o.history_step = config_.history_step;
  o.history_retention = config_.history_retention;
  o.recent_window = config_.recent_window;
  executor::Runner* runner = nullptr;
  if (executor_) {
    runner = &executor_->runner();
    o.nvidia_smi = executor_->nvidia_smi();
  }
  auto* scheduler = &ctx_.get<jobs::Module>().scheduler();
  auto running = [scheduler] {
    std::vector<RunningJob> out;
    for (auto& j : scheduler->running())
      out.push_back(
          {std::move(j.id), std::move(j.name), std::move(j.owner), std::move(j.project), std::move(j.gpu_ids)});
    return out;
  };
  telemetry_ = std::make_unique<Telemetry>(ctx_.db(), runner, running, o, ctx_.metrics());
  // A finished job's /top watchers are closed at once.
  auto* t = telemetry_.get();
  telemetry_sub_ = ctx_.events().subscribe("job.status", [t](const events::Event& e) {
    auto status = e.data.value("status", std::string());
    if (status == "succeeded" || status == "failed" || status == "cancelled")
      t->job_finished(e.data.value("job_id", std::string()));
  });
  ctx_.add_task("monitoring-telemetry", [t](std::stop_token stop) { t->run(stop); });
}

void Module::add_telemetry_routes(http::Router& r) {
  r.websocket("/api/v1/jobs/{job}/top",
              [this](http::Request& req) {
                auto job = jobs_.get(req.principal, req.param("job"));
                req.resource = job.uri();
                runner();  // 503 no_executor when nothing here samples jobs
                auto watcher = telemetry_->watch(job.id);
                // Again, now that the watcher is registered: a job that finished in between is
                // not missed (its event may have come before the registration).
                auto now = jobs_.get(req.principal, job.id);
                if (jobs::is_finished(now.current().status)) watcher->finish();
                http::WebSocketHandler h;
                if (offered(req, kTopProtocol)) h.subprotocol = std::string(kTopProtocol);
                h.on_open = [watcher](std::shared_ptr<http::WebSocket> ws) { watcher->open(std::move(ws)); };
                h.on_message = [watcher](std::shared_ptr<http::WebSocket>, std::string, bool) {};  // nothing to say
                h.on_close = [watcher] {};
                return h;
              },
              {.body = http::BodyKind::none,
               .summary = "A running job's CPU, memory and GPU use, one message a second (WebSocket top.apolo.us)"});

  r.get("/api/v1/jobs/{job}/telemetry",
        [this](http::Request& req) {
          auto job = jobs_.get(req.principal, req.param("job"));
          req.resource = job.uri();
          auto until = now_ms();
          if (auto u = req.query_param("until")) until = time_param("until", *u);
          std::int64_t since = job.created_ms;
          if (auto s = req.query_param("since")) since = time_param("since", *s);
          auto step = std::chrono::duration_cast<std::chrono::milliseconds>(config_.history_step).count();
          if (auto s = req.query_param("step")) {
            step = step_param(*s);
          } else if (until > since) {
            // No step asked for: the stored one, or coarser for a long range (a job that ran
            // for weeks), so that the answer stays within its size limit.
            step = std::max<std::int64_t>(step, (until - since + kMaxPoints - 1) / kMaxPoints);
          }
          auto out = telemetry_->history(job.id, since, until, step);
          out["status"] = std::string(jobs::to_string(job.current().status));
          return http::Response::json(out);
        },
        {.body = http::BodyKind::none, .summary = "A job's telemetry history (since, until, step)"});
}

}  // namespace neurod::monitoring

#include "modules/monitoring/module.hpp"

#include "core/errors.hpp"
#include "modules/executor/module.hpp"
#include "modules/jobs/module.hpp"
#include "modules/monitoring/telemetry.hpp"

namespace neurod::monitoring {

void Config::describe(config::Schema<Config>& s) {
  // Telemetry
  s.field("sample_interval", &Config::sample_interval,
          "How often running jobs' CPU, memory and GPUs are sampled (the /top message rate).")
      .min(100);
  s.field("history_step", &Config::history_step,
          "Telemetry history keeps one row per job per step (average and peak of the samples in it).")
      .min(1000);
  s.field("history_retention", &Config::history_retention, "Telemetry history older than this is deleted.").min(1000);
  s.field("recent_window", &Config::recent_window,
          "How much of each running job's telemetry is kept in memory at full rate (telemetry with a step\n"
          "below history_step is answered from it).")
      .min(1000);
  // Job HTTP proxy
  s.field("http_ticket_ttl", &Config::http_ticket_ttl,
          "How long a job HTTP link with a ticket (/api/v1/jobs/JOB/http/~t.TICKET/, what a signed-in browser\n"
          "is redirected to) works. Whoever holds the link may use it until then, but only while the\n"
          "ticket's user may still read the job.")
      .min(1000);
  s.field("http_ticket_key_file", &Config::http_ticket_key_file,
          "The 32-byte key that signs those tickets; made (0600) on first start. Empty:\n"
          "<data_dir>/monitoring/http-ticket.key. Control planes behind one address must share this file;\n"
          "replacing it ends every ticket (browsers get a new one from the console's link).");
}

Module::Module(const Config& config, app::ModuleContext& ctx)
    : config_(config), ctx_(ctx), jobs_(ctx.get<jobs::Module>().service()) {
  if (auto* base = ctx.find(executor::Module::kName)) executor_ = &dynamic_cast<executor::Module&>(*base);
  auto& r = ctx.router();
  add_log_routes(r);
  add_telemetry_routes(r);
  add_session_routes(r);
  start_telemetry();
}

Module::~Module() {
  if (telemetry_sub_) ctx_.events().unsubscribe(telemetry_sub_);
}

void Module::on_all_loaded() {}

void Module::on_stopping() {}

namespace {
Error no_executor() {
  return Error(errc::unavailable, "no executor runs in this process, so this job cannot be reached from here")
      .with_code("no_executor");
}
}  // namespace

executor::Runner& Module::runner() const {
  if (!executor_) throw no_executor();
  return executor_->runner();
}

executor::LogStore& Module::logs() const {
  if (!executor_) throw no_executor();
  return executor_->logs();
}

}  // namespace neurod::monitoring

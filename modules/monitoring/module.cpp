#include "modules/monitoring/module.hpp"

#include "core/errors.hpp"
#include "modules/executor/module.hpp"
#include "modules/jobs/module.hpp"

namespace neurod::monitoring {

void Config::describe(config::Schema<Config>&) {}

Module::Module(const Config& config, app::ModuleContext& ctx)
    : config_(config), ctx_(ctx), jobs_(ctx.get<jobs::Module>().service()) {
  if (auto* base = ctx.find(executor::Module::kName)) executor_ = &dynamic_cast<executor::Module&>(*base);
  auto& r = ctx.router();
  add_log_routes(r);
  add_telemetry_routes(r);
  add_session_routes(r);
}

Module::~Module() = default;

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

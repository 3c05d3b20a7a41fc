#include "modules/notifications/module.hpp"
#include "modules/notifications/sealer.hpp"

#include "core/log.hpp"
#include "core/times.hpp"
#include "modules/auth/module.hpp"
#include "modules/jobs/module.hpp"

#include <fmt/format.h>

namespace neurod::notifications {

namespace {

std::optional<std::string> known_events(const std::vector<std::string>& v) {
  for (const auto& e : v)
    if (!is_event_kind(e)) return fmt::format("unknown event '{}'; one of: job.status, job.cannot_start, "
                                              "quota.threshold, job.life_span_ending", e);
  return std::nullopt;
}

std::optional<std::string> known_statuses(const std::vector<std::string>& v) {
  for (const auto& e : v)
    if (std::find(job_statuses().begin(), job_statuses().end(), e) == job_statuses().end())
      return fmt::format("unknown status '{}'; one of: pending, running, suspended, succeeded, failed, cancelled", e);
  return std::nullopt;
}

}  // namespace

void EmailConfig::describe(config::Schema<EmailConfig>& s) {
  s.field("url", &EmailConfig::url,
          "The SMTP server: smtp://host:port (plain, or STARTTLS with starttls: true) or smtps://host:port\n"
          "(TLS from the start). Empty: email subscriptions are refused and nothing is mailed.")
      .check([](const std::string& u) -> std::optional<std::string> {
        if (u.empty() || u.starts_with("smtp://") || u.starts_with("smtps://")) return std::nullopt;
        return "must start with smtp:// or smtps://";
      });
  s.field("from", &EmailConfig::from, "The sender address of every notification email.")
      .check([](const std::string& a) -> std::optional<std::string> {
        try {
          validate_email("from", a);
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
        return std::nullopt;
      });
  s.field("username", &EmailConfig::username, "SMTP AUTH user name; empty: no authentication.");
  s.field("password", &EmailConfig::password, "SMTP AUTH password: ${ENV_VAR} or file:/path keeps it out of this file.")
      .secret();
  s.field("starttls", &EmailConfig::starttls, "Require STARTTLS on an smtp:// server (fail rather than send in clear).");
}

void DefaultsConfig::describe(config::Schema<DefaultsConfig>& s) {
  s.field("email_owner", &DefaultsConfig::email_owner,
          "Email every user with an address on record about their own jobs (the events and statuses below)\n"
          "without a subscription; each user may opt out (neuro notify defaults off).");
  s.field("events", &DefaultsConfig::events, "The events of the default notifications.").check(known_events);
  s.field("statuses", &DefaultsConfig::statuses, "For job.status: the statuses that are told.").check(known_statuses);
}

void Config::describe(config::Schema<Config>& s) {
  s.field("retry_initial", &Config::retry_initial,
          "Wait after a failed delivery before the next attempt; doubles on each failure.")
      .min(1);
  s.field("retry_max", &Config::retry_max, "The longest wait between two attempts of a delivery.").min(1);
  s.field("max_attempts", &Config::max_attempts,
          "Attempts of a delivery before it is given up (status dead, kept in the delivery log).")
      .min(1)
      .max(100);
  s.field("send_timeout", &Config::send_timeout, "The longest one attempt (HTTP POST or SMTP session) may take.")
      .min(100);
  s.field("poll_interval", &Config::poll_interval,
          "How often the delivery worker looks for due retries (events wake it at once).")
      .min(10);
  s.field("max_subscriptions", &Config::max_subscriptions, "Subscriptions one user may have.").min(1).max(10000);
  s.field("log_retention", &Config::log_retention,
          "How long delivered and given-up deliveries stay in the delivery log (pending ones stay until done).")
      .min(60000);
  s.field("seal_key_file", &Config::seal_key_file,
          "The 32-byte key that encrypts webhook secrets and targets (Slack URLs are credentials) in the\n"
          "database; made (0600) on first start. Empty: <data_dir>/notifications/seal.key. Control planes\n"
          "sharing one database must share this file; losing it makes stored subscriptions unusable.");
  s.field("email", &Config::email, "The SMTP server that sends email notifications.");
  s.field("defaults", &Config::defaults, "Notifications every user gets without subscribing.");
}

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config), bus_(ctx.events()) {
  auto& authm = ctx.get<auth::Module>();
  init_curl();
  ServiceOptions o;
  o.retry_initial = config.retry_initial;
  o.retry_max = config.retry_max;
  o.max_attempts = config.max_attempts;
  o.send_timeout = config.send_timeout;
  o.poll_interval = config.poll_interval;
  o.max_subscriptions = config.max_subscriptions;
  o.log_retention = config.log_retention;
  o.smtp.url = config.email.url;
  o.smtp.from = config.email.from;
  o.smtp.username = config.email.username;
  o.smtp.password = config.email.password;
  o.smtp.starttls = config.email.starttls;
  o.default_email_owner = config.defaults.email_owner;
  o.default_events = config.defaults.events;
  o.default_statuses = config.defaults.statuses;
  o.sealer = std::make_shared<Sealer>(config.seal_key_file.empty() ? ctx.module_dir(kName) / "seal.key"
                                                                    : std::filesystem::path(config.seal_key_file));
  service_ = std::make_unique<Service>(ctx.db(), authm.authorizer(), o);

  // The jobs' status history is the outbox of job.status: read from there, so nothing
  // is missed while neurod is down or before this handler ran.
  if (auto* base = ctx.find(jobs::Module::kName)) {
    auto* jobs = &dynamic_cast<jobs::Module&>(*base).service();
    std::string cluster = ctx.global().cluster_name;
    OutboxSource src;
    src.after = [jobs, cluster](std::int64_t after, std::size_t limit) {
      std::vector<OutboxRow> out;
      for (auto& c : jobs->status_changes_after(after, limit)) {
        const auto& it = c.item;
        OutboxRow r;
        r.seq = c.seq;
        r.time_ms = it.time_ms;
        r.event.id = fmt::format("job.status:{}", c.seq);
        r.event.topic = std::string(kJobStatus);
        r.event.data = {{"job_id", c.job_id},
                        {"name", c.name},
                        {"owner", c.owner},
                        {"project", c.project},
                        {"cluster", cluster},
                        {"status", std::string(jobs::to_string(it.status))},
                        {"reason", it.reason},
                        {"description", it.description},
                        {"exit_code", it.exit_code ? nlohmann::json(*it.exit_code) : nlohmann::json()},
                        {"time", format_time(it.time_ms)}};
        out.push_back(std::move(r));
      }
      return out;
    };
    src.latest = [jobs] { return jobs->latest_status_seq(); };
    service_->set_outbox(std::move(src));
  }
  for (const char* topic : {"job.", "quota."})
    subscriptions_.push_back(bus_.subscribe(topic, [svc = service_.get()](const events::Event& e) { svc->on_event(e); }));
  ctx.add_task("notifications-delivery", [svc = service_.get()](std::stop_token st) { svc->run(st); });
  add_routes(ctx.router());
  if (config.defaults.email_owner && config.email.url.empty())
    warn("notifications: defaults.email_owner is on but no SMTP server is set (modules.notifications.email.url): "
         "those emails will fail");
}

Module::~Module() {
  for (auto id : subscriptions_) bus_.unsubscribe(id);
}

void Module::on_stopping() {
  for (auto id : subscriptions_) bus_.unsubscribe(id);
  subscriptions_.clear();
}

app::Health Module::health() {
  app::Health h;
  h.details = {{"email", config_.email.url.empty() ? "off" : "on"}};
  return h;
}

}  // namespace neurod::notifications

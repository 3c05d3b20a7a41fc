// The `notifications` module (README.md here): tells people about their jobs and quotas
// by email, Slack and signed webhooks, through a durable outbox of deliveries with
// retries; subscriptions under /api/v1/notifications.
#pragma once

#include "app/module.hpp"
#include "modules/notifications/service.hpp"

#include <memory>

namespace neurod::notifications {

struct EmailConfig {
  std::string url;  // smtp://host:port or smtps://host:port; empty: no email
  std::string from = "neurod@localhost";
  std::string username;
  std::string password;  // ${ENV} or file:/path
  bool starttls = false;
  static void describe(config::Schema<EmailConfig>& s);
};

struct DefaultsConfig {
  bool email_owner = false;
  std::vector<std::string> events{"job.status"};
  std::vector<std::string> statuses{"succeeded", "failed", "cancelled"};
  static void describe(config::Schema<DefaultsConfig>& s);
};

struct Config {
  Duration retry_initial = std::chrono::seconds(10);
  Duration retry_max = std::chrono::hours(1);
  int max_attempts = 8;
  Duration send_timeout = std::chrono::seconds(10);
  Duration poll_interval = std::chrono::seconds(1);
  int max_subscriptions = 100;
  Duration log_retention = std::chrono::hours(24 * 30);
  std::string seal_key_file;  // empty: <data_dir>/notifications/seal.key
  EmailConfig email;
  DefaultsConfig defaults;
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "notifications";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  static constexpr std::array<std::string_view, 1> kAfter{"jobs"};
  using Config = notifications::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_stopping() override;
  app::Health health() override;

  Service& service() { return *service_; }

 private:
  void add_routes(http::Router& r);  // api.cpp

  Config config_;
  events::Bus& bus_;
  std::unique_ptr<Service> service_;
  std::vector<std::size_t> subscriptions_;
};

}  // namespace neurod::notifications

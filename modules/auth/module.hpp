// The `auth` module (DESIGN §7; README.md here): users, tokens, projects, roles, ACLs,
// quotas and the audit log. Other modules reach it through authorizer() and quotas().
#pragma once

#include "app/module.hpp"
#include "modules/auth/audit.hpp"
#include "modules/auth/authorizer.hpp"
#include "modules/auth/quotas.hpp"
#include "modules/auth/scoped_token.hpp"
#include "modules/auth/service.hpp"
#include "modules/auth/throttle.hpp"

#include <memory>

namespace neurod::auth {

struct Config {
  std::string bootstrap_admin = "admin";
  Duration session_ttl = std::chrono::hours(24 * 7);
  Duration default_token_ttl = std::chrono::hours(24 * 90);
  Duration max_token_ttl = std::chrono::hours(24 * 365);
  int password_min_length = 10;
  config::Size password_hash_memory{64ull << 20};
  int password_hash_iterations = 3;
  int login_max_failures_per_user = 5;
  int login_max_failures_per_address = 20;
  Duration login_window = std::chrono::minutes(15);
  Duration sync_interval = std::chrono::seconds(1);
  Duration audit_retention = std::chrono::hours(24 * 90);
  bool users_create_projects = true;
  static void describe(config::Schema<Config>& s);
};

ServiceOptions service_options(const Config& c, const std::string& cluster);

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "auth";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 1> kDepends{"system"};
  using Config = auth::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_all_loaded() override;
  void on_stopping() override;
  app::Health health() override;

  // `neurod admin …` (offline.cpp).
  static std::vector<app::OfflineCommand> offline_commands();

  Authorizer& authorizer() { return *authz_; }
  Quotas& quotas() { return *quotas_; }
  Service& service() { return *service_; }

  // A short-lived token for `who` limited to `scopes` (e.g. "repository:alice/train:pull");
  // accepted only under /v2/ (the registry), never beyond the principal's ACL. The jobs
  // executor pulls a job's image as its owner with one. ttl is capped at one hour.
  // not_after_ms caps the expiry (an exchanged token never outlives the one it came from).
  ScopedToken issue_scoped_token(const http::Principal& who, std::vector<std::string> scopes, Duration ttl,
                                 std::optional<std::int64_t> not_after_ms = std::nullopt) const;
  // The expiry of the scoped token a request authenticated with (Bearer, or Basic's
  // password); nullopt when it presented none or an invalid one.
  std::optional<std::int64_t> scoped_token_expiry(const http::Request& req) const;
  const ScopedTokens& scoped_tokens() const { return *scoped_; }

  // The console's CSRF token for a session token: base64url(HMAC-SHA256(csrf.key, token)).
  // Derived, never stored: the same session always gets the same one, across restarts.
  std::string csrf_token(std::string_view session_token) const;
  // The session token of a request that authenticates with the neurod_session cookie
  // (a Cookie header and no Authorization header: that is what authenticate() uses);
  // nullopt for every other kind of credential.
  static std::optional<std::string> cookie_session(const http::Request& req);

 private:
  void add_routes(http::Router& r);                  // api.cpp
  void add_quota_and_audit_routes(http::Router& r);  // api_quota.cpp
  std::optional<http::Principal> authenticate(const http::Request& req) const;
  void observe(const http::Request& req, const http::Route* route, int status);

  Config config_;
  app::ModuleContext& ctx_;
  bool secure_cookie_ = false;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Quotas> quotas_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<LoginThrottle> throttle_;
  std::unique_ptr<ScopedTokens> scoped_;
  std::string csrf_key_;
};

}  // namespace neurod::auth

#include "modules/auth/module.hpp"

#include "core/log.hpp"
#include "core/secret_key.hpp"
#include "db/database.hpp"
#include "modules/auth/crypto.hpp"
#include "modules/auth/repo.hpp"
#include "modules/system/module.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace neurod::auth {

void Config::describe(config::Schema<Config>& s) {
  s.field("bootstrap_admin", &Config::bootstrap_admin,
          "The first administrator, created on an empty database; its token goes to {data_dir}/auth/admin.token.")
      .non_empty()
      .check([](const std::string& v) -> std::optional<std::string> {
        try {
          Service::validate_user_name(v);
        } catch (const Error& e) {
          return std::string(e.what());
        }
        return std::nullopt;
      });
  s.field("session_ttl", &Config::session_ttl, "How long a login (password) session lasts.").min(60000);
  s.field("default_token_ttl", &Config::default_token_ttl,
          "Lifetime of API and service-account tokens made without expires_in.")
      .min(60000);
  s.field("max_token_ttl", &Config::max_token_ttl, "The longest lifetime a token may be given.").min(60000);
  s.field("password_min_length", &Config::password_min_length, "Shortest password accepted.").min(8).max(128);
  s.field("password_hash_memory", &Config::password_hash_memory,
          "Memory argon2id uses per password hash (more is slower to brute-force; every login costs it).")
      .min(8192);
  s.field("password_hash_iterations", &Config::password_hash_iterations, "argon2id passes over that memory.")
      .min(1)
      .max(20);
  s.field("login_max_failures_per_user", &Config::login_max_failures_per_user,
          "Failed logins allowed per user within login_window before logins for that user are refused (429).")
      .min(1);
  s.field("login_max_failures_per_address", &Config::login_max_failures_per_address,
          "Failed logins allowed per client address within login_window.")
      .min(1);
  s.field("login_window", &Config::login_window, "The sliding window of the login limits.").min(1000);
  s.field("sync_interval", &Config::sync_interval,
          "How often to look for changes made by other processes sharing the database (neurod admin, other "
          "control-plane replicas); changes made through this process apply at once.")
      .min(100);
  s.field("audit_retention", &Config::audit_retention, "How long audit entries are kept.").min(3600000);
  s.field("users_create_projects", &Config::users_create_projects,
          "Whether every user may create projects; false: only administrators.");
}

ServiceOptions service_options(const Config& c, const std::string& cluster) {
  ServiceOptions o;
  o.cluster = cluster;
  o.password.memory_bytes = c.password_hash_memory.bytes;
  o.password.iterations = static_cast<std::uint64_t>(c.password_hash_iterations);
  o.password_min_length = static_cast<std::size_t>(c.password_min_length);
  o.session_ttl = c.session_ttl;
  o.default_token_ttl = c.default_token_ttl;
  o.max_token_ttl = c.max_token_ttl;
  o.users_create_projects = c.users_create_projects;
  return o;
}

namespace {

// The first admin's token: written once, readable by the service user only.
void write_token_file(const std::filesystem::path& path, const std::string& token) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(errc::internal, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error(errc::internal, "cannot write " + path.string() + ": " + std::strerror(errno));
  }
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out(in.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr, &len,
                        nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

constexpr std::string_view kCookie = "neurod_session";
constexpr std::string_view kWsPrefix = "bearer.neurod-";

// The value of the session cookie in a Cookie header.
std::optional<std::string> session_cookie(std::string_view header) {
  std::string_view rest = header;
  while (!rest.empty()) {
    auto semi = rest.find(';');
    auto part = trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    if (part.size() > kCookie.size() && part.starts_with(kCookie) && part[kCookie.size()] == '=')
      return std::string(part.substr(kCookie.size() + 1));
  }
  return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && iequals_prefix(a, b); }

// "host[:port]" (IPv6 in brackets) as lowercased host and port; the port defaults to
// `default_port`. nullopt when malformed.
std::optional<std::pair<std::string, std::string>> host_port(std::string_view s, std::string_view default_port) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::string_view host, port;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(0, close + 1);
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto colon = s.rfind(':');
    host = s.substr(0, colon);
    if (colon != std::string_view::npos) port = s.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (port.empty()) port = default_port;
  for (char c : port)
    if (c < '0' || c > '9') return std::nullopt;
  std::string h(host);
  for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::pair{h, std::string(port)};
}

// Whether an Origin header ("https://host:port") names the server the request came to:
// its Host header, or X-Forwarded-Host where a reverse proxy rewrote Host. A browser sends
// neither of those on a page's behalf (Host is the address it connects to; scripts cannot
// set X-Forwarded-Host across sites without a CORS preflight neurod never allows, nor on a
// WebSocket upgrade), so a page elsewhere cannot make them match its own origin.
bool same_origin(std::string_view origin, const http::Request& req) {
  origin = trim(origin);
  auto sep = origin.find("://");
  if (sep == std::string_view::npos) return false;  // "null" (sandboxed frames, file:) and garbage
  auto scheme = origin.substr(0, sep);
  std::string_view default_port = iequals(scheme, "http") ? "80" : iequals(scheme, "https") ? "443" : "";
  if (default_port.empty()) return false;
  auto authority = origin.substr(sep + 3);
  if (authority.find_first_of("/?#@") != std::string_view::npos) return false;
  auto from = host_port(authority, default_port);
  if (!from) return false;
  std::vector<std::string_view> targets;
  if (auto h = req.header("Host")) targets.push_back(*h);
  if (auto f = req.header("X-Forwarded-Host")) targets.push_back(f->substr(0, f->find(',')));
  for (auto t : targets)
    if (auto to = host_port(t, default_port); to && *to == *from) return true;
  return false;
}

bool is_websocket_upgrade(const http::Request& req) {
  auto u = req.header("Upgrade");
  return u && iequals(trim(*u), "websocket");
}

// Browser protection for requests that carry the session cookie (modules/auth/README.md
// "The console's cookie"). A page on another site can make the browser send the cookie
// (a form post, a WebSocket) but can neither read the CSRF token nor fake the Origin.
void check_cookie_request(const http::Request& req, std::string_view expected_csrf) {
  using http::Method;
  bool safe = req.method == Method::get || req.method == Method::head || req.method == Method::options;
  bool upgrade = is_websocket_upgrade(req);
  if (safe && !upgrade) return;
  if (auto origin = req.header("Origin"); origin && !same_origin(*origin, req)) {
    auto shown = std::string(origin->substr(0, 200));
    throw Error(errc::forbidden, "the request comes from a page at '" + shown +
                                     "', not from this server: requests with the session cookie are accepted from "
                                     "neurod's own pages only (behind a reverse proxy, pass the original Host or "
                                     "X-Forwarded-Host)")
        .with_code("origin_mismatch");
  }
  if (safe) return;  // a WebSocket upgrade (a GET): browsers always send Origin on those
  auto given = req.header("X-CSRF-Token");
  if (!given || !keys::constant_time_equal(trim(*given), expected_csrf))
    throw Error(errc::forbidden,
                std::string(given ? "the X-CSRF-Token header does not match this session"
                                  : "this request carries the session cookie but no X-CSRF-Token header") +
                    ": send the session's csrf_token (from the login answer, GET /api/v1/auth/whoami or the "
                    "neurod_csrf cookie) as X-CSRF-Token, or authenticate with 'Authorization: Bearer TOKEN'")
        .with_code("csrf_failed");
}

}  // namespace

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config), ctx_(ctx) {
  const auto& g = ctx.global();
  secure_cookie_ = !g.http.tls.cert.empty();
  authz_ = std::make_unique<Authorizer>(g.cluster_name);
  service_ = std::make_unique<Service>(ctx.db(), *authz_, service_options(config_, g.cluster_name));
  quotas_ = std::make_unique<Quotas>(ctx.db());
  quotas_->set_events(&ctx.events());  // quota.threshold for notifications
  audit_ = std::make_unique<AuditLog>(ctx.db());
  throttle_ = std::make_unique<LoginThrottle>(static_cast<std::size_t>(config_.login_max_failures_per_user),
                                              static_cast<std::size_t>(config_.login_max_failures_per_address),
                                              config_.login_window);
  try {
    scoped_ = std::make_unique<ScopedTokens>(ctx.module_dir("auth") / "scoped-token.key");
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("modules.auth: ") + e.what());
  }
  try {
    csrf_key_ = keys::load_or_make(ctx.module_dir("auth") / "csrf.key");
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("modules.auth: ") + e.what());
  }
  service_->load();
  if (auto issued = service_->bootstrap(config_.bootstrap_admin)) {
    auto path = ctx.module_dir("auth") / "admin.token";
    write_token_file(path, issued->token);
    info(
        "created the administrator '{}'; its token is in {} (readable by this user only). Log in with: "
        "neuro login URL --token-stdin < {}",
        config_.bootstrap_admin, path.string(), path.string());
  }

  auto& router = ctx.router();
  router.set_authenticator([this](const http::Request& req) { return authenticate(req); });
  router.add_observer(
      [this](const http::Request& req, const http::Route* route, int status) { observe(req, route, status); });
  add_routes(router);

  ctx.get<system::Module>().add_config_contributor([this](const http::Request& req, nlohmann::json& out) {
    if (!req.principal.authenticated()) return;
    out["user"] = req.principal.name;
    out["admin"] = authz_->is_admin(req.principal);
    auto projects = nlohmann::json::array();
    for (const auto& [p, role] : service_->list_projects(Actor::of(req.principal), false))
      projects.push_back({{"name", p.name}, {"role", role}, {"cluster_name", authz_->cluster()}});
    out["projects"] = projects;
    out["user_roles"] = authz_->held_roles(req.principal.name);
  });

  auto& m = ctx.metrics();
  auto* authz = authz_.get();
  m.callback_gauge("neurod_auth_principals", "Users, service accounts and roles", [authz] {
    std::map<std::string, double> n{{"user", 0}, {"service", 0}, {"role", 0}};
    for (const auto& [name, p] : authz->state()->principals) n[p.kind] += 1;
    std::vector<std::pair<metrics::Labels, double>> out;
    for (const auto& [k, v] : n) out.push_back({{{"kind", k}}, v});
    return out;
  });
  m.callback_gauge("neurod_auth_tokens", "Tokens that authenticate (expired ones until purged)", [authz] {
    return std::vector<std::pair<metrics::Labels, double>>{{{}, double(authz->state()->tokens.size())}};
  });
  auto* audit = audit_.get();
  m.callback_gauge("neurod_auth_audit_queued", "Audit entries waiting to be written", [audit] {
    return std::vector<std::pair<metrics::Labels, double>>{{{}, double(audit->queued())}};
  });
  m.callback_counter("neurod_auth_audit_dropped_total", "Audit entries dropped because the queue was full", [audit] {
    return std::vector<std::pair<metrics::Labels, double>>{{{}, double(audit->dropped())}};
  });

  ctx.add_task("auth-audit", [this](std::stop_token stop) {
    while (!stop.stop_requested()) {
      audit_->wait(std::chrono::milliseconds(200));
      audit_->flush();
    }
  });
  ctx.add_task("auth-sync", [this](std::stop_token stop) {
    auto last_purge = std::chrono::steady_clock::now() - std::chrono::hours(2);
    while (!stop.stop_requested()) {
      std::mutex mu;
      std::unique_lock lock(mu);
      std::condition_variable_any cv;
      cv.wait_for(lock, stop, config_.sync_interval, [] { return false; });
      if (stop.stop_requested()) break;
      try {
        if (service_->sync()) spdlog::debug("auth: reloaded identity data changed by another process");
        if (std::chrono::steady_clock::now() - last_purge > std::chrono::hours(1)) {
          last_purge = std::chrono::steady_clock::now();
          service_->purge_expired_tokens();
          audit_->purge_before(repo::now_ms() - config_.audit_retention.count());
        }
      } catch (const std::exception& e) {
        spdlog::warn("auth: background sync failed: {}", e.what());
      }
    }
  });
}

Module::~Module() = default;

void Module::on_all_loaded() {}

void Module::on_stopping() {
  // Requests have drained and the writer task has stopped: what is queued now is all.
  try {
    audit_->flush();
  } catch (const std::exception& e) {
    spdlog::error("audit log: final flush failed: {}", e.what());
  }
}

app::Health Module::health() {
  app::Health h;
  auto st = authz_->state();
  h.details = {{"version", st->version},
               {"principals", st->principals.size()},
               {"tokens", st->tokens.size()},
               {"grants", st->grants->grant_count()},
               {"audit_queued", audit_->queued()}};
  if (audit_->queued() > 10000) {
    h.healthy = false;
    h.message = "the audit log is not being written (" + std::to_string(audit_->queued()) + " entries queued)";
  }
  return h;
}

// Runs on the I/O thread for every request: parsing and one hash-map lookup in the
// snapshot, never the database.
std::optional<http::Principal> Module::authenticate(const http::Request& req) const {
  std::optional<std::string> token;
  std::string csrf;  // set when the token came from the session cookie
  if (auto h = req.header("Authorization")) {
    auto v = trim(*h);
    if (iequals_prefix(v, "Bearer ")) {
      token = std::string(trim(v.substr(7)));
    } else if (iequals_prefix(v, "Basic ")) {
      auto decoded = base64_decode(trim(v.substr(6)));
      auto colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos)
        throw Error(errc::unauthenticated, "malformed Basic credentials: expected base64 of USER:TOKEN")
            .with_code("invalid_token");
      token = decoded->substr(colon + 1);
    } else {
      throw Error(errc::unauthenticated,
                  "unsupported Authorization scheme: use 'Bearer TOKEN' or Basic with the token as password")
          .with_code("invalid_token");
    }
  } else if (auto c = req.header("Cookie")) {
    token = session_cookie(*c);
    // The cookie is the browser's credential: what a page elsewhere can make it send.
    if (token) csrf = csrf_token(*token);
  }
  auto cookie_checks = [&] {
    if (!csrf.empty()) check_cookie_request(req, csrf);
  };
  if (!token) {
    for (auto h : req.headers.get_all("Sec-WebSocket-Protocol")) {
      std::string_view rest = h;
      while (!rest.empty() && !token) {
        auto comma = rest.find(',');
        auto part = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (part.starts_with(kWsPrefix)) token = std::string(part.substr(kWsPrefix.size()));
      }
    }
  }
  if (!token) return std::nullopt;
  if (ScopedTokens::looks_like(*token)) {
    // Registry tokens (scoped, short-lived) are good for the registry only.
    if (!req.path.starts_with("/v2/"))
      throw Error(errc::unauthenticated, "a registry token is valid under /v2/ only; use an API token")
          .with_code("invalid_token");
    auto p = scoped_->verify(*token, repo::now_ms());
    if (p && !authz_->state()->principals.contains(p->name)) p.reset();
    if (!p)
      throw Error(errc::unauthenticated, "the registry token is invalid or expired: ask /v2/token for a new one")
          .with_code("invalid_token");
    cookie_checks();
    return p;
  }
  auto p = authz_->authenticate_token(*token, repo::now_ms());
  sodium_memzero(token->data(), token->size());
  if (!p)
    throw Error(errc::unauthenticated, "the token is invalid, expired or revoked: log in again (neuro login)")
        .with_code("invalid_token");
  cookie_checks();
  return p;
}

std::string Module::csrf_token(std::string_view session_token) const {
  return keys::base64url(keys::hmac_sha256(csrf_key_, session_token));
}

std::optional<std::string> Module::cookie_session(const http::Request& req) {
  if (req.header("Authorization")) return std::nullopt;
  auto c = req.header("Cookie");
  return c ? session_cookie(*c) : std::nullopt;
}

std::optional<std::int64_t> Module::scoped_token_expiry(const http::Request& req) const {
  auto h = req.header("Authorization");
  if (!h) return std::nullopt;
  auto v = trim(*h);
  std::string token;
  if (iequals_prefix(v, "Bearer ")) {
    token = std::string(trim(v.substr(7)));
  } else if (iequals_prefix(v, "Basic ")) {
    auto decoded = base64_decode(trim(v.substr(6)));
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) return std::nullopt;
    token = decoded->substr(colon + 1);
  }
  std::int64_t exp = 0;
  bool ok = ScopedTokens::looks_like(token) && scoped_->verify(token, repo::now_ms(), &exp).has_value();
  sodium_memzero(token.data(), token.size());
  if (!ok) return std::nullopt;
  return exp;
}

ScopedToken Module::issue_scoped_token(const http::Principal& who, std::vector<std::string> scopes, Duration ttl,
                                       std::optional<std::int64_t> not_after_ms) const {
  if (!who.authenticated()) throw Error(errc::unauthenticated, "a scoped token needs an authenticated principal");
  ttl = std::clamp<Duration>(ttl, std::chrono::seconds(1), std::chrono::hours(1));
  if (not_after_ms) {
    auto left = *not_after_ms - repo::now_ms();
    if (left <= 0) throw Error(errc::unauthenticated, "the token to exchange has expired").with_code("invalid_token");
    ttl = std::min<Duration>(ttl, Duration(left));
  }
  // A scoped token never widens another: its scopes are cut to the caller's own.
  if (who.scopes) {
    std::vector<std::string> kept;
    for (auto& s : scopes)
      if (std::find(who.scopes->begin(), who.scopes->end(), s) != who.scopes->end()) kept.push_back(std::move(s));
    scopes = std::move(kept);
  }
  return scoped_->issue(who, std::move(scopes), ttl, repo::now_ms());
}

void Module::observe(const http::Request& req, const http::Route* route, int status) {
  if (req.method == http::Method::get || req.method == http::Method::head || req.method == http::Method::options)
    return;
  if (route && route->options.read_only) return;
  AuditEntry e;
  e.at = repo::now_ms();
  e.principal = req.principal.name;
  e.method = std::string(http::to_string(req.method));
  // Never the query string (it may carry secrets), nor a job HTTP proxy ticket.
  e.path = http::redact_capabilities(req.path);
  e.route = route ? route->pattern : std::string();
  e.resource = req.resource;
  e.status = status;
  e.remote = req.remote_address;
  e.request_id = req.request_id;
  audit_->record(std::move(e));
}

}  // namespace neurod::auth

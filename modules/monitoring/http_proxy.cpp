// A job's HTTP port through neurod (README "Job HTTP proxy"):
//   ANY /api/v1/jobs/{job}/http/{path...}   the job's server, path and query as the job sees them
//   ANY /api/v1/jobs/{job}/http/            its root
//   GET /api/v1/jobs/{job}/http             308 to the slash form (relative links resolve under it)
//   ANY /api/v1/jobs/{job}/http/~t.TICKET/{path...}   the same, authorised by the ticket alone
//       (http_ticket.hpp): a signed-in browser's navigation is redirected there, because the
//       sandboxed page's own requests carry no cookies.
// Public at the router level: a job submitted with http.requires_auth=false serves anyone;
// for any other job the handler asks for `read` (jobs::Service::get_for_http). The bytes go
// through http::forward (src/http/forward.*), to the socket the executor connects.
#include "modules/monitoring/module.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "http/forward.hpp"
#include "modules/auth/module.hpp"
#include "modules/executor/executor.hpp"
#include "modules/jobs/model.hpp"
#include "modules/jobs/module.hpp"
#include "modules/monitoring/http_ticket.hpp"

#include <spdlog/spdlog.h>

#include <strings.h>

namespace neurod::monitoring {

namespace {

// Every proxied answer runs in an opaque origin: the job's pages come from neurod's own
// origin, and without this their scripts could call neurod's API as the visiting user.
constexpr const char* kSandbox = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

// "/api/v1/jobs/JOB/http/REST?QUERY" (raw, as the client sent it) -> {"/api/v1/jobs/JOB/http", "/REST?QUERY"}.
std::pair<std::string, std::string> split_target(const std::string& target) {
  int slashes = 0;
  for (std::size_t i = 0; i < target.size() && target[i] != '?'; ++i)
    if (target[i] == '/' && ++slashes == 6) return {target.substr(0, i), target.substr(i)};
  throw Error(errc::bad_request, "the request target must be /api/v1/jobs/JOB/http/PATH").with_code("bad_target");
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (::strncasecmp(hay.data() + i, needle.data(), needle.size()) == 0) return true;
  return false;
}

// The session cookie is what authenticated this request (no Authorization header: the
// authenticator prefers that one).
bool by_session_cookie(const http::Request& req) {
  if (!req.principal.authenticated() || req.header("Authorization")) return false;
  auto c = req.header("Cookie");
  if (!c) return false;
  std::string_view v = *c;
  for (std::size_t at = v.find("neurod_session="); at != std::string_view::npos; at = v.find("neurod_session=", at + 1))
    if (at == 0 || v[at - 1] == ' ' || v[at - 1] == ';') return true;
  return false;
}

// A browser opening a page (not a script's fetch, not an API client): GET or HEAD, and
// Sec-Fetch-Mode: navigate, or (browsers without Fetch Metadata) an Accept with text/html.
bool is_navigation(const http::Request& req) {
  if (req.method != http::Method::get && req.method != http::Method::head) return false;
  if (auto mode = req.header("Sec-Fetch-Mode"))
    return mode->size() == 8 && ::strncasecmp(mode->data(), "navigate", 8) == 0;
  auto accept = req.header("Accept");
  return accept && contains_ci(*accept, "text/html");
}

Error ticket_error(TicketCheck::Result why) {
  const char* again =
      "open the job's HTTP link from the console again (or pass a token as 'Authorization: Bearer "
      "TOKEN')";
  if (why == TicketCheck::Result::expired)
    return Error(errc::unauthenticated, std::string("the link expired: ") + again).with_code("http_ticket_expired");
  return Error(errc::unauthenticated,
               std::string("the link is not valid for this job (altered, or made for another job): ") + again)
      .with_code("http_ticket_invalid");
}

Error ticket_revoked(const std::string& user, const std::string& job) {
  return Error(errc::unauthenticated, "the link no longer works: " + user + " may no longer open job " + job +
                                          "; open the job's HTTP link from the console again")
      .with_code("http_ticket_revoked");
}

http::Response see_other(const std::string& location, int status) {
  auto res = http::Response::text("see " + location + "\n", status);
  res.headers.set("Location", location);
  res.headers.set("Cache-Control", "no-store");
  res.headers.set("Referrer-Policy", "no-referrer");
  return res;
}

std::string html_escape(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The proxy's refusals: a short HTML page for a browser's navigation (an expired link
// opened from the address bar), neurod's JSON error otherwise.
http::Response render_proxy_error(const Error& e, const http::Request& req) {
  auto status = http_status(e.code());
  if (!is_navigation(req)) return http::Response::json(error_body(e, req.request_id), status);
  auto res = http::Response::text(
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>neurod: " + std::to_string(status) +
          "</title></head><body><h1>" + std::to_string(status) + "</h1><p>" + html_escape(e.what()) +
          "</p><p>Request id: " + html_escape(req.request_id) + "</p></body></html>\n",
      status, "text/html; charset=utf-8");
  res.headers.set("Cache-Control", "no-store");
  res.headers.set("Referrer-Policy", "no-referrer");
  res.headers.set("Content-Security-Policy", "default-src 'none'");
  return res;
}

bool is_websocket_upgrade(const http::Request& req) {
  auto up = req.header("Upgrade");
  return up && ::strncasecmp(up->data(), "websocket", std::min<std::size_t>(up->size(), 9)) == 0 && up->size() == 9;
}

}  // namespace

void Module::add_http_proxy_routes(http::Router& r) {
  auto* jobs = &jobs_;
  auto* self = this;
  std::string proto = ctx_.global().http.tls.cert.empty() ? "http" : "https";

  auto* authz = &ctx_.get<auth::Module>().authorizer();
  auto tickets = std::make_shared<HttpTickets>(config_.http_ticket_key_file.empty()
                                                   ? ctx_.module_dir(kName) / "http-ticket.key"
                                                   : std::filesystem::path(config_.http_ticket_key_file));
  auto ttl = config_.http_ticket_ttl;

  http::Handler proxy = [jobs, self, proto, authz, tickets, ttl](http::Request& req) -> http::Response {
    const auto& job_param = req.param("job");
    auto [prefix, target] = split_target(req.target);
    // A ticket segment first: "/~t.TICKET/rest?query".
    std::optional<std::string> ticket;
    if (target.starts_with("/") && std::string_view(target).substr(1).starts_with(HttpTickets::kMarker)) {
      auto end = target.find_first_of("/?", 1);
      ticket = target.substr(1 + HttpTickets::kMarker.size(),
                             (end == std::string::npos ? target.size() : end) - 1 - HttpTickets::kMarker.size());
      target = end == std::string::npos ? std::string() : target.substr(end);
    }

    jobs::Job job;
    bool by_ticket = false;
    if (ticket) {
      auto check = tickets->verify(*ticket, job_param, now_ms());
      if (check.ok()) {
        // The ticket stands for its user only while they exist and may read the job.
        if (!authz->state()->principals.contains(check.user)) throw ticket_revoked(check.user, job_param);
        http::Principal holder;
        holder.name = check.user;
        holder.kind = "user";
        holder.credential = "http-ticket";
        try {
          job = jobs->get_for_http(holder, job_param);
        } catch (const Error& e) {
          if (e.code() == errc::not_found) throw ticket_revoked(check.user, job_param);
          throw;
        }
        req.principal = holder;  // the access and audit logs name whose link it was
        by_ticket = true;
      } else {
        // A public job needs no ticket; a signed-in caller is still one.
        try {
          job = jobs->get_for_http(req.principal, job_param);
        } catch (const Error& e) {
          if (e.code() == errc::unauthenticated) throw ticket_error(check.result);
          throw;
        }
      }
    } else {
      job = jobs->get_for_http(req.principal, job_param);
    }
    req.resource = job.uri();
    if (!job.spec.http_port)
      throw Error(errc::bad_request, "job " + job.id +
                                         " has no HTTP port: submit it with `neuro run --http-port PORT` "
                                         "(\"http\": {\"port\": PORT} in the job's spec) to serve one")
          .with_code("no_http_port");
    auto port = static_cast<std::uint16_t>(*job.spec.http_port);
    auto st = job.current().status;
    if (st != jobs::Status::running)
      throw Error(errc::conflict, "job " + job.id + " is " + std::string(jobs::to_string(st)) +
                                      ", not running: its HTTP port answers only while it runs")
          .with_code("job_not_running");
    if (is_websocket_upgrade(req))
      throw Error(errc::not_implemented,
                  "WebSocket upgrades through the job HTTP proxy are not supported yet: forward the port instead "
                  "(`neuro port-forward JOB LOCAL:" +
                      std::to_string(port) + "`)")
          .with_code("websocket_not_supported");
    // A signed-in browser opening the page (no ticket, or a stale one) is sent to the same
    // place under a fresh ticket: the sandboxed page's own requests will carry no cookies.
    if (!by_ticket && job.spec.http_requires_auth && is_navigation(req) && by_session_cookie(req)) {
      auto t = tickets->issue(job.id, req.principal.name, now_ms() + ttl.count());
      return see_other("/api/v1/jobs/" + job.id + "/http/" + std::string(HttpTickets::kMarker) + t +
                           (target.empty() ? std::string("/") : target),
                       302);
    }
    std::string link_prefix;
    if (ticket) {
      link_prefix = prefix;
      prefix += "/" + std::string(HttpTickets::kMarker) + *ticket;
      // ".../~t.TICKET" without its slash: relative links would lose the ticket.
      if (target.empty() || target.starts_with("?")) return see_other(prefix + "/" + target, 308);
    }
    int fd = -1;
    try {
      fd = self->runner().connect(job.id, port);
    } catch (const Error& e) {
      if (e.code_name() != "port_not_listening") throw;
      throw Error(errc::bad_gateway, "nothing answers on job " + job.id + "'s HTTP port " + std::to_string(port) +
                                         " yet: its server must listen on that port (on 0.0.0.0 or 127.0.0.1); "
                                         "try again once it has started")
          .with_code("http_port_not_listening");
    }
    http::ForwardOptions o;
    o.target = std::move(target);
    o.prefix = std::move(prefix);
    o.link_prefix = std::move(link_prefix);
    o.proto = proto;
    // The job never sees the visitor's credentials.
    o.strip_request_headers = {"Authorization", "X-CSRF-Token"};
    o.strip_cookies = {"neurod_session", "neurod_csrf"};
    // No Referer from the job's pages: their URL may hold a ticket.
    o.response_headers = {{"Content-Security-Policy", kSandbox}, {"Referrer-Policy", "no-referrer"}};
    // The sandboxed page's fetch calls are cross-origin (its origin is opaque): let them
    // read answers that need no cookie (a ticket's, a public job's). `*` never covers a
    // request with credentials, so a cookie or token request gains nothing from it.
    if (by_ticket || !job.spec.http_requires_auth)
      o.default_response_headers = {{"Access-Control-Allow-Origin", "*"}};
    o.upstream_name = "job " + job.id;
    spdlog::debug("monitoring: {} {} to the HTTP port of {}", req.principal.authenticated() ? req.principal.name : "-",
                  http::to_string(req.method), job.id);
    return http::forward(fd, req, o);
  };

  http::RouteOptions po;
  po.public_route = true;  // requires_auth=false jobs serve anonymous visitors; the handler checks the rest
  po.body = http::BodyKind::file;  // uploads of any size go to a temp file, not memory
  po.render_error = render_proxy_error;
  po.summary = "A running job's HTTP port, proxied (path and query as the job sees them; read on the job, or anyone "
               "when the job has http.requires_auth=false)";
  for (auto m : {http::Method::get, http::Method::post, http::Method::put, http::Method::patch, http::Method::del,
                 http::Method::options}) {
    r.add(m, "/api/v1/jobs/{job}/http/", proxy, po);
    r.add(m, "/api/v1/jobs/{job}/http/{path...}", proxy, po);
  }

  http::RouteOptions ro;
  ro.public_route = true;
  ro.body = http::BodyKind::none;
  ro.exec = http::Exec::io;
  ro.summary = "Redirects to the job's HTTP root with a trailing slash (so relative links resolve under it)";
  r.get(
      "/api/v1/jobs/{job}/http",
      [](http::Request& req) {
        auto q = req.target.find('?');
        auto location = q == std::string::npos ? req.target + "/" : req.target.substr(0, q) + "/" + req.target.substr(q);
        auto res = http::Response::text("see " + location + "\n", 308);
        res.headers.set("Location", location);
        return res;
      },
      ro);
}

}  // namespace neurod::monitoring

// A job's HTTP port through neurod (README "Job HTTP proxy"):
//   ANY /api/v1/jobs/{job}/http/{path...}   the job's server, path and query as the job sees them
//   ANY /api/v1/jobs/{job}/http/            its root
//   GET /api/v1/jobs/{job}/http             308 to the slash form (relative links resolve under it)
// Public at the router level: a job submitted with http.requires_auth=false serves anyone;
// for any other job the handler asks for `read` (jobs::Service::get_for_http). The bytes go
// through http::forward (src/http/forward.*), to the socket the executor connects.
#include "modules/monitoring/module.hpp"

#include "core/errors.hpp"
#include "http/forward.hpp"
#include "modules/executor/executor.hpp"
#include "modules/jobs/model.hpp"
#include "modules/jobs/module.hpp"

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

bool is_websocket_upgrade(const http::Request& req) {
  auto up = req.header("Upgrade");
  return up && ::strncasecmp(up->data(), "websocket", std::min<std::size_t>(up->size(), 9)) == 0 && up->size() == 9;
}

}  // namespace

void Module::add_http_proxy_routes(http::Router& r) {
  auto* jobs = &jobs_;
  auto* self = this;
  std::string proto = ctx_.global().http.tls.cert.empty() ? "http" : "https";

  http::Handler proxy = [jobs, self, proto](http::Request& req) -> http::Response {
    auto job = jobs->get_for_http(req.principal, req.param("job"));
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
    auto [prefix, target] = split_target(req.target);
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
    o.proto = proto;
    // The job never sees the visitor's credentials.
    o.strip_request_headers = {"Authorization", "X-CSRF-Token"};
    o.strip_cookies = {"neurod_session", "neurod_csrf"};
    o.response_headers = {{"Content-Security-Policy", kSandbox}};
    o.upstream_name = "job " + job.id;
    spdlog::debug("monitoring: {} {} to the HTTP port of {}", req.principal.authenticated() ? req.principal.name : "-",
                  http::to_string(req.method), job.id);
    return http::forward(fd, req, o);
  };

  http::RouteOptions po;
  po.public_route = true;  // requires_auth=false jobs serve anonymous visitors; the handler checks the rest
  po.body = http::BodyKind::file;  // uploads of any size go to a temp file, not memory
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

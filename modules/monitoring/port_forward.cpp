// Port-forward and save (README "Port-forward and save"; reference §5):
//   GET /api/v1/jobs/{job}/port_forward/{port}  WebSocket byte tunnel to a port in the job
//   POST /api/v1/jobs/{job}/save                 commit + push to this neurod's registry, ndjson progress
// Both need `write` on the job; save also `write` on the target image.
#include "modules/monitoring/module.hpp"

#include "core/errors.hpp"
#include "modules/auth/module.hpp"
#include "modules/executor/executor.hpp"
#include "modules/jobs/model.hpp"
#include "modules/jobs/module.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>

namespace neurod::monitoring {

namespace {

using nlohmann::json;

std::uint16_t parse_port(const std::string& text) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v == 0 || v > 65535)
    throw Error(errc::bad_request, "port must be a number from 1 to 65535, got \"" + text + "\"").with_code("bad_port");
  return static_cast<std::uint16_t>(v);
}

void require_running(const jobs::Job& job) {
  auto st = job.current().status;
  if (st != jobs::Status::running)
    throw Error(errc::conflict, "job " + job.id + " is " + std::string(jobs::to_string(st)) + ", not running")
        .with_code("job_not_running");
}

// "host:port" of this neurod as a container engine on this machine reaches it (as the
// jobs module pulls): a wildcard listen address becomes loopback.
std::string engine_reachable_host(const std::string& url) {
  std::string_view v = url;
  if (auto p = v.find("://"); p != std::string_view::npos) v.remove_prefix(p + 3);
  std::string host(v);
  if (auto slash = host.find('/'); slash != std::string::npos) host.resize(slash);
  if (host.starts_with("0.0.0.0:")) return "127.0.0.1" + host.substr(7);
  if (host.starts_with("[::]:")) return "[::1]" + host.substr(4);
  return host;
}

std::string port_of(const std::string& host) {
  auto colon = host.rfind(':');
  return colon == std::string::npos ? std::string() : host.substr(colon + 1);
}

// The error line of a docker-style progress stream.
std::string error_line(const std::string& message) {
  return json{{"error", message}, {"errorDetail", {{"message", message}}}}.dump() + "\n";
}

}  // namespace

void Module::add_forward_routes(http::Router& r) {
  auto* jobs = &jobs_;
  auto* self = this;
  auto* authm = &ctx_.get<auth::Module>();
  auto* ctx = &ctx_;

  // ---- port-forward ----
  http::RouteOptions fwd;
  fwd.summary = "Forward a TCP port of a running job over a WebSocket (raw bytes, both ways)";
  fwd.body = http::BodyKind::none;
  // The refusal also in X-Error, as the reference's clients read it there.
  fwd.render_error = [](const Error& e, const http::Request& req) {
    auto res = http::Response::json(error_body(e, req.request_id), http_status(e.code()));
    if (e.code() == errc::unauthenticated) res.headers.set("WWW-Authenticate", "Bearer realm=\"neurod\"");
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\r', ' ');
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    res.headers.set("X-Error", msg);
    return res;
  };
  r.websocket(
      "/api/v1/jobs/{job}/port_forward/{port}",
      [jobs, self](http::Request& req) {
        auto port = parse_port(req.param("port"));
        auto job = jobs->get_for_write(req.principal, req.param("job"));
        req.resource = job.uri();
        require_running(job);
        // Connect first: a port with nothing behind it is refused before the upgrade.
        int fd = self->runner().connect(job.id, port);
        spdlog::debug("monitoring: {} forwards port {} of {}", req.principal.name, port, job.id);
        http::WebSocketHandler h;
        h.tunnel_fd = std::shared_ptr<int>(new int(fd), [](int* p) {
          ::close(*p);
          delete p;
        });
        return h;
      },
      fwd);

  // ---- save ----
  http::RouteOptions so;
  so.summary = "Commit a running job's container as an image and push it to this neurod's registry (ndjson progress)";
  r.post(
      "/api/v1/jobs/{job}/save",
      [jobs, self, authm, ctx](http::Request& req) -> http::Response {
        auto body = req.json();
        std::string image;
        if (body.is_object() && body.contains("container") && body["container"].is_object() &&
            body["container"].contains("image") && body["container"]["image"].is_string())
          image = body["container"]["image"].get<std::string>();
        if (image.empty())
          throw Error(errc::bad_request, "the body must be {\"container\": {\"image\": \"image:NAME:TAG\"}}")
              .with_code("bad_image");
        auto job = jobs->get_for_write(req.principal, req.param("job"));
        req.resource = job.uri();
        const auto& mods = ctx->enabled_modules();
        if (std::find(mods.begin(), mods.end(), "registry") == mods.end())
          throw Error(errc::unavailable,
                      "save pushes to this neurod's registry, and the registry module does not run here")
              .with_code("no_registry");
        auto& authz = authm->authorizer();
        auto host = engine_reachable_host(ctx->address());
        // HOST/PROJECT/NAME:TAG with HOST this registry (as the engine, the client, or
        // loopback names it) is image:/PROJECT/NAME:TAG.
        if (!image.starts_with("image:")) {
          auto slash = image.find('/');
          std::string h = slash == std::string::npos ? std::string() : image.substr(0, slash);
          auto req_host = req.header("Host").value_or("");
          auto port = port_of(host);
          bool ours = !h.empty() && (h == host || h == req_host || h == "127.0.0.1:" + port ||
                                     h == "localhost:" + port || h == "[::1]:" + port);
          if (!ours)
            throw Error(errc::bad_request, "Unknown registry host \"" + (h.empty() ? image : h) +
                                               "\": save pushes to this neurod's registry; name the image "
                                               "image:NAME:TAG or " +
                                               host + "/PROJECT/NAME:TAG")
                .with_code("unknown_registry_host");
          image = "image:" + image.substr(slash);
        }
        auto img = jobs::parse_registry_image(image, job.spec.project, authz.cluster());
        if (!img) throw Error(errc::bad_request, "not an image of this registry: " + image).with_code("bad_image");
        if (img->reference.starts_with("@"))
          throw Error(errc::bad_request, "save needs a tag (image:NAME:TAG), not a digest").with_code("bad_image");
        auto name = img->repository.substr(img->project.size() + 1);
        authz.require(req.principal, authz.resource_uri("image", img->project, name), auth::Action::write);
        require_running(job);
        auto& runner = self->runner();
        if (runner.kind() != "docker")
          throw Error(errc::bad_request, "job " + job.id + " runs on the " + std::string(runner.kind()) +
                                             " runtime, which has no images: save needs the docker runtime")
              .with_code("save_not_supported");
        auto target = host + "/" + img->repository + img->reference;
        auto uri = "image://" + authz.cluster() + "/" + img->repository + img->reference;
        // The push goes as the caller (who may write that project), with a token for this repository only.
        auto token = authm->issue_scoped_token(req.principal, {"repository:" + img->repository + ":pull,push"},
                                               std::chrono::minutes(60));
        executor::RegistryAuth ra{host, req.principal.name, token.token};
        auto job_id = job.id;
        return http::Response::stream(
            "application/x-ndjson", [&runner, job_id, target, uri, ra](http::StreamWriter& w) {
              try {
                auto digest = runner.save(job_id, target, ra, [&](const std::string& line) { w.write(line + "\n"); });
                json done = {{"status", "Saved " + uri}, {"image", uri}};
                if (!digest.empty()) done["digest"] = digest;
                w.write(done.dump() + "\n");
              } catch (const std::exception& e) {
                w.write(error_line(e.what()));
              }
              w.close();
            });
      },
      so);
}

}  // namespace neurod::monitoring

// The secrets HTTP API (README.md "Endpoints"). Handlers stay thin: parse, call the
// Service, shape the answer. The body is parsed here rather than with Request::json(),
// whose parse errors quote the text around the fault, which here is the value.
#include "modules/secrets/module.hpp"

#include "core/errors.hpp"

#include <fmt/format.h>

namespace neurod::secrets {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

// Base64 of a 1 MiB value is 1,398,104 bytes; the rest is room for the JSON around it.
// Bigger bodies get 413 before they are read; values between 1 MiB and this get the
// Service's clearer 413.
constexpr std::uint64_t kBodyLimit = 1536 * 1024;

json parse_body(const Request& req) {
  if (req.body.empty()) throw Error(errc::bad_request, "a JSON request body is required: {\"key\", \"value\"}");
  try {
    auto j = json::parse(req.body);
    if (!j.is_object()) throw Error(errc::bad_request, "the body must be a JSON object {\"key\", \"value\"}");
    return j;
  } catch (const json::parse_error& e) {
    // Never e.what(): it quotes the text it read last, which may be the value.
    throw Error(errc::bad_request, fmt::format("malformed JSON body at byte {}", e.byte));
  }
}

std::string string_field(const json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) throw Error(errc::bad_request, fmt::format("{}: required", name));
    return {};
  }
  if (!it->is_string()) throw Error(errc::bad_request, fmt::format("{}: must be a string", name));
  return it->get<std::string>();
}

std::string project_param(const Request& req) { return req.query_param("project_name").value_or(""); }

}  // namespace

void Module::add_routes(http::Router& r) {
  r.post(
      "/api/v1/secrets",
      [this](Request& req) {
        auto body = parse_body(req);
        auto key = string_field(body, "key", true);
        auto encoded = string_field(body, "value", true);
        auto project = string_field(body, "project_name", false);
        if (project.empty()) project = project_param(req);
        auto value = base64_decode(encoded);
        if (!value)
          throw Error(errc::bad_request, "value: must be base64 (standard alphabet, with padding)")
              .with_code("invalid_base64");
        auto [secret, created] = service_->put(req.principal, project, key, *value);
        req.resource = service_->uri(secret.meta.project, secret.meta.name);
        (void)created;  // 201 either way, as the reference answers
        return Response::json(to_json(secret, cluster_), 201);
      },
      {.body_limit = kBodyLimit, .summary = "Create or replace a secret (value in base64, at most 1 MiB)"});

  r.get(
      "/api/v1/secrets",
      [this](Request& req) {
        json out = json::array();
        for (const auto& s : service_->list(req.principal, project_param(req))) out.push_back(to_json(s, cluster_));
        return Response::json(out);
      },
      {.body = http::BodyKind::none, .summary = "Secrets you may read: names and metadata, no values (project_name)"});

  r.get(
      "/api/v1/secrets/{key}",
      [this](Request& req) {
        auto secret = service_->get(req.principal, project_param(req), req.param("key"));
        auto res = Response::json(to_json(secret, cluster_));
        res.headers.set("Cache-Control", "no-store");
        return res;
      },
      {.body = http::BodyKind::none, .summary = "A secret with its value (base64)"});

  r.del(
      "/api/v1/secrets/{key}",
      [this](Request& req) {
        auto project = service_->project_for(req.principal, project_param(req));
        service_->remove(req.principal, project, req.param("key"));
        req.resource = service_->uri(project, req.param("key"));
        return Response::no_content();
      },
      {.body = http::BodyKind::none, .summary = "Delete a secret"});
}

}  // namespace neurod::secrets

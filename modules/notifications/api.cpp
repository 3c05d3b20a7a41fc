// The notifications HTTP API (README.md "Endpoints"). Handlers stay thin: parse, call
// the Service, shape the answer.
#include "modules/notifications/module.hpp"

#include "core/errors.hpp"

#include <fmt/format.h>

namespace neurod::notifications {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr std::uint64_t kBodyLimit = 16 * 1024;

json parse_body(const Request& req) {
  if (req.body.empty()) throw Error(errc::bad_request, "a JSON request body is required");
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    // Never e.what(): it quotes the text around the fault, which may be a webhook URL.
    throw Error(errc::bad_request, fmt::format("malformed JSON body at byte {}", e.byte));
  }
}

std::size_t limit_param(const Request& req) {
  auto v = req.query_param("limit");
  if (!v) return 50;
  try {
    std::size_t pos = 0;
    auto n = std::stoll(*v, &pos);
    if (pos != v->size() || n < 1 || n > 1000) throw std::invalid_argument("range");
    return static_cast<std::size_t>(n);
  } catch (const std::exception&) {
    throw Error(errc::bad_request, "limit: a whole number from 1 to 1000");
  }
}

}  // namespace

void Module::add_routes(http::Router& r) {
  const std::string base = "/api/v1/notifications";
  r.post(
      base + "/subscriptions",
      [this](Request& req) {
        auto out = service_->create(req.principal, parse_body(req));
        req.resource = "notification-subscription:" + out["id"].get<std::string>();
        return Response::json(out, 201);
      },
      {.body_limit = kBodyLimit,
       .summary = "Subscribe to events by email, Slack or webhook (a webhook's secret is shown once)"});

  r.get(
      base + "/subscriptions",
      [this](Request& req) {
        json out = json::array();
        for (const auto& s : service_->list(req.principal)) out.push_back(Service::to_json(s));
        return Response::json(out);
      },
      {.body = http::BodyKind::none, .summary = "Your subscriptions and those of projects you may run jobs in"});

  r.get(
      base + "/subscriptions/{id}",
      [this](Request& req) { return Response::json(Service::to_json(service_->get(req.principal, req.param("id")))); },
      {.body = http::BodyKind::none, .summary = "A subscription"});

  r.del(
      base + "/subscriptions/{id}",
      [this](Request& req) {
        service_->remove(req.principal, req.param("id"));
        req.resource = "notification-subscription:" + req.param("id");
        return Response::no_content();
      },
      {.body = http::BodyKind::none, .summary = "Remove a subscription"});

  r.post(
      base + "/subscriptions/{id}/test",
      [this](Request& req) {
        auto d = service_->test(req.principal, req.param("id"));
        req.resource = "notification-subscription:" + req.param("id");
        return Response::json(Service::to_json(d), 202);
      },
      {.body_limit = kBodyLimit, .summary = "Send a test notification through a subscription"});

  r.get(
      base + "/deliveries",
      [this](Request& req) {
        json out = json::array();
        for (const auto& d :
             service_->log(req.principal, req.query_param("subscription_id").value_or(""), limit_param(req)))
          out.push_back(Service::to_json(d));
        return Response::json(out);
      },
      {.body = http::BodyKind::none,
       .summary = "The delivery log of your notifications, newest first (subscription_id, limit)"});

  r.get(
      base + "/deliveries/{id}",
      [this](Request& req) {
        std::int64_t id = 0;
        try {
          std::size_t pos = 0;
          id = std::stoll(req.param("id"), &pos);
          if (pos != req.param("id").size()) throw std::invalid_argument("id");
        } catch (const std::exception&) {
          throw Error(errc::not_found, "no delivery '" + req.param("id") + "' that you can see")
              .with_code("delivery_not_found");
        }
        auto [d, attempts] = service_->delivery(req.principal, id);
        auto out = Service::to_json(d);
        out["log"] = json::array();
        for (const auto& a : attempts) out["log"].push_back(Service::to_json(a));
        return Response::json(out);
      },
      {.body = http::BodyKind::none, .summary = "One delivery with every attempt and its result"});

  r.get(
      base + "/preferences",
      [this](Request& req) { return Response::json(service_->preferences(req.principal)); },
      {.body = http::BodyKind::none, .summary = "Whether you get the administrator's default notifications"});

  r.put(
      base + "/preferences",
      [this](Request& req) { return Response::json(service_->set_preferences(req.principal, parse_body(req))); },
      {.body_limit = kBodyLimit, .summary = "Opt in to or out of the default notifications {default_email}"});
}

}  // namespace neurod::notifications

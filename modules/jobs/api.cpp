// The jobs module's HTTP API (README.md "Endpoints"). Handlers stay thin: parse, call
// the Service, shape the answer.
#include "modules/jobs/module.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"

#include <fmt/format.h>

namespace neurod::jobs {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr std::uint64_t kSubmitBody = 1024 * 1024;

// "2026-11-23T10:00:00Z", or a duration meaning that long ago ("10m", "1h").
std::int64_t time_param(const std::string& name, const std::string& value) {
  if (auto t = parse_time_ms(value)) return *t;
  if (auto d = parse_duration(value)) return now_ms() - d->count();
  throw Error(errc::bad_request,
              fmt::format("{}: '{}' is neither a time (2026-11-23T10:00:00Z) nor a duration (1h30m)", name, value));
}

bool bool_param(const Request& req, const std::string& name) {
  auto v = req.query_param(name);
  if (!v) return false;
  if (*v == "" || *v == "true" || *v == "1" || *v == "yes") return true;
  if (*v == "false" || *v == "0" || *v == "no") return false;
  throw Error(errc::bad_request, name + ": true or false");
}

repo::Filter filter_from(const Request& req) {
  repo::Filter f;
  for (const auto& s : req.query_params("status")) {
    if (s == "active") {
      f.statuses.insert(f.statuses.end(), {"pending", "running", "suspended"});
    } else if (s == "finished") {
      f.statuses.insert(f.statuses.end(), {"succeeded", "failed", "cancelled"});
    } else if (parse_status(s)) {
      f.statuses.push_back(s);
    } else {
      throw Error(errc::bad_request,
                  "status: '" + s + "' is not one of pending, running, suspended, succeeded, failed, cancelled, "
                                    "active, finished");
    }
  }
  for (auto o : req.query_params("owner")) {
    if (o == "me" || o == "ME") o = req.principal.name;
    f.owners.push_back(o);
  }
  f.projects = req.query_params("project_name");
  for (const auto& p : req.query_params("project")) f.projects.push_back(p);
  f.tags = req.query_params("tag");
  if (f.tags.size() > 16) throw Error(errc::bad_request, "tag: at most 16");
  if (auto n = req.query_param("name")) f.name = *n;
  if (auto s = req.query_param("since")) f.since_ms = time_param("since", *s);
  if (auto u = req.query_param("until")) f.until_ms = time_param("until", *u);
  f.reverse = bool_param(req, "reverse");
  if (auto l = req.query_param("limit")) {
    char* end = nullptr;
    long v = std::strtol(l->c_str(), &end, 10);
    if (l->empty() || *end || v < 1 || v > 100000) throw Error(errc::bad_request, "limit: 1 to 100000");
    f.limit = static_cast<std::size_t>(v);
  }
  return f;
}

bool wants_ndjson(const Request& req) {
  auto accept = req.header("Accept");
  return accept && accept->find("application/x-ndjson") != std::string_view::npos;
}

}  // namespace

void Module::add_routes(http::Router& r) {
  r.post(
      "/api/v1/jobs",
      [this](Request& req) {
        auto job = service_->create(req.principal, req.json());
        req.resource = job.uri();
        return Response::json(to_json(job, now_ms()), 202);
      },
      {.body_limit = kSubmitBody, .summary = "Submit a job"});

  r.get(
      "/api/v1/jobs",
      [this](Request& req) {
        auto filter = filter_from(req);
        auto who = req.principal;
        // The live list (watch.hpp): a flag, not a path, since any path under /jobs/ may be a job's name.
        if (bool_param(req, "watch")) return watchers_->open(who, filter);
        if (wants_ndjson(req)) {
          return Response::stream("application/x-ndjson", [this, who, filter](http::StreamWriter& out) {
            auto now = now_ms();
            service_->list(who, filter, [&](const Job& j) { return out.write(to_json(j, now, false).dump() + "\n"); });
            out.close();
          });
        }
        json jobs = json::array();
        auto now = now_ms();
        service_->list(who, filter, [&](const Job& j) {
          jobs.push_back(to_json(j, now, false));
          return true;
        });
        return Response::json({{"jobs", std::move(jobs)}});
      },
      {.body = http::BodyKind::none, .summary = "List jobs (filters: status tag owner project_name name since until); watch=true: a live SSE stream"});

  r.get(
      "/api/v1/jobs/{job}",
      [this](Request& req) { return Response::json(to_json(service_->get(req.principal, req.param("job")), now_ms())); },
      {.body = http::BodyKind::none, .summary = "A job by id or name"});

  r.get(
      "/api/v1/jobs/{job}/statuses",
      [this](Request& req) {
        auto job = service_->get(req.principal, req.param("job"));
        json items = json::array();
        for (const auto& s : job.statuses) items.push_back(to_json(s));
        return Response::json({{"id", job.id}, {"statuses", std::move(items)}});
      },
      {.body = http::BodyKind::none, .summary = "A job's status history"});

  r.del(
      "/api/v1/jobs/{job}",
      [this](Request& req) {
        service_->cancel(req.principal, req.param("job"));
        return Response::no_content();
      },
      {.body = http::BodyKind::none, .summary = "Cancel a job (UserRequested)"});

  r.put(
      "/api/v1/jobs/{job}/max_run_time_minutes",
      [this](Request& req) {
        auto job = service_->set_life_span(req.principal, req.param("job"), req.json());
        req.resource = job.uri();
        return Response::json(to_json(job, now_ms()));
      },
      {.body_limit = 4096, .summary = "Change a job's life span"});
  // The log routes (/api/v1/jobs/{job}/log, log_ws) are the monitoring module's.
}

}  // namespace neurod::jobs

// Quota and audit endpoints (README.md "Quotas", "Audit").
#include "modules/auth/module.hpp"

#include "modules/auth/repo.hpp"

#include <algorithm>
#include <ctime>
#include <limits>
#include <set>

namespace neurod::auth {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

// Epoch milliseconds, or ISO-8601 UTC ("2026-11-23T10:00:00Z", seconds and the zone optional).
std::int64_t parse_time(const std::string& key, const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      text.size() < 18)
    return std::stoll(text);
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  char tail[8] = {};
  int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%7s", &y, &mo, &d, &h, &mi, &sec, tail);
  bool ok = (n == 6 || (n == 7 && std::string(tail) == "Z"));
  if (!ok) {
    n = std::sscanf(text.c_str(), "%4d-%2d-%2d%7s", &y, &mo, &d, tail);
    ok = n == 3;
    h = mi = 0;
    sec = 0;
  }
  if (!ok || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
    throw Error(errc::bad_request, "'" + key +
                                       "' must be epoch milliseconds or an ISO-8601 UTC time such as "
                                       "2026-11-23T10:00:00Z, not '" +
                                       text + "'");
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = static_cast<int>(sec);
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + static_cast<std::int64_t>((sec - int(sec)) * 1000);
}

long long parse_int(const std::string& key, const std::string& text, long long lo, long long hi) {
  try {
    std::size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  throw Error(errc::bad_request,
              "'" + key + "' must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
}

json quota_json(Quotas& q, const Subject& s) {
  return {{"name", s.name}, {"limits", to_json(q.limits(s))}, {"usage", to_json(q.usage(s))}};
}

// A limit from JSON: absent keeps `current`, null clears it, sizes may be "100GiB".
template <class T>
std::optional<T> limit_field(const json& j, const char* key, std::optional<T> current) {
  auto it = j.find(key);
  if (it == j.end()) return current;
  if (it->is_null()) return std::nullopt;
  if constexpr (std::is_same_v<T, std::int64_t>) {
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (it->is_string() && std::string(key) == "storage_bytes") {
      if (auto b = parse_size(it->get<std::string>())) return static_cast<std::int64_t>(*b);
    }
  } else {
    if (it->is_number()) return it->get<double>();
  }
  throw Error(errc::bad_request, std::string("'") + key + "' must be a number" +
                                     (std::string(key) == "storage_bytes" ? " or a size such as \"100GiB\"" : "") +
                                     ", or null for unlimited");
}

}  // namespace

void Module::add_quota_and_audit_routes(http::Router& r) {
  using http::BodyKind;
  auto& svc = *service_;
  auto& authz = *authz_;
  auto& q = *quotas_;

  r.get("/api/v1/quota",
        [&svc, &authz, &q](Request& req) {
          const auto& who = req.principal;
          auto actor = Actor::of(who);
          q.sync_usage();  // what the caller just wrote is in the answer
          if (auto project = req.query_param("project")) {
            svc.get_project(actor, *project);  // members and admins only; others get 404
            return Response::json({{"projects", json::array({quota_json(q, {"project", *project})})}});
          }
          auto user =
              req.query_param("user").value_or(who.kind == "service" ? authz.context_for(who).project : who.name);
          if (user != who.name && !(who.kind == "service" && user == authz.context_for(who).project))
            authz.require_admin(who);
          auto projects = json::array();
          for (const auto& [p, role] : svc.list_projects(Actor::of(http::Principal{user, "user", {}}), false))
            if (!p.personal) projects.push_back(quota_json(q, {"project", p.name}));
          return Response::json({{"user", quota_json(q, {"user", user})}, {"projects", projects}});
        },
        {.body = BodyKind::none, .summary = "Your quotas and usage (?project=, admin: ?user=)"});

  // The admin quota routes' common start: an administrator, and an existing user or
  // project named in the path (also the audit entry's resource).
  auto admin_subject = [&svc, &authz](Request& req) {
    authz.require_admin(req.principal);
    auto kind = req.param("kind");
    if (kind != "users" && kind != "projects")
      throw Error(errc::not_found, "quotas belong to users or projects: /api/v1/admin/quotas/{users|projects}/NAME");
    Subject s{kind == "users" ? "user" : "project", req.param("name")};
    req.resource = s.kind + ":" + s.name;
    auto actor = Actor::daemon();
    if (s.kind == "project")
      svc.get_project(actor, s.name);
    else if (svc.get_principal(actor, s.name).kind != "user")
      throw Error(errc::not_found, "user '" + s.name + "' not found").with_code("user_not_found");
    return s;
  };

  r.get("/api/v1/admin/quotas/{kind}/{name}",
        [&q, admin_subject](Request& req) {
          auto s = admin_subject(req);
          q.sync_usage();
          return Response::json(quota_json(q, s));
        },
        {.body = BodyKind::none, .summary = "A user's or project's quota and usage (admin)"});

  r.put("/api/v1/admin/quotas/{kind}/{name}",
        [&q, admin_subject](Request& req) {
          auto s = admin_subject(req);
          auto j = req.json();
          if (!j.is_object()) throw Error(errc::bad_request, "the body must be a JSON object of limits");
          static const std::set<std::string> known{"max_running_jobs", "cpu_hours", "gpu_hours", "storage_bytes",
                                                   "period"};
          for (const auto& [k, v] : j.items())
            if (!known.contains(k))
              throw Error(errc::bad_request, "unknown quota '" + k +
                                                 "'; known: max_running_jobs, cpu_hours, gpu_hours, "
                                                 "storage_bytes, period");
          auto l = q.limits(s);
          l.max_running_jobs = limit_field<std::int64_t>(j, "max_running_jobs", l.max_running_jobs);
          l.cpu_hours = limit_field<double>(j, "cpu_hours", l.cpu_hours);
          l.gpu_hours = limit_field<double>(j, "gpu_hours", l.gpu_hours);
          l.storage_bytes = limit_field<std::int64_t>(j, "storage_bytes", l.storage_bytes);
          if (auto it = j.find("period"); it != j.end()) {
            auto d = it->is_string() ? parse_duration(it->get<std::string>()) : std::nullopt;
            if (!d) throw Error(errc::bad_request, "'period' must be a duration such as \"30d\"");
            l.period = *d;
          }
          q.set_limits(s, l);
          q.sync_usage();
          return Response::json(quota_json(q, s));
        },
        {.body = BodyKind::memory, .body_limit = 16 * 1024, .summary = "Set quota limits (admin; null = unlimited)"});

  r.del("/api/v1/admin/quotas/{kind}/{name}",
        [&q, admin_subject](Request& req) {
          auto s = admin_subject(req);
          q.reset_limits(s);
          return Response::no_content();
        },
        {.body = BodyKind::none, .summary = "Remove quota limits (admin)"});

  r.get("/api/v1/audit",
        [this, &authz](Request& req) {
          const auto& who = req.principal;
          AuditQuery query;
          bool admin = authz.is_admin(who);
          query.user = req.query_param("user").value_or(admin ? "" : who.name);
          std::replace(query.user.begin(), query.user.end(), ':', '/');
          if (!admin && query.user != who.name)
            throw Error(errc::forbidden, "only administrators read other users' audit entries").with_code("not_yours");
          if (auto v = req.query_param("since")) query.since = parse_time("since", *v);
          if (auto v = req.query_param("until")) query.until = parse_time("until", *v);
          if (auto v = req.query_param("before"))
            query.before = parse_int("before", *v, 1, std::numeric_limits<long long>::max());
          if (auto v = req.query_param("limit")) query.limit = static_cast<int>(parse_int("limit", *v, 1, 1000));
          if (auto v = req.query_param("resource"); v && !v->empty()) {
            // A URI is matched in its canonical form; a path ("/api/v1/…") as written.
            query.resource = v->front() == '/' ? *v : authz.parse_uri(*v, who).str();
          }
          audit_->flush();  // what this caller just did is in the answer
          auto entries = audit_->query(query);
          auto out = json::array();
          for (const auto& e : entries) out.push_back(to_json(e));
          json next = entries.size() == static_cast<std::size_t>(query.limit) ? json(entries.back().id) : json();
          return Response::json({{"entries", out}, {"next", next}});
        },
        {.body = BodyKind::none, .summary = "The audit log (admin; others: their own entries)"});
}

}  // namespace neurod::auth

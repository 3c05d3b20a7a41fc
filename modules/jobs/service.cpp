#include "modules/jobs/service.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "core/ids.hpp"
#include "db/database.hpp"
#include "modules/auth/authorizer.hpp"
#include "modules/auth/quotas.hpp"

#include <fmt/format.h>


namespace neurod::jobs {

namespace {

Error not_found(std::string_view id_or_name) {
  return Error(errc::not_found, fmt::format("no job '{}' that you can see (neuro ps -a lists yours)", id_or_name));
}

}  // namespace

Service::Service(db::Database& db, auth::Authorizer& authz, auth::Quotas* quotas, Scheduler& scheduler,
                 events::Bus& bus, ServiceOptions options)
    : db_(db), authz_(authz), quotas_(quotas), scheduler_(scheduler), bus_(bus), options_(std::move(options)) {}

bool Service::can(const http::Principal& who, const Job& job, int action) const {
  auto a = static_cast<auth::Action>(action);
  if (authz_.allowed(who, job.uri(), a)) return true;
  // A share by name ("job://cluster/project/train-1") covers the job of that name.
  return !job.spec.name.empty() &&
         authz_.allowed(who, authz_.resource_uri("job", job.spec.project, job.spec.name), a);
}

double Service::price_of(const JobSpec& spec) const {
  for (const auto& p : options_.presets)
    if (p.name == spec.preset) return p.credits_per_hour;
  // Explicit resources: the cheapest preset they fit into (reference §2.5).
  std::optional<double> best;
  for (const auto& p : options_.presets)
    if (p.cpu >= spec.resources.cpu && p.memory.bytes >= spec.resources.memory && p.gpu >= spec.resources.gpu)
      if (!best || p.credits_per_hour < *best) best = p.credits_per_hour;
  return best.value_or(0);
}

Job Service::create(const http::Principal& who, const nlohmann::json& body) {
  auto uri_ctx = authz_.context_for(who);
  UriResolver resolve = [&](std::string_view text, std::string_view scheme) {
    auto uri = auth::Uri::parse(text, &uri_ctx);
    if (uri.scheme() != scheme) throw Error(errc::bad_request, fmt::format("must be a {}: URI", scheme));
    if (uri.segments().size() < 3 || uri.segments()[0] != authz_.cluster())
      throw Error(errc::bad_request,
                  fmt::format("must name something in a project: {}://{}/PROJECT/…", scheme, authz_.cluster()));
    return uri.str();
  };
  auto spec = parse_spec(body, options_.presets, options_.limits, resolve);
  if (spec.project.empty()) spec.project = uri_ctx.project;

  // Permissions (reference §2.3): write on the project's jobs, and what the volumes need.
  std::vector<auth::Requirement> need{{{authz_.resource_uri("job", spec.project), auth::Action::write}}};
  for (const auto& v : spec.volumes) need.push_back({{v.uri, v.read_only ? auth::Action::read : auth::Action::write}});
  for (const auto& v : spec.disk_volumes)
    need.push_back({{v.uri, v.read_only ? auth::Action::read : auth::Action::write}});
  for (const auto& v : spec.secret_volumes) need.push_back({{v.uri, auth::Action::read}});
  for (const auto& [k, v] : spec.secret_env) need.push_back({{v, auth::Action::read}});
  // An image of the cluster's registry: the submitter must be able to pull it.
  if (auto img = parse_registry_image(spec.image, spec.project, authz_.cluster()))
    need.push_back({{authz_.resource_uri("image", img->project, img->repository.substr(img->project.size() + 1)),
                     auth::Action::read}});
  authz_.require(who, need);

  if (auto why = scheduler_.unschedulable(spec))
    throw Error(errc::bad_request, *why + "; ask for less, or run it on a bigger node")
        .with_code("unschedulable");

  Job job;
  job.id = new_id("job");
  job.owner = who.name;
  job.cluster = authz_.cluster();
  job.created_ms = now_ms();
  job.spec = std::move(spec);
  job.price_per_hour = price_of(job.spec);
  job.statuses.push_back({Status::pending, "Creating", "", std::nullopt, job.created_ms});

  // The limits are read before the transaction: Quotas uses a session of its own, and
  // waiting for a second session while holding one deadlocks a busy pool.
  std::vector<std::pair<auth::Subject, std::int64_t>> running_limits;
  if (quotas_ && !job.spec.wait_for_jobs_quota) {
    auto owner = job.owner.substr(0, job.owner.find('/'));
    for (auto subj : {auth::Subject{"user", owner}, auth::Subject{"project", job.spec.project}})
      if (auto limit = quotas_->limits(subj).max_running_jobs) running_limits.emplace_back(subj, *limit);
  }
  db_.write([&](soci::session& s) {
    // Reference §2.3: unfinished jobs count against the running-jobs quota at submission.
    for (const auto& [subj, limit] : running_limits) {
      auto used = repo::count_unfinished(s, subj.kind == "user" ? "owner" : "project", subj.name);
      if (used >= limit)
        throw Error(errc::forbidden,
                    fmt::format("the {} {} already has {} unfinished job{}, its running-jobs quota; wait for one to "
                                "finish, kill one, or submit with --wait-for-seat to queue",
                                subj.kind, subj.name, used, used == 1 ? "" : "s"),
                    {{"resource", "running_jobs"}, {"subject", subj.kind + ":" + subj.name}, {"limit", limit}})
            .with_code("quota_exceeded");
    }
    if (!job.spec.name.empty() && repo::has_unfinished_named(s, job.owner, job.spec.name))
      throw Error(errc::conflict,
                  fmt::format("you already have an unfinished job named '{}'; kill it or pick another name",
                              job.spec.name))
          .with_code("name_in_use");
    repo::insert(s, job);
  });
  bus_.publish(events::Event{"job.status", 0,
                             {{"job_id", job.id},
                              {"name", job.spec.name},
                              {"owner", job.owner},
                              {"project", job.spec.project},
                              {"cluster", job.cluster},
                              {"status", "pending"},
                              {"reason", "Creating"},
                              {"description", ""},
                              {"exit_code", nullptr},
                              {"time", format_time_ms(job.created_ms)},
                              {"restarts", 0}}});
  scheduler_.submitted(job);
  return job;
}

repo::Row Service::resolve(const http::Principal& who, std::string_view id_or_name, bool write) {
  auto action = static_cast<int>(write ? auth::Action::write : auth::Action::read);
  if (id_or_name.empty() || id_or_name.size() > 255) throw not_found(id_or_name);
  std::string key(id_or_name);
  if (key.starts_with("job-")) {
    auto row = db_.read([&](soci::session& s) { return repo::load(s, key, authz_.cluster()); });
    if (!row || !can(who, row->job, static_cast<int>(auth::Action::read))) throw not_found(id_or_name);
    if (write && !can(who, row->job, action))
      throw Error(errc::forbidden, "you may see job " + key + " but not change it",
                  {{"missing", nlohmann::json::array({{{"uri", row->job.uri()}, {"action", "write"}}})}});
    return std::move(*row);
  }
  // A name: the caller's newest job of that name, else the newest they may see.
  auto ids = db_.read([&](soci::session& s) { return repo::ids_named(s, key); });
  std::optional<repo::Row> visible;
  for (const auto& id : ids) {
    auto row = db_.read([&](soci::session& s) { return repo::load(s, id, authz_.cluster()); });
    if (!row) continue;
    if (row->job.owner == who.name) {
      visible = std::move(row);
      break;
    }
    if (!visible && can(who, row->job, static_cast<int>(auth::Action::read))) visible = std::move(row);
  }
  if (!visible) throw not_found(id_or_name);
  if (write && !can(who, visible->job, action))
    throw Error(errc::forbidden, "you may see job " + visible->job.id + " but not change it",
                {{"missing", nlohmann::json::array({{{"uri", visible->job.uri()}, {"action", "write"}}})}});
  return std::move(*visible);
}

Job Service::get(const http::Principal& who, std::string_view id_or_name) {
  return resolve(who, id_or_name, false).job;
}

Job Service::get_for_write(const http::Principal& who, std::string_view id_or_name) {
  return resolve(who, id_or_name, true).job;
}

Job Service::get_for_http(const http::Principal& who, std::string_view id_or_name) {
  if (id_or_name.starts_with("job-") && id_or_name.size() <= 255) {
    std::string key(id_or_name);
    auto row = db_.read([&](soci::session& s) { return repo::load(s, key, authz_.cluster()); });
    if (row && row->job.spec.http_port && !row->job.spec.http_requires_auth) return std::move(row->job);
  }
  if (!who.authenticated())
    throw Error(errc::unauthenticated,
                "authentication required: this job's HTTP port is open to users who may read the job; log in, or "
                "pass a token as 'Authorization: Bearer TOKEN'");
  return get(who, id_or_name);
}

void Service::list(const http::Principal& who, repo::Filter filter, const std::function<bool(const Job&)>& each) {
  std::size_t wanted = filter.limit;
  std::size_t given = 0;
  // Pages through the matching rows, keeping those the caller may read, until the
  // limit is reached: the permission filter cannot be expressed in SQL.
  filter.limit = std::min<std::size_t>(std::max<std::size_t>(wanted, 100), 2000);
  for (;;) {
    auto rows = db_.read([&](soci::session& s) { return repo::list(s, filter, authz_.cluster()); });
    for (const auto& r : rows) {
      if (!can(who, r.job, static_cast<int>(auth::Action::read))) continue;
      if (!each(r.job)) return;
      if (++given >= wanted) return;
    }
    if (rows.size() < filter.limit) return;
    filter.after_created = rows.back().job.created_ms;
    filter.after_id = rows.back().job.id;
  }
}

void Service::cancel(const http::Principal& who, std::string_view id_or_name) {
  auto row = resolve(who, id_or_name, true);
  if (is_finished(row.job.current().status)) return;
  scheduler_.cancel(row.job.id);
}

Job Service::set_life_span(const http::Principal& who, std::string_view id_or_name, const nlohmann::json& body) {
  auto row = resolve(who, id_or_name, true);
  if (!body.is_object()) throw Error(errc::bad_request, "the body must be a JSON object");
  auto abs = body.find("max_run_time_minutes");
  auto add = body.find("additional_max_run_time_minutes");
  if ((abs == body.end()) == (add == body.end()))
    throw Error(errc::bad_request,
                "give exactly one of max_run_time_minutes and additional_max_run_time_minutes");
  auto it = abs != body.end() ? abs : add;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 10LL * 365 * 24 * 60)
    throw Error(errc::bad_request, std::string(it.key()) + ": a whole number of minutes, at least 1");
  if (is_finished(row.job.current().status))
    throw Error(errc::conflict, "job " + row.job.id + " has finished; its life span cannot change")
        .with_code("job_finished");
  int minutes = static_cast<int>(it->get<std::int64_t>());
  if (add != body.end()) {
    // Without a limit there is nothing to extend from: the job already runs without one.
    if (!row.job.spec.max_run_time_minutes) return row.job;
    minutes += *row.job.spec.max_run_time_minutes;
  }
  db_.write([&](soci::session& s) { repo::set_max_run_time(s, row.job.id, minutes); });
  scheduler_.set_life_span(row.job.id, minutes);
  if (changed_) changed_(row.job.id);
  row.job.spec.max_run_time_minutes = minutes;
  return row.job;
}

std::optional<Job> Service::find(const std::string& id) {
  auto row = db_.read([&](soci::session& s) { return repo::load(s, id, authz_.cluster()); });
  if (!row) return std::nullopt;
  return std::move(row->job);
}

bool Service::readable(const http::Principal& who, const Job& job) const {
  return can(who, job, static_cast<int>(auth::Action::read));
}

bool Service::still_authenticated(const http::Principal& who) const {
  return authz_.still_authenticated(who, now_ms());
}

std::int64_t Service::identity_version() const { return authz_.state()->version; }

std::vector<repo::StatusChange> Service::status_changes_after(std::int64_t after_seq, std::size_t limit) {
  return db_.read([&](soci::session& s) { return repo::status_changes_after(s, after_seq, limit); });
}

std::int64_t Service::latest_status_seq() {
  return db_.read([](soci::session& s) { return repo::latest_status_seq(s); });
}

}  // namespace neurod::jobs

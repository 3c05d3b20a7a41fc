// The jobs API's decisions (README.md here): submission with validation, permissions
// and the running-jobs quota; reads by id or name; listing filtered by what the caller
// may read; cancel and life span. The scheduler does everything after submission.
#pragma once

#include "core/events.hpp"
#include "http/types.hpp"
#include "modules/jobs/model.hpp"
#include "modules/jobs/repo.hpp"
#include "modules/jobs/scheduler.hpp"

#include <functional>

namespace neurod::auth {
class Authorizer;
class Quotas;
}  // namespace neurod::auth

namespace neurod::jobs {

struct ServiceOptions {
  std::string cluster;
  SpecLimits limits;
  std::vector<config::Preset> presets;
};

class Service {
 public:
  Service(db::Database& db, auth::Authorizer& authz, auth::Quotas* quotas, Scheduler& scheduler, events::Bus& bus,
          ServiceOptions options);

  Job create(const http::Principal& who, const nlohmann::json& body);
  // read permission on the job (by id, or on its name alias); 404 otherwise.
  Job get(const http::Principal& who, std::string_view id_or_name);
  // The same, for acting on the job (exec, attach, port-forward, kill, save): needs `write`.
  Job get_for_write(const http::Principal& who, std::string_view id_or_name);
  // The job whose HTTP port the caller opens (monitoring's HTTP proxy): a job submitted
  // with http.requires_auth=false for anyone, anonymous callers included (by id only: a
  // name means something per user); otherwise `read`, as get(). An anonymous caller of any
  // other job is 401 (whether or not it exists).
  Job get_for_http(const http::Principal& who, std::string_view id_or_name);
  // Calls each for every job the caller may read, in order, until it returns false.
  void list(const http::Principal& who, repo::Filter filter, const std::function<bool(const Job&)>& each);
  void cancel(const http::Principal& who, std::string_view id_or_name);
  Job set_life_span(const http::Principal& who, std::string_view id_or_name, const nlohmann::json& body);

  // A job by id without a permission check (the caller is a module: the job-list
  // watchers check readable() themselves); nullopt when there is none.
  std::optional<Job> find(const std::string& id);
  // Whether the caller may read the job: the check list() and get() make.
  bool readable(const http::Principal& who, const Job& job) const;
  // Whether the caller's token still authenticates it (not revoked, not expired): for
  // long-lived streams, which authenticated once. Scans the tokens: check when
  // identity_version() moved, or now and then.
  bool still_authenticated(const http::Principal& who) const;
  std::int64_t identity_version() const;
  // Told the id of a job that changed without a bus event (its life span).
  void set_change_listener(std::function<void(const std::string&)> fn) { changed_ = std::move(fn); }

  // The status history as an outbox, for subscribers that must not miss a change
  // (notifications): up to `limit` changes after `after_seq`, in seq order. No
  // permission check: the caller is a module, not a user.
  std::vector<repo::StatusChange> status_changes_after(std::int64_t after_seq, std::size_t limit);
  std::int64_t latest_status_seq();

 private:
  repo::Row resolve(const http::Principal& who, std::string_view id_or_name, bool write);
  bool can(const http::Principal& who, const Job& job, int action) const;
  double price_of(const JobSpec& spec) const;

  db::Database& db_;
  auth::Authorizer& authz_;
  auth::Quotas* quotas_;
  Scheduler& scheduler_;
  events::Bus& bus_;
  ServiceOptions options_;
  std::function<void(const std::string&)> changed_;
};

}  // namespace neurod::jobs

// The jobs tables (migrations/jobs). Every function runs inside the caller's
// transaction (Database::write/read); a status change and its history row are written
// together by append_status.
#pragma once

#include "modules/jobs/model.hpp"

#include <soci/soci.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace neurod::jobs::repo {

// The scheduler's bookkeeping beside the API view of a job.
struct RunState {
  int attempt = 0;
  bool launched = false;  // an attempt is with the executor (until its exit is recorded)
  std::vector<std::string> gpu_ids;
  std::string executor;
  std::optional<std::int64_t> restart_at;
  std::int64_t charged_ms = 0;  // run time already charged to the CPU/GPU-hours quotas
};

struct Row {
  Job job;
  RunState run;
};

struct Filter {
  std::vector<std::string> statuses;  // empty: all
  std::vector<std::string> owners;
  std::vector<std::string> projects;
  std::vector<std::string> tags;  // all of them
  std::string name;
  std::optional<std::int64_t> since_ms, until_ms;
  bool reverse = false;
  std::size_t limit = 1000;
  std::optional<std::string> after_id;  // paging: rows created after this one (by order)
  std::optional<std::int64_t> after_created;
};

void insert(soci::session& s, const Job& job);
// Appends to the history and moves the row's status; returns the history row's seq.
std::int64_t append_status(soci::session& s, const std::string& id, const StatusItem& item);
void save_run_state(soci::session& s, const std::string& id, const RunState& run);
void set_max_run_time(soci::session& s, const std::string& id, int minutes);

std::optional<Row> load(soci::session& s, const std::string& id, const std::string& cluster);
// Ids of jobs with this name, newest first.
std::vector<std::string> ids_named(soci::session& s, const std::string& name);
// Jobs matching the filter, in creation order (newest first with reverse), statuses loaded.
std::vector<Row> list(soci::session& s, const Filter& f, const std::string& cluster);
// Jobs the scheduler must track: not finished, or with an attempt still at the executor.
std::vector<Row> live(soci::session& s, const std::string& cluster);
// Whether the owner has an unfinished job of this name (names are unique among those).
bool has_unfinished_named(soci::session& s, const std::string& owner, const std::string& name);
// Unfinished jobs of an owner or a project (the running-jobs quota counts these).
std::int64_t count_unfinished(soci::session& s, const std::string& column, const std::string& value);

// The status history read as an outbox (notifications): each row after `after_seq`, in
// seq order, with what a subscriber needs to know about its job.
struct StatusChange {
  std::int64_t seq = 0;
  std::string job_id, name, owner, project;
  StatusItem item;
};
std::vector<StatusChange> status_changes_after(soci::session& s, std::int64_t after_seq, std::size_t limit);
// The newest history row's seq (0: none yet).
std::int64_t latest_status_seq(soci::session& s);
// How many jobs are in each status (for the neurod_jobs gauge).
std::map<std::string, std::int64_t> count_by_status(soci::session& s);

}  // namespace neurod::jobs::repo

// Pure pieces of the job commands (neuro run, ps, status, logs, kill, bump-life-span),
// kept out of commands_jobs.cpp so that tests/unit/cli can test them: the submit
// body built from `neuro run`'s flags, the `ps` query and columns, the status lines
// printed while following a job, and the `status` report (modules/jobs/README.md).
#pragma once

#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neurod::cli {

// `neuro run`'s own exit codes besides the job's (docs/cli.md), as `docker run` has them:
// the job was submitted but never produced an exit code (it could not be scheduled, its
// image could not be pulled, it was cancelled before it ran).
inline constexpr int kJobCouldNotRun = 125;
// Ctrl-C stopped following; the job keeps running (128 + SIGINT, what shells report).
inline constexpr int kStoppedFollowing = 130;

// `neuro run`'s flags as given; job_request() checks and maps them. Numbers stay
// strings so that a bad value is reported with the option's name.
struct RunArgs {
  std::string image;
  std::vector<std::string> command;  // after IMAGE (a leading "--" is dropped)
  std::string preset;
  std::string name;
  std::vector<std::string> tags;
  std::string description;
  std::vector<std::string> env;      // VAR=VAL or VAR=secret:KEY
  std::vector<std::string> volumes;  // storage:…, secret:…, disk:…
  std::optional<std::string> entrypoint;
  std::string workdir;
  bool tty = false;
  bool extshm = false;
  std::string cpu;
  std::string memory;
  std::string gpu;
  std::string gpu_model;
  std::string life_span;
  std::string schedule_timeout;
  std::string restart;
  std::string priority;
  std::string http_port;
  std::optional<bool> http_auth;  // --http-auth / --no-http-auth
  bool wait_for_seat = false;
  std::string project;
};

using EnvPairs = std::vector<std::pair<std::string, std::string>>;

// An --env-file: VAR=VAL lines; blank lines and lines starting with '#' are skipped;
// the value is taken as written (no quotes removed), like `docker run --env-file`.
// Throws CliError(usage) naming FILE:LINE.
EnvPairs parse_env_file(std::string_view text, std::string_view file_name);

// The POST /api/v1/jobs body for the flags, with env_file's entries applied before
// -e's (so -e wins). Throws CliError(usage) naming the option for a bad value.
nlohmann::json job_request(const RunArgs& args, const EnvPairs& env_file = {});

// A -v/--volume value added to the request's volumes, secret_volumes or disk_volumes.
// Throws CliError(usage).
void add_volume(nlohmann::json& request, std::string_view spec);

// A --life-span or bump-life-span DURATION in whole minutes, rounded up. A unit is
// required ("90" alone could mean seconds or minutes). Throws CliError(usage).
std::int64_t duration_minutes(std::string_view option, std::string_view text);

// A --schedule-timeout in seconds (a plain number is seconds). Throws CliError(usage).
double duration_seconds(std::string_view option, std::string_view text);

// 1440 -> "1d", 90 -> "1h30m"; null or missing -> "".
std::string format_minutes(const nlohmann::json& minutes);

// An argv list for people, quoted like a POSIX shell where needed; a string as it is.
std::string shell_join(const nlohmann::json& argv);

// --- ps ----------------------------------------------------------------------

struct PsArgs {
  bool all = false;
  std::vector<std::string> statuses;
  std::string name;
  std::vector<std::string> tags;
  std::vector<std::string> owners;  // ME means the caller
  std::string since;
  std::string until;
  std::vector<std::string> projects;
  bool recent_first = false;
};

// The GET /api/v1/jobs query: status=active unless -a or -s, times as UTC ISO-8601.
// Throws CliError(usage) for an unreadable --since/--until.
QueryParams ps_query(const PsArgs& args, SysTime now);

inline constexpr std::string_view kPsColumns =
    "id,name,status,when,image,owner,project,preset,tags,description,command,life_span,exit_code,restarts";
inline constexpr std::string_view kPsDefaultFormat = "id,name,status,when,image,owner,command";

// --format's comma-separated column names, checked against kPsColumns. Throws CliError(usage).
std::vector<std::string> parse_columns(std::string_view format);

// When the job got to its current status: its start, end or creation, by status.
const nlohmann::json& when_of(const nlohmann::json& job);

// "just now", "5m ago", "3h ago", "2d ago"; older than 30 days (or in the future) the
// time itself. Empty for null.
std::string ago(const nlohmann::json& time, SysTime now);

// One cell of `neuro ps`.
std::string job_cell(const nlohmann::json& job, std::string_view column, SysTime now);

// The `neuro ps` table (with a header even when there are no jobs).
std::string render_jobs(const nlohmann::json& jobs, const std::vector<std::string>& columns, SysTime now, bool color);

// --- following a job ---------------------------------------------------------

bool is_finished(std::string_view status);

// "pending Creating", "pending Pulling: image:bb:1", "running", "failed Error (exit code 1)".
std::string status_line(const nlohmann::json& item);

// What has been printed of a job's status history while following it.
struct Transitions {
  std::size_t printed = 0;  // items of "statuses" printed
  std::string last;         // the last line printed
};
// The job's status items not printed yet, as status_line()s: those of its "statuses"
// past t.printed, or, when it has none, its "history" when that differs from t.last.
std::vector<std::string> new_transitions(const nlohmann::json& job, Transitions& t);

// What `neuro run` exits with once the job is finished: the job's exit code, or
// kJobCouldNotRun with a message saying why when it has none (or one a process cannot
// exit with). message is empty for a job that succeeded.
struct JobOutcome {
  int exit_code = 0;
  std::string message;
};
JobOutcome job_outcome(const nlohmann::json& job);

// --- status ------------------------------------------------------------------

// `neuro status`: the job's spec, state and times, then its status history.
std::string render_job_status(const nlohmann::json& job, SysTime now, bool color);

// TIME, STATUS, REASON, DESCRIPTION, EXIT CODE for a list of status items.
std::string render_status_history(const nlohmann::json& statuses, bool color);

}  // namespace neurod::cli

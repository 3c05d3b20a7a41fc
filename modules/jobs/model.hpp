// The job model: the validated spec a user submits, statuses and their history, and
// the JSON shapes of the API (README.md here). Pure logic: no database, no HTTP.
#pragma once

#include "config/global.hpp"
#include "core/units.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::jobs {

enum class Status { pending, suspended, running, succeeded, failed, cancelled };
std::string_view to_string(Status s);
std::optional<Status> parse_status(std::string_view s);
inline bool is_finished(Status s) {
  return s == Status::succeeded || s == Status::failed || s == Status::cancelled;
}

enum class RestartPolicy { never, on_failure, always };
std::string_view to_string(RestartPolicy p);

struct StorageVolume {
  std::string uri;  // canonical storage://cluster/project/path
  std::string dst_path;
  bool read_only = true;
};
struct SecretVolume {
  std::string uri;  // canonical secret://cluster/project/key
  std::string dst_path;
};
struct DiskVolume {
  std::string uri;
  std::string dst_path;
  bool read_only = true;
};

struct Resources {
  double cpu = 0;
  std::uint64_t memory = 0;
  bool shm = false;
  std::uint64_t shm_bytes = 0;  // from the preset; 0: the runtime's default
  int gpu = 0;
  std::string gpu_model;
};

// What a user asked for, after validation and defaults.
struct JobSpec {
  std::string image;  // as given ("image:bb:1" or an engine reference)
  std::vector<std::string> command;
  std::vector<std::string> entrypoint;
  std::vector<std::pair<std::string, std::string>> env;  // sorted by name
  std::string working_dir;
  bool tty = false;
  std::string name;
  std::string description;
  std::vector<std::string> tags;  // sorted, unique
  std::string project;
  std::string preset;  // empty: explicit resources
  Resources resources;
  std::optional<int> max_run_time_minutes;
  RestartPolicy restart_policy = RestartPolicy::never;
  double schedule_timeout = 0;  // seconds
  int priority = 0;             // -1 low, 0 normal, 1 high
  std::optional<int> http_port;
  bool http_requires_auth = true;
  bool wait_for_jobs_quota = false;
  std::vector<StorageVolume> volumes;
  std::map<std::string, std::string> secret_env;  // VAR -> canonical secret URI
  std::vector<SecretVolume> secret_volumes;
  std::vector<DiskVolume> disk_volumes;
};

// Defaults and limits of validation (from the module config).
struct SpecLimits {
  Duration default_schedule_timeout = std::chrono::minutes(5);
  std::optional<int> default_max_run_time_minutes = 24 * 60;
  std::size_t max_env_bytes = 128 * 1024;
  std::size_t max_env_vars = 1000;
  std::size_t max_command_bytes = 64 * 1024;
};

// Resolves a resource URI written by the user ("storage:data", "secret:KEY",
// "storage://c/p/x") to canonical form; throws Error(bad_request) when malformed or of
// another scheme.
using UriResolver = std::function<std::string(std::string_view text, std::string_view scheme)>;

// Parses and validates a submission. Every error is Error(invalid_argument) naming the
// field ("tags[2]: …"); an unknown preset is Error(not_found).
JobSpec parse_spec(const nlohmann::json& body, const std::vector<config::Preset>& presets, const SpecLimits& limits,
                   const UriResolver& resolve_uri);
// The path under which neurod serves a job's HTTP port (monitoring's HTTP proxy):
// "/api/v1/jobs/ID/http/". The job gets it as NEURO_JOB_HTTP_PATH; its JSON as container.http.url.
std::string http_path(const std::string& job_id);
nlohmann::json spec_to_json(const JobSpec& spec);  // the stored form; parse_stored_spec reads it back
JobSpec parse_stored_spec(const nlohmann::json& j);

// An image of the cluster's registry, from the job's `image`: "image:NAME[:TAG|@DIGEST]"
// (the job's project), "image:/PROJECT/NAME…" or "image://CLUSTER/PROJECT/NAME…".
// `repository` is "PROJECT/NAME" (what the registry and the image:// URI name) and
// `reference` the tag or digest with its ':' or '@' (":latest" when none was given).
struct RegistryImage {
  std::string project;
  std::string repository;
  std::string reference;
};
// nullopt for an engine reference (no "image:" prefix). Throws Error
// (bad_request) naming the `image` field for a malformed one or another cluster's.
std::optional<RegistryImage> parse_registry_image(std::string_view image, std::string_view project,
                                                  std::string_view cluster);

// Splits a command line like a POSIX shell does for words (quotes, backslashes), with
// no expansion. Throws Error(invalid_argument) on an unterminated quote.
std::vector<std::string> shell_split(std::string_view text);

// The rules of reference §1.1.
bool valid_job_name(std::string_view name);

struct StatusItem {
  Status status = Status::pending;
  std::string reason;
  std::string description;
  std::optional<int> exit_code;
  std::int64_t time_ms = 0;
};

// A job as the API shows it.
struct Job {
  std::string id;
  std::string owner;
  std::string cluster;
  std::string executor;  // the runtime that runs it, once known
  std::int64_t created_ms = 0;
  JobSpec spec;
  std::vector<StatusItem> statuses;  // oldest first; never empty
  std::vector<std::string> gpu_ids;
  int attempt = 0;
  double price_per_hour = 0;

  const StatusItem& current() const { return statuses.back(); }
  std::optional<std::int64_t> started_ms() const;
  std::optional<std::int64_t> finished_ms() const;
  int restarts() const;
  double run_time_seconds(std::int64_t now_ms) const;
  std::string uri() const;  // job://cluster/project/id
};

std::string format_time_ms(std::int64_t ms);  // RFC 3339 with milliseconds, UTC
std::optional<std::int64_t> parse_time_ms(std::string_view text);
nlohmann::json to_json(const StatusItem& s);
nlohmann::json to_json(const Job& job, std::int64_t now_ms, bool with_statuses = true);

}  // namespace neurod::jobs

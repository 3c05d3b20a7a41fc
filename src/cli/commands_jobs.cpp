// neuro run, ps, status, logs, kill, bump-life-span, also under `neuro job …`
// (modules/jobs/README.md: Endpoints).
#include "cli/api_path.hpp"
#include "cli/commands.hpp"
#include "cli/jobs_format.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace neurod::cli {

namespace {

namespace chr = std::chrono;
using nlohmann::json;

constexpr auto kPollInterval = chr::milliseconds(200);

SysTime now() { return chr::time_point_cast<chr::milliseconds>(chr::system_clock::now()); }

std::string job_path(std::string_view job) { return api("/jobs/" + path_segment(job)); }

// --- streaming the log -------------------------------------------------------

// The client for log requests: the same server and token as ctx's own. It is a second
// one because a followed log may stay quiet for hours, longer than any --timeout.
http::Client& log_client(Context& ctx) {
  static std::unique_ptr<http::Client> client;
  if (!client) {
    http::ClientOptions opts;
    opts.token = ctx.settings().token;
    client = std::make_unique<http::Client>(ctx.settings().url, std::move(opts));
  }
  return *client;
}

struct LogRequest {
  std::string id;
  std::optional<std::string> since;  // UTC ISO-8601
  bool timestamps = false;
  bool follow = false;
};

// GET /jobs/{id}/log into out as it arrives, until the server ends the answer (for a
// follow: when the job finishes).
void stream_log(Context& ctx, const LogRequest& req, std::ostream& out) {
  auto& client = log_client(ctx);
  auto timeout = parse_duration(ctx.options.timeout);
  client.set_timeout(req.follow || !timeout ? Duration(0) : *timeout);  // 0: no limit
  auto target = with_query(job_path(req.id) + "/log",
                           {{"since", req.since},
                            {"timestamps", req.timestamps ? std::optional<std::string>("true") : std::nullopt},
                            {"follow", req.follow ? std::optional<std::string>("true") : std::nullopt}});
  if (ctx.options.verbose) std::cerr << "> GET " << client.url().str() << target << std::endl;
  try {
    auto r = client.stream(
        "GET", target,
        [&out](std::string_view chunk) {
          out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
          out.flush();
          return true;
        },
        {}, {{"Accept", "text/plain"}},
        // An error's JSON is collected for the message instead of printed as the log.
        [](const http::ClientResponse& head) { return head.status >= 200 && head.status < 300; });
    if (ctx.options.verbose) std::cerr << "< " << r.status << std::endl;
    if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  } catch (const Error& e) {
    if (ctx.options.verbose) std::cerr << "< failed: " << e.what() << std::endl;
    throw;
  }
}

// --- run ---------------------------------------------------------------------

// Ctrl-C while following stops following, not the job. The client blocks inside a read
// that a signal does not interrupt (asio retries it), so a flag checked between chunks
// would wait for the job's next line: the handler says so and exits itself.
char g_interrupt_message[512];
std::size_t g_interrupt_length = 0;

extern "C" void on_interrupt(int) {
  // Only async-signal-safe calls here: write(2) and _exit(2). stdout is flushed per chunk.
  auto ignored = ::write(STDERR_FILENO, g_interrupt_message, g_interrupt_length);
  (void)ignored;
  ::_exit(kStoppedFollowing);
}

// Returns what SIGINT did before, for restore_interrupt().
struct sigaction stop_following_on_interrupt(const std::string& id) {
  auto text = fmt::format(
      "\nStopped following; the job keeps running. `neuro logs -f {0}` to follow again, `neuro kill {0}` to stop "
      "it.\n",
      id);
  g_interrupt_length = std::min(text.size(), sizeof g_interrupt_message);
  std::memcpy(g_interrupt_message, text.data(), g_interrupt_length);
  struct sigaction sa {};
  struct sigaction before {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &before);
  // A shell starts background jobs with SIGINT ignored: leave it so.
  if (before.sa_handler == SIG_IGN) sigaction(SIGINT, &before, nullptr);
  return before;
}

// Polls the job, printing its status changes to stderr; once it runs (or has finished)
// streams its log to logs; returns the finished job.
json follow_job(Context& ctx, json job, std::ostream& logs) {
  const auto id = cell(job, "id");
  Transitions printed;
  bool streamed = false;
  std::optional<std::string> since;  // where to go on when a follow ended before the job did
  for (;;) {
    for (const auto& line : new_transitions(job, printed)) std::cerr << line << std::endl;
    auto status = cell(job, "status");
    bool finished = is_finished(status);
    if (finished && streamed) return job;
    if (status == "running" || finished) {
      stream_log(ctx, {id, since, false, true}, logs);
      streamed = true;
      // The server ends a follow when the job finishes (restarts included); if the job
      // goes on (neurod restarted, a proxy cut the connection), the next round asks for
      // what came after this point.
      since = format_iso(now());
      if (finished) return job;
      job = ctx.get_json(job_path(id));
      if (is_finished(cell(job, "status"))) {
        for (const auto& line : new_transitions(job, printed)) std::cerr << line << std::endl;
        return job;
      }
    }
    std::this_thread::sleep_for(kPollInterval);
    job = ctx.get_json(job_path(id));
  }
}

std::string read_file(const std::string& path, std::string_view option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError(Exit::usage, fmt::format("{}: cannot read {}: {}", option, path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct RunOptions {
  RunArgs args;
  std::vector<std::string> env_files;
  bool detach = false;
};

int run_job(Context& ctx, const RunOptions& o) {
  EnvPairs file_env;
  for (const auto& f : o.env_files) {
    auto entries = parse_env_file(read_file(f, "--env-file"), f);
    file_env.insert(file_env.end(), entries.begin(), entries.end());
  }
  auto body = job_request(o.args, file_env);
  auto job = ctx.send_json("POST", api("/jobs"), body);
  auto id = cell(job, "id");
  if (id.empty()) throw CliError(Exit::server, "the server's answer to POST /api/v1/jobs has no job id");
  if (o.detach) {
    if (ctx.json_output())
      print_json(job);
    else
      std::cout << id << std::endl;
    return code(Exit::ok);
  }

  std::cerr << "Job ID: " << id;
  if (auto name = cell(job, "name"); !name.empty()) std::cerr << "  Name: " << name;
  std::cerr << std::endl;
  auto before = stop_following_on_interrupt(id);
  // With -o json stdout carries the finished job alone, so the log goes to stderr.
  auto& logs = ctx.json_output() ? std::cerr : std::cout;
  auto with_hint = [&id](const CliError& err) {
    return CliError(err.exit(),
                    std::string(err.what()) + fmt::format("\nThe job was submitted: `neuro status {0}` shows it, "
                                                          "`neuro logs -f {0}` follows it again.",
                                                          id));
  };
  try {
    job = follow_job(ctx, std::move(job), logs);
  } catch (const CliError& e) {
    throw with_hint(e);
  } catch (const Error& e) {
    throw with_hint(from_error(e));
  }
  sigaction(SIGINT, &before, nullptr);
  if (ctx.json_output()) print_json(job);
  auto outcome = job_outcome(job);
  if (!outcome.message.empty()) std::cerr << "neuro: " << outcome.message << std::endl;
  return outcome.exit_code;
}

// --- ps, status, logs, kill, bump-life-span ----------------------------------

int run_ps(Context& ctx, const PsArgs& a, const std::string& format, bool quiet) {
  auto columns = parse_columns(format);
  auto t = now();
  auto answer = ctx.get_json(with_query(api("/jobs"), ps_query(a, t)));
  const auto& jobs = answer.is_array() ? answer : field(answer, "jobs");
  if (!jobs.is_array()) throw CliError(Exit::server, "the server's answer to GET /api/v1/jobs has no \"jobs\" list");
  if (ctx.json_output()) {
    print_json(jobs);
  } else if (quiet) {
    for (const auto& job : jobs) std::cout << cell(job, "id") << "\n";
    std::cout << std::flush;
  } else {
    std::cout << render_jobs(jobs, columns, t, ctx.color()) << std::flush;
  }
  return code(Exit::ok);
}

int run_status(Context& ctx, const std::string& job_ref) {
  auto job = ctx.get_json(job_path(job_ref));
  if (!field(job, "statuses").is_array()) {
    auto s = ctx.get_json(job_path(cell(job, "id").empty() ? job_ref : cell(job, "id")) + "/statuses");
    job["statuses"] = field(s, "statuses");
  }
  if (ctx.json_output())
    print_json(job);
  else
    std::cout << render_job_status(job, now(), ctx.color()) << std::flush;
  return code(Exit::ok);
}

int run_logs(Context& ctx, const std::string& job_ref, bool follow, const std::string& since, bool timestamps) {
  LogRequest req{job_ref, std::nullopt, timestamps, follow};
  if (!since.empty()) {
    req.since = parse_time_arg(since, now());
    if (!req.since)
      throw CliError(Exit::usage, fmt::format("--since: \"{}\" is not a date/time (2024-05-01T12:30Z) or a "
                                              "duration meaning that long ago (10m, 2h)",
                                              since));
  }
  // Ask for the job first: a wrong name or a missing permission is then reported as
  // such, and a name is pinned to the job it means now.
  auto job = ctx.get_json(job_path(job_ref));
  if (auto id = cell(job, "id"); !id.empty()) req.id = id;
  stream_log(ctx, req, std::cout);
  return code(Exit::ok);
}

// Without a signal: cancel (the job ends as cancelled). With one: POST …/kill?signal=,
// which only delivers it (the job decides what to do; SIGKILL ends it as failed, 137).
int run_kill(Context& ctx, const std::vector<std::string>& jobs, const std::string& signal) {
  std::optional<Exit> failed;
  json results = json::array();
  for (const auto& job : jobs) {
    try {
      if (signal.empty())
        ctx.send_json("DELETE", job_path(job));
      else
        ctx.send_json("POST", job_path(job) + "/kill?signal=" + path_segment(signal));
      results.push_back({{"job", job}, {"killed", true}});
      if (!ctx.json_output()) std::cout << job << std::endl;
    } catch (const CliError& e) {
      if (!failed) failed = e.exit();
      results.push_back({{"job", job}, {"killed", false}, {"error", e.what()}});
      std::cerr << "neuro: cannot kill " << job << ": " << e.what() << std::endl;
    }
  }
  if (ctx.json_output()) print_json(results);
  return code(failed.value_or(Exit::ok));
}

int run_bump(Context& ctx, const std::string& job_ref, const std::string& duration) {
  auto minutes = duration_minutes("DURATION", duration);
  auto job = ctx.send_json("PUT", job_path(job_ref) + "/max_run_time_minutes",
                           json{{"additional_max_run_time_minutes", minutes}});
  if (ctx.json_output()) {
    print_json(job);
  } else {
    auto id = cell(job, "id").empty() ? job_ref : cell(job, "id");
    auto span = format_minutes(field(job, "max_run_time_minutes"));
    std::cout << "Life span of " << id << ": " << (span.empty() ? "?" : span) << "." << std::endl;
  }
  return code(Exit::ok);
}

// --- registration ------------------------------------------------------------

// A repeatable option takes one value each time it is given: `-e A=1 IMAGE` must not read
// IMAGE as a second variable.
CLI::Option* repeatable(CLI::Option* option) { return option->allow_extra_args(false); }

void add_run(CLI::App& parent, Context& ctx) {
  auto* run = parent.add_subcommand("run", "Run a job: submit it, follow its status and log, exit with its exit code");
  auto o = std::make_shared<RunOptions>();
  auto& a = o->args;
  // Everything after IMAGE is the job's command, options included: `neuro run img ls -l`.
  run->positionals_at_end();
  run->add_option("IMAGE", a.image, "image:NAME[:TAG] or an engine reference such as ubuntu:24.04")->required();
  run->add_option("COMMAND", a.command, "The command and its arguments (after `--`), sent as an argv list");
  run->add_option("-s,--preset", a.preset, "Resource preset (default: the server's first)")->type_name("PRESET");
  run->add_option("-n,--name", a.name, "Job name: lower-case letters, digits and '-'")->type_name("NAME");
  repeatable(run->add_option("--tag", a.tags, "A tag (repeatable)"))->type_name("TAG");
  run->add_option("-d,--description", a.description, "Free-form description")->type_name("TEXT");
  repeatable(run->add_option("-e,--env", a.env, "VAR=VALUE, or VAR=secret:KEY for a secret (repeatable)"))
      ->type_name("VAR=VAL");
  repeatable(run->add_option("--env-file", o->env_files, "VAR=VALUE lines; '#' starts a comment (repeatable)"))
      ->type_name("FILE");
  repeatable(run->add_option(
                 "-v,--volume", a.volumes,
                 "storage:PATH:/MOUNT[:ro|rw], secret:KEY:/FILE or disk:ID:/MOUNT[:ro|rw] (default ro; repeatable)"))
      ->type_name("SPEC");
  auto entrypoint = std::make_shared<std::string>();
  auto* ep = run->add_option("--entrypoint", *entrypoint, "Override the image's entrypoint (split like a shell)")
                 ->type_name("CMD");
  run->add_option("-w,--workdir", a.workdir, "Working directory inside the job (absolute)")->type_name("DIR");
  run->add_flag("-t,--tty", a.tty, "Allocate a terminal");
  run->add_flag("-x,--extshm", a.extshm, "Extended /dev/shm");
  run->add_option("--cpu", a.cpu, "CPUs (instead of a preset)")->type_name("N");
  run->add_option("--memory", a.memory, "Memory, e.g. 4GiB (instead of a preset)")->type_name("SIZE");
  run->add_option("--gpu", a.gpu, "NVIDIA GPUs (instead of a preset)")->type_name("N");
  run->add_option("--gpu-model", a.gpu_model, "GPU model, e.g. A100 (with --gpu)")->type_name("MODEL");
  run->add_option("--life-span", a.life_span, "Run time limit, e.g. 1d, 8h, 90m (default: the server's)")
      ->type_name("DURATION");
  run->add_option("--schedule-timeout", a.schedule_timeout, "Give up when not started within this, e.g. 5m")
      ->type_name("DURATION");
  run->add_option("--restart", a.restart, "Restart policy")->check(CLI::IsMember({"never", "on-failure", "always"}));
  run->add_option("--priority", a.priority, "Scheduling priority")->check(CLI::IsMember({"low", "normal", "high"}));
  run->add_option("--http-port", a.http_port, "Expose this port of the job over HTTP")->type_name("PORT");
  auto http_auth = std::make_shared<bool>(false);
  auto no_http_auth = std::make_shared<bool>(false);
  auto* ha = run->add_flag("--http-auth", *http_auth, "Require authentication for the HTTP port (the default)");
  run->add_flag("--no-http-auth", *no_http_auth, "Let anyone reach the HTTP port")->excludes(ha);
  run->add_flag("--wait-for-seat", a.wait_for_seat, "Queue the job when the running-jobs quota is full");
  run->add_option("-p,--project", a.project, "Project (default: your own)")->type_name("PROJECT");
  run->add_flag("--detach", o->detach, "Print the job id and exit instead of following the job");
  on_run(run, ctx, [&ctx, o, entrypoint, ep, http_auth, no_http_auth] {
    if (ep->count() > 0) o->args.entrypoint = *entrypoint;
    if (*http_auth) o->args.http_auth = true;
    if (*no_http_auth) o->args.http_auth = false;
    return run_job(ctx, *o);
  });
}

constexpr const char* kJobHelp = "Job id or name";

void add_ps(CLI::App& parent, Context& ctx, const std::string& name, const std::string& alias) {
  auto* ps = parent.add_subcommand(name, "List jobs (by default the active ones: pending and running)");
  if (!alias.empty()) ps->alias(alias);
  auto a = std::make_shared<PsArgs>();
  auto format = std::make_shared<std::string>(kPsDefaultFormat);
  auto quiet = std::make_shared<bool>(false);
  auto* all = ps->add_flag("-a,--all", a->all, "Jobs in every status");
  repeatable(ps->add_option("-s,--status", a->statuses, "Only this status (repeatable; also active, finished)"))
      ->check(
          CLI::IsMember({"pending", "suspended", "running", "succeeded", "failed", "cancelled", "active", "finished"}))
      ->type_name("STATUS")
      ->excludes(all);
  ps->add_option("-n,--name", a->name, "Only jobs of this name")->type_name("NAME");
  repeatable(ps->add_option("-t,--tag", a->tags, "Only jobs with this tag (repeatable: all of them)"))
      ->type_name("TAG");
  // -o is the global --output here as everywhere: the owner filter is --owner only.
  repeatable(ps->add_option("--owner", a->owners, "Only this owner's jobs; ME for yours (repeatable)"))
      ->type_name("USER");
  ps->add_option("--since", a->since, "Created at or after: a date/time, or a duration meaning that long ago")
      ->type_name("TIME");
  ps->add_option("--until", a->until, "Created at or before: a date/time, or a duration meaning that long ago")
      ->type_name("TIME");
  repeatable(ps->add_option("-p,--project", a->projects, "Only this project's jobs (repeatable)"))
      ->type_name("PROJECT");
  ps->add_flag("--recent-first", a->recent_first, "Newest first");
  ps->add_option("--format", *format, std::string("Columns, comma-separated, from: ") + std::string(kPsColumns))
      ->type_name("COLUMNS")
      ->capture_default_str();
  ps->add_flag("-q,--quiet", *quiet, "Print the ids only");
  on_run(ps, ctx, [&ctx, a, format, quiet] { return run_ps(ctx, *a, *format, *quiet); });
}

void add_status(CLI::App& parent, Context& ctx) {
  auto* status = parent.add_subcommand("status", "Show a job: its spec, state, times and status history");
  auto job = std::make_shared<std::string>();
  status->add_option("JOB", *job, kJobHelp)->required();
  on_run(status, ctx, [&ctx, job] { return run_status(ctx, *job); });
}

void add_logs(CLI::App& parent, Context& ctx) {
  auto* logs = parent.add_subcommand("logs", "Print a job's log");
  auto job = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  auto since = std::make_shared<std::string>();
  auto timestamps = std::make_shared<bool>(false);
  logs->add_option("JOB", *job, kJobHelp)->required();
  logs->add_flag("-f,--follow", *follow, "Keep printing until the job finishes");
  logs->add_option("--since", *since, "From this date/time, or this long ago (10m, 2h)")->type_name("TIME");
  logs->add_flag("--timestamps", *timestamps, "Prefix each line with its time");
  on_run(logs, ctx,
         [&ctx, job, follow, since, timestamps] { return run_logs(ctx, *job, *follow, *since, *timestamps); });
}

void add_kill(CLI::App& parent, Context& ctx) {
  auto* kill = parent.add_subcommand("kill", "Stop jobs (they end as cancelled), or send them a signal (--signal)");
  auto jobs = std::make_shared<std::vector<std::string>>();
  auto signal = std::make_shared<std::string>();
  kill->add_option("-s,--signal", *signal, "Send this signal instead of cancelling (TERM, SIGUSR1, 9, …)")
      ->type_name("SIG");
  kill->add_option("JOB", *jobs, "Job ids or names")->required();
  on_run(kill, ctx, [&ctx, jobs, signal] { return run_kill(ctx, *jobs, *signal); });
}

void add_bump(CLI::App& parent, Context& ctx) {
  auto* bump = parent.add_subcommand("bump-life-span", "Extend a job's run time limit");
  auto job = std::make_shared<std::string>();
  auto duration = std::make_shared<std::string>();
  bump->add_option("JOB", *job, kJobHelp)->required();
  bump->add_option("DURATION", *duration, "How much longer, e.g. 2h or 1d (rounded up to minutes)")->required();
  on_run(bump, ctx, [&ctx, job, duration] { return run_bump(ctx, *job, *duration); });
}

}  // namespace

void register_job_commands(CLI::App& app, Context& ctx) {
  // The everyday verbs at the top level, as in the reference CLI…
  add_run(app, ctx);
  add_ps(app, ctx, "ps", "");
  add_status(app, ctx);
  add_logs(app, ctx);
  add_kill(app, ctx);
  add_bump(app, ctx);
  // …and all of them under `neuro job`.
  auto* job = app.add_subcommand("job", "Run, list, inspect and stop jobs (also as top-level commands)");
  job->require_subcommand(1);
  add_run(*job, ctx);
  add_ps(*job, ctx, "ls", "ps");
  add_status(*job, ctx);
  add_logs(*job, ctx);
  add_kill(*job, ctx);
  add_bump(*job, ctx);
}

}  // namespace neurod::cli

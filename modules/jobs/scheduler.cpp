#include "modules/jobs/scheduler.hpp"

#include "core/errors.hpp"
#include "core/metrics.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "modules/auth/quotas.hpp"
#include "modules/executor/log_store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace neurod::jobs {

namespace {

std::int64_t to_ms(executor::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string cores(double c) { return fmt::format("{:g}", c); }

// "secret://cluster/project/a/b" → {"project", "a/b"}.
std::pair<std::string, std::string> project_and_path(std::string_view uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string_view::npos) return {"", std::string(uri)};
  auto rest = uri.substr(scheme + 3);
  auto cluster = rest.find('/');
  if (cluster == std::string_view::npos) return {"", ""};
  rest.remove_prefix(cluster + 1);
  auto project = rest.find('/');
  if (project == std::string_view::npos) return {std::string(rest), ""};
  return {std::string(rest.substr(0, project)), std::string(rest.substr(project + 1))};
}

std::vector<auth::Subject> subjects_of(const Job& job) {
  // A service account's usage counts against its owner (the part before the first '/').
  auto owner = job.owner.substr(0, job.owner.find('/'));
  return {{"user", owner}, {"project", job.spec.project}};
}

}  // namespace

Scheduler::Scheduler(db::Database& db, auth::Quotas* quotas, events::Bus& bus, ExecutorView exec,
                     SchedulerOptions options)
    : db_(db), quotas_(quotas), bus_(bus), exec_(std::move(exec)), options_(std::move(options)) {
  if (auto* m = options_.metrics) {
    decisions_ = &m->counter("neurod_scheduler_decisions_total",
                             "Scheduling decisions, by outcome (admitted, waiting, failed) and reason: fits; waiting for\n"
                             "capacity, running_jobs_quota or no_executor; failed for unschedulable, schedule_timeout,\n"
                             "quota_exhausted or container_config_error. A job waiting for the same thing counts once.");
    wait_seconds_ = &m->histogram("neurod_scheduler_wait_seconds",
                                  "Seconds from submission (or a restart's due time) to running: queueing, pulling, starting.",
                                  {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600})
                         .with({});
  }
}

void Scheduler::decided(const std::string& outcome, const std::string& reason) {
  if (decisions_) decisions_->with({{"outcome", outcome}, {"reason", reason}}).inc();
}

std::vector<Scheduler::RunningJob> Scheduler::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

Scheduler::~Scheduler() { stop(); }

std::string Scheduler::executor_kind() const { return exec_.runner ? std::string(exec_.runner->kind()) : ""; }

void Scheduler::start() {
  auto rows = db_.read([this](soci::session& s) { return repo::live(s, options_.cluster); });
  for (const auto& [status, n] : db_.read([](soci::session& s) { return repo::count_by_status(s); }))
    if (auto st = parse_status(status); st && is_finished(*st)) finished_[status] = n;
  {
    std::lock_guard lock(mu_);
    stats_.finished = finished_;
  }
  std::vector<executor::Known> known;
  for (auto& r : rows) {
    Live l{std::move(r.job), std::move(r.run), 0};
    l.waiting_since = l.run.restart_at.value_or(l.job.created_ms);
    if (l.run.launched) known.push_back({l.job.id, l.run.attempt});
    auto id = l.job.id;
    live_.emplace(id, std::move(l));
  }
  if (exec_.runner) {
    if (!known.empty()) spdlog::info("jobs: re-adopting {} jobs from the executor", known.size());
    // Its events queue up until the thread runs; nothing is launched before they are
    // handled, so no job starts twice.
    exec_.runner->adopt(known);
  } else {
    for (auto& [id, l] : live_)
      if (l.run.launched) {
        // Launched on an executor this process no longer runs: nothing can report on it.
        spdlog::warn("jobs: job {} was running on an executor that is not loaded now", id);
      }
  }
  thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void Scheduler::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
}

void Scheduler::submitted(const Job& job) {
  std::lock_guard lock(mu_);
  commands_.push_back(Command{Command::Kind::submitted, job.id, {}, 0, job, nullptr});
  cv_.notify_all();
}

void Scheduler::cancel(const std::string& id, const std::string& reason) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(mu_);
    commands_.push_back(Command{Command::Kind::cancel, id, reason, 0, std::nullopt, done});
    cv_.notify_all();
  }
  if (fut.wait_for(std::chrono::seconds(30)) != std::future_status::ready)
    throw Error(errc::unavailable, "the scheduler is busy; the cancellation is queued and will happen shortly");
  fut.get();
}

void Scheduler::set_life_span(const std::string& id, int minutes) {
  std::lock_guard lock(mu_);
  commands_.push_back(Command{Command::Kind::life_span, id, {}, minutes, std::nullopt, nullptr});
  cv_.notify_all();
}

void Scheduler::on_executor_event(const executor::Event& e) {
  std::lock_guard lock(mu_);
  events_.push_back(e);
  cv_.notify_all();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::optional<std::string> Scheduler::unschedulable(const JobSpec& spec) const {
  if (!exec_.runner) return std::nullopt;  // remote nodes are not known here yet
  const auto& cap = exec_.capacity;
  const auto& r = spec.resources;
  if (r.gpu > 0) {
    std::size_t matching = 0;
    for (const auto& g : cap.gpus)
      if (r.gpu_model.empty() || g.model.find(r.gpu_model) != std::string::npos) ++matching;
    if (cap.gpus.empty())
      return fmt::format("the job asks for {} GPU{} but this node has no GPUs", r.gpu, r.gpu == 1 ? "" : "s");
    if (matching < static_cast<std::size_t>(r.gpu))
      return fmt::format("the job asks for {} GPU{}{} but this node has {}", r.gpu, r.gpu == 1 ? "" : "s",
                         r.gpu_model.empty() ? "" : " of model " + r.gpu_model, matching);
  }
  if (r.cpu > cap.cpu + 1e-9)
    return fmt::format("the job asks for {} CPU but this node has {}", cores(r.cpu), cores(cap.cpu));
  if (r.memory > cap.memory)
    return fmt::format("the job asks for {} of memory but this node has {}", format_size_human(r.memory),
                       format_size_human(cap.memory));
  return std::nullopt;
}

Scheduler::ResolvedImage Scheduler::resolve_image(const JobSpec& spec, const std::string& owner) const {
  std::optional<RegistryImage> img;
  try {
    img = parse_registry_image(spec.image, spec.project, options_.cluster);
  } catch (const Error&) {
    return {spec.image, std::nullopt};  // validated at submission; the engine names what is wrong
  }
  if (!img) return {spec.image, std::nullopt};
  const auto& reg = options_.image_registry;
  if (reg == "local" || (reg.empty() && !options_.local_registry))
    return {img->repository.substr(img->project.size() + 1) + img->reference, std::nullopt};
  if (!reg.empty()) return {reg + "/" + img->repository + img->reference, std::nullopt};
  auto host = options_.local_registry();
  ResolvedImage out{host + "/" + img->repository + img->reference, std::nullopt};
  if (options_.pull_auth) out.auth = options_.pull_auth(owner, img->repository);
  return out;
}

std::vector<std::pair<std::string, std::string>> Scheduler::job_env(const Job& job) const {
  auto env = job.spec.env;
  env.emplace_back("NEURO_JOB_ID", job.id);
  env.emplace_back("NEURO_JOB_NAME", job.spec.name);
  env.emplace_back("NEURO_JOB_OWNER", job.owner);
  env.emplace_back("NEURO_JOB_PROJECT", job.spec.project);
  env.emplace_back("NEURO_JOB_PRESET", job.spec.preset);
  env.emplace_back("NEURO_JOB_CLUSTER", job.cluster);
  if (job.spec.http_port) {
    env.emplace_back("NEURO_JOB_HTTP_PORT", std::to_string(*job.spec.http_port));
    // Where neurod serves it (monitoring's HTTP proxy): the app's base URL path.
    env.emplace_back("NEURO_JOB_HTTP_PATH", http_path(job.id));
  }
  return env;
}

void Scheduler::run(std::stop_token stop) {
  auto last_tick = std::chrono::steady_clock::now() - options_.tick;
  while (!stop.stop_requested()) {
    std::deque<Command> commands;
    std::deque<executor::Event> events;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, options_.tick, [&] { return !commands_.empty() || !events_.empty(); });
      commands.swap(commands_);
      events.swap(events_);
    }
    if (stop.stop_requested()) break;
    bool changed = !commands.empty() || !events.empty();
    for (auto& c : commands) {
      try {
        handle(c);
        if (c.done) c.done->set_value();
      } catch (...) {
        if (c.done) c.done->set_exception(std::current_exception());
        try {
          throw;
        } catch (const std::exception& e) {
          spdlog::error("jobs: scheduler command on {} failed: {}", c.id, e.what());
        }
      }
    }
    for (const auto& e : events) {
      try {
        handle(e);
      } catch (const std::exception& ex) {
        spdlog::error("jobs: handling the executor event of {} failed: {}", e.job_id, ex.what());
      }
    }
    auto now_steady = std::chrono::steady_clock::now();
    bool tick = now_steady - last_tick >= options_.tick;
    if (!changed && !tick) continue;
    if (tick) last_tick = now_steady;
    auto now = now_ms();
    try {
      if (tick) enforce(now);
      admit(now);
      if (tick) meter(now, false);
    } catch (const std::exception& e) {
      spdlog::error("jobs: scheduler pass failed (retrying): {}", e.what());
    }
    // Finished jobs with nothing at the executor need no more attention.
    std::erase_if(live_, [](const auto& kv) { return is_finished(kv.second.job.current().status) && !kv.second.run.launched; });
    Stats s;
    s.finished = finished_;
    std::vector<RunningJob> running;
    for (const auto& [id, l] : live_) {
      auto st = l.job.current().status;
      if (st == Status::pending) ++s.pending;
      if (st == Status::pending && !l.run.launched) ++s.waiting;
      if (st == Status::running) ++s.running;
      if (st == Status::running && l.run.launched)
        running.push_back({l.job.id, l.job.spec.name, l.job.owner, l.job.spec.project, l.run.gpu_ids});
      if (l.run.launched) {
        ++s.launched;
        s.cpu_used += l.job.spec.resources.cpu;
        s.memory_used += l.job.spec.resources.memory;
        s.gpus_used += l.run.gpu_ids.size();
      }
    }
    std::lock_guard lock(mu_);
    stats_ = std::move(s);
    running_ = std::move(running);
  }
  // Charge what ran up to now, so a restart does not lose it.
  try {
    meter(now_ms(), true);
  } catch (const std::exception& e) {
    spdlog::warn("jobs: final metering failed: {}", e.what());
  }
}

void Scheduler::handle(Command& c) {
  if (c.kind == Command::Kind::submitted) {
    Live l{std::move(*c.job), {}, 0};
    l.waiting_since = l.job.created_ms;
    live_.emplace(c.id, std::move(l));
    return;
  }
  auto it = live_.find(c.id);
  if (it == live_.end()) return;  // finished: nothing to do
  auto& l = it->second;
  if (c.kind == Command::Kind::life_span) {
    l.job.spec.max_run_time_minutes = c.minutes;
    return;
  }
  if (is_finished(l.job.current().status)) return;
  stop_job(l, c.reason, c.reason == "UserRequested" ? "cancelled by the user" : "");
}

// Marks the job finished at once (people see it cancelled) and asks the executor to end
// it; the attempt's resources stay held until the executor reports its exit.
void Scheduler::stop_job(Live& l, const std::string& reason, const std::string& description) {
  StatusItem item{Status::cancelled, reason, description, std::nullopt, now_ms()};
  if (reason != "UserRequested" && reason != "LifeSpanEnded" && reason != "QuotaExhausted") item.status = Status::failed;
  transition(l, item);
  if (l.run.launched && exec_.runner) {
    exec_.runner->stop(l.job.id, exec_.stop_grace);
  } else if (exec_.logs) {
    exec_.logs->close(l.job.id);
  }
}

void Scheduler::transition(Live& l, StatusItem item) {
  const auto& cur = l.job.current();
  if (is_finished(cur.status)) return;  // history never continues after a finished status
  if (cur.status == item.status && cur.reason == item.reason && cur.description == item.description &&
      cur.exit_code == item.exit_code)
    return;
  // Runner events carry the engine's clock and reach us in order: keep the history
  // monotonic even when two of them are a few milliseconds apart the wrong way.
  if (item.time_ms < cur.time_ms) item.time_ms = cur.time_ms;
  auto seq = db_.write([&](soci::session& s) {
    auto n = repo::append_status(s, l.job.id, item);
    repo::save_run_state(s, l.job.id, l.run);
    return n;
  });
  if (is_finished(item.status)) ++finished_[std::string(to_string(item.status))];
  if (item.status == Status::running && cur.status == Status::pending && wait_seconds_)
    wait_seconds_->observe(static_cast<double>(std::max<std::int64_t>(0, item.time_ms - l.waiting_since)) / 1000.0);
  l.job.statuses.push_back(item);
  nlohmann::json data = {{"job_id", l.job.id},
                         {"name", l.job.spec.name},
                         {"owner", l.job.owner},
                         {"project", l.job.spec.project},
                         {"cluster", l.job.cluster},
                         {"status", to_string(item.status)},
                         {"reason", item.reason},
                         {"description", item.description},
                         {"exit_code", item.exit_code ? nlohmann::json(*item.exit_code) : nlohmann::json()},
                         {"time", format_time_ms(item.time_ms)},
                         {"restarts", l.job.restarts()}};
  bus_.publish(events::Event{"job.status", seq, std::move(data)});
}

void Scheduler::save_run(Live& l) {
  db_.write([&](soci::session& s) { repo::save_run_state(s, l.job.id, l.run); });
}

void Scheduler::finish_attempt(Live& l) {
  charge(l, now_ms());
  if (l.run.launched && quotas_) {
    auto subjects = subjects_of(l.job);
    try {
      quotas_->release(subjects, auth::Resource::running_jobs, 1);
    } catch (const std::exception& e) {
      spdlog::warn("jobs: releasing the running-jobs quota of {} failed: {}", l.job.id, e.what());
    }
  }
  l.run.launched = false;
  l.run.gpu_ids.clear();
  l.job.gpu_ids.clear();
}

void Scheduler::handle(const executor::Event& e) {
  auto it = live_.find(e.job_id);
  if (it == live_.end()) {
    // Not ours any more (finished and forgotten): make sure nothing is left behind.
    if (e.kind == executor::Event::Kind::exited && exec_.runner) exec_.runner->remove(e.job_id);
    return;
  }
  auto& l = it->second;
  if (e.attempt != l.run.attempt) return;  // a late event of an earlier attempt
  auto t = to_ms(e.time);
  auto status = l.job.current().status;
  switch (e.kind) {
    case executor::Event::Kind::pulling:
      if (status == Status::pending) transition(l, {Status::pending, "Pulling", e.message, std::nullopt, t});
      return;
    case executor::Event::Kind::running:
      if (status == Status::pending) transition(l, {Status::running, "", "", std::nullopt, t});
      return;
    case executor::Event::Kind::exited: break;
  }
  // exited
  bool was_launched = l.run.launched;
  finish_attempt(l);
  if (is_finished(status)) {
    // Cancelled (or failed) while it ran: the record is final; only clean up.
    save_run(l);
  } else {
    bool ok = e.reason == "Completed";
    StatusItem item{ok ? Status::succeeded : Status::failed, e.reason, e.message, e.exit_code, t};
    if (e.reason == "Killed") item = {Status::cancelled, "UserRequested", e.message, e.exit_code, t};
    bool restart = l.job.spec.restart_policy == RestartPolicy::always ||
                   (l.job.spec.restart_policy == RestartPolicy::on_failure && !ok);
    if (e.reason == "NotFound" || e.reason == "Killed" || e.reason == "ErrImagePull" ||
        e.reason == "InvalidImageName")
      restart = false;
    if (auto lim = l.job.spec.max_run_time_minutes; lim && l.job.run_time_seconds(t) >= *lim * 60.0) restart = false;
    if (restart && was_launched) {
      int n = l.run.attempt + 1;
      auto backoff = options_.restart_backoff_min * (1LL << std::min(n - 1, 20));
      if (backoff > options_.restart_backoff_max) backoff = options_.restart_backoff_max;
      l.run.attempt = n;
      l.job.attempt = n;
      l.run.restart_at = t + backoff.count();
      l.waiting_since = *l.run.restart_at;
      auto why = ok ? std::string("it exited with code 0") : e.message.empty() ? e.reason : e.message;
      transition(l, {Status::pending, "Restarting",
                     fmt::format("restart {} in {} ({}; restart policy {})", n, format_duration(backoff), why,
                                 to_string(l.job.spec.restart_policy)),
                     e.exit_code, t});
    } else {
      transition(l, item);
    }
  }
  if (exec_.runner) exec_.runner->remove(l.job.id);
  if (is_finished(l.job.current().status)) {
    if (exec_.logs) exec_.logs->close(l.job.id);
    live_.erase(it);
  }
}

void Scheduler::admit(std::int64_t now) {
  std::vector<Live*> waiting;
  double cpu_used = 0;
  std::uint64_t mem_used = 0;
  std::set<std::string> gpus_used;
  for (auto& [id, l] : live_) {
    if (l.run.launched) {
      cpu_used += l.job.spec.resources.cpu;
      mem_used += l.job.spec.resources.memory;
      gpus_used.insert(l.run.gpu_ids.begin(), l.run.gpu_ids.end());
    } else if (l.job.current().status == Status::pending && (!l.run.restart_at || *l.run.restart_at <= now)) {
      waiting.push_back(&l);
    }
  }
  // Higher priority first, then the longest waiting.
  std::sort(waiting.begin(), waiting.end(), [](const Live* a, const Live* b) {
    if (a->job.spec.priority != b->job.spec.priority) return a->job.spec.priority > b->job.spec.priority;
    if (a->waiting_since != b->waiting_since) return a->waiting_since < b->waiting_since;
    return a->job.id < b->job.id;
  });
  auto wait = [&](Live& l, const std::string& why, const std::string& what) {
    const auto& cur = l.job.current();
    if (cur.reason == "Scheduling" && cur.description == why) return;
    decided("waiting", what);
    transition(l, {Status::pending, "Scheduling", why, std::nullopt, now});
  };
  for (Live* lp : waiting) {
    auto& l = *lp;
    const auto& spec = l.job.spec;
    if (!exec_.runner) {
      wait(l, "no executor runs in this process: enable the compute role (roles: [control-plane, compute])",
           "no_executor");
      announce_cannot_start(l, "capacity", l.job.current().description);  // notifications
      continue;
    }
    if (auto why = unschedulable(spec)) {
      decided("failed", "unschedulable");
      stop_job(l, "Unschedulable", *why);
      continue;
    }
    const auto& cap = exec_.capacity;
    std::vector<std::string> gpu_ids;
    for (const auto& g : cap.gpus) {
      if (static_cast<int>(gpu_ids.size()) == spec.resources.gpu) break;
      if (gpus_used.count(g.id)) continue;
      if (!spec.resources.gpu_model.empty() && g.model.find(spec.resources.gpu_model) == std::string::npos) continue;
      gpu_ids.push_back(g.id);
    }
    if (cpu_used + spec.resources.cpu > cap.cpu + 1e-9 || mem_used + spec.resources.memory > cap.memory ||
        static_cast<int>(gpu_ids.size()) < spec.resources.gpu) {
      std::string why = fmt::format("waiting for resources: it needs {} CPU, {} memory", cores(spec.resources.cpu),
                                    format_size_human(spec.resources.memory));
      if (spec.resources.gpu) why += fmt::format(", {} GPU", spec.resources.gpu);
      why += fmt::format("; free now: {} CPU, {}", cores(std::max(0.0, cap.cpu - cpu_used)),
                         format_size_human(cap.memory > mem_used ? cap.memory - mem_used : 0));
      if (!cap.gpus.empty()) why += fmt::format(", {} GPU", cap.gpus.size() - gpus_used.size());
      wait(l, why, "capacity");
      announce_cannot_start(l, "capacity", why);  // notifications
      continue;
    }
    // Volumes and secrets are resolved at every launch (a restart sees the secret's value
    // of now); one that cannot be fails the job, as Kubernetes does.
    auto resolved = resolve_volumes(l.job);
    if (const auto* why = std::get_if<std::string>(&resolved)) {
      decided("failed", "container_config_error");
      stop_job(l, "CreateContainerConfigError", *why);
      continue;
    }
    if (quotas_) {
      auto subjects = subjects_of(l.job);
      bool exhausted = false;
      for (const auto& s : subjects) {
        auto cpu_left = quotas_->remaining(s, auth::Resource::cpu_hours);
        auto gpu_left = spec.resources.gpu > 0 ? quotas_->remaining(s, auth::Resource::gpu_hours) : std::nullopt;
        if ((cpu_left && *cpu_left <= 0) || (gpu_left && *gpu_left <= 0)) {
          auto why = fmt::format("the {} {} has no {} left in its quota", s.kind, s.name,
                                 cpu_left && *cpu_left <= 0 ? "CPU-hours" : "GPU-hours");
          announce_cannot_start(l, "quota", why);  // notifications
          decided("failed", "quota_exhausted");
          stop_job(l, "QuotaExhausted", why);
          exhausted = true;
          break;
        }
      }
      if (exhausted) continue;
      try {
        quotas_->reserve(subjects, auth::Resource::running_jobs, 1);
      } catch (const Error& e) {
        if (e.code() != errc::forbidden) throw;
        wait(l, std::string("waiting for the running-jobs quota: ") + e.what(), "running_jobs_quota");
        announce_cannot_start(l, "quota", l.job.current().description);  // notifications
        continue;
      }
    }
    cpu_used += spec.resources.cpu;
    mem_used += spec.resources.memory;
    gpus_used.insert(gpu_ids.begin(), gpu_ids.end());
    l.run.gpu_ids = gpu_ids;
    l.job.gpu_ids = gpu_ids;
    decided("admitted", "fits");
    launch(l, std::move(std::get<Resolved>(resolved)));
  }
}

std::variant<Scheduler::Resolved, std::string> Scheduler::resolve_volumes(const Job& job) const {
  const auto& s = job.spec;
  Resolved r;
  if (!s.disk_volumes.empty()) {
    const auto& d = s.disk_volumes.front();
    return fmt::format("disk volumes are not supported yet ({} at {})", d.uri, d.dst_path);
  }
  for (const auto& v : s.volumes) {
    if (!options_.storage_mount)
      return fmt::format("storage volume {} at {}: the storage module is not enabled on this cluster", v.uri,
                         v.dst_path);
    try {
      auto host = options_.storage_mount(v.uri, v.read_only);
      r.mounts.push_back({host.string(), v.dst_path, v.read_only});
    } catch (const std::exception& e) {
      return fmt::format("storage volume {} at {}: {}", v.uri, v.dst_path, e.what());
    }
  }
  // Messages name the secret, never its value.
  auto value_of = [&](const std::string& uri, const std::string& use, std::string& value) -> std::optional<std::string> {
    auto [project, key] = project_and_path(uri);
    if (!options_.secret_value)
      return fmt::format("secret {} ({}) cannot be read, needed for {}: the secrets module is not enabled on this cluster",
                         key, uri, use);
    std::optional<std::string> found;
    try {
      found = options_.secret_value(uri);
    } catch (const std::exception& e) {
      return fmt::format("secret {} ({}) cannot be read, needed for {}: {}", key, uri, use, e.what());
    }
    if (!found) return fmt::format("secret {} does not exist in project {} ({}), needed for {}", key, project, uri, use);
    value = std::move(*found);
    return std::nullopt;
  };
  for (const auto& [var, uri] : s.secret_env) {
    std::string value;
    if (auto why = value_of(uri, "the environment variable " + var, value)) return *why;
    if (value.find('\0') != std::string::npos)
      return fmt::format("secret {} contains a NUL byte, which an environment variable ({}) cannot hold", uri, var);
    r.env.emplace_back(var, std::move(value));
  }
  for (const auto& v : s.secret_volumes) {
    std::string value;
    if (auto why = value_of(v.uri, "the file " + v.dst_path, value)) return *why;
    r.secret_files.push_back({v.dst_path, std::move(value)});
  }
  return r;
}

void Scheduler::launch(Live& l, Resolved resolved) {
  l.run.launched = true;
  l.run.restart_at.reset();
  l.run.executor = std::string(exec_.runner->kind());
  l.job.executor = l.run.executor;
  // Recorded before the executor hears of it: after a crash, adopt() finds the attempt
  // or reports it missing; it is never launched a second time.
  save_run(l);
  executor::LaunchSpec spec;
  const auto& s = l.job.spec;
  spec.job_id = l.job.id;
  spec.attempt = l.run.attempt;
  spec.job_name = s.name;
  spec.owner = l.job.owner;
  spec.project = s.project;
  spec.cluster = l.job.cluster;
  spec.preset = s.preset;
  auto image = resolve_image(s, l.job.owner);
  spec.image = std::move(image.reference);
  spec.registry_auth = std::move(image.auth);
  spec.entrypoint = s.entrypoint;
  spec.command = s.command;
  spec.env = job_env(l.job);
  for (auto& kv : resolved.env) spec.env.push_back(std::move(kv));
  spec.mounts = std::move(resolved.mounts);
  spec.secret_files = std::move(resolved.secret_files);
  spec.working_dir = s.working_dir;
  spec.tty = s.tty;
  spec.cpu = s.resources.cpu;
  spec.memory = s.resources.memory;
  spec.shm = s.resources.shm_bytes ? s.resources.shm_bytes : s.resources.shm ? s.resources.memory / 2 : 0;
  spec.gpu_ids = l.run.gpu_ids;
  spdlog::info("jobs: launching {} (attempt {}) on {}", l.job.id, l.run.attempt, exec_.runner->kind());
  exec_.runner->launch(spec);
}

void Scheduler::enforce(std::int64_t now) {
  std::vector<std::string> ids;
  for (auto& [id, l] : live_) ids.push_back(id);
  for (const auto& id : ids) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    auto& l = it->second;
    const auto& cur = l.job.current();
    if (is_finished(cur.status)) continue;
    auto lim = l.job.spec.max_run_time_minutes;
    if (lim && l.job.run_time_seconds(now) >= *lim * 60.0) {
      stop_job(l, "LifeSpanEnded", fmt::format("it ran for its whole life span ({} min)", *lim));
      continue;
    }
    // Notifications: one job.life_span_ending per job and life span (a longer one warns again).
    if (lim && cur.status == Status::running && options_.life_span_warning.count() > 0) {
      auto left_ms = static_cast<std::int64_t>(*lim * 60'000.0 - l.job.run_time_seconds(now) * 1000.0);
      auto key = fmt::format("life_span:{}", *lim);
      if (left_ms <= options_.life_span_warning.count() && !l.announced.count(key)) {
        l.announced.insert(key);
        bus_.publish(events::Event{"job.life_span_ending", 0,
                                   {{"event_id", fmt::format("job.life_span_ending:{}:{}", l.job.id, *lim)},
                                    {"job_id", l.job.id},
                                    {"name", l.job.spec.name},
                                    {"owner", l.job.owner},
                                    {"project", l.job.spec.project},
                                    {"cluster", l.job.cluster},
                                    {"max_run_time_minutes", *lim},
                                    {"seconds_left", std::max<std::int64_t>(0, left_ms / 1000)},
                                    {"time", format_time_ms(now)}}});
      }
    }
    if (cur.status == Status::pending && !l.run.launched && (!l.run.restart_at || *l.run.restart_at <= now) &&
        now - l.waiting_since > static_cast<std::int64_t>(l.job.spec.schedule_timeout * 1000)) {
      auto what = cur.reason == "Scheduling" && !cur.description.empty() ? ": " + cur.description : "";
      decided("failed", "schedule_timeout");
      stop_job(l, "ScheduleTimeout",
               fmt::format("it could not be scheduled within its schedule timeout of {}s{}",
                           l.job.spec.schedule_timeout, what));
    }
  }
}

void Scheduler::charge(Live& l, std::int64_t now) {
  if (!quotas_) return;
  auto run_ms = static_cast<std::int64_t>(l.job.run_time_seconds(now) * 1000);
  auto delta = run_ms - l.run.charged_ms;
  if (delta <= 0) return;
  double hours = static_cast<double>(delta) / 3'600'000.0;
  auto subjects = subjects_of(l.job);
  quotas_->consume(subjects, auth::Resource::cpu_hours, hours * l.job.spec.resources.cpu);
  if (l.job.spec.resources.gpu > 0)
    quotas_->consume(subjects, auth::Resource::gpu_hours, hours * l.job.spec.resources.gpu);
  l.run.charged_ms = run_ms;
}

void Scheduler::meter(std::int64_t now, bool force) {
  if (!quotas_) return;
  if (!force && now - last_meter_ < options_.metering_interval.count()) return;
  last_meter_ = now;
  std::vector<std::string> ids;
  for (auto& [id, l] : live_)
    if (l.job.current().status == Status::running) ids.push_back(id);
  for (const auto& id : ids) {
    auto& l = live_.at(id);
    charge(l, now);
    save_run(l);
    if (force) continue;
    for (const auto& s : subjects_of(l.job)) {
      auto cpu_left = quotas_->remaining(s, auth::Resource::cpu_hours);
      auto gpu_left =
          l.job.spec.resources.gpu > 0 ? quotas_->remaining(s, auth::Resource::gpu_hours) : std::nullopt;
      if ((cpu_left && *cpu_left <= 0) || (gpu_left && *gpu_left <= 0)) {
        stop_job(l, "QuotaExhausted",
                 fmt::format("the {} {} used up its {} quota", s.kind, s.name,
                             cpu_left && *cpu_left <= 0 ? "CPU-hours" : "GPU-hours"));
        break;
      }
    }
  }
}

// Notifications (modules/notifications): a pending job that waits for capacity or quota
// is announced once per reason; the event id lets the subscriber drop a repeat after a
// restart of neurod (this set is in memory only).
void Scheduler::announce_cannot_start(Live& l, const std::string& why, const std::string& description) {
  auto key = "cannot_start:" + why;
  if (l.announced.count(key)) return;
  l.announced.insert(key);
  bus_.publish(events::Event{"job.cannot_start", 0,
                             {{"event_id", fmt::format("job.cannot_start:{}:{}", l.job.id, why)},
                              {"job_id", l.job.id},
                              {"name", l.job.spec.name},
                              {"owner", l.job.owner},
                              {"project", l.job.spec.project},
                              {"cluster", l.job.cluster},
                              {"reason", why},
                              {"description", description},
                              {"time", format_time_ms(now_ms())}}});
}

}  // namespace neurod::jobs

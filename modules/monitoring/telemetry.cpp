#include "modules/monitoring/telemetry.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "db/rows.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>

namespace neurod::monitoring {

namespace {

using nlohmann::json;

constexpr double kMiB = 1024.0 * 1024.0;
// The most points one history answer holds; a wider range needs a larger step.
constexpr std::int64_t kMaxPoints = 10000;

std::int64_t ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

std::int64_t to_ms(executor::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string rfc3339_ms(std::int64_t t) { return format_rfc3339(t * 1'000'000, 3); }

double round_to(double v, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

}  // namespace

json Sample::top_json() const {
  json j = {{"cpu", round_to(cpu, 4)},
            {"memory", round_to(static_cast<double>(memory) / kMiB, 3)},
            {"memory_bytes", memory},
            {"timestamp", static_cast<double>(time_ms) / 1000.0}};
  if (memory_limit) j["memory_limit_bytes"] = *memory_limit;
  if (gpu_duty_cycle) j["gpu_duty_cycle"] = static_cast<int>(std::lround(*gpu_duty_cycle));
  if (gpu_memory) {
    j["gpu_memory"] = round_to(static_cast<double>(*gpu_memory) / kMiB, 3);
    j["gpu_memory_bytes"] = *gpu_memory;
  }
  if (gpu_memory_total) j["gpu_memory_total_bytes"] = *gpu_memory_total;
  return j;
}

// --- Watcher ------------------------------------------------------------------------

void Watcher::open(std::shared_ptr<http::WebSocket> ws) {
  std::lock_guard lock(mu_);
  ws_ = std::move(ws);
  if (finished_) ws_->close(1000, "the job finished");
}

void Watcher::send(const std::string& message) {
  std::lock_guard lock(mu_);
  if (ws_ && !finished_ && ws_->is_open()) ws_->send_text(message);
}

void Watcher::finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (ws_) ws_->close(1000, "the job finished");
}

// --- Telemetry ----------------------------------------------------------------------

Telemetry::Telemetry(db::Database& db, executor::Runner* runner, RunningFn running, TelemetryOptions options,
                     metrics::Registry& m)
    : db_(db), runner_(runner), running_(std::move(running)), options_(std::move(options)) {
  gpus_ = [smi = options_.nvidia_smi] { return executor::query_gpu_usage(smi); };
  auto per_job = [this](auto value) {
    return [this, value] {
      metrics::Registry::Samples out;
      std::lock_guard lock(mu_);
      for (const auto& [id, s] : jobs_) {
        if (s.recent.empty()) continue;
        auto v = value(s);
        if (!v) continue;
        out.push_back({{{"job_id", id}, {"owner", s.job.owner}, {"project", s.job.project}}, *v});
      }
      return out;
    };
  };
  m.callback_gauge("neurod_job_cpu_cores", "CPU cores a running job used over the last sample interval.",
                   per_job([](const JobState& s) -> std::optional<double> { return s.recent.back().cpu; }));
  m.callback_counter("neurod_job_cpu_seconds_total", "CPU seconds a running job's current attempt has used.",
                     per_job([](const JobState& s) -> std::optional<double> {
                       if (!s.prev || !s.prev->cpu_seconds) return std::nullopt;
                       return *s.prev->cpu_seconds;
                     }));
  m.callback_gauge(
      "neurod_job_memory_bytes", "Memory a running job uses now (without reclaimable page cache).",
      per_job([](const JobState& s) -> std::optional<double> { return static_cast<double>(s.recent.back().memory); }));
  m.callback_gauge("neurod_job_gpu_duty_cycle_percent",
                   "Mean utilisation of a running job's GPUs over nvidia-smi's last sample period.",
                   per_job([](const JobState& s) -> std::optional<double> { return s.recent.back().gpu_duty_cycle; }));
  m.callback_gauge("neurod_job_gpu_memory_bytes", "GPU memory a running job's GPUs hold.",
                   per_job([](const JobState& s) -> std::optional<double> {
                     if (!s.recent.back().gpu_memory) return std::nullopt;
                     return static_cast<double>(*s.recent.back().gpu_memory);
                   }));
  m.callback_gauge("neurod_telemetry_watchers", "Open /top connections.", [this] {
    std::size_t n = 0;
    std::lock_guard lock(mu_);
    for (const auto& [id, list] : watchers_)
      for (const auto& w : list) n += w.expired() ? 0 : 1;
    return metrics::Registry::Samples{{{}, static_cast<double>(n)}};
  });
}

Telemetry::~Telemetry() = default;

void Telemetry::run(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  auto sweep_every = std::clamp<std::int64_t>(ms(options_.history_retention) / 10, 1000, 3'600'000);
  std::int64_t last_sweep = 0;
  auto next = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    auto now = now_ms();
    try {
      if (runner_) tick(now);
    } catch (const std::exception& e) {
      spdlog::warn("monitoring: telemetry sample failed: {}", e.what());
    }
    if (now - last_sweep >= sweep_every) {
      try {
        auto n = sweep(now);
        if (n > 0) spdlog::info("monitoring: deleted {} telemetry rows past history_retention", n);
        last_sweep = now;
      } catch (const std::exception& e) {
        spdlog::warn("monitoring: telemetry retention sweep failed: {}", e.what());
      }
    }
    next += options_.sample_interval;
    auto steady_now = std::chrono::steady_clock::now();
    if (next < steady_now) next = steady_now;  // fell behind: do not catch up in a burst
    std::unique_lock lock(mu);
    cv.wait_until(lock, stop, next, [] { return false; });
  }
  try {
    flush();
  } catch (const std::exception& e) {
    spdlog::warn("monitoring: writing the last telemetry steps failed: {}", e.what());
  }
}

void Telemetry::add_to_step(JobState& s, const Sample& sample, std::vector<Row>& rows) const {
  auto step = ms(options_.history_step);
  auto start = sample.time_ms / step * step;
  if (s.step.start != start) {
    if (s.step.samples > 0) rows.push_back({s.job.id, step, s.step});
    s.step = Step{};
    s.step.start = start;
  }
  auto& st = s.step;
  ++st.samples;
  st.cpu_sum += sample.cpu;
  st.cpu_max = std::max(st.cpu_max, sample.cpu);
  st.memory_sum += static_cast<double>(sample.memory);
  st.memory_max = std::max(st.memory_max, sample.memory);
  if (sample.gpu_duty_cycle) {
    ++st.gpu_samples;
    st.gpu_sum += *sample.gpu_duty_cycle;
    st.gpu_max = std::max(st.gpu_max, *sample.gpu_duty_cycle);
  }
  if (sample.gpu_memory) st.gpu_memory_max = std::max(st.gpu_memory_max.value_or(0), *sample.gpu_memory);
}

void Telemetry::tick(std::int64_t now) {
  auto running = running_();
  // GPUs: one nvidia-smi run for all of them, only when a running job has any.
  std::map<std::string, executor::GpuUsage> gpus;
  bool any_gpu = std::any_of(running.begin(), running.end(), [](const RunningJob& j) { return !j.gpu_ids.empty(); });
  if (any_gpu && gpus_)
    for (auto& g : gpus_()) gpus[g.id] = g;

  // Runner calls outside the lock: the docker runner may ask the engine.
  std::vector<std::pair<RunningJob, std::optional<executor::Usage>>> measured;
  measured.reserve(running.size());
  for (auto& job : running) {
    std::optional<executor::Usage> u;
    try {
      u = runner_ ? runner_->usage(job.id) : std::nullopt;
    } catch (const std::exception& e) {
      spdlog::debug("monitoring: usage of {}: {}", job.id, e.what());
    }
    measured.emplace_back(std::move(job), std::move(u));
  }

  std::vector<Row> rows;
  std::vector<std::pair<std::shared_ptr<Watcher>, std::string>> sends;
  {
    std::lock_guard lock(mu_);
    rows.swap(leftover_);
    std::set<std::string> seen;
    for (auto& [job, u] : measured) {
      seen.insert(job.id);
      auto& s = jobs_[job.id];
      s.job = job;
      if (!u) continue;
      // CPU cores from the delta since the previous sample; the first sample only primes it.
      std::optional<double> cpu;
      if (s.prev && s.prev->cpu_seconds && u->cpu_seconds) {
        auto dt = std::chrono::duration<double>(u->time - s.prev->time).count();
        auto used = *u->cpu_seconds - *s.prev->cpu_seconds;
        if (dt > 0.05 && used >= 0) cpu = used / dt;
      }
      bool primed = s.prev.has_value();
      s.prev = u;
      if (!primed && u->cpu_seconds) continue;
      Sample sample;
      sample.time_ms = to_ms(u->time);
      sample.cpu = cpu.value_or(0);
      sample.memory = u->memory.value_or(0);
      sample.memory_limit = u->memory_limit;
      if (!job.gpu_ids.empty()) {
        double util = 0;
        std::uint64_t used = 0, total = 0;
        std::size_t found = 0;
        for (const auto& id : job.gpu_ids) {
          auto it = gpus.find(id);
          if (it == gpus.end()) continue;
          ++found;
          util += it->second.utilization;
          used += it->second.memory_used;
          total += it->second.memory_total;
        }
        if (found > 0) {
          sample.gpu_duty_cycle = util / static_cast<double>(found);
          sample.gpu_memory = used;
          sample.gpu_memory_total = total;
        }
      }
      s.recent.push_back(sample);
      while (!s.recent.empty() && s.recent.front().time_ms < sample.time_ms - ms(options_.recent_window))
        s.recent.pop_front();
      add_to_step(s, sample, rows);
      if (auto w = watchers_.find(job.id); w != watchers_.end()) {
        auto message = sample.top_json().dump();
        for (const auto& weak : w->second)
          if (auto watcher = weak.lock()) sends.emplace_back(std::move(watcher), message);
      }
    }
    // Jobs no longer running: their last step goes to the history.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      if (it->second.step.samples > 0) rows.push_back({it->first, ms(options_.history_step), it->second.step});
      it = jobs_.erase(it);
    }
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      std::erase_if(it->second, [](const std::weak_ptr<Watcher>& w) { return w.expired(); });
      it = it->second.empty() ? watchers_.erase(it) : std::next(it);
    }
  }
  for (const auto& [watcher, message] : sends) watcher->send(message);
  (void)now;
  if (!rows.empty()) write(rows);
}

void Telemetry::flush() {
  std::vector<Row> rows;
  {
    std::lock_guard lock(mu_);
    rows.swap(leftover_);
    for (auto& [id, s] : jobs_) {
      if (s.step.samples > 0) rows.push_back({id, ms(options_.history_step), s.step});
      s.step = Step{};
    }
  }
  if (!rows.empty()) write(rows);
}

void Telemetry::write(const std::vector<Row>& rows) {
  bool pg = db_.dialect() == db::Dialect::postgresql;
  // A step written before a restart and continued after it: the two parts merge.
  auto greatest = [pg](const char* col) {
    return pg ? fmt::format("GREATEST(job_telemetry.{0}, excluded.{0})", col)
              : fmt::format("MAX(COALESCE(job_telemetry.{0}, excluded.{0}), COALESCE(excluded.{0}, job_telemetry.{0}))",
                            col);
  };
  auto weighted = [](const char* col) {
    return fmt::format(
        "(job_telemetry.{0} * job_telemetry.samples + excluded.{0} * excluded.samples) / "
        "(job_telemetry.samples + excluded.samples)",
        col);
  };
  std::string sql = fmt::format(
      "INSERT INTO job_telemetry (job_id, time, step_ms, samples, cpu_avg, cpu_max, memory_avg, memory_max, "
      "gpu_duty_cycle_avg, gpu_duty_cycle_max, gpu_memory_max) VALUES (:j, :t, :s, :n, :ca, :cm, :ma, :mm, :ga, :gm, "
      ":gmm) ON CONFLICT (job_id, time) DO UPDATE SET cpu_avg = {}, memory_avg = {}, gpu_duty_cycle_avg = {}, "
      "cpu_max = {}, memory_max = {}, gpu_duty_cycle_max = {}, gpu_memory_max = {}, "
      "samples = job_telemetry.samples + excluded.samples",
      weighted("cpu_avg"), weighted("memory_avg"),
      pg ? "COALESCE(" + weighted("gpu_duty_cycle_avg") + ", excluded.gpu_duty_cycle_avg)"
         : "COALESCE(" + weighted("gpu_duty_cycle_avg") + ", excluded.gpu_duty_cycle_avg)",
      greatest("cpu_max"), greatest("memory_max"), greatest("gpu_duty_cycle_max"), greatest("gpu_memory_max"));
  db_.write([&](soci::session& s) {
    for (const auto& r : rows) {
      const auto& st = r.step;
      std::int64_t time = st.start, step = r.step_ms;
      int n = st.samples;
      double cpu_avg = st.cpu_sum / n, cpu_max = st.cpu_max;
      auto mem_avg = static_cast<std::int64_t>(st.memory_sum / n);
      auto mem_max = static_cast<std::int64_t>(st.memory_max);
      double gpu_avg = st.gpu_samples ? st.gpu_sum / st.gpu_samples : 0, gpu_max = st.gpu_max;
      soci::indicator gpu_ind = st.gpu_samples ? soci::i_ok : soci::i_null;
      auto gpu_mem = static_cast<std::int64_t>(st.gpu_memory_max.value_or(0));
      soci::indicator gpu_mem_ind = st.gpu_memory_max ? soci::i_ok : soci::i_null;
      s << sql, soci::use(r.job_id), soci::use(time), soci::use(step), soci::use(n), soci::use(cpu_avg),
          soci::use(cpu_max), soci::use(mem_avg), soci::use(mem_max), soci::use(gpu_avg, gpu_ind),
          soci::use(gpu_max, gpu_ind), soci::use(gpu_mem, gpu_mem_ind);
    }
  });
}

std::int64_t Telemetry::sweep(std::int64_t now) {
  std::int64_t cutoff = now - ms(options_.history_retention);
  return db_.write([&](soci::session& s) {
    std::int64_t n = 0;
    soci::rowset<soci::row> rs = (s.prepare << "SELECT COUNT(*) FROM job_telemetry WHERE time < :c", soci::use(cutoff));
    for (const auto& r : rs) n = db::as_int64(r, 0);
    if (n > 0) s << "DELETE FROM job_telemetry WHERE time < :c", soci::use(cutoff);
    return n;
  });
}

std::shared_ptr<Watcher> Telemetry::watch(const std::string& job_id) {
  auto w = std::make_shared<Watcher>(job_id);
  std::lock_guard lock(mu_);
  watchers_[job_id].push_back(w);
  return w;
}

void Telemetry::job_finished(const std::string& job_id) {
  std::vector<std::shared_ptr<Watcher>> list;
  {
    std::lock_guard lock(mu_);
    // Off the gauges now (the bus handler must be quick: its last step is written later).
    if (auto it = jobs_.find(job_id); it != jobs_.end()) {
      if (it->second.step.samples > 0) leftover_.push_back({job_id, ms(options_.history_step), it->second.step});
      jobs_.erase(it);
    }
    auto it = watchers_.find(job_id);
    if (it == watchers_.end()) return;
    for (const auto& weak : it->second)
      if (auto w = weak.lock()) list.push_back(std::move(w));
    watchers_.erase(it);
  }
  for (const auto& w : list) w->finish();
}

std::vector<Sample> Telemetry::recent(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return {};
  return {it->second.recent.begin(), it->second.recent.end()};
}

json Telemetry::history(const std::string& job_id, std::int64_t since, std::int64_t until, std::int64_t step) const {
  auto base = ms(options_.history_step);
  bool from_memory = step < base;
  if (!from_memory) step = (step + base - 1) / base * base;  // a multiple of the stored step
  if (step <= 0) step = ms(options_.sample_interval);
  if (until < since) throw Error(errc::bad_request, "until is before since");
  if ((until - since) / step > kMaxPoints)
    throw Error(errc::bad_request, fmt::format("that range holds more than {} steps of {}s: ask for a larger step "
                                               "(at least {}s) or a shorter range",
                                               kMaxPoints, step / 1000.0, ((until - since) / kMaxPoints + 999) / 1000));
  struct Point {
    int samples = 0;
    double cpu_sum = 0, cpu_max = 0, mem_sum = 0;
    std::int64_t mem_max = 0;
    int gpu_samples = 0;
    double gpu_sum = 0, gpu_max = 0;
    std::optional<std::int64_t> gpu_mem_max;
  };
  std::map<std::int64_t, Point> points;
  auto add = [&](std::int64_t t, int n, double cpu_avg, double cpu_max, double mem_avg, std::int64_t mem_max,
                 std::optional<double> gpu_avg, std::optional<double> gpu_max, std::optional<std::int64_t> gpu_mem) {
    auto& p = points[t / step * step];
    p.samples += n;
    p.cpu_sum += cpu_avg * n;
    p.cpu_max = std::max(p.cpu_max, cpu_max);
    p.mem_sum += mem_avg * n;
    p.mem_max = std::max(p.mem_max, mem_max);
    if (gpu_avg) {
      p.gpu_samples += n;
      p.gpu_sum += *gpu_avg * n;
      p.gpu_max = std::max(p.gpu_max, gpu_max.value_or(*gpu_avg));
    }
    if (gpu_mem) p.gpu_mem_max = std::max(p.gpu_mem_max.value_or(0), *gpu_mem);
  };
  if (from_memory) {
    for (const auto& s : recent(job_id)) {
      if (s.time_ms < since || s.time_ms > until) continue;
      std::optional<std::int64_t> gm;
      if (s.gpu_memory) gm = static_cast<std::int64_t>(*s.gpu_memory);
      add(s.time_ms, 1, s.cpu, s.cpu, static_cast<double>(s.memory), static_cast<std::int64_t>(s.memory),
          s.gpu_duty_cycle, s.gpu_duty_cycle, gm);
    }
  } else {
    db_.read([&](soci::session& s) {
      std::int64_t from = since / base * base;
      soci::rowset<soci::row> rs =
          (s.prepare << "SELECT time, samples, cpu_avg, cpu_max, memory_avg, memory_max, gpu_duty_cycle_avg, "
                        "gpu_duty_cycle_max, gpu_memory_max FROM job_telemetry WHERE job_id = :j AND time >= :s AND "
                        "time <= :u ORDER BY time",
           soci::use(job_id), soci::use(from), soci::use(until));
      for (const auto& r : rs)
        add(db::as_int64(r, 0), static_cast<int>(db::as_int64(r, 1)), db::as_double(r, 2), db::as_double(r, 3),
            db::as_double(r, 4), db::as_int64(r, 5), db::as_opt_double(r, 6), db::as_opt_double(r, 7),
            db::as_opt_int64(r, 8));
    });
  }
  auto out = json::array();
  for (const auto& [t, p] : points) {
    json j = {{"time", rfc3339_ms(t)},
              {"timestamp", static_cast<double>(t) / 1000.0},
              {"samples", p.samples},
              {"cpu_avg", round_to(p.cpu_sum / p.samples, 4)},
              {"cpu_max", round_to(p.cpu_max, 4)},
              {"memory_avg_bytes", static_cast<std::int64_t>(p.mem_sum / p.samples)},
              {"memory_max_bytes", p.mem_max}};
    if (p.gpu_samples > 0) {
      j["gpu_duty_cycle_avg"] = round_to(p.gpu_sum / p.gpu_samples, 2);
      j["gpu_duty_cycle_max"] = round_to(p.gpu_max, 2);
    }
    if (p.gpu_mem_max) j["gpu_memory_max_bytes"] = *p.gpu_mem_max;
    out.push_back(std::move(j));
  }
  return {{"job_id", job_id},
          {"since", rfc3339_ms(since)},
          {"until", rfc3339_ms(until)},
          {"step", static_cast<double>(step) / 1000.0},
          {"source", from_memory ? "recent" : "history"},
          {"points", out}};
}

}  // namespace neurod::monitoring

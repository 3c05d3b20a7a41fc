// neuro top JOB: a running job's CPU, memory and GPU use, once a second, from the /top
// WebSocket (modules/monitoring/README.md "Telemetry").
#include "cli/api_path.hpp"
#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "core/times.hpp"
#include "core/units.hpp"
#include "http/ws_client.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <iostream>

namespace neurod::cli {

namespace {

using nlohmann::json;

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

bool finished(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

std::string mib(double v) { return format_size_human(static_cast<std::uint64_t>(v * 1024 * 1024)); }

struct Row {
  std::string time, cpu, memory, gpu, gpu_memory;
};

Row row_of(const json& m) {
  Row r;
  auto ts = m.value("timestamp", 0.0);
  r.time = format_rfc3339(static_cast<std::int64_t>(ts * 1e9), 0);
  r.cpu = fmt::format("{:.2f}", m.value("cpu", 0.0));
  auto memory = m.contains("memory_bytes") ? format_size_human(m.value("memory_bytes", std::uint64_t{0}))
                                           : mib(m.value("memory", 0.0));
  if (m.contains("memory_limit_bytes"))
    memory += " / " + format_size_human(m.value("memory_limit_bytes", std::uint64_t{0}));
  r.memory = memory;
  if (m.contains("gpu_duty_cycle")) r.gpu = fmt::format("{}%", m.value("gpu_duty_cycle", 0));
  if (m.contains("gpu_memory_bytes")) {
    r.gpu_memory = format_size_human(m.value("gpu_memory_bytes", std::uint64_t{0}));
    if (m.contains("gpu_memory_total_bytes"))
      r.gpu_memory += " / " + format_size_human(m.value("gpu_memory_total_bytes", std::uint64_t{0}));
  }
  return r;
}

int run_top(Context& ctx, const std::string& ref) {
  auto job = ctx.get_json(api("/jobs/" + path_segment(ref)));
  std::string id = str(job, "id");
  if (id.empty()) id = ref;
  std::string name = str(job, "name");
  std::string status = str(job, "status");
  if (finished(status)) {
    std::cerr << fmt::format("neuro: job {} has finished ({}); `neuro status {}` shows how", id, status, id)
              << std::endl;
    return code(Exit::ok);
  }

  http::ClientOptions opts;
  opts.token = ctx.settings().token;
  std::string target = api("/jobs/" + path_segment(id) + "/top");
  if (ctx.options.verbose) std::cerr << "> GET (WebSocket) " << ctx.settings().url << target << std::endl;
  std::unique_ptr<http::WebSocketClient> ws;
  try {
    ws = std::make_unique<http::WebSocketClient>(ctx.settings().url, target, opts,
                                                 std::vector<std::string>{"top.apolo.us"});
  } catch (const Error& e) {
    throw from_error(e);
  }

  const bool json_out = ctx.json_output();
  const bool tty = !json_out && ::isatty(STDOUT_FILENO);
  const bool color = tty && ctx.color();
  std::string title = name.empty() ? id : fmt::format("{} ({})", id, name);
  if (tty) std::cout << title << ": waiting for the first sample (Ctrl-C to stop)…" << std::endl;
  std::size_t drawn = tty ? 1 : 0;  // lines of the last frame, redrawn in place
  bool header = false;
  while (auto m = ws->read()) {
    auto j = json::parse(m->data, nullptr, false);
    if (!j.is_object()) continue;
    if (json_out) {
      std::cout << j.dump() << std::endl;
      continue;
    }
    auto r = row_of(j);
    bool gpu = !r.gpu.empty() || !r.gpu_memory.empty();
    if (tty) {
      std::vector<Column> cols = {{"TIME"}, {"CPU", Align::right}, {"MEMORY", Align::right}};
      if (gpu) cols.insert(cols.end(), {{"GPU", Align::right}, {"GPU MEMORY", Align::right}});
      Table t(cols);
      std::vector<std::string> cells = {r.time, r.cpu, r.memory};
      if (gpu) cells.insert(cells.end(), {r.gpu, r.gpu_memory});
      t.add_row(cells);
      auto frame = title + "  (Ctrl-C to stop)\n" + t.render(color);
      // Up over the last frame, clear to the end of the screen, draw this one.
      std::cout << "\033[" << drawn << "F\033[J" << frame << std::flush;
      drawn = static_cast<std::size_t>(std::count(frame.begin(), frame.end(), '\n'));
    } else {
      if (!header) {
        std::cout << fmt::format("{:<20}  {:>6}  {:>20}  {:>4}  {:>20}", "TIME", "CPU", "MEMORY", "GPU", "GPU MEMORY")
                  << "\n";
        header = true;
      }
      std::cout << fmt::format("{:<20}  {:>6}  {:>20}  {:>4}  {:>20}", r.time, r.cpu, r.memory,
                               r.gpu.empty() ? "-" : r.gpu, r.gpu_memory.empty() ? "-" : r.gpu_memory)
                << std::endl;
    }
  }
  int close = ws->close_code();
  if (close != 1000) {
    throw CliError(Exit::unreachable, close
                                          ? fmt::format("the server ended the telemetry stream (close code {})", close)
                                          : "the connection to the server was lost");
  }
  if (!json_out) std::cerr << fmt::format("job {} has finished", id) << std::endl;
  return code(Exit::ok);
}

}  // namespace

void register_top_commands(CLI::App& app, Context& ctx) {
  auto* top = app.add_subcommand(
      "top", "Show a running job's CPU, memory and GPU use once a second, until it finishes (Ctrl-C stops)");
  auto job = std::make_shared<std::string>();
  top->add_option("JOB", *job, "Job id or name")->required();
  on_run(top, ctx, [&ctx, job] { return run_top(ctx, *job); });
}

}  // namespace neurod::cli

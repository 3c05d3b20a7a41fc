#include "cli/jobs_format.hpp"

#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace neurod::cli {

namespace {

namespace chr = std::chrono;
using nlohmann::json;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

CliError usage(std::string message) { return CliError(Exit::usage, std::move(message)); }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::int64_t> to_int(std::string_view s) {
  s = trim(s);
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

std::optional<double> to_double(std::string_view s) {
  s = trim(s);
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

// What the server and the container accept as a variable name.
bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// A whole number of seconds goes out as an integer, so that the body reads naturally.
json seconds_value(double seconds) {
  if (seconds == std::floor(seconds) && seconds < 9e15) return static_cast<std::int64_t>(seconds);
  return seconds;
}

// Table cells are one line each: a description with newlines would break the columns.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::vector<std::string> strings_of(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const auto& v : list) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

// A server time (ISO-8601 string or milliseconds since the epoch) as a time point.
std::optional<SysTime> parse_server_time(const json& value) {
  if (value.is_number_integer()) return SysTime(chr::milliseconds(value.get<std::int64_t>()));
  if (!value.is_string()) return std::nullopt;
  const auto& text = value.get_ref<const std::string&>();
  // A full date-time only: parse_time_arg would read "2h" as a duration.
  if (text.size() < 16 || text[4] != '-' || text[10] != 'T') return std::nullopt;
  auto iso = parse_time_arg(text, SysTime{});  // normalised to "YYYY-MM-DDTHH:MM:SS[.mmm]Z"
  if (!iso) return std::nullopt;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (std::sscanf(iso->c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6) return std::nullopt;
  if (iso->size() > 20 && (*iso)[19] == '.') std::sscanf(iso->c_str() + 20, "%3d", &ms);
  chr::year_month_day ymd{chr::year{y}, chr::month{static_cast<unsigned>(mo)}, chr::day{static_cast<unsigned>(d)}};
  return SysTime(chr::sys_days{ymd}.time_since_epoch() + chr::hours{h} + chr::minutes{mi} + chr::seconds{s} +
                 chr::milliseconds{ms});
}

std::string volume_spec(std::string_view src_key, const json& v, bool with_mode) {
  auto out = cell(v, src_key) + ":" + cell(v, "dst_path");
  if (with_mode) out += field(v, "read_only") == false ? ":rw" : ":ro";
  return out;
}

std::string resources_text(const json& r) {
  std::vector<std::string> parts;
  if (const auto& cpu = field(r, "cpu"); cpu.is_number()) parts.push_back(fmt::format("{:g} CPU", cpu.get<double>()));
  if (const auto& mem = field(r, "memory"); mem.is_number() && mem.get<double>() >= 0) {
    parts.push_back(format_size_human(static_cast<std::uint64_t>(mem.get<double>())) + " memory");
  } else if (const auto& mb = field(r, "memory_mb"); mb.is_number() && mb.get<double>() >= 0) {
    parts.push_back(format_size_human(static_cast<std::uint64_t>(mb.get<double>()) * 1024 * 1024) + " memory");
  }
  if (const auto& gpu = field(r, "nvidia_gpu"); gpu.is_number() && gpu.get<double>() > 0) {
    auto text = fmt::format("{:g} GPU", gpu.get<double>());
    if (auto model = cell(r, "nvidia_gpu_model"); !model.empty()) text += " (" + model + ")";
    parts.push_back(text);
  }
  if (field(r, "shm") == true) parts.emplace_back("extended /dev/shm");
  return join(parts, ", ");
}

std::string seconds_text(const json& seconds) {
  if (!seconds.is_number()) return {};
  auto ms = std::llround(seconds.get<double>() * 1000);
  if (ms >= 1000) ms = (ms + 500) / 1000 * 1000;  // whole seconds past the first one
  return format_duration(Duration(ms));
}

}  // namespace

EnvPairs parse_env_file(std::string_view text, std::string_view file_name) {
  EnvPairs out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    auto eq = line.find('=');
    auto name = eq == std::string_view::npos ? content : trim(line.substr(0, eq));
    if (eq == std::string_view::npos || !valid_env_name(name))
      throw usage(fmt::format("{}:{}: expected VAR=VALUE, where VAR is letters, digits and '_'", file_name, line_no));
    out.emplace_back(std::string(name), std::string(line.substr(eq + 1)));
  }
  return out;
}

void add_volume(json& request, std::string_view spec) {
  auto bad = [&](std::string_view why) { return usage(fmt::format("-v/--volume: \"{}\": {}", spec, why)); };
  auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0)
    throw bad("expected storage:PATH:/MOUNT[:ro|rw], secret:KEY:/FILE or disk:ID:/MOUNT[:ro|rw]");
  auto kind = spec.substr(0, colon);
  if (kind != "storage" && kind != "secret" && kind != "disk")
    throw bad(fmt::format("unknown kind \"{}\": use storage:, secret: or disk:", kind));
  auto rest = spec;
  std::optional<bool> read_only;
  // Split from the right: the source may be a full URI with "://" in it.
  if (auto last = rest.rfind(':'); last > colon) {
    auto mode = rest.substr(last + 1);
    if (mode == "ro" || mode == "rw") {
      read_only = mode == "ro";
      rest = rest.substr(0, last);
    }
  }
  auto last = rest.rfind(':');
  if (last <= colon) throw bad("no mount path: add :/PATH");
  auto src = rest.substr(0, last);
  auto dst = rest.substr(last + 1);
  if (src.size() <= colon + 1) throw bad(fmt::format("nothing after \"{}:\"", kind));
  if (dst.empty() || dst.front() != '/') throw bad("the mount path must be absolute");
  auto list = [&](const char* key) -> json& {
    if (!request.contains(key)) request[key] = json::array();
    return request[key];
  };
  if (kind == "storage") {
    list("volumes").push_back({{"src_storage_uri", src}, {"dst_path", dst}, {"read_only", read_only.value_or(true)}});
  } else if (kind == "disk") {
    list("disk_volumes").push_back({{"src_disk_uri", src}, {"dst_path", dst}, {"read_only", read_only.value_or(true)}});
  } else {
    if (read_only) throw bad("a secret file is always read-only: leave out :ro/:rw");
    list("secret_volumes").push_back({{"src_secret_uri", src}, {"dst_path", dst}});
  }
}

std::int64_t duration_minutes(std::string_view option, std::string_view text) {
  auto s = trim(text);
  if (all_digits(s)) throw usage(fmt::format("{}: \"{}\" needs a unit, e.g. {}m, {}h or {}d", option, text, s, s, s));
  auto d = parse_duration(s);
  if (!d || d->count() <= 0)
    throw usage(fmt::format("{}: \"{}\" is not a duration such as 1d, 8h or 1h30m", option, text));
  return (d->count() + 59999) / 60000;
}

double duration_seconds(std::string_view option, std::string_view text) {
  auto d = parse_duration(trim(text));
  if (!d || d->count() <= 0)
    throw usage(fmt::format("{}: \"{}\" is not a duration such as 300 (seconds), 5m or 1h", option, text));
  return static_cast<double>(d->count()) / 1000.0;
}

json job_request(const RunArgs& a, const EnvPairs& env_file) {
  json r = json::object();
  if (trim(a.image).empty()) throw usage("IMAGE must not be empty");
  r["image"] = a.image;

  auto command = a.command;
  if (!command.empty() && command.front() == "--") command.erase(command.begin());
  if (!command.empty()) r["command"] = command;
  if (a.entrypoint) {
    if (trim(*a.entrypoint).empty()) throw usage("--entrypoint must not be empty");
    r["entrypoint"] = *a.entrypoint;  // the server splits it like a shell
  }

  // env and secret_env: a later value for the same name wins, whichever list it goes to.
  json env = json::object();
  json secret_env = json::object();
  auto put = [&](const std::string& name, const std::string& value) {
    if (value.starts_with("secret:")) {
      env.erase(name);
      secret_env[name] = value;
    } else {
      secret_env.erase(name);
      env[name] = value;
    }
  };
  for (const auto& [name, value] : env_file) put(name, value);
  for (const auto& e : a.env) {
    auto eq = e.find('=');
    auto name = e.substr(0, eq);
    if (eq == std::string::npos || !valid_env_name(name))
      throw usage(fmt::format("-e/--env: \"{}\" is not VAR=VALUE or VAR=secret:KEY", e));
    put(name, e.substr(eq + 1));
  }
  if (!env.empty()) r["env"] = env;
  if (!secret_env.empty()) r["secret_env"] = secret_env;

  for (const auto& v : a.volumes) add_volume(r, v);

  if (!a.workdir.empty()) {
    if (a.workdir.front() != '/') throw usage(fmt::format("-w/--workdir: \"{}\" must be absolute", a.workdir));
    r["working_dir"] = a.workdir;
  }
  if (a.tty) r["tty"] = true;
  if (!a.name.empty()) r["name"] = a.name;
  if (!a.description.empty()) r["description"] = a.description;
  if (!a.tags.empty()) {
    for (const auto& t : a.tags)
      if (trim(t).empty()) throw usage("--tag must not be empty");
    r["tags"] = a.tags;
  }
  if (!a.project.empty()) r["project_name"] = a.project;

  // A preset, or explicit resources; --extshm goes with either.
  bool explicit_resources = !a.cpu.empty() || !a.memory.empty() || !a.gpu.empty() || !a.gpu_model.empty();
  if (explicit_resources && !a.preset.empty())
    throw usage("-s/--preset cannot be combined with --cpu, --memory, --gpu or --gpu-model");
  json resources = json::object();
  if (!a.cpu.empty()) {
    auto cpu = to_double(a.cpu);
    if (!cpu || *cpu <= 0) throw usage(fmt::format("--cpu: \"{}\" is not a positive number of CPUs", a.cpu));
    resources["cpu"] = *cpu;
  }
  if (!a.memory.empty()) {
    auto bytes = parse_size(trim(a.memory));
    if (!bytes || *bytes == 0)
      throw usage(fmt::format("--memory: \"{}\" is not a size such as 4GiB or 512MiB", a.memory));
    resources["memory"] = *bytes;
  }
  if (!a.gpu.empty()) {
    auto n = to_int(a.gpu);
    if (!n || *n < 0) throw usage(fmt::format("--gpu: \"{}\" is not a number of GPUs", a.gpu));
    resources["nvidia_gpu"] = *n;
  }
  if (!a.gpu_model.empty()) {
    if (field(resources, "nvidia_gpu").is_null() || resources["nvidia_gpu"] == 0)
      throw usage("--gpu-model needs --gpu N");
    resources["nvidia_gpu_model"] = a.gpu_model;
  }
  if (a.extshm) resources["shm"] = true;
  if (!a.preset.empty()) r["preset_name"] = a.preset;
  if (!resources.empty()) r["resources"] = resources;

  if (!a.life_span.empty()) r["max_run_time_minutes"] = duration_minutes("--life-span", a.life_span);
  if (!a.schedule_timeout.empty())
    r["schedule_timeout"] = seconds_value(duration_seconds("--schedule-timeout", a.schedule_timeout));
  if (!a.restart.empty()) {
    if (a.restart != "never" && a.restart != "on-failure" && a.restart != "always")
      throw usage(fmt::format("--restart: \"{}\" is not never, on-failure or always", a.restart));
    r["restart_policy"] = a.restart;
  }
  if (!a.priority.empty()) {
    if (a.priority != "low" && a.priority != "normal" && a.priority != "high")
      throw usage(fmt::format("--priority: \"{}\" is not low, normal or high", a.priority));
    r["priority"] = a.priority;
  }
  if (!a.http_port.empty()) {
    auto port = to_int(a.http_port);
    if (!port || *port < 1 || *port > 65535)
      throw usage(fmt::format("--http-port: \"{}\" is not a port (1-65535)", a.http_port));
    // The reference CLI protects a job's HTTP port unless told otherwise.
    r["http"] = {{"port", *port}, {"requires_auth", a.http_auth.value_or(true)}};
  } else if (a.http_auth) {
    throw usage(std::string(*a.http_auth ? "--http-auth" : "--no-http-auth") + " needs --http-port");
  }
  if (a.wait_for_seat) r["wait_for_jobs_quota"] = true;
  return r;
}

std::string format_minutes(const json& minutes) {
  if (!minutes.is_number()) return {};
  auto m = std::llround(minutes.get<double>());
  if (m <= 0) return minutes.dump();
  return format_duration(chr::minutes(m));
}

std::string shell_join(const json& argv) {
  if (argv.is_string()) return argv.get<std::string>();
  if (!argv.is_array()) return {};
  auto quote = [](const std::string& s) {
    bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
    });
    if (plain) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  };
  std::vector<std::string> parts;
  for (const auto& v : argv) parts.push_back(quote(v.is_string() ? v.get<std::string>() : v.dump()));
  return join(parts, " ");
}

// --- ps ----------------------------------------------------------------------

QueryParams ps_query(const PsArgs& a, SysTime now) {
  QueryParams q;
  if (!a.statuses.empty()) {
    for (const auto& s : a.statuses) q.emplace_back("status", s);
  } else if (!a.all) {
    q.emplace_back("status", "active");
  }
  if (!a.name.empty()) q.emplace_back("name", a.name);
  for (const auto& t : a.tags) q.emplace_back("tag", t);
  for (const auto& o : a.owners) q.emplace_back("owner", o == "ME" ? "me" : o);
  for (const auto& p : a.projects) q.emplace_back("project_name", p);
  auto time = [&](std::string_view option, const std::string& text) -> std::optional<std::string> {
    if (text.empty()) return std::nullopt;
    auto t = parse_time_arg(text, now);
    if (!t)
      throw usage(
          fmt::format("{}: \"{}\" is not a date/time (2024-05-01, 2024-05-01T12:30Z) or a duration "
                      "meaning that long ago (1h, 2d)",
                      option, text));
    return t;
  };
  if (auto since = time("--since", a.since)) q.emplace_back("since", since);
  if (auto until = time("--until", a.until)) q.emplace_back("until", until);
  if (a.recent_first) q.emplace_back("reverse", "true");
  return q;
}

std::vector<std::string> parse_columns(std::string_view format) {
  std::vector<std::string> known;
  for (auto rest = kPsColumns; !rest.empty();) {
    auto comma = rest.find(',');
    known.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    auto comma = format.find(',', start);
    auto name = std::string(trim(format.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    for (auto& c : name) c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!name.empty()) {
      if (std::find(known.begin(), known.end(), name) == known.end())
        throw usage(fmt::format("--format: unknown column \"{}\"; the columns are {}", name, kPsColumns));
      out.push_back(name);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.empty()) throw usage(fmt::format("--format: no columns; the columns are {}", kPsColumns));
  return out;
}

const json& when_of(const json& job) {
  const auto& history = field(job, "history");
  auto status = cell(job, "status");
  if (status.empty()) status = cell(history, "status");
  if (is_finished(status) && !field(history, "finished_at").is_null()) return field(history, "finished_at");
  if (status == "running" && !field(history, "started_at").is_null()) return field(history, "started_at");
  return field(history, "created_at");
}

std::string ago(const json& time, SysTime now) {
  if (time.is_null()) return {};
  auto t = parse_server_time(time);
  if (!t) return show_time(time);
  auto seconds = chr::duration_cast<chr::seconds>(now - *t).count();
  if (seconds < -60 || seconds >= 30 * 86400) return show_time(time);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return fmt::format("{}m ago", seconds / 60);
  if (seconds < 86400) return fmt::format("{}h ago", seconds / 3600);
  return fmt::format("{}d ago", seconds / 86400);
}

std::string job_cell(const json& job, std::string_view column, SysTime now) {
  const auto& container = field(job, "container");
  const auto& history = field(job, "history");
  auto raw = [&]() -> std::string {
    if (column == "id") return cell(job, "id");
    if (column == "name") return cell(job, "name");
    if (column == "status") return cell(job, "status").empty() ? cell(history, "status") : cell(job, "status");
    if (column == "when") return ago(when_of(job), now);
    if (column == "image") return cell(container, "image");
    if (column == "owner") return cell(job, "owner");
    if (column == "project") return cell(job, "project_name");
    if (column == "preset") return cell(job, "preset_name");
    if (column == "tags") return join(strings_of(field(job, "tags")), ",");
    if (column == "description") return cell(job, "description");
    if (column == "command") return shell_join(field(container, "command"));
    if (column == "life_span") return format_minutes(field(job, "max_run_time_minutes"));
    if (column == "exit_code") return cell(history, "exit_code");
    if (column == "restarts") return cell(history, "restarts");
    return {};
  };
  return one_line(raw());
}

std::string render_jobs(const json& jobs, const std::vector<std::string>& columns, SysTime now, bool color) {
  std::vector<Column> header;
  for (const auto& c : columns) {
    std::string title = c;
    for (auto& ch : title) ch = ch == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    bool number = c == "exit_code" || c == "restarts";
    header.push_back({title, number ? Align::right : Align::left, c == "status"});
  }
  Table t(std::move(header));
  if (jobs.is_array())
    for (const auto& job : jobs) {
      std::vector<std::string> row;
      for (const auto& c : columns) row.push_back(job_cell(job, c, now));
      t.add_row(std::move(row));
    }
  return t.render(color);
}

// --- following a job ---------------------------------------------------------

bool is_finished(std::string_view status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

std::string status_line(const json& item) {
  auto out = cell(item, "status");
  if (auto reason = cell(item, "reason"); !reason.empty()) out += " " + reason;
  if (auto description = cell(item, "description"); !description.empty()) out += ": " + one_line(description);
  // The server's description may say it already ("exit code 3").
  if (const auto& code = field(item, "exit_code");
      code.is_number() && code != 0 && out.find("exit code " + code.dump()) == std::string::npos)
    out += " (exit code " + code.dump() + ")";
  return out;
}

std::vector<std::string> new_transitions(const json& job, Transitions& t) {
  std::vector<std::string> out;
  const auto& statuses = field(job, "statuses");
  if (statuses.is_array() && !statuses.empty()) {
    for (; t.printed < statuses.size(); ++t.printed) {
      auto line = status_line(statuses[t.printed]);
      if (line != t.last) out.push_back(line);
      t.last = line;
    }
    return out;
  }
  auto item = field(job, "history");
  if (!item.is_object()) item = json::object();
  if (auto status = cell(job, "status"); !status.empty()) item["status"] = status;
  auto line = status_line(item);
  if (!line.empty() && line != t.last) {
    out.push_back(line);
    t.last = line;
  }
  return out;
}

JobOutcome job_outcome(const json& job) {
  const auto& history = field(job, "history");
  auto status = cell(job, "status").empty() ? cell(history, "status") : cell(job, "status");
  const auto& code = field(history, "exit_code");
  bool usable = code.is_number_integer() && code.get<std::int64_t>() >= 0 && code.get<std::int64_t>() <= 255;
  if (status == "succeeded") return {usable ? code.get<int>() : 0, {}};
  auto item = history.is_object() ? history : json::object();
  item["status"] = status;
  auto what = "job " + cell(job, "id") + " " + status_line(item);
  // A job that did not succeed must not look as if it did, even when its process exited 0
  // (a cancelled job that stopped cleanly on SIGTERM).
  if (usable && code != 0) return {code.get<int>(), what};
  return {kJobCouldNotRun, what + "; it ended without an exit code of its own"};
}

// --- status ------------------------------------------------------------------

std::string render_job_status(const json& job, SysTime now, bool color) {
  const auto& c = field(job, "container");
  const auto& h = field(job, "history");
  Table t({{""}, {""}});
  auto row = [&t](std::string label, std::string value) {
    if (!value.empty()) t.add_row({std::move(label), one_line(std::move(value))});
  };
  auto rows = [&t](std::string label, const std::vector<std::string>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) t.add_row({i == 0 ? label : "", one_line(values[i])});
  };
  row("Job:", cell(job, "id"));
  row("Name:", cell(job, "name"));
  row("Owner:", cell(job, "owner"));
  row("Project:", cell(job, "project_name"));
  row("URI:", cell(job, "uri"));
  row("Tags:", join(strings_of(field(job, "tags")), ", "));
  row("Description:", cell(job, "description"));
  row("Image:", cell(c, "image"));
  if (const auto& ep = field(c, "entrypoint"); !(ep.is_array() && ep.empty())) row("Entrypoint:", shell_join(ep));
  row("Command:", shell_join(field(c, "command")));
  row("Working dir:", cell(c, "working_dir"));
  if (field(c, "tty") == true) row("TTY:", "yes");
  row("Preset:", cell(job, "preset_name"));
  row("Resources:", resources_text(field(c, "resources")));
  if (const auto& gpus = field(job, "gpu_ids"); gpus.is_array() && !gpus.empty())
    row("GPUs:", join(strings_of(gpus), ", "));
  std::vector<std::string> env;
  if (const auto& e = field(c, "env"); e.is_object())
    for (const auto& [k, v] : e.items()) env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  rows("Env:", env);
  // The secrets' values never reach the job record, and their keys are not the user's business here.
  std::vector<std::string> secret_names;
  if (const auto& e = field(c, "secret_env"); e.is_object())
    for (const auto& [k, v] : e.items()) secret_names.push_back(k);
  row("Secret env:", join(secret_names, ", "));
  std::vector<std::string> volumes;
  for (const auto& v : field(c, "volumes")) volumes.push_back(volume_spec("src_storage_uri", v, true));
  for (const auto& v : field(c, "disk_volumes")) volumes.push_back(volume_spec("src_disk_uri", v, true));
  for (const auto& v : field(c, "secret_volumes")) volumes.push_back(volume_spec("src_secret_uri", v, false));
  rows("Volumes:", volumes);
  if (const auto& http = field(c, "http"); http.is_object())
    row("HTTP:",
        "port " + cell(http, "port") + (field(http, "requires_auth") == true ? ", auth required" : ", no auth"));
  row("Life span:", format_minutes(field(job, "max_run_time_minutes")));
  row("Restart:", cell(job, "restart_policy"));
  row("Priority:", cell(job, "priority"));
  if (const auto& st = field(job, "schedule_timeout"); st.is_number()) row("Schedule timeout:", seconds_text(st));
  row("Executor:", cell(job, "executor"));

  auto status_item = h.is_object() ? h : json::object();
  if (auto s = cell(job, "status"); !s.empty()) status_item["status"] = s;
  status_item.erase("exit_code");  // a row of its own
  auto status = status_line(status_item);
  auto word = cell(status_item, "status");
  if (color && !word.empty()) status = paint(word, status_tone(word)) + status.substr(word.size());
  row("Status:", status);
  row("Exit code:", cell(h, "exit_code"));
  auto when = [&](const json& time) {
    if (time.is_null()) return std::string();
    auto rel = ago(time, now);
    auto abs = show_time(time);
    return rel == abs ? abs : abs + " (" + rel + ")";
  };
  row("Created:", when(field(h, "created_at")));
  row("Started:", when(field(h, "started_at")));
  row("Finished:", when(field(h, "finished_at")));
  row("Run time:", seconds_text(field(h, "run_time_seconds")));
  row("Restarts:", cell(h, "restarts"));

  auto text = t.render(false);
  text = text.substr(text.find('\n') + 1);  // without the empty header line
  if (const auto& statuses = field(job, "statuses"); statuses.is_array() && !statuses.empty())
    text += "\n" + render_status_history(statuses, color);
  return text;
}

std::string render_status_history(const json& statuses, bool color) {
  Table t({{"TIME"}, {"STATUS", Align::left, true}, {"REASON"}, {"DESCRIPTION"}, {"EXIT CODE", Align::right}});
  if (statuses.is_array())
    for (const auto& s : statuses)
      t.add_row({show_time(field(s, "transition_time")), cell(s, "status"), cell(s, "reason"),
                 one_line(cell(s, "description")), cell(s, "exit_code")});
  return t.render(color);
}

}  // namespace neurod::cli

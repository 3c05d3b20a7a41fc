#include "modules/jobs/model.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <set>

namespace neurod::jobs {

using json = nlohmann::json;

std::string_view to_string(Status s) {
  switch (s) {
    case Status::pending: return "pending";
    case Status::suspended: return "suspended";
    case Status::running: return "running";
    case Status::succeeded: return "succeeded";
    case Status::failed: return "failed";
    case Status::cancelled: return "cancelled";
  }
  return "pending";
}

std::optional<Status> parse_status(std::string_view s) {
  for (auto st : {Status::pending, Status::suspended, Status::running, Status::succeeded, Status::failed,
                  Status::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

std::string_view to_string(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::never: return "never";
    case RestartPolicy::on_failure: return "on-failure";
    case RestartPolicy::always: return "always";
  }
  return "never";
}

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw Error(errc::bad_request, field + ": " + message);
}

std::string get_string(const json& body, const char* key, std::size_t max_len = 4096) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_string()) bad(key, "must be a string");
  auto s = it->get<std::string>();
  if (s.size() > max_len) bad(key, fmt::format("longer than {} bytes", max_len));
  if (s.find('\0') != std::string::npos) bad(key, "must not contain NUL bytes");
  return s;
}

bool get_bool(const json& body, const char* key, bool def) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_boolean()) bad(key, "must be true or false");
  return it->get<bool>();
}

std::optional<double> get_number(const json& obj, const std::string& field, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad(field, "must be a number");
  double v = it->get<double>();
  if (!std::isfinite(v)) bad(field, "must be a finite number");
  return v;
}

std::vector<std::string> get_argv(const json& body, const char* key, std::size_t max_bytes) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return {};
  std::vector<std::string> out;
  std::size_t total = 0;
  if (it->is_string()) {
    auto text = it->get<std::string>();
    if (text.size() > max_bytes) bad(key, fmt::format("longer than {} bytes", max_bytes));
    try {
      out = shell_split(text);
    } catch (const Error& e) {
      bad(key, e.what());
    }
  } else if (it->is_array()) {
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& a = (*it)[i];
      if (!a.is_string()) bad(fmt::format("{}[{}]", key, i), "must be a string");
      out.push_back(a.get<std::string>());
      total += out.back().size() + 1;
      if (out.back().find('\0') != std::string::npos) bad(fmt::format("{}[{}]", key, i), "must not contain NUL bytes");
    }
    if (total > max_bytes) bad(key, fmt::format("longer than {} bytes in all", max_bytes));
  } else {
    bad(key, "must be a list of strings or a command line string");
  }
  return out;
}

bool valid_env_name(std::string_view n) {
  if (n.empty() || n.size() > 255) return false;
  if (n[0] >= '0' && n[0] <= '9') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void check_dst_path(const std::string& field, const std::string& path, std::set<std::string>& seen) {
  if (path.empty() || path[0] != '/') bad(field, "must be an absolute path");
  if (path.size() > 4096) bad(field, "longer than 4096 bytes");
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.substr(start, end - start) == "..") bad(field, "must not contain '..'");
    start = end + 1;
  }
  auto norm = path;
  while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
  if (norm == "/") bad(field, "cannot mount over /");
  if (!seen.insert(norm).second) bad(field, "another volume already mounts " + norm);
}

const json& object_or_empty(const json& body, const char* key) {
  static const json empty = json::object();
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return empty;
  if (!it->is_object()) bad(key, "must be an object");
  return *it;
}

const json& array_or_empty(const json& body, const char* key) {
  static const json empty = json::array();
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return empty;
  if (!it->is_array()) bad(key, "must be a list");
  return *it;
}

std::string resolve(const UriResolver& r, const std::string& field, const json& v, std::string_view scheme) {
  if (!v.is_string() || v.get<std::string>().empty()) bad(field, fmt::format("must be a {}: URI", scheme));
  try {
    return r(v.get<std::string>(), scheme);
  } catch (const Error& e) {
    bad(field, e.what());
  }
}

}  // namespace

bool valid_job_name(std::string_view n) {
  if (n.size() < 3 || n.size() > 40) return false;
  if (n.substr(0, 4) == "job-") return false;
  if (n[0] < 'a' || n[0] > 'z') return false;
  bool prev_dash = false;
  for (char c : n) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '-') {
      if (prev_dash) return false;
      prev_dash = true;
    } else if (alnum) {
      prev_dash = false;
    } else {
      return false;
    }
  }
  return !prev_dash;
}

namespace {

// One path component of an OCI repository name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_repository_component(std::string_view c) {
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  std::size_t i = 0;
  auto run = [&] {
    std::size_t start = i;
    while (i < c.size() && alnum(c[i])) ++i;
    return i > start;
  };
  if (!run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!run()) return false;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char ch = t[i];
    bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || (i > 0 && (ch == '.' || ch == '-'));
    if (!ok) return false;
  }
  return true;
}

bool valid_digest(std::string_view d) {
  auto colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= d.size()) return false;
  for (char ch : d.substr(0, colon))
    if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) || ch == '+' ||
          ch == '.' || ch == '_' || ch == '-'))
      return false;
  for (char ch : d.substr(colon + 1))
    if (!std::isxdigit(static_cast<unsigned char>(ch)) || std::isupper(static_cast<unsigned char>(ch))) return false;
  return true;
}

}  // namespace

std::optional<RegistryImage> parse_registry_image(std::string_view image, std::string_view project,
                                                  std::string_view cluster) {
  if (!image.starts_with("image:")) return std::nullopt;
  auto refuse = [](const std::string& why) { return Error(errc::bad_request, "image: " + why); };
  std::string_view rest = image.substr(6);
  RegistryImage out;
  if (rest.starts_with("//")) {
    rest.remove_prefix(2);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) throw refuse("image://CLUSTER/PROJECT/NAME[:TAG] names no project");
    if (rest.substr(0, slash) != cluster)
      throw refuse(fmt::format("{} is in cluster '{}', not this one ('{}')", image, rest.substr(0, slash), cluster));
    rest.remove_prefix(slash + 1);
  } else if (!rest.starts_with("/")) {
    if (project.empty()) throw refuse("no project to resolve image:NAME in");
    out.project = std::string(project);
  } else {
    rest.remove_prefix(1);
  }
  // The reference: "@DIGEST", or ":TAG" after the last '/'.
  std::string_view name = rest;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    name = rest.substr(0, at);
    auto digest = rest.substr(at + 1);
    if (!valid_digest(digest)) throw refuse(fmt::format("'{}' is not a digest (sha256:HEX)", digest));
    out.reference = "@" + std::string(digest);
  } else {
    auto colon = rest.rfind(':');
    auto last_slash = rest.rfind('/');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
      name = rest.substr(0, colon);
      auto tag = rest.substr(colon + 1);
      if (!valid_tag(tag)) throw refuse(fmt::format("'{}' is not a valid tag", tag));
      out.reference = ":" + std::string(tag);
    } else {
      out.reference = ":latest";
    }
  }
  if (out.project.empty()) {
    auto slash = name.find('/');
    if (slash == std::string_view::npos) throw refuse("image:/PROJECT/NAME needs a name after the project");
    out.project = std::string(name.substr(0, slash));
    name.remove_prefix(slash + 1);
  }
  std::string_view n = name;
  if (n.empty()) throw refuse("the image name is empty");
  while (true) {
    auto slash = n.find('/');
    auto part = n.substr(0, slash);
    if (!valid_repository_component(part))
      throw refuse(fmt::format("'{}' is not a valid image name: lowercase letters, digits and single '.', '_', '-' "
                            "between them, path parts separated by '/'",
                            name));
    if (slash == std::string_view::npos) break;
    n.remove_prefix(slash + 1);
  }
  out.repository = out.project + "/" + std::string(name);
  return out;
}

std::vector<std::string> shell_split(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur)), cur.clear(), in_word = false;
    } else if (c == '\'') {
      in_word = true;
      auto end = text.find('\'', i + 1);
      if (end == std::string_view::npos) throw Error(errc::bad_request, "unterminated single quote");
      cur.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      in_word = true;
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= text.size()) throw Error(errc::bad_request, "unterminated double quote");
        if (text[j] == '"') break;
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`')) {
          cur += text[++j];
        } else {
          cur += text[j];
        }
      }
      i = j;
    } else if (c == '\\') {
      in_word = true;
      if (i + 1 >= text.size()) throw Error(errc::bad_request, "trailing backslash");
      cur += text[++i];
    } else {
      in_word = true;
      cur += c;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

JobSpec parse_spec(const json& body, const std::vector<config::Preset>& presets, const SpecLimits& limits,
                   const UriResolver& resolve_uri) {
  if (!body.is_object()) throw Error(errc::bad_request, "the body must be a JSON object describing the job");
  static const std::set<std::string> known = {
      "image", "command", "entrypoint", "env", "working_dir", "tty", "name", "description", "tags", "project_name",
      "preset_name", "resources", "max_run_time_minutes", "restart_policy", "schedule_timeout", "priority", "http",
      "wait_for_jobs_quota", "volumes", "secret_env", "secret_volumes", "disk_volumes", "cluster_name", "org_name",
      "pass_config", "privileged"};
  for (const auto& [k, v] : body.items())
    if (!known.count(k)) bad(k, "unknown field");
  if (get_bool(body, "privileged", false)) bad("privileged", "privileged jobs are not allowed on this cluster");
  if (get_bool(body, "pass_config", false)) bad("pass_config", "not supported yet");

  JobSpec s;
  s.image = get_string(body, "image", 1024);
  if (s.image.empty()) bad("image", "required (image:NAME[:TAG] or an image reference like busybox:1)");
  for (char c : s.image)
    if (static_cast<unsigned char>(c) <= ' ') bad("image", "must not contain spaces or control characters");
  s.command = get_argv(body, "command", limits.max_command_bytes);
  s.entrypoint = get_argv(body, "entrypoint", limits.max_command_bytes);
  s.working_dir = get_string(body, "working_dir");
  if (!s.working_dir.empty() && s.working_dir[0] != '/') bad("working_dir", "must be an absolute path");
  s.tty = get_bool(body, "tty", false);

  s.name = get_string(body, "name", 64);
  if (!s.name.empty() && !valid_job_name(s.name))
    bad("name",
        "3 to 40 lower-case letters, digits and single dashes, starting with a letter and not with 'job-' (e.g. "
        "train-1)");
  s.description = get_string(body, "description", 4096);

  std::set<std::string> tags;
  const auto& jtags = array_or_empty(body, "tags");
  for (std::size_t i = 0; i < jtags.size(); ++i) {
    auto field = fmt::format("tags[{}]", i);
    if (!jtags[i].is_string()) bad(field, "must be a string");
    auto t = jtags[i].get<std::string>();
    if (t.empty() || t.size() > 256) bad(field, "must be 1 to 256 characters");
    for (char c : t)
      if (static_cast<unsigned char>(c) <= ' ') bad(field, "must not contain whitespace or control characters");
    tags.insert(t);
  }
  if (tags.size() > 16) bad("tags", "at most 16 tags");
  s.tags.assign(tags.begin(), tags.end());

  std::size_t env_bytes = 0;
  const auto& env = object_or_empty(body, "env");
  if (env.size() > limits.max_env_vars) bad("env", fmt::format("at most {} variables", limits.max_env_vars));
  for (const auto& [k, v] : env.items()) {
    auto field = "env." + k;
    if (!valid_env_name(k)) bad(field, "names are letters, digits and '_', not starting with a digit");
    if (k.rfind("NEURO_JOB_", 0) == 0) bad(field, "NEURO_JOB_* variables are set by neurod");
    if (!v.is_string()) bad(field, "must be a string");
    auto value = v.get<std::string>();
    if (value.find('\0') != std::string::npos) bad(field, "must not contain NUL bytes");
    env_bytes += k.size() + value.size() + 2;
    s.env.emplace_back(k, std::move(value));
  }
  const auto& secret_env = object_or_empty(body, "secret_env");
  for (const auto& [k, v] : secret_env.items()) {
    auto field = "secret_env." + k;
    if (!valid_env_name(k)) bad(field, "names are letters, digits and '_', not starting with a digit");
    if (env.contains(k)) bad(field, "also set in env");
    s.secret_env[k] = resolve(resolve_uri, field, v, "secret");
    env_bytes += k.size() + 1;
  }
  if (env_bytes > limits.max_env_bytes)
    bad("env", fmt::format("{} bytes in all; the limit is {}", env_bytes, limits.max_env_bytes));
  std::sort(s.env.begin(), s.env.end());

  s.project = get_string(body, "project_name", 255);

  // Resources: a preset, or explicit values (reference §2.2: both together are refused,
  // except shm).
  auto res_it = body.find("resources");
  const json* res = nullptr;
  if (res_it != body.end() && !res_it->is_null()) {
    if (!res_it->is_object()) bad("resources", "must be an object");
    res = &*res_it;
    static const std::set<std::string> known_res = {"cpu", "memory", "memory_mb", "shm", "nvidia_gpu",
                                                    "nvidia_gpu_model"};
    for (const auto& [k, v] : res->items())
      if (!known_res.count(k)) bad("resources." + k, "unknown resource");
  }
  bool explicit_resources = false;
  if (res)
    for (const auto& [k, v] : res->items())
      if (k != "shm") explicit_resources = true;
  s.preset = get_string(body, "preset_name", 255);
  if (!s.preset.empty() && explicit_resources)
    bad("resources", "give either preset_name or resources (other than shm), not both");
  if (explicit_resources) {
    auto cpu = get_number(*res, "resources.cpu", "cpu");
    if (!cpu)
      bad("resources.cpu",
          "required with explicit resources (give CPU and memory too, e.g. neuro run --cpu 4 --memory 16GiB --gpu 1, "
          "or a preset that has GPUs)");
    if (*cpu < 0.1 || *cpu > 4096) bad("resources.cpu", "must be between 0.1 and 4096 cores");
    s.resources.cpu = *cpu;
    auto mem = get_number(*res, "resources.memory", "memory");
    auto mem_mb = get_number(*res, "resources.memory_mb", "memory_mb");
    if (mem && mem_mb) bad("resources.memory", "give memory (bytes) or memory_mb, not both");
    double bytes = mem ? *mem : mem_mb ? *mem_mb * 1024 * 1024 : 0;
    if (!mem && !mem_mb)
      bad("resources.memory", "required with explicit resources (bytes, or memory_mb; neuro run --memory 16GiB)");
    if (bytes < 16.0 * 1024 * 1024) bad("resources.memory", "must be at least 16 MiB");
    if (bytes > 1e15) bad("resources.memory", "too large");
    s.resources.memory = static_cast<std::uint64_t>(bytes);
    auto gpu = get_number(*res, "resources.nvidia_gpu", "nvidia_gpu");
    if (gpu) {
      if (*gpu < 0 || *gpu > 64 || std::floor(*gpu) != *gpu) bad("resources.nvidia_gpu", "a whole number, 0 to 64");
      s.resources.gpu = static_cast<int>(*gpu);
    }
    s.resources.gpu_model = get_string(*res, "nvidia_gpu_model", 255);
  } else {
    if (presets.empty()) bad("preset_name", "this cluster has no presets; give resources");
    const config::Preset* p = nullptr;
    if (s.preset.empty()) {
      p = &presets.front();
    } else {
      for (const auto& c : presets)
        if (c.name == s.preset) p = &c;
      if (!p) {
        std::string names;
        for (const auto& c : presets) names += (names.empty() ? "" : ", ") + c.name;
        throw Error(errc::not_found, "preset_name: no preset '" + s.preset + "' (presets: " + names + ")");
      }
    }
    s.preset = p->name;
    s.resources.cpu = p->cpu;
    s.resources.memory = p->memory.bytes;
    s.resources.gpu = p->gpu;
    s.resources.gpu_model = p->gpu_model;
    s.resources.shm_bytes = p->shm.bytes;
  }
  if (res) {
    auto shm = res->find("shm");
    if (shm != res->end() && !shm->is_null()) {
      if (!shm->is_boolean()) bad("resources.shm", "must be true or false");
      s.resources.shm = shm->get<bool>();
    }
  }

  if (auto it = body.find("max_run_time_minutes"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 10 * 365 * 24 * 60)
      bad("max_run_time_minutes", "a whole number of minutes, at least 1");
    s.max_run_time_minutes = it->get<int>();
  } else {
    s.max_run_time_minutes = limits.default_max_run_time_minutes;
  }
  auto policy = get_string(body, "restart_policy", 32);
  if (policy.empty() || policy == "never")
    s.restart_policy = RestartPolicy::never;
  else if (policy == "on-failure" || policy == "on_failure")
    s.restart_policy = RestartPolicy::on_failure;
  else if (policy == "always")
    s.restart_policy = RestartPolicy::always;
  else
    bad("restart_policy", "never, on-failure or always");
  if (auto t = get_number(body, "schedule_timeout", "schedule_timeout")) {
    if (*t < 1 || *t >= 30.0 * 24 * 3600) bad("schedule_timeout", "seconds, at least 1 and under 30 days");
    s.schedule_timeout = *t;
  } else {
    s.schedule_timeout = std::chrono::duration<double>(limits.default_schedule_timeout).count();
  }
  auto priority = get_string(body, "priority", 16);
  if (priority.empty() || priority == "normal")
    s.priority = 0;
  else if (priority == "low")
    s.priority = -1;
  else if (priority == "high")
    s.priority = 1;
  else
    bad("priority", "low, normal or high");

  const auto& http = object_or_empty(body, "http");
  if (!http.empty()) {
    auto port = get_number(http, "http.port", "port");
    if (!port || *port < 1 || *port > 65535 || std::floor(*port) != *port) bad("http.port", "a port, 1 to 65535");
    s.http_port = static_cast<int>(*port);
    s.http_requires_auth = get_bool(http, "requires_auth", true);
  }
  s.wait_for_jobs_quota = get_bool(body, "wait_for_jobs_quota", false);

  std::set<std::string> dsts;
  const auto& vols = array_or_empty(body, "volumes");
  for (std::size_t i = 0; i < vols.size(); ++i) {
    auto field = fmt::format("volumes[{}]", i);
    const auto& v = vols[i];
    if (!v.is_object()) bad(field, "must be an object {src_storage_uri, dst_path, read_only}");
    StorageVolume sv;
    sv.uri = resolve(resolve_uri, field + ".src_storage_uri", v.value("src_storage_uri", json()), "storage");
    sv.dst_path = v.value("dst_path", json()).is_string() ? v["dst_path"].get<std::string>() : "";
    check_dst_path(field + ".dst_path", sv.dst_path, dsts);
    sv.read_only = get_bool(v, "read_only", true);
    s.volumes.push_back(std::move(sv));
  }
  const auto& svols = array_or_empty(body, "secret_volumes");
  for (std::size_t i = 0; i < svols.size(); ++i) {
    auto field = fmt::format("secret_volumes[{}]", i);
    const auto& v = svols[i];
    if (!v.is_object()) bad(field, "must be an object {src_secret_uri, dst_path}");
    SecretVolume sv;
    sv.uri = resolve(resolve_uri, field + ".src_secret_uri", v.value("src_secret_uri", json()), "secret");
    sv.dst_path = v.value("dst_path", json()).is_string() ? v["dst_path"].get<std::string>() : "";
    check_dst_path(field + ".dst_path", sv.dst_path, dsts);
    s.secret_volumes.push_back(std::move(sv));
  }
  const auto& dvols = array_or_empty(body, "disk_volumes");
  for (std::size_t i = 0; i < dvols.size(); ++i) {
    auto field = fmt::format("disk_volumes[{}]", i);
    const auto& v = dvols[i];
    if (!v.is_object()) bad(field, "must be an object {src_disk_uri, dst_path, read_only}");
    DiskVolume dv;
    dv.uri = resolve(resolve_uri, field + ".src_disk_uri", v.value("src_disk_uri", json()), "disk");
    dv.dst_path = v.value("dst_path", json()).is_string() ? v["dst_path"].get<std::string>() : "";
    check_dst_path(field + ".dst_path", dv.dst_path, dsts);
    dv.read_only = get_bool(v, "read_only", true);
    s.disk_volumes.push_back(std::move(dv));
  }
  // A secret file inside another volume would get its mount point made in that volume's
  // host directory (or fail on a read-only one), and nothing can be mounted inside a file.
  auto norm = [](const std::string& p) {
    std::string out;
    for (char c : p)
      if (c != '/' || out.empty() || out.back() != '/') out += c;
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
  };
  auto inside = [](const std::string& a, const std::string& b) {
    return a.size() > b.size() && a.compare(0, b.size(), b) == 0 && (b == "/" || a[b.size()] == '/');
  };
  std::vector<std::pair<std::string, std::string>> targets;  // normal path, what it is
  for (const auto& v : s.volumes) targets.emplace_back(norm(v.dst_path), "the volume at " + norm(v.dst_path));
  for (const auto& v : s.disk_volumes) targets.emplace_back(norm(v.dst_path), "the disk at " + norm(v.dst_path));
  for (const auto& v : s.secret_volumes)
    targets.emplace_back(norm(v.dst_path), "the secret file at " + norm(v.dst_path));
  for (std::size_t i = 0; i < s.secret_volumes.size(); ++i) {
    auto field = fmt::format("secret_volumes[{}].dst_path", i);
    auto t = norm(s.secret_volumes[i].dst_path);
    for (const auto& [o, what] : targets) {
      if (inside(t, o)) bad(field, "must not be inside " + what + ": mount the secret file elsewhere");
      if (inside(o, t)) bad(field, "is a file, and " + what + " would be inside it");
    }
  }
  return s;
}

json spec_to_json(const JobSpec& s) {
  json env = json::object();
  for (const auto& [k, v] : s.env) env[k] = v;
  json vols = json::array(), svols = json::array(), dvols = json::array();
  for (const auto& v : s.volumes)
    vols.push_back({{"src_storage_uri", v.uri}, {"dst_path", v.dst_path}, {"read_only", v.read_only}});
  for (const auto& v : s.secret_volumes) svols.push_back({{"src_secret_uri", v.uri}, {"dst_path", v.dst_path}});
  for (const auto& v : s.disk_volumes)
    dvols.push_back({{"src_disk_uri", v.uri}, {"dst_path", v.dst_path}, {"read_only", v.read_only}});
  json resources = {{"cpu", s.resources.cpu},
                    {"memory", s.resources.memory},
                    {"memory_mb", s.resources.memory / (1024 * 1024)},
                    {"shm", s.resources.shm},
                    {"nvidia_gpu", s.resources.gpu}};
  if (s.resources.shm_bytes) resources["shm_size"] = s.resources.shm_bytes;
  if (!s.resources.gpu_model.empty()) resources["nvidia_gpu_model"] = s.resources.gpu_model;
  json j = {{"image", s.image},
            {"command", s.command},
            {"entrypoint", s.entrypoint},
            {"env", env},
            {"working_dir", s.working_dir},
            {"tty", s.tty},
            {"name", s.name},
            {"description", s.description},
            {"tags", s.tags},
            {"project_name", s.project},
            {"preset_name", s.preset},
            {"resources", resources},
            {"max_run_time_minutes", s.max_run_time_minutes ? json(*s.max_run_time_minutes) : json()},
            {"restart_policy", to_string(s.restart_policy)},
            {"schedule_timeout", s.schedule_timeout},
            {"priority", s.priority < 0 ? "low" : s.priority > 0 ? "high" : "normal"},
            {"http", s.http_port ? json{{"port", *s.http_port}, {"requires_auth", s.http_requires_auth}} : json()},
            {"wait_for_jobs_quota", s.wait_for_jobs_quota},
            {"volumes", vols},
            {"secret_env", s.secret_env},
            {"secret_volumes", svols},
            {"disk_volumes", dvols}};
  return j;
}

std::string http_path(const std::string& job_id) { return "/api/v1/jobs/" + job_id + "/http/"; }

JobSpec parse_stored_spec(const json& j) {
  JobSpec s;
  s.image = j.value("image", "");
  s.command = j.value("command", std::vector<std::string>{});
  s.entrypoint = j.value("entrypoint", std::vector<std::string>{});
  // Named, not temporaries: items() refers to the object it is called on.
  const auto env = j.value("env", json::object());
  for (const auto& [k, v] : env.items()) s.env.emplace_back(k, v.get<std::string>());
  s.working_dir = j.value("working_dir", "");
  s.tty = j.value("tty", false);
  s.name = j.value("name", "");
  s.description = j.value("description", "");
  s.tags = j.value("tags", std::vector<std::string>{});
  s.project = j.value("project_name", "");
  s.preset = j.value("preset_name", "");
  const auto& r = j.at("resources");
  s.resources.cpu = r.value("cpu", 0.0);
  s.resources.memory = r.value("memory", std::uint64_t{0});
  s.resources.shm = r.value("shm", false);
  s.resources.shm_bytes = r.value("shm_size", std::uint64_t{0});
  s.resources.gpu = r.value("nvidia_gpu", 0);
  s.resources.gpu_model = r.value("nvidia_gpu_model", "");
  if (j.contains("max_run_time_minutes") && !j["max_run_time_minutes"].is_null())
    s.max_run_time_minutes = j["max_run_time_minutes"].get<int>();
  auto policy = j.value("restart_policy", "never");
  s.restart_policy = policy == "always"       ? RestartPolicy::always
                     : policy == "on-failure" ? RestartPolicy::on_failure
                                              : RestartPolicy::never;
  s.schedule_timeout = j.value("schedule_timeout", 300.0);
  auto pr = j.value("priority", "normal");
  s.priority = pr == "low" ? -1 : pr == "high" ? 1 : 0;
  if (j.contains("http") && j["http"].is_object()) {
    s.http_port = j["http"].value("port", 0);
    s.http_requires_auth = j["http"].value("requires_auth", true);
  }
  s.wait_for_jobs_quota = j.value("wait_for_jobs_quota", false);
  for (const auto& v : j.value("volumes", json::array()))
    s.volumes.push_back({v.value("src_storage_uri", ""), v.value("dst_path", ""), v.value("read_only", true)});
  const auto secret_env = j.value("secret_env", json::object());
  for (const auto& [k, v] : secret_env.items()) s.secret_env[k] = v.get<std::string>();
  for (const auto& v : j.value("secret_volumes", json::array()))
    s.secret_volumes.push_back({v.value("src_secret_uri", ""), v.value("dst_path", "")});
  for (const auto& v : j.value("disk_volumes", json::array()))
    s.disk_volumes.push_back({v.value("src_disk_uri", ""), v.value("dst_path", ""), v.value("read_only", true)});
  return s;
}

std::optional<std::int64_t> Job::started_ms() const {
  for (const auto& s : statuses)
    if (s.status == Status::running) return s.time_ms;
  for (const auto& s : statuses)
    if (is_finished(s.status)) return s.time_ms;
  return std::nullopt;
}

std::optional<std::int64_t> Job::finished_ms() const {
  if (is_finished(current().status)) return current().time_ms;
  return std::nullopt;
}

int Job::restarts() const {
  int n = 0;
  for (const auto& s : statuses)
    if (s.reason == "Restarting" || s.status == Status::suspended) ++n;
  return n;
}

double Job::run_time_seconds(std::int64_t now_ms) const {
  std::int64_t total = 0;
  std::optional<std::int64_t> since;
  for (const auto& s : statuses) {
    if (s.status == Status::running) {
      if (!since) since = s.time_ms;
    } else if (since) {
      total += s.time_ms - *since;
      since.reset();
    }
  }
  if (since) total += now_ms - *since;
  return static_cast<double>(std::max<std::int64_t>(total, 0)) / 1000.0;
}

std::string Job::uri() const { return "job://" + cluster + "/" + spec.project + "/" + id; }

std::string format_time_ms(std::int64_t ms) { return format_rfc3339(ms * 1'000'000, 3); }

std::optional<std::int64_t> parse_time_ms(std::string_view text) {
  auto ns = parse_rfc3339_ns(text);
  if (!ns) return std::nullopt;
  return *ns / 1'000'000;
}

json to_json(const StatusItem& s) {
  return {{"status", to_string(s.status)},
          {"reason", s.reason},
          {"description", s.description},
          {"transition_time", format_time_ms(s.time_ms)},
          {"exit_code", s.exit_code ? json(*s.exit_code) : json()}};
}

namespace {
std::string credits(double v) { return fmt::format("{:.4f}", v); }
}  // namespace

json to_json(const Job& job, std::int64_t now_ms, bool with_statuses) {
  auto spec = spec_to_json(job.spec);
  const auto& cur = job.current();
  auto started = job.started_ms();
  auto finished = job.finished_ms();
  std::optional<int> exit_code;
  for (auto it = job.statuses.rbegin(); it != job.statuses.rend(); ++it)
    if (it->exit_code) {
      exit_code = it->exit_code;
      break;
    }
  double run_time = job.run_time_seconds(now_ms);
  json history = {{"status", to_string(cur.status)},
                  {"reason", cur.reason},
                  {"description", cur.description},
                  {"created_at", format_time_ms(job.created_ms)},
                  {"started_at", started ? json(format_time_ms(*started)) : json()},
                  {"finished_at", finished ? json(format_time_ms(*finished)) : json()},
                  {"exit_code", is_finished(cur.status) && exit_code ? json(*exit_code) : json()},
                  {"run_time_seconds", run_time},
                  {"restarts", job.restarts()}};
  json container = {{"image", spec["image"]},        {"command", spec["command"]},
                    {"entrypoint", spec["entrypoint"]}, {"env", spec["env"]},
                    {"working_dir", spec["working_dir"]}, {"tty", spec["tty"]},
                    {"resources", spec["resources"]},  {"volumes", spec["volumes"]},
                    {"secret_env", spec["secret_env"]}, {"secret_volumes", spec["secret_volumes"]},
                    {"disk_volumes", spec["disk_volumes"]}, {"http", spec["http"]}};
  // Where neurod serves the job's HTTP port (monitoring's proxy), for links (the console).
  if (container["http"].is_object()) container["http"]["url"] = http_path(job.id);
  json j = {{"id", job.id},
            {"name", job.spec.name.empty() ? json() : json(job.spec.name)},
            {"owner", job.owner},
            {"project_name", job.spec.project},
            {"cluster_name", job.cluster},
            {"uri", job.uri()},
            {"status", to_string(cur.status)},
            {"history", history},
            {"container", container},
            {"preset_name", job.spec.preset.empty() ? json() : json(job.spec.preset)},
            {"tags", job.spec.tags},
            {"description", job.spec.description},
            {"restart_policy", spec["restart_policy"]},
            {"priority", spec["priority"]},
            {"schedule_timeout", job.spec.schedule_timeout},
            {"max_run_time_minutes", spec["max_run_time_minutes"]},
            {"executor", job.executor.empty() ? json() : json(job.executor)},
            {"gpu_ids", job.gpu_ids},
            {"restarts", job.restarts()},
            {"price_credits_per_hour", credits(job.price_per_hour)},
            {"total_price_credits", credits(job.price_per_hour * run_time / 3600.0)}};
  if (with_statuses) {
    json items = json::array();
    for (const auto& s : job.statuses) items.push_back(to_json(s));
    j["statuses"] = items;
  }
  return j;
}

}  // namespace neurod::jobs

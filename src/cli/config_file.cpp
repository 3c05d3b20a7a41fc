#include "cli/config_file.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace neurod::cli {

namespace fs = std::filesystem;

namespace {

// The keys this version understands; everything else goes to UserConfig::other.
constexpr std::string_view kUrlKey = "url";
constexpr std::string_view kTokenKey = "token";

std::string where(const fs::path& path, const YAML::Mark& mark) {
  // yaml-cpp counts from 0; editors count from 1.
  if (mark.is_null()) return path.string();
  return path.string() + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Error config_error(const std::string& message) { return Error(errc::invalid_argument, message); }

std::string read_string(const fs::path& path, const YAML::Node& key, const YAML::Node& value) {
  if (value.IsNull()) return {};
  if (!value.IsScalar())
    throw config_error(where(path, value.Mark()) + ": '" + key.as<std::string>() + "' must be a string");
  return value.as<std::string>();
}

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, std::string_view data, const fs::path& tmp) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(errc::internal, "cannot write " + tmp.string() + ": " + errno_text());
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

fs::path user_config_path(const EnvLookup& env) {
  if (auto p = env("NEURO_CONFIG")) return fs::path(*p);
  if (auto xdg = env("XDG_CONFIG_HOME")) return fs::path(*xdg) / "neuro" / "config.yaml";
  if (auto home = env("HOME")) return fs::path(*home) / ".config" / "neuro" / "config.yaml";
  throw config_error("cannot find the config file: none of NEURO_CONFIG, XDG_CONFIG_HOME and HOME is set");
}

UserConfig load_user_config(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return {};
    throw config_error("cannot read " + path.string() + ": " + errno_text());
  }
  std::stringstream text;
  text << in.rdbuf();

  YAML::Node doc;
  try {
    doc = YAML::Load(text.str());
  } catch (const YAML::ParserException& e) {
    throw config_error(where(path, e.mark) + ": malformed YAML: " + e.msg);
  }
  UserConfig out;
  if (!doc || doc.IsNull()) return out;  // an empty file
  if (!doc.IsMap())
    throw config_error(where(path, doc.Mark()) + ": expected a mapping of settings such as \"url: http://host:8080\"");
  try {
    for (const auto& kv : doc) {
      if (!kv.first.IsScalar()) throw config_error(where(path, kv.first.Mark()) + ": keys must be strings");
      auto key = kv.first.as<std::string>();
      if (key == kUrlKey)
        out.url = read_string(path, kv.first, kv.second);
      else if (key == kTokenKey)
        out.token = read_string(path, kv.first, kv.second);
      else
        out.other[key] = kv.second;
    }
  } catch (const YAML::Exception& e) {
    throw config_error(where(path, e.mark) + ": " + e.msg);
  }
  return out;
}

std::string to_yaml(const UserConfig& config) {
  YAML::Emitter emit;
  emit << YAML::BeginMap;
  if (!config.url.empty()) emit << YAML::Key << std::string(kUrlKey) << YAML::Value << config.url;
  if (!config.token.empty()) emit << YAML::Key << std::string(kTokenKey) << YAML::Value << config.token;
  if (config.other && config.other.IsMap())
    for (const auto& kv : config.other) emit << YAML::Key << kv.first << YAML::Value << kv.second;
  emit << YAML::EndMap;
  return std::string(emit.c_str()) + "\n";
}

void save_user_config(const fs::path& path, const UserConfig& config) {
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    // Only the config's own directory is made private: ~/.config is not ours to change.
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw Error(errc::internal, "cannot create " + dir.string() + ": " + errno_text());
  }

  auto tmp = dir / ("." + path.filename().string() + ".XXXXXX");
  std::string tmpl = tmp.string();
  int fd = ::mkstemp(tmpl.data());  // mode 0600
  if (fd < 0) throw Error(errc::internal, "cannot write " + path.string() + ": " + errno_text());
  tmp = tmpl;
  try {
    if (::fchmod(fd, 0600) != 0) throw Error(errc::internal, "cannot chmod " + tmp.string() + ": " + errno_text());
    write_all(fd, to_yaml(config), tmp);
    if (::fsync(fd) != 0) throw Error(errc::internal, "cannot write " + tmp.string() + ": " + errno_text());
    if (::close(fd) != 0) {
      fd = -1;
      throw Error(errc::internal, "cannot write " + tmp.string() + ": " + errno_text());
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(errc::internal, "cannot replace " + path.string() + ": " + errno_text());
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string_view to_string(Source source) {
  switch (source) {
    case Source::flag:
      return "flag";
    case Source::env:
      return "env";
    case Source::file:
      return "file";
    case Source::default_value:
      return "default";
    case Source::none:
      return "none";
  }
  return "none";
}

Settings resolve_settings(const std::optional<std::string>& url_flag, const EnvLookup& env, const UserConfig& file) {
  Settings s;
  if (url_flag && !url_flag->empty()) {
    s.url = *url_flag;
    s.url_source = Source::flag;
  } else if (auto u = env("NEURO_URL")) {
    s.url = *u;
    s.url_source = Source::env;
  } else if (!file.url.empty()) {
    s.url = file.url;
    s.url_source = Source::file;
  } else {
    s.url = std::string(kDefaultUrl);
    s.url_source = Source::default_value;
  }
  if (auto t = env("NEURO_TOKEN")) {
    s.token = *t;
    s.token_source = Source::env;
  } else if (!file.token.empty()) {
    s.token = file.token;
    s.token_source = Source::file;
  }
  return s;
}

}  // namespace neurod::cli

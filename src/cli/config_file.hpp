// The per-user CLI configuration (~/.config/neuro/config.yaml) and how the CLI
// settles on a server URL and token from flags, environment and that file.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace neurod::cli {

// Reads one environment variable; tests pass their own instead of the process's.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The process environment. An empty value counts as unset.
EnvLookup process_env();

inline constexpr std::string_view kDefaultUrl = "http://127.0.0.1:8080";

// $NEURO_CONFIG, else $XDG_CONFIG_HOME/neuro/config.yaml, else $HOME/.config/neuro/config.yaml.
// Throws Error(invalid_argument) when none of the three is set.
std::filesystem::path user_config_path(const EnvLookup& env);

struct UserConfig {
  std::string url;    // empty: not set
  std::string token;  // empty: not set
  // Keys this version does not know, kept so that a rewrite by an older neuro
  // does not drop settings written by a newer one. Always a map (maybe empty).
  YAML::Node other = YAML::Node(YAML::NodeType::Map);
};

// A missing file is an empty config. A malformed one throws Error(invalid_argument)
// whose message starts with "PATH:LINE:COLUMN:".
UserConfig load_user_config(const std::filesystem::path& path);
// Writes atomically (temporary file + rename) with mode 0600, creating the
// directory with mode 0700 when it does not exist. Throws Error(internal) on I/O failure.
void save_user_config(const std::filesystem::path& path, const UserConfig& config);
std::string to_yaml(const UserConfig& config);

// Where a resolved setting came from, for `neuro config show` and error hints.
enum class Source { flag, env, file, default_value, none };
std::string_view to_string(Source source);

struct Settings {
  std::string url;
  Source url_source = Source::default_value;
  std::string token;
  Source token_source = Source::none;
};

// URL: --url > NEURO_URL > config file > kDefaultUrl. Token: NEURO_TOKEN > config file.
Settings resolve_settings(const std::optional<std::string>& url_flag, const EnvLookup& env, const UserConfig& file);

}  // namespace neurod::cli

// What every command shares: the global options, the settings resolved from them,
// the HTTP client, and how results are printed.
#pragma once

#include "cli/config_file.hpp"
#include "cli/output.hpp"
#include "http/client.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace neurod::cli {

struct GlobalOptions {
  std::optional<std::string> url;
  std::string output = "table";  // table | json
  std::string timeout = "30s";
  bool no_color = false;
  bool verbose = false;
};

class Context {
 public:
  explicit Context(EnvLookup env = process_env());

  GlobalOptions options;

  const EnvLookup& env() const { return env_; }
  bool json_output() const { return options.output == "json"; }
  bool color() const;  // for stdout

  // The config file is read on first use, so that --help and --version work
  // even when it is malformed.
  const std::filesystem::path& config_path();
  const UserConfig& user_config();
  const Settings& settings();

  // One request, with -v tracing. Transport failures throw neurod::Error;
  // the response is returned whatever its status.
  http::ClientResponse call(std::string_view method, std::string_view target, std::string body = {},
                            std::vector<std::pair<std::string, std::string>> headers = {});
  // A GET whose 2xx JSON answer is returned; anything else throws CliError.
  nlohmann::json get_json(std::string_view target);
  // A request with an optional JSON body. A 2xx answer is returned as JSON (null when
  // empty, as for 204); anything else throws CliError (server_error).
  nlohmann::json send_json(std::string_view method, std::string_view target,
                           const std::optional<nlohmann::json>& body = std::nullopt);

  // GET /api/v1/auth/whoami, asked once per run; me() is its "name".
  const nlohmann::json& whoami();
  std::string me();
  // For a canonical URI (`storage://CLUSTER/…`, `image://CLUSTER/…`) as the user wrote it
  // (`text`): throws CliError(usage) unless CLUSTER is this server's cluster.
  void require_this_cluster(std::string_view text, const std::string& cluster);

  // For login and logout: talk to this URL, or send this token (empty: none),
  // instead of the resolved settings. Call before the first request, or again to
  // start over with a fresh connection.
  void use_url(std::string url);
  void use_token(std::string token);

  // The command chosen on the command line; set by its CLI11 callback, run by main.
  std::function<int()> action;

 private:
  http::Client& client();

  EnvLookup env_;
  std::optional<std::filesystem::path> config_path_;
  std::optional<UserConfig> user_config_;
  std::optional<Settings> settings_;
  std::optional<std::string> token_override_;
  std::optional<nlohmann::json> whoami_;
  std::unique_ptr<http::Client> client_;
};

// Prints JSON for scripts: indented, one document, trailing newline.
void print_json(const nlohmann::json& value);

}  // namespace neurod::cli

#include "cli/context.hpp"

#include "cli/api_path.hpp"
#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

namespace neurod::cli {

Context::Context(EnvLookup env) : env_(std::move(env)) {}

bool Context::color() const { return use_color(STDOUT_FILENO, options.no_color, env_); }

const std::filesystem::path& Context::config_path() {
  if (!config_path_) config_path_ = user_config_path(env_);
  return *config_path_;
}

const UserConfig& Context::user_config() {
  if (!user_config_) user_config_ = load_user_config(config_path());
  return *user_config_;
}

const Settings& Context::settings() {
  if (!settings_) {
    // The file is only needed when neither the flag nor the environment settles both values.
    bool need_file = !((options.url && !options.url->empty()) || env_("NEURO_URL")) || !env_("NEURO_TOKEN");
    settings_ = resolve_settings(options.url, env_, need_file ? user_config() : UserConfig{});
  }
  return *settings_;
}

http::Client& Context::client() {
  if (!client_) {
    auto timeout = parse_duration(options.timeout);
    if (!timeout || timeout->count() <= 0)
      throw CliError(Exit::usage, "--timeout: \"" + options.timeout + "\" is not a duration such as 30s, 2m or 1500ms");
    const auto& s = settings();
    http::ClientOptions opts;
    opts.timeout = *timeout;
    opts.token = token_override_ ? *token_override_ : s.token;
    try {
      client_ = std::make_unique<http::Client>(s.url, std::move(opts));
    } catch (const Error& e) {
      std::string from = s.url_source == Source::flag   ? "--url"
                         : s.url_source == Source::env  ? "NEURO_URL"
                         : s.url_source == Source::file ? config_path().string()
                                                        : "the default";
      throw CliError(Exit::usage, std::string(e.what()) + " (from " + from + ")");
    }
  }
  return *client_;
}

http::ClientResponse Context::call(std::string_view method, std::string_view target, std::string body,
                                   std::vector<std::pair<std::string, std::string>> headers) {
  auto& c = client();
  auto started = std::chrono::steady_clock::now();
  if (options.verbose) std::cerr << "> " << method << " " << c.url().str() << target << std::endl;
  try {
    auto r = c.request(method, target, std::move(body), std::move(headers));
    if (options.verbose) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      std::cerr << "< " << r.status << " (" << ms.count() << " ms, " << r.body.size() << " bytes";
      if (auto id = r.header("X-Request-Id")) std::cerr << ", request id " << *id;
      std::cerr << ")" << std::endl;
    }
    return r;
  } catch (const Error& e) {
    if (options.verbose) std::cerr << "< failed: " << e.what() << std::endl;
    throw;
  }
}

nlohmann::json Context::get_json(std::string_view target) {
  auto r = call("GET", target);
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  return r.json();
}

nlohmann::json Context::send_json(std::string_view method, std::string_view target,
                                  const std::optional<nlohmann::json>& body) {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text;
  if (body) {
    text = body->dump();
    headers.emplace_back("Content-Type", "application/json");
  }
  auto r = call(method, target, std::move(text), std::move(headers));
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  if (r.body.empty()) return nullptr;
  return r.json();
}

const nlohmann::json& Context::whoami() {
  if (!whoami_) {
    auto j = get_json(api("/auth/whoami"));
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
      throw CliError(Exit::server, "the server's answer to GET /api/v1/auth/whoami has no \"name\"");
    whoami_ = std::move(j);
  }
  return *whoami_;
}

std::string Context::me() { return whoami()["name"].get<std::string>(); }

void Context::require_this_cluster(std::string_view text, const std::string& cluster) {
  const auto& who = whoami();
  auto mine = who.contains("cluster") && who["cluster"].is_string() ? who["cluster"].get<std::string>() : "";
  if (!mine.empty() && cluster != mine)
    throw CliError(Exit::usage, fmt::format("{}: unknown cluster \"{}\" (this server is cluster \"{}\")", text, cluster,
                                            mine));
}

void Context::use_url(std::string url) {
  options.url = std::move(url);
  settings_.reset();
  client_.reset();
  whoami_.reset();
}

void Context::use_token(std::string token) {
  token_override_ = std::move(token);
  client_.reset();
  whoami_.reset();
}

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << std::endl; }

}  // namespace neurod::cli

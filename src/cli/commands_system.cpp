// neuro version, neuro health.
#include "cli/commands.hpp"
#include "cli/table.hpp"

#include <iostream>

namespace neurod::cli {

namespace {

constexpr std::string_view kClientName = "neuro";
constexpr std::string_view kClientVersion = NEUROD_VERSION;

std::string str_field(const nlohmann::json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return {};
}

std::string first_line(std::string_view text) { return std::string(text.substr(0, text.find('\n'))); }

// The client's version always; the server's when it answers. Exits 0 either way:
// the client part is what this command promises, and the output says plainly
// when the server part is missing.
int run_version(Context& ctx) {
  nlohmann::json server = nullptr;
  nlohmann::json server_error = nullptr;
  std::string url;
  std::string server_state = "unreachable";
  try {
    url = ctx.settings().url;
    auto v = ctx.get_json("/api/v1/version");
    server = {{"name", str_field(v, "name")}, {"version", str_field(v, "version")}};
  } catch (const CliError& e) {
    if (e.exit() == Exit::usage) throw;  // a bad --url or --timeout is still a mistake to report
    server_state = "error";
    server_error = first_line(e.what());  // without the hint under it
  } catch (const Error& e) {
    auto err = from_error(e);
    if (err.exit() == Exit::usage) throw err;
    if (err.exit() != Exit::unreachable) server_state = "error";
    server_error = e.what();
  }

  if (ctx.json_output()) {
    print_json({{"client", {{"name", kClientName}, {"version", kClientVersion}}},
                {"server", server},
                {"server_url", url.empty() ? nlohmann::json(nullptr) : nlohmann::json(url)},
                {"server_error", server_error}});
    return code(Exit::ok);
  }
  std::cout << "Client: " << kClientName << " " << kClientVersion << "\n";
  if (!server.is_null()) {
    std::cout << "Server: " << server["name"].get<std::string>() << " " << server["version"].get<std::string>()
              << " at " << url << "\n";
  } else {
    auto msg = server_error.get<std::string>();
    std::cout << "Server: " << (ctx.color() ? paint(server_state, Tone::bad) : server_state) << " (" << msg << ")\n";
  }
  std::cout.flush();
  return code(Exit::ok);
}

// A health body is one with a "status" string; a 503 carries one too.
bool is_health_body(const nlohmann::json& j) {
  return j.is_object() && j.contains("status") && j["status"].is_string();
}

int run_health(Context& ctx) {
  auto r = ctx.call("GET", "/api/v1/health");
  auto body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  bool answered = (r.status >= 200 && r.status < 300) || r.status == 503;
  if (!answered || !is_health_body(body)) {
    if (r.status >= 200 && r.status < 300)
      throw CliError(Exit::server,
                     "the server's health answer is not understood (HTTP " + std::to_string(r.status) + ")");
    throw server_error(r.status, r.body);
  }
  auto status = body["status"].get<std::string>();
  int exit = status == "ok" ? code(Exit::ok) : code(Exit::failure);

  if (ctx.json_output()) {
    print_json(body);
    return exit;
  }
  bool color = ctx.color();
  std::cout << "Server: " << ctx.settings().url;
  if (auto v = str_field(body, "version"); !v.empty()) std::cout << " (neurod " << v << ")";
  std::cout << "\nStatus: " << (color ? paint(status, status_tone(status)) : status) << "\n";

  Table table({{"MODULE"}, {"STATUS", Align::left, true}, {"MESSAGE"}});
  if (body.contains("modules") && body["modules"].is_object()) {
    for (const auto& [name, m] : body["modules"].items()) {
      bool healthy = m.is_object() && m.contains("healthy") && m["healthy"].is_boolean() && m["healthy"].get<bool>();
      table.add_row({name, healthy ? "healthy" : "unhealthy", str_field(m, "message")});
    }
  }
  if (table.rows() > 0) std::cout << "\n" << table.render(color);
  std::cout.flush();
  return exit;
}

}  // namespace

void register_system_commands(CLI::App& app, Context& ctx) {
  auto* version = app.add_subcommand("version", "Show the client's version and the server's");
  on_run(version, ctx, [&ctx] { return run_version(ctx); });

  auto* health = app.add_subcommand("health", "Show the server's health, module by module (exit 1 when unhealthy)");
  on_run(health, ctx, [&ctx] { return run_health(ctx); });
}

}  // namespace neurod::cli

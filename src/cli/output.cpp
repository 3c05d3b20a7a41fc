#include "cli/output.hpp"

#include <nlohmann/json.hpp>

namespace neurod::cli {

namespace {

std::string reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return {};
  }
}

// A proxy's HTML page or a stray text body: show a short, single-line excerpt.
std::string excerpt(std::string_view body) {
  constexpr std::size_t kMax = 200;
  std::string out;
  for (char c : body.substr(0, kMax)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (body.size() > kMax) out += "…";
  return out;
}

// A 403 lists what was missing, at the top level or inside "error":
// "missing": [{"uri", "action"}] (modules/auth/README.md).
std::string missing_permissions(std::string_view body) {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return {};
  const nlohmann::json* missing = nullptr;
  if (parsed.contains("missing")) missing = &parsed["missing"];
  if (parsed.contains("error") && parsed["error"].is_object() && parsed["error"].contains("missing"))
    missing = &parsed["error"]["missing"];
  if (missing == nullptr || !missing->is_array() || missing->empty()) return {};
  std::string out = "\nMissing:";
  auto one = [](const nlohmann::json& p) -> std::string {
    if (!p.is_object()) return p.dump();
    std::string action = p.contains("action") && p["action"].is_string() ? p["action"].get<std::string>() : "?";
    std::string uri = p.contains("uri") && p["uri"].is_string() ? p["uri"].get<std::string>() : "?";
    return action + " on " + uri;
  };
  for (const auto& p : *missing) {
    if (p.is_array()) {  // any of several
      std::string alt;
      for (const auto& q : p) alt += (alt.empty() ? "" : " or ") + one(q);
      out += "\n  " + alt;
    } else {
      out += "\n  " + one(p);
    }
  }
  return out;
}

}  // namespace

std::string describe_error(int status, std::string_view body) {
  std::string message;
  std::string code_name;
  std::string request_id;
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const auto& err = parsed["error"];
    if (err.contains("message") && err["message"].is_string()) message = err["message"].get<std::string>();
    if (err.contains("code") && err["code"].is_string()) code_name = err["code"].get<std::string>();
    if (err.contains("request_id") && err["request_id"].is_string()) request_id = err["request_id"].get<std::string>();
  }
  std::string http = "HTTP " + std::to_string(status);
  if (auto r = reason(status); !r.empty()) http += " " + r;
  if (message.empty()) message = body.empty() || parsed.is_object() ? "the server answered " + http : excerpt(body);

  std::string detail = http;
  if (!code_name.empty()) detail += ", " + code_name;
  if (!request_id.empty()) detail += ", request id " + request_id;
  return message + " (" + detail + ")";
}

std::string error_code(std::string_view body) {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const auto& err = parsed["error"];
    if (err.contains("code") && err["code"].is_string()) return err["code"].get<std::string>();
  }
  return {};
}

CliError server_error(int status, std::string_view body) {
  std::string text = describe_error(status, body);
  // The server's message may already say so.
  auto prefixed = [&text](std::string_view prefix) {
    return text.starts_with(prefix) ? text : std::string(prefix) + ": " + text;
  };
  if (status == 401)
    return CliError(Exit::auth, prefixed("authentication required") +
                                    "\nLog in with `neuro login`, or set a token with NEURO_TOKEN.");
  if (status == 403) return CliError(Exit::auth, prefixed("permission denied") + missing_permissions(body));
  return CliError(Exit::server, text);
}

CliError from_error(const Error& e) {
  switch (e.code()) {
    case errc::unavailable:
      return CliError(Exit::unreachable, std::string(e.what()) + "\n" + std::string(kUnreachableHint));
    case errc::gateway_timeout:
      return CliError(Exit::unreachable,
                      std::string(e.what()) + "\nRaise the limit with --timeout (for example --timeout 2m).");
    case errc::invalid_argument:
    case errc::bad_request:
      return CliError(Exit::usage, e.what());
    case errc::unauthenticated:
    case errc::forbidden:
      return CliError(Exit::auth, e.what());
    case errc::bad_gateway:
      return CliError(Exit::server, e.what());
    default:
      return CliError(Exit::failure, e.what());
  }
}

}  // namespace neurod::cli

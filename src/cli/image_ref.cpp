#include "cli/image_ref.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace neurod::cli {

namespace {

using nlohmann::json;

constexpr std::string_view kScheme = "image:";

[[noreturn]] void bad_uri(std::string_view text, std::string_view why) {
  throw CliError(Exit::usage, fmt::format("invalid image URI \"{}\": {}", text, why));
}

// The OCI distribution spec's grammar (spec.md "Pulling manifests").
const std::regex& component_re() {
  static const std::regex re("[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*");
  return re;
}
const std::regex& tag_re() {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
  return re;
}
const std::regex& digest_re() {
  static const std::regex re("[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+");
  return re;
}

bool valid_path(std::string_view path) {
  if (path.empty()) return false;
  std::size_t pos = 0;
  while (true) {
    auto slash = path.find('/', pos);
    auto comp = std::string(path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
    if (!std::regex_match(comp, component_re())) return false;
    if (slash == std::string_view::npos) return true;
    pos = slash + 1;
  }
}

// Splits "name[:tag][@digest]" where the tag's ':' comes after the last '/'.
struct Split {
  bool has_tag = false;     // a ':' after the last '/', even with nothing after it
  bool has_digest = false;  // an '@'
};
Split split_reference(std::string_view in, std::string& name, std::string& tag, std::string& digest) {
  Split s;
  auto at = in.find('@');
  if (at != std::string_view::npos) {
    s.has_digest = true;
    digest = std::string(in.substr(at + 1));
    in = in.substr(0, at);
  }
  auto colon = in.rfind(':');
  auto slash = in.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    s.has_tag = true;
    tag = std::string(in.substr(colon + 1));
    in = in.substr(0, colon);
  }
  name = std::string(in);
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

std::string status_text(int status) {
  // The reason phrases server_error shows, for the statuses a registry answers.
  switch (status) {
    case 400: return "HTTP 400 Bad Request";
    case 401: return "HTTP 401 Unauthorized";
    case 403: return "HTTP 403 Forbidden";
    case 404: return "HTTP 404 Not Found";
    case 405: return "HTTP 405 Method Not Allowed";
    case 409: return "HTTP 409 Conflict";
    case 413: return "HTTP 413 Payload Too Large";
    case 416: return "HTTP 416 Range Not Satisfiable";
    case 429: return "HTTP 429 Too Many Requests";
    case 500: return "HTTP 500 Internal Server Error";
    case 503: return "HTTP 503 Service Unavailable";
    default: return "HTTP " + std::to_string(status);
  }
}

std::uint64_t size_of(const json& descriptor, std::string_view what) {
  if (!descriptor.is_object() || !descriptor.contains("size") || !descriptor["size"].is_number_unsigned())
    throw CliError(Exit::server, fmt::format("the registry sent a manifest whose {} has no size", what));
  return descriptor["size"].get<std::uint64_t>();
}

}  // namespace

bool is_image_uri(std::string_view text) { return text.substr(0, kScheme.size()) == kScheme; }

ImageUri ImageUri::parse(std::string_view text) {
  if (!is_image_uri(text))
    bad_uri(text, "expected image:NAME[:TAG], image:/PROJECT/NAME[:TAG] or image://CLUSTER/PROJECT/NAME[:TAG]");
  auto rest = text.substr(kScheme.size());
  ImageUri u;
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    auto slash = rest.find('/');
    u.cluster = std::string(rest.substr(0, slash));
    if (u.cluster->empty()) bad_uri(text, "no cluster after image://");
    if (slash == std::string_view::npos) bad_uri(text, "no project and name after the cluster");
    rest = rest.substr(slash);
    u.relative = false;
  }
  if (!rest.empty() && rest.front() == '/') {
    u.relative = false;
    rest.remove_prefix(1);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0)
      bad_uri(text, "write image:/PROJECT/NAME[:TAG] (or image:NAME[:TAG] for your own project)");
    u.project = std::string(rest.substr(0, slash));
    rest = rest.substr(slash + 1);
    if (!std::regex_match(u.project, component_re()))
      bad_uri(text, fmt::format("the project \"{}\" cannot be part of an image name (lower-case letters, digits, "
                                "'.', '_', '-')",
                                u.project));
  }
  auto split = split_reference(rest, u.name, u.tag, u.digest);
  if (u.name.empty()) bad_uri(text, "no image name");
  if (!valid_path(u.name))
    bad_uri(text, "an image name is lower-case letters and digits, separated by '.', '_', '__', '-' or '/'");
  if (split.has_tag && !std::regex_match(u.tag, tag_re()))
    bad_uri(text, "a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'");
  if (split.has_digest && !std::regex_match(u.digest, digest_re()))
    bad_uri(text, "a digest is ALGORITHM:HEX, e.g. sha256:0123…");
  if (split.has_tag && split.has_digest) bad_uri(text, "give a tag or a digest, not both");
  return u;
}

ImageUri ImageUri::resolved(const std::string& current_project) const {
  ImageUri u = *this;
  if (u.relative) u.project = current_project;
  return u;
}

std::string ImageUri::repository() const { return project + "/" + name; }

std::string ImageUri::reference() const {
  if (!digest.empty()) return digest;
  if (!tag.empty()) return tag;
  return "latest";
}

std::string ImageUri::display(std::string_view current_project) const {
  std::string out(kScheme);
  if (!relative && !(current_project.size() && project == current_project)) out += "/" + project + "/";
  out += name;
  if (!digest.empty())
    out += "@" + digest;
  else if (!tag.empty())
    out += ":" + tag;
  return out;
}

std::string ImageUri::absolute() const {
  ImageUri u = *this;
  u.relative = false;
  return u.display();
}

LocalImage parse_local_image(std::string_view text) {
  auto bad = [&](std::string_view why) {
    throw CliError(Exit::usage, fmt::format("invalid local image \"{}\": {}", text, why));
  };
  if (is_image_uri(text)) bad("that is a remote image: the local image comes first (neuro image push LOCAL [REMOTE])");
  LocalImage l;
  l.ref = std::string(text);
  std::string name, tag, digest;
  auto split = split_reference(text, name, tag, digest);
  l.by_digest = split.has_digest;
  // A first component with '.' or ':', or "localhost", is a registry host.
  auto slash = name.find('/');
  if (slash != std::string::npos) {
    auto first = std::string_view(name).substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost") {
      bool hub = first == "docker.io" || first == "index.docker.io";
      name = name.substr(slash + 1);
      if (hub && name.starts_with("library/")) name = name.substr(8);
    }
  }
  if (name.empty()) bad("no name");
  if (!valid_path(name)) bad("a name is lower-case letters and digits, separated by '.', '_', '__', '-' or '/'");
  if (split.has_tag && !std::regex_match(tag, tag_re())) bad("a tag is up to 128 letters, digits, '_', '.' and '-'");
  l.name = name;
  l.tag = tag.empty() ? "latest" : tag;
  return l;
}

std::string registry_host(std::string_view scheme, std::string_view host, std::string_view port) {
  std::string h = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
  if (scheme == "https" && (port.empty() || port == "443")) return h;
  if (port.empty()) return h + (scheme == "https" ? "" : ":80");
  return h + ":" + std::string(port);
}

std::string normalize_registry(std::string_view server_url) {
  std::string s = trim(server_url);
  std::string_view v = s;
  bool https = false;
  if (auto sep = v.find("://"); sep != std::string_view::npos) {
    https = v.substr(0, sep) == "https";
    v.remove_prefix(sep + 3);
  }
  v = v.substr(0, v.find('/'));
  std::string out(v);
  if (out.ends_with(":443") && (https || out.find("://") == std::string::npos)) out.resize(out.size() - 4);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::optional<std::string> next_link(std::string_view header) {
  // Link: <target>; rel="next", <other>; rel="prev"
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto open = header.find('<', pos);
    if (open == std::string_view::npos) return std::nullopt;
    auto close = header.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    auto target = header.substr(open + 1, close - open - 1);
    auto end = header.find('<', close);
    auto params = header.substr(close + 1, end == std::string_view::npos ? std::string_view::npos : end - close - 1);
    std::string p(params);
    p.erase(std::remove(p.begin(), p.end(), ' '), p.end());
    std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
    if (p.find("rel=\"next\"") != std::string::npos || p.find("rel=next") != std::string::npos) {
      if (auto sep = target.find("://"); sep != std::string_view::npos) {
        auto path = target.find('/', sep + 3);
        target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
      }
      if (target.empty() || target.front() != '/') return std::nullopt;
      return std::string(target);
    }
    pos = close + 1;
  }
  return std::nullopt;
}

CliError registry_error(int status, std::string_view body, std::string_view request_id) {
  auto parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("errors") || !parsed["errors"].is_array() || parsed["errors"].empty()) {
    if (body.empty() && !request_id.empty()) {
      // A HEAD has no body: keep the request id.
      std::string text = "the registry answered " + status_text(status) + " (request id " + std::string(request_id) + ")";
      if (status == 401)
        return CliError(Exit::auth, "authentication required: " + text +
                                        "\nLog in with `neuro login`, or set a token with NEURO_TOKEN.");
      if (status == 403) return CliError(Exit::auth, "permission denied: " + text);
      return CliError(Exit::server, text);
    }
    return server_error(status, body);
  }
  std::string messages, codes, missing;
  for (const auto& e : parsed["errors"]) {
    if (!e.is_object()) continue;
    std::string m = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    std::string c = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    if (m.empty()) m = c.empty() ? "error" : c;
    if (e.contains("detail")) {
      // A string detail says more; an object's fields repeat the message, except what a
      // 403 lacks (neurod's "missing" permissions).
      const auto& d = e["detail"];
      std::string ds = d.is_string() ? d.get<std::string>() : "";
      if (ds.size() > 300) ds = ds.substr(0, 300) + "…";
      if (!ds.empty() && ds != m) m += ": " + ds;
      if (d.is_object() && d.contains("missing") && d["missing"].is_array())
        for (const auto& p : d["missing"])
          if (p.is_object() && p.contains("uri") && p["uri"].is_string())
            missing += "\n  " + (p.contains("action") && p["action"].is_string() ? p["action"].get<std::string>() : "?") +
                       " on " + p["uri"].get<std::string>();
    }
    messages += (messages.empty() ? "" : "; ") + m;
    if (!c.empty()) codes += (codes.empty() ? "" : ", ") + c;
  }
  std::string detail = status_text(status);
  if (!codes.empty()) detail += ", " + codes;
  if (!request_id.empty()) detail += ", request id " + std::string(request_id);
  std::string text = messages + " (" + detail + ")";
  if (status == 401)
    return CliError(Exit::auth,
                    "authentication required: " + text + "\nLog in with `neuro login`, or set a token with NEURO_TOKEN.");
  if (status == 403) return CliError(Exit::auth, "permission denied: " + text + (missing.empty() ? "" : "\nMissing:" + missing));
  return CliError(Exit::server, text);
}

std::string manifest_accept() {
  return fmt::format("{}, {}, {}, {}", kOciManifest, kOciIndex, kDockerManifest, kDockerList);
}

bool is_index(const json& manifest, std::string_view content_type) {
  std::string mt;
  if (manifest.is_object() && manifest.contains("mediaType") && manifest["mediaType"].is_string())
    mt = manifest["mediaType"].get<std::string>();
  if (mt.empty()) mt = std::string(content_type.substr(0, content_type.find(';')));
  if (mt == kOciIndex || mt == kDockerList) return true;
  if (mt == kOciManifest || mt == kDockerManifest) return false;
  return manifest.is_object() && manifest.contains("manifests") && !manifest.contains("layers");
}

std::uint64_t image_size(const json& manifest) {
  if (!manifest.is_object() || !manifest.contains("config") || !manifest.contains("layers") ||
      !manifest["layers"].is_array())
    throw CliError(Exit::server, "the registry sent a manifest without config and layers");
  std::uint64_t total = size_of(manifest["config"], "config");
  for (const auto& l : manifest["layers"]) total += size_of(l, "layer");
  return total;
}

std::string platform_string(const json& d) {
  if (!d.is_object() || !d.contains("platform") || !d["platform"].is_object()) return "unknown";
  const auto& p = d["platform"];
  auto get = [&](const char* k) { return p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : ""; };
  auto os = get("os"), arch = get("architecture"), variant = get("variant");
  if (os.empty() && arch.empty()) return "unknown";
  std::string out = (os.empty() ? "unknown" : os) + "/" + (arch.empty() ? "unknown" : arch);
  if (!variant.empty()) out += "/" + variant;
  return out;
}

std::optional<Engine> parse_engine(std::string_view text) {
  if (text.empty() || text == "auto") return std::nullopt;
  if (text == "podman") return Engine::podman;
  if (text == "docker") return Engine::docker;
  throw CliError(Exit::usage, fmt::format("unknown engine \"{}\": use podman or docker", text));
}

std::string engine_name(Engine e) { return e == Engine::podman ? "podman" : "docker"; }

std::vector<Argv> push_commands(Engine e, const std::string& local, const std::string& remote,
                                const std::string& auth_dir, bool tls_verify, bool quiet) {
  std::vector<Argv> out;
  if (e == Engine::podman) {
    Argv push{"podman", "push"};
    if (quiet) push.push_back("--quiet");
    push.push_back("--authfile");
    push.push_back(auth_dir + "/config.json");
    if (!tls_verify) push.push_back("--tls-verify=false");
    push.push_back(local);
    push.push_back("docker://" + remote);
    out.push_back(std::move(push));
  } else {
    out.push_back(Argv{"docker", "tag", local, remote});
    Argv push{"docker", "--config", auth_dir, "push"};
    if (quiet) push.push_back("--quiet");
    push.push_back(remote);
    out.push_back(std::move(push));
  }
  return out;
}

std::vector<Argv> pull_commands(Engine e, const std::string& remote, const std::string& local,
                                const std::string& auth_dir, bool tls_verify, bool quiet) {
  std::vector<Argv> out;
  if (e == Engine::podman) {
    Argv pull{"podman", "pull"};
    if (quiet) pull.push_back("--quiet");
    pull.push_back("--authfile");
    pull.push_back(auth_dir + "/config.json");
    if (!tls_verify) pull.push_back("--tls-verify=false");
    pull.push_back("docker://" + remote);
    out.push_back(std::move(pull));
    out.push_back(Argv{"podman", "tag", remote, local});
  } else {
    Argv pull{"docker", "--config", auth_dir, "pull"};
    if (quiet) pull.push_back("--quiet");
    pull.push_back(remote);
    out.push_back(std::move(pull));
    out.push_back(Argv{"docker", "tag", remote, local});
  }
  return out;
}

std::string base64_encode(std::string_view in) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = byte(i) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string basic_auth(std::string_view user, std::string_view password) {
  std::string pair(user);
  pair += ':';
  pair += password;
  return "Basic " + base64_encode(pair);
}

json with_registry_auth(json config, const std::string& host, const std::string& helper,
                        const std::optional<std::pair<std::string, std::string>>& user_token) {
  if (config.is_null()) config = json::object();
  if (!config.is_object()) throw CliError(Exit::usage, "it is not a JSON object");
  for (const char* key : {"credHelpers", "auths"})
    if (config.contains(key) && !config[key].is_object())
      throw CliError(Exit::usage, fmt::format("its \"{}\" is not a JSON object", key));
  if (user_token) {
    if (config.contains("credHelpers")) {
      config["credHelpers"].erase(host);
      if (config["credHelpers"].empty()) config.erase("credHelpers");
    }
    config["auths"][host] = json{{"auth", base64_encode(user_token->first + ":" + user_token->second)}};
  } else {
    if (config.contains("auths")) {
      // A stored token would sit there in clear; the helper answers instead.
      config["auths"].erase(host);
      if (config["auths"].empty()) config.erase("auths");
    }
    config["credHelpers"][host] = helper;
  }
  return config;
}

std::string insecure_registry_conf(const std::string& host, const std::string& server_url) {
  return fmt::format(
      "# Written by `neuro config docker`: neurod's registry at {} is plain HTTP.\n"
      "[[registry]]\nlocation = {}\ninsecure = true\n",
      server_url, json(host).dump());
}

std::string insecure_registry_file_name(const std::string& host) {
  std::string name = "neuro-";
  for (char c : host) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return name + ".conf";
}

HelperAnswer credential_helper(std::string_view action, std::string_view input, const std::string& registry,
                               const std::string& user, const std::string& token) {
  if (action == "get") {
    auto server = trim(input);
    if (token.empty() || normalize_registry(server) != normalize_registry(registry))
      return {1, std::string(kHelperNotFound) + "\n"};
    json out{{"ServerURL", server}, {"Username", user}, {"Secret", token}};
    return {0, out.dump() + "\n"};
  }
  if (action == "store" || action == "erase") return {0, ""};
  if (action == "list") {
    json out = json::object();
    if (!token.empty()) out[registry] = user;
    return {0, out.dump() + "\n"};
  }
  if (action == "version") return {0, "docker-credential-neuro (neuro)\n"};
  return {1, fmt::format("unknown credential helper action \"{}\": expected get, store, erase or list\n", action)};
}

}  // namespace neurod::cli

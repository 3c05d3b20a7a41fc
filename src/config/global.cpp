#include "config/global.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace neurod::config {
namespace {

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    const std::size_t end = std::min(host.find('.', start), host.size());
    const std::string_view label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

// "host:port" with an IPv4 address, a hostname or a bracketed IPv6 address.
std::optional<std::string> check_listen(const std::string& value) {
  const auto bad = [&](std::string_view why) {
    return fmt::format("expected host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got \"{}\": {}", value, why);
  };
  std::string_view host;
  std::string_view port;
  if (value.starts_with("[")) {
    const auto close = value.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    host = std::string_view(value).substr(1, close - 1);
    if (close + 1 >= value.size() || value[close + 1] != ':') return bad("missing port");
    port = std::string_view(value).substr(close + 2);
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) return bad("invalid IPv6 address");
  } else {
    const auto colon = value.rfind(':');
    if (colon == std::string::npos) return bad("missing port");
    host = std::string_view(value).substr(0, colon);
    port = std::string_view(value).substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("IPv6 addresses go in brackets");
    const bool numeric = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
      return c == '.' || std::isdigit(static_cast<unsigned char>(c));
    });
    in_addr addr{};
    if (numeric ? inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1 : !valid_hostname(host)) {
      return bad("invalid host");
    }
  }
  unsigned number = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || number > 65535) {
    return bad("port must be 0-65535");
  }
  return std::nullopt;
}

std::optional<std::string> check_cluster_name(const std::string& value) {
  const bool ok = !value.empty() && value.size() <= 40 && value[0] >= 'a' && value[0] <= 'z' &&
                  std::all_of(value.begin(), value.end(),
                              [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
  if (ok) return std::nullopt;
  return fmt::format("expected a lowercase name (a letter, then up to 39 letters, digits or '-'), got \"{}\"", value);
}

std::optional<std::string> check_roles(const std::vector<std::string>& roles) {
  for (std::size_t i = 0; i < roles.size(); ++i) {
    for (std::size_t j = i + 1; j < roles.size(); ++j) {
      if (roles[i] == roles[j]) return fmt::format("role '{}' is listed twice", roles[i]);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_database_url(const std::string& url) {
  if (url.starts_with("sqlite:") && url.size() > 7) return std::nullopt;
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) return std::nullopt;
  // The URL may hold a password: name only its scheme.
  const auto colon = url.find(':');
  return fmt::format("expected sqlite:<path> or postgresql://..., got a URL starting with \"{}\"",
                     colon == std::string::npos ? std::string("") : url.substr(0, colon + 1));
}

std::optional<std::string> check_tls(const TlsConfig& tls) {
  if (tls.cert.empty() != tls.key.empty()) return std::string("cert and key must be set together (or neither)");
  return std::nullopt;
}

}  // namespace

void TlsConfig::describe(Schema<TlsConfig>& s) {
  // Paths, as OpenSSL loads them; systemd's LoadCredential= puts them under $CREDENTIALS_DIRECTORY.
  s.field("cert", &TlsConfig::cert, "Path to the PEM certificate chain. TLS is on when cert and key are set.");
  s.field("key", &TlsConfig::key, "Path to the PEM private key (keep it mode 0600).");
}

void HttpConfig::describe(Schema<HttpConfig>& s) {
  s.field("listen", &HttpConfig::listen, "Address and port to listen on; port 0 picks a free port.")
      .non_empty()
      .check(check_listen);
  s.field("io_threads", &HttpConfig::io_threads, "Threads running the network event loop.").min(1).max(64);
  s.field("blocking_threads", &HttpConfig::blocking_threads, "Threads for blocking work (database, files).")
      .min(1)
      .max(256);
  s.field("max_header_size", &HttpConfig::max_header_size, "Largest accepted request header block.")
      .min(1024)
      .max(1024.0 * 1024);
  s.field("max_body_size", &HttpConfig::max_body_size, "Default limit for request bodies read into memory.").min(1);
  s.field("max_upload_size", &HttpConfig::max_upload_size, "Default limit for streamed request bodies (uploads).")
      .min(1);
  s.field("header_timeout", &HttpConfig::header_timeout, "The whole request header must arrive within this.").min(1);
  s.field("idle_timeout", &HttpConfig::idle_timeout, "How long an idle keep-alive connection stays open.").min(1);
  s.field("request_timeout", &HttpConfig::request_timeout, "Limit for reading the body and running the handler.")
      .min(1);
  s.field("drain_timeout", &HttpConfig::drain_timeout,
          "On shutdown, how long to wait for in-flight requests before closing connections.");
  s.field("max_connections", &HttpConfig::max_connections, "Open connections beyond this are refused.")
      .min(1)
      .max(1000000);
  s.field("temp_dir", &HttpConfig::temp_dir, "Where streamed uploads are spooled; empty means <data_dir>/tmp.");
  s.field("access_log", &HttpConfig::access_log, "Log one line per request.");
  s.field("tls", &HttpConfig::tls, "TLS for the listener; plain HTTP when unset.").check(check_tls);
}

void DatabaseConfig::describe(Schema<DatabaseConfig>& s) {
  s.field("url", &DatabaseConfig::url,
          "sqlite:<file> (relative to data_dir), sqlite:/abs/path.db, sqlite::memory:,\n"
          "or postgresql://user:pass@host:port/db. Use ${VAR} to keep a password out of the file.")
      .non_empty()
      .check(check_database_url);
  s.field("pool_size", &DatabaseConfig::pool_size, "Database connections kept open.").min(1).max(256);
  s.field("busy_timeout", &DatabaseConfig::busy_timeout, "How long to wait on a locked database (SQLite).");
}

void LogConfig::describe(Schema<LogConfig>& s) {
  s.field("level", &LogConfig::level, "Least severe level written.")
      .one_of({"trace", "debug", "info", "warn", "error"});
  s.field("format", &LogConfig::format, "text for people, json for log collectors.").one_of({"text", "json"});
}

void Preset::describe(Schema<Preset>& s) {
  s.field("name", &Preset::name, "What users type: neuro run --preset NAME.")
      .non_empty()
      .check([](const std::string& v) -> std::optional<std::string> {
        for (char c : v)
          if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return "use lower-case letters, digits, '-' and '_'";
        return std::nullopt;
      });
  s.field("cpu", &Preset::cpu, "CPU cores (fractions allowed).").min(0.1);
  s.field("memory", &Preset::memory, "Memory limit.").min(16 << 20);
  s.field("gpu", &Preset::gpu, "Number of GPUs.").min(0).max(64);
  s.field("gpu_model", &Preset::gpu_model, "GPU model, e.g. nvidia-a100 (with gpu > 0).");
  s.field("shm", &Preset::shm, "Size of /dev/shm (0: the container runtime's default).");
  s.field("credits_per_hour", &Preset::credits_per_hour, "Price per hour of running (0: free).").min(0);
}

void GlobalConfig::describe(Schema<GlobalConfig>& s) {
  s.field("cluster_name", &GlobalConfig::cluster_name, "Name of this cluster, shown in the UI and metrics.")
      .check(check_cluster_name);
  s.field("data_dir", &GlobalConfig::data_dir, "Directory for all state (database, artifacts, module data).")
      .non_empty();
  s.field("roles", &GlobalConfig::roles,
          "What this node does: control-plane (API, scheduler, UI) and/or compute (runs jobs).")
      .non_empty()
      .one_of({"control-plane", "compute"})
      .check(check_roles);
  s.field("log", &GlobalConfig::log, "Logging.");
  s.field("http", &GlobalConfig::http, "The HTTP server.");
  s.field("database", &GlobalConfig::database, "The database.");
  s.field("presets", &GlobalConfig::presets, "Resource presets users pick for jobs, listed in GET /api/v1/config.")
      .check([](const std::vector<Preset>& v) -> std::optional<std::string> {
        for (std::size_t i = 0; i < v.size(); ++i)
          for (std::size_t j = i + 1; j < v.size(); ++j)
            if (v[i].name == v[j].name) return "preset '" + v[i].name + "' is listed twice";
        return std::nullopt;
      });
}

}  // namespace neurod::config

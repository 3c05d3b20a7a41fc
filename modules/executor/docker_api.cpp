#include "modules/executor/docker_api.hpp"

#include "core/errors.hpp"
#include "modules/executor/log_store.hpp"

#include <fmt/format.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <regex>

namespace neurod::executor {

using nlohmann::json;

// --- image references ---

std::string DockerImageRef::repository() const { return domain.empty() ? path : domain + "/" + path; }

std::string DockerImageRef::pull_tag() const {
  // An empty tag would make Docker pull every tag of the repository.
  if (!digest.empty()) return digest;
  return tag.empty() ? "latest" : tag;
}

std::string DockerImageRef::registry() const { return domain.empty() ? "docker.io" : domain; }

std::optional<DockerImageRef> parse_docker_image_ref(std::string_view text) {
  // The grammar of github.com/distribution/reference, without IPv6 domains.
  static const std::regex path_component("[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*");
  static const std::regex domain_re(
      "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
      "(?::[0-9]+)?");
  static const std::regex tag_re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  static const std::regex digest_re("[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}");

  if (text.empty() || text.size() > 512) return std::nullopt;
  DockerImageRef ref;
  std::string rest(text);
  if (auto at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest.resize(at);
    if (!std::regex_match(ref.digest, digest_re)) return std::nullopt;
  }
  // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    ref.tag = rest.substr(colon + 1);
    rest.resize(colon);
    if (!std::regex_match(ref.tag, tag_re)) return std::nullopt;
  }
  if (rest.empty()) return std::nullopt;
  auto first_slash = rest.find('/');
  if (first_slash != std::string::npos) {
    auto first = rest.substr(0, first_slash);
    if (first.find_first_of(".:") != std::string::npos || first == "localhost" ||
        std::any_of(first.begin(), first.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      if (!std::regex_match(first, domain_re)) return std::nullopt;
      ref.domain = first;
      rest.erase(0, first_slash + 1);
    }
  }
  if (rest.empty() || rest.size() > 255) return std::nullopt;
  for (std::size_t start = 0;;) {
    auto end = rest.find('/', start);
    auto comp = rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!std::regex_match(comp, path_component)) return std::nullopt;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  ref.path = rest;
  return ref;
}

// --- registry auth ---

namespace {

std::string base64url(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
             std::uint8_t(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < in.size()) {
    std::uint32_t n = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// "https://index.docker.io/v1/" → "index.docker.io".
std::string_view bare_server(std::string_view s) {
  if (auto p = s.find("://"); p != std::string_view::npos) s.remove_prefix(p + 3);
  if (auto p = s.find('/'); p != std::string_view::npos) s = s.substr(0, p);
  return s;
}

bool is_docker_hub(std::string_view s) {
  return s == "docker.io" || s == "index.docker.io" || s == "registry-1.docker.io";
}

}  // namespace

std::string docker_registry_auth_header(const RegistryAuth& auth) {
  json j = {{"username", auth.username}, {"password", auth.password}, {"serveraddress", auth.server}};
  return base64url(j.dump());
}

bool docker_registry_matches(std::string_view server, std::string_view registry) {
  auto s = bare_server(server);
  if (s == registry) return true;
  return is_docker_hub(s) && is_docker_hub(registry);
}

// --- logs ---

namespace {

// "2026-11-23T15:04:05.123456789Z text" → the time and the text; nullopt without a prefix.
std::optional<std::pair<TimePoint, std::string_view>> split_timestamp(std::string_view line) {
  auto space = line.find(' ');
  if (space == std::string_view::npos || space < 20 || space > 40) return std::nullopt;
  auto t = parse_log_time(line.substr(0, space));
  if (!t) return std::nullopt;
  return std::make_pair(*t, line.substr(space + 1));
}

// A job that prints without newlines must not grow a partial line without bound.
constexpr std::size_t kMaxLine = 256 * 1024;

}  // namespace

void DockerLogDecoder::emit(Partial& p, TimePoint time) {
  if (p.open) on_line_(DockerLogLine{time, p.start, p.text});
  p.text.clear();
  p.open = false;
}

void DockerLogDecoder::payload(int stream, std::string_view data) {
  auto& p = partial_[stream];
  // Every frame is one record with its own timestamp.
  TimePoint time = Clock::now();
  if (auto ts = split_timestamp(data)) {
    time = ts->first;
    data = ts->second;
  }
  while (!data.empty()) {
    if (!p.open) {
      p.open = true;
      p.start = time;
    }
    p.last = time;
    auto nl = data.find('\n');
    p.text.append(data.substr(0, nl));
    if (nl == std::string_view::npos) {
      if (p.text.size() >= kMaxLine) emit(p, time);
      break;
    }
    emit(p, time);
    data.remove_prefix(nl + 1);
  }
}

void DockerLogDecoder::raw_line(std::string_view line) {
  if (auto ts = split_timestamp(line)) {
    on_line_(DockerLogLine{ts->first, ts->first, ts->second});
  } else {
    auto now = Clock::now();
    on_line_(DockerLogLine{now, now, line});
  }
}

void DockerLogDecoder::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::size_t pos = 0;
  if (tty_) {
    for (;;) {
      auto nl = pending_.find('\n', pos);
      if (nl == std::string::npos) break;
      raw_line(std::string_view(pending_).substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (pending_.size() - pos >= kMaxLine) {
      raw_line(std::string_view(pending_).substr(pos));
      pos = pending_.size();
    }
  } else {
    while (pending_.size() - pos >= 8) {
      auto h = reinterpret_cast<const unsigned char*>(pending_.data() + pos);
      std::size_t size = (std::size_t(h[4]) << 24) | (std::size_t(h[5]) << 16) | (std::size_t(h[6]) << 8) | h[7];
      if (pending_.size() - pos - 8 < size) break;
      int stream = h[0] <= 2 ? h[0] : 1;
      payload(stream, std::string_view(pending_).substr(pos + 8, size));
      pos += 8 + size;
    }
  }
  pending_.erase(0, pos);
}

void DockerLogDecoder::finish() {
  if (tty_ && !pending_.empty()) raw_line(pending_);
  pending_.clear();
  for (auto& p : partial_) emit(p, p.last);
}

std::optional<TimePoint> DockerLogDecoder::pending_start() const {
  std::optional<TimePoint> oldest;
  auto consider = [&](TimePoint t) {
    if (!oldest || t < *oldest) oldest = t;
  };
  for (const auto& p : partial_)
    if (p.open) consider(p.start);
  if (tty_ && !pending_.empty())
    if (auto ts = split_timestamp(pending_)) consider(ts->first);
  return oldest;
}

// --- the engine's log file ---

void EngineLogFileDecoder::piece(int stream, TimePoint time, std::string_view text, bool ends) {
  auto& p = partial_[stream];
  if (!p.open) {
    p.open = true;
    p.start = time;
    p.text.clear();
  }
  p.last = time;
  p.text.append(text);
  if (ends || p.text.size() >= kMaxLine) {
    on_line_(DockerLogLine{time, p.start, p.text});
    p.text.clear();
    p.open = false;
  }
}

bool EngineLogFileDecoder::record(std::string_view line) {
  if (format_ == Format::unknown) format_ = !line.empty() && line.front() == '{' ? Format::json_file : Format::k8s_file;
  if (format_ == Format::k8s_file) {
    // <time> <stream> <F|P> <text>
    auto s1 = line.find(' ');
    if (s1 == std::string_view::npos) return false;
    auto t = parse_log_time(line.substr(0, s1));
    auto rest = line.substr(s1 + 1);
    int stream = rest.starts_with("stdout ") ? 0 : rest.starts_with("stderr ") ? 1 : -1;
    if (!t || stream < 0) return false;
    rest.remove_prefix(7);
    if (rest.size() < 1 || (rest[0] != 'F' && rest[0] != 'P') || (rest.size() > 1 && rest[1] != ' ')) return false;
    bool ends = rest[0] == 'F';
    piece(stream, *t, rest.size() > 1 ? rest.substr(2) : std::string_view{}, ends);
    return true;
  }
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("log") || !j["log"].is_string() || !j.contains("time") || !j["time"].is_string())
    return false;
  auto t = parse_log_time(j["time"].get<std::string>());
  if (!t) return false;
  int stream = j.value("stream", std::string("stdout")) == "stderr" ? 1 : 0;
  const auto& text = j["log"].get_ref<const std::string&>();
  std::string_view v(text);
  bool ends = !v.empty() && v.back() == '\n';
  if (ends) v.remove_suffix(1);
  if (ends && !v.empty() && v.back() == '\r') v.remove_suffix(1);
  piece(stream, *t, v, ends);
  return true;
}

bool EngineLogFileDecoder::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::size_t pos = 0;
  bool ok = true;
  for (;;) {
    auto nl = pending_.find('\n', pos);
    if (nl == std::string::npos) break;
    if (!record(std::string_view(pending_).substr(pos, nl - pos))) {
      ok = false;
      pos = nl + 1;
      break;
    }
    pos = nl + 1;
  }
  pending_.erase(0, pos);
  return ok;
}

void EngineLogFileDecoder::finish() {
  for (auto& p : partial_)
    if (p.open) {
      on_line_(DockerLogLine{p.last, p.start, p.text});
      p.text.clear();
      p.open = false;
    }
}

std::optional<TimePoint> EngineLogFileDecoder::pending_start() const {
  std::optional<TimePoint> oldest;
  for (const auto& p : partial_)
    if (p.open && (!oldest || p.start < *oldest)) oldest = p.start;
  return oldest;
}

// --- the API ---

int DockerApi::hijack(std::string_view method, const std::string& p, const json* body, std::string& early) {
  const auto& socket_path = client_.url().socket;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(errc::unavailable, std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int& fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) throw Error(errc::unavailable, "socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw Error(errc::unavailable, fmt::format("cannot connect to unix://{}: {}", socket_path, std::strerror(errno)));
  // Each step waits at most the api's timeout: the engine answers the head at once.
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(client_.timeout()).count();
  if (ms > 0) {
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  std::string payload = body ? body->dump() : std::string();
  std::string req = fmt::format(
      "{} {} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
      "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
      method, path(p), payload.size(), payload);
  for (std::size_t done = 0; done < req.size();) {
    auto n = ::send(fd, req.data() + done, req.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(errc::unavailable, std::string("cannot write to the container engine: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  std::string in;
  std::size_t head_end = std::string::npos;
  char buf[8192];
  while (head_end == std::string::npos) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? errc::gateway_timeout : errc::unavailable,
                  "the container engine did not answer " + std::string(method) + " " + p);
    in.append(buf, static_cast<std::size_t>(n));
    head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos && in.size() > 64 * 1024)
      throw Error(errc::bad_gateway, "the container engine's answer has no end of headers");
  }
  // "HTTP/1.1 101 UPGRADED"
  int status = 0;
  if (auto sp = in.find(' '); sp != std::string::npos && sp + 4 <= in.size())
    std::from_chars(in.data() + sp + 1, in.data() + sp + 4, status);
  auto head = in.substr(0, head_end);
  std::string rest = in.substr(head_end + 4);
  if (status == 101 || status == 200) {
    timeval none{0, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    early = std::move(rest);
    int out = fd;
    fd = -1;
    return out;
  }
  // An error: its body (Content-Length, or until the engine closes) says why.
  std::size_t want = std::string::npos;
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
    auto v = cl + 17;
    while (v < lower.size() && lower[v] == ' ') ++v;
    std::size_t n = 0;
    std::from_chars(lower.data() + v, lower.data() + lower.size(), n);
    want = n;
  }
  while (rest.size() < want && rest.size() < 64 * 1024) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.append(buf, static_cast<std::size_t>(n));
  }
  http::ClientResponse r;
  r.status = status;
  r.body = std::move(rest);
  throw DockerEngineError(status, docker_error_message(r));
}

std::string docker_error_message(const http::ClientResponse& r) {
  try {
    auto j = json::parse(r.body);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  } catch (const std::exception&) {
  }
  auto body = r.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body.empty() ? fmt::format("HTTP status {}", r.status) : body;
}

namespace {

[[noreturn]] void fail(const http::ClientResponse& r) { throw DockerEngineError(r.status, docker_error_message(r)); }

// 404, or Podman's 500 for a container removed while it was being looked up.
bool no_such_container(const http::ClientResponse& r) {
  if (r.status == 404) return true;
  if (r.status != 500) return false;
  auto msg = docker_error_message(r);
  return msg.find("no such container") != std::string::npos;
}

// For query values. Engine object ids and names, and image references, go into paths as
// they are: they only hold [A-Za-z0-9_.:/@-], which the engines route as such.
std::string query_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

DockerApi::DockerApi(const std::string& socket, std::string version, Duration timeout)
    : client_("unix://" + socket, http::ClientOptions{.timeout = timeout}),
      prefix_(version.empty() ? "" : "/v" + version) {}

std::string DockerApi::path(std::string_view p) const { return prefix_ + std::string(p); }

http::ClientResponse DockerApi::call(std::string_view method, const std::string& p, const json* body,
                                     std::vector<std::pair<std::string, std::string>> headers) {
  std::string payload;
  if (body) {
    payload = body->dump();
    headers.emplace_back("Content-Type", "application/json");
  }
  return client_.request(method, path(p), std::move(payload), std::move(headers));
}

json DockerApi::version() {
  auto r = client_.get("/version");
  if (r.status != 200) fail(r);
  return r.json();
}

bool DockerApi::image_exists(const std::string& ref) {
  auto r = call("GET", "/images/" + ref + "/json");
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  fail(r);
}

void DockerApi::pull(const DockerImageRef& ref, const std::string& auth_header, Clock::time_point deadline) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!auth_header.empty()) headers.emplace_back("X-Registry-Auth", auth_header);
  auto target =
      path("/images/create?fromImage=" + query_escape(ref.repository()) + "&tag=" + query_escape(ref.pull_tag()));
  std::string pending, error;
  bool late = false;
  auto r = client_.stream(
      "POST", target,
      [&](std::string_view chunk) {
        pending.append(chunk);
        // One JSON object per line: progress, or {"error", "errorDetail"} when it failed.
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
          auto line = std::string_view(pending).substr(0, nl);
          if (line.find("\"error") == std::string_view::npos) continue;
          try {
            auto j = json::parse(line);
            if (j.contains("errorDetail") && j["errorDetail"].contains("message"))
              error = j["errorDetail"]["message"].get<std::string>();
            else if (j.contains("error") && j["error"].is_string())
              error = j["error"].get<std::string>();
          } catch (const std::exception&) {
          }
        }
        if (Clock::now() > deadline) {
          late = true;
          return false;
        }
        return true;
      },
      {}, std::move(headers), [](const http::ClientResponse& head) { return head.status == 200; });
  if (r.status != 200) fail(r);
  if (!pending.empty() && error.empty() && pending.find("\"error") != std::string::npos) {
    try {
      auto j = json::parse(pending);
      if (j.contains("error") && j["error"].is_string()) error = j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
  }
  if (late) throw Error(errc::gateway_timeout, "the pull did not finish in time");
  if (!error.empty()) throw DockerEngineError(0, error);
}

std::string DockerApi::create_container(const std::string& name, const json& body) {
  auto r = call("POST", "/containers/create?name=" + query_escape(name), &body);
  if (r.status != 201 && r.status != 200) fail(r);
  return r.json().value("Id", std::string());
}

void DockerApi::start_container(const std::string& id) {
  auto r = call("POST", "/containers/" + id + "/start");
  if (r.status != 204 && r.status != 304 && r.status != 200) fail(r);
}

void DockerApi::stop_container(const std::string& id, int seconds) {
  auto r = call("POST", "/containers/" + id + "/stop?t=" + std::to_string(seconds));
  if (r.status != 204 && r.status != 304 && r.status != 200 && r.status != 404) fail(r);
}

bool DockerApi::remove_container(const std::string& id) {
  auto r = call("DELETE", "/containers/" + id + "?force=1&v=1");
  if (no_such_container(r)) return false;
  // 409: a removal already in progress; the container goes away anyway.
  if (r.status != 204 && r.status != 200 && r.status != 409) fail(r);
  return true;
}

std::string DockerApi::commit(const std::string& container, const std::string& repo, const std::string& tag) {
  // The body is the image's config changes: none (Podman refuses an empty body).
  const json changes = json::object();
  auto r = call("POST", "/commit?container=" + query_escape(container) + "&repo=" + query_escape(repo) +
                            "&tag=" + query_escape(tag) + "&pause=true",
                &changes);
  if (r.status != 201 && r.status != 200) fail(r);
  auto j = r.json();
  return j.is_object() ? j.value("Id", j.value("id", std::string())) : std::string();
}

void DockerApi::push(const std::string& repo, const std::string& tag, const std::string& auth_header,
                     const std::function<void(const std::string&)>& on_line) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!auth_header.empty()) headers.emplace_back("X-Registry-Auth", auth_header);
  std::string pending, error;
  auto line_done = [&](std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return;
    if (line.find("\"error") != std::string_view::npos) {
      try {
        auto j = json::parse(line);
        if (j.contains("errorDetail") && j["errorDetail"].is_object() && j["errorDetail"].contains("message"))
          error = j["errorDetail"]["message"].get<std::string>();
        else if (j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty())
          error = j["error"].get<std::string>();
      } catch (const std::exception&) {
      }
      if (!error.empty()) return;
    }
    on_line(std::string(line));
  };
  auto r = client_.stream(
      "POST", path("/images/" + repo + "/push?tag=" + query_escape(tag)),
      [&](std::string_view chunk) {
        pending.append(chunk);
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1))
          line_done(std::string_view(pending).substr(0, nl));
        return true;
      },
      {}, std::move(headers), [](const http::ClientResponse& head) { return head.status == 200; });
  if (r.status != 200) fail(r);
  line_done(pending);
  if (!error.empty()) throw DockerEngineError(0, error);
}

void DockerApi::remove_image(const std::string& name) { call("DELETE", "/images/" + name); }

std::optional<json> DockerApi::inspect_container(const std::string& id) {
  auto r = call("GET", "/containers/" + id + "/json");
  if (no_such_container(r)) return std::nullopt;
  if (r.status != 200) fail(r);
  return r.json();
}

std::optional<json> DockerApi::stats(const std::string& id) {
  auto r = call("GET", "/containers/" + id + "/stats?stream=false");
  if (no_such_container(r)) return std::nullopt;
  if (r.status != 200) fail(r);
  return r.json();
}

json DockerApi::list_containers(const std::string& label) {
  json filters = {{"label", json::array({label})}};
  auto r = call("GET", "/containers/json?all=1&filters=" + query_escape(filters.dump()));
  if (r.status != 200) fail(r);
  auto j = r.json();
  if (!j.is_array()) throw DockerEngineError(r.status, "the container list is not a JSON array");
  return j;
}

bool DockerApi::logs(const std::string& id, bool follow, std::optional<std::int64_t> since,
                     const std::function<bool(std::string_view)>& on_chunk) {
  auto target = "/containers/" + id + "/logs?stdout=1&stderr=1&timestamps=1";
  if (follow) target += "&follow=1";
  if (since) target += "&since=" + std::to_string(*since);
  bool stopped = false;
  auto r = client_.stream(
      "GET", path(target),
      [&](std::string_view chunk) {
        if (on_chunk(chunk)) return true;
        stopped = true;
        return false;
      },
      {}, {}, [](const http::ClientResponse& head) { return head.status == 200; });
  if (r.status != 200) fail(r);
  return !stopped;
}

}  // namespace neurod::executor

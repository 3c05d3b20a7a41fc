// http::forward (forward.hpp): one request to an upstream HTTP/1.1 server, its answer back.
//
// The request goes out on the calling (pool) thread with blocking writes; the answer's
// header is read there too, fed to Beast's parser. The body is then read by a BodyPump on
// the proxy's I/O thread (one for the process, started on first use) and handed to the
// response's StreamWriter piece by piece: the pump reads only while the client's queue
// holds less than kHighWater and waits for the writer's drain hook otherwise, so a fast
// upstream and a slow client never make neurod buffer more than that, and no pool thread
// is held while a long download runs.
#include "http/forward.hpp"

#include "core/errors.hpp"
#include "http/stream_drain.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

namespace neurod::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

using Parser = bhttp::response_parser<bhttp::buffer_body>;

constexpr std::size_t kChunk = 256 << 10;          // one read from the upstream
constexpr std::size_t kHighWater = 1 << 20;        // stop reading while the client's queue holds more
constexpr std::size_t kLowWater = 256 << 10;       // and go on once it is down to this
constexpr std::size_t kMaxHeader = 64 << 10;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The comma-separated tokens of header values (Connection: keep-alive, X-Foo).
std::vector<std::string> tokens(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (std::string_view rest : values) {
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto t = trim(rest.substr(0, comma));
      if (!t.empty()) out.emplace_back(t);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return out;
}

bool contains_i(const std::vector<std::string>& list, std::string_view name) {
  for (const auto& x : list)
    if (iequals(x, name)) return true;
  return false;
}

// Hop-by-hop headers (RFC 9110 §7.6.1), never passed on in either direction.
bool hop_by_hop(std::string_view name) {
  for (std::string_view h : {"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
                             "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade"})
    if (iequals(name, h)) return true;
  return false;
}

// The Cookie header less the named cookies; empty when none is left.
std::string filter_cookie_header(std::string_view value, const std::vector<std::string>& strip) {
  std::string out;
  while (!value.empty()) {
    auto semi = value.find(';');
    auto part = trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);
    if (part.empty()) continue;
    auto name = trim(part.substr(0, part.find('=')));
    if (contains_i(strip, name)) continue;
    if (!out.empty()) out += "; ";
    out += part;
  }
  return out;
}

bool sets_stripped_cookie(std::string_view set_cookie, const std::vector<std::string>& strip) {
  auto first = set_cookie.substr(0, set_cookie.find(';'));
  auto name = trim(first.substr(0, first.find('=')));
  return contains_i(strip, name);
}

// A job's Set-Cookie scoped to the prefix: its Path put under it (none: the prefix's root),
// its Domain dropped, so an upstream's cookies neither reach neurod's other paths nor
// replace the cookies of another upstream (or of neurod's console).
std::string scoped_cookie(std::string_view set_cookie, std::string_view prefix) {
  std::string out;
  bool has_path = false;
  bool first = true;
  while (!set_cookie.empty() || first) {
    auto semi = set_cookie.find(';');
    auto part = trim(set_cookie.substr(0, semi));
    set_cookie = semi == std::string_view::npos ? std::string_view{} : set_cookie.substr(semi + 1);
    if (first) {
      out = std::string(part);
      first = false;
      continue;
    }
    if (part.empty() || istarts_with(part, "domain=") || iequals(part, "domain")) continue;
    if (istarts_with(part, "path=")) {
      auto path = trim(part.substr(5));
      has_path = true;
      std::string scoped;
      if (!path.starts_with("/"))
        scoped = std::string(prefix) + "/";
      else if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/'))
        scoped = std::string(path);  // already under it (the app knows NEURO_JOB_HTTP_PATH)
      else
        scoped = std::string(prefix) + std::string(path);
      out += "; Path=" + scoped;
      continue;
    }
    out += "; " + std::string(part);
  }
  if (!has_path) out += "; Path=" + std::string(prefix) + "/";
  return out;
}

// The address of "ADDRESS:PORT".
std::string address_of(const std::string& remote) {
  auto colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

// Waits until fd is ready for `events`; throws 504 after `timeout` without.
void wait_fd(int fd, short events, const ForwardOptions& o, const char* what) {
  auto deadline = std::chrono::steady_clock::now() + o.timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw Error(errc::gateway_timeout, o.upstream_name + " did not " + what + " within " +
                                             std::to_string(o.timeout.count() / 1000) + " s")
          .with_code("upstream_timeout");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
    if (n > 0) return;
    if (n < 0 && errno != EINTR)
      throw Error(errc::bad_gateway, o.upstream_name + ": " + std::strerror(errno)).with_code("upstream_error");
  }
}

// Writes all of it; false when the upstream stopped taking it (it closed or reset: its
// answer, a 413 say, may still be there to read).
bool send_all(int fd, const char* data, std::size_t n, const ForwardOptions& o) {
  while (n > 0) {
    auto w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w > 0) {
      data += w;
      n -= static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_fd(fd, POLLOUT, o, "take the request");
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

// The proxy's I/O thread: one io_context for the bodies of every proxied answer.
class Reactor {
 public:
  Reactor() : work_(asio::make_work_guard(io_)), thread_([this] { run(); }) {}
  ~Reactor() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  asio::io_context& io() { return io_; }

 private:
  void run() {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http proxy: {}", e.what());
      }
    }
  }
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

Reactor& reactor() {
  static Reactor r;
  return r;
}

// Reads the answer's body from the upstream (through the parser: a length, chunks or up
// to the end) and writes it to the client's stream. All of it on the reactor's thread.
class BodyPump : public StreamSource, public std::enable_shared_from_this<BodyPump> {
 public:
  BodyPump(int fd, std::unique_ptr<Parser> parser, const std::string& leftover, std::string name)
      : sd_(reactor().io(), fd),
        parser_(std::move(parser)),
        chunk_(std::make_unique_for_overwrite<char[]>(kChunk)),
        name_(std::move(name)) {
    if (!leftover.empty()) {
      auto b = buf_.prepare(leftover.size());
      std::memcpy(b.data(), leftover.data(), leftover.size());
      buf_.commit(leftover.size());
    }
  }

  void start(std::shared_ptr<StreamWriter> writer) override {
    std::weak_ptr<BodyPump> weak = shared_from_this();
    auto ex = sd_.get_executor();
    if (auto* d = dynamic_cast<DrainableWriter*>(writer.get()))
      d->on_drain(kLowWater, [weak, ex] {
        asio::post(ex, [weak] {
          if (auto self = weak.lock()) self->resume();
        });
      });
    else
      poll_ = true;  // another writer: look at its queue again every few milliseconds
    asio::post(ex, [self = shared_from_this(), writer] {
      self->writer_ = writer;
      self->step();
    });
  }

  void cancel() override {
    asio::post(sd_.get_executor(), [self = shared_from_this()] { self->finish(); });
  }

 private:
  void resume() {
    if (!waiting_) return;
    waiting_ = false;
    step();
  }

  void step() {
    if (done_ || !writer_) return;
    if (writer_->closed()) return finish();
    if (writer_->queued_bytes() > kHighWater) {
      waiting_ = true;  // the drain hook calls resume()
      if (poll_) {
        timer_.expires_after(std::chrono::milliseconds(5));
        timer_.async_wait([self = shared_from_this()](boost::system::error_code) { self->resume(); });
      }
      return;
    }
    auto& body = parser_->get().body();
    body.data = chunk_.get();
    body.size = kChunk;
    bhttp::async_read_some(sd_, buf_, *parser_,
                           [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(boost::system::error_code ec) {
    if (done_) return;
    if (ec == bhttp::error::need_buffer) ec = {};
    std::size_t got = kChunk - parser_->get().body().size;
    if (got > 0) writer_->write(std::string(chunk_.get(), got));
    if (parser_->is_done()) {
      writer_->close();
      return finish();
    }
    if (ec) {
      // Cut off: the client sees an incomplete body, not a shorter complete one.
      spdlog::debug("http proxy: the answer from {} ended early: {}", name_, ec.message());
      writer_->abort();
      return finish();
    }
    step();
  }

  void finish() {
    if (done_) return;
    done_ = true;
    boost::system::error_code ec;
    sd_.close(ec);
    timer_.cancel();
    writer_.reset();  // the connection's writer goes with the connection, not with this pump
  }

  asio::posix::stream_descriptor sd_;
  beast::flat_buffer buf_;
  std::unique_ptr<Parser> parser_;
  std::unique_ptr<char[]> chunk_;
  std::string name_;
  std::shared_ptr<StreamWriter> writer_;
  asio::steady_timer timer_{sd_.get_executor()};
  bool waiting_ = false;
  bool poll_ = false;
  bool done_ = false;
};

std::unique_ptr<Parser> new_parser(bool head) {
  auto p = std::make_unique<Parser>();
  p->header_limit(kMaxHeader);
  p->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (head) p->skip(true);
  return p;
}

}  // namespace

std::string rewrite_location(std::string_view location, std::string_view prefix, std::string_view host,
                             std::string_view link_prefix) {
  std::string_view path;
  if (location.starts_with("/") && !location.starts_with("//")) {
    path = location;
  } else if (istarts_with(location, "http://") || istarts_with(location, "https://")) {
    auto rest = location.substr(location.find("//") + 2);
    auto end = rest.find_first_of("/?#");
    auto authority = rest.substr(0, end);
    auto bare = authority;  // without the port
    if (auto colon = authority.rfind(':'); colon != std::string_view::npos && !authority.ends_with("]"))
      bare = authority.substr(0, colon);
    bool ours = iequals(authority, host) || iequals(bare, "localhost") || bare == "127.0.0.1" || bare == "[::1]" ||
                bare == "0.0.0.0";
    if (!ours) return std::string(location);
    path = end == std::string_view::npos ? std::string_view("/") : rest.substr(end);
    if (!path.starts_with("/")) return std::string(prefix) + "/" + std::string(path);
  } else {
    return std::string(location);  // relative: the browser resolves it under the prefix already
  }
  auto under = [&](std::string_view p) {
    return !p.empty() && (path == p || (path.starts_with(p) && path.size() > p.size() &&
                                        (path[p.size()] == '/' || path[p.size()] == '?')));
  };
  // An app that knows its base path (NEURO_JOB_HTTP_PATH) already points under it.
  if (under(prefix)) return std::string(path);
  // ... or under the part of it that it knows (the ticket segment is added).
  if (under(link_prefix)) return std::string(prefix) + std::string(path.substr(link_prefix.size()));
  return std::string(prefix) + std::string(path);
}

std::string scope_cookie(std::string_view set_cookie, std::string_view prefix) {
  return scoped_cookie(set_cookie, prefix);
}

Response forward(int raw_fd, const Request& req, const ForwardOptions& o) {
  Fd fd{raw_fd};
  int flags = ::fcntl(fd.fd, F_GETFL, 0);
  if (flags >= 0) ::fcntl(fd.fd, F_SETFL, flags | O_NONBLOCK);

  // ---- the request ----
  std::string host(req.header("Host").value_or("localhost"));
  auto connection_named = tokens([&] {
    std::vector<std::string> v;
    for (auto c : req.headers.get_all("Connection")) v.emplace_back(c);
    return v;
  }());
  std::string head = std::string(to_string(req.method)) + " " + o.target + " HTTP/1.1\r\n";
  head += "Host: " + host + "\r\n";
  std::string forwarded_for;
  for (const auto& [name, value] : req.headers.items()) {
    if (hop_by_hop(name) || contains_i(connection_named, name) || contains_i(o.strip_request_headers, name) ||
        iequals(name, "Host") || iequals(name, "Content-Length") || iequals(name, "Expect") ||
        iequals(name, "X-Forwarded-Proto") || iequals(name, "X-Forwarded-Host") || iequals(name, "X-Forwarded-Prefix"))
      continue;
    if (iequals(name, "X-Forwarded-For")) {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + value;
      continue;
    }
    if (iequals(name, "Cookie")) {
      auto kept = filter_cookie_header(value, o.strip_cookies);
      if (!kept.empty()) head += "Cookie: " + kept + "\r\n";
      continue;
    }
    head += name + ": " + value + "\r\n";
  }
  auto client = address_of(req.remote_address);
  if (!client.empty()) forwarded_for += (forwarded_for.empty() ? "" : ", ") + client;
  if (!forwarded_for.empty()) head += "X-Forwarded-For: " + forwarded_for + "\r\n";
  head += "X-Forwarded-Proto: " + o.proto + "\r\n";
  head += "X-Forwarded-Host: " + host + "\r\n";
  if (!o.prefix.empty()) head += "X-Forwarded-Prefix: " + o.prefix + "\r\n";
  std::uint64_t body_size = req.body_file.empty() ? req.body.size() : req.body_size;
  bool body_method = req.method == Method::post || req.method == Method::put || req.method == Method::patch;
  if (body_size > 0 || body_method) head += "Content-Length: " + std::to_string(body_size) + "\r\n";
  head += "Connection: close\r\n\r\n";

  bool sending = send_all(fd.fd, head.data(), head.size(), o);
  if (sending && body_size > 0) {
    if (req.body_file.empty()) {
      sending = send_all(fd.fd, req.body.data(), req.body.size(), o);
    } else {
      Fd file{::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC)};
      if (file.fd < 0) throw Error(errc::internal, "cannot read the uploaded request body");
      auto piece = std::make_unique_for_overwrite<char[]>(kChunk);
      while (sending) {
        auto n = ::read(file.fd, piece.get(), kChunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(errc::internal, "cannot read the uploaded request body");
        if (n == 0) break;
        sending = send_all(fd.fd, piece.get(), static_cast<std::size_t>(n), o);
      }
    }
  }
  if (sending) ::shutdown(fd.fd, SHUT_WR);  // nothing more: some servers wait for it
  // (Not shut when the upstream stopped reading: it may be answering early.)

  // ---- the answer's header ----
  bool head_request = req.method == Method::head;
  auto parser = new_parser(head_request);
  std::string buf;
  char tmp[16384];
  for (;;) {
    if (!buf.empty()) {
      boost::system::error_code ec;
      auto used = parser->put(asio::buffer(buf), ec);
      buf.erase(0, used);
      if (ec && ec != bhttp::error::need_more)
        throw Error(errc::bad_gateway, o.upstream_name + " answered with a malformed HTTP header: " + ec.message())
            .with_code("upstream_error");
      if (parser->is_header_done()) {
        int st = static_cast<int>(parser->get().result_int());
        if (st >= 100 && st < 200) {
          if (st == 101)
            throw Error(errc::bad_gateway, o.upstream_name + " switched protocols, which the proxy did not ask for")
                .with_code("upstream_error");
          parser = new_parser(head_request);  // an interim answer (100 Continue): the real one follows
          continue;
        }
        break;
      }
      if (!ec && used > 0) continue;  // parsed a part: try the rest
    }
    auto r = ::recv(fd.fd, tmp, sizeof tmp, 0);
    if (r > 0) {
      buf.append(tmp, static_cast<std::size_t>(r));
    } else if (r == 0) {
      throw Error(errc::bad_gateway, o.upstream_name + " closed the connection without an answer")
          .with_code("upstream_error");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_fd(fd.fd, POLLIN, o, "answer");
    } else if (errno != EINTR) {
      throw Error(errc::bad_gateway, o.upstream_name + " broke the connection: " + std::strerror(errno))
          .with_code("upstream_error");
    }
  }

  auto& msg = parser->get();
  Response res;
  res.status = static_cast<int>(msg.result_int());
  std::vector<std::string> conn_values;
  for (const auto& f : msg)
    if (iequals(f.name_string(), "Connection")) conn_values.emplace_back(f.value());
  auto answer_named = tokens(conn_values);
  for (const auto& f : msg) {
    auto name = f.name_string();
    if (hop_by_hop(name) || contains_i(answer_named, name) || iequals(name, "Content-Length")) continue;
    if (iequals(name, "Set-Cookie")) {
      if (sets_stripped_cookie(f.value(), o.strip_cookies)) continue;
      if (!o.prefix.empty()) {
        res.headers.add(std::string(name), scoped_cookie(f.value(), o.prefix));
        continue;
      }
    }
    if (iequals(name, "Location")) {
      res.headers.add(std::string(name), rewrite_location(f.value(), o.prefix, host, o.link_prefix));
      continue;
    }
    res.headers.add(std::string(name), std::string(f.value()));
  }
  for (const auto& [k, v] : o.default_response_headers)
    if (!res.headers.contains(k)) res.headers.add(k, v);
  for (const auto& [k, v] : o.response_headers) res.headers.add(k, v);

  // No body (HEAD, 204, 304, a zero length): answered from memory.
  if (head_request || parser->is_done()) return res;

  res.kind = Response::Kind::stream;
  res.stream_source = std::make_shared<BodyPump>(fd.release(), std::move(parser), buf, o.upstream_name);
  return res;
}

}  // namespace neurod::http

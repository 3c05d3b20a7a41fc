// The HTTP server: one coroutine per connection on one of the I/O event loops,
// header-first reading, handlers on a bounded blocking pool, bodies in memory or
// streamed to a temp file, downloads and chunked streams written piecewise, and
// WebSocket upgrades. See DESIGN §3.
#include "http/server.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"
#include "http/stream_drain.hpp"
#include "http/url.hpp"
#include "http/ws_tunnel_pump.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

namespace neurod::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

std::pair<std::string, std::uint16_t> split_host_port(std::string_view listen) {
  auto bad = [&] {
    return Error(errc::invalid_argument,
                 "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got \"" + std::string(listen) + "\"");
  };
  std::string host;
  std::string_view port;
  if (!listen.empty() && listen.front() == '[') {
    auto close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') throw bad();
    host = std::string(listen.substr(1, close - 1));
    port = listen.substr(close + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string_view::npos || listen.find(':') != colon) throw bad();
    host = std::string(listen.substr(0, colon));
    port = listen.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5) throw bad();
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') throw bad();
    value = value * 10 + unsigned(c - '0');
  }
  if (value > 65535) throw bad();
  return {host, static_cast<std::uint16_t>(value)};
}

namespace {

// ---------------------------------------------------------------------------
// Small helpers

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::optional<Method> to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
      return Method::get;
    case bhttp::verb::head:
      return Method::head;
    case bhttp::verb::post:
      return Method::post;
    case bhttp::verb::put:
      return Method::put;
    case bhttp::verb::patch:
      return Method::patch;
    case bhttp::verb::delete_:
      return Method::del;
    case bhttp::verb::options:
      return Method::options;
    default:
      return std::nullopt;
  }
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// Parses "bytes=a-b", "bytes=a-" and "bytes=-n" (one range; multipart ranges are
// answered with the whole file, which RFC 9110 allows).
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};
enum class RangeResult { none, ok, unsatisfiable };
RangeResult parse_range(std::string_view header, std::uint64_t size, ByteRange& out) {
  if (!header.starts_with("bytes=")) return RangeResult::none;
  auto spec = header.substr(6);
  if (spec.find(',') != std::string_view::npos) return RangeResult::none;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::none;
  auto num = [](std::string_view s, std::uint64_t& v) {
    if (s.empty() || s.size() > 19) return false;
    v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + std::uint64_t(c - '0');
    }
    return true;
  };
  auto a = spec.substr(0, dash), b = spec.substr(dash + 1);
  std::uint64_t x = 0, y = 0;
  if (a.empty()) {
    if (!num(b, y)) return RangeResult::none;
    if (y == 0 || size == 0) return RangeResult::unsatisfiable;
    out.first = y >= size ? 0 : size - y;
    out.last = size - 1;
    return RangeResult::ok;
  }
  if (!num(a, x)) return RangeResult::none;
  if (b.empty()) {
    y = size == 0 ? 0 : size - 1;
  } else if (!num(b, y) || y < x) {
    return RangeResult::none;
  }
  if (x >= size) return RangeResult::unsatisfiable;
  out.first = x;
  out.last = std::min(y, size - 1);
  return RangeResult::ok;
}

// ---------------------------------------------------------------------------
// StreamWriter implementation: a queue drained by the connection's coroutine.

class QueueWriter : public StreamWriter, public DrainableWriter, public std::enable_shared_from_this<QueueWriter> {
 public:
  explicit QueueWriter(asio::any_io_executor ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }

  bool write(std::string chunk) override {
    if (chunk.empty()) return !gone_.load();
    std::lock_guard lock(mu_);
    if (gone_ || closed_) return false;
    queued_ += chunk.size();
    queue_.push_back(std::move(chunk));
    wake();
    return true;
  }
  void close() override {
    std::lock_guard lock(mu_);
    closed_ = true;
    wake();
  }
  void abort() override {
    std::lock_guard lock(mu_);
    aborted_ = closed_ = true;
    wake();
  }
  bool closed() const override { return gone_.load() || closed_flag(); }
  std::size_t queued_bytes() const override {
    std::lock_guard lock(mu_);
    return queued_;
  }

  void on_drain(std::size_t low_water, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    low_water_ = low_water;
    drain_ = std::move(fn);
  }

  // Called by the connection: the client went away or the server is stopping.
  void mark_gone() {
    gone_ = true;
    std::function<void()> drain;
    {
      std::lock_guard lock(mu_);
      wake();
      drain = drain_;
    }
    if (drain) drain();  // a source waiting for room sees closed()
  }

  // The coroutine side: waits for data or the end. Returns false at the end.
  awaitable<bool> next(std::string& out, bool& aborted) {
    for (;;) {
      std::function<void()> drain;
      bool got = false;
      {
        std::lock_guard lock(mu_);
        if (!queue_.empty()) {
          out = std::move(queue_.front());
          queue_.pop_front();
          got = true;
          bool above = queued_ > low_water_;
          queued_ -= out.size();
          if (above && queued_ <= low_water_) drain = drain_;
        }
      }
      if (got) {
        if (drain) drain();  // outside the lock: it may call back into queued_bytes()
        co_return true;
      }
      {
        std::lock_guard lock(mu_);
        if (!queue_.empty()) continue;
        if (closed_ || gone_) {
          aborted = aborted_ || gone_;
          co_return false;
        }
        signalled_ = false;
      }
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

 private:
  bool closed_flag() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  // Wakes the coroutine; the timer is only touched on its own executor.
  void wake() {
    if (signalled_) return;
    signalled_ = true;
    asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }

  mutable std::mutex mu_;
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  std::size_t low_water_ = 0;
  std::function<void()> drain_;
  bool closed_ = false;
  bool aborted_ = false;
  bool signalled_ = false;
  std::atomic<bool> gone_{false};
  asio::steady_timer timer_;
};

}  // namespace

// ---------------------------------------------------------------------------

constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();
// How often the sweeper looks for connections past their deadline (the timeouts'
// granularity).
constexpr auto kSweepInterval = std::chrono::milliseconds(100);

static std::vector<std::unique_ptr<asio::io_context>> make_loops(int n) {
  std::vector<std::unique_ptr<asio::io_context>> loops;
  for (int i = 0; i < std::max(1, n); ++i) loops.push_back(std::make_unique<asio::io_context>(1));
  return loops;
}

struct Server::Impl {
  ServerOptions options;
  Router& router;
  // One event loop per I/O thread, like nginx's workers: a connection lives on one
  // loop for its whole life, so it needs no strand and the loops share no locks.
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::size_t next_loop = 0;
  asio::thread_pool pool;
  std::optional<asio::ssl::context> ssl;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<int> connections{0};

  // Open connections, so that stop() can close idle ones and cancel streams.
  struct Conn {
    // Posts a close of the socket to the connection's loop (safe after the
    // connection ended: the alive flag is checked there).
    std::function<void()> close;
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
    std::atomic<bool> busy{false};
    // Timeouts without a timer operation per request: the connection sets a deadline
    // before each read or write, and one sweeper closes connections past theirs.
    std::atomic<std::int64_t> deadline{kNoDeadline};
    void arm(Duration d) {
      deadline.store(
          std::chrono::duration_cast<std::chrono::milliseconds>((Clock::now() + d).time_since_epoch()).count(),
          std::memory_order_relaxed);
    }
    void disarm() { deadline.store(kNoDeadline, std::memory_order_relaxed); }
    std::mutex mu;
    std::function<void()> cancel_stream;  // set while a stream or WebSocket runs
  };
  std::mutex conns_mu;
  std::list<std::shared_ptr<Conn>> conns;

  // metrics
  metrics::Family<metrics::Counter>& requests_total;
  metrics::Family<metrics::Histogram>& request_seconds;
  metrics::Gauge& in_flight_gauge;
  metrics::Gauge& connections_gauge;
  metrics::Family<metrics::Counter>& bytes_sent;

  Impl(ServerOptions o, Router& r, metrics::Registry& m)
      : options(std::move(o)),
        router(r),
        loops(make_loops(options.io_threads)),
        pool(static_cast<std::size_t>(std::max(1, options.blocking_threads))),
        acceptor(*loops[0]),
        requests_total(m.counter("neurod_http_requests_total", "HTTP requests answered, by route, method and status")),
        request_seconds(m.histogram("neurod_http_request_duration_seconds", "HTTP request latency by route")),
        in_flight_gauge(m.gauge("neurod_http_requests_in_flight", "HTTP requests being handled").with({})),
        connections_gauge(m.gauge("neurod_http_connections", "Open HTTP connections").with({})),
        bytes_sent(m.counter("neurod_http_response_bytes_total", "Response body bytes sent, by route")) {}

  // Runs f on the blocking pool and resumes the coroutine on its own executor (the
  // connection's loop). The pool signals completion by cancelling a timer through the
  // loop, which runs the cancel only after the wait is registered.
  //
  // f must be trivially copyable (capture pointers and references): GCC 12 can destroy a
  // coroutine's by-value parameter twice, which freed a std::function's heap-held
  // functor twice when handlers were captured by value.
  template <class R, class F>
  awaitable<R> on_pool(F f) {
    static_assert(std::is_trivially_copyable_v<F>, "on_pool: capture pointers, not owning objects");
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer done(ex, asio::steady_timer::time_point::max());
    std::optional<R> result;
    std::exception_ptr error;
    asio::post(pool, [&, ex] {
      try {
        result.emplace(f());
      } catch (...) {
        error = std::current_exception();
      }
      asio::post(ex, [&done] { done.cancel(); });
    });
    boost::system::error_code ec;
    co_await done.async_wait(asio::redirect_error(use_awaitable, ec));
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }

  // The metric children of one (route, method, status), looked up in the registry once
  // per I/O thread and then kept, so the hot path takes no registry lock. The cache
  // dies with the thread, which dies with this server.
  struct RouteMetrics {
    metrics::Counter* requests;
    metrics::Histogram* latency;
    metrics::Counter* bytes;
  };
  RouteMetrics& route_metrics(const Route* route, Method method, int status) {
    thread_local std::map<std::tuple<const Route*, Method, int>, RouteMetrics> cache;
    auto key = std::make_tuple(route, method, status);
    auto it = cache.find(key);
    if (it == cache.end()) {
      std::string label = route ? route->pattern : "unmatched";
      RouteMetrics m{
          &requests_total.with(
              {{"route", label}, {"method", std::string(to_string(method))}, {"status", std::to_string(status)}}),
          &request_seconds.with({{"route", label}}), &bytes_sent.with({{"route", label}})};
      it = cache.emplace(key, m).first;
    }
    return it->second;
  }

  awaitable<void> accept_loop();
  awaitable<void> sweep_deadlines();
  template <class Stream>
  awaitable<void> run_connection(Stream stream, std::string remote);
  template <class Stream, class X>
  awaitable<bool> send_file(Stream& stream, X& x, Response r, const std::shared_ptr<Conn>& conn,
                            boost::system::error_code& ec);
  template <class Stream, class X>
  awaitable<bool> send_stream(Stream& stream, X& x, Response r, const std::shared_ptr<Conn>& conn,
                              boost::system::error_code& ec);
  template <class WsStream>
  awaitable<void> run_websocket(WsStream& ws, WebSocketHandler& handler, const std::shared_ptr<Conn>& conn);
};

namespace {

template <class Stream>
tcp::socket& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

// Everything about one request that the access log and metrics need.
struct Exchange {
  Request req;
  const Route* route = nullptr;
  int status = 0;
  std::uint64_t bytes = 0;
  Clock::time_point start = Clock::now();
  bool keep_alive = true;
  unsigned version = 11;  // of the request: 10 or 11
};

// The status line and header block of a response. Header values come from handlers;
// a CR or LF in one would let it inject headers, so it is refused.
std::string serialize_head(int status, const Headers& headers, const std::string& request_id,
                           std::optional<std::size_t> content_length, bool keep_alive, unsigned version) {
  std::string out;
  out.reserve(192);
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  out += "\r\n";
  for (const auto& [k, v] : headers.items()) {
    if (k.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      throw std::logic_error("response header " + k + " contains a line break");
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "X-Request-Id: ";
  out += request_id;
  out += "\r\n";
  if (content_length) {
    out += "Content-Length: ";
    out += std::to_string(*content_length);
    out += "\r\n";
  }
  if (!keep_alive)
    out += "Connection: close\r\n";
  else if (version == 10)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
  return out;
}

Response error_response(const Error& e, const std::string& request_id) {
  auto r = Response::json(error_body(e, request_id), http_status(e.code()));
  if (e.code() == errc::db_busy) r.headers.set("Retry-After", "1");
  if (e.code() == errc::unauthenticated) r.headers.set("WWW-Authenticate", "Bearer realm=\"neurod\"");
  return r;
}

// The route's own error form when it has one (the registry's OCI errors), else neurod's.
Response render_error(const Route* route, const Error& e, const Request& req) {
  if (route && route->options.render_error) {
    try {
      auto r = route->options.render_error(e, req);
      return r;
    } catch (const std::exception& ex) {
      spdlog::error("request {}: the route's error renderer failed: {}", req.request_id, ex.what());
    }
  }
  return error_response(e, req.request_id);
}

// Fills Request fields from the parsed header. Throws Error(bad_request) on a bad target.
template <class Fields>
void fill_request(Request& req, const bhttp::request_header<Fields>& h) {
  req.target = std::string(h.target());
  auto t = std::string_view(req.target);
  if (t.empty() || t.front() != '/') throw Error(errc::bad_request, "request target must be an absolute path");
  auto q = t.find('?');
  auto raw_path = t.substr(0, q);
  auto decoded = percent_decode(raw_path, false);
  if (!decoded) throw Error(errc::bad_request, "malformed percent-encoding in the request path");
  if (decoded->find('\0') != std::string::npos) throw Error(errc::bad_request, "NUL byte in the request path");
  req.path = std::move(*decoded);
  if (q != std::string_view::npos) {
    auto parsed = parse_query(t.substr(q + 1));
    if (!parsed) throw Error(errc::bad_request, "malformed query string");
    req.query = std::move(*parsed);
  }
  for (const auto& f : h) req.headers.add(std::string(f.name_string()), std::string(f.value()));
}

}  // namespace

awaitable<void> Server::Impl::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket(*loops[next_loop++ % loops.size()]);
    co_await acceptor.async_accept(socket, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      // Out of fds: back off briefly instead of spinning.
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (draining || connections.load() >= options.max_connections) {
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    std::string remote;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    auto ex = socket.get_executor();
    if (ssl) {
      asio::ssl::stream<tcp::socket> stream(std::move(socket), *ssl);
      asio::co_spawn(ex, run_connection(std::move(stream), std::move(remote)), asio::detached);
    } else {
      asio::co_spawn(ex, run_connection(std::move(socket), std::move(remote)), asio::detached);
    }
  }
}

awaitable<void> Server::Impl::sweep_deadlines() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(kSweepInterval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    std::lock_guard lock(conns_mu);
    for (auto& c : conns) {
      if (c->deadline.load(std::memory_order_relaxed) > now) continue;
      c->disarm();
      std::lock_guard l(c->mu);
      c->close();
    }
  }
}

template <class Stream>
awaitable<void> Server::Impl::run_connection(Stream stream, std::string remote) {
  constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;
  auto conn = std::make_shared<Conn>();
  auto ex = co_await asio::this_coro::executor;
  conn->close = [ex, &stream, alive = conn->alive] {
    asio::post(ex, [&stream, alive] {
      if (!*alive) return;
      boost::system::error_code ec;
      lowest(stream).shutdown(tcp::socket::shutdown_both, ec);
      lowest(stream).close(ec);
    });
  };
  std::list<std::shared_ptr<Conn>>::iterator self;
  {
    std::lock_guard lock(conns_mu);
    self = conns.insert(conns.end(), conn);
  }
  ++connections;
  connections_gauge.inc();
  struct Cleanup {
    Impl* impl;
    std::list<std::shared_ptr<Conn>>::iterator it;
    ~Cleanup() {
      *(*it)->alive = false;
      std::lock_guard lock(impl->conns_mu);
      impl->conns.erase(it);
      --impl->connections;
      impl->connections_gauge.dec();
    }
  } cleanup{this, self};

  beast::flat_buffer buffer;
  boost::system::error_code ec;

  if constexpr (kTls) {
    conn->arm(options.header_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
  }

  auto write_message = [&](auto& msg) -> awaitable<bool> {
    conn->arm(options.request_timeout);
    co_await bhttp::async_write(stream, msg, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  };

  for (bool first = true;; first = false) {
    // Wait for the next request: the idle timeout covers the gap, then the whole
    // header must arrive within the header timeout (a byte-by-byte client is cut off).
    conn->busy = false;
    if (draining) break;
    if (buffer.size() == 0) {
      conn->arm(first ? options.header_timeout : options.idle_timeout);
      auto n = co_await stream.async_read_some(buffer.prepare(4096), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      buffer.commit(n);
    }
    conn->busy = true;
    Exchange x;
    x.req.remote_address = remote;
    bhttp::request_parser<bhttp::empty_body> header_parser;
    header_parser.header_limit(static_cast<std::uint32_t>(options.max_header_size));
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    conn->arm(options.header_timeout);
    co_await bhttp::async_read_header(stream, buffer, header_parser, asio::redirect_error(use_awaitable, ec));
    conn->disarm();
    ++in_flight;
    in_flight_gauge.inc();
    struct InFlight {
      Impl* impl;
      ~InFlight() {
        --impl->in_flight;
        impl->in_flight_gauge.dec();
      }
    } in_flight_guard{this};

    // Sends a complete in-memory response; returns false when the connection must close.
    // In-memory responses are serialized by hand into one buffer and one write: the
    // hot path of small JSON answers, where Beast's field container costs more than
    // the whole exchange.
    auto send = [&](Response r) -> awaitable<bool> {
      x.status = r.status;
      bool keep = x.keep_alive && !draining;
      bool head = x.req.method == Method::head;
      bool has_length = r.status != 204 && r.status != 304 && !(r.status >= 100 && r.status < 200);
      std::string out =
          serialize_head(r.status, r.headers, x.req.request_id,
                         has_length ? std::optional<std::size_t>(r.body.size()) : std::nullopt, keep, x.version);
      if (!head) {
        x.bytes = r.body.size();
        out += r.body;
      }
      conn->arm(options.request_timeout);
      co_await asio::async_write(stream, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
      co_return !ec && keep;
    };
    auto fail = [&](const Error& e) -> awaitable<bool> {
      co_return co_await send(error_response(e, x.req.request_id));
    };

    if (ec) {
      // Malformed or oversized header: answer once, then close (the stream position is unknown).
      // A closed connection, or one the sweeper closed for its header timeout.
      if (ec == asio::error::eof || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
          ec == asio::error::connection_reset)
        break;
      x.req.request_id = new_request_id();
      x.keep_alive = false;
      if (ec == bhttp::error::header_limit)
        co_await fail(Error(errc::header_too_large,
                            "the request header is larger than " + std::to_string(options.max_header_size) + " bytes"));
      else
        co_await fail(Error(errc::bad_request, "malformed HTTP request: " + ec.message()));
      spdlog::debug("closing connection from {}: {}", remote, ec.message());
      break;
    }

    auto& hdr = header_parser.get();
    x.keep_alive = hdr.keep_alive();
    x.version = hdr.version() == 10 ? 10 : 11;
    if (auto id = hdr["X-Request-Id"]; valid_request_id(id))
      x.req.request_id = std::string(id);
    else
      x.req.request_id = new_request_id();

    bool keep_going = true;
    bool body_consumed =
        !header_parser.chunked() && (!header_parser.content_length() || *header_parser.content_length() == 0);
    auto finish = [&]() {
      auto seconds = std::chrono::duration<double>(Clock::now() - x.start).count();
      auto& m = route_metrics(x.route, x.req.method, x.status);
      m.requests->inc();
      m.latency->observe(seconds);
      if (x.bytes) m.bytes->inc(double(x.bytes));
      std::string_view method = to_string(x.req.method);
      if (options.access_log)
        log::access().info("{} {} {} {} {}B {:.1f}ms {} {}", remote, method, redact_capabilities(x.req.target),
                           x.status, x.bytes, seconds * 1000,
                           x.req.principal.authenticated() ? x.req.principal.name : "-", x.req.request_id);
      for (const auto& observe : router.observers()) {
        try {
          observe(x.req, x.route, x.status);
        } catch (const std::exception& e) {
          spdlog::error("request observer failed for {}: {}", x.req.request_id, e.what());
        }
      }
    };

    std::optional<Response> failure;  // co_await is not allowed inside a catch block
    std::exception_ptr failure_from_sink;
    try {
      auto method = to_method(hdr.method());
      if (!method)
        throw Error(errc::not_implemented, "method " + std::string(hdr.method_string()) + " is not supported");
      x.req.method = *method;
      fill_request(x.req, hdr);

      auto match = router.match(x.req.method, x.req.path);
      if (!match.route) {
        if (!match.allowed.empty()) {
          std::string allow;
          for (auto m : match.allowed) allow += (allow.empty() ? "" : ", ") + std::string(to_string(m));
          auto r = error_response(
              Error(errc::method_not_allowed,
                    std::string(to_string(x.req.method)) + " is not allowed on " + x.req.path + "; allowed: " + allow),
              x.req.request_id);
          r.headers.set("Allow", allow);
          throw r;
        }
        throw Error(errc::not_found, "no route for " + std::string(to_string(x.req.method)) + " " + x.req.path)
            .with_code("route_not_found");
      }
      x.route = match.route;
      x.req.params = std::move(match.params);
      const auto& opts = x.route->options;

      // Authenticate before reading any body: an anonymous client cannot upload.
      if (const auto& auth = router.authenticator()) {
        try {
          if (auto p = auth(x.req)) x.req.principal = std::move(*p);
        } catch (const Error&) {
          if (!opts.public_route) throw;
        }
      }
      if (!opts.public_route && !x.req.principal.authenticated())
        throw Error(errc::unauthenticated, "authentication required: pass a token as 'Authorization: Bearer TOKEN'");

      // WebSocket upgrade.
      if (x.route->websocket) {
        if (!websocket::is_upgrade(hdr))
          throw Error(errc::bad_request, "this endpoint needs a WebSocket upgrade").with_code("websocket_required");
        const auto* factory = &x.route->websocket;
        auto handler = co_await on_pool<std::shared_ptr<WebSocketHandler>>(
            [factory, &x] { return std::make_shared<WebSocketHandler>((*factory)(x.req)); });
        x.status = 101;
        finish();
        conn->busy = true;
        websocket::stream<Stream> ws(std::move(stream));
        conn->disarm();
        // A ping after 30 s without a frame from the peer keeps idle streams (a quiet log
        // follower) alive through proxies and finds dead peers; no answer in 60 s closes.
        auto ws_timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
        ws_timeouts.idle_timeout = std::chrono::seconds(60);
        ws_timeouts.keep_alive_pings = true;
        ws.set_option(ws_timeouts);
        ws.read_message_max(options.max_body_size);
        auto subprotocol = handler->subprotocol;
        auto request_id = x.req.request_id;
        ws.set_option(websocket::stream_base::decorator([subprotocol, request_id](websocket::response_type& res) {
          if (!subprotocol.empty()) res.set(bhttp::field::sec_websocket_protocol, subprotocol);
          res.set("X-Request-Id", request_id);
        }));
        co_await ws.async_accept(hdr, asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;
        co_await run_websocket(ws, *handler, conn);
        co_return;
      }

      // The body. Refuse an oversized one before reading it.
      std::uint64_t limit = opts.body_limit               ? opts.body_limit
                            : opts.body == BodyKind::file ? options.max_upload_size
                                                          : options.max_body_size;
      if (opts.body == BodyKind::none) limit = 0;
      auto declared = header_parser.content_length();
      if ((declared && *declared > limit) || (header_parser.chunked() && limit == 0)) {
        x.keep_alive = false;  // the body stays unread
        throw Error(errc::payload_too_large,
                    limit == 0 ? "this endpoint takes no request body"
                               : "the request body is " +
                                     (declared ? std::to_string(*declared) + " bytes" : std::string("too large")) +
                                     "; the limit for this endpoint is " + std::to_string(limit) + " bytes");
      }
      // A sink route decides whether it takes the body before the client sends it.
      if (opts.body == BodyKind::sink) {
        const auto* factory = &opts.sink;
        x.req.sink = co_await on_pool<std::shared_ptr<BodySink>>([factory, &x] { return (*factory)(x.req); });
        if (!x.req.sink) throw Error(errc::internal, "the upload sink was not created");
      }
      if (!body_consumed && iequals(hdr[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
        co_await write_message(cont);
        if (ec) break;
      }

      auto body_timeout = opts.timeout.count() ? opts.timeout : options.request_timeout;
      if (!body_consumed) {
        conn->arm(body_timeout);
        if (opts.body == BodyKind::sink) {
          // Pieces of up to 1 MiB go to the sink on the pool: few hops, and the disk
          // write never blocks an I/O thread. Two pieces alternate, so the socket is read
          // into one while the pool writes the other; the read buffer grows so that each
          // recv takes up to 64 KiB (Beast's cap) instead of the 4 KiB of a header read.
          bhttp::request_parser<bhttp::buffer_body> p(std::move(header_parser));
          p.body_limit(limit);
          // A small body with a known length gets pieces of its own size (a 4 KiB file
          // costs no megabytes of buffers); the rest 1 MiB, uninitialised.
          const std::uint64_t declared = p.content_length().value_or(std::uint64_t{1} << 20);
          const std::size_t piece_size = static_cast<std::size_t>(std::clamp<std::uint64_t>(declared, 4096, 1 << 20));
          if (piece_size >= (256u << 10)) buffer.reserve(256 << 10);
          std::unique_ptr<char[]> pieces[2] = {std::make_unique_for_overwrite<char[]>(piece_size),
                                               std::make_unique_for_overwrite<char[]>(piece_size)};
          BodySink* sink = x.req.sink.get();
          // The write in flight on the pool. Its completion is flagged on this loop's
          // thread, so checking `finished` and starting the wait cannot race.
          struct PendingWrite {
            asio::steady_timer done;
            std::exception_ptr error;
            bool busy = false;
            bool finished = false;
          };
          auto loop_ex = co_await asio::this_coro::executor;
          PendingWrite pending{asio::steady_timer(loop_ex, asio::steady_timer::time_point::max())};
          auto start_write = [&](const char* data, std::size_t n) {
            auto ex = pending.done.get_executor();
            pending.busy = true;
            pending.finished = false;
            PendingWrite* pw = &pending;
            asio::post(pool, [pw, ex, sink, data, n] {
              try {
                sink->write(data, n);
              } catch (...) {
                pw->error = std::current_exception();
              }
              asio::post(ex, [pw] {
                pw->finished = true;
                pw->done.cancel();
              });
            });
          };
          auto wait_write = [&]() -> awaitable<void> {
            if (!pending.busy) co_return;
            if (!pending.finished) {
              boost::system::error_code wec;
              co_await pending.done.async_wait(asio::redirect_error(use_awaitable, wec));
            }
            pending.busy = false;
          };
          int cur = 0;
          while (!p.is_done() && !pending.error) {
            // Gather at least a quarter of the piece (or the rest of the body) per hop.
            char* piece = pieces[cur].get();
            std::size_t n = 0;
            while (!p.is_done() && n < piece_size / 4) {
              p.get().body().data = piece + n;
              p.get().body().size = piece_size - n;
              co_await bhttp::async_read_some(stream, buffer, p, asio::redirect_error(use_awaitable, ec));
              if (ec == bhttp::error::need_buffer) ec = {};
              n = piece_size - p.get().body().size;
              if (ec) break;
            }
            co_await wait_write();  // the other piece is free again
            if (pending.error) break;
            if (n > 0) {
              x.req.body_size += n;
              start_write(piece, n);
              cur ^= 1;
            }
            if (ec) break;
          }
          co_await wait_write();
          if (piece_size >= (256u << 10)) buffer.shrink_to_fit();
          if (pending.error) {
            x.keep_alive = false;  // the rest of the body stays unread
            failure_from_sink = pending.error;
            co_await on_pool<bool>([sink] {
              sink->aborted();
              return true;
            });
            body_consumed = true;
            std::rethrow_exception(failure_from_sink);
          }
          if (ec) {
            co_await on_pool<bool>([sink] {
              sink->aborted();
              return true;
            });
          }
        } else if (opts.body == BodyKind::file) {
          bhttp::request_parser<bhttp::file_body> p(std::move(header_parser));
          p.body_limit(limit);
          auto dir = options.temp_dir.empty() ? std::filesystem::temp_directory_path() : options.temp_dir;
          std::string tmpl = (dir / "upload-XXXXXX").string();
          int fd = ::mkstemp(tmpl.data());
          if (fd < 0) throw Error(errc::insufficient_storage, "cannot create a temporary file for the upload");
          ::close(fd);
          x.req.body_file = tmpl;
          p.get().body().open(tmpl.c_str(), beast::file_mode::write, ec);
          if (ec) throw Error(errc::insufficient_storage, "cannot open a temporary file for the upload");
          co_await bhttp::async_read(stream, buffer, p, asio::redirect_error(use_awaitable, ec));
          p.get().body().close();
          std::error_code fec;
          x.req.body_size = std::filesystem::file_size(x.req.body_file, fec);
        } else {
          bhttp::request_parser<bhttp::string_body> p(std::move(header_parser));
          p.body_limit(limit);
          co_await bhttp::async_read(stream, buffer, p, asio::redirect_error(use_awaitable, ec));
          x.req.body = std::move(p.get().body());
          x.req.body_size = x.req.body.size();
        }
        body_consumed = true;
        if (ec) {
          x.keep_alive = false;
          if (ec == bhttp::error::body_limit)
            throw Error(errc::payload_too_large,
                        "the request body exceeds the limit of " + std::to_string(limit) + " bytes for this endpoint");
          if (ec == asio::error::eof || ec == bhttp::error::partial_message || ec == asio::error::connection_reset ||
              ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
            std::error_code fec;
            if (!x.req.body_file.empty()) std::filesystem::remove(x.req.body_file, fec);
            break;
          }
          throw Error(errc::bad_request, "malformed request body: " + ec.message());
        }
      }

      // The handler has no deadline of its own (a slow one holds a pool thread, not the connection).
      conn->disarm();
      Response res;
      if (opts.exec == Exec::io) {
        res = x.route->handler(x.req);
      } else {
        const auto* handler = &x.route->handler;  // the frozen table outlives every request
        res = co_await on_pool<Response>([handler, &x] { return (*handler)(x.req); });
      }
      if (!x.req.body_file.empty()) {
        std::error_code fec;
        std::filesystem::remove(x.req.body_file, fec);
        x.req.body_file.clear();
      }

      if (res.kind == Response::Kind::memory) {
        keep_going = co_await send(std::move(res));
      } else if (res.kind == Response::Kind::file) {
        keep_going = co_await send_file(stream, x, std::move(res), conn, ec);
      } else {
        keep_going = co_await send_stream(stream, x, std::move(res), conn, ec);
      }
    } catch (const Response& r) {
      failure = r;
    } catch (const Error& e) {
      if (http_status(e.code()) >= 500)
        spdlog::error("request {} {} {}: {}", x.req.request_id, to_string(x.req.method),
                      redact_capabilities(x.req.path), e.what());
      failure = render_error(x.route, e, x.req);
    } catch (const std::exception& e) {
      spdlog::error("request {} {} {} failed: {}", x.req.request_id, to_string(x.req.method),
                    redact_capabilities(x.req.path), e.what());
      failure = render_error(x.route, Error(errc::internal, "internal server error (request id " + x.req.request_id + ")"),
                             x.req);
    }
    if (failure) keep_going = co_await send(std::move(*failure));
    if (!x.req.body_file.empty()) {
      std::error_code fec;
      std::filesystem::remove(x.req.body_file, fec);
    }
    finish();
    if (!keep_going || !body_consumed || ec) break;
  }

  // Graceful close: for TLS a close_notify, for TCP a FIN after the last response.
  if constexpr (kTls) {
    conn->arm(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
  } else {
    lowest(stream).shutdown(tcp::socket::shutdown_send, ec);
  }
}

}  // namespace neurod::http

namespace neurod::http {

template <class Stream, class X>
awaitable<bool> Server::Impl::send_file(Stream& stream, X& x, Response r, const std::shared_ptr<Conn>& conn,
                                        boost::system::error_code& ec) {
  // Either the handler's open descriptor (it keeps ownership) or the file opened here.
  int fd = r.file_fd ? *r.file_fd : ::open(r.file.c_str(), O_RDONLY | O_CLOEXEC);
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } guard{r.file_fd ? -1 : fd};
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(errc::not_found, "file not found");
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = 0, length = size;
  int status = r.status;
  std::string content_range;
  if (auto range = x.req.header("Range"); range && status == 200) {
    ByteRange br;
    switch (parse_range(*range, size, br)) {
      case RangeResult::none:
        break;
      case RangeResult::unsatisfiable: {
        auto e = error_response(
            Error(errc::range_not_satisfiable,
                  "range " + std::string(*range) + " is outside the file's " + std::to_string(size) + " bytes"),
            x.req.request_id);
        e.headers.set("Content-Range", "bytes */" + std::to_string(size));
        throw e;
      }
      case RangeResult::ok:
        status = 206;
        offset = br.first;
        length = br.last - br.first + 1;
        content_range =
            "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" + std::to_string(size);
        break;
    }
  }
  bhttp::response<bhttp::buffer_body> res;
  res.result(static_cast<unsigned>(status));
  res.version(11);
  for (const auto& [k, v] : r.headers.items()) res.insert(k, v);
  res.set(bhttp::field::accept_ranges, "bytes");
  if (!content_range.empty()) res.set(bhttp::field::content_range, content_range);
  res.set("X-Request-Id", x.req.request_id);
  res.content_length(length);
  res.keep_alive(x.keep_alive && !draining);
  res.body().data = nullptr;
  res.body().more = true;
  x.status = status;
  bhttp::response_serializer<bhttp::buffer_body> sr(res);
  conn->arm(options.request_timeout);
  co_await bhttp::async_write_header(stream, sr, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  if (x.req.method == Method::head) co_return res.keep_alive();
  std::vector<char> buf(64 * 1024);
  std::uint64_t remaining = length;
  while (!sr.is_done()) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), remaining));
    ssize_t n = want ? ::pread(fd, buf.data(), want, static_cast<off_t>(offset)) : 0;
    if (n < 0 || (want && n == 0)) co_return false;  // the file shrank or failed: the short body tells the client
    offset += std::uint64_t(n);
    remaining -= std::uint64_t(n);
    if (n == 0) {
      res.body().data = nullptr;
      res.body().more = false;
    } else {
      res.body().data = buf.data();
      res.body().size = std::size_t(n);
      res.body().more = remaining > 0;
    }
    conn->arm(options.request_timeout);
    co_await bhttp::async_write(stream, sr, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return false;
    x.bytes += std::uint64_t(n);
  }
  co_return res.keep_alive();
}

template <class Stream, class X>
awaitable<bool> Server::Impl::send_stream(Stream& stream, X& x, Response r, const std::shared_ptr<Conn>& conn,
                                          boost::system::error_code& ec) {
  bhttp::response<bhttp::empty_body> res;
  res.result(static_cast<unsigned>(r.status));
  res.version(11);
  for (const auto& [k, v] : r.headers.items()) res.insert(k, v);
  res.set("X-Request-Id", x.req.request_id);
  // A stream is live data; a proxied answer keeps the job's own caching headers.
  if (res.find(bhttp::field::cache_control) == res.end()) res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Accel-Buffering", "no");
  res.chunked(true);
  res.keep_alive(x.keep_alive && !draining);
  x.status = r.status;
  bhttp::response_serializer<bhttp::empty_body> sr(res);
  conn->arm(options.request_timeout);
  co_await bhttp::async_write_header(stream, sr, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  if (x.req.method == Method::head) co_return false;

  auto writer = std::make_shared<QueueWriter>(co_await asio::this_coro::executor);
  auto source = r.stream_source;
  {
    std::lock_guard lock(conn->mu);
    conn->cancel_stream = [writer, source] {
      writer->mark_gone();
      source->cancel();
    };
  }
  if (draining) conn->cancel_stream();
  source->start(writer);
  bool aborted = false;
  std::string chunk;
  while (co_await writer->next(chunk, aborted)) {
    conn->arm(options.request_timeout);
    co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(chunk)), asio::redirect_error(use_awaitable, ec));
    conn->disarm();
    if (ec) break;
    x.bytes += chunk.size();
  }
  {
    std::lock_guard lock(conn->mu);
    conn->cancel_stream = nullptr;
  }
  if (ec || aborted) {
    writer->mark_gone();
    source->cancel();
    co_return false;
  }
  conn->arm(options.request_timeout);
  co_await asio::async_write(stream, bhttp::make_chunk_last(), asio::redirect_error(use_awaitable, ec));
  co_return !ec && res.keep_alive();
}

namespace {

// The WebSocket the handler sees: sends are queued and written by one coroutine on
// the connection's event loop, so they may come from any thread. The reader pauses
// while the handler asked it to (pause_reading), and on_drain tells a producer that
// the queue went down (WebSocket's back-pressure contract in types.hpp).
class WsConnection : public WebSocket, public std::enable_shared_from_this<WsConnection> {
 public:
  explicit WsConnection(asio::any_io_executor ex) : ex_(ex), timer_(ex), resume_timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
    resume_timer_.expires_at(asio::steady_timer::time_point::max());
  }

  void send_text(std::string m) override { push({std::move(m), false, false}); }
  void send_binary(std::string m) override { push({std::move(m), true, false}); }
  void close(int code, std::string reason) override {
    close_code_ = code;
    push({std::move(reason), false, true});
    wake_reader();  // a paused reader must read the peer's close reply
  }
  bool is_open() const override { return open_.load(); }
  std::size_t queued_bytes() const override {
    std::lock_guard lock(mu_);
    return queued_;
  }
  void on_drain(std::size_t low_water, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    low_water_ = low_water;
    drain_ = std::move(fn);
  }
  void pause_reading() override { ++paused_; }
  void resume_reading() override {
    if (--paused_ <= 0) wake_reader();
  }

  struct Item {
    std::string data;
    bool binary;
    bool close;
  };
  void push(Item item) {
    std::lock_guard lock(mu_);
    if (!open_ || closing_) return;
    if (item.close) closing_ = true;
    queued_ += item.data.size();
    queue_.push_back(std::move(item));
    if (!signalled_) {
      signalled_ = true;
      asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
    }
  }
  void shut() {
    open_ = false;
    asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
    std::function<void()> drain;
    {
      std::lock_guard lock(mu_);
      drain = drain_;
    }
    if (drain) drain();  // a producer waiting for room sees is_open() false
  }

  // The reader's side, on the loop: waits while paused (unless the socket is closing).
  awaitable<void> wait_while_paused() {
    while (paused_.load() > 0 && open_.load() && !closing_flag()) {
      boost::system::error_code ec;
      co_await resume_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  template <class WsStream>
  awaitable<void> write_loop(WsStream& ws) {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(mu_);
        if (queue_.empty()) {
          if (!open_) co_return;
          signalled_ = false;
          lock.unlock();
          boost::system::error_code ec;
          co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
          continue;
        }
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      boost::system::error_code ec;
      if (item.close) {
        co_await ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), item.data),
                                asio::redirect_error(use_awaitable, ec));
        co_return;
      }
      ws.binary(item.binary);
      co_await ws.async_write(asio::buffer(item.data), asio::redirect_error(use_awaitable, ec));
      std::function<void()> drain;
      {
        // Counted until written, so queued_bytes() includes the message in flight.
        std::lock_guard lock(mu_);
        bool above = queued_ > low_water_;
        queued_ -= item.data.size();
        if (above && queued_ <= low_water_) drain = drain_;
      }
      if (drain) drain();
      if (ec) {
        open_ = false;
        co_return;
      }
    }
  }

 private:
  bool closing_flag() const {
    std::lock_guard lock(mu_);
    return closing_;
  }
  void wake_reader() {
    asio::post(ex_, [self = shared_from_this()] { self->resume_timer_.cancel(); });
  }

  asio::any_io_executor ex_;
  asio::steady_timer timer_;
  asio::steady_timer resume_timer_;
  mutable std::mutex mu_;
  std::deque<Item> queue_;
  std::size_t queued_ = 0;
  std::size_t low_water_ = 0;
  std::function<void()> drain_;
  bool signalled_ = false;
  bool closing_ = false;
  int close_code_ = 1000;
  std::atomic<bool> open_{true};
  std::atomic<int> paused_{0};
};

}  // namespace

template <class WsStream>
awaitable<void> Server::Impl::run_websocket(WsStream& ws, WebSocketHandler& handler,
                                            const std::shared_ptr<Conn>& conn) {
  auto ex = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(conn->mu);
    conn->close = [ex, &ws, alive = conn->alive] {
      asio::post(ex, [&ws, alive] {
        if (!*alive) return;
        boost::system::error_code ec;
        beast::get_lowest_layer(ws).close(ec);
      });
    };
  }
  if (handler.tunnel_fd) {
    // A byte tunnel (port-forward): the fd is carried on this loop, no callbacks.
    int fd = ::dup(*handler.tunnel_fd);
    handler.tunnel_fd.reset();
    if (fd < 0) co_return;
    auto st = std::make_shared<detail::TunnelState>(ex, fd);
    {
      std::lock_guard lock(conn->mu);
      conn->cancel_stream = [ex, st] { asio::post(ex, [st] { st->end(1001); }); };
    }
    // An idle tunnel is kept: the server pings a quiet peer (the upgrade set keep-alive pings).
    co_await detail::run_tunnel(ws, st, true);
    {
      std::lock_guard lock(conn->mu);
      conn->cancel_stream = nullptr;
    }
    if (handler.on_close) handler.on_close();
    co_return;
  }
  auto socket = std::make_shared<WsConnection>(ex);
  {
    std::lock_guard lock(conn->mu);
    conn->cancel_stream = [socket] { socket->close(1001, "server shutting down"); };
  }
  // The writer runs beside the reader on the same loop; `done` tells us it ended.
  auto writer_done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  auto writer_finished = std::make_shared<bool>(false);
  asio::co_spawn(
      ex,
      [socket, &ws, writer_done, writer_finished]() -> awaitable<void> {
        co_await socket->write_loop(ws);
        *writer_finished = true;
        writer_done->cancel();
      },
      asio::detached);
  if (handler.on_open) handler.on_open(socket);
  beast::flat_buffer buf;
  boost::system::error_code ec;
  for (;;) {
    co_await socket->wait_while_paused();
    co_await ws.async_read(buf, asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    std::string message = beast::buffers_to_string(buf.data());
    buf.consume(buf.size());
    if (handler.on_message) {
      try {
        handler.on_message(socket, std::move(message), !ws.got_text());
      } catch (const std::exception& e) {
        spdlog::warn("websocket handler failed: {}", e.what());
        socket->close(1011, "internal error");
      }
    }
  }
  socket->shut();
  if (!*writer_finished) co_await writer_done->async_wait(asio::redirect_error(use_awaitable, ec));
  {
    std::lock_guard lock(conn->mu);
    conn->cancel_stream = nullptr;
  }
  if (handler.on_close) handler.on_close();
}

// ---------------------------------------------------------------------------

Server::Server(ServerOptions options, Router& router, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics)) {}

Server::~Server() {
  if (!impl_->threads.empty()) stop(Duration(0));
}

void Server::start() {
  auto& o = impl_->options;
  auto where = o.host + ":" + std::to_string(o.port);
  try {
    if (!o.tls_cert_file.empty()) {
      impl_->ssl.emplace(asio::ssl::context::tls_server);
      impl_->ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                              asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                              asio::ssl::context::no_tlsv1_1);
      impl_->ssl->use_certificate_chain_file(o.tls_cert_file);
      impl_->ssl->use_private_key_file(o.tls_key_file, asio::ssl::context::pem);
    }
  } catch (const std::exception& e) {
    throw Error(errc::unavailable, "cannot load the TLS certificate or key (" + o.tls_cert_file + ", " +
                                       o.tls_key_file + "): " + e.what());
  }
  try {
    tcp::resolver resolver(*impl_->loops[0]);
    auto results = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive);
    tcp::endpoint ep = results.begin()->endpoint();
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
    impl_->bound_port = impl_->acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    throw Error(errc::unavailable, "cannot listen on " + where + ": " + e.code().message());
  }
  if (!o.temp_dir.empty()) std::filesystem::create_directories(o.temp_dir);
  for (auto& loop : impl_->loops) impl_->work.emplace_back(loop->get_executor());
  asio::co_spawn(*impl_->loops[0], impl_->accept_loop(), asio::detached);
  asio::co_spawn(*impl_->loops[0], impl_->sweep_deadlines(), asio::detached);
  for (auto& loop : impl_->loops)
    impl_->threads.emplace_back([this, ioc = loop.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("I/O thread: {}", e.what());
        }
      }
    });
}

std::uint16_t Server::port() const { return impl_->bound_port; }

std::string Server::address() const {
  auto host = impl_->options.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->ssl ? "https://" : "http://") + host + ":" + std::to_string(impl_->bound_port);
}

std::size_t Server::in_flight() const { return impl_->in_flight.load(); }

void Server::post_blocking(std::function<void()> fn) { asio::post(impl_->pool, std::move(fn)); }

void Server::stop(Duration drain) {
  if (impl_->threads.empty()) return;
  impl_->draining = true;
  asio::post(*impl_->loops[0], [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
  });
  // Idle keep-alive connections close now; streams and WebSockets are told to end;
  // busy ones finish their request (answering with Connection: close).
  auto sweep = [this] {
    std::lock_guard lock(impl_->conns_mu);
    for (auto& c : impl_->conns) {
      std::function<void()> cancel, close;
      {
        std::lock_guard l(c->mu);
        cancel = c->cancel_stream;
        close = c->close;
      }
      if (cancel)
        cancel();
      else if (!c->busy)
        close();
    }
  };
  sweep();
  auto deadline = Clock::now() + drain;
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(impl_->conns_mu);
      if (impl_->conns.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    sweep();
  }
  {
    std::lock_guard lock(impl_->conns_mu);
    if (!impl_->conns.empty())
      spdlog::warn("closing {} connection(s) still open after the drain period", impl_->conns.size());
    for (auto& c : impl_->conns) {
      std::lock_guard l(c->mu);
      c->close();
    }
  }
  impl_->work.clear();
  // Give the closes a moment to run, then stop the loop.
  auto hard = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < hard) {
    {
      std::lock_guard lock(impl_->conns_mu);
      if (impl_->conns.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& loop : impl_->loops) loop->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->pool.join();
}

}  // namespace neurod::http

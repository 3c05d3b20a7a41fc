#include "http/client.hpp"

#include "core/errors.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <optional>

namespace neurod::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using local_stream = beast::basic_stream<asio::local::stream_protocol>;

Url Url::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error(errc::invalid_argument, "invalid server URL \"" + std::string(text) + "\": " + why);
  };
  Url u;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) throw bad("expected http://HOST:PORT or https://HOST:PORT");
  u.scheme = std::string(text.substr(0, sep));
  auto rest = text.substr(sep + 3);
  if (u.scheme == "unix") {
    // unix:///run/podman/podman.sock: the whole path is the socket's; requests go to "/…".
    if (rest.empty() || rest.front() != '/') throw bad("expected unix:///absolute/path/to.sock");
    u.socket = std::string(rest);
    u.host = "localhost";
    return u;
  }
  if (u.scheme != "http" && u.scheme != "https") throw bad("the scheme must be http, https or unix");
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.base_path = std::string(rest.substr(slash));
  while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  if (authority.empty()) throw bad("no host");
  if (authority.find('@') != std::string_view::npos) throw bad("credentials in the URL are not supported; use a token");
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw bad("unexpected text after the IPv6 address");
      port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw bad("no host");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos || std::stoul(std::string(port)) > 65535)
      throw bad("bad port");
    u.port = std::string(port);
  } else {
    u.port = u.scheme == "https" ? "443" : "80";
  }
  return u;
}

std::string Url::str() const {
  if (scheme == "unix") return "unix://" + socket;
  auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + port + base_path;
}

std::optional<std::string> ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  return std::nullopt;
}

nlohmann::json ClientResponse::json() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const std::exception&) {
    throw Error(errc::bad_gateway, "the server answered " + std::to_string(status) + " with a body that is not JSON");
  }
}

struct Client::Impl {
  Url url;
  ClientOptions options;
  asio::io_context ioc;
  std::optional<asio::ssl::context> ssl;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  std::unique_ptr<local_stream> local;
  beast::flat_buffer buffer;
  std::atomic<bool> cancelled{false};

  bool connected() const { return plain || tls || local; }

  // Runs one asynchronous operation to completion with the configured timeout.
  template <class Start>
  boost::system::error_code run(Start&& start) {
    if (cancelled) return asio::error::operation_aborted;
    boost::system::error_code result = asio::error::would_block;
    with_lowest([&](auto& s) {
      if (options.timeout.count() > 0)
        s.expires_after(options.timeout);
      else
        s.expires_never();
    });
    start([&](boost::system::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  template <class F>
  auto with_stream(F&& f) {
    if (tls) return f(*tls);
    if (local) return f(*local);
    return f(*plain);
  }

  template <class F>
  void with_lowest(F&& f) {
    if (tls)
      f(beast::get_lowest_layer(*tls));
    else if (local)
      f(*local);
    else if (plain)
      f(*plain);
  }

  // Only closes the descriptor (pending operations complete with operation_aborted); the
  // stream objects stay, so it is safe from a handler running inside run().
  void close_socket() {
    with_lowest([](auto& s) {
      boost::system::error_code ec;
      s.socket().close(ec);
    });
  }

  void close() {
    close_socket();
    plain.reset();
    tls.reset();
    local.reset();
    buffer.clear();
  }

  [[noreturn]] void unreachable(const std::string& why) {
    close();
    throw Error(errc::unavailable, "cannot connect to " + url.str() + ": " + why);
  }

  void connect() {
    close();
    if (cancelled) unreachable("the request was cancelled");
    if (url.scheme == "unix") {
      local = std::make_unique<local_stream>(ioc);
      auto ec =
          run([&](auto handler) { local->async_connect(asio::local::stream_protocol::endpoint(url.socket), handler); });
      if (ec == beast::error::timeout) unreachable("timed out");
      if (ec) unreachable(ec.message());
      return;
    }
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) unreachable(ec.message());
    if (url.scheme == "https") {
      if (!ssl) {
        ssl.emplace(asio::ssl::context::tls_client);
        if (options.insecure) {
          ssl->set_verify_mode(asio::ssl::verify_none);
        } else {
          ssl->set_verify_mode(asio::ssl::verify_peer);
          if (!options.ca_file.empty())
            ssl->load_verify_file(options.ca_file);
          else
            ssl->set_default_verify_paths();
        }
      }
      tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ssl);
      if (!options.insecure) tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
      SSL_set_tlsext_host_name(tls->native_handle(), url.host.c_str());
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    ec = run([&](auto handler) {
      with_lowest([&](auto& s) {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, beast::tcp_stream>)
          s.async_connect(endpoints, [handler](auto e, auto&&) mutable { handler(e); });
      });
    });
    if (ec == beast::error::timeout) unreachable("timed out");
    if (ec) unreachable(ec.message());
    if (tls) {
      ec = run([&](auto handler) { tls->async_handshake(asio::ssl::stream_base::client, handler); });
      if (ec) unreachable("TLS handshake failed: " + ec.message());
    }
  }

  bhttp::request<bhttp::string_body> make_request(std::string_view method, std::string_view target, std::string body,
                                                  const std::vector<std::pair<std::string, std::string>>& headers) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(url.base_path + std::string(target));
    req.version(11);
    req.set(bhttp::field::host, url.port.empty() ? url.host : url.host + ":" + url.port);
    req.set(bhttp::field::user_agent, "neuro/" NEUROD_CLIENT_VERSION);
    if (!options.token.empty()) req.set(bhttp::field::authorization, "Bearer " + options.token);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    req.keep_alive(true);
    return req;
  }

  // Sends the request, reconnecting once when a kept-alive connection turns out closed.
  void send(bhttp::request<bhttp::string_body>& req) {
    for (int attempt = 0;; ++attempt) {
      bool reused = connected();
      if (!reused) connect();
      auto ec = with_stream([&](auto& s) { return run([&](auto h) { bhttp::async_write(s, req, h); }); });
      if (!ec) return;
      close();
      if (!reused || attempt > 0) {
        if (ec == beast::error::timeout) throw Error(errc::gateway_timeout, "the server at " + url.str() + " did not answer in time");
        unreachable(ec.message());
      }
    }
  }

  int native_fd() {
    int fd = -1;
    with_lowest([&](auto& s) { fd = static_cast<int>(s.socket().native_handle()); });
    return fd;
  }

  // An idle kept-alive connection with anything to read (EOF, a reset, stray bytes) is
  // stale: closed here so that the next request starts on a fresh one. For requests whose
  // body cannot be sent twice.
  void drop_if_stale() {
    if (!connected()) return;
    if (buffer.size() > 0) return close();
    char c;
    auto n = ::recv(native_fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) close();
  }

  // Whether the server has sent something within ms milliseconds.
  bool readable_within(int ms) {
    if (buffer.size() > 0) return true;
    pollfd p{native_fd(), POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }

  void fail_read(boost::system::error_code ec) {
    close();
    if (cancelled) throw Error(errc::unavailable, "the request to " + url.str() + " was cancelled");
    if (ec == beast::error::timeout) throw Error(errc::gateway_timeout, "the server at " + url.str() + " did not answer in time");
    throw Error(errc::unavailable, "the connection to " + url.str() + " failed: " + ec.message());
  }
};


Client::Client(std::string base_url, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->url = Url::parse(base_url);
  impl_->options = std::move(options);
}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const Url& Client::url() const { return impl_->url; }

void Client::set_timeout(Duration timeout) { impl_->options.timeout = timeout; }
Duration Client::timeout() const { return impl_->options.timeout; }

void Client::cancel() {
  auto* d = impl_.get();
  d->cancelled = true;
  // The socket belongs to the thread inside run(): close it from there.
  asio::post(d->ioc, [d] { d->close_socket(); });
}

bool Client::cancelled() const { return impl_->cancelled; }

ClientResponse Client::request(std::string_view method, std::string_view target, std::string body,
                               std::vector<std::pair<std::string, std::string>> headers) {
  std::string collected;
  auto r = stream(method, target, [&](std::string_view chunk) {
    collected.append(chunk);
    return true;
  }, std::move(body), std::move(headers));
  r.body = std::move(collected);
  return r;
}

ClientResponse Client::post_json(std::string_view target, const nlohmann::json& body) {
  return request("POST", target, body.dump(), {{"Content-Type", "application/json"}});
}

ClientResponse Client::upload(std::string_view method, std::string_view target,
                              const std::function<std::size_t(char*, std::size_t)>& read_body,
                              std::optional<std::uint64_t> content_length,
                              std::vector<std::pair<std::string, std::string>> headers) {
  auto& d = *impl_;
  constexpr std::uint64_t kExpectFrom = 1 << 20;
  bool expect = !content_length || *content_length >= kExpectFrom;
  bhttp::request<bhttp::buffer_body> req;
  req.method_string(method);
  req.target(d.url.base_path + std::string(target));
  req.version(11);
  req.set(bhttp::field::host, d.url.port.empty() ? d.url.host : d.url.host + ":" + d.url.port);
  req.set(bhttp::field::user_agent, "neuro/" NEUROD_CLIENT_VERSION);
  if (!d.options.token.empty()) req.set(bhttp::field::authorization, "Bearer " + d.options.token);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (expect) req.set(bhttp::field::expect, "100-continue");
  if (content_length)
    req.content_length(*content_length);
  else
    req.chunked(true);
  req.keep_alive(true);
  req.body().data = nullptr;
  req.body().size = 0;
  req.body().more = true;
  bhttp::request_serializer<bhttp::buffer_body> sr{req};

  d.drop_if_stale();
  if (!d.connected()) d.connect();
  boost::system::error_code ec;
  if (expect) {
    ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_write_header(s, sr, h); }); });
    if (ec) {
      d.close();
      if (ec == beast::error::timeout) throw Error(errc::gateway_timeout, "the server at " + d.url.str() + " did not answer in time");
      d.unreachable(ec.message());
    }
  }

  // Reads the body of a response whose header the parser holds.
  auto finish = [&](bhttp::response_parser<bhttp::string_body>& parser, bool body_sent) {
    boost::system::error_code e;
    if (!parser.is_done())
      e = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read(s, d.buffer, parser, h); }); });
    if (e) d.fail_read(e);
    ClientResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.body = std::move(parser.get().body());
    // A refusal before the body was sent leaves the connection unusable for another request.
    if (!body_sent || !parser.get().keep_alive()) d.close();
    return out;
  };

  if (expect && d.readable_within(1000)) {
    bhttp::response_parser<bhttp::string_body> interim;
    interim.body_limit(std::numeric_limits<std::uint64_t>::max());
    ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read_header(s, d.buffer, interim, h); }); });
    if (ec) d.fail_read(ec);
    if (interim.get().result() != bhttp::status::continue_) return finish(interim, false);
  }

  // Without Expect the header goes out with the first piece of the body, in one write: a
  // small file is one segment, not a header that Nagle's algorithm and a delayed ACK hold
  // back the body behind.
  // Small bodies (most files of a big tree) get a small buffer.
  constexpr std::uint64_t kPiece = 256 * 1024;
  std::vector<char> buf(static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min(kPiece, content_length.value_or(kPiece)))));
  std::uint64_t sent = 0;
  for (;;) {
    std::size_t want = buf.size();
    if (content_length) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *content_length - sent));
    std::size_t n = 0;
    try {
      n = want ? read_body(buf.data(), want) : 0;
    } catch (...) {
      d.close();  // the request is cut short: the connection cannot carry another
      throw;
    }
    if (content_length && n == 0 && sent < *content_length) {
      d.close();
      throw Error(errc::internal, "the body ended after " + std::to_string(sent) + " of " +
                                      std::to_string(*content_length) + " bytes");
    }
    sent += n;
    req.body().data = n ? buf.data() : nullptr;
    req.body().size = n;
    req.body().more = content_length ? sent < *content_length : n > 0;
    ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_write(s, sr, h); }); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      // The server may have answered early (a refusal) and closed: show that answer.
      if (ec != beast::error::timeout && !d.cancelled && d.readable_within(0)) {
        bhttp::response_parser<bhttp::string_body> early;
        early.body_limit(std::numeric_limits<std::uint64_t>::max());
        boost::system::error_code e2 =
            d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read(s, d.buffer, early, h); }); });
        if (!e2 || early.is_header_done()) {
          ClientResponse out;
          out.status = static_cast<int>(early.get().result_int());
          for (const auto& f : early.get()) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
          out.body = std::move(early.get().body());
          d.close();
          return out;
        }
      }
      d.close();
      if (ec == beast::error::timeout) throw Error(errc::gateway_timeout, "the server at " + d.url.str() + " did not answer in time");
      if (d.cancelled) throw Error(errc::unavailable, "the request to " + d.url.str() + " was cancelled");
      throw Error(errc::unavailable, "the connection to " + d.url.str() + " failed: " + ec.message());
    }
    if (!req.body().more) break;
  }
  for (;;) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read_header(s, d.buffer, parser, h); }); });
    if (ec) d.fail_read(ec);
    // A 100 Continue that came after the wait: skip it.
    if (parser.get().result() == bhttp::status::continue_) continue;
    return finish(parser, true);
  }
}

ClientResponse Client::stream(std::string_view method, std::string_view target,
                              const std::function<bool(std::string_view)>& on_chunk, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers,
                              const std::function<bool(const ClientResponse&)>& on_head) {
  auto& d = *impl_;
  auto req = d.make_request(method, target, std::move(body), headers);
  bool is_head = method == "HEAD";
  for (int attempt = 0;; ++attempt) {
    bool reused = d.connected();
    d.send(req);
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.skip(is_head);
    auto ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read_header(s, d.buffer, parser, h); }); });
    if (ec) {
      // A kept-alive connection the server closed meanwhile: try once more on a new one.
      if (reused && attempt == 0 && (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                                     ec == asio::error::connection_reset)) {
        d.close();
        continue;
      }
      d.fail_read(ec);
    }
    ClientResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    bool keep = parser.get().keep_alive();
    bool to_chunks = !on_head || on_head(out);
    bool stopped = false;
    char buf[16 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = buf;
      parser.get().body().size = sizeof buf;
      ec = d.with_stream([&](auto& s) { return d.run([&](auto h) { bhttp::async_read_some(s, d.buffer, parser, h); }); });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) d.fail_read(ec);
      auto n = sizeof buf - parser.get().body().size;
      if (n && !to_chunks) {
        out.body.append(buf, n);
      } else if (n && !on_chunk(std::string_view(buf, n))) {
        stopped = true;
        break;
      }
    }
    if (stopped || !keep) d.close();
    return out;
  }
}

}  // namespace neurod::http

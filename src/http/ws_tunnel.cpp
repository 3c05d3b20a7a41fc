#include "http/ws_tunnel.hpp"

#include "core/errors.hpp"
#include "http/ws_tunnel_pump.hpp"

#include <boost/beast/http.hpp>

#include <unistd.h>

namespace neurod::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

struct WebSocketTunnel::Impl {
  asio::io_context ioc{1};
  websocket::stream<tcp::socket> ws{ioc};
  std::uint64_t sent = 0, received = 0;
};

namespace {

// The refused upgrade as an Error: the server's message and code when it gave them.
Error refused(const websocket::response_type& res, const std::string& target, const boost::system::error_code& ec) {
  int status = static_cast<int>(res.result_int());
  std::string message, code;
  if (auto x = res.find("X-Error"); x != res.end()) message = std::string(x->value());
  try {
    auto j = nlohmann::json::parse(res.body());
    if (j.contains("error") && j["error"].is_object()) {
      if (message.empty()) message = j["error"].value("message", std::string());
      code = j["error"].value("code", std::string());
    }
  } catch (const std::exception&) {
  }
  if (message.empty()) {
    message = "WebSocket upgrade of " + target + " refused";
    if (status) message += " with HTTP " + std::to_string(status);
    if (!status) message += ": " + ec.message();
  }
  errc c = status == 400   ? errc::bad_request
           : status == 401 ? errc::unauthenticated
           : status == 403 ? errc::forbidden
           : status == 404 ? errc::not_found
           : status == 503 ? errc::unavailable
                           : errc::bad_gateway;
  Error e(c, message);
  if (!code.empty()) e.with_code(code);
  return e;
}

}  // namespace

WebSocketTunnel::WebSocketTunnel(const std::string& base_url, const std::string& target, ClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto url = Url::parse(base_url);
  if (url.scheme != "http")
    throw Error(errc::not_implemented, "port-forward over https is not supported by this client yet");
  tcp::resolver resolver(impl_->ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(url.host, url.port, ec);
  if (!ec) asio::connect(impl_->ws.next_layer(), results, ec);
  if (ec) throw Error(errc::unavailable, "cannot connect to " + url.str() + ": " + ec.message());
  impl_->ws.next_layer().set_option(tcp::no_delay(true), ec);
  impl_->ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    if (!options.token.empty()) req.set(beast::http::field::authorization, "Bearer " + options.token);
  }));
  // 30 s for the upgrade (and a close handshake); no idle limit: the server pings.
  impl_->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  // Masking (client to server) goes through this buffer: larger means fewer writes.
  impl_->ws.write_buffer_bytes(64 * 1024);
  impl_->ws.read_message_max(64ull << 20);
  // The asynchronous handshake: it keeps a refusal's response (status, headers, body),
  // where Beast's blocking one (1.74) drops it.
  websocket::response_type res;
  // Until the handshake completes, not until the loop is out of work: Beast's timeout timer
  // stays pending after a refusal (ioc.run() would wait it out, 30 s).
  bool done = false;
  impl_->ws.async_handshake(res, url.host + ":" + url.port, url.base_path + target,
                            [&](boost::system::error_code e) {
                              ec = e;
                              done = true;
                            });
  while (!done && impl_->ioc.run_one() > 0) {
  }
  if (ec) throw refused(res, target, ec);
}

WebSocketTunnel::~WebSocketTunnel() {
  boost::system::error_code ec;
  impl_->ws.next_layer().close(ec);
}

void WebSocketTunnel::run(int fd) {
  int own = ::dup(fd);
  if (own < 0) throw Error(errc::internal, "cannot duplicate the local socket");
  auto st = std::make_shared<detail::TunnelState>(impl_->ioc.get_executor(), own);
  bool done = false;
  asio::co_spawn(impl_->ioc, detail::run_tunnel(impl_->ws, st, false), [&](std::exception_ptr) { done = true; });
  impl_->ioc.restart();
  while (!done && impl_->ioc.run_one() > 0) {
  }
  impl_->sent = st->to_ws;
  impl_->received = st->from_ws;
}

std::uint64_t WebSocketTunnel::bytes_sent() const { return impl_->sent; }
std::uint64_t WebSocketTunnel::bytes_received() const { return impl_->received; }

}  // namespace neurod::http

#include "http/ws_client.hpp"

#include "core/errors.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace neurod::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

struct WebSocketClient::Impl {
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  int close_code = 0;
  std::string subprotocol;
};

WebSocketClient::WebSocketClient(const std::string& base_url, const std::string& target, ClientOptions options,
                                 std::vector<std::string> subprotocols)
    : impl_(std::make_unique<Impl>()) {
  auto url = Url::parse(base_url);
  if (url.scheme != "http") throw Error(errc::not_implemented, "WebSocket over https is not supported by this client yet");
  tcp::resolver resolver(impl_->ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(url.host, url.port, ec);
  if (!ec) beast::get_lowest_layer(impl_->ws).connect(results, ec);
  if (ec) throw Error(errc::unavailable, "cannot connect to " + url.str() + ": " + ec.message());
  impl_->ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    if (!options.token.empty()) req.set(beast::http::field::authorization, "Bearer " + options.token);
    if (!subprotocols.empty()) {
      std::string list;
      for (const auto& p : subprotocols) list += (list.empty() ? "" : ", ") + p;
      req.set(beast::http::field::sec_websocket_protocol, list);
    }
  }));
  websocket::response_type res;
  impl_->ws.handshake(res, url.host + ":" + url.port, url.base_path + target, ec);
  if (ec) {
    int status = ec == websocket::error::upgrade_declined ? 0 : static_cast<int>(res.result_int());
    std::string message = "WebSocket upgrade of " + target + " refused";
    if (ec == websocket::error::upgrade_declined) {
      // Beast keeps a declined answer to itself (its response is left unfilled): ask again
      // with a plain client, the same upgrade headers and credentials, to learn why.
      try {
        ClientOptions plain = options;
        plain.timeout = std::chrono::seconds(10);
        Client c(base_url, plain);
        std::vector<std::pair<std::string, std::string>> headers = {{"Connection", "Upgrade"},
                                                                    {"Upgrade", "websocket"},
                                                                    {"Sec-WebSocket-Version", "13"},
                                                                    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
        std::string list;
        for (const auto& p : subprotocols) list += (list.empty() ? "" : ", ") + p;
        if (!list.empty()) headers.emplace_back("Sec-WebSocket-Protocol", list);
        auto r = c.request("GET", target, {}, headers);
        if (r.status != 101) {
          status = r.status;
          auto j = nlohmann::json::parse(r.body, nullptr, false);
          if (j.is_object() && j.contains("error") && j["error"].is_object())
            message += ": " + j["error"].value("message", std::string());
        }
      } catch (const std::exception&) {
      }
    }
    if (status) message += " with HTTP " + std::to_string(status);
    if (status == 401) throw Error(errc::unauthenticated, message);
    if (status == 403) throw Error(errc::forbidden, message);
    if (status == 404) throw Error(errc::not_found, message);
    throw Error(errc::bad_gateway, message + ": " + ec.message());
  }
  if (auto it = res.find(beast::http::field::sec_websocket_protocol); it != res.end())
    impl_->subprotocol = std::string(it->value());
}

WebSocketClient::~WebSocketClient() {
  boost::system::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

void WebSocketClient::send_text(const std::string& m) {
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(m));
}

void WebSocketClient::send_binary(const std::string& m) {
  impl_->ws.binary(true);
  impl_->ws.write(asio::buffer(m));
}

std::optional<WsMessage> WebSocketClient::read() {
  beast::flat_buffer buf;
  boost::system::error_code ec;
  impl_->ws.read(buf, ec);
  if (ec) {
    impl_->close_code = impl_->ws.reason().code;
    return std::nullopt;
  }
  return WsMessage{beast::buffers_to_string(buf.data()), !impl_->ws.got_text()};
}

void WebSocketClient::close() {
  boost::system::error_code ec;
  impl_->ws.close(websocket::close_code::normal, ec);
}

int WebSocketClient::close_code() const { return impl_->close_code; }

const std::string& WebSocketClient::subprotocol() const { return impl_->subprotocol; }

}  // namespace neurod::http

// A blocking WebSocket client for the CLI (exec, attach, log follow) and the tests.
#pragma once

#include "http/client.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace neurod::http {

struct WsMessage {
  std::string data;
  bool binary = false;
};

class WebSocketClient {
 public:
  // Connects to base_url + target and upgrades. Throws Error(unavailable) when
  // unreachable and Error(bad_request/unauthenticated/…) with the server's status
  // when the upgrade is refused.
  WebSocketClient(const std::string& base_url, const std::string& target, ClientOptions options = {},
                  std::vector<std::string> subprotocols = {});
  ~WebSocketClient();
  void send_text(const std::string& m);
  void send_binary(const std::string& m);
  // Waits for the next message; nullopt when the server closed the connection.
  std::optional<WsMessage> read();
  void close();
  // After read() returned nullopt: the close code the server sent (0 if none).
  int close_code() const;
  // The subprotocol the server chose (its Sec-WebSocket-Protocol answer); empty: none.
  const std::string& subprotocol() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurod::http

// The client end of a byte tunnel over WebSocket (`neuro port-forward`, the tests): opens
// the WebSocket, then carries bytes between it and a connected local socket until both
// sides are done. The protocol is WebSocketHandler::tunnel_fd's (types.hpp); at the end
// of the local socket's data the tunnel half-closes (an empty binary message) and keeps
// receiving until the server ends it. No Beast in this header.
#pragma once

#include "http/client.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace neurod::http {

class WebSocketTunnel {
 public:
  // Connects to base_url + target and upgrades (blocking, within options.timeout). When
  // the server refuses, throws Error with its status mapped (400 → bad_request, 401, 403,
  // 404, …) and its message (the X-Error header or the JSON error body), with its code.
  WebSocketTunnel(const std::string& base_url, const std::string& target, ClientOptions options = {});
  ~WebSocketTunnel();
  WebSocketTunnel(const WebSocketTunnel&) = delete;
  WebSocketTunnel& operator=(const WebSocketTunnel&) = delete;

  // Carries bytes until the tunnel ends (blocking, in the calling thread). fd is a
  // connected stream socket (TCP or unix); it is not closed here. Call once.
  void run(int fd);
  std::uint64_t bytes_sent() const;      // from fd to the server
  std::uint64_t bytes_received() const;  // from the server to fd

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurod::http

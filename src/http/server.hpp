// The HTTP/1.1 + WebSocket server (DESIGN §3). Beast stays inside server.cpp.
#pragma once

#include "core/metrics.hpp"
#include "core/units.hpp"
#include "http/router.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace neurod::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: pick a free port (read it back with Server::port())
  int io_threads = 2;
  int blocking_threads = 8;
  std::uint64_t max_header_size = 16ull * 1024;
  std::uint64_t max_body_size = 1024ull * 1024;
  std::uint64_t max_upload_size = 64ull << 30;
  Duration header_timeout{10000};
  Duration idle_timeout{60000};
  Duration request_timeout{60000};
  int max_connections = 10000;
  std::filesystem::path temp_dir;  // streamed uploads (BodyKind::file)
  bool access_log = true;
  std::string tls_cert_file;  // TLS when both are set
  std::string tls_key_file;
};

// Splits "host:port" / "[v6]:port"; throws Error(invalid_argument) when malformed.
std::pair<std::string, std::uint16_t> split_host_port(std::string_view listen);

class Server {
 public:
  Server(ServerOptions options, Router& router, metrics::Registry& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the I/O and blocking threads. Throws
  // Error(unavailable, "cannot listen on HOST:PORT: reason") on failure.
  void start();
  std::uint16_t port() const;
  std::string address() const;  // "http://127.0.0.1:8080" or https://…

  // Graceful stop: no new connections; idle keep-alive connections close; in-flight
  // requests get up to `drain` to finish (their responses carry Connection: close);
  // long-lived streams are cancelled. Then everything is closed and threads joined.
  void stop(Duration drain);

  // Runs fn on the blocking pool (for modules' background work tied to requests).
  void post_blocking(std::function<void()> fn);

  std::size_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurod::http

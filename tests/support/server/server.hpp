// An in-process neurod for the http tier: the real module list (plus optional test
// modules) from inline YAML, a temp data dir, port 0, and a client pointed at it.
#pragma once

#include "app/app.hpp"
#include "http/client.hpp"
#include "support/db/backends.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace neurod::test {

enum class Backend { sqlite, postgres };
const char* backend_name(Backend b);

struct ServerSpec {
  Backend backend = Backend::sqlite;
  std::string http_yaml;                     // extra keys under http:, e.g. "  header_timeout: 400ms\n"
  std::string extra_yaml;                    // appended to the generated config (top-level keys)
  std::vector<app::ModuleInfo> extra_modules;  // test-only modules, appended to the compiled list
};

class TestServer {
 public:
  explicit TestServer(ServerSpec spec = {});
  ~TestServer();
  app::App& app() { return *app_; }
  std::uint16_t port() const { return app_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  http::Client client(http::ClientOptions o = {}) const { return http::Client(url(), o); }
  const TempDir& dir() const { return dir_; }
  // The YAML it was started with (for tests that start a second one alike).
  const std::string& yaml() const { return yaml_; }

 private:
  TempDir dir_;
  std::unique_ptr<TestDatabase> database_;  // a fresh database on the chosen backend
  std::string yaml_;
  std::unique_ptr<app::App> app_;
};

// A plain TCP connection for sending raw bytes (malformed requests, slow clients).
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  void send(std::string_view bytes);  // returns quietly if the peer closed
  // Reads until the peer closes or `timeout` passes; returns what arrived.
  std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until `marker` has arrived (or timeout); returns everything read so far.
  std::string read_until(std::string_view marker, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True if the peer closed the connection within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string pending_;
};

}  // namespace neurod::test

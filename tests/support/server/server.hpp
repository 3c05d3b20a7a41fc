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
constexpr Backend backend_of(db::Dialect d) { return d == db::Dialect::sqlite ? Backend::sqlite : Backend::postgres; }

struct ServerSpec {
  Backend backend = Backend::sqlite;
  std::string http_yaml;                     // extra keys under http:, e.g. "  header_timeout: 400ms\n"
  // Merged into the generated config, maps key by key (so "modules:\n  system: …" keeps
  // the generated modules.auth keys); a scalar given here replaces the generated one.
  std::string extra_yaml;
  // Keys under modules.auth, unindented ("login_max_failures_per_user: 3\n"); merged over
  // the test defaults (cheap argon2id: 1 MiB, one pass), then extra_yaml's.
  std::string auth_yaml;
  std::vector<app::ModuleInfo> extra_modules;  // test-only modules, appended to the compiled list
  // Use this existing database instead of a fresh one (a second server on another's
  // data: TestServer::database_url()). The server that made it must outlive this one.
  std::string database_url;
};

// Test defaults for modules.auth: password hashing that takes microseconds, not 100 ms.
inline constexpr const char* kFastAuthYaml = "password_hash_memory: 1MiB\npassword_hash_iterations: 1\n";

class TestServer {
 public:
  explicit TestServer(ServerSpec spec = {});
  ~TestServer();
  app::App& app() { return *app_; }
  std::uint16_t port() const { return app_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  http::Client client(http::ClientOptions o = {}) const { return http::Client(url(), o); }
  // A client that sends `token` as a Bearer token.
  http::Client client(const std::string& token) const;
  const TempDir& dir() const { return dir_; }
  std::filesystem::path data_dir() const { return dir_.path() / "data"; }
  // The YAML it was started with (for tests that start a second one alike).
  const std::string& yaml() const { return yaml_; }
  // The database it runs on, as a URL another server can open (ServerSpec::database_url).
  const std::string& database_url() const { return db_url_; }
  // The first administrator's token, written at bootstrap to <data_dir>/auth/admin.token
  // (without the trailing newline). Throws when the file is missing (the database had
  // users already, or the auth module is not loaded).
  std::string admin_token() const;

 private:
  TempDir dir_;
  std::unique_ptr<TestDatabase> database_;  // a fresh database on the chosen backend
  std::string db_url_;
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

// Captures what the process writes to stderr (where the daemon's log goes) while it
// lives: fd 2 is pointed at a temp file and restored on destruction.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  // Everything written so far.
  std::string text() const;

 private:
  TempDir dir_;
  int saved_ = -1;
};

}  // namespace neurod::test

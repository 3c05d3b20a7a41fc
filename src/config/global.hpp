// The top-level sections of neurod.yaml that belong to no module.
#pragma once

#include "config/schema.hpp"
#include "core/units.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace neurod::config {

struct TlsConfig {
  std::string cert;  // path to the PEM certificate chain; TLS is on when cert and key are set
  std::string key;   // path to the PEM private key
  static void describe(Schema<TlsConfig>& s);
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free port
  int io_threads = 2;
  int blocking_threads = 8;
  Size max_header_size{16ull * 1024};
  Size max_body_size{1024ull * 1024};                // default per-route limit for in-memory bodies
  Size max_upload_size{64ull * 1024 * 1024 * 1024};  // default limit for streamed bodies
  Duration header_timeout{10000};                    // whole request header must arrive within this
  Duration idle_timeout{60000};                      // keep-alive connection idle limit
  Duration request_timeout{60000};                   // body read + handler
  Duration drain_timeout{15000};                     // on SIGTERM, wait this long for in-flight requests
  int max_connections = 10000;
  std::string temp_dir;  // where streamed uploads go; default <data_dir>/tmp
  bool access_log = true;
  TlsConfig tls;
  static void describe(Schema<HttpConfig>& s);
};

struct DatabaseConfig {
  // "sqlite:neurod.db" (relative to data_dir), "sqlite:/abs/path.db", "sqlite::memory:",
  // or "postgresql://user:pass@host:port/db" / "postgresql:///db?host=/socket/dir".
  std::string url = "sqlite:neurod.db";
  int pool_size = 8;
  Duration busy_timeout{5000};
  static void describe(Schema<DatabaseConfig>& s);
};

struct LogConfig {
  std::string level = "info";   // trace|debug|info|warn|error
  std::string format = "text";  // text|json
  static void describe(Schema<LogConfig>& s);
};

// A resource preset users pick for jobs (reference §2.9): what one job gets.
struct Preset {
  std::string name;
  double cpu = 1;
  Size memory{2ull << 30};
  int gpu = 0;
  std::string gpu_model;
  Size shm{0};                  // /dev/shm size; 0: the runtime's default
  double credits_per_hour = 0;  // 0: not charged
  static void describe(Schema<Preset>& s);
};

struct GlobalConfig {
  std::string cluster_name = "default";
  std::string data_dir = "/var/lib/neurod";
  std::vector<std::string> roles{"control-plane", "compute"};
  LogConfig log;
  HttpConfig http;
  DatabaseConfig database;
  std::vector<Preset> presets{
      {"cpu-small", 1, Size{2ull << 30}, 0, "", Size{0}, 0},
      {"cpu-medium", 4, Size{16ull << 30}, 0, "", Size{0}, 0},
  };
  static void describe(Schema<GlobalConfig>& s);
};

}  // namespace neurod::config

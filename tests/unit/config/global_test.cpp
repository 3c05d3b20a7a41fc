#include "config/global.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace config = neurod::config;

namespace {

std::vector<std::string> global_errors(const std::string& yaml) {
  config::Errors errors;
  errors.file = "g.yaml";
  config::parse<config::GlobalConfig>(YAML::Load(yaml), "", errors);
  return errors.lines();
}

}  // namespace

TEST_CASE("global: http.listen accepts IPv4, hostnames and bracketed IPv6 with a port") {
  for (const char* ok : {"127.0.0.1:8080", "0.0.0.0:0", "localhost:65535", "neurod.example.com:443", "[::1]:8080",
                         "[::]:80", "[fe80::1%eth0]:80x"}) {
    CAPTURE(ok);
    const bool expect_ok = std::string(ok) != "[fe80::1%eth0]:80x";
    CHECK(global_errors(std::string("http:\n  listen: \"") + ok + "\"").empty() == expect_ok);
  }
  for (const char* bad : {"8080", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:-1", "300.1.1.1:80", "::1:80", "[::1]80",
                          "[zz]:80", "-bad-:80", ":80", "host:port", "a..b:80"}) {
    CAPTURE(bad);
    auto errors = global_errors(std::string("http:\n  listen: \"") + bad + "\"");
    REQUIRE(errors.size() == 1);
    CHECK(
        errors[0].starts_with("g.yaml:2: http.listen: expected host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got \""));
  }
}

TEST_CASE("global: cluster_name, roles, log, database") {
  CHECK(global_errors("cluster_name: a").empty());
  CHECK(global_errors("cluster_name: prod-eu-1").empty());
  CHECK(global_errors("cluster_name: " + std::string(40, 'a')).empty());
  for (const std::string& bad : std::vector<std::string>{"1abc", "Prod", "a_b", std::string(41, 'a'), "-a", "\"\""}) {
    CAPTURE(bad);
    CHECK(global_errors("cluster_name: " + bad).size() == 1);
  }
  CHECK(global_errors("roles: [compute, control-plane]").empty());
  CHECK(global_errors("roles: []") == std::vector<std::string>{"g.yaml:1: roles: must not be empty"});
  CHECK(global_errors("roles: [compute, compute]") ==
        std::vector<std::string>{"g.yaml:1: roles: role 'compute' is listed twice"});
  CHECK(global_errors("log: {level: warn, format: json}").empty());
  CHECK(global_errors("log: {level: verbose}") ==
        std::vector<std::string>{
            R"(g.yaml:1: log.level: expected one of [trace, debug, info, warn, error], got "verbose")"});
  CHECK(global_errors("log: {format: xml}") ==
        std::vector<std::string>{R"(g.yaml:1: log.format: expected one of [text, json], got "xml")"});
  for (const char* ok : {"sqlite:neurod.db", "sqlite:/abs/x.db", "sqlite::memory:", "postgresql://u:p@h:5432/d",
                         "postgres://h/d", "postgresql:///db?host=/run/postgresql"}) {
    CAPTURE(ok);
    CHECK(global_errors(std::string("database:\n  url: \"") + ok + "\"").empty());
  }
  // The message names the scheme only: a URL may carry a password.
  CHECK(global_errors("database:\n  url: mysql://root:hunter2@x/db") ==
        std::vector<std::string>{
            R"(g.yaml:2: database.url: expected sqlite:<path> or postgresql://..., got a URL starting with "mysql:")"});
  CHECK(global_errors("database:\n  url: \"sqlite:\"").size() == 1);
  CHECK(global_errors("database:\n  pool_size: 0\n  busy_timeout: 1s") ==
        std::vector<std::string>{"g.yaml:2: database.pool_size: expected integer between 1 and 256, got 0"});
}

TEST_CASE("global: http limits and tls") {
  CHECK(global_errors("http: {io_threads: 65}") ==
        std::vector<std::string>{"g.yaml:1: http.io_threads: expected integer between 1 and 64, got 65"});
  CHECK(global_errors("http: {blocking_threads: 257}").size() == 1);
  CHECK(global_errors("http: {blocking_threads: 256, io_threads: 64, max_header_size: 64KiB}").empty());
  CHECK(global_errors("http: {header_timeout: 0s}") ==
        std::vector<std::string>{"g.yaml:1: http.header_timeout: expected a duration >= 1ms, got 0s"});

  // TLS cert and key are paths handed to OpenSSL, not PEM text.
  config::Errors errors;
  auto g = config::parse<config::GlobalConfig>(
      YAML::Load("http:\n  tls:\n    cert: /etc/neurod/cert.pem\n    key: /etc/neurod/key.pem"), "", errors);
  CHECK(errors.empty());
  CHECK(g.http.tls.cert == "/etc/neurod/cert.pem");
  CHECK(g.http.tls.key == "/etc/neurod/key.pem");
  CHECK(global_errors("http:\n  tls:\n    key: /etc/neurod/key.pem") ==
        std::vector<std::string>{"g.yaml:3: http.tls: cert and key must be set together (or neither)"});
}

TEST_CASE("global: reference parses back to the defaults") {
  config::Errors errors;
  auto g = config::parse<config::GlobalConfig>(YAML::Load(config::reference<config::GlobalConfig>(0)), "", errors);
  CHECK(errors.lines() == std::vector<std::string>{});
  const config::GlobalConfig d;
  CHECK(g.http.max_header_size == d.http.max_header_size);
  CHECK(g.http.request_timeout == d.http.request_timeout);
  CHECK(g.database.busy_timeout == d.database.busy_timeout);
  CHECK(g.log.level == d.log.level);
}

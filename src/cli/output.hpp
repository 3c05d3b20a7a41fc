// What the CLI tells people and scripts when something goes wrong: the exit codes
// (docs/cli.md lists them) and the messages for server and transport errors.
#pragma once

#include "core/errors.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace neurod::cli {

// Part of the CLI's interface: scripts test these. Append only.
enum class Exit : int {
  ok = 0,
  failure = 1,      // the request worked and the answer is "no": unhealthy, job failed, local I/O failed
  usage = 2,        // bad arguments or a bad local setting (URL, duration, config file)
  unreachable = 3,  // no answer from the server: refused, DNS, TLS, timeout
  auth = 4,         // 401 or 403
  server = 5,       // any other error response from the server
};

constexpr int code(Exit e) { return static_cast<int>(e); }

// Thrown by commands; main prints "neuro: " + what() to stderr and exits with exit().
class CliError : public std::runtime_error {
 public:
  CliError(Exit exit, std::string message) : std::runtime_error(std::move(message)), exit_(exit) {}
  Exit exit() const noexcept { return exit_; }

 private:
  Exit exit_;
};

// The error for a non-2xx response. Reads {"error":{"code","message","request_id"}}
// when the body has it, and falls back on the HTTP status otherwise. A 401 adds a
// hint to log in, a 403 is "permission denied: …".
CliError server_error(int status, std::string_view body);

// The text server_error builds on: "MESSAGE (HTTP 404 Not Found, CODE, request id ID)".
std::string describe_error(int status, std::string_view body);

// The "code" of an error body ("no_effect"); empty when there is none.
std::string error_code(std::string_view body);

// The error for a neurod::Error thrown locally or by the HTTP client.
CliError from_error(const Error& e);

// The hint printed under an "unreachable" error.
inline constexpr std::string_view kUnreachableHint =
    "Is neurod running? Set the URL with --url, NEURO_URL or `neuro config set-url`.";

}  // namespace neurod::cli

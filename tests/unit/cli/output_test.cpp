#include "cli/output.hpp"

#include <doctest/doctest.h>

#include <string>

using neurod::errc;
using neurod::cli::Exit;

TEST_CASE("cli exit codes are stable") {
  CHECK(neurod::cli::code(Exit::ok) == 0);
  CHECK(neurod::cli::code(Exit::failure) == 1);
  CHECK(neurod::cli::code(Exit::usage) == 2);
  CHECK(neurod::cli::code(Exit::unreachable) == 3);
  CHECK(neurod::cli::code(Exit::auth) == 4);
  CHECK(neurod::cli::code(Exit::server) == 5);
}

TEST_CASE("cli errors: 401 and 403 mean authentication, with the server's message") {
  auto e = neurod::cli::server_error(
      401, R"({"error":{"code":"unauthenticated","message":"a token is required","request_id":"r-1"}})");
  CHECK(e.exit() == Exit::auth);
  std::string m = e.what();
  CHECK(m.find("a token is required") != std::string::npos);
  CHECK(m.find("request id r-1") != std::string::npos);
  CHECK(m.find("neuro login") != std::string::npos);
  CHECK(m.find("NEURO_TOKEN") != std::string::npos);

  e = neurod::cli::server_error(403, R"({"error":{"code":"forbidden","message":"no","request_id":"r-2"}})");
  CHECK(e.exit() == Exit::auth);
  CHECK(std::string(e.what()).find("permission denied: no") == 0);
}

TEST_CASE("cli errors: a 403 lists the missing permissions") {
  auto e = neurod::cli::server_error(403, R"({"error":{"code":"forbidden","message":"not allowed"},
      "missing":[{"uri":"storage://c/bob/x","action":"write"},
                 [{"uri":"job://c/bob","action":"read"},{"uri":"project://c/bob","action":"manage"}]]})");
  CHECK(e.exit() == Exit::auth);
  CHECK(std::string(e.what()) ==
        "permission denied: not allowed (HTTP 403 Forbidden, forbidden)\n"
        "Missing:\n"
        "  write on storage://c/bob/x\n"
        "  read on job://c/bob or manage on project://c/bob");
  e = neurod::cli::server_error(
      403, R"({"error":{"code":"forbidden","message":"no","missing":[{"uri":"u","action":"read"}]}})");
  CHECK(std::string(e.what()).ends_with("\nMissing:\n  read on u"));
}

TEST_CASE("cli errors: a server message that already says what went wrong is not prefixed again") {
  auto e =
      neurod::cli::server_error(403, R"({"error":{"code":"forbidden","message":"permission denied: manage on x"}})");
  CHECK(std::string(e.what()) == "permission denied: manage on x (HTTP 403 Forbidden, forbidden)");
  e = neurod::cli::server_error(401,
                                R"({"error":{"code":"unauthenticated","message":"authentication required: a token"}})");
  CHECK(std::string(e.what()).starts_with("authentication required: a token (HTTP 401"));
}

TEST_CASE("cli errors: the error code and text of a body") {
  CHECK(neurod::cli::error_code(R"({"error":{"code":"no_effect","message":"x"}})") == "no_effect");
  CHECK(neurod::cli::error_code("not json") == "");
  CHECK(neurod::cli::describe_error(400, R"({"error":{"code":"no_effect","message":"no such grant"}})") ==
        "no such grant (HTTP 400 Bad Request, no_effect)");
}

TEST_CASE("cli errors: other error responses carry the message, code and request id") {
  auto e = neurod::cli::server_error(
      404, R"({"error":{"code":"job_not_found","message":"no job j-1","request_id":"abc123"}})");
  CHECK(e.exit() == Exit::server);
  CHECK(std::string(e.what()) == "no job j-1 (HTTP 404 Not Found, job_not_found, request id abc123)");

  e = neurod::cli::server_error(500, "<html><body>\nproxy error\n</body></html>");
  CHECK(e.exit() == Exit::server);
  CHECK(std::string(e.what()) == "<html><body> proxy error </body></html> (HTTP 500 Internal Server Error)");

  e = neurod::cli::server_error(599, "");
  CHECK(std::string(e.what()) == "the server answered HTTP 599 (HTTP 599)");
}

TEST_CASE("cli errors: transport and local errors map to exit codes") {
  auto e = neurod::cli::from_error(
      neurod::Error(errc::unavailable, "cannot connect to http://127.0.0.1:8080: Connection refused"));
  CHECK(e.exit() == Exit::unreachable);
  CHECK(std::string(e.what()) ==
        "cannot connect to http://127.0.0.1:8080: Connection refused\n"
        "Is neurod running? Set the URL with --url, NEURO_URL or `neuro config set-url`.");
  CHECK(neurod::cli::from_error(neurod::Error(errc::gateway_timeout, "slow")).exit() == Exit::unreachable);
  CHECK(neurod::cli::from_error(neurod::Error(errc::invalid_argument, "bad url")).exit() == Exit::usage);
  CHECK(neurod::cli::from_error(neurod::Error(errc::bad_gateway, "not json")).exit() == Exit::server);
  CHECK(neurod::cli::from_error(neurod::Error(errc::internal, "disk full")).exit() == Exit::failure);
}

// A reverse proxy for one request: http::forward writes a Request to an HTTP/1.1 server
// on a connected socket (a job's HTTP port) and turns its answer into a Response whose
// body streams as it comes. Modules call it with the socket their runtime connected
// (monitoring's job HTTP proxy); Beast stays in here.
#pragma once

#include "http/types.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace neurod::http {

struct ForwardOptions {
  // What the upstream sees as the request target: its path and query, starting with '/'.
  std::string target;
  // The public path the upstream is served under, without a trailing slash
  // ("/api/v1/jobs/ID/http"): sent as X-Forwarded-Prefix, put in front of a Location
  // that points at the upstream's own root, and in front of each Set-Cookie's Path (whose
  // Domain is dropped), so the upstream's cookies stay under the prefix.
  std::string prefix;
  // The prefix apps know, when `prefix` extends it (the job HTTP proxy's ticket segment:
  // prefix "/api/v1/jobs/ID/http/~t.T", link_prefix "/api/v1/jobs/ID/http"): a Location
  // under link_prefix but not under prefix is moved under prefix. Empty: none.
  std::string link_prefix;
  std::string proto = "http";  // X-Forwarded-Proto
  // Request headers never sent upstream, besides the hop-by-hop ones (Connection and what
  // it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*), Expect and
  // the X-Forwarded-* the proxy sets itself. Authorization is one the caller names here.
  std::vector<std::string> strip_request_headers;
  // Cookies removed from the request's Cookie header, and Set-Cookie lines of the answer
  // that would set them (the proxy's own credentials stay away from the upstream).
  std::vector<std::string> strip_cookies;
  // Added to every answer (after the upstream's own headers of the same name, if any).
  std::vector<std::pair<std::string, std::string>> response_headers;
  // Added to an answer that has no header of that name.
  std::vector<std::pair<std::string, std::string>> default_response_headers;
  // Sending the request and waiting for the answer's header: longer is 504.
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};
  // Names the upstream in error messages: "job job-…".
  std::string upstream_name = "the upstream";
};

// Sends `req` (its method, `options.target`, its headers less the stripped ones, its
// memory or file body) to the server on `fd` and returns its answer: status and headers
// (less hop-by-hop ones), the body as a stream read on the proxy's own I/O thread while
// the client keeps up (at most a few hundred KiB in flight; no pool thread is held while
// it streams). Takes ownership of `fd` (a connected stream socket). Runs on the blocking
// pool: it blocks while it sends the request and waits for the answer's header.
// Throws Error(bad_gateway) when the upstream breaks the protocol or closes without an
// answer, Error(gateway_timeout) when it does not answer within options.timeout.
Response forward(int fd, const Request& req, const ForwardOptions& options);

// Exposed for tests: the Location the client sees for an upstream's `location`
// (`host` is the Host the upstream was sent; `link_prefix` as ForwardOptions::link_prefix).
std::string rewrite_location(std::string_view location, std::string_view prefix, std::string_view host,
                             std::string_view link_prefix = {});
// And the Set-Cookie line the client sees for an upstream's (see ForwardOptions::prefix).
std::string scope_cookie(std::string_view set_cookie, std::string_view prefix);

}  // namespace neurod::http

// A small blocking HTTP/1.1 client shared by the CLI, the tests and the docker executor.
// Keeps one connection alive across requests; http://, https:// and unix:///path/to.sock
// (a local socket, e.g. the Docker Engine API). No Beast in this header.
#pragma once

#include "core/units.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::http {

struct Url {
  std::string scheme = "http";  // http | https | unix
  std::string host;             // unix: "localhost" (sent as the Host header)
  std::string port;             // always set ("80"/"443" by default); unix: empty
  std::string base_path;        // without trailing slash, may be empty; unix: always empty
  std::string socket;           // unix: the socket's path
  // Throws Error(invalid_argument) with a clear message for a malformed URL.
  static Url parse(std::string_view text);
  std::string str() const;
};

struct ClientOptions {
  // The longest wait for each step (connect, send, each read); zero or less: no limit
  // (long polls, followed streams).
  Duration timeout{30000};
  std::string token;      // sent as "Authorization: Bearer …" when not empty
  std::string ca_file;    // https: trust this CA (PEM) instead of the system store
  bool insecure = false;  // https: skip verification (tests only)
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const;
  nlohmann::json json() const;  // throws Error(bad_gateway) when the body is not JSON
};

class Client {
 public:
  explicit Client(std::string base_url, ClientOptions options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // target is appended to the base URL's path. Throws Error(unavailable) saying
  // "cannot connect to URL: reason" when the server is unreachable, and
  // Error(gateway_timeout) when it does not answer within the timeout.
  ClientResponse request(std::string_view method, std::string_view target, std::string body = {},
                         std::vector<std::pair<std::string, std::string>> headers = {});
  ClientResponse get(std::string_view target) { return request("GET", target); }
  ClientResponse post_json(std::string_view target, const nlohmann::json& body);

  // Streams the response body to on_chunk as it arrives (chunked or not); stop by
  // returning false. Returns the status and headers; body stays empty. on_head, when
  // given, sees the status and headers first; when it returns false the body is collected
  // into the returned response instead of going to on_chunk (e.g. an error's JSON).
  ClientResponse stream(std::string_view method, std::string_view target,
                        const std::function<bool(std::string_view)>& on_chunk, std::string body = {},
                        std::vector<std::pair<std::string, std::string>> headers = {},
                        const std::function<bool(const ClientResponse&)>& on_head = {});

  // Sends a body that is never held whole in memory (a file upload, stdin): read_body
  // fills the buffer it is given and returns how many bytes it wrote, 0 at the end. With
  // content_length the body is sent with Content-Length (read_body must produce exactly
  // that many bytes), without it chunked. A body of 1 MiB or more asks `Expect:
  // 100-continue` first, so that an early refusal (404, 403 quota) costs no upload; a
  // server that stays silent for a second gets the body anyway. The answer is collected
  // as by request(). A kept-alive connection that the server closed while idle is
  // noticed before the request starts; read_body is called at most once per byte.
  ClientResponse upload(std::string_view method, std::string_view target,
                        const std::function<std::size_t(char* buf, std::size_t size)>& read_body,
                        std::optional<std::uint64_t> content_length,
                        std::vector<std::pair<std::string, std::string>> headers = {});

  const Url& url() const;

  // Changes the per-step timeout for later requests (see ClientOptions::timeout).
  void set_timeout(Duration timeout);
  Duration timeout() const;

  // Thread-safe: makes the request in progress on another thread, and every later one,
  // fail at once with Error(unavailable) and closes the connection. For ending a long
  // stream or wait from outside.
  void cancel();
  bool cancelled() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurod::http

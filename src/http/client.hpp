// A small blocking HTTP/1.1 client shared by the CLI and the tests. Keeps one
// connection alive across requests; http:// and https://. No Beast in this header.
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
  std::string scheme = "http";  // http | https
  std::string host;
  std::string port;  // always set ("80"/"443" by default)
  std::string base_path;  // without trailing slash, may be empty
  // Throws Error(invalid_argument) with a clear message for a malformed URL.
  static Url parse(std::string_view text);
  std::string str() const;
};

struct ClientOptions {
  Duration timeout{30000};
  std::string token;          // sent as "Authorization: Bearer …" when not empty
  std::string ca_file;        // https: trust this CA (PEM) instead of the system store
  bool insecure = false;      // https: skip verification (tests only)
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
  // returning false. Returns the status and headers; body stays empty.
  ClientResponse stream(std::string_view method, std::string_view target,
                        const std::function<bool(std::string_view)>& on_chunk, std::string body = {},
                        std::vector<std::pair<std::string, std::string>> headers = {});

  const Url& url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neurod::http

// Percent-encoding and query strings (RFC 3986), shared by the server and the client.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neurod::http {

// nullopt on a malformed escape ("%G1", a trailing "%").
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);
// Encodes everything except unreserved characters (and '/' when keep_slash).
std::string percent_encode(std::string_view s, bool keep_slash = false);
// "a=1&b=&c" -> {{"a","1"},{"b",""},{"c",""}}; nullopt on bad escapes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q);
std::string build_query(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace neurod::http

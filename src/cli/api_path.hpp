// Request targets for the HTTP API: encoded path segments, principal names and
// query strings. The server decodes the whole path before routing, so a '/' inside
// a segment cannot be escaped; principal names write it as ':' instead
// (modules/auth/README.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neurod::cli {

inline constexpr std::string_view kApiPrefix = "/api/v1";

// "/api/v1" + path; path starts with '/'.
std::string api(std::string_view path);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string path_segment(std::string_view text);

// A user, service account or role name as a path segment: "alice/roles/readers"
// becomes "alice:roles:readers", then the rest is percent-encoded.
std::string principal_segment(std::string_view name);

// Parameters whose value is nullopt are left out; the rest are percent-encoded.
using QueryParams = std::vector<std::pair<std::string, std::optional<std::string>>>;
// path, plus "?k=v&…" when any parameter has a value.
std::string with_query(std::string path, const QueryParams& params);

}  // namespace neurod::cli

#include "cli/api_path.hpp"

#include "http/url.hpp"

#include <algorithm>

namespace neurod::cli {

std::string api(std::string_view path) { return std::string(kApiPrefix) + std::string(path); }

std::string path_segment(std::string_view text) { return http::percent_encode(text); }

std::string principal_segment(std::string_view name) {
  std::string s(name);
  std::replace(s.begin(), s.end(), '/', ':');
  return path_segment(s);
}

std::string with_query(std::string path, const QueryParams& params) {
  std::vector<std::pair<std::string, std::string>> present;
  for (const auto& [key, value] : params)
    if (value) present.emplace_back(key, *value);
  if (present.empty()) return path;
  return path + "?" + http::build_query(present);
}

}  // namespace neurod::cli

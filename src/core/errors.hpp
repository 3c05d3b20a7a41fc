// One error vocabulary for the whole daemon (DESIGN §4): a code enum, one table
// mapping each code to an HTTP status and a stable string, one exception type.
#pragma once

#include <nlohmann/json.hpp>

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace neurod {

// Client errors first, then server errors. Append only: the strings are API.
enum class errc {
  bad_request,             // 400 malformed syntax (request line, JSON, query)
  invalid_argument,        // 422 well-formed but invalid values
  unauthenticated,         // 401 no or bad credentials
  forbidden,               // 403 authenticated but not allowed
  not_found,               // 404
  method_not_allowed,      // 405
  not_acceptable,          // 406
  request_timeout,         // 408 client too slow
  conflict,                // 409 state conflict / unique violation
  gone,                    // 410
  length_required,         // 411
  precondition_failed,     // 412
  payload_too_large,       // 413
  uri_too_long,            // 414
  unsupported_media_type,  // 415
  range_not_satisfiable,   // 416
  expectation_failed,      // 417
  too_many_requests,       // 429
  header_too_large,        // 431
  internal,                // 500
  not_implemented,         // 501
  bad_gateway,             // 502
  unavailable,             // 503 (module unhealthy, shutting down)
  db_busy,                 // 503 + Retry-After (database locked or busy)
  gateway_timeout,         // 504
  insufficient_storage,    // 507
};

struct ErrcInfo {
  errc code;
  int http_status;
  std::string_view name;     // stable machine-readable string, e.g. "not_found"
  std::string_view summary;  // default human message
};

const ErrcInfo& errc_info(errc code);
std::span<const ErrcInfo> all_errc();
std::string_view to_string(errc code);
int http_status(errc code);

// The exception every layer throws for an expected failure. The HTTP layer turns
// it into {"error": {"code", "message", "request_id", ...details}}.
class Error : public std::runtime_error {
 public:
  Error(errc code, std::string message, nlohmann::json details = nlohmann::json::object());

  errc code() const noexcept { return code_; }
  // A more specific stable code than the enum's string ("job_not_found").
  const std::string& code_name() const noexcept { return code_name_; }
  Error& with_code(std::string name) & { code_name_ = std::move(name); return *this; }
  Error&& with_code(std::string name) && { code_name_ = std::move(name); return std::move(*this); }
  const nlohmann::json& details() const noexcept { return details_; }

 private:
  errc code_;
  std::string code_name_;
  nlohmann::json details_;
};

// The JSON body of an error response.
nlohmann::json error_body(const Error& e, std::string_view request_id);

}  // namespace neurod

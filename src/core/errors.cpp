#include "core/errors.hpp"

#include <array>

namespace neurod {
namespace {

constexpr std::array kTable{
    ErrcInfo{errc::bad_request, 400, "bad_request", "the request is malformed"},
    ErrcInfo{errc::invalid_argument, 422, "invalid_argument", "the request has invalid values"},
    ErrcInfo{errc::unauthenticated, 401, "unauthenticated", "authentication is required"},
    ErrcInfo{errc::forbidden, 403, "forbidden", "you are not allowed to do this"},
    ErrcInfo{errc::not_found, 404, "not_found", "not found"},
    ErrcInfo{errc::method_not_allowed, 405, "method_not_allowed", "method not allowed on this resource"},
    ErrcInfo{errc::not_acceptable, 406, "not_acceptable", "no acceptable representation"},
    ErrcInfo{errc::request_timeout, 408, "request_timeout", "the request was not received in time"},
    ErrcInfo{errc::conflict, 409, "conflict", "the request conflicts with the current state"},
    ErrcInfo{errc::gone, 410, "gone", "the resource is gone"},
    ErrcInfo{errc::length_required, 411, "length_required", "a Content-Length is required"},
    ErrcInfo{errc::precondition_failed, 412, "precondition_failed", "a precondition failed"},
    ErrcInfo{errc::payload_too_large, 413, "payload_too_large", "the request body is too large"},
    ErrcInfo{errc::uri_too_long, 414, "uri_too_long", "the request target is too long"},
    ErrcInfo{errc::unsupported_media_type, 415, "unsupported_media_type", "unsupported content type"},
    ErrcInfo{errc::range_not_satisfiable, 416, "range_not_satisfiable", "the requested range is not satisfiable"},
    ErrcInfo{errc::expectation_failed, 417, "expectation_failed", "the Expect header cannot be met"},
    ErrcInfo{errc::too_many_requests, 429, "too_many_requests", "too many requests"},
    ErrcInfo{errc::header_too_large, 431, "header_too_large", "the request header is too large"},
    ErrcInfo{errc::internal, 500, "internal", "internal server error"},
    ErrcInfo{errc::not_implemented, 501, "not_implemented", "not implemented"},
    ErrcInfo{errc::bad_gateway, 502, "bad_gateway", "an upstream service failed"},
    ErrcInfo{errc::unavailable, 503, "unavailable", "the service is unavailable"},
    ErrcInfo{errc::db_busy, 503, "db_busy", "the database is busy, retry shortly"},
    ErrcInfo{errc::gateway_timeout, 504, "gateway_timeout", "an upstream service timed out"},
    ErrcInfo{errc::insufficient_storage, 507, "insufficient_storage", "not enough storage"},
};

// The table is indexed by the enum value; this proves at compile time that it is complete and in order.
constexpr bool table_in_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<std::size_t>(kTable[i].code) != i) return false;
  return static_cast<std::size_t>(errc::insufficient_storage) + 1 == kTable.size();
}
static_assert(table_in_order(), "errc table must list every code in enum order");

}  // namespace

const ErrcInfo& errc_info(errc code) { return kTable.at(static_cast<std::size_t>(code)); }
std::span<const ErrcInfo> all_errc() { return kTable; }
std::string_view to_string(errc code) { return errc_info(code).name; }
int http_status(errc code) { return errc_info(code).http_status; }

Error::Error(errc code, std::string message, nlohmann::json details)
    : std::runtime_error(message.empty() ? std::string(errc_info(code).summary) : std::move(message)),
      code_(code),
      code_name_(errc_info(code).name),
      details_(std::move(details)) {}

nlohmann::json error_body(const Error& e, std::string_view request_id) {
  nlohmann::json err = nlohmann::json::object();
  err["code"] = e.code_name();
  err["message"] = e.what();
  err["request_id"] = request_id;
  if (e.details().is_object())
    for (auto& [k, v] : e.details().items())
      if (k != "code" && k != "message" && k != "request_id") err[k] = v;
  return nlohmann::json{{"error", std::move(err)}};
}

}  // namespace neurod

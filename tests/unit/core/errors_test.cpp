#include "core/errors.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

using neurod::errc;
using nlohmann::json;

namespace {

struct Expected {
  errc code;
  int status;
  const char* name;
};

// The codes' strings are API: this list is the contract, written out by hand so that a
// renamed, renumbered or re-mapped entry fails here rather than in a client.
const std::vector<Expected> kExpected{
    {errc::bad_request, 400, "bad_request"},
    {errc::invalid_argument, 422, "invalid_argument"},
    {errc::unauthenticated, 401, "unauthenticated"},
    {errc::forbidden, 403, "forbidden"},
    {errc::not_found, 404, "not_found"},
    {errc::method_not_allowed, 405, "method_not_allowed"},
    {errc::not_acceptable, 406, "not_acceptable"},
    {errc::request_timeout, 408, "request_timeout"},
    {errc::conflict, 409, "conflict"},
    {errc::gone, 410, "gone"},
    {errc::length_required, 411, "length_required"},
    {errc::precondition_failed, 412, "precondition_failed"},
    {errc::payload_too_large, 413, "payload_too_large"},
    {errc::uri_too_long, 414, "uri_too_long"},
    {errc::unsupported_media_type, 415, "unsupported_media_type"},
    {errc::range_not_satisfiable, 416, "range_not_satisfiable"},
    {errc::expectation_failed, 417, "expectation_failed"},
    {errc::too_many_requests, 429, "too_many_requests"},
    {errc::header_too_large, 431, "header_too_large"},
    {errc::internal, 500, "internal"},
    {errc::not_implemented, 501, "not_implemented"},
    {errc::bad_gateway, 502, "bad_gateway"},
    {errc::unavailable, 503, "unavailable"},
    {errc::db_busy, 503, "db_busy"},
    {errc::gateway_timeout, 504, "gateway_timeout"},
    {errc::insufficient_storage, 507, "insufficient_storage"},
};

bool is_snake_case(std::string_view s) {
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  return true;
}

}  // namespace

TEST_SUITE("errors") {
  TEST_CASE("the table lists every code with its status and stable name") {
    auto table = neurod::all_errc();
    REQUIRE(table.size() == kExpected.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto& e = kExpected[i];
      CAPTURE(e.name);
      CHECK(static_cast<std::size_t>(table[i].code) == i);
      CHECK(table[i].code == e.code);
      CHECK(table[i].http_status == e.status);
      CHECK(table[i].name == e.name);
      CHECK(&neurod::errc_info(e.code) == &table[i]);
      CHECK(neurod::to_string(e.code) == e.name);
      CHECK(neurod::http_status(e.code) == e.status);
    }
  }

  TEST_CASE("every entry is well-formed") {
    std::set<std::string_view> names;
    for (const auto& info : neurod::all_errc()) {
      CAPTURE(info.name);
      CHECK(info.http_status >= 400);
      CHECK(info.http_status <= 599);
      CHECK(is_snake_case(info.name));
      CHECK(names.insert(info.name).second);  // unique
      CHECK(!info.summary.empty());
      CHECK(info.summary.back() != '.');  // summaries are fragments, composed into messages
    }
  }

  TEST_CASE("client errors come before server errors") {
    bool seen_server = false;
    for (const auto& info : neurod::all_errc()) {
      CAPTURE(info.name);
      if (info.http_status < 500) CHECK_FALSE(seen_server);
      seen_server = seen_server || info.http_status >= 500;
    }
    CHECK(seen_server);
  }

  TEST_CASE("an Error carries its code and message for every entry") {
    for (const auto& info : neurod::all_errc()) {
      CAPTURE(info.name);
      neurod::Error with_message(info.code, "something specific");
      CHECK(with_message.code() == info.code);
      CHECK(with_message.code_name() == info.name);
      CHECK(std::string(with_message.what()) == "something specific");
      CHECK(with_message.details() == json::object());

      neurod::Error defaulted(info.code, "");
      CHECK(std::string(defaulted.what()) == info.summary);
    }
  }

  TEST_CASE("error_body has the documented shape for every entry") {
    for (const auto& info : neurod::all_errc()) {
      CAPTURE(info.name);
      auto body = neurod::error_body(neurod::Error(info.code, "msg"), "req-123");
      CHECK(body == json{{"error", {{"code", info.name}, {"message", "msg"}, {"request_id", "req-123"}}}});
    }
  }

  TEST_CASE("details are merged into the error object") {
    json missing = json::array({{{"uri", "job://default/alice/job-1"}, {"action", "write"}}});
    neurod::Error e(errc::forbidden, "not allowed", {{"missing", missing}, {"retry", false}});
    auto body = neurod::error_body(e, "r1");
    CHECK(body == json{{"error",
                        {{"code", "forbidden"},
                         {"message", "not allowed"},
                         {"request_id", "r1"},
                         {"missing", missing},
                         {"retry", false}}}});
  }

  TEST_CASE("details cannot override code or message or request_id") {
    neurod::Error e(errc::conflict, "taken", {{"code", "x"}, {"message", "y"}, {"request_id", "z"}, {"name", "n"}});
    auto body = neurod::error_body(e, "r2");
    CHECK(body == json{{"error", {{"code", "conflict"}, {"message", "taken"}, {"request_id", "r2"}, {"name", "n"}}}});
  }

  TEST_CASE("details that are not an object are ignored") {
    neurod::Error e(errc::bad_request, "bad", json::array({1, 2}));
    CHECK(neurod::error_body(e, "r3") ==
          json{{"error", {{"code", "bad_request"}, {"message", "bad"}, {"request_id", "r3"}}}});
  }

  TEST_CASE("with_code sets a more specific code and keeps the status") {
    neurod::Error e(errc::not_found, "job job-1 not found");
    e.with_code("job_not_found");
    CHECK(e.code() == errc::not_found);
    CHECK(e.code_name() == "job_not_found");
    CHECK(neurod::http_status(e.code()) == 404);
    CHECK(neurod::error_body(e, "r4")["error"]["code"] == "job_not_found");

    // The rvalue form, as used in `throw Error(...).with_code(...)`.
    try {
      throw neurod::Error(errc::conflict, "exists").with_code("job_name_taken");
    } catch (const neurod::Error& thrown) {
      CHECK(thrown.code() == errc::conflict);
      CHECK(thrown.code_name() == "job_name_taken");
      CHECK(std::string(thrown.what()) == "exists");
    }
  }

  TEST_CASE("Error is a std::runtime_error") {
    try {
      throw neurod::Error(errc::internal, "oops");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "oops");
    }
  }

  TEST_CASE("request_id may be empty") {
    auto body = neurod::error_body(neurod::Error(errc::unavailable, ""), "");
    CHECK(body["error"]["request_id"] == "");
    CHECK(body["error"]["message"] == "the service is unavailable");
  }
}

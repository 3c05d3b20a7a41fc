#include "core/log.hpp"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <ctime>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Captures log output for one test case and restores the daemon default afterwards.
struct Capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);

  explicit Capture(std::string_view level = "trace", neurod::log::Format format = neurod::log::Format::text) {
    neurod::log::init(level, format, sink);
  }
  ~Capture() { neurod::log::init("info"); }

  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
};

// Seconds between an ISO-8601 UTC timestamp with milliseconds and now.
double seconds_from_now(const std::string& ts) {
  std::tm tm{};
  std::istringstream in(ts);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  REQUIRE_FALSE(in.fail());
  return std::difftime(timegm(&tm), std::time(nullptr));
}

const std::regex kTextLine(R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (trace|debug|info |warn |error) (.*))");

}  // namespace

TEST_SUITE("log") {
  TEST_CASE("valid_level accepts exactly the documented levels") {
    for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"}) CHECK(neurod::log::valid_level(ok));
    for (const char* bad : {"", "INFO", "warning", "critical", "err", "verbose", "info "})
      CHECK_FALSE(neurod::log::valid_level(bad));
    CHECK_THROWS_AS(neurod::log::init("loud"), std::invalid_argument);
  }

  TEST_CASE("text format is timestamp level message") {
    Capture cap;
    neurod::info("hello {}", "world");
    neurod::warn("careful");
    neurod::error("broken");
    neurod::debug("details");
    spdlog::trace("fine-grained");
    auto lines = cap.lines();
    REQUIRE(lines.size() == 5);
    const std::vector<std::pair<std::string, std::string>> expected{{"info ", "hello world"},
                                                                    {"warn ", "careful"},
                                                                    {"error", "broken"},
                                                                    {"debug", "details"},
                                                                    {"trace", "fine-grained"}};
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CAPTURE(lines[i]);
      std::smatch m;
      REQUIRE(std::regex_match(lines[i], m, kTextLine));
      CHECK(m[2] == expected[i].first);
      CHECK(m[3] == expected[i].second);
      CHECK(std::abs(seconds_from_now(m[1])) < 5);  // UTC, not local time
    }
  }

  TEST_CASE("the level filters messages") {
    Capture cap("warn");
    neurod::debug("no");
    neurod::info("no");
    neurod::log::access().info("no");
    neurod::warn("yes");
    neurod::error("yes");
    auto lines = cap.lines();
    CHECK(lines.size() == 2);

    neurod::log::init("off", neurod::log::Format::text, cap.sink);
    neurod::error("silenced");
    neurod::log::access().error("silenced");
    CHECK(cap.lines().size() == 2);
  }

  TEST_CASE("json format is one object per line with escaped messages") {
    Capture cap("info", neurod::log::Format::json);
    const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f unicode \xC3\xA9 {}";
    neurod::info("{}", tricky);
    neurod::warn("invalid utf-8: \xFF\xC3(");
    neurod::error("surrogate: \xED\xA0\x80 overlong: \xC0\xAF truncated: \xE2\x82");
    auto lines = cap.lines();
    REQUIRE(lines.size() == 3);  // the newline in the message did not split the line

    auto first = nlohmann::json::parse(lines[0]);
    CHECK(first.size() == 4);
    CHECK(first["level"] == "info");
    CHECK(first["logger"] == "neurod");
    CHECK(first["msg"] == tricky);
    const std::string ts = first["ts"];
    CHECK(std::regex_match(ts, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    CHECK(std::abs(seconds_from_now(ts)) < 5);

    auto second = nlohmann::json::parse(lines[1]);
    CHECK(second["level"] == "warn");
    CHECK(second["msg"] == "invalid utf-8: \xEF\xBF\xBD\xEF\xBF\xBD(");

    auto third = nlohmann::json::parse(lines[2]);  // throws on invalid UTF-8
    CHECK(third["level"] == "error");
    CHECK(third["msg"].get<std::string>().starts_with("surrogate: \xEF\xBF\xBD"));
  }

  TEST_CASE("the access logger shares the sink and format") {
    Capture cap("info", neurod::log::Format::json);
    neurod::log::access().info("GET /api/v1/jobs 200 12B 1.5ms alice");
    neurod::info("main");
    auto lines = cap.lines();
    REQUIRE(lines.size() == 2);
    auto access = nlohmann::json::parse(lines[0]);
    CHECK(access["logger"] == "access");
    CHECK(access["msg"] == "GET /api/v1/jobs 200 12B 1.5ms alice");
    CHECK(nlohmann::json::parse(lines[1])["logger"] == "neurod");
    CHECK(spdlog::get("access").get() == &neurod::log::access());
  }

  TEST_CASE("init can be called again and switches format") {
    auto& access = neurod::log::access();  // references stay valid across init()
    Capture cap("info", neurod::log::Format::json);
    access.info("as json");
    neurod::log::init("debug", neurod::log::Format::text, cap.sink);
    access.info("as text");
    neurod::debug("debug now visible");
    neurod::log::init("debug", neurod::log::Format::text, cap.sink);
    access.info("again");
    auto lines = cap.lines();
    REQUIRE(lines.size() == 4);
    CHECK(nlohmann::json::parse(lines[0])["msg"] == "as json");
    CHECK(std::regex_match(lines[1], kTextLine));
    CHECK(lines[1].ends_with(" info  as text"));
    CHECK(lines[2].ends_with(" debug debug now visible"));
    CHECK(lines[3].ends_with(" info  again"));
    CHECK(&neurod::log::access() == &access);
  }

  TEST_CASE("init restores the default logger") {
    Capture cap;
    auto other = std::make_shared<spdlog::logger>("other");
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(other);
    neurod::log::init("info", neurod::log::Format::text, cap.sink);
    neurod::info("back");
    CHECK(cap.lines().size() == 1);
    spdlog::drop("other");
  }
}

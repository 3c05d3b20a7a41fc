#include "core/times.hpp"

#include <doctest/doctest.h>

using namespace neurod;

TEST_CASE("RFC 3339 times parse with fractions, offsets and dates alone") {
  CHECK(parse_rfc3339_ns("1970-01-01T00:00:01Z") == 1'000'000'000);
  CHECK(parse_rfc3339_ns("1970-01-01T00:00:01.5Z") == 1'500'000'000);
  CHECK(parse_rfc3339_ns("1970-01-01T00:00:00.123456789123Z") == 123'456'789);
  CHECK(parse_rfc3339_ns("1970-01-01T01:00:00+01:00") == 0);
  CHECK(parse_rfc3339_ns("1970-01-01 00:00:00-00:30") == 1'800'000'000'000);
  CHECK(parse_rfc3339_ns("1970-01-02") == 86'400'000'000'000);
  CHECK_FALSE(parse_rfc3339_ns("yesterday"));
  CHECK_FALSE(parse_rfc3339_ns("1970-13-01"));
  CHECK_FALSE(parse_rfc3339_ns("1970-01-01T00:00:00."));
  CHECK_FALSE(parse_rfc3339_ns("1970-01-01T00:00:00Zjunk"));
}

TEST_CASE("RFC 3339 times format in UTC with the asked fraction") {
  CHECK(format_rfc3339(1'500'000'000, 3) == "1970-01-01T00:00:01.500Z");
  CHECK(format_rfc3339(1'000'000'001, 9) == "1970-01-01T00:00:01.000000001Z");
  CHECK(format_rfc3339(0, 0) == "1970-01-01T00:00:00Z");
  CHECK(format_rfc3339(-1, 3) == "1969-12-31T23:59:59.999Z");
  auto t = 1'795'000'000'123'456'789LL;
  CHECK(parse_rfc3339_ns(format_rfc3339(t, 9)) == t);
}

#include "core/units.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>

using neurod::Duration;
using neurod::format_duration;
using neurod::format_size;
using neurod::format_size_human;
using neurod::parse_duration;
using neurod::parse_size;

TEST_CASE("units: parse_size accepts plain counts and every unit") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("1048576") == 1048576u);
  CHECK(parse_size("10B") == 10u);
  CHECK(parse_size("10b") == 10u);
  CHECK(parse_size("1k") == 1000u);
  CHECK(parse_size("1K") == 1000u);
  CHECK(parse_size("1KB") == 1000u);
  CHECK(parse_size("1kb") == 1000u);
  CHECK(parse_size("1KiB") == 1024u);
  CHECK(parse_size("1kib") == 1024u);
  CHECK(parse_size("2M") == 2000000u);
  CHECK(parse_size("2MB") == 2000000u);
  CHECK(parse_size("2MiB") == 2u * 1024 * 1024);
  CHECK(parse_size("3G") == 3000000000u);
  CHECK(parse_size("3GB") == 3000000000u);
  CHECK(parse_size("10GiB") == 10ull << 30);
  CHECK(parse_size("1T") == 1000000000000u);
  CHECK(parse_size("1TB") == 1000000000000u);
  CHECK(parse_size("4TiB") == 4ull << 40);
}

TEST_CASE("units: parse_size decimals, spaces and rounding") {
  CHECK(parse_size("1.5KiB") == 1536u);
  CHECK(parse_size("1.5GB") == 1500000000u);
  CHECK(parse_size("0.1KiB") == 102u);         // 102.4 rounds to nearest
  CHECK(parse_size("10 GiB") == 10ull << 30);  // one space allowed: format_size_human reads back
  CHECK(parse_size("1.5 KiB") == 1536u);
  CHECK(parse_size("  64MiB ") == 64ull << 20);
}

TEST_CASE("units: parse_size rejects garbage, signs and overflow") {
  for (const char* bad : {"", " ", "-1", "-1KiB", "+1", "abc", "10XB", "10 XB", "10  GiB", "GiB", "1.5", "1.", ".5KiB",
                          "1..5KiB", "1e3", "10GiBs", "0x10", "1,000", "10 GiB extra"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK_FALSE(parse_size("16777216TiB").has_value());  // 2^64
  CHECK(parse_size("16777215TiB") == 16777215ull << 40);
  CHECK_FALSE(parse_size("99999999999999999999999GiB").has_value());
}

TEST_CASE("units: format_size is the shortest exact binary form and round-trips") {
  CHECK(format_size(0) == "0B");
  CHECK(format_size(1) == "1B");
  CHECK(format_size(1500) == "1500B");
  CHECK(format_size(1024) == "1KiB");
  CHECK(format_size(1536) == "1536B");
  CHECK(format_size(16 * 1024) == "16KiB");
  CHECK(format_size(1ull << 20) == "1MiB");
  CHECK(format_size(1ull << 30) == "1GiB");
  CHECK(format_size(64ull << 30) == "64GiB");
  CHECK(format_size(3ull << 40) == "3TiB");
  CHECK(format_size(1ull << 50) == "1024TiB");
  for (std::uint64_t v : std::initializer_list<std::uint64_t>{
           0, 1, 999, 1024, 1536, 1000000, 1ull << 33, (1ull << 40) + 1, std::numeric_limits<std::uint64_t>::max()}) {
    CAPTURE(v);
    CHECK(parse_size(format_size(v)) == v);
  }
}

TEST_CASE("units: format_size_human") {
  CHECK(format_size_human(0) == "0 B");
  CHECK(format_size_human(1023) == "1023 B");
  CHECK(format_size_human(1024) == "1 KiB");
  CHECK(format_size_human(1536) == "1.5 KiB");
  CHECK(format_size_human(10ull << 30) == "10 GiB");
  CHECK(format_size_human((1ull << 20) - 1) == "1 MiB");
  CHECK(parse_size(format_size_human(1536)) == 1536u);
}

TEST_CASE("units: parse_duration") {
  CHECK(parse_duration("0") == Duration(0));
  CHECK(parse_duration("90") == Duration(90000));  // bare integer = seconds
  CHECK(parse_duration("250ms") == Duration(250));
  CHECK(parse_duration("90s") == Duration(90000));
  CHECK(parse_duration("1.5s") == Duration(1500));
  CHECK(parse_duration("2m") == Duration(120000));
  CHECK(parse_duration("1h30m") == Duration(5400000));
  CHECK(parse_duration("1h 30m") == Duration(5400000));
  CHECK(parse_duration("90 s") == Duration(90000));
  CHECK(parse_duration("7d") == Duration(7LL * 86400 * 1000));
  CHECK(parse_duration("1d2h3m4s5ms") == Duration(((26 * 60 + 3) * 60 + 4) * 1000LL + 5));
  CHECK(parse_duration("0.5ms") == Duration(1));  // rounds to nearest millisecond
}

TEST_CASE("units: parse_duration rejects garbage, signs and overflow") {
  for (const char* bad : {"", "s", "-1s", "+1s", "1.5", "10x", "10S", "1H", "1 h 3", "1h30", "ten seconds", "1e3s",
                          "1.s", "1y", "99999999999999999999999s", "106751991168d"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
  CHECK(parse_duration("106751991167d").has_value());
}

TEST_CASE("units: format_duration canonical form round-trips") {
  CHECK(format_duration(Duration(0)) == "0s");
  CHECK(format_duration(Duration(5400000)) == "1h30m");
  CHECK(format_duration(Duration(1500)) == "1500ms");
  CHECK(format_duration(Duration(250)) == "250ms");
  CHECK(format_duration(Duration(90000)) == "1m30s");
  CHECK(format_duration(Duration(60000)) == "1m");
  CHECK(format_duration(Duration(86400000)) == "1d");
  CHECK(format_duration(Duration(90061000)) == "1d1h1m1s");
  CHECK(format_duration(Duration(-1500)) == "-1500ms");
  for (std::int64_t ms : std::initializer_list<std::int64_t>{0, 1, 999, 1000, 61500, 3600000, 90061000,
                                                             std::numeric_limits<std::int64_t>::max()}) {
    CAPTURE(ms);
    CHECK(parse_duration(format_duration(Duration(ms))) == Duration(ms));
  }
}

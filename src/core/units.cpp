#include "core/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

namespace neurod {
namespace {

// 128 bits so that "digits × unit" can be checked for overflow after the fact.
__extension__ typedef unsigned __int128 u128;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A non-negative decimal "123" or "1.25" at the front of s, as the exact fraction
// numerator / 10^scale. Consumes it from s. nullopt when there is none or it is absurdly long.
struct Decimal {
  u128 numerator = 0;
  u128 denominator = 1;
};

std::optional<Decimal> take_decimal(std::string_view& s) {
  Decimal d;
  std::size_t i = 0;
  std::size_t digits = 0;
  while (i < s.size() && is_digit(s[i])) {
    if (++digits > 20) return std::nullopt;
    d.numerator = d.numerator * 10 + static_cast<unsigned>(s[i] - '0');
    ++i;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t frac = 0;
    while (i < s.size() && is_digit(s[i])) {
      if (++frac > 9) return std::nullopt;  // more precision than a byte or a millisecond needs
      d.numerator = d.numerator * 10 + static_cast<unsigned>(s[i] - '0');
      d.denominator *= 10;
      ++i;
    }
    if (frac == 0) return std::nullopt;  // "5." is a typo, not a number
  }
  s.remove_prefix(i);
  return d;
}

// numerator × unit / denominator, rounded to nearest; nullopt above `limit`.
std::optional<std::uint64_t> scale(const Decimal& d, std::uint64_t unit, std::uint64_t limit) {
  // numerator < 10^29 and unit < 2^47 could overflow 128 bits, so bound numerator first.
  const u128 whole = d.numerator / d.denominator;
  if (whole > limit) return std::nullopt;
  const u128 product = d.numerator * unit;
  if (unit != 0 && product / unit != d.numerator) return std::nullopt;
  const u128 value = (product + d.denominator / 2) / d.denominator;
  if (value > limit) return std::nullopt;
  return static_cast<std::uint64_t>(value);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct SizeUnit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array<SizeUnit, 14> kSizeUnits{{
    {"", 1},
    {"b", 1},
    {"k", 1000ull},
    {"kb", 1000ull},
    {"kib", 1ull << 10},
    {"m", 1000ull * 1000},
    {"mb", 1000ull * 1000},
    {"mib", 1ull << 20},
    {"g", 1000ull * 1000 * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"gib", 1ull << 30},
    {"t", 1000ull * 1000 * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"tib", 1ull << 40},
}};

struct DurationUnit {
  std::string_view name;
  std::int64_t ms;
};

constexpr std::array<DurationUnit, 5> kDurationUnits{{
    {"ms", 1},
    {"s", 1000},
    {"m", std::int64_t{60} * 1000},
    {"h", std::int64_t{60} * 60 * 1000},
    {"d", std::int64_t{24} * 60 * 60 * 1000},
}};

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  auto number = take_decimal(s);
  if (!number) return std::nullopt;
  // One optional space, so that format_size_human's "1.5 KiB" reads back.
  if (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  const std::string unit = lower(s);
  if (s.empty() && number->denominator != 1) return std::nullopt;  // "1.5" bytes means nothing
  for (const auto& u : kSizeUnits) {
    if (u.name == unit && (s.empty() == u.name.empty())) return scale(*number, u.factor, kMax);
  }
  return std::nullopt;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::pair<std::string_view, int>, 4> kUnits{
      {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}};
  if (bytes == 0) return "0B";
  for (const auto& [name, shift] : kUnits) {
    const std::uint64_t unit = 1ull << shift;
    if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, name);
  }
  return fmt::format("{}B", bytes);
}

std::string format_size_human(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 6> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  std::size_t i = 0;
  value /= 1024;
  // Move up while the rounded figure would read 1024 or more ("1024.0 KiB" -> "1 MiB").
  while (i + 1 < kUnits.size() && value >= 1023.95) {
    value /= 1024;
    ++i;
  }
  std::string text = fmt::format("{:.1f}", value);
  if (text.size() > 2 && text.ends_with(".0")) text.resize(text.size() - 2);
  return fmt::format("{} {}", text, kUnits[i]);
}

std::optional<Duration> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  // A bare integer means seconds: the unit people leave out.
  if (std::all_of(s.begin(), s.end(), is_digit)) {
    std::string_view copy = s;
    auto number = take_decimal(copy);
    if (!number) return std::nullopt;
    auto ms = scale(*number, 1000, std::numeric_limits<std::int64_t>::max());
    if (!ms) return std::nullopt;
    return Duration(static_cast<std::int64_t>(*ms));
  }
  const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t total = 0;
  while (!s.empty()) {
    auto number = take_decimal(s);
    if (!number) return std::nullopt;
    if (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    std::size_t n = 0;
    while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n]))) ++n;
    const std::string_view unit = s.substr(0, n);
    s.remove_prefix(n);
    const DurationUnit* found = nullptr;
    for (const auto& u : kDurationUnits) {
      if (u.name == unit) found = &u;
    }
    if (!found) return std::nullopt;
    auto ms = scale(*number, static_cast<std::uint64_t>(found->ms), limit);
    if (!ms || *ms > limit - total) return std::nullopt;
    total += *ms;
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);  // "1h 30m"
  }
  return Duration(static_cast<std::int64_t>(total));
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 0) {
    if (ms == std::numeric_limits<std::int64_t>::min()) return fmt::format("{}ms", ms);
    return "-" + format_duration(Duration(-ms));
  }
  if (ms % 1000 != 0) return fmt::format("{}ms", ms);
  std::int64_t seconds = ms / 1000;
  std::string out;
  static constexpr std::array<std::pair<std::string_view, std::int64_t>, 4> kParts{
      {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}}};
  for (const auto& [name, length] : kParts) {
    if (seconds >= length) {
      out += fmt::format("{}{}", seconds / length, name);
      seconds %= length;
    }
  }
  return out;
}

}  // namespace neurod

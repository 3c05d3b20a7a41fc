// RFC 3339 timestamps, the one textual time format of the API, the logs and the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace neurod {

// "2026-11-23T15:04:05Z", with a fraction of up to 9 digits (more are cut), "Z" or an
// offset ("+01:00"), a space instead of "T"; a date alone ("2026-11-23") is its midnight
// UTC. Nanoseconds since the epoch; nullopt on anything else.
std::optional<std::int64_t> parse_rfc3339_ns(std::string_view text);
// Wall-clock Unix epoch milliseconds, the unit of every stored time.
std::int64_t now_ms();
// UTC with exactly `fraction_digits` (0–9) digits after the seconds: 3 → ".123Z".
std::string format_rfc3339(std::int64_t ns, int fraction_digits);

}  // namespace neurod

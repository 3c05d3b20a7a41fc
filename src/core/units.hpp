// Human-readable sizes ("10GiB", "512k") and durations ("90s", "1h30m", "250ms").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace neurod {

using Duration = std::chrono::milliseconds;

// Accepts a plain byte count or a number (integer or decimal) with a unit:
// B, k/K/KB (1000), KiB (1024), M/MB, MiB, G/GB, GiB, T/TB, TiB. Case-insensitive
// except that "b" alone means bytes. Returns nullopt on anything else or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);
// The shortest exact binary form: 1073741824 -> "1GiB", 1500 -> "1500B".
std::string format_size(std::uint64_t bytes);
// For people: 1536 -> "1.5 KiB".
std::string format_size_human(std::uint64_t bytes);

// Accepts sequences of <number><unit> with units ms, s, m, h, d (e.g. "1h30m",
// "1.5s", "250ms"), or a plain integer meaning seconds. nullopt on anything else.
std::optional<Duration> parse_duration(std::string_view text);
// Canonical form: 5400000ms -> "1h30m", 1500ms -> "1500ms", 0 -> "0s".
std::string format_duration(Duration d);

}  // namespace neurod

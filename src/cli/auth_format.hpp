// Pure pieces of the identity-and-access commands, kept out of the command files so
// that tests/unit/cli can test them: time arguments, permission trees, quota tables
// and quota limit values.
#pragma once

#include "cli/output.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::cli {

using SysTime = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

// "2024-05-01T12:30:00Z", with ".123" before the Z when there are milliseconds.
std::string format_iso(SysTime t);

// A --since/--until value: ISO-8601 ("2024-05-01", "2024-05-01T12:30", "…:00Z",
// "…+02:00"; no zone means UTC), "now", or a duration meaning that long before now
// ("2h", "1d12h", "90m ago"). Returns it as UTC ISO-8601, nullopt when unreadable.
std::optional<std::string> parse_time_arg(std::string_view text, SysTime now);

// A server timestamp for a table, as ISO-8601 without fractional seconds: an ISO
// string, or a number of milliseconds since the epoch (what neurod sends). Null is
// if_null ("never" for an expiry).
std::string show_time(const nlohmann::json& value, std::string_view if_null = "");

// An object's member, or null when it is missing or j is not an object.
const nlohmann::json& field(const nlohmann::json& j, std::string_view key);

// A table cell from an object's member: strings as they are, booleans as yes/no,
// numbers as JSON writes them, "" when missing or null.
std::string cell(const nlohmann::json& object, std::string_view key);

// The name in a field that holds either "alice" or {"name": "alice", …}.
std::string name_of(const nlohmann::json& value);

// An --expires-in or --period value: a positive duration (90d, 12h, 1h30m), sent in
// its canonical form. Throws CliError(usage) naming the option.
std::string duration_arg(std::string_view option, std::string_view text);

// The answer of GET /users/{name}/permissions/tree, one node a line: the root's URI,
// then each child's segment indented two spaces per level, followed by its action.
// Without ?uri= the answer is {scheme: tree}: each tree is printed in turn.
std::string render_permission_tree(const nlohmann::json& tree);

// Hours with one decimal: 12.5, 0.0.
std::string format_hours(double hours);

struct QuotaRow {
  std::string resource;
  std::string used;
  std::string limit;
};
// One row per resource of a quota entry {name, limits, usage}: running jobs, CPU
// hours, GPU hours, storage. A null or missing limit is "unlimited"; missing usage "-".
std::vector<QuotaRow> quota_rows(const nlohmann::json& entry);
// A heading ("user alice", "project ml", with the hours' period when known) and the
// rows as a table.
std::string render_quota(std::string_view kind, const nlohmann::json& entry);

// What one limit of `neuro admin quota set` means.
enum class LimitKind { count, hours, bytes, period };
// The JSON value for a limit option: "unlimited" is null, else a non-negative
// integer (count), number (hours), size such as 100GiB (bytes, sent as bytes) or
// duration (period, sent as "30d"). Throws CliError(usage) naming the option.
nlohmann::json parse_limit(std::string_view option, LimitKind kind, std::string_view text);

}  // namespace neurod::cli

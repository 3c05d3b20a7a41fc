#include "cli/auth_format.hpp"

#include <doctest/doctest.h>

#include <chrono>

using neurod::cli::CliError;
using neurod::cli::Exit;
using neurod::cli::LimitKind;
using neurod::cli::SysTime;
using nlohmann::json;

namespace {

// 2024-05-01T12:30:00Z
SysTime fixed_now() {
  using namespace std::chrono;
  return SysTime(sys_days{year{2024} / May / 1}.time_since_epoch() + hours{12} + minutes{30});
}

std::optional<std::string> t(std::string_view text) { return neurod::cli::parse_time_arg(text, fixed_now()); }

}  // namespace

TEST_CASE("cli time: ISO-8601 formatting") {
  CHECK(neurod::cli::format_iso(fixed_now()) == "2024-05-01T12:30:00Z");
  CHECK(neurod::cli::format_iso(fixed_now() + std::chrono::milliseconds(45)) == "2024-05-01T12:30:00.045Z");
  CHECK(neurod::cli::format_iso(SysTime{}) == "1970-01-01T00:00:00Z");
}

TEST_CASE("cli time: --since accepts ISO-8601 and normalises it to UTC") {
  CHECK(t("2024-04-30") == "2024-04-30T00:00:00Z");
  CHECK(t("2024-04-30T08:15") == "2024-04-30T08:15:00Z");
  CHECK(t("2024-04-30 08:15:07") == "2024-04-30T08:15:07Z");
  CHECK(t("2024-04-30T08:15:07Z") == "2024-04-30T08:15:07Z");
  CHECK(t("2024-04-30T08:15:07.5Z") == "2024-04-30T08:15:07.500Z");
  CHECK(t("2024-04-30T08:15:07+02:00") == "2024-04-30T06:15:07Z");
  CHECK(t("2024-04-30T01:00:00-0130") == "2024-04-30T02:30:00Z");
  CHECK(t("2024-01-01T00:30:00+01:00") == "2023-12-31T23:30:00Z");
  CHECK(t("2024-02-29") == "2024-02-29T00:00:00Z");
}

TEST_CASE("cli time: --since accepts a duration meaning that long ago") {
  CHECK(t("2h") == "2024-05-01T10:30:00Z");
  CHECK(t("90m") == "2024-05-01T11:00:00Z");
  CHECK(t("1d12h") == "2024-04-30T00:30:00Z");
  CHECK(t("2h ago") == "2024-05-01T10:30:00Z");
  CHECK(t(" 30s ") == "2024-05-01T12:29:30Z");
  CHECK(t("now") == "2024-05-01T12:30:00Z");
}

TEST_CASE("cli time: unreadable --since values") {
  CHECK_FALSE(t(""));
  CHECK_FALSE(t("yesterday"));
  CHECK_FALSE(t("2023-02-29"));
  CHECK_FALSE(t("2024-13-01"));
  CHECK_FALSE(t("2024-05-01T25:00"));
  CHECK_FALSE(t("2024-05-01T12:00:00+"));
  CHECK_FALSE(t("2024-05-01X"));
  CHECK_FALSE(t("2h30x"));
  CHECK_FALSE(t("24-05-01"));
}

TEST_CASE("cli time: server timestamps lose their fractional seconds in tables") {
  CHECK(neurod::cli::show_time(json("2024-05-01T12:30:00.123456Z")) == "2024-05-01T12:30:00Z");
  CHECK(neurod::cli::show_time(json("2024-05-01T12:30:00.1+02:00")) == "2024-05-01T12:30:00+02:00");
  CHECK(neurod::cli::show_time(json("2024-05-01T12:30:00Z")) == "2024-05-01T12:30:00Z");
  CHECK(neurod::cli::show_time(json(1714566600045)) == "2024-05-01T12:30:00Z");  // epoch milliseconds
  CHECK(neurod::cli::show_time(json(0)) == "1970-01-01T00:00:00Z");
  CHECK(neurod::cli::show_time(json(nullptr)) == "");
  CHECK(neurod::cli::show_time(json(nullptr), "never") == "never");
}

TEST_CASE("cli acl tree: one node a line, children indented two spaces per level") {
  auto tree = json::parse(R"({
    "uri": "storage://c/alice", "action": "manage",
    "children": {
      "data": {"action": "read", "children": {"x": {"action": "write", "children": {}}}},
      "models": {"action": "list"},
      "bare": {"children": {}}
    }})");
  CHECK(neurod::cli::render_permission_tree(tree) ==
        "storage://c/alice  manage\n"
        "  bare\n"
        "  data  read\n"
        "    x  write\n"
        "  models  list\n");
}

TEST_CASE("cli acl tree: a lone root, and children given as a list") {
  CHECK(neurod::cli::render_permission_tree(json::parse(R"({"uri": "job:", "action": "read"})")) == "job:  read\n");
  auto tree = json::parse(R"({"uri": "storage:", "action": "list",
                              "children": [{"name": "c", "action": "list",
                                            "children": [{"name": "bob", "action": "read"}]}]})");
  CHECK(neurod::cli::render_permission_tree(tree) ==
        "storage:  list\n"
        "  c  list\n"
        "    bob  read\n");
}

TEST_CASE("cli acl tree: without a URI the server answers one tree per scheme") {
  auto trees = json::parse(R"({
    "job": {"uri": "job:", "action": "list", "children": {"default": {"action": "write", "children": {}}}},
    "storage": {"uri": "storage:", "action": "list", "children": {}}})");
  CHECK(neurod::cli::render_permission_tree(trees) ==
        "job:  list\n"
        "  default  write\n"
        "storage:  list\n");
}

TEST_CASE("cli quota: hours with one decimal") {
  CHECK(neurod::cli::format_hours(0) == "0.0");
  CHECK(neurod::cli::format_hours(12.5) == "12.5");
  CHECK(neurod::cli::format_hours(100) == "100.0");
  CHECK(neurod::cli::format_hours(2.26) == "2.3");
}

TEST_CASE("cli quota: rows for each resource, null limits are unlimited, bytes are human sizes") {
  auto entry = json::parse(R"({"name": "alice",
    "limits": {"max_running_jobs": 10, "cpu_hours": 100, "gpu_hours": null, "storage_bytes": 107374182400,
               "period": "30d"},
    "usage": {"running_jobs": 2, "cpu_hours": 12.25, "gpu_hours": 0, "storage_bytes": 1610612736}})");
  auto rows = neurod::cli::quota_rows(entry);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].resource == "running jobs");
  CHECK(rows[0].used == "2");
  CHECK(rows[0].limit == "10");
  CHECK(rows[1].resource == "CPU hours");
  CHECK(rows[1].used == "12.2");
  CHECK(rows[1].limit == "100.0");
  CHECK(rows[2].used == "0.0");
  CHECK(rows[2].limit == "unlimited");
  CHECK(rows[3].resource == "storage");
  CHECK(rows[3].used == "1.5 GiB");
  CHECK(rows[3].limit == "100 GiB");

  CHECK(neurod::cli::render_quota("user", entry) ==
        "user alice (hours over the last 30d)\n"
        "RESOURCE         USED      LIMIT\n"
        "running jobs        2         10\n"
        "CPU hours        12.2      100.0\n"
        "GPU hours         0.0  unlimited\n"
        "storage       1.5 GiB    100 GiB\n");
}

TEST_CASE("cli quota: missing limits and usage") {
  auto rows = neurod::cli::quota_rows(json::parse(R"({"name": "ml", "usage": {"max_running_jobs": 1}})"));
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].used == "1");  // the usage may be named like the limit
  for (const auto& r : rows) CHECK(r.limit == "unlimited");
  CHECK(rows[1].used == "-");
  CHECK(neurod::cli::render_quota("project", json::parse(R"({"name": "ml", "limits": {"period": 604800}})"))
            .starts_with("project ml (hours over the last 7d)\n"));
}

TEST_CASE("cli quota: limit values for admin quota set") {
  using neurod::cli::parse_limit;
  CHECK(parse_limit("--max-running-jobs", LimitKind::count, "10") == json(10));
  CHECK(parse_limit("--max-running-jobs", LimitKind::count, "unlimited").is_null());
  CHECK(parse_limit("--cpu-hours", LimitKind::hours, "12.5") == json(12.5));
  CHECK(parse_limit("--gpu-hours", LimitKind::hours, "Unlimited").is_null());
  CHECK(parse_limit("--storage", LimitKind::bytes, "100GiB") == json(107374182400ull));
  CHECK(parse_limit("--storage", LimitKind::bytes, "500G") == json(500000000000ull));
  CHECK(parse_limit("--period", LimitKind::period, "30d") == json("30d"));
  CHECK(parse_limit("--period", LimitKind::period, "36h") == json("1d12h"));

  auto fails = [](std::string_view option, LimitKind kind, std::string_view text) {
    try {
      parse_limit(option, kind, text);
    } catch (const CliError& e) {
      CHECK(e.exit() == Exit::usage);
      CHECK(std::string(e.what()).starts_with(std::string(option) + ": \""));
      return true;
    }
    return false;
  };
  CHECK(fails("--max-running-jobs", LimitKind::count, "-1"));
  CHECK(fails("--max-running-jobs", LimitKind::count, "2.5"));
  CHECK(fails("--max-running-jobs", LimitKind::count, ""));
  CHECK(fails("--cpu-hours", LimitKind::hours, "lots"));
  CHECK(fails("--cpu-hours", LimitKind::hours, "-3"));
  CHECK(fails("--cpu-hours", LimitKind::hours, "inf"));
  CHECK(fails("--storage", LimitKind::bytes, "100 parsecs"));
  CHECK(fails("--period", LimitKind::period, "unlimited"));
  CHECK(fails("--period", LimitKind::period, "0s"));
}

TEST_CASE("cli cells: strings, booleans, numbers and missing members") {
  auto j = json::parse(R"({"s": "x", "b": true, "f": false, "n": 3, "z": null})");
  CHECK(neurod::cli::cell(j, "s") == "x");
  CHECK(neurod::cli::cell(j, "b") == "yes");
  CHECK(neurod::cli::cell(j, "f") == "no");
  CHECK(neurod::cli::cell(j, "n") == "3");
  CHECK(neurod::cli::cell(j, "z") == "");
  CHECK(neurod::cli::cell(j, "missing") == "");
  CHECK(neurod::cli::cell(json::array(), "s") == "");
  CHECK(neurod::cli::name_of(json("alice")) == "alice");
  CHECK(neurod::cli::name_of(json::parse(R"({"name": "ml", "role": "admin"})")) == "ml");
  CHECK(neurod::cli::duration_arg("--expires-in", "90d") == "90d");
  CHECK_THROWS_AS(neurod::cli::duration_arg("--expires-in", "soon"), CliError);
}

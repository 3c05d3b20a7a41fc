#include "cli/table.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>

using neurod::cli::Align;
using neurod::cli::Table;
using neurod::cli::Tone;

namespace {

neurod::cli::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("cli table: columns are as wide as their widest cell, two spaces apart, no trailing blanks") {
  Table t({{"MODULE"}, {"STATUS", Align::left, true}, {"MESSAGE"}});
  t.add_row({"system", "healthy", ""});
  t.add_row({"db", "unhealthy", "cannot reach postgres"});
  t.add_row({"a-long-module-name", "healthy", "fine"});
  CHECK(t.render(false) ==
        "MODULE              STATUS     MESSAGE\n"
        "system              healthy\n"
        "db                  unhealthy  cannot reach postgres\n"
        "a-long-module-name  healthy    fine\n");
}

TEST_CASE("cli table: headers set the width when they are the widest") {
  Table t({{"NAME"}, {"X"}});
  t.add_row({"a", "b"});
  CHECK(t.render(false) == "NAME  X\na     b\n");
}

TEST_CASE("cli table: right-aligned columns pad on the left") {
  Table t({{"NAME"}, {"SIZE", Align::right}, {"NOTE"}});
  t.add_row({"a", "1", "x"});
  t.add_row({"bb", "12345", "y"});
  CHECK(t.render(false) ==
        "NAME   SIZE  NOTE\n"
        "a         1  x\n"
        "bb    12345  y\n");
}

TEST_CASE("cli table: width counts characters, not UTF-8 bytes") {
  CHECK(neurod::cli::display_width("héllo") == 5);
  Table t({{"A"}, {"B"}});
  t.add_row({"é", "x"});
  t.add_row({"ab", "y"});
  CHECK(t.render(false) == "A   B\né   x\nab  y\n");
}

TEST_CASE("cli table: short rows are padded, long rows refused, an empty table is its header") {
  Table t({{"A"}, {"B"}});
  CHECK(t.render(false) == "A  B\n");
  t.add_row({"x"});
  CHECK(t.render(false) == "A  B\nx\n");
  CHECK_THROWS_AS(t.add_row({"1", "2", "3"}), std::invalid_argument);
}

TEST_CASE("cli table: colour marks status cells only, and does not change the alignment") {
  Table t({{"NAME"}, {"STATUS", Align::left, true}, {"NOTE"}});
  t.add_row({"ok", "healthy", "n"});
  t.add_row({"bad", "unhealthy", "m"});
  auto coloured = t.render(true);
  CHECK(coloured ==
        "NAME  STATUS     NOTE\n"
        "ok    \x1b[32mhealthy\x1b[0m    n\n"
        "bad   \x1b[31munhealthy\x1b[0m  m\n");
  CHECK(t.render(false).find('\x1b') == std::string::npos);
}

TEST_CASE("cli table: status words map to tones") {
  CHECK(neurod::cli::status_tone("ok") == Tone::good);
  CHECK(neurod::cli::status_tone("Healthy") == Tone::good);
  CHECK(neurod::cli::status_tone("unhealthy") == Tone::bad);
  CHECK(neurod::cli::status_tone("failed") == Tone::bad);
  CHECK(neurod::cli::status_tone("pending") == Tone::warn);
  CHECK(neurod::cli::status_tone("whatever") == Tone::plain);
  CHECK(neurod::cli::paint("x", Tone::plain) == "x");
}

TEST_CASE("cli table: no colour when the output is not a terminal, or when asked not to") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK_FALSE(neurod::cli::use_color(fds[1], false, fake_env({})));
  ::close(fds[0]);
  ::close(fds[1]);

  int devnull = ::open("/dev/null", O_WRONLY);
  REQUIRE(devnull >= 0);
  CHECK_FALSE(neurod::cli::use_color(devnull, false, fake_env({})));
  ::close(devnull);

  // The flag and the environment win even on a terminal (checked when the tests run on one).
  int tty = ::open("/dev/tty", O_WRONLY | O_NOCTTY);
  if (tty >= 0 && ::isatty(tty)) {
    CHECK(neurod::cli::use_color(tty, false, fake_env({{"TERM", "xterm"}})));
    CHECK_FALSE(neurod::cli::use_color(tty, true, fake_env({})));
    CHECK_FALSE(neurod::cli::use_color(tty, false, fake_env({{"NO_COLOR", "1"}})));
    CHECK_FALSE(neurod::cli::use_color(tty, false, fake_env({{"TERM", "dumb"}})));
  }
  if (tty >= 0) ::close(tty);
  CHECK_FALSE(neurod::cli::use_color(STDOUT_FILENO, true, fake_env({})));
  CHECK_FALSE(neurod::cli::use_color(STDOUT_FILENO, false, fake_env({{"NO_COLOR", "1"}})));
}

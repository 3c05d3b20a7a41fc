// A plain-text table for people: headers, columns as wide as their content, two
// spaces between columns, no trailing blanks, and colour for status words only.
#pragma once

#include "cli/config_file.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace neurod::cli {

enum class Align { left, right };

struct Column {
  std::string header;
  Align align = Align::left;
  bool status = false;  // colour the cell by status_tone() when colour is on
};

enum class Tone { plain, good, bad, warn };
// ok/healthy/running/succeeded… are good, unhealthy/failed/error… bad, pending… warn.
Tone status_tone(std::string_view word);
// Wraps text in the ANSI colour for the tone (or returns it unchanged for plain).
std::string paint(std::string_view text, Tone tone);

// Colour only when the stream is a terminal, --no-color was not given, NO_COLOR
// is unset or empty (no-color.org) and TERM is not "dumb".
bool use_color(int fd, bool no_color_flag, const EnvLookup& env);

// The number of terminal columns text takes: UTF-8 code points, not bytes.
std::size_t display_width(std::string_view text);

class Table {
 public:
  explicit Table(std::vector<Column> columns);
  // Missing cells are empty; extra cells are an error (std::invalid_argument).
  void add_row(std::vector<std::string> cells);
  std::size_t rows() const { return rows_.size(); }
  std::string render(bool color) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace neurod::cli

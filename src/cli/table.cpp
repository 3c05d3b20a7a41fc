#include "cli/table.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace neurod::cli {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Tone status_tone(std::string_view word) {
  static constexpr std::array<std::string_view, 7> kGood{"ok",    "healthy", "running", "succeeded",
                                                         "ready", "yes",     "true"};
  static constexpr std::array<std::string_view, 9> kBad{"unhealthy",   "failed",    "error", "errored", "killed",
                                                        "unreachable", "cancelled", "no",    "false"};
  static constexpr std::array<std::string_view, 5> kWarn{"pending", "degraded", "starting", "stopping", "unknown"};
  auto w = lower(word);
  auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), w) != list.end(); };
  if (in(kGood)) return Tone::good;
  if (in(kBad)) return Tone::bad;
  if (in(kWarn)) return Tone::warn;
  return Tone::plain;
}

std::string paint(std::string_view text, Tone tone) {
  std::string_view code;
  switch (tone) {
    case Tone::good:
      code = "\x1b[32m";
      break;
    case Tone::bad:
      code = "\x1b[31m";
      break;
    case Tone::warn:
      code = "\x1b[33m";
      break;
    case Tone::plain:
      return std::string(text);
  }
  return std::string(code) + std::string(text) + "\x1b[0m";
}

bool use_color(int fd, bool no_color_flag, const EnvLookup& env) {
  if (no_color_flag) return false;
  if (env("NO_COLOR")) return false;
  if (auto term = env("TERM"); term && *term == "dumb") return false;
  return ::isatty(fd) == 1;
}

std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::add_row(std::vector<std::string> cells) {
  if (cells.size() > columns_.size())
    throw std::invalid_argument("table row has " + std::to_string(cells.size()) + " cells for " +
                                std::to_string(columns_.size()) + " columns");
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render(bool color) const {
  std::vector<std::size_t> width(columns_.size());
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    width[c] = display_width(columns_[c].header);
    for (const auto& row : rows_) width[c] = std::max(width[c], display_width(row[c]));
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const auto& cell = cells[c];
      std::size_t pad = width[c] - display_width(cell);
      bool last = c + 1 == cells.size();
      auto shown = (color && !header && columns_[c].status) ? paint(cell, status_tone(cell)) : cell;
      if (c > 0) text += "  ";
      if (columns_[c].align == Align::right) {
        text.append(pad, ' ');
        text += shown;
      } else {
        text += shown;
        if (!last) text.append(pad, ' ');
      }
    }
    // A left-aligned last column or empty trailing cells leave blanks behind.
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  };
  std::vector<std::string> headers;
  headers.reserve(columns_.size());
  for (const auto& col : columns_) headers.push_back(col.header);
  line(headers, true);
  for (const auto& row : rows_) line(row, false);
  return out;
}

}  // namespace neurod::cli

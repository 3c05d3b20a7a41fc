#include "config/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace neurod::config {

void Errors::add(int line, std::string key, std::string message) {
  std::string where = file.empty() ? std::string("<config>") : file;
  if (line > 0) where += fmt::format(":{}", line);
  if (key.empty()) {
    lines_.push_back(fmt::format("{}: {}", where, message));
  } else {
    lines_.push_back(fmt::format("{}: {}: {}", where, key, message));
  }
}

void Errors::add(const YAML::Node& node, std::string key, std::string message) {
  add(detail::line_of(node), std::move(key), std::move(message));
}

namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// How a rejected value is shown: quoted, and never the text of a secret.
std::string quoted(std::string_view text, const detail::Constraints& c) {
  if (c.secret) return "<secret>";
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out + "\"";
}

std::string kind_of(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "nothing";
}

// The scalar text of a value after ${ENV} expansion, or nullopt (reported).
std::optional<std::string> scalar_text(const YAML::Node& node, const std::string& key, std::string_view expected,
                                       Errors& errors) {
  if (!node.IsScalar()) {
    errors.add(node, key, fmt::format("expected {}, got {}", expected, kind_of(node)));
    return std::nullopt;
  }
  std::string error;
  auto text = expand_env(node.Scalar(), error);
  if (!text) errors.add(node, key, error);
  return text;
}

std::string number_text(double v) { return fmt::format("{}", v); }

// " >= 1", " <= 64", " between 1 and 64" or "", with bounds shown by `show`.
template <class B, class Show>
std::string range_text(const std::optional<B>& lo, const std::optional<B>& hi, Show show) {
  if (lo && hi) return fmt::format(" between {} and {}", show(*lo), show(*hi));
  if (lo) return fmt::format(" >= {}", show(*lo));
  if (hi) return fmt::format(" <= {}", show(*hi));
  return "";
}

template <class I>
bool parse_integer(const YAML::Node& node, const std::string& key, const detail::Constraints& c, Errors& errors,
                   I& out) {
  auto text = scalar_text(node, key, "integer" + range_text(c.min, c.max, number_text), errors);
  if (!text) return false;
  const std::string& s = *text;
  // Parse wide so that "too big for the type" is a range error rather than a type error.
  bool negative = !s.empty() && s[0] == '-';
  std::uint64_t magnitude = 0;
  const char* first = s.data() + (negative ? 1 : 0);
  const char* last = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(first, last, magnitude);
  const bool digits = first != last && ptr == last && std::isdigit(static_cast<unsigned char>(*first));
  if (!digits || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    errors.add(node, key,
               fmt::format("expected integer{}, got {}", range_text(c.min, c.max, number_text), quoted(s, {})));
    return false;
  }
  const bool huge = ec == std::errc::result_out_of_range;
  const long double value = negative ? -static_cast<long double>(magnitude) : static_cast<long double>(magnitude);
  const auto type_lo = static_cast<long double>(std::numeric_limits<I>::min());
  const auto type_hi = static_cast<long double>(std::numeric_limits<I>::max());
  // The configured bounds, plus the type's own bound on the side that was crossed.
  std::optional<std::string> lo;
  std::optional<std::string> hi;
  if (c.min) lo = number_text(*c.min);
  if (c.max) hi = number_text(*c.max);
  const bool too_low = !huge && value < type_lo;
  const bool too_high = huge ? !negative : value > type_hi;
  if ((too_low || (huge && negative)) && (!c.min || static_cast<long double>(*c.min) < type_lo)) {
    lo = std::to_string(std::numeric_limits<I>::min());
  }
  if (too_high && (!c.max || static_cast<long double>(*c.max) > type_hi))
    hi = std::to_string(std::numeric_limits<I>::max());
  const bool bad = huge || too_low || too_high || (c.min && value < static_cast<long double>(*c.min)) ||
                   (c.max && value > static_cast<long double>(*c.max));
  if (bad) {
    errors.add(
        node, key,
        fmt::format("expected integer{}, got {}", range_text(lo, hi, [](const std::string& t) { return t; }), s));
    return false;
  }
  if constexpr (std::is_signed_v<I>) {
    out = negative ? static_cast<I>(-static_cast<std::int64_t>(magnitude - 1) - 1) : static_cast<I>(magnitude);
  } else {
    out = static_cast<I>(magnitude);
  }
  return true;
}

bool check_string(const YAML::Node& node, const std::string& key, const detail::Constraints& c, Errors& errors,
                  const std::string& value) {
  if (c.non_empty && value.empty()) {
    errors.add(node, key, "must not be empty");
    return false;
  }
  if (!c.one_of.empty() && std::find(c.one_of.begin(), c.one_of.end(), value) == c.one_of.end()) {
    errors.add(node, key, fmt::format("expected one of [{}], got {}", fmt::join(c.one_of, ", "), quoted(value, c)));
    return false;
  }
  return true;
}

bool plain_safe(const std::string& s, bool flow) {
  if (s.empty()) return false;
  static constexpr std::string_view kSpecialWords[] = {"~", "null", "Null", "NULL"};
  for (auto w : kSpecialWords) {
    if (s == w) return false;
  }
  const char first = s[0];
  if (!(std::isalnum(static_cast<unsigned char>(first)) || first == '/' || first == '.' || first == '_' ||
        first == '$')) {
    return false;
  }
  if (s.back() == ':') return false;
  for (char ch : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '.' || ch == '_' || ch == '-' ||
                    ch == '+' || ch == '@' || ch == '$' || ch == '=' || (ch == ':' && !flow);
    if (!ok) return false;
  }
  return true;
}

// A string as YAML that reads back as the same string, "$" doubled against expansion.
std::string yaml_string(const std::string& value, bool flow) {
  std::string s;
  for (char ch : value) {
    s += ch;
    if (ch == '$') s += '$';
  }
  if (plain_safe(s, flow)) return s;
  std::string out = "\"";
  for (unsigned char ch : s) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (ch < 0x20) {
          out += fmt::format("\\x{:02x}", ch);
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out + "\"";
}

std::optional<std::string> read_secret_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = fmt::format("cannot read secret file {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    error = fmt::format("cannot read secret file {}: read error", path);
    return std::nullopt;
  }
  std::string content = buf.str();
  // Editors and `echo` add a final newline that is never part of the secret.
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
  return content;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> lines)
    : std::runtime_error(join_lines(lines)), errors(std::move(lines)) {}

std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(key, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::optional<std::string> expand_env(std::string_view text, std::string& error) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch != '$' || i + 1 >= text.size()) {
      out += ch;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out += ch;
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = fmt::format("unterminated ${{ in \"{}\"", text);
      return std::nullopt;
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::optional<std::string_view> fallback;
    if (auto sep = inner.find(":-"); sep != std::string_view::npos) {
      fallback = inner.substr(sep + 2);
      inner = inner.substr(0, sep);
    }
    if (!valid_env_name(inner)) {
      error = fmt::format("invalid environment variable reference \"${{{}}}\"", text.substr(i + 2, close - i - 2));
      return std::nullopt;
    }
    const std::string name(inner);
    const char* value = std::getenv(name.c_str());
    if (value && (*value || !fallback)) {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      error = fmt::format("environment variable {} is not set", name);
      return std::nullopt;
    }
    i = close;
  }
  return out;
}

namespace detail {

int line_of(const YAML::Node& node) {
  try {
    if (!node.IsDefined()) return 0;
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  } catch (const YAML::Exception&) {
    return 0;  // a zombie node from a failed lookup has no position
  }
}

std::string join_key(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

bool check_map(const YAML::Node& node, const std::string& prefix, Errors& errors) {
  if (node.IsMap()) return true;
  if (node.IsScalar()) {
    errors.add(node, prefix, fmt::format("expected a map of settings, got {}", quoted(node.Scalar(), {})));
  } else {
    errors.add(node, prefix, fmt::format("expected a map of settings, got {}", kind_of(node)));
  }
  return false;
}

bool check_list(const YAML::Node& node, const std::string& key, Errors& errors) {
  if (node.IsSequence()) return true;
  errors.add(
      node, key,
      fmt::format("expected a list of maps, got {}", node.IsScalar() ? quoted(node.Scalar(), {}) : kind_of(node)));
  return false;
}

void report_unknown(const YAML::Node& key_node, const std::string& prefix, const std::string& name,
                    const std::vector<std::string>& known, Errors& errors) {
  std::string message = fmt::format("unknown key '{}'", name);
  if (auto hint = did_you_mean(name, known); !hint.empty()) message += fmt::format("; did you mean '{}'?", hint);
  errors.add(key_node, join_key(prefix, name), std::move(message));
}

std::string comment_block(int indent, const std::string& description, const std::string& suffix) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  std::string out;
  std::string text = description;
  if (!suffix.empty()) text += (text.empty() ? "" : " ") + suffix;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line(text.data() + start, end - start);
    out += pad + "#";
    if (!line.empty()) out += " " + std::string(line);
    out += "\n";
    start = end + 1;
  }
  return out;
}

std::string one_line(const std::string& description, const std::string& suffix) {
  std::string text = description;
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (!suffix.empty()) text += (text.empty() ? "" : " ") + suffix;
  return text;
}

void add_entry(std::vector<EntryLine> keys, int indent, std::vector<EntryLine>& out) {
  const std::size_t column = static_cast<std::size_t>(indent);
  // Keys sit at indent + 2; a commented-out one has its "#" there.
  auto first = std::find_if(keys.begin(), keys.end(), [&](const EntryLine& l) {
    return l.text.size() > column + 2 && l.text[column + 2] != '#';
  });
  if (first == keys.end()) {
    out.push_back({std::string(column, ' ') + "- {}", ""});
  } else {
    first->text.replace(column, 2, "- ");
  }
  for (auto& l : keys) out.push_back(std::move(l));
}

void comment_out(std::vector<EntryLine>& lines, std::size_t from, int indent) {
  const std::size_t column = static_cast<std::size_t>(indent);
  for (std::size_t i = from; i < lines.size(); ++i) lines[i].text.insert(std::min(column, lines[i].text.size()), "#");
}

std::string render_lines(const std::vector<EntryLine>& lines) {
  // Comments line up after the longest documented line, unless it is unusually long.
  constexpr std::size_t kMaxColumn = 40;
  std::size_t width = 0;
  for (const auto& l : lines) {
    if (!l.comment.empty() && l.text.size() <= kMaxColumn) width = std::max(width, l.text.size());
  }
  std::string out;
  for (const auto& l : lines) {
    out += l.text;
    if (!l.comment.empty()) {
      out += std::string(width > l.text.size() ? width - l.text.size() : 0, ' ') + "  # " + l.comment;
    }
    out += '\n';
  }
  return out;
}

std::string constraint_suffix(const Constraints& c, const std::string& default_text, bool is_size, bool is_duration) {
  std::string out = "(default: " + default_text;
  auto show = [&](double v) {
    if (is_size) return format_size(static_cast<std::uint64_t>(v));
    if (is_duration) return format_duration(Duration(static_cast<Duration::rep>(v)));
    return number_text(v);
  };
  if (c.min && c.max) {
    out += "; " + show(*c.min) + " to " + show(*c.max);
  } else if (c.min) {
    out += "; min " + show(*c.min);
  } else if (c.max) {
    out += "; max " + show(*c.max);
  }
  if (!c.one_of.empty()) out += fmt::format("; one of: {}", fmt::join(c.one_of, ", "));
  if (c.secret) out += "; secret, file:/path reads it from a file";
  return out + ")";
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints&, Errors& e, bool& out) {
  auto text = scalar_text(n, key, "true or false", e);
  if (!text) return false;
  std::string lower = *text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (lower == "true" || lower == "yes" || lower == "on") {
    out = true;
  } else if (lower == "false" || lower == "no" || lower == "off") {
    out = false;
  } else {
    e.add(n, key, fmt::format("expected true or false, got {}", quoted(*text, {})));
    return false;
  }
  return true;
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, int& out) {
  return parse_integer(n, key, c, e, out);
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::int64_t& out) {
  return parse_integer(n, key, c, e, out);
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::uint64_t& out) {
  return parse_integer(n, key, c, e, out);
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, double& out) {
  const std::string expected = "number" + range_text(c.min, c.max, number_text);
  auto text = scalar_text(n, key, expected, e);
  if (!text) return false;
  double value = 0;
  const char* last = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), last, value);
  if (text->empty() || ec != std::errc() || ptr != last || !std::isfinite(value)) {
    e.add(n, key, fmt::format("expected {}, got {}", expected, quoted(*text, {})));
    return false;
  }
  if ((c.min && value < *c.min) || (c.max && value > *c.max)) {
    e.add(n, key, fmt::format("expected {}, got {}", expected, *text));
    return false;
  }
  out = value;
  return true;
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::string& out) {
  auto text = scalar_text(n, key, "a string", e);
  if (!text) return false;
  std::string value = std::move(*text);
  if (c.secret && value.starts_with("file:")) {
    std::string error;
    auto content = read_secret_file(value.substr(5), error);
    if (!content) {
      e.add(n, key, error);
      return false;
    }
    value = std::move(*content);
  }
  if (!check_string(n, key, c, e, value)) return false;
  out = std::move(value);
  return true;
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e,
                 std::vector<std::string>& out) {
  if (!n.IsSequence()) {
    e.add(n, key,
          fmt::format("expected a list like [a, b], got {}", n.IsScalar() ? quoted(n.Scalar(), c) : kind_of(n)));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  Constraints element = c;
  element.non_empty = false;  // applies to the list, not to its elements
  for (const auto& item : n) {
    auto text = scalar_text(item, key, "a string", e);
    if (!text || !check_string(item, key, element, e, *text)) {
      ok = false;
      continue;
    }
    values.push_back(std::move(*text));
  }
  if (!ok) return false;
  if (c.non_empty && values.empty()) {
    e.add(n, key, "must not be empty");
    return false;
  }
  out = std::move(values);
  return true;
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, Size& out) {
  auto show = [](double v) { return format_size(static_cast<std::uint64_t>(v)); };
  auto text = scalar_text(n, key, "a size like 10GiB", e);
  if (!text) return false;
  auto bytes = parse_size(*text);
  if (!bytes) {
    e.add(n, key, fmt::format("expected a size like 10GiB, got {}", quoted(*text, {})));
    return false;
  }
  const auto b = static_cast<long double>(*bytes);
  if ((c.min && b < static_cast<long double>(*c.min)) || (c.max && b > static_cast<long double>(*c.max))) {
    e.add(n, key, fmt::format("expected a size{}, got {}", range_text(c.min, c.max, show), *text));
    return false;
  }
  out = Size{*bytes};
  return true;
}

bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, Duration& out) {
  auto show = [](double v) { return format_duration(Duration(static_cast<Duration::rep>(v))); };
  auto text = scalar_text(n, key, "a duration like 90s", e);
  if (!text) return false;
  auto d = parse_duration(*text);
  if (!d) {
    e.add(n, key, fmt::format("expected a duration like 90s, got {}", quoted(*text, {})));
    return false;
  }
  const auto ms = static_cast<double>(d->count());
  if ((c.min && ms < *c.min) || (c.max && ms > *c.max)) {
    e.add(n, key, fmt::format("expected a duration{}, got {}", range_text(c.min, c.max, show), *text));
    return false;
  }
  out = *d;
  return true;
}

std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(int v) { return std::to_string(v); }
std::string format_value(std::int64_t v) { return std::to_string(v); }
std::string format_value(std::uint64_t v) { return std::to_string(v); }
std::string format_value(double v) { return fmt::format("{}", v); }
std::string format_value(const std::string& v) { return yaml_string(v, false); }
std::string format_value(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += yaml_string(v[i], true);
  }
  return out + "]";
}
std::string format_value(Size v) { return format_size(v.bytes); }
std::string format_value(Duration v) { return format_duration(v); }

}  // namespace detail
}  // namespace neurod::config

#include "cli/auth_format.hpp"

#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace neurod::cli {

namespace {

namespace chr = std::chrono;

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A strict reader for the ISO-8601 forms people type.
class IsoReader {
 public:
  explicit IsoReader(std::string_view s) : s_(s) {}

  std::optional<SysTime> read() {
    int y = 0, mo = 0, d = 0;
    if (!number(4, y) || !literal('-') || !number(2, mo) || !literal('-') || !number(2, d)) return std::nullopt;
    chr::year_month_day ymd{chr::year{y}, chr::month{static_cast<unsigned>(mo)}, chr::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    int h = 0, mi = 0, sec = 0, ms = 0;
    if (literal('T') || literal('t') || literal(' ')) {
      if (!number(2, h) || !literal(':') || !number(2, mi)) return std::nullopt;
      if (literal(':')) {
        if (!number(2, sec)) return std::nullopt;
        if (literal('.') || literal(',')) {
          std::size_t start = i_;
          int scale = 100;
          for (; i_ < s_.size() && is_digit(s_[i_]); ++i_, scale /= 10) ms += (s_[i_] - '0') * scale;
          if (i_ == start) return std::nullopt;
        }
      }
      if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
    }
    int offset_minutes = 0;
    if (i_ < s_.size()) {
      if (literal('Z') || literal('z')) {
      } else if (s_[i_] == '+' || s_[i_] == '-') {
        int sign = s_[i_] == '-' ? -1 : 1;
        ++i_;
        int oh = 0, om = 0;
        if (!number(2, oh)) return std::nullopt;
        if (literal(':') || i_ < s_.size()) {
          if (!number(2, om)) return std::nullopt;
        }
        if (oh > 23 || om > 59) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
      } else {
        return std::nullopt;
      }
    }
    if (i_ != s_.size()) return std::nullopt;
    return SysTime(chr::sys_days{ymd}.time_since_epoch() + chr::hours{h} + chr::minutes{mi} + chr::seconds{sec} +
                   chr::milliseconds{ms} - chr::minutes{offset_minutes});
  }

 private:
  bool number(std::size_t digits, int& out) {
    if (i_ + digits > s_.size()) return false;
    int v = 0;
    for (std::size_t k = 0; k < digits; ++k) {
      if (!is_digit(s_[i_ + k])) return false;
      v = v * 10 + (s_[i_ + k] - '0');
    }
    i_ += digits;
    out = v;
    return true;
  }
  bool literal(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

struct Resource {
  std::string_view label;
  std::string_view limit_key;
  std::string_view usage_key;
  std::string_view usage_alias;  // the same figure under the limit's name
  LimitKind kind;
};

constexpr Resource kResources[] = {
    {"running jobs", "max_running_jobs", "running_jobs", "max_running_jobs", LimitKind::count},
    {"CPU hours", "cpu_hours", "cpu_hours", "", LimitKind::hours},
    {"GPU hours", "gpu_hours", "gpu_hours", "", LimitKind::hours},
    {"storage", "storage_bytes", "storage_bytes", "", LimitKind::bytes},
};

const nlohmann::json* member(const nlohmann::json& j, std::string_view key) {
  if (key.empty() || !j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

std::string format_value(LimitKind kind, const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_number()) return v.dump();
  switch (kind) {
    case LimitKind::hours:
      return format_hours(v.get<double>());
    case LimitKind::bytes:
      if (v.is_number_unsigned()) return format_size_human(v.get<std::uint64_t>());
      if (v.get<double>() >= 0) return format_size_human(static_cast<std::uint64_t>(v.get<double>()));
      return v.dump();
    case LimitKind::count:
    case LimitKind::period:
      if (v.is_number_integer()) return v.dump();
      return fmt::format("{:g}", v.get<double>());
  }
  return v.dump();
}

}  // namespace

std::string format_iso(SysTime t) {
  auto days = chr::floor<chr::days>(t);
  chr::year_month_day ymd{chr::sys_days{days}};
  chr::hh_mm_ss hms{t - days};
  auto out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                         static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                         hms.minutes().count(), hms.seconds().count());
  if (auto ms = hms.subseconds().count(); ms != 0) out += fmt::format(".{:03}", ms);
  return out + "Z";
}

std::optional<std::string> parse_time_arg(std::string_view text, SysTime now) {
  auto s = trim(text);
  if (s.empty()) return std::nullopt;
  if (iequals(s, "now")) return format_iso(chr::floor<chr::seconds>(now));
  if (auto t = IsoReader(s).read()) return format_iso(*t);
  if (s.size() > 3 && iequals(s.substr(s.size() - 3), "ago")) s = trim(s.substr(0, s.size() - 3));
  auto d = parse_duration(s);
  if (!d || d->count() < 0) return std::nullopt;
  return format_iso(chr::floor<chr::seconds>(now - *d));
}

std::string show_time(const nlohmann::json& value, std::string_view if_null) {
  if (value.is_null()) return std::string(if_null);
  if (value.is_number_integer())
    return format_iso(chr::floor<chr::seconds>(SysTime(chr::milliseconds(value.get<std::int64_t>()))));
  if (!value.is_string()) return value.dump();
  auto s = value.get<std::string>();
  // "2024-05-01T12:30:00.123456Z" -> "2024-05-01T12:30:00Z"
  if (s.size() > 19 && s[10] == 'T' && s[19] == '.') {
    std::size_t end = 20;
    while (end < s.size() && is_digit(s[end])) ++end;
    s.erase(19, end - 19);
  }
  return s;
}

const nlohmann::json& field(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json null_value;
  const auto* v = member(j, key);
  return v == nullptr ? null_value : *v;
}

std::string cell(const nlohmann::json& object, std::string_view key) {
  const auto* v = member(object, key);
  if (v == nullptr || v->is_null()) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
  return v->dump();
}

std::string name_of(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (const auto* n = member(value, "name"); n != nullptr && n->is_string()) return n->get<std::string>();
  return {};
}

std::string duration_arg(std::string_view option, std::string_view text) {
  auto d = parse_duration(text);
  if (!d || d->count() <= 0)
    throw CliError(Exit::usage, fmt::format("{}: \"{}\" is not a duration such as 90d, 12h or 1h30m", option, text));
  return format_duration(*d);
}

std::string render_permission_tree(const nlohmann::json& tree) {
  std::string out;
  auto line = [&out](std::size_t depth, std::string_view name, const nlohmann::json& node) {
    out.append(2 * depth, ' ');
    out += name;
    if (auto* a = member(node, "action"); a && a->is_string()) out += "  " + a->get<std::string>();
    out += '\n';
  };
  auto walk = [&](auto& self, const nlohmann::json& node, std::size_t depth) -> void {
    const auto* children = member(node, "children");
    if (children == nullptr) return;
    if (children->is_object()) {
      for (const auto& [name, child] : children->items()) {
        line(depth, name, child);
        self(self, child, depth + 1);
      }
    } else if (children->is_array()) {  // [{name, action, children}] is read too
      for (const auto& child : *children) {
        const auto* name = member(child, "name");
        if (name == nullptr) name = member(child, "segment");
        line(depth, name != nullptr && name->is_string() ? name->get<std::string>() : "?", child);
        self(self, child, depth + 1);
      }
    }
  };
  auto root = [&](const nlohmann::json& node) {
    const auto* uri = member(node, "uri");
    line(0, uri != nullptr && uri->is_string() ? uri->get<std::string>() : "", node);
    walk(walk, node, 1);
  };
  if (member(tree, "uri") == nullptr && tree.is_object()) {
    for (const auto& [scheme, sub] : tree.items())
      if (sub.is_object()) root(sub);
  } else {
    root(tree);
  }
  return out;
}

std::string format_hours(double hours) { return fmt::format("{:.1f}", hours); }

std::vector<QuotaRow> quota_rows(const nlohmann::json& entry) {
  static const nlohmann::json empty = nlohmann::json::object();
  const auto* limits = member(entry, "limits");
  const auto* usage = member(entry, "usage");
  if (limits == nullptr || !limits->is_object()) limits = &empty;
  if (usage == nullptr || !usage->is_object()) usage = &empty;
  std::vector<QuotaRow> rows;
  for (const auto& r : kResources) {
    QuotaRow row{std::string(r.label), "-", "unlimited"};
    const auto* used = member(*usage, r.usage_key);
    if (used == nullptr || used->is_null()) used = member(*usage, r.usage_alias);
    if (used != nullptr && !used->is_null()) row.used = format_value(r.kind, *used);
    if (const auto* limit = member(*limits, r.limit_key); limit != nullptr && !limit->is_null())
      row.limit = format_value(r.kind, *limit);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string render_quota(std::string_view kind, const nlohmann::json& entry) {
  std::string heading(kind);
  if (const auto* name = member(entry, "name"); name != nullptr && name->is_string())
    heading += " " + name->get<std::string>();
  const auto* period = member(entry, "limits");
  period = period != nullptr ? member(*period, "period") : nullptr;
  if (period != nullptr && period->is_string()) {
    heading += " (hours over the last " + period->get<std::string>() + ")";
  } else if (period != nullptr && period->is_number_integer() && period->get<std::int64_t>() > 0) {
    heading += " (hours over the last " + format_duration(chr::seconds(period->get<std::int64_t>())) + ")";
  }
  Table t({{"RESOURCE"}, {"USED", Align::right}, {"LIMIT", Align::right}});
  for (auto& row : quota_rows(entry)) t.add_row({row.resource, row.used, row.limit});
  return heading + "\n" + t.render(false);
}

nlohmann::json parse_limit(std::string_view option, LimitKind kind, std::string_view text) {
  auto s = trim(text);
  auto bad = [&](std::string_view expected) {
    return CliError(Exit::usage, fmt::format("{}: \"{}\" is not {}", option, text, expected));
  };
  if (kind != LimitKind::period && iequals(s, "unlimited")) return nullptr;
  switch (kind) {
    case LimitKind::count: {
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0)
        throw bad("a whole number (e.g. 10) or \"unlimited\"");
      return n;
    }
    case LimitKind::hours: {
      double h = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), h);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(h) || h < 0)
        throw bad("a number of hours (e.g. 100 or 12.5) or \"unlimited\"");
      return h;
    }
    case LimitKind::bytes: {
      auto bytes = parse_size(s);
      if (!bytes) throw bad("a size (e.g. 100GiB or 500G) or \"unlimited\"");
      return *bytes;
    }
    case LimitKind::period: {
      return duration_arg(option, s);
    }
  }
  throw bad("a valid value");
}

}  // namespace neurod::cli

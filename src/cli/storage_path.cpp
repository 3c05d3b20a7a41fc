#include "cli/storage_path.hpp"

#include "cli/output.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <fnmatch.h>

#include <cmath>
#include <ctime>
#include <unordered_set>

namespace neurod::cli {

namespace {

constexpr std::string_view kScheme = "storage:";

[[noreturn]] void bad_uri(std::string_view text, std::string_view why) {
  throw CliError(Exit::usage, fmt::format("invalid storage URI \"{}\": {}", text, why));
}

}  // namespace

bool is_storage_uri(std::string_view text) { return text.substr(0, kScheme.size()) == kScheme; }

StorageUri StorageUri::parse(std::string_view text) {
  if (!is_storage_uri(text)) bad_uri(text, "expected storage:PATH, storage:/PROJECT/PATH or storage://CLUSTER/PROJECT/PATH");
  auto rest = text.substr(kScheme.size());
  StorageUri u;
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    auto slash = rest.find('/');
    u.cluster = std::string(rest.substr(0, slash));
    if (u.cluster->empty()) bad_uri(text, "no cluster after storage://");
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    u.relative = false;
  } else if (!rest.empty() && rest.front() == '/') {
    u.relative = false;
  }
  u.trailing_slash = !rest.empty() && rest.back() == '/';
  std::vector<std::string> segs;
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    auto next = rest.find('/', pos);
    auto seg = rest.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    if (seg.find('\0') != std::string_view::npos) bad_uri(text, "a NUL character");
    if (seg == "..") {
      // Never above the project: for an absolute URI the first segment is the project.
      if (segs.empty() || (!u.relative && segs.size() == 1)) bad_uri(text, "\"..\" goes above the project");
      segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.emplace_back(seg);
    }
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  if (!u.relative) {
    if (segs.empty()) bad_uri(text, "no project: write storage:/PROJECT/PATH (or storage:PATH for your own project)");
    u.project = std::move(segs.front());
    segs.erase(segs.begin());
  }
  u.segments = std::move(segs);
  if (u.segments.empty()) u.trailing_slash = true;  // a project's root is a directory
  return u;
}

StorageUri StorageUri::resolved(const std::string& current_project) const {
  StorageUri u = *this;
  if (u.relative) u.project = current_project;
  return u;
}

std::string StorageUri::path() const {
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += '/';
    out += s;
  }
  return out;
}

std::string StorageUri::name() const { return segments.empty() ? std::string() : segments.back(); }

StorageUri StorageUri::child(std::string_view rel) const {
  StorageUri u = *this;
  u.trailing_slash = false;
  std::size_t pos = 0;
  while (pos <= rel.size()) {
    auto next = rel.find('/', pos);
    auto seg = rel.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    if (!seg.empty()) u.segments.emplace_back(seg);
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return u;
}

StorageUri StorageUri::parent() const {
  StorageUri u = *this;
  if (!u.segments.empty()) u.segments.pop_back();
  u.trailing_slash = true;
  return u;
}

std::string StorageUri::display() const {
  if (relative) return std::string(kScheme) + path();
  auto p = path();
  return std::string(kScheme) + (cluster ? "//" + *cluster : std::string()) + "/" + project + (p.empty() ? "" : "/" + p);
}

std::string StorageUri::absolute_path() const {
  auto p = path();
  return "/" + project + (p.empty() ? "" : "/" + p);
}

std::string storage_target(const StorageUri& uri, std::string_view op, const QueryParams& extra) {
  std::string path = api("/storage/" + path_segment(uri.project));
  for (const auto& s : uri.segments) path += "/" + path_segment(s);
  QueryParams params;
  if (!op.empty()) params.emplace_back("op", std::string(op));
  params.insert(params.end(), extra.begin(), extra.end());
  return with_query(std::move(path), params);
}

bool PathFilter::included(std::string_view rel, bool is_dir) const {
  auto slash = rel.rfind('/');
  std::string whole(rel);
  std::string base(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    std::string pattern = it->pattern;
    if (!pattern.empty() && pattern.back() == '/') {
      if (!is_dir) continue;
      while (!pattern.empty() && pattern.back() == '/') pattern.pop_back();
    }
    if (::fnmatch(pattern.c_str(), whole.c_str(), 0) == 0 || ::fnmatch(pattern.c_str(), base.c_str(), 0) == 0)
      return it->include;
  }
  return true;
}

Landing landing(bool src_is_dir, bool several_sources, bool dst_trailing_slash, DstKind dst, bool no_target_directory,
                std::string_view dst_display) {
  Landing l;
  if (no_target_directory) {
    if (several_sources) l.error = "-T/--no-target-directory takes one source";
    else if (src_is_dir && dst == DstKind::file)
      l.error = fmt::format("cannot overwrite non-directory {} with a directory", dst_display);
    return l;
  }
  if (several_sources || dst_trailing_slash) {
    if (dst == DstKind::file) {
      l.error = fmt::format("target {} is not a directory", dst_display);
      return l;
    }
    l.into = true;
    return l;
  }
  if (dst == DstKind::directory) {
    l.into = true;
    return l;
  }
  if (src_is_dir && dst == DstKind::file) l.error = fmt::format("cannot overwrite non-directory {} with a directory", dst_display);
  return l;
}

std::string join_rel(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

CopyPlan plan_copy(const std::vector<TreeEntry>& entries, const PathFilter& filter) {
  CopyPlan plan;
  std::unordered_set<std::string> excluded_dirs;
  std::unordered_set<std::string> has_child;
  std::vector<const TreeEntry*> dirs;
  // Parents come first and an excluded directory's subdirectories are marked too, so the
  // parent alone tells.
  auto excluded_above = [&](const std::string& rel) {
    auto pos = rel.rfind('/');
    return pos != std::string::npos && excluded_dirs.count(rel.substr(0, pos)) > 0;
  };
  for (const auto& e : entries) {
    if (!e.rel.empty()) {
      if (!excluded_dirs.empty() && excluded_above(e.rel)) {
        if (e.dir) excluded_dirs.insert(e.rel);
        continue;
      }
      if (!filter.included(e.rel, e.dir)) {
        if (e.dir) excluded_dirs.insert(e.rel);
        continue;
      }
      // Every ancestor (the root "" included) has something below it.
      auto rel = e.rel;
      for (;;) {
        auto pos = rel.rfind('/');
        rel = pos == std::string::npos ? std::string() : rel.substr(0, pos);
        if (!has_child.insert(rel).second) break;
        if (rel.empty()) break;
      }
    }
    if (e.dir) {
      dirs.push_back(&e);
    } else {
      plan.files.push_back(e);
      plan.bytes += e.size;
    }
  }
  for (const auto* d : dirs)
    if (!has_child.count(d->rel)) plan.mkdirs.push_back(d->rel);
  return plan;
}

std::string format_ls_size(std::uint64_t size, bool human) {
  if (!human || size < 1024) return std::to_string(size);
  static constexpr const char* kUnits[] = {"K", "M", "G", "T", "P", "E"};
  double v = static_cast<double>(size);
  int u = -1;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (v < 10) return fmt::format("{:.1f}{}", std::ceil(v * 10) / 10, kUnits[u]);
  return fmt::format("{:.0f}{}", std::ceil(v), kUnits[u]);
}

std::string format_ls_time(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

char type_letter(std::string_view type) {
  if (type == "DIRECTORY") return 'd';
  if (type == "SYMLINK") return 'l';
  return '-';
}

std::string format_rate(double bytes_per_second) {
  if (!(bytes_per_second > 0)) return "0 B/s";
  return format_size_human(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 100 * 3600.0) return "--:--";
  auto s = static_cast<long>(std::ceil(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace neurod::cli

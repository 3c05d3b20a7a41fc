// The storage commands' pure parts: storage: URIs and their API targets, the
// --exclude/--include filter, where a copy lands, and the plan of a recursive copy
// (modules/storage/README.md is the API they map to).
#pragma once

#include "cli/api_path.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::cli {

// A storage: URI as written: "storage:rel/path" (relative to the current project),
// "storage:/project/path" or "storage://cluster/project/path". "." segments are
// dropped and ".." goes up (never above the project); a trailing '/' is remembered
// (cp: copy into the directory).
struct StorageUri {
  std::optional<std::string> cluster;  // storage://CLUSTER/…
  bool relative = true;                // to the current project
  std::string project;                 // empty while relative
  std::vector<std::string> segments;   // the path inside the project
  bool trailing_slash = false;

  // Throws CliError(usage) with a clear message when text is not a storage URI.
  static StorageUri parse(std::string_view text);
  // Fills project for a relative URI.
  StorageUri resolved(const std::string& current_project) const;

  std::string path() const;  // "a/b" ("" for the project's root)
  std::string name() const;  // the last segment ("" for the root)
  bool is_root() const { return segments.empty(); }
  StorageUri child(std::string_view rel) const;  // rel may hold '/'
  StorageUri parent() const;                     // the root's parent is the root
  // For messages: "storage:a/b" when relative, "storage:/project/a/b" otherwise.
  std::string display() const;
  // "/project/a/b", as RENAME's destination wants it.
  std::string absolute_path() const;
};

bool is_storage_uri(std::string_view text);  // starts with "storage:"

// "/api/v1/storage/{project}/{seg…}" with each segment percent-encoded, plus
// "?op=OP&…" (op left out when empty).
std::string storage_target(const StorageUri& uri, std::string_view op = {}, const QueryParams& extra = {});

// --exclude/--include: the last pattern that matches an entry decides; no match
// includes it. A pattern matches the entry's path relative to the copied directory, or
// its base name (fnmatch, '*' crosses '/'); a pattern ending in '/' only matches
// directories.
class PathFilter {
 public:
  void exclude(std::string pattern) { rules_.push_back({false, std::move(pattern)}); }
  void include(std::string pattern) { rules_.push_back({true, std::move(pattern)}); }
  bool empty() const { return rules_.empty(); }
  bool included(std::string_view rel, bool is_dir) const;

 private:
  struct Rule {
    bool include;
    std::string pattern;
  };
  std::vector<Rule> rules_;
};

// Where a copy of SRC to DST lands (cp's rules): into DST (DST/NAME) when DST is an
// existing directory, ends in '/', or there are several sources; DST itself otherwise.
// -T (no_target_directory) always means DST itself.
enum class DstKind { missing, file, directory };
struct Landing {
  bool into = false;        // DST/NAME rather than DST
  std::string error;        // not empty: this copy cannot be done, and why
};
Landing landing(bool src_is_dir, bool several_sources, bool dst_trailing_slash, DstKind dst, bool no_target_directory,
                std::string_view dst_display);

// An entry of a tree to copy, relative to its root ("" is the root itself; '/'
// separates segments).
struct TreeEntry {
  std::string rel;
  bool dir = false;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // seconds since the epoch
};

struct CopyPlan {
  std::vector<TreeEntry> files;       // to copy, in walk order
  std::vector<std::string> mkdirs;    // directories with nothing copied below them (rel)
  std::uint64_t bytes = 0;            // of files
};

// The plan of a recursive copy from the entries of a walk (parents before children):
// filtered entries and everything below an excluded directory are left out; missing
// parents are created by the uploads, so only the deepest directories with no file
// below them need an explicit mkdir ("" when nothing at all is copied).
CopyPlan plan_copy(const std::vector<TreeEntry>& entries, const PathFilter& filter);

// "a/b" + "c" -> "a/b/c"; either may be empty.
std::string join_rel(std::string_view a, std::string_view b);

// For ls -l and tree: the size (human with -h, e.g. "1.5K"), the time ("2025-01-02 15:04"
// in local time), the type letter (d, l, -).
std::string format_ls_size(std::uint64_t size, bool human);
std::string format_ls_time(std::int64_t seconds);
char type_letter(std::string_view type);

// For the progress line: "1.5 MiB/s", "ETA 1:02:03".
std::string format_rate(double bytes_per_second);
std::string format_eta(double seconds);

}  // namespace neurod::cli

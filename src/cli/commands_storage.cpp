// neuro storage cp|ls|mkdir|mv|rm|tree|df, and cp, ls, mkdir, mv, rm at the top level
// (modules/storage/README.md: API; docs/cli.md: Storage).
#include "cli/api_path.hpp"
#include "cli/commands.hpp"
#include "cli/storage_path.hpp"
#include "cli/storage_transfer.hpp"
#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

namespace neurod::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// --- URIs and requests -----------------------------------------------------------

// Parses and resolves a storage: URI: relative ones under the caller's own project, and
// storage://CLUSTER/… only for this server's cluster.
StorageUri resolve(Context& ctx, std::string_view text) {
  auto u = StorageUri::parse(text);
  if (u.cluster) ctx.require_this_cluster(text, *u.cluster);
  if (u.relative) u.project = ctx.me();
  return u;
}

StorageUri resolve_remote_arg(Context& ctx, const std::string& text) {
  if (!is_storage_uri(text))
    throw CliError(Exit::usage, fmt::format("\"{}\" is not a storage URI: write storage:PATH or storage:/PROJECT/PATH", text));
  return resolve(ctx, text);
}

void check(const http::ClientResponse& r) {
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
}

// GETFILESTATUS; nullopt when the server says 404 (missing, or hidden from the caller).
std::optional<json> stat_remote(Context& ctx, const StorageUri& uri) {
  auto r = ctx.call("GET", storage_target(uri, "GETFILESTATUS"));
  if (r.status == 404) return std::nullopt;
  check(r);
  auto j = r.json();
  if (j.contains("FileStatus")) return j["FileStatus"];
  return j;
}

json stat_remote_or_throw(Context& ctx, const StorageUri& uri) {
  auto r = ctx.call("GET", storage_target(uri, "GETFILESTATUS"));
  check(r);
  auto j = r.json();
  if (j.contains("FileStatus")) return j["FileStatus"];
  return j;
}

std::vector<json> list_remote(Context& ctx, const StorageUri& uri) {
  auto r = ctx.call("GET", storage_target(uri, "LISTSTATUS"));
  check(r);
  auto j = r.json();
  std::vector<json> out;
  if (j.contains("FileStatuses") && j["FileStatuses"].contains("FileStatus") && j["FileStatuses"]["FileStatus"].is_array())
    for (const auto& e : j["FileStatuses"]["FileStatus"]) out.push_back(e);
  return out;
}

std::string str_field(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}
std::uint64_t size_field(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return 0;
  auto v = j[key].get<double>();
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}
std::int64_t time_field(const json& j) {
  if (!j.contains("modificationTime") || !j["modificationTime"].is_number()) return 0;
  return static_cast<std::int64_t>(j["modificationTime"].get<double>());
}
bool is_dir(const json& st) { return str_field(st, "type") == "DIRECTORY"; }

// --- walking trees -----------------------------------------------------------------

struct LocalStat {
  bool exists = false;
  bool dir = false;
  bool regular = false;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  int err = 0;
};

LocalStat stat_local(const fs::path& p) {
  struct stat st {};
  LocalStat out;
  if (::stat(p.c_str(), &st) != 0) {
    out.err = errno;
    return out;
  }
  out.exists = true;
  out.dir = S_ISDIR(st.st_mode);
  out.regular = S_ISREG(st.st_mode);
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.mtime = st.st_mtim.tv_sec;
  return out;
}

void warn(const std::string& text) { std::cerr << "neuro: " << text << std::endl; }

// Parents before children, names sorted; symbolic links are followed to files, and
// links to directories are left out (no loops).
void walk_local(const fs::path& root, const std::string& rel, const PathFilter& filter, std::vector<TreeEntry>& out) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(rel.empty() ? root : root / rel, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) {
    warn(fmt::format("cannot read directory {}: {}", (root / rel).string(), ec.message()));
    return;
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto r = join_rel(rel, name);
    auto p = root / r;
    struct stat lst {};
    if (::lstat(p.c_str(), &lst) != 0) continue;
    auto st = stat_local(p);
    if (S_ISLNK(lst.st_mode) && st.dir) {
      warn(fmt::format("skipping {}: a symbolic link to a directory", p.string()));
      continue;
    }
    if (!st.exists) {
      warn(fmt::format("skipping {}: {}", p.string(), std::strerror(st.err)));
      continue;
    }
    if (st.dir) {
      if (!filter.included(r, true)) continue;
      out.push_back({r, true, 0, st.mtime});
      walk_local(root, r, filter, out);
    } else if (st.regular) {
      if (!filter.included(r, false)) continue;
      out.push_back({r, false, st.size, st.mtime});
    } else {
      warn(fmt::format("skipping {}: not a regular file", p.string()));
    }
  }
}

void walk_remote(Context& ctx, const StorageUri& root, const std::string& rel, const PathFilter& filter,
                 std::vector<TreeEntry>& out) {
  for (const auto& st : list_remote(ctx, root.child(rel))) {
    auto name = str_field(st, "path");
    if (name.empty()) continue;
    auto r = join_rel(rel, name);
    bool dir = is_dir(st);
    if (!filter.included(r, dir)) continue;
    out.push_back({r, dir, size_field(st, "length"), time_field(st)});
    if (dir) walk_remote(ctx, root, r, filter, out);
  }
}

// --- cp ----------------------------------------------------------------------------

struct FilterRule {
  bool include;
  std::string pattern;
};

struct CpArgs {
  std::vector<std::string> paths;
  std::optional<std::string> target_directory;
  bool no_target_directory = false;
  bool recursive = false;
  bool update = false;
  bool resume = false;
  bool quiet = false;
  int jobs = 8;
  std::vector<FilterRule> filters;
};

struct Loc {
  enum class Kind { local, remote, stdio } kind = Kind::local;
  fs::path local;
  bool trailing_slash = false;
  StorageUri uri;
  std::string display;
};

Loc locate(Context& ctx, const std::string& text) {
  Loc l;
  l.display = text;
  if (text == "-") {
    l.kind = Loc::Kind::stdio;
  } else if (is_storage_uri(text)) {
    l.kind = Loc::Kind::remote;
    l.uri = resolve(ctx, text);
    l.trailing_slash = l.uri.trailing_slash;
  } else {
    std::string p = text;
    if (p.rfind("file://", 0) == 0)
      p = p.substr(7);
    else if (p.rfind("file:", 0) == 0)
      p = p.substr(5);
    if (p.empty()) p = ".";
    l.trailing_slash = p.back() == '/';
    l.local = p;
  }
  return l;
}

// The name a source takes inside a destination directory; empty for "." (its contents).
std::string local_name(const fs::path& p) {
  auto s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  auto name = fs::path(s).filename().string();
  if (name == "." || name == ".." || name == "/") return {};
  return name;
}

DstKind kind_of_remote(const std::optional<json>& st) {
  if (!st) return DstKind::missing;
  return is_dir(*st) ? DstKind::directory : DstKind::file;
}

std::map<std::string, DstState> remote_state(Context& ctx, const StorageUri& root) {
  std::map<std::string, DstState> out;
  std::vector<TreeEntry> entries;
  auto r = ctx.call("GET", storage_target(root, "GETFILESTATUS"));
  if (r.status == 404) return out;
  check(r);
  walk_remote(ctx, root, "", PathFilter{}, entries);
  for (const auto& e : entries)
    if (!e.dir) out[e.rel] = {e.size, e.mtime};
  return out;
}

std::optional<DstState> local_state(const fs::path& p) {
  auto st = stat_local(p);
  if (!st.exists || !st.regular) return std::nullopt;
  return DstState{st.size, st.mtime};
}

struct CpPlan {
  std::vector<Transfer> transfers;
  std::vector<StorageUri> remote_mkdirs;
  std::vector<fs::path> local_mkdirs;
  std::vector<std::string> errors;  // sources that cannot be copied, with why
  std::uint64_t bytes = 0;
};

void plan_source(Context& ctx, const CpArgs& a, const PathFilter& filter, const Loc& src, const Loc& dst, DstKind dst_kind,
                 bool several, CpPlan& plan) {
  using From = Transfer::From;
  using To = Transfer::To;
  bool need_dst_state = a.resume || a.update;
  auto fail = [&](const std::string& why) { plan.errors.push_back(why); };

  if (src.kind == Loc::Kind::stdio) {
    if (dst.kind != Loc::Kind::remote) return fail("stdin (-) can only be copied to storage");
    if (dst_kind == DstKind::directory || dst.trailing_slash)
      return fail(fmt::format("cannot copy stdin into the directory {}: name the file", dst.display));
    Transfer t;
    t.from = From::stdin_;
    t.to = To::remote;
    t.remote_dst = dst.uri;
    t.src_display = "stdin";
    t.dst_display = dst.display;
    plan.transfers.push_back(std::move(t));
    return;
  }

  // What the source is.
  bool src_dir = false;
  std::uint64_t src_size = 0;
  std::int64_t src_mtime = 0;
  std::string name;
  if (src.kind == Loc::Kind::local) {
    if (dst.kind == Loc::Kind::local) return fail(fmt::format("cannot copy {} to {}: neither is a storage: URI", src.display, dst.display));
    auto st = stat_local(src.local);
    if (!st.exists) return fail(fmt::format("cannot copy {}: {}", src.display, std::strerror(st.err)));
    if (!st.dir && !st.regular) return fail(fmt::format("cannot copy {}: not a regular file", src.display));
    src_dir = st.dir;
    src_size = st.size;
    src_mtime = st.mtime;
    name = local_name(src.local);
  } else {
    json st;
    try {
      st = stat_remote_or_throw(ctx, src.uri);
    } catch (const CliError& e) {
      return fail(fmt::format("cannot copy {}: {}", src.display, e.what()));
    }
    src_dir = is_dir(st);
    src_size = size_field(st, "length");
    src_mtime = time_field(st);
    name = src.uri.is_root() ? src.uri.project : src.uri.name();
  }
  if (src_dir && !a.recursive) return fail(fmt::format("{} is a directory (not copied; use -r)", src.display));
  if (src_dir && dst.kind == Loc::Kind::stdio) return fail(fmt::format("cannot copy the directory {} to stdout", src.display));

  // Where it lands.
  Loc target = dst;
  if (dst.kind != Loc::Kind::stdio) {
    auto l = landing(src_dir, several, dst.trailing_slash, dst_kind, a.no_target_directory, dst.display);
    if (!l.error.empty()) return fail(l.error);
    if (l.into && !name.empty()) {
      if (dst.kind == Loc::Kind::remote) {
        target.uri = dst.uri.child(name);
        target.display = target.uri.display();
      } else {
        target.local = dst.local / name;
        target.display = target.local.string();
      }
    }
  }

  auto make = [&](const std::string& rel, std::uint64_t size, std::int64_t mtime) {
    Transfer t;
    t.size = size;
    t.mtime = mtime;
    if (src.kind == Loc::Kind::local) {
      t.from = From::local;
      t.local_src = rel.empty() ? src.local : src.local / rel;
      t.src_display = t.local_src.string();
    } else {
      t.from = From::remote;
      t.remote_src = src.uri.child(rel);
      t.src_display = t.remote_src.display();
    }
    if (target.kind == Loc::Kind::remote) {
      t.to = To::remote;
      t.remote_dst = target.uri.child(rel);
      t.dst_display = t.remote_dst.display();
    } else if (target.kind == Loc::Kind::local) {
      t.to = To::local;
      t.local_dst = rel.empty() ? target.local : target.local / rel;
      t.dst_display = t.local_dst.string();
    } else {
      t.to = To::stdout_;
      t.dst_display = "stdout";
    }
    return t;
  };

  if (!src_dir) {
    auto t = make("", src_size, src_mtime);
    if (need_dst_state) {
      if (t.to == To::remote) {
        if (auto st = stat_remote(ctx, t.remote_dst); st && !is_dir(*st)) t.dst = DstState{size_field(*st, "length"), time_field(*st)};
      } else if (t.to == To::local) {
        t.dst = local_state(t.local_dst);
      }
    }
    plan.bytes += t.size;
    plan.transfers.push_back(std::move(t));
    return;
  }

  std::vector<TreeEntry> entries{{"", true, 0, src_mtime}};
  if (src.kind == Loc::Kind::local)
    walk_local(src.local, "", filter, entries);
  else
    walk_remote(ctx, src.uri, "", filter, entries);
  auto cp = plan_copy(entries, filter);
  std::map<std::string, DstState> existing;
  if (need_dst_state && target.kind == Loc::Kind::remote) existing = remote_state(ctx, target.uri);
  for (const auto& d : cp.mkdirs) {
    if (target.kind == Loc::Kind::remote)
      plan.remote_mkdirs.push_back(target.uri.child(d));
    else
      plan.local_mkdirs.push_back(d.empty() ? target.local : target.local / d);
  }
  for (const auto& f : cp.files) {
    auto t = make(f.rel, f.size, f.mtime);
    if (need_dst_state) {
      if (t.to == To::remote) {
        if (auto it = existing.find(f.rel); it != existing.end()) t.dst = it->second;
      } else {
        t.dst = local_state(t.local_dst);
      }
    }
    plan.transfers.push_back(std::move(t));
  }
  plan.bytes += cp.bytes;
}

int run_cp(Context& ctx, const CpArgs& a) {
  auto args = a.paths;
  std::string dst_text;
  if (a.target_directory) {
    if (a.no_target_directory) throw CliError(Exit::usage, "-t and -T cannot be used together");
    dst_text = *a.target_directory;
    if (dst_text.empty() || dst_text.back() != '/') dst_text += '/';
  } else {
    if (args.size() < 2) throw CliError(Exit::usage, "cp needs a SOURCE and a DESTINATION (see neuro cp --help)");
    dst_text = args.back();
    args.pop_back();
  }
  if (args.empty()) throw CliError(Exit::usage, "cp needs at least one SOURCE");
  if (std::count(args.begin(), args.end(), "-") > 1) throw CliError(Exit::usage, "stdin (-) can be given once");
  PathFilter filter;
  for (const auto& f : a.filters) {
    if (f.include)
      filter.include(f.pattern);
    else
      filter.exclude(f.pattern);
  }
  auto opts = transfer_options(ctx);
  opts.jobs = a.jobs;
  opts.resume = a.resume;
  opts.update = a.update;

  auto dst = locate(ctx, dst_text);
  DstKind dst_kind = DstKind::missing;
  if (dst.kind == Loc::Kind::remote) {
    dst_kind = kind_of_remote(stat_remote(ctx, dst.uri));
  } else if (dst.kind == Loc::Kind::local) {
    auto st = stat_local(dst.local);
    dst_kind = !st.exists ? DstKind::missing : st.dir ? DstKind::directory : DstKind::file;
  }
  if (dst.kind == Loc::Kind::stdio) opts.jobs = 1;  // one after the other, in order

  bool several = args.size() > 1;
  CpPlan plan;
  for (const auto& s : args) plan_source(ctx, a, filter, locate(ctx, s), dst, dst_kind, several, plan);
  for (const auto& e : plan.errors) warn(e);

  int rc = plan.errors.empty() ? code(Exit::ok) : code(Exit::failure);
  std::optional<CliError> single_error;
  for (const auto& d : plan.local_mkdirs) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) {
      warn(fmt::format("cannot create directory {}: {}", d.string(), ec.message()));
      rc = code(Exit::failure);
    }
  }
  for (const auto& d : plan.remote_mkdirs) {
    auto r = ctx.call("PUT", storage_target(d, "MKDIRS"));
    if (r.status < 200 || r.status >= 300) {
      warn(fmt::format("cannot create directory {}: {}", d.display(), server_error(r.status, r.body).what()));
      rc = code(Exit::failure);
    }
  }

  bool tty = ::isatty(STDERR_FILENO) == 1;
  Progress progress(tty && !a.quiet && !ctx.options.verbose && !plan.transfers.empty(), plan.transfers.size(),
                    plan.bytes);
  progress.start();
  auto report = run_transfers(plan.transfers, opts, progress);
  progress.stop();
  if (report.aborted) {
    // Stopped: the server went away or the token is no longer valid.
    throw CliError(report.aborted->exit, report.aborted->message);
  }
  if (!report.failures.empty()) {
    // One file that failed says why in its exit code; several are a partial failure.
    if (plan.transfers.size() == 1 && plan.errors.empty()) return code(report.failures.front().exit);
    rc = code(Exit::failure);
  }
  return rc;
}

// --- ls, tree ----------------------------------------------------------------------

struct LsArgs {
  std::vector<std::string> paths;
  bool long_format = false;
  bool human = false;
  bool all = false;
};

bool hidden(const std::string& name) { return !name.empty() && name.front() == '.'; }

std::string long_line(const json& st, bool human, std::size_t size_width) {
  auto perm = str_field(st, "permission");
  auto size = format_ls_size(size_field(st, "length"), human);
  return fmt::format("{} {:<6} {:>{}} {} {}", type_letter(str_field(st, "type")), perm.empty() ? "-" : perm, size,
                     size_width, format_ls_time(time_field(st)), str_field(st, "path"));
}

int run_ls(Context& ctx, const LsArgs& a) {
  auto paths = a.paths.empty() ? std::vector<std::string>{"storage:"} : a.paths;
  json all = json::array();
  bool first = true;
  int rc = code(Exit::ok);
  for (const auto& p : paths) {
    auto uri = resolve_remote_arg(ctx, p);
    std::vector<json> entries;
    try {
      entries = list_remote(ctx, uri);
    } catch (const CliError& e) {
      if (paths.size() == 1) throw CliError(e.exit(), fmt::format("cannot list {}: {}", p, e.what()));
      warn(fmt::format("cannot list {}: {}", p, e.what()));
      rc = code(Exit::failure);
      continue;
    }
    std::vector<json> shown;
    for (auto& e : entries)
      if (a.all || !hidden(str_field(e, "path"))) shown.push_back(std::move(e));
    if (ctx.json_output()) {
      for (auto& e : shown) {
        auto child = uri.child(str_field(e, "path"));
        // A file lists as itself: its uri is the one given.
        e["uri"] = (shown.size() == 1 && str_field(e, "path") == uri.name() && !uri.is_root()) ? uri.display() : child.display();
        all.push_back(e);
      }
      continue;
    }
    if (paths.size() > 1) {
      if (!first) std::cout << "\n";
      std::cout << p << ":\n";
    }
    first = false;
    std::size_t width = 1;
    for (const auto& e : shown) width = std::max(width, format_ls_size(size_field(e, "length"), a.human).size());
    for (const auto& e : shown) std::cout << (a.long_format ? long_line(e, a.human, width) : str_field(e, "path")) << "\n";
  }
  if (ctx.json_output()) print_json(all);
  std::cout << std::flush;
  return rc;
}

struct TreeArgs {
  std::string path = "storage:";
  bool human = false;
  bool sizes = false;
  bool all = false;
};

struct TreeCounts {
  std::uint64_t dirs = 0, files = 0, bytes = 0;
};

void print_tree(Context& ctx, const StorageUri& uri, const TreeArgs& a, const std::string& prefix, TreeCounts& n) {
  std::vector<json> shown;
  for (auto& e : list_remote(ctx, uri))
    if (a.all || !hidden(str_field(e, "path"))) shown.push_back(std::move(e));
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const auto& e = shown[i];
    bool last = i + 1 == shown.size();
    auto name = str_field(e, "path");
    std::string size;
    if ((a.human || a.sizes) && !is_dir(e)) size = "[" + format_ls_size(size_field(e, "length"), a.human) + "]  ";
    std::cout << prefix << (last ? "└── " : "├── ") << size << name << "\n";
    if (is_dir(e)) {
      ++n.dirs;
      print_tree(ctx, uri.child(name), a, prefix + (last ? "    " : "│   "), n);
    } else {
      ++n.files;
      n.bytes += size_field(e, "length");
    }
  }
}

int run_tree(Context& ctx, const TreeArgs& a) {
  auto uri = resolve_remote_arg(ctx, a.path);
  auto st = stat_remote_or_throw(ctx, uri);
  std::cout << a.path << "\n";
  TreeCounts n;
  if (is_dir(st)) print_tree(ctx, uri, a, "", n);
  std::cout << "\n"
            << n.dirs << (n.dirs == 1 ? " directory, " : " directories, ") << n.files << (n.files == 1 ? " file" : " files");
  if (a.human || a.sizes) std::cout << ", " << format_ls_size(n.bytes, a.human) << (a.human ? "" : " bytes");
  std::cout << std::endl;
  return code(Exit::ok);
}

// --- mkdir, mv, rm, df ------------------------------------------------------------

int run_mkdir(Context& ctx, const std::vector<std::string>& paths, bool parents) {
  int rc = code(Exit::ok);
  for (const auto& p : paths) {
    auto uri = resolve_remote_arg(ctx, p);
    QueryParams q;
    if (!parents) q = {{"parents", "false"}, {"exist_ok", "false"}};
    auto r = ctx.call("PUT", storage_target(uri, "MKDIRS", q));
    if (r.status < 200 || r.status >= 300) {
      auto e = server_error(r.status, r.body);
      auto msg = fmt::format("cannot create directory {}: {}", p, e.what());
      if (paths.size() == 1) throw CliError(e.exit(), msg);
      warn(msg);
      rc = code(Exit::failure);
    }
  }
  return rc;
}

int run_mv(Context& ctx, std::vector<std::string> paths, bool no_target_directory) {
  if (paths.size() < 2) throw CliError(Exit::usage, "mv needs a SOURCE and a DESTINATION");
  auto dst_text = paths.back();
  auto dst = resolve_remote_arg(ctx, dst_text);
  paths.pop_back();
  bool several = paths.size() > 1;
  auto dst_kind = kind_of_remote(stat_remote(ctx, dst));
  int rc = code(Exit::ok);
  for (const auto& p : paths) {
    auto src = resolve_remote_arg(ctx, p);
    auto l = landing(false, several, dst.trailing_slash && !dst.is_root(), dst_kind, no_target_directory, dst_text);
    // A project's root is a directory whatever GETFILESTATUS said.
    if (dst.is_root()) l.into = true;
    std::string msg;
    std::optional<Exit> exit;
    if (!l.error.empty()) {
      msg = l.error;
      exit = Exit::failure;
    } else {
      auto target = l.into ? dst.child(src.is_root() ? src.project : src.name()) : dst;
      auto r = ctx.call("POST", storage_target(src, "RENAME", {{"destination", target.absolute_path()}}));
      if (r.status >= 200 && r.status < 300) continue;
      auto e = server_error(r.status, r.body);
      msg = e.what();
      exit = e.exit();
    }
    auto text = fmt::format("cannot move {}: {}", p, msg);
    if (!several) throw CliError(*exit, text);
    warn(text);
    rc = code(Exit::failure);
  }
  return rc;
}

int run_rm(Context& ctx, const std::vector<std::string>& paths, bool recursive) {
  int rc = code(Exit::ok);
  for (const auto& p : paths) {
    auto uri = resolve_remote_arg(ctx, p);
    std::string msg;
    Exit exit = Exit::failure;
    try {
      auto st = stat_remote_or_throw(ctx, uri);
      if (is_dir(st) && !recursive) {
        msg = "is a directory (use -r to remove it and everything in it)";
      } else {
        auto r = ctx.call("DELETE", storage_target(uri, "", {{"recursive", recursive ? "true" : "false"}}));
        check(r);
        continue;
      }
    } catch (const CliError& e) {
      msg = e.what();
      exit = e.exit();
    }
    auto text = fmt::format("cannot remove {}: {}", p, msg);
    if (paths.size() == 1) throw CliError(exit, text);
    warn(text);
    rc = code(Exit::failure);
  }
  return rc;
}

int run_df(Context& ctx, const std::string& path) {
  auto uri = resolve_remote_arg(ctx, path);
  uri.segments.clear();
  auto r = ctx.call("GET", storage_target(uri, "GETDISKUSAGE"));
  check(r);
  auto j = r.json();
  if (ctx.json_output()) {
    print_json(j);
    return code(Exit::ok);
  }
  auto sz = [](const json& o, const char* k) -> std::string {
    if (!o.is_object() || !o.contains(k)) return "";
    if (o[k].is_null()) return "unlimited";
    if (!o[k].is_number()) return "";
    return format_size_human(size_field(o, k));
  };
  Table t({{""}, {"TOTAL", Align::right}, {"USED", Align::right}, {"FREE", Align::right}, {"LIMIT", Align::right}});
  t.add_row({"storage", sz(j, "total"), sz(j, "used"), sz(j, "free"), ""});
  if (j.contains("project") && j["project"].is_object()) {
    const auto& p = j["project"];
    std::string free;
    if (p.contains("limit") && p["limit"].is_number() && p.contains("used") && p["used"].is_number()) {
      auto used = size_field(p, "used"), limit = size_field(p, "limit");
      free = format_size_human(limit > used ? limit - used : 0);
    }
    t.add_row({"project " + uri.project, "", sz(p, "used"), free, sz(p, "limit")});
  }
  std::cout << t.render(ctx.color()) << std::flush;
  return code(Exit::ok);
}

// --- registration -------------------------------------------------------------------

void add_cp(CLI::App& parent, Context& ctx) {
  auto a = std::make_shared<CpArgs>();
  auto* cp = parent.add_subcommand(
      "cp", "Copy files and directories between the local disk and storage, or within storage");
  cp->footer(
      "SOURCE and DESTINATION are local paths, storage:PATH (your project), storage:/PROJECT/PATH\n"
      "or storage://CLUSTER/PROJECT/PATH; '-' is stdin as a source and stdout as a destination.\n"
      "Examples:\n"
      "  neuro cp -r ./dataset storage:data/     # into storage:data/dataset\n"
      "  neuro cp storage:out/list -             # print a file\n"
      "  neuro cp -r --continue ./big storage:big  # resume an interrupted copy");
  cp->add_option("PATHS", a->paths, "SOURCE... DESTINATION")->required()->expected(1, -1);
  cp->add_flag("-r,--recursive", a->recursive, "Copy directories and everything in them");
  cp->add_option("-t,--target-directory", a->target_directory, "Copy every SOURCE into this directory")
      ->type_name("DIR");
  cp->add_flag("-T,--no-target-directory", a->no_target_directory, "Treat DESTINATION as the target itself, never as a directory to copy into");
  cp->add_flag("-u,--update", a->update, "Copy only when the source is newer than the destination or their sizes differ");
  cp->add_flag("--continue", a->resume,
               "Skip files already there with the same size; resume partial uploads and downloads");
  cp->add_option_function<std::string>(
        "--exclude", [a](const std::string& p) { a->filters.push_back({false, p}); },
        "Leave out files and directories matching this glob (repeatable; later --exclude/--include win)")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->type_name("GLOB");
  cp->add_option_function<std::string>(
        "--include", [a](const std::string& p) { a->filters.push_back({true, p}); },
        "Copy files and directories matching this glob even when an earlier --exclude matched")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->type_name("GLOB");
  cp->add_option("-j,--jobs", a->jobs, "Files copied in parallel")->check(CLI::Range(1, 128))->capture_default_str();
  cp->add_flag("-q,--quiet", a->quiet, "No progress bar");
  on_run(cp, ctx, [&ctx, a] { return run_cp(ctx, *a); });
}

void add_ls(CLI::App& parent, Context& ctx) {
  auto a = std::make_shared<LsArgs>();
  auto* ls = parent.add_subcommand("ls", "List a storage directory (default: your project's root)");
  ls->set_help_flag("--help", "Print this help message and exit");
  ls->add_option("PATHS", a->paths, "storage: URIs");
  ls->add_flag("-l", a->long_format, "Long listing: type, your permission, size, modification time, name");
  ls->add_flag("-h,--human-readable", a->human, "Sizes as 1.5K, 12M, 3.0G");
  ls->add_flag("-a,--all", a->all, "Show names starting with '.'");
  on_run(ls, ctx, [&ctx, a] { return run_ls(ctx, *a); });
}

void add_mkdir(CLI::App& parent, Context& ctx) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto parents = std::make_shared<bool>(false);
  auto* mk = parent.add_subcommand("mkdir", "Create storage directories");
  mk->add_option("PATHS", *paths, "storage: URIs")->required();
  mk->add_flag("-p,--parents", *parents, "Create missing parents; an existing directory is no error");
  on_run(mk, ctx, [&ctx, paths, parents] { return run_mkdir(ctx, *paths, *parents); });
}

void add_mv(CLI::App& parent, Context& ctx) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto no_target = std::make_shared<bool>(false);
  auto* mv = parent.add_subcommand("mv", "Move or rename files and directories in storage");
  mv->add_option("PATHS", *paths, "SOURCE... DESTINATION (storage: URIs)")->required()->expected(2, -1);
  mv->add_flag("-T,--no-target-directory", *no_target, "Treat DESTINATION as the new name, never as a directory to move into");
  on_run(mv, ctx, [&ctx, paths, no_target] { return run_mv(ctx, *paths, *no_target); });
}

void add_rm(CLI::App& parent, Context& ctx) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto recursive = std::make_shared<bool>(false);
  auto* rm = parent.add_subcommand("rm", "Remove files (and directories with -r) from storage");
  rm->add_option("PATHS", *paths, "storage: URIs")->required();
  rm->add_flag("-r,--recursive", *recursive, "Remove directories and everything in them");
  on_run(rm, ctx, [&ctx, paths, recursive] { return run_rm(ctx, *paths, *recursive); });
}

void add_tree(CLI::App& parent, Context& ctx) {
  auto a = std::make_shared<TreeArgs>();
  auto* tree = parent.add_subcommand("tree", "Show a storage directory and everything below it");
  tree->set_help_flag("--help", "Print this help message and exit");
  tree->add_option("PATH", a->path, "A storage: URI (default: your project's root)");
  tree->add_flag("-h,--human-readable", a->human, "Show sizes as 1.5K, 12M, 3.0G");
  tree->add_flag("-s,--size", a->sizes, "Show sizes in bytes");
  tree->add_flag("-a,--all", a->all, "Show names starting with '.'");
  on_run(tree, ctx, [&ctx, a] { return run_tree(ctx, *a); });
}

void add_df(CLI::App& parent, Context& ctx) {
  auto path = std::make_shared<std::string>("storage:");
  auto* df = parent.add_subcommand("df", "Show free space and your project's storage use and quota");
  df->add_option("PATH", *path, "A storage: URI naming the project (default: yours)");
  on_run(df, ctx, [&ctx, path] { return run_df(ctx, *path); });
}

}  // namespace

void register_storage_commands(CLI::App& app, Context& ctx) {
  // The everyday verbs at the top level, as in the reference CLI…
  add_cp(app, ctx);
  add_ls(app, ctx);
  add_mkdir(app, ctx);
  add_mv(app, ctx);
  add_rm(app, ctx);
  // …and all of them under `neuro storage`.
  auto* storage = app.add_subcommand("storage", "Copy, list, move and remove files in storage (cp, ls, mkdir, mv, rm also at the top level)");
  storage->require_subcommand(1);
  add_cp(*storage, ctx);
  add_ls(*storage, ctx);
  add_mkdir(*storage, ctx);
  add_mv(*storage, ctx);
  add_rm(*storage, ctx);
  add_tree(*storage, ctx);
  add_df(*storage, ctx);
}

}  // namespace neurod::cli

// The storage routes (README.md here): /api/v1/storage/{project}/{path…} with the
// reference's operations chosen by ?op= or a bare query key.
#include "modules/auth/authorizer.hpp"
#include "modules/storage/accounting.hpp"
#include "modules/storage/module.hpp"
#include "modules/storage/upload.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <ctime>

namespace neurod::storage {

namespace {

using nlohmann::json;
using http::Method;
using http::Request;
using http::Response;

constexpr std::array<std::string_view, 11> kOps{"CREATE",  "MKDIRS",        "WRITE",        "OPEN",
                                                "LISTSTATUS", "GETFILESTATUS", "GETDISKUSAGE", "DELETE",
                                                "RENAME",  "UPLOADSTATUS",  "HEAD"};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The operation of a request: ?op=NAME or a bare ?NAME; default per method.
std::string operation(const Request& req, std::string_view fallback) {
  std::vector<std::string> named;
  for (const auto& [k, v] : req.query) {
    if (k == "op") {
      named.push_back(upper(v));
    } else if (v.empty()) {
      auto u = upper(k);
      for (auto op : kOps)
        if (u == op) named.push_back(u);
    }
  }
  if (named.size() > 1)
    throw Error(errc::bad_request, "ambiguous operations: name one of them with ?op=NAME").with_code("ambiguous_operation");
  if (named.empty()) return std::string(fallback);
  return named.front();
}

[[noreturn]] void unknown_op(const std::string& op, std::string_view method, std::string_view valid) {
  throw Error(errc::bad_request,
              "unknown operation " + op + " for " + std::string(method) + "; valid: " + std::string(valid))
      .with_code("unknown_operation");
}

bool flag(const Request& req, std::string_view name, bool fallback) {
  auto v = req.query_param(name);
  if (!v) return fallback;
  if (*v == "true" || *v == "1" || v->empty()) return true;
  if (*v == "false" || *v == "0") return false;
  throw Error(errc::bad_request, std::string(name) + " must be true or false, not \"" + *v + "\"")
      .with_code("invalid_parameter");
}

std::string http_date(std::int64_t seconds) {
  std::time_t t = seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "bytes A-B/TOTAL" or "bytes A-B/*".
struct ContentRange {
  std::uint64_t first = 0, last = 0;
  std::optional<std::uint64_t> total;
};
ContentRange parse_content_range(std::string_view h) {
  auto bad = [&] {
    return Error(errc::bad_request,
                 "Content-Range must be \"bytes FIRST-LAST/TOTAL\" (or /*), not \"" + std::string(h) + "\"")
        .with_code("invalid_content_range");
  };
  if (!h.starts_with("bytes ")) throw bad();
  h.remove_prefix(6);
  auto dash = h.find('-'), slash = h.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) throw bad();
  ContentRange r;
  if (!parse_u64(h.substr(0, dash), r.first) || !parse_u64(h.substr(dash + 1, slash - dash - 1), r.last) ||
      r.last < r.first)
    throw bad();
  auto t = h.substr(slash + 1);
  if (t != "*") {
    std::uint64_t total = 0;
    if (!parse_u64(t, total) || r.last >= total) throw bad();
    r.total = total;
  }
  return r;
}

std::optional<std::uint64_t> content_length(const Request& req) {
  auto v = req.header("Content-Length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  if (!parse_u64(*v, n)) return std::nullopt;
  return n;
}

// A PUT that takes no body (MKDIRS).
class NoBody : public http::BodySink {
 public:
  void write(const char*, std::size_t size) override {
    if (size) throw Error(errc::bad_request, "MKDIRS takes no request body").with_code("unexpected_body");
  }
};

}  // namespace

// ---- permissions -----------------------------------------------------------------------

auth::Action Module::check(const http::Principal& who, const StoragePath& p, auth::Action need) const {
  auto uri = p.uri(cluster_);
  auto eff = authz_->effective(who, uri);
  if (eff >= need) return eff;
  if (eff < auth::Action::list)  // cannot know it exists: the same answer as a missing path
    fail(ENOENT, p, "");
  throw Error(errc::forbidden,
              "you have " + std::string(auth::to_string(eff)) + " on " + uri + "; this needs " +
                  std::string(auth::to_string(need)),
              nlohmann::json{{"missing", json::array({{{"uri", uri}, {"action", auth::to_string(need)}}})}})
      .with_code("forbidden");
}

json Module::file_status(const StoragePath& p, const std::string& name, const struct stat& st,
                         auth::Action permission) const {
  return json{{"path", name},
              {"length", S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0},
              {"modificationTime", static_cast<std::int64_t>(st.st_mtime)},
              {"permission", auth::to_string(permission)},
              {"type", type_name(st)}};
  (void)p;
}

// ---- routes ----------------------------------------------------------------------------

void Module::add_routes(http::Router& r) {
  const std::string pattern = "/api/v1/storage/{path...}";

  http::RouteOptions get_opts;
  get_opts.body = http::BodyKind::none;
  get_opts.summary = "Read storage: OPEN (Range), LISTSTATUS (JSON or ndjson), GETFILESTATUS, GETDISKUSAGE, UPLOADSTATUS";
  r.get(pattern, [this](Request& req) { return handle_get(req); }, get_opts);

  http::RouteOptions put_opts;
  put_opts.body = http::BodyKind::sink;
  put_opts.body_limit = max_file_size_;
  put_opts.timeout = std::chrono::hours(24);
  put_opts.sink = [this](Request& req) -> std::shared_ptr<http::BodySink> { return make_put_sink(req); };
  put_opts.summary = "Write storage: CREATE (atomic; resumable with Content-Range), MKDIRS";
  r.put(pattern, [this](Request& req) { return handle_put(req); }, put_opts);

  http::RouteOptions patch_opts;
  patch_opts.body = http::BodyKind::sink;
  patch_opts.body_limit = max_file_size_;
  patch_opts.timeout = std::chrono::hours(24);
  patch_opts.sink = [this](Request& req) -> std::shared_ptr<http::BodySink> { return make_patch_sink(req); };
  patch_opts.summary = "WRITE: bytes at an offset of an existing file (Content-Range)";
  r.patch(pattern, [this](Request& req) { return handle_patch(req); }, patch_opts);

  http::RouteOptions del_opts;
  del_opts.body = http::BodyKind::none;
  del_opts.summary = "DELETE a file or a directory (recursive by default)";
  r.del(pattern, [this](Request& req) { return handle_delete(req); }, del_opts);

  http::RouteOptions post_opts;
  post_opts.body = http::BodyKind::none;
  post_opts.summary = "RENAME (destination=/PROJECT/path or a path relative to the parent)";
  r.post(pattern, [this](Request& req) { return handle_post(req); }, post_opts);
}

Response Module::handle_get(Request& req) {
  auto p = parse_path(req.param("path"));
  req.resource = p.uri(cluster_);
  bool head = req.method == Method::head;
  auto op = operation(req, "OPEN");
  if (head) op = "OPEN";

  if (op == "OPEN") {
    auto eff = check(req.principal, p, auth::Action::read);
    Fd fd = tree_->open(p, O_RDONLY);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(errno, p, "");
    if (S_ISDIR(st.st_mode))
      throw Error(errc::bad_request, "storage:" + p.display() + " is a directory; list it with ?op=LISTSTATUS",
                  json{{"errno", "EISDIR"}})
          .with_code("is_a_directory");
    auto res = Response::from_fd(fd.release());
    res.headers.set("X-File-Type", type_name(st));
    res.headers.set("X-File-Permission", std::string(auth::to_string(eff)));
    res.headers.set("X-File-Length", std::to_string(st.st_size));
    res.headers.set("Last-Modified", http_date(st.st_mtime));
    return res;
  }
  if (op == "GETFILESTATUS") {
    auto eff = check(req.principal, p, auth::Action::list);
    struct stat st = p.is_project_root() && !tree_->project_dir(p.project, false) ? project_root_stat()
                                                                                 : tree_->stat(p);
    return Response::json({{"FileStatus", file_status(p, p.display(), st, eff)}});
  }
  if (op == "LISTSTATUS") return list(req, p);
  if (op == "GETDISKUSAGE") {
    check(req.principal, p, auth::Action::list);
    struct statvfs vfs {};
    if (::statvfs(tree_->root().c_str(), &vfs) != 0) fail(errno, p, "");
    std::uint64_t total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    std::uint64_t free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    std::uint64_t used = total - static_cast<std::uint64_t>(vfs.f_bfree) * vfs.f_frsize;
    auto limit = accounting_->limit(p.project);
    return Response::json({{"total", total},
                           {"used", used},
                           {"free", free},
                           {"project",
                            {{"name", p.project},
                             {"used", accounting_->used(p.project)},
                             {"limit", limit ? json(*limit) : json(nullptr)}}}});
  }
  if (op == "UPLOADSTATUS") {
    check(req.principal, p, auth::Action::write);
    auto info = find_partial(*tree_, p);
    if (!info)
      throw Error(errc::not_found, "no interrupted upload of storage:" + p.display() + " is kept")
          .with_code("no_partial_upload");
    return Response::json({{"offset", info->size}, {"length", info->total}});
  }
  unknown_op(op, "GET", "OPEN, LISTSTATUS, GETFILESTATUS, GETDISKUSAGE, UPLOADSTATUS");
}

struct stat Module::project_root_stat() const {
  struct stat st {};
  st.st_mode = S_IFDIR | 0755;
  st.st_mtime = 0;
  return st;
}

Response Module::list(Request& req, const StoragePath& p) {
  auto eff = check(req.principal, p, auth::Action::list);
  std::vector<Entry> entries;
  Fd dir;
  if (p.is_project_root()) {
    dir = tree_->project_dir(p.project, false);
    if (!dir) {  // the project's directory appears with its first write
      if (req.header("Accept").value_or("").find("application/x-ndjson") != std::string_view::npos)
        return Response::text("", 200, "application/x-ndjson");
      return Response::json({{"FileStatuses", {{"FileStatus", json::array()}}}});
    }
  } else {
    dir = tree_->open(p, O_PATH);
  }
  struct stat st {};
  ::fstat(dir.get(), &st);
  auto who = req.principal;
  if (!S_ISDIR(st.st_mode)) {  // a file lists as itself
    entries.push_back({p.leaf(), st});
  } else {
    Fd rd(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!rd) fail(errno, p, "cannot list");
    entries = tree_->list(rd.get());
  }
  bool inherit = eff >= auth::Action::read;  // a readable directory's entries are readable unless denied below
  auto status_of = [this, p, who, inherit, eff, is_dir = S_ISDIR(st.st_mode)](const Entry& e) -> std::optional<json> {
    StoragePath child = p;
    if (is_dir) child.segments.push_back(e.name);
    auto perm = is_dir ? authz_->effective(who, child.uri(cluster_)) : eff;
    if (perm < auth::Action::list) return std::nullopt;
    (void)inherit;
    return file_status(child, e.name, e.st, perm);
  };
  if (req.header("Accept").value_or("").find("application/x-ndjson") != std::string_view::npos) {
    auto shared = std::make_shared<std::vector<Entry>>(std::move(entries));
    return Response::stream("application/x-ndjson", [shared, status_of](http::StreamWriter& w) {
      std::string batch;
      for (const auto& e : *shared) {
        auto s = status_of(e);
        if (!s) continue;
        batch += json{{"FileStatus", *s}}.dump();
        batch += "\n";
        if (batch.size() > 64 * 1024) {
          if (!w.write(std::move(batch))) return;
          batch.clear();
        }
      }
      if (!batch.empty()) w.write(std::move(batch));
    });
  }
  json list = json::array();
  for (const auto& e : entries)
    if (auto s = status_of(e)) list.push_back(std::move(*s));
  return Response::json({{"FileStatuses", {{"FileStatus", std::move(list)}}}});
}

std::shared_ptr<http::BodySink> Module::make_put_sink(Request& req) {
  auto p = parse_path(req.param("path"));
  req.resource = p.uri(cluster_);
  auto op = operation(req, "CREATE");
  check(req.principal, p, auth::Action::write);
  if (op == "MKDIRS") return std::make_shared<NoBody>();
  if (op != "CREATE") unknown_op(op, "PUT", "CREATE, MKDIRS");
  if (auto cr = req.header("Content-Range")) {
    auto r = parse_content_range(*cr);
    if (!r.total)
      throw Error(errc::bad_request, "a resumable upload's Content-Range needs the total size (bytes A-B/TOTAL)")
          .with_code("invalid_content_range");
    auto len = content_length(req);
    if (len && *len != r.last - r.first + 1)
      throw Error(errc::bad_request, "Content-Length " + std::to_string(*len) + " does not match Content-Range " +
                                         std::string(*cr))
          .with_code("invalid_content_range");
    if (*r.total > max_file_size_)
      throw Error(errc::payload_too_large, "the file is " + std::to_string(*r.total) +
                                               " bytes; the largest file storage takes is " +
                                               std::to_string(max_file_size_) + " bytes");
    return Upload::resume(*tree_, *accounting_, p, r.first, r.last, *r.total);
  }
  return Upload::create(*tree_, *accounting_, p, content_length(req));
}

Response Module::handle_put(Request& req) {
  auto p = parse_path(req.param("path"));
  auto op = operation(req, "CREATE");
  if (op == "MKDIRS") {
    bool parents = flag(req, "parents", true);
    bool exist_ok = flag(req, "exist_ok", true);
    if (!parents && !p.is_project_root()) {
      struct stat st {};
      if (p.segments.size() > 1 && !tree_->lstat(p.parent(), st)) fail(ENOENT, p.parent(), "cannot create the directory");
    }
    bool made = tree_->mkdirs(p);
    if (!made && !exist_ok) fail(EEXIST, p, "cannot create the directory");
    auto eff = authz_->effective(req.principal, p.uri(cluster_));
    return Response::json({{"FileStatus", file_status(p, p.display(), tree_->stat(p), eff)}}, 201);
  }
  auto* up = dynamic_cast<Upload*>(req.sink.get());
  if (!up) throw Error(errc::internal, "storage upload without its sink");
  auto result = up->finish();
  if (!result.complete) return Response::json({{"offset", result.offset}, {"length", result.total}}, 202);
  auto eff = authz_->effective(req.principal, p.uri(cluster_));
  return Response::json({{"FileStatus", file_status(p, p.display(), tree_->stat(p), eff)}}, 201);
}

std::shared_ptr<http::BodySink> Module::make_patch_sink(Request& req) {
  auto p = parse_path(req.param("path"));
  req.resource = p.uri(cluster_);
  auto op = operation(req, "WRITE");
  if (op != "WRITE") unknown_op(op, "PATCH", "WRITE");
  check(req.principal, p, auth::Action::write);
  for (const auto& [k, v] : req.headers.items())
    if (k.size() > 3 && (k[0] == 'I' || k[0] == 'i') && (k[1] == 'F' || k[1] == 'f') && k[2] == '-')
      throw Error(errc::bad_request, "conditional headers (" + k + ") are not supported by WRITE")
          .with_code("conditional_not_supported");
  auto ct = req.header("Content-Type").value_or("");
  if (!ct.starts_with("application/octet-stream"))
    throw Error(errc::unsupported_media_type, "WRITE needs Content-Type: application/octet-stream")
        .with_code("unsupported_media_type");
  auto cr = req.header("Content-Range");
  if (!cr)
    throw Error(errc::bad_request, "WRITE needs Content-Range: bytes FIRST-LAST/* saying where the bytes go")
        .with_code("invalid_content_range");
  auto r = parse_content_range(*cr);
  auto len = content_length(req);
  if (len && *len != r.last - r.first + 1)
    throw Error(errc::bad_request,
                "Content-Length " + std::to_string(*len) + " does not match Content-Range " + std::string(*cr))
        .with_code("invalid_content_range");
  if (r.last + 1 > max_file_size_)
    throw Error(errc::payload_too_large, "the write would make the file larger than the largest file storage takes (" +
                                             std::to_string(max_file_size_) + " bytes)");
  return Upload::patch(*tree_, *accounting_, p, r.first, r.last - r.first + 1);
}

Response Module::handle_patch(Request& req) {
  auto p = parse_path(req.param("path"));
  auto* up = dynamic_cast<Upload*>(req.sink.get());
  if (!up) throw Error(errc::internal, "storage write without its sink");
  up->finish();
  auto eff = authz_->effective(req.principal, p.uri(cluster_));
  return Response::json({{"FileStatus", file_status(p, p.display(), tree_->stat(p), eff)}});
}

Response Module::handle_delete(Request& req) {
  auto p = parse_path(req.param("path"));
  req.resource = p.uri(cluster_);
  auto op = operation(req, "DELETE");
  if (op != "DELETE") unknown_op(op, "DELETE", "DELETE");
  check(req.principal, p, auth::Action::write);
  bool recursive = flag(req, "recursive", true);
  struct stat st {};
  if (!tree_->lstat(p, st)) {
    if (p.is_project_root()) return Response::no_content();  // nothing was ever written
    fail(ENOENT, p, "cannot delete");
  }
  if (S_ISDIR(st.st_mode) && !recursive) {
    // Only an empty directory goes without recursive=true.
    Fd dir = tree_->open(p, O_PATH | O_DIRECTORY);
    Fd rd(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (rd && !tree_->list(rd.get()).empty()) fail(ENOTEMPTY, p, "cannot delete (pass recursive=true)");
  }
  auto bytes = tree_->remove(p, true);
  accounting_->release(p.project, bytes);
  return Response::no_content();
}

Response Module::handle_post(Request& req) {
  auto p = parse_path(req.param("path"));
  req.resource = p.uri(cluster_);
  auto op = operation(req, "RENAME");
  if (op != "RENAME") unknown_op(op, "POST", "RENAME");
  auto dest_text = req.query_param("destination");
  if (!dest_text || dest_text->empty())
    throw Error(errc::bad_request, "RENAME needs destination=/PROJECT/path (or a path relative to the source's folder)")
        .with_code("missing_destination");
  StoragePath dst = dest_text->front() == '/' ? parse_path(*dest_text)
                                              : parse_path(p.parent().display() + "/" + *dest_text);
  check(req.principal, p, auth::Action::write);
  check(req.principal, dst, auth::Action::write);
  if (p.is_project_root() || dst.is_project_root())
    throw Error(errc::bad_request, "a project's own storage directory cannot be renamed or replaced",
                json{{"errno", "EINVAL"}})
        .with_code("invalid_operation");
  struct stat st {};
  if (!tree_->lstat(p, st)) fail(ENOENT, p, "cannot rename");
  Fd sp = tree_->open_parent(p, false);
  Fd dp = tree_->open_parent(dst, false);
  std::uint64_t moved = 0;
  if (p.project != dst.project) {  // the bytes change project: the destination's quota must take them
    if (S_ISREG(st.st_mode)) {
      moved = static_cast<std::uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      Fd d(::openat(sp.get(), p.leaf().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (d) moved = tree_->usage(d.get());
    }
    accounting_->reserve(dst.project, moved);
  }
  struct stat old {};
  bool replaced = ::fstatat(dp.get(), dst.leaf().c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode);
  if (::renameat(sp.get(), p.leaf().c_str(), dp.get(), dst.leaf().c_str()) != 0) {
    int err = errno;
    if (moved) accounting_->release(dst.project, moved);
    fail(err, err == ENOENT ? p : dst, "cannot rename storage:" + p.display());
  }
  if (replaced) accounting_->release(dst.project, static_cast<std::uint64_t>(old.st_size));
  if (moved) accounting_->release(p.project, moved);
  return Response::no_content();
}

}  // namespace neurod::storage

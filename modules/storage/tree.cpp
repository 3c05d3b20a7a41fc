#include "modules/storage/tree.hpp"

#include "core/errors.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace neurod::storage {

namespace {

constexpr std::size_t kMaxSegment = 255;
constexpr std::size_t kMaxPath = 4096;

int openat2_beneath(int dirfd, const char* rel, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags) | O_CLOEXEC;
  if (flags & (O_CREAT | O_TMPFILE)) how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long r = ::syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    if (r >= 0) return static_cast<int>(r);
    if (errno != EAGAIN && errno != EINTR) return -1;
  }
}

std::string join(const std::vector<std::string>& segs, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += segs[i];
  }
  return out.empty() ? "." : out;
}

}  // namespace

std::string StoragePath::rel() const { return join(segments, segments.size()); }

std::string StoragePath::display() const {
  std::string out = "/" + project;
  for (const auto& s : segments) out += "/" + s;
  return out;
}

std::string StoragePath::uri(std::string_view cluster) const {
  return "storage://" + std::string(cluster) + display();
}

StoragePath StoragePath::parent() const {
  StoragePath p = *this;
  if (!p.segments.empty()) p.segments.pop_back();
  return p;
}

StoragePath parse_path(std::string_view text) {
  auto bad = [&](const std::string& why) -> Error {
    return Error(errc::bad_request, "invalid storage path: " + why).with_code("invalid_path");
  };
  if (text.size() > kMaxPath) throw bad("it is longer than 4096 bytes");
  while (!text.empty() && text.front() == '/') text.remove_prefix(1);
  if (!text.empty() && text.back() == '/') text.remove_suffix(1);
  if (text.empty()) throw bad("it names no project (use /api/v1/storage/PROJECT/PATH)");
  StoragePath p;
  std::size_t i = 0;
  bool first = true;
  while (i <= text.size()) {
    auto slash = text.find('/', i);
    if (slash == std::string_view::npos) slash = text.size();
    auto seg = text.substr(i, slash - i);
    if (seg.empty()) throw bad("it has an empty segment (\"//\")");
    if (seg == "." || seg == "..") throw bad("\"" + std::string(seg) + "\" segments are not allowed");
    if (seg.size() > kMaxSegment) throw bad("a name is longer than 255 bytes");
    for (unsigned char c : seg)
      if (c < 0x20 || c == 0x7f) throw bad("it contains a NUL or control character");
    if (first) {
      if (seg.front() == '.') throw bad("project names do not start with '.'");
      p.project = std::string(seg);
      first = false;
    } else {
      p.segments.emplace_back(seg);
    }
    i = slash + 1;
  }
  return p;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

void fail(int err, const StoragePath& p, std::string_view what) {
  std::string path = "storage:" + p.display();
  std::string verb = what.empty() ? "" : std::string(what) + ": ";
  auto e = [&](errc code, std::string_view name, const std::string& msg) {
    return Error(code, verb + msg, nlohmann::json{{"errno", name}});
  };
  switch (err) {
    case ENOENT:
      throw e(errc::not_found, "ENOENT", path + " does not exist").with_code("not_found");
    case EEXIST:
      throw e(errc::bad_request, "EEXIST", path + " already exists").with_code("file_exists");
    case ENOTDIR:
      throw e(errc::bad_request, "ENOTDIR", "a part of " + path + " is a file, not a directory").with_code("not_a_directory");
    case EISDIR:
      throw e(errc::bad_request, "EISDIR", path + " is a directory").with_code("is_a_directory");
    case ENOTEMPTY:
      throw e(errc::bad_request, "ENOTEMPTY", path + " is a directory that is not empty").with_code("directory_not_empty");
    case EXDEV:
      throw e(errc::bad_request, "EXDEV", path + " leads outside the project's storage (a symbolic link?)")
          .with_code("path_escapes");
    case ELOOP:
      throw e(errc::bad_request, "ELOOP", path + " has too many levels of symbolic links").with_code("path_escapes");
    case EINVAL:
      throw e(errc::bad_request, "EINVAL", "invalid operation on " + path + " (a directory into itself?)")
          .with_code("invalid_operation");
    case ENAMETOOLONG:
      throw e(errc::bad_request, "ENAMETOOLONG", path + " is too long").with_code("invalid_path");
    case ENOSPC:
    case EDQUOT:
      throw e(errc::insufficient_storage, "ENOSPC", "no space left on the storage volume").with_code("no_space");
    case ETXTBSY:
    case EBUSY:
      throw e(errc::conflict, "EBUSY", path + " is busy").with_code("busy");
    default:
      throw Error(errc::internal, verb + path + ": " + std::strerror(err), nlohmann::json{{"errno", "EIO"}});
  }
}

std::string type_name(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "FILE";
  if (S_ISDIR(st.st_mode)) return "DIRECTORY";
  if (S_ISLNK(st.st_mode)) return "SYMLINK";
  return "OTHER";
}

Tree::Tree(std::filesystem::path root) : root_(std::move(root)) {
  std::error_code ec;
  std::filesystem::create_directories(root_ / ".neurod" / "tmp", ec);
  std::filesystem::create_directories(root_ / ".neurod" / "partial", ec);
  root_fd_ = Fd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd_) throw std::runtime_error("storage root " + root_.string() + ": " + std::strerror(errno));
  root_ = path_of(root_fd_.get());
  tmp_fd_ = Fd(openat2_beneath(root_fd_.get(), ".neurod/tmp", O_RDONLY | O_DIRECTORY, 0));
  if (!tmp_fd_ && errno == ENOSYS)
    throw std::runtime_error("the storage module needs openat2(2), Linux 5.6 or later");
  if (!tmp_fd_) throw std::runtime_error("storage root " + root_.string() + "/.neurod/tmp: " + std::strerror(errno));
  partial_fd_ = Fd(openat2_beneath(root_fd_.get(), ".neurod/partial", O_RDONLY | O_DIRECTORY, 0));
  if (!partial_fd_)
    throw std::runtime_error("storage root " + root_.string() + "/.neurod/partial: " + std::strerror(errno));
}

Fd Tree::project_dir(const std::string& project, bool create) const {
  int fd = openat2_beneath(root_fd_.get(), project.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  if (fd < 0 && errno == ENOENT && create) {
    if (::mkdirat(root_fd_.get(), project.c_str(), 0755) != 0 && errno != EEXIST) return Fd();
    fd = openat2_beneath(root_fd_.get(), project.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  }
  return Fd(fd);
}

int Tree::open_raw(const StoragePath& p, int flags, mode_t mode) const {
  Fd dir = project_dir(p.project, (flags & O_CREAT) != 0);
  if (!dir) {
    if (errno == 0) errno = ENOENT;
    return -1;
  }
  if (p.is_project_root()) {
    // The project directory itself (only directory-style opens make sense here).
    return openat2_beneath(dir.get(), ".", flags & ~(O_CREAT | O_EXCL | O_TRUNC), 0);
  }
  return openat2_beneath(dir.get(), p.rel().c_str(), flags, mode);
}

Fd Tree::open(const StoragePath& p, int flags, mode_t mode) const {
  int fd = open_raw(p, flags, mode);
  if (fd < 0) fail(errno, p, "");
  return Fd(fd);
}

Fd Tree::open_parent(const StoragePath& p, bool create_parents) const {
  Fd dir = project_dir(p.project, create_parents);
  if (!dir) fail(ENOENT, p.parent(), "");
  auto n = p.segments.size();
  if (n <= 1) {
    int fd = openat2_beneath(dir.get(), ".", O_PATH | O_DIRECTORY, 0);
    if (fd < 0) fail(errno, p.parent(), "");
    return Fd(fd);
  }
  auto rel = join(p.segments, n - 1);
  int fd = openat2_beneath(dir.get(), rel.c_str(), O_PATH | O_DIRECTORY, 0);
  if (fd >= 0) return Fd(fd);
  if (errno != ENOENT || !create_parents) fail(errno, p.parent(), "");
  // Make the missing parents one by one, each through the descriptor of the one before.
  Fd cur(openat2_beneath(dir.get(), ".", O_PATH | O_DIRECTORY, 0));
  for (std::size_t i = 0; i + 1 < n; ++i) {
    auto prefix = join(p.segments, i + 1);
    int next = openat2_beneath(dir.get(), prefix.c_str(), O_PATH | O_DIRECTORY, 0);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(cur.get(), p.segments[i].c_str(), 0755) != 0 && errno != EEXIST) {
        StoragePath q{p.project, {p.segments.begin(), p.segments.begin() + static_cast<long>(i + 1)}};
        fail(errno, q, "cannot create the directory");
      }
      next = openat2_beneath(dir.get(), prefix.c_str(), O_PATH | O_DIRECTORY, 0);
    }
    if (next < 0) {
      StoragePath q{p.project, {p.segments.begin(), p.segments.begin() + static_cast<long>(i + 1)}};
      fail(errno, q, "");
    }
    cur = Fd(next);
  }
  return cur;
}

bool Tree::mkdirs(const StoragePath& p) const {
  if (p.is_project_root()) {
    Fd dir = project_dir(p.project, true);
    if (!dir) fail(errno, p, "cannot create the directory");
    return true;
  }
  Fd parent = open_parent(p, true);
  if (::mkdirat(parent.get(), p.leaf().c_str(), 0755) == 0) return true;
  int err = errno;
  if (err == EEXIST) {
    struct stat st {};
    // An existing directory (or a symlink to one inside the project) is fine.
    int fd = open_raw(p, O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      ::close(fd);
      return false;
    }
    if (::fstatat(parent.get(), p.leaf().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
      fail(EEXIST, p, "cannot create the directory (a file is in the way)");
  }
  fail(err, p, "cannot create the directory");
}

struct stat Tree::stat(const StoragePath& p) const {
  Fd fd = open(p, O_PATH);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(errno, p, "");
  return st;
}

bool Tree::lstat(const StoragePath& p, struct stat& out) const {
  if (p.is_project_root()) {
    Fd dir = project_dir(p.project, false);
    return dir && ::fstat(dir.get(), &out) == 0;
  }
  int pf = -1;
  {
    Fd dir = project_dir(p.project, false);
    if (!dir) return false;
    auto rel = join(p.segments, p.segments.size() - 1);
    pf = openat2_beneath(dir.get(), rel.c_str(), O_PATH | O_DIRECTORY, 0);
  }
  if (pf < 0) {
    if (errno == ENOENT) return false;
    fail(errno, p.parent(), "");
  }
  Fd parent(pf);
  return ::fstatat(parent.get(), p.leaf().c_str(), &out, AT_SYMLINK_NOFOLLOW) == 0;
}

std::vector<Entry> Tree::list(int dirfd) const {
  std::vector<Entry> out;
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(errc::internal, std::string("cannot read the directory: ") + std::strerror(errno));
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    throw Error(errc::internal, std::string("cannot read the directory: ") + std::strerror(errno));
  }
  while (auto* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    Entry en;
    en.name = std::string(name);
    if (::fstatat(::dirfd(d), e->d_name, &en.st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    out.push_back(std::move(en));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

namespace {

// Removes everything in the directory `fd` (owned by the caller); returns file bytes.
std::uint64_t remove_all_in(int fd) {
  std::uint64_t bytes = 0;
  int dup = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return 0;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return 0;
  }
  std::vector<std::pair<std::string, bool>> names;
  while (auto* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) bytes += static_cast<std::uint64_t>(st.st_size);
    names.emplace_back(std::string(name), S_ISDIR(st.st_mode));
  }
  ::closedir(d);
  for (const auto& [name, is_dir] : names) {
    if (is_dir) {
      int sub = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        bytes += remove_all_in(sub);
        ::close(sub);
      }
      ::unlinkat(fd, name.c_str(), AT_REMOVEDIR);
    } else {
      ::unlinkat(fd, name.c_str(), 0);
    }
  }
  return bytes;
}

std::uint64_t usage_in(int fd) {
  std::uint64_t bytes = 0;
  int dup = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return 0;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return 0;
  }
  std::vector<std::string> dirs;
  while (auto* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) bytes += static_cast<std::uint64_t>(st.st_size);
    if (S_ISDIR(st.st_mode)) dirs.emplace_back(name);
  }
  ::closedir(d);
  for (const auto& name : dirs) {
    int sub = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) {
      bytes += usage_in(sub);
      ::close(sub);
    }
  }
  return bytes;
}

}  // namespace

std::uint64_t Tree::remove_children(int dirfd) const {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  auto n = remove_all_in(fd);
  ::close(fd);
  return n;
}

std::uint64_t Tree::usage(int dirfd) const {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  auto n = usage_in(fd);
  ::close(fd);
  return n;
}

std::uint64_t Tree::remove(const StoragePath& p, bool recursive) const {
  if (p.is_project_root()) {
    Fd dir = project_dir(p.project, false);
    if (!dir) fail(ENOENT, p, "cannot delete");
    if (!recursive) fail(ENOTEMPTY, p, "cannot delete");
    Fd rd(openat2_beneath(dir.get(), ".", O_RDONLY | O_DIRECTORY, 0));
    return remove_children(rd.get());
  }
  Fd parent = open_parent(p, false);
  struct stat st {};
  if (::fstatat(parent.get(), p.leaf().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail(errno, p, "cannot delete");
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent.get(), p.leaf().c_str(), 0) != 0) fail(errno, p, "cannot delete");
    return S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  }
  std::uint64_t bytes = 0;
  if (recursive) {
    int sub = ::openat(parent.get(), p.leaf().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) fail(errno, p, "cannot delete");
    bytes = remove_all_in(sub);
    ::close(sub);
  }
  if (::unlinkat(parent.get(), p.leaf().c_str(), AT_REMOVEDIR) != 0) fail(errno, p, "cannot delete");
  return bytes;
}

std::filesystem::path Tree::path_of(int fd) {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  if (ec) throw std::runtime_error("cannot resolve a descriptor's path: " + ec.message());
  return p;
}

}  // namespace neurod::storage

// Safe file system access under the storage root. Every path a user names is opened
// with openat2(RESOLVE_BENEATH) relative to the project's directory, so `..`, absolute
// symlinks and symlinks that lead out of the project fail in the kernel (EXDEV) instead
// of in a string check that a race could defeat. Leaves (create, mkdir, unlink, rename)
// are acted on through their parent's descriptor and never follow a final symlink.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::storage {

// A validated path in a project: "/project/a/b".
struct StoragePath {
  std::string project;
  std::vector<std::string> segments;  // empty: the project's own directory

  bool is_project_root() const { return segments.empty(); }
  std::string rel() const;      // "a/b", or "." for the project root
  std::string display() const;  // "/project/a/b"
  std::string uri(std::string_view cluster) const;  // storage://cluster/project/a/b
  StoragePath parent() const;
  const std::string& leaf() const { return segments.back(); }
};

// Parses "project/a/b" (the API path after /api/v1/storage/). Throws Error(bad_request,
// code invalid_path) for empty, ".", ".." segments, NUL or control bytes, a segment over
// 255 bytes or a path over 4096.
StoragePath parse_path(std::string_view text);

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Throws the storage error for errno `err` on `p`: Error with the matching status
// (ENOENT 404, EEXIST/ENOTDIR/EISDIR/ENOTEMPTY/EXDEV/EINVAL 400, ENOSPC 507, EACCES 500…)
// and "errno" in its details.
[[noreturn]] void fail(int err, const StoragePath& p, std::string_view what);

struct Entry {
  std::string name;
  struct stat st {};
};

std::string type_name(const struct stat& st);  // FILE, DIRECTORY, SYMLINK, OTHER

class Tree {
 public:
  // Opens (creating) the root, <root>/.neurod/tmp and <root>/.neurod/partial. Throws std::runtime_error when the root cannot
  // be used or the kernel lacks openat2 (Linux 5.6+).
  explicit Tree(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  int root_fd() const { return root_fd_.get(); }
  int tmp_fd() const { return tmp_fd_.get(); }
  int partial_fd() const { return partial_fd_.get(); }

  // The project's directory (O_PATH), created when `create`; an invalid Fd when it does
  // not exist and !create.
  Fd project_dir(const std::string& project, bool create) const;

  // openat2(RESOLVE_BENEATH) of p relative to its project's directory; -1 with errno
  // set on failure (ENOENT also when the project directory does not exist).
  int open_raw(const StoragePath& p, int flags, mode_t mode = 0) const;
  // open_raw or fail().
  Fd open(const StoragePath& p, int flags, mode_t mode = 0) const;
  // The directory that holds p's leaf (p must not be the project root), with missing
  // parents made (0755) when create_parents.
  Fd open_parent(const StoragePath& p, bool create_parents) const;
  // Makes p and its missing parents as directories. Returns false when it already was one.
  bool mkdirs(const StoragePath& p) const;
  // stat following symlinks inside the project (fails as fail() does).
  struct stat stat(const StoragePath& p) const;
  // lstat of p's leaf; false when it does not exist.
  bool lstat(const StoragePath& p, struct stat& out) const;
  // The entries of a directory descriptor (lstat of each), sorted by name; "." and ".."
  // left out. `each` is called in batches when given (for streaming huge directories).
  std::vector<Entry> list(int dirfd) const;
  // Removes p (a file, a symlink, or a directory with everything in it when recursive);
  // returns the bytes of the files removed.
  std::uint64_t remove(const StoragePath& p, bool recursive) const;
  // Removes everything inside the directory fd; returns the bytes removed.
  std::uint64_t remove_children(int dirfd) const;
  // The bytes of the regular files under a directory (not following symlinks).
  std::uint64_t usage(int dirfd) const;

  // The absolute host path behind an open descriptor (/proc/self/fd).
  static std::filesystem::path path_of(int fd);

 private:
  std::filesystem::path root_;
  Fd root_fd_, tmp_fd_, partial_fd_;
};

}  // namespace neurod::storage

#include "modules/executor/secret_files.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace neurod::executor {

namespace fs = std::filesystem;

namespace {

// "/a//b/" → "/a/b"; nullopt when not absolute, "/", or with "." or ".." segments.
std::optional<std::string> normal_target(const std::string& t) {
  if (t.empty() || t.front() != '/' || t.find('\0') != std::string::npos) return std::nullopt;
  std::string out;
  std::size_t pos = 0;
  while (pos < t.size()) {
    auto end = t.find('/', pos);
    if (end == std::string::npos) end = t.size();
    auto seg = std::string_view(t).substr(pos, end - pos);
    if (seg == "." || seg == "..") return std::nullopt;
    if (!seg.empty()) {
      out += '/';
      out += seg;
    }
    pos = end + 1;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// a lies strictly inside b (both normal).
bool inside(const std::string& a, const std::string& b) {
  return a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/';
}

std::string errno_text(int err) { return std::strerror(err); }

void make_private_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(errc::internal, fmt::format("cannot create {}: {}", dir.string(), errno_text(errno)));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(errc::internal, fmt::format("{} is not a directory", dir.string()));
  if (st.st_uid != ::geteuid())
    throw Error(errc::internal, fmt::format("{} belongs to another user (uid {})", dir.string(), st.st_uid));
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0)
    throw Error(errc::internal, fmt::format("cannot make {} private: {}", dir.string(), errno_text(errno)));
}

void write_file(const fs::path& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  if (fd < 0) throw Error(errc::internal, fmt::format("cannot create {}: {}", path.string(), errno_text(errno)));
  std::size_t done = 0;
  while (done < value.size()) {
    auto n = ::write(fd, value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      throw Error(errc::internal, fmt::format("cannot write {}: {}", path.string(), errno_text(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  // 0444 whatever the umask: the job may run as any user (the 0700 directory guards the host).
  int rc = ::fchmod(fd, 0444);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(errc::internal, fmt::format("cannot chmod {}: {}", path.string(), errno_text(err)));
}

}  // namespace

std::optional<std::string> check_targets(const LaunchSpec& spec) {
  struct Target {
    std::string path;
    bool secret;
  };
  std::vector<Target> targets;
  auto add = [&](const std::string& raw, bool secret) -> std::optional<std::string> {
    auto what = secret ? "secret file" : "mount";
    auto t = normal_target(raw);
    if (!t) return fmt::format("invalid {} target \"{}\": it must be an absolute path other than / without . or ..", what, raw);
    for (const auto& o : targets)
      if (o.path == *t) return fmt::format("two volumes are mounted at {}", *t);
    targets.push_back({*t, secret});
    return std::nullopt;
  };
  for (const auto& m : spec.mounts)
    if (auto bad = add(m.target, false)) return bad;
  for (const auto& f : spec.secret_files)
    if (auto bad = add(f.target, true)) return bad;
  for (const auto& s : targets) {
    if (!s.secret) continue;
    for (const auto& o : targets) {
      if (inside(s.path, o.path))
        return fmt::format("the secret file {} is inside the {} at {}: put it elsewhere", s.path,
                           o.secret ? "secret file" : "volume", o.path);
      if (inside(o.path, s.path)) return fmt::format("{} is inside the secret file {}", o.path, s.path);
    }
  }
  return std::nullopt;
}

std::optional<std::string> not_in_memory(const fs::path& dir) {
  auto p = fs::absolute(dir);
  struct statfs sf {};
  while (::statfs(p.c_str(), &sf) != 0) {
    if (!p.has_relative_path()) return fmt::format("cannot tell the file system of {}: {}", dir.string(), errno_text(errno));
    p = p.parent_path();
  }
  auto type = static_cast<unsigned long>(sf.f_type);
  if (type == TMPFS_MAGIC || type == RAMFS_MAGIC) return std::nullopt;
  return fmt::format("{} is not on tmpfs (file system type 0x{:x} at {})", dir.string(), type, p.string());
}

SecretFiles::SecretFiles(const fs::path& secrets_dir, const std::string& node_id)
    : root_(fs::absolute(secrets_dir) / (node_id.empty() ? "local" : node_id)) {}

SecretFiles::~SecretFiles() { ::rmdir(root_.c_str()); }

std::vector<Mount> SecretFiles::materialise(const std::string& job_id, const std::vector<SecretFile>& files) {
  std::vector<Mount> mounts;
  remove(job_id);
  if (files.empty()) return mounts;
  if (job_id.empty() || job_id.find('/') != std::string::npos || job_id.front() == '.')
    throw Error(errc::internal, "invalid job id for secret files");
  // The configured directory may be shared (or be /dev/shm itself): made 0700 when neurod
  // creates it, left as it is otherwise; this node's directory and below are always 0700.
  std::error_code ec;
  auto parent = root_.parent_path();
  if (!fs::is_directory(parent, ec)) {
    fs::create_directories(parent.parent_path(), ec);
    if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST)
      throw Error(errc::internal, fmt::format("cannot create {}: {}", parent.string(), errno_text(errno)));
  }
  make_private_dir(root_);
  auto dir = dir_of(job_id);
  make_private_dir(dir);
  try {
    for (std::size_t i = 0; i < files.size(); ++i) {
      auto path = dir / std::to_string(i);
      write_file(path, files[i].value);
      mounts.push_back({path.string(), files[i].target, true});
    }
  } catch (...) {
    remove(job_id);
    throw;
  }
  return mounts;
}

void SecretFiles::remove(const std::string& job_id) noexcept {
  if (job_id.empty() || job_id.find('/') != std::string::npos || job_id.front() == '.') return;
  std::error_code ec;
  fs::remove_all(dir_of(job_id), ec);
}

std::vector<std::string> SecretFiles::remove_except(const std::set<std::string>& keep) noexcept {
  std::vector<std::string> names, removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) names.push_back(entry.path().filename().string());
  for (const auto& name : names) {
    if (keep.count(name)) continue;
    std::error_code rm;
    fs::remove_all(root_ / name, rm);
    if (!rm) removed.push_back(name);
  }
  return removed;
}

}  // namespace neurod::executor

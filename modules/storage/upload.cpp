#include "modules/storage/upload.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "modules/storage/accounting.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <random>

namespace neurod::storage {

namespace {

constexpr std::uint64_t kReserveStep = 64ull << 20;    // chunked bodies reserve quota in steps
constexpr std::uint64_t kWritebackStep = 32ull << 20;  // start writeback early: a short final fsync
// Uploads at least this big leave a note beside their temp file, so that what they received
// survives a crash of neurod as a partial (smaller ones are cheaper to send again).
constexpr std::uint64_t kNoteThreshold = 8ull << 20;

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += d[p[i] >> 4];
    out += d[p[i] & 15];
  }
  return out;
}

std::string temp_name() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return "up-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rng() % 1000000007);
}

void write_all(int fd, const char* data, std::size_t size, std::uint64_t offset, const StoragePath& p) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno, p, "cannot write");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

// Writes <dir>/<name>.json atomically.
void write_note(int dir, const std::string& name, const PartialInfo& info) {
  nlohmann::json j{{"project", info.project}, {"path", info.path}, {"total", info.total}, {"updated_ms", now_ms()}};
  auto text = j.dump();
  auto tmp = name + ".json.tmp";
  int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) ::renameat(dir, tmp.c_str(), dir, (name + ".json").c_str());
}

void write_meta(const Tree& tree, const PartialInfo& info) { write_note(tree.partial_fd(), info.key, info); }

std::optional<nlohmann::json> read_note(int dir, const std::string& name) {
  int fd = ::openat(dir, (name + ".json").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<PartialInfo> read_partial(const Tree& tree, const std::string& key) {
  auto note = read_note(tree.partial_fd(), key);
  if (!note) return std::nullopt;
  try {
    const auto& j = *note;
    PartialInfo info;
    info.key = key;
    info.project = j.at("project").get<std::string>();
    info.path = j.at("path").get<std::string>();
    info.total = j.at("total").get<std::uint64_t>();
    info.updated_ms = j.value("updated_ms", std::int64_t{0});
    struct stat st {};
    if (::fstatat(tree.partial_fd(), key.c_str(), &st, 0) != 0) return std::nullopt;
    info.size = static_cast<std::uint64_t>(st.st_size);
    return info;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string partial_key(const StoragePath& p) {
  auto text = p.display();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

std::optional<PartialInfo> find_partial(const Tree& tree, const StoragePath& p) {
  auto info = read_partial(tree, partial_key(p));
  if (!info || info->path != p.display()) return std::nullopt;
  return info;
}

std::vector<PartialInfo> all_partials(const Tree& tree) {
  std::vector<PartialInfo> out;
  int fd = ::openat(tree.partial_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return out;
  }
  std::vector<std::string> keys;
  while (auto* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() > 5 && name.ends_with(".json")) keys.emplace_back(name.substr(0, name.size() - 5));
  }
  ::closedir(d);
  for (const auto& k : keys)
    if (auto info = read_partial(tree, k)) out.push_back(*info);
  return out;
}

void remove_partial(const Tree& tree, const std::string& key) {
  ::unlinkat(tree.partial_fd(), key.c_str(), 0);
  ::unlinkat(tree.partial_fd(), (key + ".json").c_str(), 0);
}

int recover_interrupted_uploads(const Tree& tree) {
  int kept = 0;
  std::vector<std::string> names;
  {
    int fd = ::openat(tree.tmp_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) ::close(fd);
      return 0;
    }
    while (auto* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.size() > 5 && name.ends_with(".json")) names.emplace_back(name.substr(0, name.size() - 5));
    }
    ::closedir(d);
  }
  for (const auto& name : names) {
    auto note = read_note(tree.tmp_fd(), name);
    struct stat st {};
    if (!note || ::fstatat(tree.tmp_fd(), name.c_str(), &st, 0) != 0 || st.st_size == 0) continue;
    try {
      auto p = parse_path(note->at("path").get<std::string>());
      PartialInfo info{partial_key(p), p.project, p.display(), note->at("total").get<std::uint64_t>(),
                       static_cast<std::uint64_t>(st.st_size), 0};
      if (info.size > info.total) continue;
      if (::renameat(tree.tmp_fd(), name.c_str(), tree.partial_fd(), info.key.c_str()) != 0) continue;
      write_meta(tree, info);
      ++kept;
      spdlog::info("storage: kept {} of {} bytes of the upload of {} that was interrupted; `neuro cp --continue` "
                   "resumes it",
                   info.size, info.total, info.path);
    } catch (const std::exception&) {
    }
  }
  tree.remove_children(tree.tmp_fd());  // the rest: never visible, now garbage
  return kept;
}

Upload::Upload(const Tree& tree, Accounting& acct, StoragePath p, Mode mode)
    : tree_(tree), acct_(acct), path_(std::move(p)), mode_(mode) {}

Upload::~Upload() {
  if (!done_) aborted();
}

namespace {
// Fails early when the destination cannot take a file: it is a directory, or a part of
// its parent path is a file.
// Returns the size of the regular file there now (0: none).
std::uint64_t check_destination(const Tree& tree, const StoragePath& p) {
  if (p.is_project_root()) fail(EISDIR, p, "cannot write a file");
  int fd = tree.open_raw(p, O_PATH);
  if (fd >= 0) {
    struct stat st {};
    ::fstat(fd, &st);
    ::close(fd);
    if (S_ISDIR(st.st_mode)) fail(EISDIR, p, "cannot write a file");
    return S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  }
  if (errno == ENOENT) return 0;  // the file (or some parents) will be made
  fail(errno, p, "cannot write a file");
}
}  // namespace

std::shared_ptr<Upload> Upload::create(const Tree& tree, Accounting& acct, StoragePath p,
                                       std::optional<std::uint64_t> declared) {
  auto old = check_destination(tree, p);
  std::shared_ptr<Upload> u(new Upload(tree, acct, std::move(p), Mode::create));
  u->declared_ = declared;
  u->credit_ = old;  // replacing a file needs quota only for the difference
  if (declared && *declared > old) {
    acct.reserve(u->path_.project, *declared - old);
    u->reserved_ = *declared - old;
  }
  u->tmp_name_ = temp_name();
  int fd = ::openat(tree.tmp_fd(), u->tmp_name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    u->tmp_name_.clear();
    u->done_ = true;
    acct.release(u->path_.project, u->reserved_);
    fail(err, u->path_, "cannot start the upload");
  }
  u->fd_ = Fd(fd);
  if (declared && *declared >= kNoteThreshold)
    write_note(tree.tmp_fd(), u->tmp_name_, {"", u->path_.project, u->path_.display(), *declared, 0, 0});
  return u;
}

std::shared_ptr<Upload> Upload::resume(const Tree& tree, Accounting& acct, StoragePath p, std::uint64_t first,
                                       std::uint64_t last, std::uint64_t total) {
  check_destination(tree, p);
  std::shared_ptr<Upload> u(new Upload(tree, acct, std::move(p), Mode::resume));
  u->done_ = true;  // nothing to clean until the partial is open and locked
  u->key_ = partial_key(u->path_);
  auto existing = find_partial(tree, u->path_);
  int fd = ::openat(tree.partial_fd(), u->key_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(errno, u->path_, "cannot resume the upload");
  u->fd_ = Fd(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw Error(errc::conflict, "another upload to storage:" + u->path_.display() + " is in progress")
        .with_code("upload_in_progress");
  struct stat st {};
  ::fstat(fd, &st);
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (!existing) {
    // A leftover data file without metadata (or another path's): start over.
    if (size > 0) {
      (void)::ftruncate(fd, 0);
      size = 0;
    }
  } else if (existing->total != total || first == 0) {
    if (first != 0)
      throw Error(errc::conflict,
                  "the interrupted upload of storage:" + u->path_.display() + " was of " +
                      std::to_string(existing->total) + " bytes, not " + std::to_string(total) +
                      "; start again from offset 0",
                  nlohmann::json{{"offset", 0}})
          .with_code("offset_mismatch");
    // Starting over: what the old partial held no longer counts.
    acct.release(u->path_.project, size);
    (void)::ftruncate(fd, 0);
    size = 0;
  }
  if (first != size)
    throw Error(errc::conflict,
                "the upload of storage:" + u->path_.display() + " has " + std::to_string(size) +
                    " bytes; continue from offset " + std::to_string(size) + ", not " + std::to_string(first),
                nlohmann::json{{"offset", size}})
        .with_code("offset_mismatch");
  acct.reserve(u->path_.project, last - first + 1);
  u->reserved_ = last - first + 1;
  u->declared_ = last - first + 1;
  u->offset_ = u->start_ = first;
  u->total_ = total;
  write_meta(tree, {u->key_, u->path_.project, u->path_.display(), total, size, 0});
  u->done_ = false;
  return u;
}

std::shared_ptr<Upload> Upload::patch(const Tree& tree, Accounting& acct, StoragePath p, std::uint64_t offset,
                                      std::optional<std::uint64_t> length) {
  std::shared_ptr<Upload> u(new Upload(tree, acct, std::move(p), Mode::patch));
  u->fd_ = tree.open(u->path_, O_WRONLY);
  struct stat st {};
  ::fstat(u->fd_.get(), &st);
  if (!S_ISREG(st.st_mode)) fail(EISDIR, u->path_, "cannot write");
  u->declared_ = length;
  u->offset_ = u->start_ = offset;
  u->total_ = static_cast<std::uint64_t>(st.st_size);  // the size before this write
  if (length && offset + *length > u->total_) {
    acct.reserve(u->path_.project, offset + *length - u->total_);
    u->reserved_ = offset + *length - u->total_;
  }
  return u;
}

void Upload::reserve_more(std::uint64_t upto) {
  // Bytes beyond the file's old end need quota (patch), as do chunked bodies (create).
  std::uint64_t base = mode_ == Mode::patch ? total_ : credit_;
  std::uint64_t need = upto > base ? upto - base : 0;
  if (need <= reserved_) return;
  std::uint64_t step = std::max(need - reserved_, std::min<std::uint64_t>(kReserveStep, need));
  acct_.reserve(path_.project, step);
  reserved_ += step;
}

void Upload::write(const char* data, std::size_t size) {
  if (declared_ && written_ + size > *declared_)
    throw Error(errc::bad_request, "the body is longer than its declared length").with_code("invalid_body");
  if (mode_ == Mode::create && !declared_) reserve_more(written_ + size);
  if (mode_ == Mode::patch) reserve_more(offset_ + size);
  write_all(fd_.get(), data, size, offset_, path_);
  offset_ += size;
  written_ += size;
  if (offset_ - synced_ >= kWritebackStep) {
    ::sync_file_range(fd_.get(), static_cast<off_t>(synced_), static_cast<off_t>(offset_ - synced_),
                      SYNC_FILE_RANGE_WRITE);
    synced_ = offset_;
  }
}

std::uint64_t Upload::commit_into_place(int fd, int from_dir, const std::string& from_name) {
  if (::fsync(fd) != 0) fail(errno, path_, "cannot write");
  Fd parent = tree_.open_parent(path_, true);
  struct stat old {};
  bool had_old = ::fstatat(parent.get(), path_.leaf().c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (had_old && S_ISDIR(old.st_mode)) fail(EISDIR, path_, "cannot write a file");
  if (::renameat(from_dir, from_name.c_str(), parent.get(), path_.leaf().c_str()) != 0)
    fail(errno, path_, "cannot put the file in place");
  int dfd = ::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return had_old && S_ISREG(old.st_mode) ? static_cast<std::uint64_t>(old.st_size) : 0;
}

Upload::Result Upload::finish() {
  Result r;
  switch (mode_) {
    case Mode::create: {
      auto old = commit_into_place(fd_.get(), tree_.tmp_fd(), tmp_name_);
      ::unlinkat(tree_.tmp_fd(), (tmp_name_ + ".json").c_str(), 0);
      done_ = true;
      tmp_name_.clear();
      // The project grew by written - old; reserved_ of that is counted already.
      acct_.adjust(path_.project, static_cast<std::int64_t>(written_) - static_cast<std::int64_t>(old) -
                                      static_cast<std::int64_t>(reserved_));
      r.offset = r.total = written_;
      return r;
    }
    case Mode::resume: {
      if (offset_ == total_) {
        auto old = commit_into_place(fd_.get(), tree_.partial_fd(), key_);
        ::unlinkat(tree_.partial_fd(), (key_ + ".json").c_str(), 0);
        done_ = true;
        acct_.release(path_.project, old + (reserved_ > written_ ? reserved_ - written_ : 0));
        r.offset = r.total = total_;
        return r;
      }
      ::fsync(fd_.get());
      write_meta(tree_, {key_, path_.project, path_.display(), total_, offset_, 0});
      done_ = true;
      acct_.release(path_.project, reserved_ > written_ ? reserved_ - written_ : 0);
      r.complete = false;
      r.offset = offset_;
      r.total = total_;
      return r;
    }
    case Mode::patch: {
      if (::fsync(fd_.get()) != 0) fail(errno, path_, "cannot write");
      done_ = true;
      std::uint64_t grew = offset_ > total_ ? offset_ - total_ : 0;
      acct_.release(path_.project, reserved_ > grew ? reserved_ - grew : 0);
      struct stat st {};
      ::fstat(fd_.get(), &st);
      r.offset = offset_;
      r.total = static_cast<std::uint64_t>(st.st_size);
      return r;
    }
  }
  return r;
}

void Upload::keep_as_partial() noexcept {
  // An interrupted CREATE of a known length becomes the path's partial, for --continue.
  auto key = partial_key(path_);
  ::fsync(fd_.get());
  if (auto old = find_partial(tree_, path_)) acct_.release(path_.project, old->size);
  if (::renameat(tree_.tmp_fd(), tmp_name_.c_str(), tree_.partial_fd(), key.c_str()) != 0) {
    ::unlinkat(tree_.tmp_fd(), tmp_name_.c_str(), 0);
    acct_.release(path_.project, written_);
    return;
  }
  write_meta(tree_, {key, path_.project, path_.display(), *declared_, written_, 0});
}

void Upload::aborted() noexcept {
  if (done_) return;
  done_ = true;
  if (mode_ == Mode::create) ::unlinkat(tree_.tmp_fd(), (tmp_name_ + ".json").c_str(), 0);
  try {
    std::uint64_t unused = reserved_ > written_ ? reserved_ - written_ : 0;
    switch (mode_) {
      case Mode::create:
        if (declared_ && written_ > 0) {
          keep_as_partial();  // its bytes stay counted, beside the file it was to replace
          acct_.adjust(path_.project, static_cast<std::int64_t>(written_) - static_cast<std::int64_t>(reserved_));
        } else {
          ::unlinkat(tree_.tmp_fd(), tmp_name_.c_str(), 0);
          acct_.release(path_.project, reserved_);
        }
        break;
      case Mode::resume:
        ::fsync(fd_.get());
        write_meta(tree_, {key_, path_.project, path_.display(), total_, offset_, 0});
        acct_.release(path_.project, unused);
        break;
      case Mode::patch: {
        ::fsync(fd_.get());
        std::uint64_t grew = offset_ > total_ ? offset_ - total_ : 0;
        acct_.release(path_.project, reserved_ > grew ? reserved_ - grew : 0);
        break;
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("storage: cleaning up an interrupted upload of {} failed: {}", path_.display(), e.what());
  }
}

}  // namespace neurod::storage

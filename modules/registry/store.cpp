#include "modules/registry/store.hpp"

#include "core/times.hpp"

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <fstream>

namespace neurod::registry {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void io_fail(const std::string& what) {
  throw Error(errc::internal, "registry: " + what + ": " + std::strerror(errno));
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_all(int fd, const char* data, std::size_t size, off_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC || errno == EDQUOT)
        throw Error(errc::insufficient_storage, "the registry's disk is full");
      io_fail("cannot write an upload");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
}

std::string random_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw Error(errc::internal, "no randomness for an upload id");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool valid_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

FileLock::FileLock(const fs::path& path, bool exclusive) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) io_fail("cannot open " + path.string());
  while (::flock(fd_, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) {
      ::close(fd_);
      fd_ = -1;
      io_fail("cannot lock " + path.string());
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
  fs::create_directories(root_ / "blobs" / "sha256");
  fs::create_directories(uploads_dir());
  fs::permissions(root_, fs::perms::owner_all, fs::perm_options::replace);
}

fs::path BlobStore::blob_path(std::string_view digest) const {
  auto hex = std::string(digest_hex(digest));
  return root_ / "blobs" / "sha256" / hex.substr(0, 2) / hex;
}

int BlobStore::open_blob(std::string_view digest) const {
  return ::open(blob_path(digest).c_str(), O_RDONLY | O_CLOEXEC);
}

bool BlobStore::has_blob(std::string_view digest) const {
  struct stat st {};
  return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string BlobStore::read_blob(std::string_view digest, std::uint64_t limit) const {
  int fd = open_blob(digest);
  if (fd < 0) throw Error(errc::not_found, "blob " + std::string(digest) + " is missing on disk");
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) break;
  }
  ::close(fd);
  return out;
}

void BlobStore::install(const fs::path& from, std::string_view digest) const {
  auto to = blob_path(digest);
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (::rename(from.c_str(), to.c_str()) != 0) io_fail("cannot move a blob into place");
  fsync_dir(to.parent_path());
}

void BlobStore::write_blob(std::string_view data, std::string_view digest) const {
  auto tmp = uploads_dir() / (random_id() + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) io_fail("cannot create " + tmp.string());
  try {
    write_all(fd, data.data(), data.size(), 0);
    if (::fsync(fd) != 0) io_fail("cannot fsync a blob");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  install(tmp, digest);
}

bool BlobStore::remove_blob(std::string_view digest) const { return ::unlink(blob_path(digest).c_str()) == 0; }

std::vector<std::pair<std::string, std::int64_t>> BlobStore::list_blobs() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(root_ / "blobs" / "sha256", ec)) {
    std::error_code ec2;
    for (const auto& f : fs::directory_iterator(shard.path(), ec2)) {
      auto name = f.path().filename().string();
      std::string digest = "sha256:" + name;
      if (!valid_digest(digest)) continue;
      struct stat st {};
      if (::stat(f.path().c_str(), &st) != 0) continue;
      out.emplace_back(digest, std::int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000);
    }
  }
  return out;
}

UploadSession::~UploadSession() {
  if (fd >= 0) ::close(fd);
}

std::shared_ptr<UploadSession> Uploads::start(const std::string& repository, const std::string& project,
                                              const std::string& owner) {
  auto s = std::make_shared<UploadSession>();
  s->id = random_id();
  s->repository = repository;
  s->project = project;
  s->owner = owner;
  s->started_ms = s->updated_ms = now_ms();
  auto dir = store_.uploads_dir();
  s->fd = ::open((dir / (s->id + ".data")).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->fd < 0) io_fail("cannot start an upload");
  nlohmann::json meta{{"repository", repository}, {"project", project}, {"owner", owner}, {"started_ms", s->started_ms}};
  {
    std::ofstream f(dir / (s->id + ".json"));
    f << meta.dump();
    if (!f) io_fail("cannot record an upload");
  }
  std::lock_guard lock(mu_);
  sessions_[s->id] = s;
  return s;
}

std::shared_ptr<UploadSession> Uploads::find(const std::string& id) {
  if (!valid_id(id)) return nullptr;
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) return it->second;
  // A session from before a restart: its note and its bytes, hashed again.
  auto dir = store_.uploads_dir();
  std::ifstream f(dir / (id + ".json"));
  if (!f) return nullptr;
  auto meta = nlohmann::json::parse(f, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) return nullptr;
  auto s = std::make_shared<UploadSession>();
  s->id = id;
  s->repository = meta.value("repository", "");
  s->project = meta.value("project", "");
  s->owner = meta.value("owner", "");
  s->started_ms = meta.value("started_ms", std::int64_t{0});
  s->updated_ms = now_ms();
  s->fd = ::open((dir / (id + ".data")).c_str(), O_RDWR | O_CLOEXEC);
  if (s->fd < 0) return nullptr;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::pread(s->fd, buf, sizeof buf, static_cast<off_t>(s->size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_fail("cannot read an upload");
    if (n == 0) break;
    s->hash.update(buf, static_cast<std::size_t>(n));
    s->size += static_cast<std::uint64_t>(n);
  }
  sessions_[id] = s;
  return s;
}

void Uploads::remove(const std::string& id) {
  if (!valid_id(id)) return;
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  auto dir = store_.uploads_dir();
  ::unlink((dir / (id + ".data")).c_str());
  ::unlink((dir / (id + ".json")).c_str());
}

int Uploads::expire(std::int64_t now) {
  const auto cutoff = now - ttl_.count();
  std::vector<std::string> drop;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : sessions_) {
      std::lock_guard sl(s->mu);
      if (!s->busy && s->updated_ms < cutoff) drop.push_back(id);
    }
  }
  // Files of sessions not in memory (from before a restart) and stray temp files.
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(store_.uploads_dir(), ec)) {
    struct stat st {};
    if (::stat(f.path().c_str(), &st) != 0) continue;
    std::int64_t mtime = std::int64_t(st.st_mtim.tv_sec) * 1000;
    if (mtime >= cutoff) continue;
    auto stem = f.path().stem().string();
    auto ext = f.path().extension().string();
    std::lock_guard lock(mu_);
    if (ext == ".tmp") {
      ::unlink(f.path().c_str());
    } else if ((ext == ".json" || ext == ".data") && !sessions_.contains(stem) &&
               std::find(drop.begin(), drop.end(), stem) == drop.end()) {
      drop.push_back(stem);
    }
  }
  for (const auto& id : drop) remove(id);
  return static_cast<int>(drop.size());
}

std::size_t Uploads::open_count() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::uint64_t Uploads::commit(const std::shared_ptr<UploadSession>& s, const std::string& digest) {
  auto actual = s->hash.digest();
  if (actual != digest) {
    remove(s->id);
    throw oci_error(errc::bad_request, "DIGEST_INVALID",
                    "the upload's content has digest " + actual + ", not " + digest + "; nothing was stored",
                    {{"expected", digest}, {"actual", actual}});
  }
  if (::fsync(s->fd) != 0) io_fail("cannot fsync an upload");
  auto dir = store_.uploads_dir();
  store_.install(dir / (s->id + ".data"), digest);
  {
    std::lock_guard lock(mu_);
    sessions_.erase(s->id);
  }
  ::unlink((dir / (s->id + ".json")).c_str());
  return s->size;
}

AppendSink::AppendSink(std::shared_ptr<UploadSession> s, std::uint64_t max_size)
    : session_(std::move(s)), max_size_(max_size) {
  std::lock_guard lock(session_->mu);
  if (session_->busy)
    throw oci_error(errc::conflict, "BLOB_UPLOAD_INVALID", "another request is writing into this upload");
  session_->busy = true;
}

AppendSink::~AppendSink() { release(); }

void AppendSink::release() noexcept {
  if (released_) return;
  released_ = true;
  std::lock_guard lock(session_->mu);
  session_->busy = false;
  session_->updated_ms = now_ms();
}

void AppendSink::write(const char* data, std::size_t size) {
  auto& s = *session_;
  if (s.size + size > max_size_)
    throw oci_error(errc::payload_too_large, "SIZE_INVALID",
                    "the blob is larger than the registry's limit of " + std::to_string(max_size_) + " bytes");
  try {
    write_all(s.fd, data, size, static_cast<off_t>(s.size));
  } catch (...) {
    // Nothing of this piece counts: the file and the hash stay in step.
    if (::ftruncate(s.fd, static_cast<off_t>(s.size)) != 0) {
    }
    throw;
  }
  s.hash.update(data, size);
  s.size += size;
}

void BufferSink::write(const char* d, std::size_t size) {
  if (data.size() + size > limit_)
    throw oci_error(errc::payload_too_large, "SIZE_INVALID",
                    "the manifest is larger than the registry's limit of " + std::to_string(limit_) + " bytes");
  data.append(d, size);
}

}  // namespace neurod::registry

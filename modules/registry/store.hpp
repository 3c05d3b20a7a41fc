// Blob bytes on disk and upload sessions.
//
//   <root>/blobs/sha256/ab/<hex>     one file per digest, shared by every repository
//   <root>/uploads/<id>.data|.json   an upload session: the bytes so far and who owns it
//   <root>/gc.lock                   commits hold it shared, the collector exclusively
//
// An upload is hashed as it is written (the SHA-256 state lives in the session, so a chunked
// upload never reads its bytes back); at the end the digest is compared, the file fsynced
// and renamed into blobs/. A session whose state was lost (neurod restarted) is hashed again
// from its file on first use.
#pragma once

#include "http/types.hpp"
#include "modules/registry/oci.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace neurod::registry {

class FileLock {
 public:
  FileLock() = default;
  FileLock(const std::filesystem::path& path, bool exclusive);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  int fd_ = -1;
};

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path blob_path(std::string_view digest) const;
  std::filesystem::path uploads_dir() const { return root_ / "uploads"; }
  // Open for reading; -1 when missing.
  int open_blob(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  std::string read_blob(std::string_view digest, std::uint64_t limit) const;
  // Moves a complete, fsynced file into place (atomic; an existing copy is the same bytes).
  void install(const std::filesystem::path& from, std::string_view digest) const;
  // Writes small content (a manifest) as a blob.
  void write_blob(std::string_view data, std::string_view digest) const;
  bool remove_blob(std::string_view digest) const;
  // Every blob file: digest and modification time (epoch ms).
  std::vector<std::pair<std::string, std::int64_t>> list_blobs() const;
  // Held around every commit (shared) and by the collector (exclusive), across processes.
  FileLock commit_lock() const { return FileLock(root_ / "gc.lock", false); }
  FileLock collector_lock() const { return FileLock(root_ / "gc.lock", true); }

 private:
  std::filesystem::path root_;
};

struct UploadSession {
  std::string id;
  std::string repository;
  std::string project;
  std::string owner;
  std::int64_t started_ms = 0;

  std::mutex mu;
  bool busy = false;  // a body is being written into it
  int fd = -1;
  std::uint64_t size = 0;
  std::int64_t updated_ms = 0;
  Sha256 hash;
  ~UploadSession();
};

class Uploads {
 public:
  Uploads(BlobStore& store, Duration ttl) : store_(store), ttl_(ttl) {}
  std::shared_ptr<UploadSession> start(const std::string& repository, const std::string& project,
                                       const std::string& owner);
  // In memory, or found on disk (after a restart) and hashed again; nullptr when unknown.
  std::shared_ptr<UploadSession> find(const std::string& id);
  // Drops the session and its file.
  void remove(const std::string& id);
  // Drops sessions untouched for longer than the ttl. Returns how many.
  int expire(std::int64_t now_ms);
  std::size_t open_count();

  // Verifies the session's bytes against `digest`, fsyncs and installs them as a blob, and
  // forgets the session. A mismatch removes the session and throws DIGEST_INVALID. Must be
  // called with the store's commit lock held; returns the size.
  std::uint64_t commit(const std::shared_ptr<UploadSession>& s, const std::string& digest);

 private:
  BlobStore& store_;
  Duration ttl_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<UploadSession>> sessions_;
};

// Appends a request body to an upload session (PATCH, PUT, POST ?digest=). Takes the
// session's busy flag for its lifetime, so two bodies never interleave. A body cut off
// half-way leaves the session with what arrived (hashed too): the client asks for the
// upload's status and goes on from there.
class AppendSink : public http::BodySink {
 public:
  AppendSink(std::shared_ptr<UploadSession> s, std::uint64_t max_size);
  ~AppendSink() override;
  void write(const char* data, std::size_t size) override;
  void aborted() noexcept override { release(); }
  // The body is done with: the session takes the next request at once (the server may
  // keep the request, and this sink, a while after the response went out).
  void release() noexcept;
  const std::shared_ptr<UploadSession>& session() const { return session_; }

 private:
  std::shared_ptr<UploadSession> session_;
  std::uint64_t max_size_;
  bool released_ = false;
};

// A small body in memory (manifests), refused past `limit`.
class BufferSink : public http::BodySink {
 public:
  explicit BufferSink(std::uint64_t limit) : limit_(limit) {}
  void write(const char* data, std::size_t size) override;
  std::string data;

 private:
  std::uint64_t limit_;
};

// A body nobody needs (a POST that starts a session carries none, normally).
class DiscardSink : public http::BodySink {
 public:
  void write(const char*, std::size_t) override {}
};

}  // namespace neurod::registry

// Uploads: a body streamed into a temp file (CREATE), into a resumable partial (CREATE
// with Content-Range), or in place (PATCH WRITE). Each is an http::BodySink: the server
// feeds it the body as it arrives, then the API handler calls finish().
#pragma once

#include "http/types.hpp"
#include "modules/storage/tree.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace neurod::storage {

class Accounting;

// What a resumable upload left behind: <root>/.neurod/partial/<key> and <key>.json.
struct PartialInfo {
  std::string key;
  std::string project;
  std::string path;  // StoragePath::display()
  std::uint64_t total = 0;
  std::uint64_t size = 0;  // bytes received so far
  std::int64_t updated_ms = 0;
};
std::string partial_key(const StoragePath& p);
std::optional<PartialInfo> find_partial(const Tree& tree, const StoragePath& p);
std::vector<PartialInfo> all_partials(const Tree& tree);
void remove_partial(const Tree& tree, const std::string& key);
// After a crash: large uploads that were being received when neurod died become their
// paths' partials (they wrote a note beside their temp file); every other temp file is
// removed. Returns how many were kept.
int recover_interrupted_uploads(const Tree& tree);

class Upload : public http::BodySink {
 public:
  enum class Mode { create, resume, patch };

  // CREATE: `declared` is the Content-Length (nullopt: chunked). Reserves the declared
  // bytes against the quota now (throws quota_exceeded before any byte is read).
  static std::shared_ptr<Upload> create(const Tree& tree, Accounting& acct, StoragePath p,
                                        std::optional<std::uint64_t> declared);
  // CREATE with Content-Range bytes first-last/total.
  static std::shared_ptr<Upload> resume(const Tree& tree, Accounting& acct, StoragePath p, std::uint64_t first,
                                        std::uint64_t last, std::uint64_t total);
  // PATCH WRITE at `offset` of an existing file; `length` is the body's declared size.
  static std::shared_ptr<Upload> patch(const Tree& tree, Accounting& acct, StoragePath p, std::uint64_t offset,
                                       std::optional<std::uint64_t> length);
  ~Upload() override;

  void write(const char* data, std::size_t size) override;
  void aborted() noexcept override;

  struct Result {
    bool complete = true;  // the file is in place (false: a resumable upload is partway)
    std::uint64_t offset = 0;
    std::uint64_t total = 0;
  };
  // The body arrived whole: fsync and rename into place (create; resume once complete),
  // or fsync (patch).
  Result finish();

  const StoragePath& path() const { return path_; }
  Mode mode() const { return mode_; }

 private:
  Upload(const Tree& tree, Accounting& acct, StoragePath p, Mode mode);
  void reserve_more(std::uint64_t upto);
  // Returns the size of the regular file it replaced (0: none).
  std::uint64_t commit_into_place(int fd, int from_dir, const std::string& from_name);
  void keep_as_partial() noexcept;

  const Tree& tree_;
  Accounting& acct_;
  StoragePath path_;
  Mode mode_;
  Fd fd_;
  std::string tmp_name_;     // create: the name under .neurod/tmp
  std::string key_;          // resume: the partial's key
  std::optional<std::uint64_t> declared_;
  std::uint64_t offset_ = 0;  // where the next byte goes
  std::uint64_t start_ = 0;   // resume/patch: where this body started
  std::uint64_t total_ = 0;   // resume: the whole file's size
  std::uint64_t written_ = 0;
  std::uint64_t reserved_ = 0;
  std::uint64_t credit_ = 0;  // create: the size of the file it is expected to replace
  std::uint64_t synced_ = 0;  // bytes handed to writeback so far
  bool done_ = false;
};

}  // namespace neurod::storage

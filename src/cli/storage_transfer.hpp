// Moving file contents for `neuro cp`: uploads streamed from disk or stdin, downloads
// streamed to disk or stdout (resumable both ways), a pool of workers each with its
// own kept-alive connection, and the progress line.
#pragma once

#include "cli/context.hpp"
#include "cli/output.hpp"
#include "cli/storage_path.hpp"
#include "http/client.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace neurod::cli {

// One updating line on stderr (a TTY): files done/total, bytes, rate, ETA. Counters are
// thread-safe; a disabled one only counts.
class Progress {
 public:
  Progress(bool enabled, std::uint64_t files, std::uint64_t bytes);
  ~Progress();
  void add_bytes(std::int64_t n) { bytes_.fetch_add(n, std::memory_order_relaxed); }
  // Bytes that need no transfer (skipped by --continue/--update, or already there).
  void skip_bytes(std::int64_t n) {
    skipped_.fetch_add(n, std::memory_order_relaxed);
    add_bytes(n);
  }
  void file_done() { files_.fetch_add(1, std::memory_order_relaxed); }
  void add_total(std::uint64_t files, std::uint64_t bytes) {
    total_files_ += files;
    total_bytes_ += bytes;
  }
  void start();
  // Draws the final line and ends it (when enabled); also in the destructor.
  void stop();
  // Runs fn (which prints to stderr) with the line cleared, then redraws it.
  void message(const std::function<void()>& fn);

 private:
  void draw(bool final);
  std::string line(bool final);

  bool enabled_;
  std::atomic<std::uint64_t> total_files_;
  std::atomic<std::uint64_t> total_bytes_;
  std::atomic<std::uint64_t> files_{0};
  std::atomic<std::int64_t> bytes_{0};
  std::atomic<std::int64_t> skipped_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  std::vector<std::pair<double, std::int64_t>> samples_;  // (seconds, transferred bytes)
  double began_ = 0;
  std::size_t last_width_ = 0;
};

struct TransferOptions {
  std::string url;
  std::string token;
  Duration timeout{30000};
  int jobs = 8;
  bool resume = false;   // --continue
  bool update = false;   // -u
  bool verbose = false;  // -v: each request on stderr
};

// A new client for the server and token of ctx (each worker has its own connection).
std::unique_ptr<http::Client> make_client(Context& ctx);
TransferOptions transfer_options(Context& ctx);

// What the destination holds already, for --continue and --update.
struct DstState {
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
};

// One file to move. Sources and destinations: local path, storage URI, or stdio.
struct Transfer {
  enum class From { local, remote, stdin_ } from = From::local;
  enum class To { local, remote, stdout_ } to = To::remote;
  std::filesystem::path local_src, local_dst;
  StorageUri remote_src, remote_dst;
  std::uint64_t size = 0;   // of the source (0 for stdin)
  std::int64_t mtime = 0;   // of the source
  std::optional<DstState> dst;  // what is at the destination (when looked up)
  std::string src_display, dst_display;
};

// Skips or copies one file: --update skips when the destination is as new and the same
// size; --continue skips when the sizes match and otherwise resumes (an upload from the
// server's partial, a download from the local file's end). Throws CliError or Error.
void transfer_one(http::Client& client, const Transfer& t, const TransferOptions& opts, Progress& progress);

struct TransferFailure {
  std::string message;  // "cannot copy A to B: why"
  Exit exit = Exit::failure;
};

struct TransferReport {
  std::vector<TransferFailure> failures;
  std::optional<TransferFailure> aborted;  // stopped early: the server went away, or 401
};

// Runs every transfer on opts.jobs workers. A file that fails on a broken connection is
// tried once more on a fresh one; when that fails too, or on a 401, everything stops.
// Other failures are reported (to stderr as they happen) and the rest goes on.
TransferReport run_transfers(const std::vector<Transfer>& transfers, const TransferOptions& opts, Progress& progress);

// One request with -v tracing; the client's answer whatever its status.
http::ClientResponse traced(http::Client& client, bool verbose, std::string_view method, const std::string& target,
                            std::vector<std::pair<std::string, std::string>> headers = {});

}  // namespace neurod::cli

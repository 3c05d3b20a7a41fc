#include "cli/storage_transfer.hpp"

#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace neurod::cli {

namespace {

using nlohmann::json;

std::mutex g_stderr_mutex;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void local_failure(const std::string& what, const std::filesystem::path& path, int err) {
  throw CliError(Exit::failure, fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

// Closes a descriptor on every way out.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool is_2xx(int status) { return status >= 200 && status < 300; }

// Writes all of data; a run of zero bytes in a regular file becomes a hole (seek) so that
// a sparse file downloads sparse. *pending_hole counts bytes skipped that are not yet
// backed by the file's size (fixed by ftruncate at the end).
void write_all(int fd, std::string_view data, bool sparse, std::uint64_t* pending_hole, const std::filesystem::path& path) {
  if (sparse && !data.empty() && data.front() == 0 &&
      std::all_of(data.begin(), data.end(), [](char c) { return c == 0; })) {
    if (::lseek(fd, static_cast<off_t>(data.size()), SEEK_CUR) < 0) local_failure("cannot write", path, errno);
    *pending_hole += data.size();
    return;
  }
  if (sparse) *pending_hole = 0;
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      local_failure("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads up to size bytes (fewer only at the end).
std::size_t read_some(int fd, char* buf, std::size_t size, const std::filesystem::path& path) {
  std::size_t got = 0;
  while (got < size) {
    auto n = ::read(fd, buf + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      local_failure("cannot read", path, errno);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

void trace_request(bool verbose, std::string_view method, const http::Client& c, std::string_view target) {
  if (!verbose) return;
  std::lock_guard lock(g_stderr_mutex);
  std::cerr << "> " << method << " " << c.url().str() << target << std::endl;
}

void trace_response(bool verbose, const http::ClientResponse& r) {
  if (!verbose) return;
  std::lock_guard lock(g_stderr_mutex);
  std::cerr << "< " << r.status;
  if (auto id = r.header("X-Request-Id")) std::cerr << " (request id " << *id << ")";
  std::cerr << std::endl;
}

// Uploads from fd (positioned at offset) to dst: a plain CREATE from 0, or the rest of a
// resumable upload from offset. Returns the answer.
http::ClientResponse put_from_fd(http::Client& c, const TransferOptions& opts, const StorageUri& dst, int fd,
                                 const std::filesystem::path& path, std::uint64_t offset, std::uint64_t size,
                                 Progress& progress, std::int64_t& counted) {
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/octet-stream"}};
  if (offset > 0) headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", offset, size - 1, size));
  auto target = storage_target(dst);
  trace_request(opts.verbose, "PUT", c, target);
  auto r = c.upload(
      "PUT", target,
      [&](char* buf, std::size_t n) {
        auto got = read_some(fd, buf, n, path);
        progress.add_bytes(static_cast<std::int64_t>(got));
        counted += static_cast<std::int64_t>(got);
        return got;
      },
      size - offset, std::move(headers));
  trace_response(opts.verbose, r);
  return r;
}

void upload_local(http::Client& c, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  Fd f(::open(t.local_src.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) local_failure("cannot open", t.local_src, errno);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) local_failure("cannot stat", t.local_src, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  progress.add_total(0, size - std::min(size, t.size));  // it grew since the walk

  std::uint64_t offset = 0;
  if (opts.resume && size > 0) {
    auto target = storage_target(t.remote_dst, "UPLOADSTATUS");
    auto r = traced(c, opts.verbose, "GET", target);
    if (r.status == 200) {
      auto j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.value("length", std::int64_t(-1)) == static_cast<std::int64_t>(size)) {
        auto o = j.value("offset", std::int64_t(0));
        if (o > 0 && static_cast<std::uint64_t>(o) < size) offset = static_cast<std::uint64_t>(o);
      }
    } else if (r.status == 401) {
      throw server_error(r.status, r.body);
    }
  }
  for (int attempt = 0;; ++attempt) {
    if (::lseek(f.fd, static_cast<off_t>(offset), SEEK_SET) < 0) local_failure("cannot read", t.local_src, errno);
    progress.skip_bytes(static_cast<std::int64_t>(offset));
    std::int64_t sent = 0;
    // This attempt's count is taken back when it is retried or fails.
    auto undo = [&] {
      progress.skip_bytes(-static_cast<std::int64_t>(offset));
      progress.add_bytes(-sent);
    };
    http::ClientResponse r;
    try {
      r = put_from_fd(c, opts, t.remote_dst, f.fd, t.local_src, offset, size, progress, sent);
    } catch (...) {
      undo();
      throw;
    }
    if (r.status == 200 || r.status == 201) return;
    undo();
    if (r.status == 409 && attempt == 0) {
      if (auto at = r.header("X-Upload-Offset")) {
        // The server holds a different amount than it said: go on from there.
        auto o = std::strtoull(at->c_str(), nullptr, 10);
        offset = o < size ? o : 0;
        continue;
      }
    }
    if (r.status == 202) throw CliError(Exit::server, "the server did not complete the upload (202 after the last byte)");
    throw server_error(r.status, r.body);
  }
}

void upload_stdin(http::Client& c, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  auto target = storage_target(t.remote_dst);
  trace_request(opts.verbose, "PUT", c, target);
  auto r = c.upload(
      "PUT", target,
      [&](char* buf, std::size_t n) {
        for (;;) {
          auto got = ::read(STDIN_FILENO, buf, n);
          if (got < 0 && errno == EINTR) continue;
          if (got < 0) local_failure("cannot read", "stdin", errno);
          progress.add_bytes(got);
          return static_cast<std::size_t>(got);
        }
      },
      std::nullopt, {{"Content-Type", "application/octet-stream"}});
  trace_response(opts.verbose, r);
  if (!is_2xx(r.status)) throw server_error(r.status, r.body);
}

// GET src into fd from offset. Returns the bytes written (offset included).
std::uint64_t download_to_fd(http::Client& c, const TransferOptions& opts, const StorageUri& src, int fd,
                             const std::filesystem::path& path, std::uint64_t offset, bool sparse, Progress& progress) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (offset > 0) headers.emplace_back("Range", fmt::format("bytes={}-", offset));
  auto target = storage_target(src);
  std::uint64_t written = offset;
  std::uint64_t hole = 0;
  std::int64_t counted = 0;
  trace_request(opts.verbose, "GET", c, target);
  http::ClientResponse r;
  try {
    r = c.stream(
        "GET", target,
        [&](std::string_view chunk) {
          write_all(fd, chunk, sparse, &hole, path);
          written += chunk.size();
          counted += static_cast<std::int64_t>(chunk.size());
          progress.add_bytes(static_cast<std::int64_t>(chunk.size()));
          return true;
        },
        {}, headers,
        [&](const http::ClientResponse& head) {
          if (!is_2xx(head.status)) return false;
          if (offset > 0 && head.status == 200) {
            // The whole file came instead of the rest: start over.
            if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) < 0) local_failure("cannot write", path, errno);
            progress.add_bytes(-static_cast<std::int64_t>(offset));
            written = 0;
          }
          return true;
        });
  } catch (...) {
    progress.add_bytes(-counted);
    throw;
  }
  trace_response(opts.verbose, r);
  if (r.status == 416 && offset > 0) return offset;  // nothing after the local part
  if (!is_2xx(r.status)) {
    progress.add_bytes(-counted);
    throw server_error(r.status, r.body);
  }
  if (sparse && hole > 0 && ::ftruncate(fd, static_cast<off_t>(written)) != 0) local_failure("cannot write", path, errno);
  return written;
}

void download_local(http::Client& c, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  std::uint64_t offset = 0;
  if (opts.resume && t.dst && t.dst->size < t.size) offset = t.dst->size;
  std::error_code ec;
  if (t.local_dst.has_parent_path()) std::filesystem::create_directories(t.local_dst.parent_path(), ec);
  Fd f(::open(t.local_dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (offset > 0 ? 0 : O_TRUNC), 0666));
  if (f.fd < 0) local_failure("cannot create", t.local_dst, errno);
  struct stat st {};
  bool regular = ::fstat(f.fd, &st) == 0 && S_ISREG(st.st_mode);
  if (offset > 0 && ::lseek(f.fd, static_cast<off_t>(offset), SEEK_SET) < 0) local_failure("cannot write", t.local_dst, errno);
  progress.skip_bytes(static_cast<std::int64_t>(offset));
  download_to_fd(c, opts, t.remote_src, f.fd, t.local_dst, offset, regular, progress);
  if (::close(f.fd) != 0) {
    f.fd = -1;
    local_failure("cannot write", t.local_dst, errno);
  }
  f.fd = -1;
}

void download_stdout(http::Client& c, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  download_to_fd(c, opts, t.remote_src, STDOUT_FILENO, "stdout", 0, false, progress);
}

// Storage to storage: through a temporary file (the API has no server-side copy).
void copy_remote(http::Client& c, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  FILE* tmp = std::tmpfile();
  if (tmp == nullptr) local_failure("cannot create a temporary file in", std::filesystem::temp_directory_path(), errno);
  std::unique_ptr<FILE, int (*)(FILE*)> guard(tmp, &std::fclose);
  int fd = ::fileno(tmp);
  // The bar moves with the upload only.
  Progress quiet(false, 0, 0);
  auto size = download_to_fd(c, opts, t.remote_src, fd, "a temporary file", 0, true, quiet);
  if (::lseek(fd, 0, SEEK_SET) < 0) local_failure("cannot read", "a temporary file", errno);
  std::int64_t counted = 0;
  http::ClientResponse r;
  try {
    r = put_from_fd(c, opts, t.remote_dst, fd, "a temporary file", 0, size, progress, counted);
  } catch (...) {
    progress.add_bytes(-counted);
    throw;
  }
  if (!is_2xx(r.status)) {
    progress.add_bytes(-counted);
    throw server_error(r.status, r.body);
  }
}

bool broken_connection(const Error& e) { return e.code() == errc::unavailable || e.code() == errc::gateway_timeout; }

}  // namespace

// --- Progress ------------------------------------------------------------------

Progress::Progress(bool enabled, std::uint64_t files, std::uint64_t bytes)
    : enabled_(enabled), total_files_(files), total_bytes_(bytes) {}

Progress::~Progress() { stop(); }

void Progress::start() {
  began_ = now_seconds();
  if (!enabled_ || started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (stopping_) break;
      draw(false);
    }
  });
}

void Progress::stop() {
  if (!started_) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  started_ = false;
  std::lock_guard lock(mutex_);
  draw(true);
}

void Progress::message(const std::function<void()>& fn) {
  std::unique_lock lock(mutex_);
  std::lock_guard err(g_stderr_mutex);
  if (started_ && last_width_ > 0) std::cerr << "\r" << std::string(last_width_, ' ') << "\r";
  fn();
  std::cerr.flush();
  last_width_ = 0;
}

std::string Progress::line(bool final) {
  double t = now_seconds();
  auto bytes = std::max<std::int64_t>(0, bytes_.load());
  auto moved = std::max<std::int64_t>(0, bytes - skipped_.load());
  samples_.emplace_back(t, moved);
  while (samples_.size() > 2 && t - samples_.front().first > 5.0) samples_.erase(samples_.begin());
  double rate = 0;
  if (final) {
    rate = t > began_ ? static_cast<double>(moved) / (t - began_) : 0;
  } else if (samples_.size() >= 2 && samples_.back().first > samples_.front().first) {
    rate = static_cast<double>(samples_.back().second - samples_.front().second) /
           (samples_.back().first - samples_.front().first);
  }
  auto total = total_bytes_.load();
  std::string out = fmt::format("{}/{} files  {} / {}  {}", files_.load(), total_files_.load(),
                                format_size_human(static_cast<std::uint64_t>(bytes)), format_size_human(total),
                                format_rate(rate));
  if (final) {
    out += fmt::format("  in {}", format_eta(t - began_));
  } else {
    double left = static_cast<double>(total) - static_cast<double>(bytes);
    out += "  ETA " + (rate > 0 ? format_eta(std::max(0.0, left) / rate) : std::string("--:--"));
  }
  return out;
}

void Progress::draw(bool final) {
  auto text = line(final);
  std::lock_guard err(g_stderr_mutex);
  std::string pad = last_width_ > text.size() ? std::string(last_width_ - text.size(), ' ') : std::string();
  std::cerr << "\r" << text << pad << (final ? "\n" : "") << std::flush;
  last_width_ = final ? 0 : text.size();
}

// --- transfers -----------------------------------------------------------------

std::unique_ptr<http::Client> make_client(Context& ctx) {
  auto o = transfer_options(ctx);
  http::ClientOptions co;
  co.timeout = o.timeout;
  co.token = o.token;
  return std::make_unique<http::Client>(o.url, std::move(co));
}

TransferOptions transfer_options(Context& ctx) {
  TransferOptions o;
  o.url = ctx.settings().url;
  o.token = ctx.settings().token;
  auto timeout = parse_duration(ctx.options.timeout);
  if (!timeout || timeout->count() <= 0)
    throw CliError(Exit::usage, "--timeout: \"" + ctx.options.timeout + "\" is not a duration such as 30s, 2m or 1500ms");
  o.timeout = *timeout;
  o.verbose = ctx.options.verbose;
  return o;
}

http::ClientResponse traced(http::Client& client, bool verbose, std::string_view method, const std::string& target,
                            std::vector<std::pair<std::string, std::string>> headers) {
  trace_request(verbose, method, client, target);
  auto r = client.request(method, target, {}, std::move(headers));
  trace_response(verbose, r);
  return r;
}

void transfer_one(http::Client& client, const Transfer& t, const TransferOptions& opts, Progress& progress) {
  if (t.dst && (opts.resume || opts.update)) {
    bool same_size = t.dst->size == t.size;
    if ((opts.update && same_size && t.dst->mtime >= t.mtime) || (opts.resume && same_size)) {
      progress.skip_bytes(static_cast<std::int64_t>(t.size));
      return;
    }
  }
  using From = Transfer::From;
  using To = Transfer::To;
  if (t.from == From::local && t.to == To::remote) return upload_local(client, t, opts, progress);
  if (t.from == From::stdin_ && t.to == To::remote) return upload_stdin(client, t, opts, progress);
  if (t.from == From::remote && t.to == To::local) return download_local(client, t, opts, progress);
  if (t.from == From::remote && t.to == To::stdout_) return download_stdout(client, t, opts, progress);
  if (t.from == From::remote && t.to == To::remote) return copy_remote(client, t, opts, progress);
  throw CliError(Exit::usage, "cannot copy " + t.src_display + " to " + t.dst_display + ": nothing to do with storage");
}

TransferReport run_transfers(const std::vector<Transfer>& transfers, const TransferOptions& opts, Progress& progress) {
  TransferReport report;
  std::mutex mutex;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  auto fail = [&](const Transfer& t, const std::string& why, Exit exit, bool abort) {
    std::lock_guard lock(mutex);
    TransferFailure f{fmt::format("cannot copy {} to {}: {}", t.src_display, t.dst_display, why), exit};
    if (abort) {
      if (!report.aborted) report.aborted = f;
      stop = true;
      return;
    }
    progress.message([&] { std::cerr << "neuro: " << f.message << std::endl; });
    report.failures.push_back(std::move(f));
  };
  auto worker = [&] {
    std::unique_ptr<http::Client> client;
    auto fresh = [&] {
      http::ClientOptions co;
      co.timeout = opts.timeout;
      co.token = opts.token;
      client = std::make_unique<http::Client>(opts.url, std::move(co));
    };
    fresh();
    while (!stop) {
      auto i = next.fetch_add(1);
      if (i >= transfers.size()) break;
      const auto& t = transfers[i];
      for (int attempt = 0;; ++attempt) {
        try {
          transfer_one(*client, t, opts, progress);
          progress.file_done();
        } catch (const CliError& e) {
          fail(t, e.what(), e.exit(), e.exit() == Exit::auth && std::string_view(e.what()).find("401") != std::string_view::npos);
        } catch (const Error& e) {
          if (broken_connection(e) && attempt == 0 && !stop) {
            fresh();
            continue;
          }
          auto ce = from_error(e);
          fail(t, ce.what(), ce.exit(), broken_connection(e));
        } catch (const std::exception& e) {
          fail(t, e.what(), Exit::failure, false);
        }
        break;
      }
    }
  };
  auto n = static_cast<std::size_t>(std::max(1, opts.jobs));
  n = std::min(n, std::max<std::size_t>(1, transfers.size()));
  if (n == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back(worker);
    for (auto& th : threads) th.join();
  }
  return report;
}

}  // namespace neurod::cli

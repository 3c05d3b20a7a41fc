#include "modules/storage/module.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "modules/auth/module.hpp"
#include "modules/storage/accounting.hpp"
#include "modules/storage/upload.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>

namespace neurod::storage {

void Config::describe(config::Schema<Config>& s) {
  s.field("root", &Config::root,
          "The storage root directory (local disk or an NFS mount); PROJECT/PATH lives at ROOT/PROJECT/PATH.\n"
          "Empty: <data_dir>/storage.");
  s.field("max_file_size", &Config::max_file_size, "The largest single file an upload may create.");
  s.field("partial_ttl", &Config::partial_ttl,
          "How long the received part of an interrupted upload is kept for `neuro cp --continue`.")
      .min(1000);
  s.field("usage_scan_interval", &Config::usage_scan_interval,
          "How often each project's bytes are counted again for its storage quota (jobs write into\n"
          "read-write volumes behind the API's back).")
      .min(1000);
}

Module::Module(const Config& config, app::ModuleContext& ctx)
    : cluster_(ctx.global().cluster_name),
      max_file_size_(config.max_file_size.bytes),
      partial_ttl_(config.partial_ttl),
      usage_scan_interval_(config.usage_scan_interval) {
  auto& authm = ctx.get<auth::Module>();
  authz_ = &authm.authorizer();
  std::filesystem::path root = config.root.empty() ? ctx.module_dir("storage") : std::filesystem::path(config.root);
  try {
    tree_ = std::make_unique<Tree>(root);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("modules.storage: ") + e.what());
  }
  recover_interrupted_uploads(*tree_);
  auto& svc = authm.service();
  accounting_ = std::make_unique<Accounting>(&authm.quotas(), [&svc](const std::string& project) {
    try {
      auto info = svc.get_project(auth::Actor::daemon(), project);
      return info.personal ? std::optional<std::string>(project) : std::nullopt;  // named after its user
    } catch (const Error& e) {
      if (e.code() == errc::not_found) return std::optional<std::string>();  // a removed project's leftovers
      throw;
    }
  });
  quotas_ = &authm.quotas();
  auto* acct = accounting_.get();
  // auth's quota API shows the bytes of the last write, not those of the last flush.
  quotas_->set_usage_sync([acct] { acct->flush(); });
  ctx.metrics().callback_gauge("neurod_storage_bytes", "Bytes in each project's storage, as last counted.", [acct] {
    metrics::Registry::Samples out;
    for (const auto& [project, bytes] : acct->by_source(Accounting::kStorage))
      out.push_back({{{"project", project}}, static_cast<double>(bytes)});
    return out;
  });
  spdlog::info("storage: root {}", tree_->root().string());
  add_routes(ctx.router());
  ctx.add_task("storage", [this](std::stop_token st) { background(st); });
}

Module::~Module() {
  if (quotas_) quotas_->set_usage_sync(nullptr);
}

void Module::on_stopping() {
  try {
    accounting_->flush();
  } catch (const std::exception& e) {
    spdlog::warn("storage: final usage flush failed: {}", e.what());
  }
}

app::Health Module::health() {
  app::Health h;
  h.details = {{"root", tree_->root().string()}};
  if (::faccessat(tree_->root_fd(), ".neurod/tmp", W_OK, 0) != 0) {
    h.healthy = false;
    h.message = "the storage root is not writable: " + tree_->root().string();
  }
  return h;
}

void Module::background(std::stop_token st) {
  std::mutex mu;
  std::condition_variable_any cv;
  auto last_scan = std::chrono::steady_clock::time_point{};
  auto last_expire = std::chrono::steady_clock::time_point{};
  while (!st.stop_requested()) {
    auto now = std::chrono::steady_clock::now();
    try {
      if (now - last_scan >= usage_scan_interval_) {
        rescan();
        last_scan = now;
      }
      if (now - last_expire >= std::chrono::minutes(1)) {
        expire_partials();
        last_expire = now;
      }
      accounting_->flush();
    } catch (const std::exception& e) {
      spdlog::warn("storage: background pass failed: {}", e.what());
    }
    std::unique_lock lock(mu);
    cv.wait_for(lock, st, std::chrono::seconds(2), [] { return false; });
  }
}

void Module::rescan() {
  std::map<std::string, std::uint64_t> usage;
  for (const auto& p : all_partials(*tree_)) usage[p.project] += p.size;
  Fd root(::openat(tree_->root_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return;
  for (const auto& e : tree_->list(root.get())) {
    if (!S_ISDIR(e.st.st_mode) || e.name.starts_with(".")) continue;
    Fd dir(::openat(root.get(), e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir) usage[e.name] += tree_->usage(dir.get());
  }
  for (const auto& [project, bytes] : usage) accounting_->set_used(project, bytes);
}

void Module::expire_partials() {
  auto cutoff = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(partial_ttl_).count();
  for (const auto& p : all_partials(*tree_)) {
    if (p.updated_ms >= cutoff) continue;
    // A partial being written is locked; leave it.
    Fd fd(::openat(tree_->partial_fd(), p.key.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    remove_partial(*tree_, p.key);
    accounting_->release(p.project, p.size);
    spdlog::info("storage: dropped the interrupted upload of {} ({} bytes) after {}", p.path, p.size,
                 format_duration(partial_ttl_));
  }
}

std::filesystem::path Module::resolve_mount(std::string_view uri_text, bool read_only) {
  auth::Uri uri;
  try {
    uri = auth::Uri::parse(uri_text);
  } catch (const Error& e) {
    throw Error(errc::invalid_argument, e.what());
  }
  const auto& segs = uri.segments();
  if (uri.scheme() != "storage" || segs.size() < 2 || segs[0] != cluster_)
    throw Error(errc::invalid_argument,
                std::string(uri_text) + " is not a storage path of cluster " + cluster_ + " (storage://" + cluster_ +
                    "/PROJECT/PATH)");
  std::string rel = segs[1];
  for (std::size_t i = 2; i < segs.size(); ++i) rel += "/" + segs[i];
  StoragePath p;
  try {
    p = parse_path(rel);
  } catch (const Error& e) {
    throw Error(errc::invalid_argument, e.what());
  }
  int fd = tree_->open_raw(p, O_PATH);
  if (fd < 0 && errno == ENOENT) {
    if (read_only)
      throw Error(errc::not_found, "storage:" + p.display() + " does not exist (a read-only volume must exist; " +
                                       "create it with `neuro mkdir -p storage:" + p.display() + "` or mount it rw)");
    tree_->mkdirs(p);
    fd = tree_->open_raw(p, O_PATH);
  }
  if (fd < 0) {
    int err = errno;
    try {
      fail(err, p, "cannot mount");
    } catch (const Error& e) {
      throw Error(err == ENOENT ? errc::not_found : errc::invalid_argument, e.what());
    }
  }
  Fd owned(fd);
  return Tree::path_of(owned.get());
}

}  // namespace neurod::storage

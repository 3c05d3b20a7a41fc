#include "modules/registry/module.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "db/rows.hpp"
#include "modules/auth/module.hpp"
#include "modules/registry/repo.hpp"
#include "modules/storage/accounting.hpp"
#include "modules/storage/module.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <set>

namespace neurod::registry {

void Config::describe(config::Schema<Config>& s) {
  s.field("root", &Config::root,
          "Where blobs and upload sessions live. Empty: <data_dir>/registry.");
  s.field("external_url", &Config::external_url,
          "The URL clients reach neurod at (https://registry.example.com), for the token realm in the\n"
          "Bearer challenge. Empty: taken from each request's Host header.");
  s.field("upload_ttl", &Config::upload_ttl, "How long an unfinished upload session is kept after its last write.")
      .min(1000);
  s.field("token_ttl", &Config::token_ttl, "Lifetime of the scoped tokens /v2/token issues (at most 1h).")
      .min(1000)
      .max(3600000);
  s.field("max_manifest_size", &Config::max_manifest_size, "The largest manifest accepted.").min(1024);
  s.field("max_blob_size", &Config::max_blob_size, "The largest blob (layer) accepted.").min(1024);
  s.field("gc_interval", &Config::gc_interval,
          "How often unreferenced blobs are collected in the background; 0: never (run `neurod registry gc`).");
  s.field("gc_grace", &Config::gc_grace,
          "Blobs and layer links younger than this are never collected, so a push in progress (layers first,\n"
          "manifest last) keeps its layers.");
}

GcResult collect_garbage(db::Database& db, const BlobStore& store, Duration grace, bool dry_run) {
  GcResult out;
  const auto before = now_ms() - grace.count();
  auto lock = store.collector_lock();  // no commit runs until this pass is done
  std::vector<std::pair<std::string, std::int64_t>> freed;
  auto pass = [&](soci::session& s) {
    auto links = repo::unreferenced_layer_links(s, before);
    out.links = static_cast<int>(links.size());
    std::set<std::string> unlinked;
    for (const auto& l : links) {
      if (!dry_run) repo::unlink(s, l.repository, l.digest);
      unlinked.insert(l.digest);
    }
    auto orphans = repo::orphan_blobs(s, before);
    if (dry_run) {
      // What the unlinking above would orphan too.
      for (const auto& d : unlinked) {
        soci::rowset<soci::row> rs = (s.prepare << "SELECT COUNT(*) FROM registry_links WHERE digest = :d", soci::use(d));
        std::int64_t n = 0;
        for (const auto& r : rs) n = db::as_int64(r, 0);
        std::int64_t in_this = 0;
        for (const auto& l : links)
          if (l.digest == d) ++in_this;
        if (n == in_this && std::find(orphans.begin(), orphans.end(), d) == orphans.end()) orphans.push_back(d);
      }
    }
    for (const auto& d : orphans) {
      auto size = repo::blob_size(s, d).value_or(0);
      if (dry_run || repo::delete_blob_if_orphan(s, d)) freed.emplace_back(d, size);
    }
  };
  if (dry_run)
    db.read(pass);
  else
    db.write(pass);
  std::set<std::string> known;
  for (const auto& [d, size] : freed) {
    if (!dry_run) store.remove_blob(d);
    ++out.blobs;
    out.bytes += static_cast<std::uint64_t>(size);
    known.insert(d);
  }
  // Files with no row at all (a commit that died between its rename and its transaction).
  for (const auto& [d, mtime] : store.list_blobs()) {
    if (mtime >= before || known.contains(d)) continue;
    bool has_row = db.read([&](soci::session& s) { return repo::blob_size(s, d).has_value(); });
    if (has_row) continue;
    if (!dry_run) store.remove_blob(d);
    ++out.blobs;
  }
  return out;
}

Module::Module(const Config& config, app::ModuleContext& ctx)
    : config_(config), cluster_(ctx.global().cluster_name), tls_(!ctx.global().http.tls.cert.empty()), db_(ctx.db()) {
  auth_ = &ctx.get<auth::Module>();
  authz_ = &auth_->authorizer();
  acct_ = &ctx.get<storage::Module>().accounting();
  std::filesystem::path root = config.root.empty() ? ctx.module_dir("registry") : std::filesystem::path(config.root);
  try {
    store_ = std::make_unique<BlobStore>(root);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("modules.registry: cannot use ") + root.string() + ": " + e.what());
  }
  uploads_ = std::make_unique<Uploads>(*store_, config_.upload_ttl);
  spdlog::info("registry: blobs under {}", root.string());
  add_routes(ctx.router());
  auto* uploads = uploads_.get();
  ctx.metrics().callback_gauge("neurod_registry_uploads", "Open registry upload sessions", [uploads] {
    return std::vector<std::pair<metrics::Labels, double>>{{{}, double(uploads->open_count())}};
  });
  auto* acct = acct_;
  ctx.metrics().callback_gauge("neurod_registry_bytes",
                               "Bytes of image blobs each project's repositories hold (a shared blob counts in each).",
                               [acct] {
                                 metrics::Registry::Samples out;
                                 for (const auto& [project, bytes] : acct->by_source("registry"))
                                   out.push_back({{{"project", project}}, static_cast<double>(bytes)});
                                 return out;
                               });
  ctx.add_task("registry", [this](std::stop_token st) { background(st); });
}

Module::~Module() = default;

app::Health Module::health() {
  app::Health h;
  h.details = {{"root", store_->root().string()}, {"uploads", uploads_->open_count()}};
  if (::access(store_->uploads_dir().c_str(), W_OK) != 0) {
    h.healthy = false;
    h.message = "the registry's folder is not writable: " + store_->root().string();
  }
  return h;
}

GcResult Module::collect_garbage() {
  auto r = registry::collect_garbage(db_, *store_, config_.gc_grace);
  if (r.links || r.blobs)
    spdlog::info("registry: collected {} blob(s), {} bytes, and {} unreferenced layer link(s)", r.blobs, r.bytes,
                 r.links);
  rescan_usage();
  return r;
}

void Module::rescan_usage() {
  auto usage = db_.read([](soci::session& s) { return repo::usage_all(s); });
  for (const auto& [project, bytes] : usage) acct_->set_used(project, bytes, "registry");
}

void Module::refresh_usage(const std::string& project) {
  auto bytes = db_.read([&](soci::session& s) { return repo::usage(s, project); });
  acct_->set_used(project, bytes, "registry");
}

void Module::background(std::stop_token st) {
  std::mutex mu;
  std::condition_variable_any cv;
  auto last_gc = std::chrono::steady_clock::now();
  auto last_scan = std::chrono::steady_clock::time_point{};
  while (!st.stop_requested()) {
    auto now = std::chrono::steady_clock::now();
    try {
      if (now - last_scan >= std::chrono::minutes(10)) {
        rescan_usage();
        last_scan = now;
      }
      uploads_->expire(now_ms());
      if (config_.gc_interval.count() > 0 && now - last_gc >= config_.gc_interval) {
        collect_garbage();
        last_gc = now;
      }
    } catch (const std::exception& e) {
      spdlog::warn("registry: background pass failed: {}", e.what());
    }
    std::unique_lock lock(mu);
    cv.wait_for(lock, st, std::chrono::seconds(2), [] { return false; });
  }
}

}  // namespace neurod::registry

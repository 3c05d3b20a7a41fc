// The `storage` module (README.md here): the file storage API under /api/v1/storage,
// per-project quota accounting, and the host paths behind jobs' storage volumes.
#pragma once

#include "app/module.hpp"
#include "modules/auth/permissions.hpp"
#include "modules/storage/tree.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace neurod::auth {
class Authorizer;
class Quotas;
}

namespace neurod::storage {

class Accounting;

struct Config {
  std::string root;  // empty: <data_dir>/storage
  config::Size max_file_size{1ull << 40};
  Duration partial_ttl = std::chrono::hours(24);
  Duration usage_scan_interval = std::chrono::minutes(10);
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "storage";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  using Config = storage::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  void on_stopping() override;
  app::Health health() override;

  // For job volumes: the host directory (or file) behind a canonical storage URI
  // "storage://cluster/project/path". A missing path is created as a directory when
  // `read_only` is false; for a read-only mount it throws Error(not_found) saying which
  // path is missing. Throws Error(invalid_argument) for a URI outside this cluster or
  // one that would leave the project's storage (symlinks included).
  std::filesystem::path resolve_mount(std::string_view storage_uri, bool read_only);

  const std::filesystem::path& root() const { return tree_->root(); }
  Accounting& accounting() { return *accounting_; }
  // Counts every project's bytes again (the background task does this periodically).
  void rescan();
  // Drops interrupted uploads older than partial_ttl.
  void expire_partials();

 private:
  void add_routes(http::Router& r);  // api.cpp
  http::Response handle_get(http::Request& req);
  http::Response handle_put(http::Request& req);
  http::Response handle_patch(http::Request& req);
  http::Response handle_delete(http::Request& req);
  http::Response handle_post(http::Request& req);
  http::Response list(http::Request& req, const StoragePath& p);
  std::shared_ptr<http::BodySink> make_put_sink(http::Request& req);
  std::shared_ptr<http::BodySink> make_patch_sink(http::Request& req);
  // The caller's effective action on p if it reaches `need`; else 404 (when they may
  // not even know p exists) or 403.
  auth::Action check(const http::Principal& who, const StoragePath& p, auth::Action need) const;
  nlohmann::json file_status(const StoragePath& p, const std::string& name, const struct stat& st,
                             auth::Action permission) const;
  struct stat project_root_stat() const;
  void background(std::stop_token st);

  std::string cluster_;
  std::uint64_t max_file_size_;
  Duration partial_ttl_;
  Duration usage_scan_interval_;
  auth::Authorizer* authz_ = nullptr;
  auth::Quotas* quotas_ = nullptr;
  std::unique_ptr<Tree> tree_;
  std::unique_ptr<Accounting> accounting_;
};

}  // namespace neurod::storage

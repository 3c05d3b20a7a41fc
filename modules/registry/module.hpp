// The `registry` module (README.md here): an OCI Distribution Specification v1.1 registry
// under /v2/, with repositories PROJECT/NAME[/…] guarded by the ACL on
// image://CLUSTER/PROJECT/NAME, blobs deduplicated on disk, the registry token flow, and
// registry bytes counted in the project's storage quota.
#pragma once

#include "app/module.hpp"
#include "modules/registry/store.hpp"

#include <memory>
#include <string>

namespace neurod::auth {
class Authorizer;
class Module;
}  // namespace neurod::auth
namespace neurod::storage {
class Accounting;
}

namespace neurod::registry {

struct Config {
  std::string root;          // empty: <data_dir>/registry
  std::string external_url;  // the realm's base in the Bearer challenge; empty: from the request's Host
  Duration upload_ttl = std::chrono::hours(24);
  Duration token_ttl = std::chrono::minutes(5);
  config::Size max_manifest_size{4ull << 20};
  config::Size max_blob_size{256ull << 30};
  Duration gc_interval{0};
  Duration gc_grace = std::chrono::hours(1);
  static void describe(config::Schema<Config>& s);
};

struct GcResult {
  int links = 0;  // layer links no manifest referred to
  int blobs = 0;  // blob files removed
  std::uint64_t bytes = 0;
};
// One collection pass (the module's background task and `neurod registry gc`): layer links
// that no manifest of their repository refers to and blobs no repository holds, both older
// than `grace`, are removed. Runs under the store's exclusive lock, so no push commits while
// it decides; blobs in open upload sessions are not blobs yet and are never touched.
GcResult collect_garbage(db::Database& db, const BlobStore& store, Duration grace, bool dry_run = false);

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "registry";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 3> kDepends{"system", "auth", "storage"};
  using Config = registry::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  app::Health health() override;

  // `neurod registry gc` (offline.cpp).
  static std::vector<app::OfflineCommand> offline_commands();

  GcResult collect_garbage();
  // Recounts every project's registry bytes for the storage quota.
  void rescan_usage();
  const BlobStore& store() const { return *store_; }

 private:
  enum class Need { pull, push };
  void add_routes(http::Router& r);  // api.cpp
  http::Response render_error(const Error& e, const http::Request& req) const;
  std::string realm(const http::Request& req) const;
  // The repository's project when the caller may `need` it; else UNAUTHORIZED (a scoped
  // token without the scope: the client asks for a wider token), NAME_UNKNOWN or DENIED.
  std::string authorize(const http::Request& req, const std::string& name, Need need) const;
  bool may(const http::Principal& who, const std::string& name, Need need) const;
  void check_quota(const std::string& project, std::uint64_t more) const;
  // Links a committed blob into a repository (its project pays for it once).
  void link_blob(const std::string& name, const std::string& project, const std::string& digest, std::uint64_t size,
                 const std::string& kind);
  void refresh_usage(const std::string& project);
  // Verifies, installs and links an upload's bytes as `digest` (quota checked first).
  void commit_upload(const std::string& name, const std::string& project,
                     const std::shared_ptr<UploadSession>& session, const std::string& digest);

  std::shared_ptr<http::BodySink> make_sink(http::Request& req);
  http::Response handle_get(http::Request& req);
  http::Response handle_put(http::Request& req);
  http::Response handle_post(http::Request& req);
  http::Response handle_patch(http::Request& req);
  http::Response handle_delete(http::Request& req);
  http::Response handle_token(http::Request& req);
  http::Response handle_catalog(http::Request& req);
  http::Response put_manifest(http::Request& req, const std::string& name, const std::string& project,
                              const std::string& reference);
  http::Response get_manifest(http::Request& req, const std::string& name, const std::string& reference);
  http::Response upload_status(const std::string& name, const UploadSession& s, int status) const;
  void background(std::stop_token st);

  Config config_;
  std::string cluster_;
  bool tls_ = false;
  db::Database& db_;
  auth::Module* auth_ = nullptr;
  auth::Authorizer* authz_ = nullptr;
  storage::Accounting* acct_ = nullptr;
  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<Uploads> uploads_;
};

}  // namespace neurod::registry

// The `storage` module (README.md here): the file storage API under /api/v1/storage.
#pragma once

#include "app/module.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace neurod::storage {

struct Config {
  std::string root;  // empty: <data_dir>/storage
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "storage";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  using Config = storage::Config;

  Module(const Config& config, app::ModuleContext& ctx);

  // For job volumes: the host directory (or file) behind a canonical storage URI
  // "storage://cluster/project/path". A missing path is created as a directory when
  // `read_only` is false; for a read-only mount it throws Error(not_found) saying which
  // path is missing. Throws Error(invalid_argument) for a URI outside this cluster or
  // one that would leave the storage root (symlinks included).
  std::filesystem::path resolve_mount(std::string_view storage_uri, bool read_only);

 private:
  std::filesystem::path root_;
  std::string cluster_;
};

}  // namespace neurod::storage

// The `secrets` module (README.md here): per-project secrets, encrypted at rest, under
// /api/v1/secrets; `neurod secrets rotate-key` offline (offline.cpp).
#pragma once

#include "app/module.hpp"
#include "modules/secrets/keys.hpp"
#include "modules/secrets/service.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace neurod::secrets {

struct Config {
  std::string master_key_file;  // empty: <data_dir>/secrets/master.key
  std::string master_key_env;   // an environment variable holding the key (base64); wins over the file
  static void describe(config::Schema<Config>& s);
};

// Where the keys come from for this config: the env variable, or the file (a relative
// path is under data_dir).
KeySource key_source(const Config& config, const std::filesystem::path& data_dir);

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "secrets";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  using Config = secrets::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  app::Health health() override;

  // `neurod secrets rotate-key` (offline.cpp).
  static std::vector<app::OfflineCommand> offline_commands();

  // The plaintext of a secret by its canonical URI "secret://cluster/project/key";
  // nullopt when there is no such secret. No permission check: the caller (jobs) has
  // checked `read` for the job's owner. Never log the result. Throws Error(internal)
  // (code secret_undecryptable) when the stored value fails authentication.
  std::optional<std::string> value(std::string_view secret_uri);

  Service& service() { return *service_; }

 private:
  void add_routes(http::Router& r);  // api.cpp

  std::string cluster_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<Service> service_;
};

}  // namespace neurod::secrets

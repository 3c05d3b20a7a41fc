// The `secrets` module (README.md here): per-project secrets, encrypted at rest.
// SKELETON: the secrets helper replaces this with the real module.
#pragma once

#include "app/module.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace neurod::secrets {

struct Config {
  static void describe(config::Schema<Config>& s);
};

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "secrets";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 2> kDepends{"system", "auth"};
  using Config = secrets::Config;

  Module(const Config& config, app::ModuleContext& ctx);

  // The plaintext of a secret by its canonical URI "secret://cluster/project/key";
  // nullopt when there is no such secret. No permission check: the caller (jobs) has
  // checked `read` for the job's owner. Never log the result.
  std::optional<std::string> value(std::string_view secret_uri);
};

}  // namespace neurod::secrets

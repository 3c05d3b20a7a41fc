// The `console` module (README.md here): serves the web console (web/) from the binary,
// or from a directory during development, with a strict Content-Security-Policy, cache
// headers for hashed assets and the single-page app's fallback routing.
#pragma once

#include "app/module.hpp"

#include <memory>

namespace neurod::console {

struct Config {
  // Serve the console from this directory (vite's dist/) instead of the embedded copy:
  // for working on web/ without rebuilding neurod. Files are read on every request.
  std::string directory;
  // Sent with every console page. The default allows nothing but neurod's own origin.
  std::string content_security_policy =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
      "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
  static void describe(config::Schema<Config>& s);
};

class Files;  // the embedded copy or a directory (module.cpp)

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "console";
  static constexpr app::Roles kRoles = app::kControlPlane;
  static constexpr std::array<std::string_view, 1> kDepends{"system"};
  using Config = console::Config;

  Module(const Config& config, app::ModuleContext& ctx);
  ~Module() override;
  app::Health health() override;

 private:
  http::Response serve(const http::Request& req) const;

  Config config_;
  std::unique_ptr<Files> files_;
};

}  // namespace neurod::console

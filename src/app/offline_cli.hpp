// Shared pieces of the modules' offline commands (`neurod auth …`, `neurod secrets …`,
// `neurod registry …`): argument parsing with CLI11 and the module's config. Header-only,
// included by the modules' offline.cpp files alone, so CLI11 stays out of module headers.
#pragma once

#include "app/module.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace neurod::app {

// Parses an offline command's arguments as OfflineCommand::run receives them. nullopt: go
// on; else the exit code to return (0 after --help, 2 for a usage error, like the rest of
// neurod), CLI11 having printed what to say.
inline std::optional<int> parse_offline_args(CLI::App& cli, const std::vector<std::string>& args) {
  std::vector<std::string> argv(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    cli.parse(argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// The module's parsed Config, or its defaults when its YAML section is absent.
template <class Config>
Config offline_config(const OfflineContext& ctx) {
  const auto* cfg = static_cast<const Config*>(ctx.module_config());
  return cfg ? *cfg : Config{};
}

}  // namespace neurod::app

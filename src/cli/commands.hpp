// Command registration. Each group lives in its own commands_<group>.cpp and adds
// its subcommands to the app; a command's CLI11 callback stores what to run in
// Context::action, and main runs it once parsing has succeeded. A new group is one
// file and one line in kCommandGroups.
#pragma once

#include "cli/context.hpp"

#include <CLI/CLI.hpp>

namespace neurod::cli {

using RegisterCommands = void (*)(CLI::App& app, Context& ctx);

void register_system_commands(CLI::App& app, Context& ctx);  // version, health
void register_config_commands(CLI::App& app, Context& ctx);  // config show|set-url

// In the order they appear in --help.
inline constexpr RegisterCommands kCommandGroups[] = {
    register_system_commands,
    register_config_commands,
};

// Sets cmd's callback to store fn in ctx.action.
inline void on_run(CLI::App* cmd, Context& ctx, std::function<int()> fn) {
  cmd->callback([&ctx, fn = std::move(fn)] { ctx.action = fn; });
}

}  // namespace neurod::cli

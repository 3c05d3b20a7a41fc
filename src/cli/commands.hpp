// Command registration. Each group lives in its own commands_<group>.cpp and adds
// its subcommands to the app; a command's CLI11 callback stores what to run in
// Context::action, and main runs it once parsing has succeeded. A new group is one
// file and one line in kCommandGroups.
#pragma once

#include "cli/context.hpp"

#include <CLI/CLI.hpp>

namespace neurod::cli {

using RegisterCommands = void (*)(CLI::App& app, Context& ctx);

void register_system_commands(CLI::App& app, Context& ctx);
void register_config_commands(CLI::App& app, Context& ctx);
void register_auth_commands(CLI::App& app, Context& ctx);
void register_job_commands(CLI::App& app, Context& ctx);
void register_exec_commands(CLI::App& app, Context& ctx);
void register_acl_commands(CLI::App& app, Context& ctx);
void register_secret_commands(CLI::App& app, Context& ctx);
void register_admin_commands(CLI::App& app, Context& ctx);
void register_storage_commands(CLI::App& app, Context& ctx);
void register_image_commands(CLI::App& app, Context& ctx);
void register_notify_commands(CLI::App& app, Context& ctx);
void register_top_commands(CLI::App& app, Context& ctx);
void register_forward_commands(CLI::App& app, Context& ctx);

// In the order they appear in --help.
inline constexpr RegisterCommands kCommandGroups[] = {
    register_system_commands,  // version, health
    register_config_commands,  // config show|set-url
    register_auth_commands,    // login, logout, whoami, token, service-account, quota
    register_job_commands,     // run, ps, status, logs, kill, bump-life-span, job …
    register_top_commands,     // top
    register_exec_commands,    // exec, attach (also under job; after it)
    register_forward_commands, // port-forward, save
    register_storage_commands, // cp, ls, mkdir, mv, rm, storage …
    register_image_commands,   // image …, config docker, docker-credential
    register_acl_commands,     // acl, role, project
    register_secret_commands,  // secret add|ls|get|rm
    register_notify_commands,  // notify set|ls|rm|test|log|defaults
    register_admin_commands,   // admin user|quota|audit
};

// Sets cmd's callback to store fn in ctx.action.
inline void on_run(CLI::App* cmd, Context& ctx, std::function<int()> fn) {
  cmd->callback([&ctx, fn = std::move(fn)] { ctx.action = fn; });
}

}  // namespace neurod::cli

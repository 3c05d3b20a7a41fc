// `neurod registry gc`: one garbage-collection pass with the daemon running or not (the
// store's lock keeps it from racing a push in a running neurod).
#include "modules/registry/module.hpp"

#include "core/units.hpp"
#include "app/offline_cli.hpp"
#include "db/database.hpp"

#include <fmt/format.h>

#include <iostream>

namespace neurod::registry {

namespace {

int registry_command(const std::vector<std::string>& args, app::OfflineContext& ctx) {
  CLI::App cli{"Registry maintenance (offline)", "neurod registry"};
  cli.require_subcommand(1);
  bool dry_run = false;
  std::string grace_text;
  auto* gc = cli.add_subcommand(
      "gc",
      "Remove blobs no repository holds and layers no manifest refers to, older than the grace period "
      "(modules.registry.gc_grace unless --grace). Safe while neurod runs.");
  gc->add_flag("--dry-run", dry_run, "Only say what would be removed");
  gc->add_option("--grace", grace_text, "Keep what is younger than this (e.g. 0s, 30m, 1h)");
  if (auto rc = app::parse_offline_args(cli, args)) return *rc;
  const auto config = app::offline_config<Config>(ctx);
  Duration grace = config.gc_grace;
  if (!grace_text.empty()) {
    auto g = parse_duration(grace_text);
    if (!g) {
      std::cerr << "neurod registry gc: --grace: expected a duration like 30m, not \"" << grace_text << "\"\n";
      return 2;
    }
    grace = *g;
  }
  std::filesystem::path root =
      config.root.empty() ? std::filesystem::path(ctx.global().data_dir) / "registry" : std::filesystem::path(config.root);
  if (!std::filesystem::exists(root / "blobs")) {
    std::cout << "no registry data under " << root.string() << "\n";
    return 0;
  }
  BlobStore store(root);
  auto r = collect_garbage(ctx.db(), store, grace, dry_run);
  std::cout << fmt::format("{} {} blob{} ({} bytes) and {} unreferenced layer link{}{}\n",
                           dry_run ? "would remove" : "removed", r.blobs, r.blobs == 1 ? "" : "s", r.bytes, r.links,
                           r.links == 1 ? "" : "s",
                           dry_run ? "" : "; a running neurod recounts the projects' usage within 10 minutes");
  return 0;
}

}  // namespace

std::vector<app::OfflineCommand> Module::offline_commands() {
  return {{"registry", "Registry maintenance: gc (garbage-collect unreferenced blobs)", registry_command}};
}

}  // namespace neurod::registry

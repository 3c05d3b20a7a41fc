#include "modules/storage/module.hpp"

#include "core/errors.hpp"

namespace neurod::storage {

void Config::describe(config::Schema<Config>& s) {
  s.field("root", &Config::root, "The storage root directory (local disk or an NFS mount). Empty: <data_dir>/storage.");
}

Module::Module(const Config& config, app::ModuleContext& ctx) : cluster_(ctx.global().cluster_name) {
  root_ = config.root.empty() ? ctx.module_dir("storage") : std::filesystem::path(config.root);
}

std::filesystem::path Module::resolve_mount(std::string_view uri, bool) {
  throw Error(errc::not_implemented, "storage mounts are not implemented yet: " + std::string(uri));
}

}  // namespace neurod::storage

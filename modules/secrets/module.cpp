#include "modules/secrets/module.hpp"

namespace neurod::secrets {

void Config::describe(config::Schema<Config>&) {}

Module::Module(const Config&, app::ModuleContext&) {}

std::optional<std::string> Module::value(std::string_view) { return std::nullopt; }

}  // namespace neurod::secrets

#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_log_routes(http::Router&) {}

}  // namespace neurod::monitoring

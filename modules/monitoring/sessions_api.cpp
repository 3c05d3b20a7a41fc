#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_session_routes(http::Router&) {}

}  // namespace neurod::monitoring

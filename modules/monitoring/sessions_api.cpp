#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_session_routes(http::Router& r) { add_exec_routes(r); }

}  // namespace neurod::monitoring

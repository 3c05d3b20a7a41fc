#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_session_routes(http::Router& r) {
  add_forward_routes(r);  // port_forward.cpp
}

}  // namespace neurod::monitoring

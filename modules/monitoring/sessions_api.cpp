#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_session_routes(http::Router& r) {
  add_exec_routes(r);     // exec.cpp: exec, attach, kill
  add_forward_routes(r);  // port_forward.cpp: port_forward, save
}

}  // namespace neurod::monitoring

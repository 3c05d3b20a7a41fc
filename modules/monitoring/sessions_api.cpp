#include "modules/monitoring/module.hpp"

namespace neurod::monitoring {

void Module::add_session_routes(http::Router& r) {
  add_exec_routes(r);     // exec.cpp: exec, attach, kill
  add_forward_routes(r);  // port_forward.cpp: port_forward, save
  add_http_proxy_routes(r);  // http_proxy.cpp: /api/v1/jobs/{job}/http/...
}

}  // namespace neurod::monitoring

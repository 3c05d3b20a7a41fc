// The route table (DESIGN §3). Modules add routes while they are constructed; the
// app freezes the table before the listener opens. Patterns are literal segments,
// "{name}" for one segment and "{name...}" (last only) for the rest of the path.
#pragma once

#include "http/types.hpp"

#include <mutex>

namespace neurod::http {

struct Route {
  Method method;
  std::string pattern;
  Handler handler;             // empty for WebSocket routes
  WebSocketFactory websocket;  // set for WebSocket routes (method GET)
  RouteOptions options;
  std::string module;  // which module registered it
};

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Throws std::logic_error on a duplicate (method, pattern), a bad pattern, or a frozen table.
  void add(Method method, std::string pattern, Handler handler, RouteOptions options = {});
  void get(std::string pattern, Handler h, RouteOptions o = {}) {
    add(Method::get, std::move(pattern), std::move(h), std::move(o));
  }
  void post(std::string pattern, Handler h, RouteOptions o = {}) {
    add(Method::post, std::move(pattern), std::move(h), std::move(o));
  }
  void put(std::string pattern, Handler h, RouteOptions o = {}) {
    add(Method::put, std::move(pattern), std::move(h), std::move(o));
  }
  void patch(std::string pattern, Handler h, RouteOptions o = {}) {
    add(Method::patch, std::move(pattern), std::move(h), std::move(o));
  }
  void del(std::string pattern, Handler h, RouteOptions o = {}) {
    add(Method::del, std::move(pattern), std::move(h), std::move(o));
  }
  void websocket(std::string pattern, WebSocketFactory factory, RouteOptions options = {});

  // The route for a GET or HEAD that matches no pattern and whose first segment no route
  // starts with (so /api/... and /v2/... keep their 404): the console's single-page app
  // answers every other path with its index. Listed in routes() as "GET /{path...}"; the
  // handler gets the whole path (without the leading '/') as param "path". At most one.
  void set_fallback(Handler handler, RouteOptions options = {});

  // The module name recorded on routes added from now on (set by the app).
  void set_current_module(std::string name) { current_module_ = std::move(name); }

  // Set once by the module that authenticates (auth); without one, every
  // non-public route answers 401.
  void set_authenticator(Authenticator a);
  const Authenticator& authenticator() const { return authenticator_; }

  // Called once per finished request (any status, WebSocket upgrades included) on the
  // thread that finished it, often an I/O thread: observers must not block. The audit
  // log uses it. `route` is the matched route, nullptr when none matched.
  using Observer = std::function<void(const Request& request, const Route* route, int status)>;
  void add_observer(Observer o);
  const std::vector<Observer>& observers() const { return observers_; }

  void freeze();
  bool frozen() const { return frozen_; }

  struct Match {
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<Method> allowed;  // when the path matched but not the method (405 + Allow)
  };
  // HEAD falls back to the GET route.
  Match match(Method method, std::string_view path) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
  const Route* fallback_ = nullptr;
  std::string current_module_;
  Authenticator authenticator_;
  std::vector<Observer> observers_;
  bool frozen_ = false;
};

}  // namespace neurod::http

#include "http/router.hpp"

#include <cctype>
#include <functional>
#include <map>
#include <stdexcept>

namespace neurod::http {

// A trie by path segment. Literal children are tried before a "{param}" child, and a
// "{rest...}" tail matches last, so /jobs/stats wins over /jobs/{id}.
struct Router::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literal;
  std::unique_ptr<Node> param;
  std::string param_name;
  std::unique_ptr<Node> tail;  // "{name...}"
  std::string tail_name;
  std::map<Method, Route*> routes;
};

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  // "/a/" keeps a trailing empty segment; "/" is one empty segment.
  return out;
}

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

void Router::add(Method method, std::string pattern, Handler handler, RouteOptions options) {
  if (frozen_) throw std::logic_error("route table is frozen; cannot add " + pattern);
  if (pattern.empty() || pattern[0] != '/') throw std::logic_error("route pattern must start with '/': " + pattern);
  auto route = std::make_unique<Route>(Route{method, pattern, std::move(handler), {}, std::move(options), current_module_});
  Node* node = root_.get();
  auto segments = split_path(pattern);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    auto seg = segments[i];
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      auto name = seg.substr(1, seg.size() - 2);
      bool is_tail = name.size() > 3 && name.ends_with("...");
      if (is_tail) {
        name.remove_suffix(3);
        if (i + 1 != segments.size()) throw std::logic_error("'{" + std::string(name) + "...}' must be last: " + pattern);
      }
      if (!valid_name(name)) throw std::logic_error("bad parameter name in route pattern: " + pattern);
      auto& child = is_tail ? node->tail : node->param;
      auto& child_name = is_tail ? node->tail_name : node->param_name;
      if (!child) {
        child = std::make_unique<Node>();
        child_name = name;
      } else if (child_name != name) {
        throw std::logic_error("route " + pattern + " names parameter '" + std::string(name) + "' where another route names it '" +
                               child_name + "'");
      }
      node = child.get();
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) throw std::logic_error("bad route pattern: " + pattern);
      auto it = node->literal.find(seg);
      if (it == node->literal.end()) it = node->literal.emplace(std::string(seg), std::make_unique<Node>()).first;
      node = it->second.get();
    }
  }
  if (node->routes.contains(method))
    throw std::logic_error("duplicate route " + std::string(to_string(method)) + " " + pattern + " (registered by module '" +
                           node->routes[method]->module + "')");
  node->routes[method] = route.get();
  routes_.push_back(std::move(route));
}

void Router::websocket(std::string pattern, WebSocketFactory factory, RouteOptions options) {
  options.body = BodyKind::none;
  add(Method::get, pattern, nullptr, options);
  routes_.back()->websocket = std::move(factory);
}

void Router::set_fallback(Handler handler, RouteOptions options) {
  if (frozen_) throw std::logic_error("route table is frozen; cannot set the fallback route");
  if (fallback_)
    throw std::logic_error("a fallback route is already set (by module '" + fallback_->module + "')");
  auto route = std::make_unique<Route>(
      Route{Method::get, "/{path...}", std::move(handler), {}, std::move(options), current_module_});
  fallback_ = route.get();
  routes_.push_back(std::move(route));
}

void Router::set_authenticator(Authenticator a) {
  if (frozen_) throw std::logic_error("route table is frozen; cannot set the authenticator");
  if (authenticator_) throw std::logic_error("an authenticator is already set");
  authenticator_ = std::move(a);
}

void Router::add_observer(Observer o) {
  if (frozen_) throw std::logic_error("route table is frozen; cannot add an observer");
  observers_.push_back(std::move(o));
}

void Router::freeze() { frozen_ = true; }


Router::Match Router::match(Method method, std::string_view path) const {
  Match m;
  auto segments = split_path(path);
  std::vector<std::pair<std::string, std::string>> params;

  // Depth-first with backtracking: literal, then {param}, then {tail...}.
  const Node* found = nullptr;
  std::function<bool(const Node*, std::size_t)> walk = [&](const Node* node, std::size_t i) -> bool {
    if (i == segments.size()) {
      if (node->routes.empty()) return false;
      found = node;
      return true;
    }
    auto seg = segments[i];
    if (auto it = node->literal.find(seg); it != node->literal.end() && walk(it->second.get(), i + 1)) return true;
    if (node->param && !seg.empty()) {
      params.emplace_back(node->param_name, std::string(seg));
      if (walk(node->param.get(), i + 1)) return true;
      params.pop_back();
    }
    if (node->tail && !node->tail->routes.empty()) {
      std::string rest;
      for (std::size_t k = i; k < segments.size(); ++k) {
        if (k > i) rest += '/';
        rest += segments[k];
      }
      if (!rest.empty()) {
        params.emplace_back(node->tail_name, std::move(rest));
        found = node->tail.get();
        return true;
      }
    }
    return false;
  };
  if (!walk(root_.get(), 0)) {
    // Paths under a first segment that routes use (/api, /v2, /metrics) keep their 404.
    if (fallback_ && (method == Method::get || method == Method::head) && !root_->literal.contains(segments[0])) {
      m.route = fallback_;
      m.params.emplace_back("path", std::string(path.empty() ? path : path.substr(1)));
    }
    return m;
  }

  auto pick = [&](Method want) -> const Route* {
    auto it = found->routes.find(want);
    return it == found->routes.end() ? nullptr : it->second;
  };
  m.route = pick(method);
  if (!m.route && method == Method::head) {
    m.route = pick(Method::get);
    if (m.route && m.route->websocket) m.route = nullptr;
  }
  if (m.route) {
    m.params = std::move(params);
  } else {
    for (const auto& [meth, r] : found->routes) m.allowed.push_back(meth);
    if (found->routes.contains(Method::get) && !found->routes.contains(Method::head)) m.allowed.push_back(Method::head);
  }
  return m;
}

}  // namespace neurod::http

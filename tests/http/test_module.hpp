// A module that exists only in the http tests: routes that exercise the server's
// mechanisms (bodies, uploads, downloads, streams, WebSocket, errors, auth, drain).
#pragma once

#include "app/module.hpp"

#include <array>
#include <atomic>
#include <fstream>
#include <thread>

namespace neurod::testing {

struct Config {
  std::string greeting = "hello";
  static void describe(config::Schema<Config>& s) { s.field("greeting", &Config::greeting, "Greeting for /test/echo"); }
};

// Records lifecycle calls so tests can check the order.
inline std::vector<std::string>& lifecycle_log() {
  static std::vector<std::string> log;
  return log;
}

class Module : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "testing";
  static constexpr app::Roles kRoles = app::kBothRoles;
  static constexpr std::array<std::string_view, 1> kDepends{"system"};
  using Config = testing::Config;

  Module(const Config& cfg, app::ModuleContext& ctx) : cfg_(cfg) {
    lifecycle_log().push_back("construct testing");
    auto& r = ctx.router();
    const http::RouteOptions pub{.public_route = true};
    r.post("/test/echo", [this](http::Request& req) {
      return http::Response::json({{"greeting", cfg_.greeting}, {"body", req.body}, {"size", req.body_size}});
    }, [&] { auto o = pub; o.body_limit = 1024; return o; }());
    r.post("/test/json", [](http::Request& req) { return http::Response::json({{"got", req.json()}}); }, pub);
    r.put("/test/upload", [](http::Request& req) {
      std::ifstream in(req.body_file, std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)), {});
      return http::Response::json({{"size", req.body_size}, {"read", data.size()}, {"head", data.substr(0, 16)}});
    }, [&] { auto o = pub; o.body = http::BodyKind::file; o.body_limit = 10 * 1024 * 1024; return o; }());
    file_ = ctx.module_dir("testing") / "blob.bin";
    {
      std::ofstream out(file_, std::ios::binary);
      for (int i = 0; i < 100000; ++i) out.put(static_cast<char>('a' + i % 26));
    }
    r.get("/test/file", [this](http::Request&) { return http::Response::from_file(file_); }, pub);
    r.get("/test/items/{id}", [](http::Request& req) { return http::Response::json({{"id", req.param("id")}}); }, pub);
    r.get("/test/tree/{path...}", [](http::Request& req) { return http::Response::json({{"path", req.param("path")}}); }, pub);
    r.get("/test/stream", [](http::Request& req) {
      int n = std::stoi(req.query_param("n").value_or("3"));
      return http::Response::stream("application/x-ndjson", [n](http::StreamWriter& w) {
        for (int i = 0; i < n; ++i) {
          if (!w.write(nlohmann::json{{"i", i}}.dump() + "\n")) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }, pub);
    r.get("/test/private", [](http::Request& req) { return http::Response::json({{"user", req.principal.name}}); });
    // A handler whose functor is too big for std::function's inline buffer (heap-held).
    r.get("/test/big", [big = std::string(200, 'b'), extra = std::array<void*, 4>{}](http::Request&) {
      return http::Response::json({{"size", big.size() + extra.size()}});
    }, pub);
    r.get("/test/boom", [](http::Request&) -> http::Response { throw std::runtime_error("secret detail"); }, pub);
    r.get("/test/inject", [](http::Request&) {
      auto res = http::Response::text("x");
      res.headers.set("X-Evil", "a\r\nSet-Cookie: stolen=1");
      return res;
    }, pub);
    r.get("/test/busy", [](http::Request&) -> http::Response { throw Error(errc::db_busy, ""); }, pub);
    r.get("/test/slow", [](http::Request& req) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(req.query_param("ms").value_or("300"))));
      return http::Response::json({{"slow", true}});
    }, pub);
    r.websocket("/test/ws", [](http::Request&) {
      http::WebSocketHandler h;
      h.on_message = [](std::shared_ptr<http::WebSocket> ws, std::string msg, bool binary) {
        if (msg == "close") return ws->close(1000, "bye");
        binary ? ws->send_binary(msg) : ws->send_text("echo:" + msg);
      };
      return h;
    }, pub);
  }
  ~Module() override { lifecycle_log().push_back("destroy testing"); }
  void on_stopping() override { lifecycle_log().push_back("stopping testing"); }

 private:
  Config cfg_;
  std::filesystem::path file_;
};

// A module whose constructor fails, to test atomic start-up.
struct BoomConfig {
  static void describe(config::Schema<BoomConfig>&) {}
};
class Boom : public app::ModuleBase {
 public:
  static constexpr std::string_view kName = "boom";
  static constexpr app::Roles kRoles = app::kBothRoles;
  static constexpr std::array<std::string_view, 1> kDepends{"testing"};
  using Config = BoomConfig;
  Boom(const Config&, app::ModuleContext&) { throw std::runtime_error("the disk is on fire"); }
};

}  // namespace neurod::testing

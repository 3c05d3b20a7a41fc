// A module that exists only in the http tests: routes that exercise the server's
// mechanisms (bodies, uploads, downloads, streams, WebSocket, errors, auth, drain).
#pragma once

#include "app/module.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <mutex>
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
    // An authenticated WebSocket: says who the caller is, then closes.
    r.websocket("/test/ws_private", [](http::Request& req) {
      http::WebSocketHandler h;
      h.on_open = [name = req.principal.name](std::shared_ptr<http::WebSocket> ws) {
        ws->send_text("you are " + name);
        ws->close(1000, "bye");
      };
      return h;
    });
    // Back-pressure (WebSocket in types.hpp). ws_flood: a producer thread sends
    // kFloodBytes in 64 KiB messages, keeping at most 1 MiB queued by waiting for on_drain;
    // the most it ever saw queued goes to flood_max_queued().
    r.websocket("/test/ws_flood", [](http::Request&) {
      http::WebSocketHandler h;
      h.on_open = [](std::shared_ptr<http::WebSocket> ws) {
        struct Gate {
          std::mutex mu;
          std::condition_variable cv;
          bool drained = false;
        };
        auto gate = std::make_shared<Gate>();
        ws->on_drain(512 * 1024, [gate] {
          std::lock_guard lock(gate->mu);
          gate->drained = true;
          gate->cv.notify_all();
        });
        std::thread([ws, gate] {
          std::string chunk(64 * 1024, 'f');
          for (std::size_t sent = 0; sent < kFloodBytes && ws->is_open(); sent += chunk.size()) {
            std::unique_lock lock(gate->mu);
            while (ws->queued_bytes() >= 1024 * 1024 && ws->is_open()) {
              gate->drained = false;
              gate->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return gate->drained; });
            }
            lock.unlock();
            ws->send_binary(chunk);
            auto q = ws->queued_bytes();
            auto prev = flood_max_queued().load();
            while (q > prev && !flood_max_queued().compare_exchange_weak(prev, q)) {
            }
          }
          ws->close(1000, "done");
        }).detach();
      };
      return h;
    }, pub);
    // ws_pause: "pause" stops reading; 300 ms later the server says "resumed" and reads
    // again, so what the client sent meanwhile is echoed only after "resumed".
    r.websocket("/test/ws_pause", [](http::Request&) {
      http::WebSocketHandler h;
      h.on_message = [](std::shared_ptr<http::WebSocket> ws, std::string msg, bool) {
        if (msg != "pause") return ws->send_text("echo:" + msg);
        ws->pause_reading();
        std::thread([ws] {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          ws->send_text("resumed");
          ws->resume_reading();
        }).detach();
      };
      return h;
    }, pub);
    // tunnel: a byte tunnel to an echo thread on the other end of a socketpair.
    r.websocket("/test/tunnel", [](http::Request&) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw Error(errc::internal, "socketpair");
      std::thread([fd = sv[1]] {
        std::vector<char> buf(64 * 1024);
        for (;;) {
          auto n = ::read(fd, buf.data(), buf.size());
          if (n <= 0) break;
          for (ssize_t off = 0; off < n;) {
            auto w = ::write(fd, buf.data() + off, std::size_t(n - off));
            if (w <= 0) {
              ::close(fd);
              return;
            }
            off += w;
          }
        }
        ::close(fd);
      }).detach();
      http::WebSocketHandler h;
      h.tunnel_fd = std::shared_ptr<int>(new int(sv[0]), [](int* p) {
        ::close(*p);
        delete p;
      });
      return h;
    }, pub);
  }
  static constexpr std::size_t kFloodBytes = 64ull << 20;
  static std::atomic<std::size_t>& flood_max_queued() {
    static std::atomic<std::size_t> v{0};
    return v;
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

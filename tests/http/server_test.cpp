// The HTTP server's behaviour through a real socket: routing, bodies, limits,
// timeouts, streaming, WebSocket, errors and drain.
#include "http/test_module.hpp"
#include "http/tunnel_helpers.hpp"
#include "http/ws_client.hpp"
#include "support/server/server.hpp"

#include <doctest/doctest.h>

#include <future>
#include <thread>

using namespace neurod;
using test::RawConnection;
using test::ServerSpec;
using test::TestServer;

namespace {

ServerSpec with_testing(std::string http_yaml = "") {
  ServerSpec s;
  s.extra_modules.push_back(app::describe_module<testing::Module>());
  s.http_yaml = std::move(http_yaml);
  return s;
}

int status_of(const std::string& raw) {
  if (raw.size() < 12 || !raw.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(raw.substr(9, 3));
}

}  // namespace

TEST_CASE("system routes answer with JSON") {
  TestServer server;
  auto c = server.client();
  auto ping = c.get("/api/v1/ping");
  CHECK(ping.status == 200);
  CHECK(ping.json()["pong"] == true);
  CHECK(ping.header("Content-Type") == "application/json");
  CHECK(ping.header("X-Request-Id").has_value());

  auto version = c.get("/api/v1/version");
  CHECK(version.json()["name"] == "neurod");
  CHECK(version.json()["version"] == NEUROD_VERSION);

  auto cfg = c.get("/api/v1/config").json();
  CHECK(cfg["cluster_name"] == "test");
  CHECK(cfg["authorized"] == false);
  CHECK(cfg["modules"] == nlohmann::json(server.app().running_modules()));
  CHECK(cfg["modules"][0] == "system");
  CHECK(cfg["roles"] == nlohmann::json::array({"control-plane", "compute"}));
}

TEST_CASE("health aggregates every module's health") {
  TestServer server(with_testing());
  auto h = server.client().get("/api/v1/health");
  CHECK(h.status == 200);
  auto j = h.json();
  CHECK(j["status"] == "ok");
  CHECK(j["modules"]["system"]["healthy"] == true);
  CHECK(j["modules"]["system"]["details"]["database"]["dialect"] == "sqlite");
  CHECK(j["modules"]["testing"]["healthy"] == true);
}

TEST_CASE("unknown routes, wrong methods and HEAD") {
  TestServer server(with_testing());
  auto c = server.client();
  auto nf = c.get("/api/v1/nope");
  CHECK(nf.status == 404);
  CHECK(nf.json()["error"]["code"] == "route_not_found");
  CHECK(nf.json()["error"]["request_id"] == *nf.header("X-Request-Id"));

  auto bad = c.request("DELETE", "/api/v1/ping");
  CHECK(bad.status == 405);
  CHECK(bad.json()["error"]["code"] == "method_not_allowed");
  CHECK(bad.header("Allow").value_or("").find("GET") != std::string::npos);

  auto head = c.request("HEAD", "/api/v1/version");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.header("Content-Length").value()) == c.get("/api/v1/version").body.size());
}

TEST_CASE("path parameters and the greedy tail") {
  TestServer server(with_testing());
  auto c = server.client();
  CHECK(c.get("/test/items/42").json()["id"] == "42");
  CHECK(c.get("/test/items/a%20b").json()["id"] == "a b");
  CHECK(c.get("/test/tree/a/b/c.txt").json()["path"] == "a/b/c.txt");
  CHECK(c.get("/test/items/").status == 404);
  CHECK(c.get("/test/items/%zz").status == 400);
}

TEST_CASE("a client-supplied request id is echoed - a bad one is replaced") {
  TestServer server;
  auto c = server.client();
  CHECK(c.request("GET", "/api/v1/ping", "", {{"X-Request-Id", "abc-123"}}).header("X-Request-Id") == "abc-123");
  auto r = c.request("GET", "/api/v1/ping", "", {{"X-Request-Id", "has spaces"}});
  CHECK(r.header("X-Request-Id") != "has spaces");
}

TEST_CASE("keep-alive serves several requests on one connection") {
  TestServer server;
  RawConnection conn(server.port());
  conn.send("GET /api/v1/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /api/v1/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto out = conn.read_until_close();
  CHECK(out.find("\"pong\":true") != std::string::npos);
  CHECK(out.find("\"name\":\"neurod\"") != std::string::npos);
}

TEST_CASE("malformed requests get 400 and the server keeps serving others") {
  TestServer server;
  for (const char* garbage : {"NOT A REQUEST\r\n\r\n", "GET /api/v1/ping HTTP/9.9\r\n\r\n", "GET /api/v1/ping HTTP/1.1\r\nBad Header\r\n\r\n",
                              "GET relative HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "\x01\x02\x03\r\n\r\n"}) {
    CAPTURE(garbage);
    RawConnection conn(server.port());
    conn.send(garbage);
    auto out = conn.read_until_close();
    CHECK(status_of(out) == 400);
    CHECK(out.find("\"code\":\"bad_request\"") != std::string::npos);
  }
  CHECK(server.client().get("/api/v1/ping").status == 200);
}

TEST_CASE("unsupported methods get 501") {
  TestServer server;
  RawConnection conn(server.port());
  conn.send("BREW /api/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(conn.read_until("\r\n\r\n")) == 501);
}

TEST_CASE("an oversized header gets 431") {
  TestServer server(with_testing("  max_header_size: 1KiB\n"));
  RawConnection conn(server.port());
  conn.send("GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  CHECK(status_of(conn.read_until_close()) == 431);
}

TEST_CASE("bodies: in memory within the route's limit, 413 before reading an oversized one") {
  TestServer server(with_testing());
  auto c = server.client();
  auto ok = c.request("POST", "/test/echo", "hi there");
  CHECK(ok.status == 200);
  CHECK(ok.json()["body"] == "hi there");
  CHECK(ok.json()["greeting"] == "hello");

  // A declared length over the limit is refused at once: no body is sent at all.
  RawConnection conn(server.port());
  conn.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
  auto out = conn.read_until("}");
  CHECK(status_of(out) == 413);
  CHECK(out.find("payload_too_large") != std::string::npos);
  CHECK(conn.closed_within(std::chrono::seconds(2)));

  // A chunked body that grows past the limit is cut off too.
  RawConnection chunked(server.port());
  std::string chunk(800, 'x');
  chunked.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  chunked.send("320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
  CHECK(status_of(chunked.read_until_close()) == 413);

  // A route without a body refuses one.
  CHECK(c.request("GET", "/api/v1/ping", "unexpected").status == 413);
}

TEST_CASE("malformed JSON is a 400 that says where") {
  TestServer server(with_testing());
  auto r = server.client().request("POST", "/test/json", "{\"a\": ", {{"Content-Type", "application/json"}});
  CHECK(r.status == 400);
  CHECK(r.json()["error"]["message"].get<std::string>().find("malformed JSON") != std::string::npos);
  CHECK(server.client().request("POST", "/test/json", "{\"a\": 1}").json()["got"]["a"] == 1);
}

TEST_CASE("Expect: 100-continue is answered before the body is sent") {
  TestServer server(with_testing());
  RawConnection conn(server.port());
  conn.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = conn.read_until("\r\n\r\n");
  CHECK(interim.starts_with("HTTP/1.1 100 Continue"));
  conn.send("hello");
  auto out = conn.read_until("}");
  CHECK(out.find("200 OK") != std::string::npos);
  CHECK(out.find("\"body\":\"hello\"") != std::string::npos);

  RawConnection refused(server.port());
  refused.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\nExpect: 100-continue\r\n\r\n");
  auto no = refused.read_until("}");
  CHECK(status_of(no) == 413);
}

TEST_CASE("uploads stream to a temp file that is removed afterwards") {
  TestServer server(with_testing());
  std::string body(3 * 1024 * 1024, 'z');
  body.replace(0, 5, "HELLO");
  auto r = server.client().request("PUT", "/test/upload", body);
  CHECK(r.status == 200);
  CHECK(r.json()["size"] == body.size());
  CHECK(r.json()["read"] == body.size());
  CHECK(r.json()["head"] == body.substr(0, 16));
  auto tmp = server.dir().path() / "data" / "tmp";
  CHECK(std::filesystem::is_directory(tmp));
  CHECK(std::filesystem::is_empty(tmp));
}

TEST_CASE("downloads support HEAD and Range") {
  TestServer server(with_testing());
  auto c = server.client();
  auto whole = c.get("/test/file");
  CHECK(whole.status == 200);
  CHECK(whole.body.size() == 100000);
  CHECK(whole.header("Accept-Ranges") == "bytes");

  auto head = c.request("HEAD", "/test/file");
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == "100000");
  CHECK(head.body.empty());

  auto part = c.request("GET", "/test/file", "", {{"Range", "bytes=26-51"}});
  CHECK(part.status == 206);
  CHECK(part.body == "abcdefghijklmnopqrstuvwxyz");
  CHECK(part.header("Content-Range") == "bytes 26-51/100000");

  auto tail = c.request("GET", "/test/file", "", {{"Range", "bytes=-4"}});
  CHECK(tail.status == 206);
  CHECK(tail.body.size() == 4);

  auto open_ended = c.request("GET", "/test/file", "", {{"Range", "bytes=99990-"}});
  CHECK(open_ended.body.size() == 10);

  auto beyond = c.request("GET", "/test/file", "", {{"Range", "bytes=200000-"}});
  CHECK(beyond.status == 416);
  CHECK(beyond.header("Content-Range") == "bytes */100000");
}

TEST_CASE("chunked streams arrive piece by piece") {
  TestServer server(with_testing());
  auto c = server.client();
  std::vector<std::string> chunks;
  auto r = c.stream("GET", "/test/stream?n=5", [&](std::string_view chunk) {
    chunks.emplace_back(chunk);
    return true;
  });
  CHECK(r.status == 200);
  CHECK(r.header("Transfer-Encoding") == "chunked");
  std::string all;
  for (auto& ch : chunks) all += ch;
  CHECK(all == "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n{\"i\":4}\n");
  CHECK(chunks.size() >= 2);
  // The connection is reusable after a finished stream.
  CHECK(c.get("/api/v1/ping").status == 200);
}

TEST_CASE("WebSocket upgrade, echo and close") {
  TestServer server(with_testing());
  http::WebSocketClient ws(server.url(), "/test/ws");
  ws.send_text("one");
  auto m = ws.read();
  REQUIRE(m);
  CHECK(m->data == "echo:one");
  ws.send_binary(std::string("\x00\x01\x02", 3));
  m = ws.read();
  REQUIRE(m);
  CHECK(m->binary);
  CHECK(m->data.size() == 3);
  ws.send_text("close");
  CHECK_FALSE(ws.read());
  CHECK(ws.close_code() == 1000);

  // A plain GET on a WebSocket route is refused with a clear error.
  auto plain = server.client().get("/test/ws");
  CHECK(plain.status == 400);
  CHECK(plain.json()["error"]["code"] == "websocket_required");
}

TEST_CASE("errors: unexpected exceptions are generic 500s - busy database is 503 with Retry-After") {
  TestServer server(with_testing());
  auto c = server.client();
  auto boom = c.get("/test/boom");
  CHECK(boom.status == 500);
  CHECK(boom.body.find("secret detail") == std::string::npos);
  CHECK(boom.json()["error"]["code"] == "internal");
  auto busy = c.get("/test/busy");
  CHECK(busy.status == 503);
  CHECK(busy.header("Retry-After") == "1");
  CHECK(busy.json()["error"]["code"] == "db_busy");
}

TEST_CASE("a handler cannot inject headers through a line break") {
  TestServer server(with_testing());
  auto r = server.client().get("/test/inject");
  CHECK(r.status == 500);
  CHECK_FALSE(r.header("Set-Cookie").has_value());
}

TEST_CASE("handlers too big for std::function's inline buffer survive requests and closed connections") {
  // Regression: the server copied the handler into the coroutine that runs it on the
  // pool, and GCC 12 destroyed that copy twice: a double free when the connection ended.
  TestServer server(with_testing());
  for (int i = 0; i < 5; ++i) {
    auto c = server.client();
    auto r = c.get("/test/big");
    CHECK(r.status == 200);
    CHECK(r.json()["size"] == 204);
    CHECK(c.get("/test/big").status == 200);  // twice on one connection
  }
  CHECK(server.client().get("/api/v1/ping").status == 200);
}

TEST_CASE("routes are authenticated unless public") {
  TestServer server(with_testing());
  auto r = server.client().get("/test/private");
  CHECK(r.status == 401);
  CHECK(r.json()["error"]["code"] == "unauthenticated");
  CHECK(r.header("WWW-Authenticate").has_value());
}

TEST_CASE("a client that sends its header byte by byte is cut off by the header timeout") {
  TestServer server(with_testing("  header_timeout: 400ms\n"));
  RawConnection slow(server.port());
  auto start = std::chrono::steady_clock::now();
  const std::string req = "GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  bool cut = false;
  for (std::size_t i = 0; i < 200 && !cut; ++i) {
    slow.send(std::string(1, req[i % req.size()] == '\r' ? 'a' : req[i % req.size()]));
    cut = slow.closed_within(std::chrono::milliseconds(50));
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(cut);
  CHECK(elapsed < std::chrono::seconds(5));
  // Others are served meanwhile and after.
  CHECK(server.client().get("/api/v1/ping").status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  TestServer server(with_testing("  idle_timeout: 300ms\n"));
  RawConnection conn(server.port());
  conn.send("GET /api/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(conn.read_until("}")) == 200);
  CHECK(conn.closed_within(std::chrono::seconds(3)));
}

TEST_CASE("graceful stop lets an in-flight request finish") {
  TestServer server(with_testing());
  auto port = server.port();
  auto slow = std::async(std::launch::async, [port] {
    http::Client c("http://127.0.0.1:" + std::to_string(port));
    return c.get("/test/slow?ms=400");
  });
  // Wait until the request is in flight, then stop.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.app().metrics().render().find("neurod_http_requests_in_flight 1") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.app().stop(std::chrono::seconds(5));
  auto r = slow.get();
  CHECK(r.status == 200);
  CHECK(r.json()["slow"] == true);
  CHECK(r.header("Connection") == "close");
  CHECK_THROWS_AS(http::Client("http://127.0.0.1:" + std::to_string(port)).get("/api/v1/ping"), Error);
}

TEST_CASE("metrics count requests by route and status") {
  TestServer server(with_testing());
  auto c = server.client();
  c.get("/api/v1/ping");
  c.get("/test/items/7");
  c.get("/api/v1/nope");
  auto m = c.get("/metrics");
  CHECK(m.status == 200);
  CHECK(m.header("Content-Type").value_or("").starts_with("text/plain; version=0.0.4"));
  CHECK(m.body.find("neurod_http_requests_total{method=\"GET\",route=\"/api/v1/ping\",status=\"200\"} 1") != std::string::npos);
  CHECK(m.body.find("route=\"/test/items/{id}\"") != std::string::npos);
  CHECK(m.body.find("route=\"unmatched\",status=\"404\"") != std::string::npos);
  CHECK(m.body.find("neurod_http_request_duration_seconds_bucket") != std::string::npos);
  CHECK(m.body.find("process_resident_memory_bytes") != std::string::npos);
  CHECK(m.body.find("neurod_db_pool_sessions{state=\"idle\"}") != std::string::npos);
}

TEST_CASE("many concurrent clients on pool and I/O-thread routes") {
  // A regression test for a crash under load when handlers resumed from the blocking pool.
  TestServer server(with_testing());
  auto url = server.url();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t)
    clients.emplace_back([&, t] {
      http::Client c(url);
      for (int i = 0; i < 100; ++i) {
        auto path = (i % 2) ? "/api/v1/config" : (t % 2 ? "/test/items/" + std::to_string(i) : std::string("/api/v1/ping"));
        if (c.get(path).status == 200) ++ok;
      }
    });
  for (auto& th : clients) th.join();
  CHECK(ok == 1600);
}

TEST_CASE("HTTP/1.0 clients get keep-alive only when they ask for it") {
  TestServer server;
  RawConnection plain(server.port());
  plain.send("GET /api/v1/ping HTTP/1.0\r\n\r\n");
  auto out = plain.read_until_close();
  CHECK(status_of(out) == 200);
  CHECK(out.find("Connection: close") != std::string::npos);

  RawConnection keep(server.port());
  keep.send("GET /api/v1/ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto first = keep.read_until("}");
  CHECK(first.find("Connection: keep-alive") != std::string::npos);
  keep.send("GET /api/v1/version HTTP/1.0\r\n\r\n");
  CHECK(keep.read_until_close().find("neurod") != std::string::npos);
}

// --- WebSocket back-pressure and byte tunnels (types.hpp WebSocket, WebSocketHandler::tunnel_fd) ---

TEST_CASE("WebSocket back-pressure: a producer that waits for on_drain keeps the send queue bounded") {
  TestServer server(with_testing());
  testing::Module::flood_max_queued() = 0;
  http::WebSocketClient ws(server.url(), "/test/ws_flood");
  // A slow reader first: the producer must stop at its limit instead of queueing everything.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::size_t got = 0;
  while (auto m = ws.read()) got += m->data.size();
  CHECK(got == testing::Module::kFloodBytes);
  CHECK(ws.close_code() == 1000);
  CHECK(testing::Module::flood_max_queued().load() > 0);
  CHECK(testing::Module::flood_max_queued().load() <= 1024 * 1024 + 64 * 1024);
}

TEST_CASE("WebSocket back-pressure: pause_reading holds messages back until resume_reading") {
  TestServer server(with_testing());
  http::WebSocketClient ws(server.url(), "/test/ws_pause");
  ws.send_text("a");
  auto m = ws.read();
  REQUIRE(m);
  CHECK(m->data == "echo:a");
  ws.send_text("pause");
  ws.send_text("b");  // sent while the server does not read
  m = ws.read();
  REQUIRE(m);
  CHECK(m->data == "resumed");  // "b" was not handled before the resume
  m = ws.read();
  REQUIRE(m);
  CHECK(m->data == "echo:b");
  ws.close();
}

TEST_CASE("WebSocket tunnel: bytes go both ways intact, with a half-close, and many tunnels run at once") {
  TestServer server(with_testing());
  auto r = tunneltest::echo_through(server.url(), "/test/tunnel", "", 32ull << 20);
  CHECK(r.sent == 32ull << 20);
  CHECK(r.got == r.sent);
  CHECK(r.got_hash == r.sent_hash);

  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      auto e = tunneltest::echo_through(server.url(), "/test/tunnel", "", 1 << 20, std::uint64_t(i) + 7);
      if (e.got == e.sent && e.got_hash == e.sent_hash && e.sent == (1u << 20)) ++ok;
    });
  for (auto& t : threads) t.join();
  CHECK(ok == 16);
  // An empty stream: the half-close alone ends the tunnel.
  auto empty = tunneltest::echo_through(server.url(), "/test/tunnel", "", 0);
  CHECK(empty.got == 0);
}

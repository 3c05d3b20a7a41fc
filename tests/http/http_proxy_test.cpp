// The job HTTP proxy (modules/monitoring/http_proxy.cpp, src/http/forward.cpp) against real
// jobs that serve HTTP: the docker runtime on the test Podman service and the process
// runtime, every case on SQLite and PostgreSQL. The job's server is busybox nc running a
// shell script per connection: it answers /echo (and anything else) with the request it
// got (line, headers, body), /big with 20 MiB, /missing with a 404 and /redirect with a
// 302 that also tries to set neurod's session cookie.
#include "http/forward.hpp"
#include "http/jobs_helpers.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <strings.h>
#include <netinet/in.h>

using namespace neurod;
using namespace neurod::jobtest;

namespace {

const char* const kRuntimes[] = {"docker", "process"};
constexpr const char* kSandbox = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";
constexpr std::size_t kBig = 20u << 20;
constexpr const char* kBigLine = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";  // + "\n": 64 bytes

constexpr const char* kServer = R"(cr=$(printf '\r')
read -r line
line=${line%$cr}
set -- $line
t=$2
hdrs="$line
"
len=0
while IFS= read -r h; do
  h=${h%$cr}
  [ -z "$h" ] && break
  hdrs="$hdrs$h
"
  case "$h" in [Cc]ontent-[Ll]ength:*) len=${h#*:}; len=${len# } ;; esac
done
case "$t" in
  /big*) printf 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 20971520\r\n\r\n'
         yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c 20971520 ;;
  /chunked*) printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' ;;
  /cut*) printf 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..' ;;
  /missing*) printf 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope\n' ;;
  /redirect*) printf 'HTTP/1.1 302 Found\r\nLocation: /echo?from=redirect\r\nSet-Cookie: neurod_session=evil; Path=/\r\nSet-Cookie: app=1; Path=/\r\nContent-Length: 0\r\n\r\n' ;;
  *) printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-App: yes\r\n\r\n%sBODY:' "$hdrs"
     [ "$len" -gt 0 ] && head -c "$len" ;;
esac
)";

// A port nothing listens on now (the process runtime's jobs share the host's ports).
std::uint16_t free_port() {
  static std::atomic<unsigned> next{20000 + unsigned(::getpid() * 13) % 10000};
  for (;;) {
    auto port = static_cast<std::uint16_t>(20000 + next.fetch_add(11) % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    if (ok) return port;
  }
}

std::string submit(Api& api, const json& body) {
  auto r = api.post("/api/v1/jobs", body);
  REQUIRE_STATUS(r, 202);
  return r.json()["id"];
}

std::string proxy(const std::string& job, const std::string& rest = "") {
  return "/api/v1/jobs/" + job + "/http/" + rest;
}

// A running job serving kServer on `port`; returns once its page answers through the proxy.
std::string http_job(Api& api, std::uint16_t port, const std::string& runtime, json http = json::object()) {
  std::string busybox = runtime == "docker" ? "/bin/busybox" : "/usr/bin/busybox";
  http["port"] = port;
  json body = {{"image", test_image()},
               {"command", {busybox, "nc", "-ll", "-p", std::to_string(port), "-e", busybox, "sh", "-c", kServer}},
               {"http", http},
               {"preset_name", "cpu-tiny"}};  // 0.5 CPU: four jobs fit the 2-CPU test node
  auto id = submit(api, body);
  wait_status(api, id, "running");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto r = api.get(proxy(id, "echo"));
    if (r.status == 200) return id;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until,
                    "the HTTP server of job " << id << " never answered: " << r.status << " " << r.body
                                              << "; log: " << api.get("/api/v1/jobs/" + id + "/log").body);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::vector<std::string> headers_named(const authtest::Res& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers)
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) out.push_back(v);
  return out;
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("http::rewrite_location points the job's own root under the prefix") {
  std::string p = "/api/v1/jobs/job-1/http";
  CHECK(http::rewrite_location("/tree?x=1", p, "h:80") == p + "/tree?x=1");
  CHECK(http::rewrite_location("/", p, "h:80") == p + "/");
  CHECK(http::rewrite_location(p + "/lab", p, "h:80") == p + "/lab");  // already under it
  CHECK(http::rewrite_location("http://h:80/a", p, "h:80") == p + "/a");
  CHECK(http::rewrite_location("http://localhost:8888/a", p, "h:80") == p + "/a");
  CHECK(http::rewrite_location("http://127.0.0.1:8888", p, "h:80") == p + "/");
  CHECK(http::rewrite_location("https://example.com/a", p, "h:80") == "https://example.com/a");
  CHECK(http::rewrite_location("//example.com/a", p, "h:80") == "//example.com/a");
  CHECK(http::rewrite_location("next?page=2", p, "h:80") == "next?page=2");
}

TEST_CASE("http::scope_cookie keeps an upstream's cookies under its prefix") {
  std::string p = "/api/v1/jobs/job-1/http";
  CHECK(http::scope_cookie("a=1", p) == "a=1; Path=" + p + "/");
  CHECK(http::scope_cookie("a=1; Path=/", p) == "a=1; Path=" + p + "/");
  CHECK(http::scope_cookie("a=1; path=/lab; HttpOnly", p) == "a=1; Path=" + p + "/lab; HttpOnly");
  CHECK(http::scope_cookie("a=1; Path=" + p + "/x", p) == "a=1; Path=" + p + "/x");
  CHECK(http::scope_cookie("a=1; Domain=example.com; Secure; SameSite=Lax", p) ==
        "a=1; Secure; SameSite=Lax; Path=" + p + "/");
}

TEST_CASE_TEMPLATE("job http proxy: pages, query, body, 404, redirect, 20 MiB, no credentials to the job, sandboxed", B,
                   NEUROD_DB_BACKENDS) {
  for (std::string runtime : kRuntimes) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", executor_yaml(runtime));
    auto alice = env.user("alice");
    std::uint16_t port = runtime == "docker" ? 8080 : free_port();
    auto id = http_job(alice, port, runtime);
    auto prefix = "/api/v1/jobs/" + id + "/http";

    // The job's JSON links to it; the job knows where it is served.
    auto j = alice.get("/api/v1/jobs/" + id).json();
    CHECK(j["container"]["http"]["url"] == prefix + "/");
    CHECK(j["container"]["http"]["port"] == port);
    CHECK(j["container"]["http"]["requires_auth"] == true);

    // A page, with its query, through a token and cookies: the job sees neither neurod's
    // credentials nor its cookies, and gets the X-Forwarded-* headers.
    auto r = alice.request("GET", proxy(id, "echo?a=1&b=x%20y"), "",
                           {{"Cookie", "neurod_session=" + alice.token() + "; app=1; neurod_csrf=abc"},
                            {"X-CSRF-Token", "abc"}});
    REQUIRE_STATUS(r, 200);
    CHECK(r.body.starts_with("GET /echo?a=1&b=x%20y HTTP/1.1\n"));
    CHECK_FALSE(has(r.body, alice.token()));
    CHECK_FALSE(has(r.body, "uthorization"));
    CHECK_FALSE(has(r.body, "neurod_session"));
    CHECK_FALSE(has(r.body, "neurod_csrf"));
    CHECK_FALSE(has(r.body, "X-CSRF-Token"));
    CHECK(has(r.body, "Cookie: app=1\n"));
    CHECK(has(r.body, "X-Forwarded-Prefix: " + prefix + "\n"));
    CHECK(has(r.body, "X-Forwarded-Proto: http\n"));
    CHECK(has(r.body, "X-Forwarded-For: 127.0.0.1\n"));
    CHECK(has(r.body, "X-Forwarded-Host: 127.0.0.1:"));
    CHECK(r.header("X-App") == "yes");
    CHECK(r.header("Content-Type") == "text/plain");
    CHECK(r.header("Content-Security-Policy") == kSandbox);

    // The browser's way in: the session cookie alone.
    auto anon = env.anonymous();
    auto c = anon.request("GET", proxy(id, "echo"), "", {{"Cookie", "neurod_session=" + alice.token()}});
    REQUIRE_STATUS(c, 200);
    CHECK_FALSE(has(c.body, "neurod_session"));
    CHECK_FALSE(has(c.body, "Cookie:"));

    // The root, and the path without its slash.
    auto root = alice.get(proxy(id));
    REQUIRE_STATUS(root, 200);
    CHECK(root.body.starts_with("GET / HTTP/1.1\n"));
    auto bare = alice.get(prefix + "?x=1");
    EXPECT_STATUS(bare, 308);
    CHECK(bare.header("Location") == prefix + "/?x=1");

    // A body goes through.
    auto post = alice.request("POST", proxy(id, "submit"), "hello=world");
    REQUIRE_STATUS(post, 200);
    CHECK(post.body.starts_with("POST /submit HTTP/1.1\n"));
    CHECK(has(post.body, "Content-Length: 11\n"));
    CHECK(post.body.ends_with("BODY:hello=world"));
    auto put = alice.request("PUT", proxy(id, "x"), "{}");
    REQUIRE_STATUS(put, 200);
    CHECK(put.body.starts_with("PUT /x HTTP/1.1\n"));

    // The job's own errors pass through, sandboxed too.
    auto missing = alice.get(proxy(id, "missing"));
    EXPECT_STATUS(missing, 404);
    CHECK(missing.body == "nope\n");
    CHECK(missing.header("Content-Security-Policy") == kSandbox);

    // A redirect to the job's root lands under the prefix; it cannot set neurod's cookie.
    auto redirect = alice.get(proxy(id, "redirect"));
    EXPECT_STATUS(redirect, 302);
    CHECK(redirect.header("Location") == prefix + "/echo?from=redirect");
    // The job's own cookies stay under its prefix.
    CHECK(headers_named(redirect, "Set-Cookie") == std::vector<std::string>{"app=1; Path=" + prefix + "/"});

    // A chunked answer is passed on (re-chunked), with the job's caching headers.
    auto chunked = alice.get(proxy(id, "chunked"));
    REQUIRE_STATUS(chunked, 200);
    CHECK(chunked.body == "hello world");
    CHECK(chunked.header("Cache-Control") == "max-age=60");
    // An answer the job cuts short does not reach the client as a complete one.
    bool cut = false;
    try {
      auto c2 = alice.get(proxy(id, "cut"));
      cut = c2.body.size() < 100;
    } catch (const std::exception&) {
      cut = true;
    }
    CHECK(cut);

    // HEAD: the header only.
    auto head = alice.request("HEAD", proxy(id, "echo"));
    EXPECT_STATUS(head, 200);
    CHECK(head.body.empty());

    // 20 MiB stream through intact.
    std::string expected;
    expected.reserve(kBig);
    while (expected.size() < kBig) expected += std::string(kBigLine) + "\n";
    expected.resize(kBig);
    auto big = alice.get(proxy(id, "big"));
    REQUIRE_STATUS(big, 200);
    CHECK(big.body.size() == kBig);
    CHECK(big.body == expected);
    CHECK(big.header("Content-Security-Policy") == kSandbox);
    {
      // A slow reader: neurod stops reading from the job while the client is behind (and
      // goes on when its queue drains); nothing is lost or reordered.
      http::ClientOptions co;
      co.token = alice.token();
      http::Client slow(env.server().url(), co);
      std::string got;
      int pieces = 0;
      auto t0 = std::chrono::steady_clock::now();
      auto sr = slow.stream("GET", proxy(id, "big"), [&](std::string_view piece) {
        auto before = got.size() >> 18;  // a pause per 256 KiB over the first 8 MiB
        got.append(piece);
        ++pieces;
        if ((got.size() >> 18) != before && got.size() < (8u << 20))
          std::this_thread::sleep_for(std::chrono::milliseconds(40));
        return true;
      });
      MESSAGE("slow read: " << pieces << " pieces in "
                             << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");
      CHECK(sr.status == 200);
      CHECK(got.size() == kBig);
      CHECK(got == expected);
    }

    // WebSocket upgrades are not proxied (yet): a clear 501.
    auto ws = alice.request("GET", proxy(id, "ws"), "",
                            {{"Connection", "Upgrade"},
                             {"Upgrade", "websocket"},
                             {"Sec-WebSocket-Version", "13"},
                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
    EXPECT_STATUS(ws, 501);
    CHECK(ws.json()["error"]["code"] == "websocket_not_supported");

    // A job that is not running has nothing to serve.
    alice.del("/api/v1/jobs/" + id);
    wait_finished(alice, id);
    auto gone = alice.get(proxy(id, "echo"));
    EXPECT_STATUS(gone, 409);
    CHECK(gone.json()["error"]["code"] == "job_not_running");
  }
}

TEST_CASE_TEMPLATE("job http proxy: anonymous, other users, readers, no port, requires_auth=false", B,
                   NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", executor_yaml("process"));
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto anon = env.anonymous();
  auto id = http_job(alice, free_port(), "process");

  // Needs read on the job: 401 anonymous (with bad credentials too), 404 for bob.
  auto a = anon.get(proxy(id, "echo"));
  EXPECT_STATUS(a, 401);
  EXPECT_STATUS(anon.request("POST", proxy(id, "echo"), "x"), 401);
  EXPECT_STATUS(anon.request("GET", proxy(id), "", {{"Authorization", "Bearer nonsense"}}), 401);
  EXPECT_STATUS(anon.request("GET", proxy(id), "", {{"Cookie", "neurod_session=nonsense"}}), 401);
  EXPECT_STATUS(bob.get(proxy(id, "echo")), 404);
  EXPECT_STATUS(bob.request("DELETE", proxy(id, "echo")), 404);
  // By name too (a name is the caller's own).
  EXPECT_STATUS(anon.get("/api/v1/jobs/nosuchjob/http/"), 401);
  EXPECT_STATUS(bob.get("/api/v1/jobs/nosuchjob/http/"), 404);

  // A reader may open it.
  auto grant = alice.post("/api/v1/users/bob/permissions",
                          json::array({{{"uri", "job://test/alice/" + id}, {"action", "read"}}}));
  REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
  wait_job(bob, id, [](const json&) { return true; });
  auto b = bob.get(proxy(id, "echo?who=bob"));
  REQUIRE_STATUS(b, 200);
  CHECK(b.body.starts_with("GET /echo?who=bob HTTP/1.1\n"));

  // A job without an HTTP port.
  auto plain = submit(alice, sh_job("sleep 600", {{"preset_name", "cpu-tiny"}}));
  wait_status(alice, plain, "running");
  auto np = alice.get(proxy(plain));
  EXPECT_STATUS(np, 400);
  CHECK(np.json()["error"]["code"] == "no_http_port");
  CHECK(has(np.json()["error"]["message"].get<std::string>(), "--http-port"));
  EXPECT_STATUS(anon.get(proxy(plain)), 401);

  // requires_auth=false: anyone, with or without credentials, by id.
  auto open = http_job(alice, free_port(), "process", {{"requires_auth", false}});
  auto o = anon.get(proxy(open, "echo"));
  REQUIRE_STATUS(o, 200);
  CHECK(o.header("Content-Security-Policy") == kSandbox);
  EXPECT_STATUS(anon.request("POST", proxy(open, "form"), "k=v"), 200);
  EXPECT_STATUS(bob.get(proxy(open, "echo")), 200);
  auto creds = anon.request("GET", proxy(open, "echo"), "", {{"Authorization", "Bearer nonsense"}});
  REQUIRE_STATUS(creds, 200);
  CHECK_FALSE(has(creds.body, "nonsense"));
  CHECK(alice.get("/api/v1/jobs/" + open).json()["container"]["http"]["requires_auth"] == false);

  // Nothing listening on the port (yet): 502 that says so.
  auto quiet_port = free_port();
  auto quiet = submit(alice, sh_job("sleep 600", {{"http", {{"port", quiet_port}}}, {"preset_name", "cpu-tiny"}}));
  wait_status(alice, quiet, "running");
  auto q = alice.get(proxy(quiet));
  EXPECT_STATUS(q, 502);
  CHECK(q.json()["error"]["code"] == "http_port_not_listening");

  for (const auto& j : {id, plain, open, quiet}) alice.del("/api/v1/jobs/" + j);
}

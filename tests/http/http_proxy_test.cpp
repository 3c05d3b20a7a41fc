// The job HTTP proxy (modules/monitoring/http_proxy.cpp, src/http/forward.cpp) against real
// jobs that serve HTTP: the docker runtime on the test Podman service and the process
// runtime, every case on SQLite and PostgreSQL. The job's server is busybox nc running a
// shell script per connection: it answers /echo (and anything else) with the request it
// got (line, headers, body), /big with 20 MiB, /missing with a 404 and /redirect with a
// 302 that also tries to set neurod's session cookie.
#include "http/forward.hpp"
#include "http/jobs_helpers.hpp"
#include "modules/monitoring/http_ticket.hpp"
#include "support/server/server.hpp"
#include "support/temp_dir.hpp"

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
  auto id = submit_job(api, body);
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

TEST_CASE("http::rewrite_location keeps a ticket segment the app does not know about") {
  std::string link = "/api/v1/jobs/job-1/http";
  std::string p = link + "/~t.123.YQ.sig";
  CHECK(http::rewrite_location("/tree?x=1", p, "h:80", link) == p + "/tree?x=1");
  CHECK(http::rewrite_location(p + "/lab", p, "h:80", link) == p + "/lab");
  CHECK(http::rewrite_location(link + "/lab?a=1", p, "h:80", link) == p + "/lab?a=1");  // NEURO_JOB_HTTP_PATH links
  CHECK(http::rewrite_location(link, p, "h:80", link) == p);
  CHECK(http::rewrite_location("http://localhost:8888" + link + "/x", p, "h:80", link) == p + "/x");
  CHECK(http::rewrite_location("https://example.com/a", p, "h:80", link) == "https://example.com/a");
}

TEST_CASE("http::redact_capabilities hides ticket segments from logs") {
  CHECK(http::redact_capabilities("/api/v1/jobs/j/http/~t.123.YQ.sig/a/b?x=~t.q") ==
        "/api/v1/jobs/j/http/~t.\u2026/a/b?x=~t.q");
  CHECK(http::redact_capabilities("/api/v1/jobs/j/http/%7Et.123.YQ.sig") == "/api/v1/jobs/j/http/~t.\u2026");
  CHECK(http::redact_capabilities("/api/v1/jobs/j/http/~t.a?q") == "/api/v1/jobs/j/http/~t.\u2026?q");
  CHECK(http::redact_capabilities("/a/x~t.b/c") == "/a/x~t.b/c");
  CHECK(http::redact_capabilities("") == "");
}

TEST_CASE("monitoring::HttpTickets: bound to job, user and expiry") {
  monitoring::HttpTickets tk(std::string(32, 'k'), 0);
  auto t = tk.issue("job-1", "alice", 5'000'500);
  CHECK(t.starts_with("5001."));  // rounded up to a second
  auto ok = tk.verify(t, "job-1", 5'000'000);
  CHECK(ok.ok());
  CHECK(ok.user == "alice");
  CHECK(ok.expires_at_ms == 5'001'000);
  CHECK(tk.verify(t, "job-1", 5'001'000).result == monitoring::TicketCheck::Result::expired);
  CHECK(tk.verify(t, "job-2", 5'000'000).result == monitoring::TicketCheck::Result::forged);
  // Another user or expiry under the same MAC, another key, malformed ones.
  auto dot = t.find('.', 5);
  CHECK(tk.verify("9999" + t.substr(4), "job-1", 5'000'000).result == monitoring::TicketCheck::Result::forged);
  CHECK(tk.verify(t.substr(0, 5) + "Ym9i" + t.substr(dot), "job-1", 5'000'000).result ==
        monitoring::TicketCheck::Result::forged);
  monitoring::HttpTickets other(std::string(32, 'x'), 0);
  CHECK(other.verify(t, "job-1", 5'000'000).result == monitoring::TicketCheck::Result::forged);
  for (const char* bad : {"", ".", "..", "1..", "x.YQ.YQ", "1.YQ", "1.YQ.YQ.YQ", "1.!!.YQ", "1234567890123.YQ.YQ"})
    CHECK(tk.verify(bad, "job-1", 0).result == monitoring::TicketCheck::Result::malformed);
}

TEST_CASE("monitoring::HttpTickets: the key file is made 0600 once, shared by whoever loads it, refused when others may read it") {
  test::TempDir dir;
  auto file = dir.path() / "http-ticket.key";
  monitoring::HttpTickets a(file);
  namespace fs = std::filesystem;
  CHECK((fs::status(file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(fs::file_size(file) == 32);
  monitoring::HttpTickets b(file);  // another control plane with the same file
  CHECK(b.verify(a.issue("job-1", "alice", 10'000'000), "job-1", 0).ok());
  fs::permissions(file, fs::perms::group_read, fs::perm_options::add);
  CHECK_THROWS_AS(monitoring::HttpTickets{file}, Error);
  fs::permissions(file, fs::perms::group_read, fs::perm_options::remove);
  fs::resize_file(file, 16);
  CHECK_THROWS_AS(monitoring::HttpTickets{file}, Error);
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
  auto plain = submit_job(alice, sh_job("sleep 600", {{"preset_name", "cpu-tiny"}}));
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
  auto quiet = submit_job(alice, sh_job("sleep 600", {{"http", {{"port", quiet_port}}}, {"preset_name", "cpu-tiny"}}));
  wait_status(alice, quiet, "running");
  auto q = alice.get(proxy(quiet));
  EXPECT_STATUS(q, 502);
  CHECK(q.json()["error"]["code"] == "http_port_not_listening");

  for (const auto& j : {id, plain, open, quiet}) alice.del("/api/v1/jobs/" + j);
}

// The browser's way in (README "Job HTTP proxy", tickets): a signed-in navigation is sent
// to the same place under ~t.TICKET, and everything under that works without cookies.
TEST_CASE_TEMPLATE(
    "job http proxy tickets: navigation redirect, cookie-less pages and subresources, refusals, no ticket in logs", B,
    NEUROD_DB_BACKENDS) {
  std::string log;
  std::string ticket;
  {
    test::StderrCapture capture;
    auto yaml = executor_yaml("process");
    yaml.insert(std::string("modules:\n").size(), "  monitoring:\n    http_ticket_ttl: 1h\n");
    authtest::Env env(B::kDialect, "", yaml + "log:\n  level: debug\n");
    auto alice = env.user("alice");
    auto bob = env.user("bob");
    auto anon = env.anonymous();
    auto id = http_job(alice, free_port(), "process");
    auto base = "/api/v1/jobs/" + id + "/http";
    std::string cookie = "neurod_session=" + alice.token();

    // The key file: made on first start, neurod's only.
    auto key = env.server().data_dir() / "monitoring" / "http-ticket.key";
    REQUIRE(std::filesystem::exists(key));
    CHECK((std::filesystem::status(key).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));

    // A navigation with the session cookie: the same path and query under a ticket.
    auto nav = anon.request("GET", proxy(id, "echo?a=1"), "",
                            {{"Cookie", cookie}, {"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}});
    EXPECT_STATUS(nav, 302);
    CHECK(nav.header("Cache-Control") == "no-store");
    auto loc = nav.header("Location").value_or("");
    REQUIRE(loc.starts_with(base + "/~t."));
    auto slash = loc.find('/', base.size() + 1);
    REQUIRE(slash != std::string::npos);
    auto tprefix = loc.substr(0, slash);
    ticket = tprefix.substr(base.size() + 4);
    CHECK(loc.substr(slash) == "/echo?a=1");
    // Its expiry is the configured hour away.
    auto exp_s = std::stoll(ticket.substr(0, ticket.find('.')));
    CHECK(exp_s * 1000 > authtest::now_ms() + 3590 * 1000);
    CHECK(exp_s * 1000 < authtest::now_ms() + 3610 * 1000);
    // The root: to the ticket's root. Fetch Metadata decides when a browser sends it.
    auto nroot = anon.request("GET", proxy(id), "", {{"Cookie", cookie}, {"Sec-Fetch-Mode", "navigate"}});
    EXPECT_STATUS(nroot, 302);
    CHECK(nroot.header("Location").value_or("").ends_with("/"));
    auto fetch = anon.request("GET", proxy(id, "echo"), "",
                              {{"Cookie", cookie}, {"Sec-Fetch-Mode", "cors"}, {"Accept", "text/html"}});
    EXPECT_STATUS(fetch, 200);
    // A cookie POST is a mutation: without the CSRF token the cookie does not count (a page
    // elsewhere cannot post to the job as alice); with it, it goes through.
    EXPECT_STATUS(anon.request("POST", proxy(id, "echo"), "x", {{"Cookie", cookie}, {"Accept", "text/html"}}), 401);
    auto who = anon.request("GET", "/api/v1/auth/whoami", "", {{"Cookie", cookie}});
    REQUIRE_STATUS(who, 200);
    auto csrf = who.json()["csrf_token"].template get<std::string>();
    EXPECT_STATUS(anon.request("POST", proxy(id, "echo"), "x",
                               {{"Cookie", cookie}, {"Accept", "text/html"}, {"X-CSRF-Token", csrf}}),
                  200);
    // A token client gets no redirect, whatever it accepts (curl, neuro).
    auto bearer = alice.request("GET", proxy(id, "echo"), "", {{"Accept", "text/html"}});
    REQUIRE_STATUS(bearer, 200);
    CHECK(bearer.body.starts_with("GET /echo HTTP/1.1\n"));

    // Following it without any cookie serves the page; the job never sees the ticket in
    // its path, and gets the prefix with it for links it builds.
    auto page = anon.get(loc);
    REQUIRE_STATUS(page, 200);
    CHECK(page.body.starts_with("GET /echo?a=1 HTTP/1.1\n"));
    CHECK(has(page.body, "X-Forwarded-Prefix: " + tprefix + "\n"));
    CHECK(page.header("Content-Security-Policy") == kSandbox);
    CHECK(page.header("Referrer-Policy") == "no-referrer");
    // The sandboxed page's fetch calls are cross-origin: a ticket's answers may be read.
    CHECK(page.header("Access-Control-Allow-Origin") == "*");
    CHECK_FALSE(bearer.header("Access-Control-Allow-Origin").has_value());
    // The page's subresources and forms, without cookies.
    auto sub = anon.get(tprefix + "/static/app.js?v=2");
    REQUIRE_STATUS(sub, 200);
    CHECK(sub.body.starts_with("GET /static/app.js?v=2 HTTP/1.1\n"));
    auto form = anon.request("POST", tprefix + "/form", "k=v");
    REQUIRE_STATUS(form, 200);
    CHECK(form.body.starts_with("POST /form HTTP/1.1\n"));
    CHECK(form.body.ends_with("BODY:k=v"));
    // A cookie navigation on the ticket link is not redirected again.
    auto again = anon.request("GET", loc, "", {{"Cookie", cookie}, {"Accept", "text/html"}});
    EXPECT_STATUS(again, 200);
    // The ticket's root without its slash, redirects and cookies keep the ticket.
    auto bare = anon.get(tprefix + "?x=1");
    EXPECT_STATUS(bare, 308);
    CHECK(bare.header("Location") == tprefix + "/?x=1");
    auto red = anon.get(tprefix + "/redirect");
    EXPECT_STATUS(red, 302);
    CHECK(red.header("Location") == tprefix + "/echo?from=redirect");
    CHECK(headers_named(red, "Set-Cookie") == std::vector<std::string>{"app=1; Path=" + tprefix + "/"});

    // The audit row of the form post: the ticket's user, the path without the ticket.
    {
      auto rid = form.header("X-Request-Id").value_or("<none>");
      json found;
      for (int i = 0; i < 50 && found.is_null(); ++i) {
        auto entries = env.admin().get("/api/v1/audit?limit=200").json()["entries"];
        for (const auto& e : entries)
          if (e["request_id"] == rid) found = e;
        if (found.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      REQUIRE_FALSE(found.is_null());
      CHECK(found["principal"] == "alice");
      CHECK(found["path"] == base + "/~t.\u2026/form");
    }

    // Refusals, all 401 without cookies: no ticket, an altered one, another job's, an expired one.
    EXPECT_STATUS(anon.get(proxy(id, "echo")), 401);
    auto altered = ticket;
    altered[altered.size() - 10] = altered[altered.size() - 10] == 'A' ? 'B' : 'A';
    auto t1 = anon.get(base + "/~t." + altered + "/echo");
    EXPECT_STATUS(t1, 401);
    CHECK(t1.json()["error"]["code"] == "http_ticket_invalid");
    CHECK(has(t1.json()["error"]["message"].get<std::string>(), "from the console again"));
    auto longer = std::to_string(exp_s + 86400) + ticket.substr(ticket.find('.'));
    EXPECT_STATUS(anon.get(base + "/~t." + longer + "/echo"), 401);
    EXPECT_STATUS(anon.get(base + "/~t.nonsense/echo"), 401);
    auto plain = submit_job(alice, sh_job("sleep 600", {{"preset_name", "cpu-tiny"}}));
    auto t2 = anon.get("/api/v1/jobs/" + plain + "/http/~t." + ticket + "/echo");
    EXPECT_STATUS(t2, 401);
    CHECK(t2.json()["error"]["code"] == "http_ticket_invalid");
    monitoring::HttpTickets minted(key);
    auto expired = minted.issue(id, "alice", authtest::now_ms() - 1000);
    auto t3 = anon.get(base + "/~t." + expired + "/echo");
    EXPECT_STATUS(t3, 401);
    CHECK(t3.json()["error"]["code"] == "http_ticket_expired");
    CHECK(has(t3.json()["error"]["message"].get<std::string>(),
              "the link expired: open the job's HTTP link from the console again"));
    // A browser gets it as a page; one still signed in gets a fresh ticket instead.
    auto t3html = anon.request("GET", base + "/~t." + expired + "/echo", "", {{"Accept", "text/html"}});
    EXPECT_STATUS(t3html, 401);
    CHECK(t3html.header("Content-Type").value_or("").starts_with("text/html"));
    CHECK(has(t3html.body, "the link expired"));
    auto renewed =
        anon.request("GET", base + "/~t." + expired + "/echo?z=1", "", {{"Cookie", cookie}, {"Accept", "text/html"}});
    EXPECT_STATUS(renewed, 302);
    CHECK(renewed.header("Location").value_or("").ends_with("/echo?z=1"));
    CHECK_FALSE(has(renewed.header("Location").value_or(""), expired));
    // A ticket for a user that does not exist never opens anything.
    EXPECT_STATUS(anon.get(base + "/~t." + minted.issue(id, "mallory", authtest::now_ms() + 60000) + "/echo"), 401);

    // A reader's ticket works while the share lasts, and stops at once when it is revoked.
    auto uri = "job://test/alice/" + id;
    auto grant = alice.post("/api/v1/users/bob/permissions", json::array({{{"uri", uri}, {"action", "read"}}}));
    REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
    wait_job(bob, id, [](const json&) { return true; });
    auto bnav = anon.request("GET", proxy(id, "echo"), "",
                             {{"Cookie", "neurod_session=" + bob.token()}, {"Accept", "text/html"}});
    EXPECT_STATUS(bnav, 302);
    auto bloc = bnav.header("Location").value_or("");
    REQUIRE_STATUS(anon.get(bloc), 200);
    REQUIRE_STATUS(alice.del("/api/v1/users/bob/permissions?uri=" + authtest::q(uri)), 204);
    authtest::Res revoked = anon.get(bloc);
    for (int i = 0; i < 50 && revoked.status == 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      revoked = anon.get(bloc);
    }
    EXPECT_STATUS(revoked, 401);
    CHECK(revoked.json()["error"]["code"] == "http_ticket_revoked");
    // alice's still works.
    EXPECT_STATUS(anon.get(loc), 200);

    // A public job: no redirect, and a ticket (even another job's) is not needed.
    auto open = http_job(alice, free_port(), "process", {{"requires_auth", false}});
    EXPECT_STATUS(anon.request("GET", proxy(open, "echo"), "", {{"Cookie", cookie}, {"Accept", "text/html"}}), 200);
    auto pub = anon.get("/api/v1/jobs/" + open + "/http/~t." + ticket + "/echo");
    REQUIRE_STATUS(pub, 200);
    CHECK(pub.body.starts_with("GET /echo HTTP/1.1\n"));

    for (const auto& j : {id, plain, open}) alice.del("/api/v1/jobs/" + j);
    log = capture.text();
  }
  // The access log saw the ticket links, redacted; never a ticket.
  CHECK(has(log, "/~t.\u2026/static/app.js"));
  {
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
      if (has(line, ticket)) MESSAGE("a log line with the ticket: " << line);
  }
  CHECK_FALSE(has(log, ticket));
  CHECK_FALSE(has(log, ticket.substr(ticket.rfind('.') + 1)));
}

#include "core/metrics.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

using namespace neurod::metrics;

namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `shell_command` with `input_file` on stdin.
CommandResult run_with_stdin(const std::string& shell_command, const std::filesystem::path& input_file) {
  CommandResult r;
  std::string cmd = shell_command + " < '" + input_file.string() + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, "popen failed for ", cmd);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The value of the one sample line that starts with `series ` (name plus labels as rendered).
std::optional<double> sample_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(series + " ")) return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return std::nullopt;
}

}  // namespace

TEST_SUITE("metrics") {
  TEST_CASE("empty registry renders nothing") {
    Registry r;
    CHECK(r.render() == "");
  }

  TEST_CASE("counter and gauge render exactly") {
    Registry r;
    auto& requests = r.counter("http_requests_total", "HTTP requests handled.");
    auto& inflight = r.gauge("http_in_flight", "Requests in flight.");
    requests.with({{"method", "GET"}, {"code", "200"}}).inc();
    requests.with({{"method", "GET"}, {"code", "200"}}).inc(2);
    requests.with({{"method", "POST"}, {"code", "500"}}).inc(0.5);
    auto& g = inflight.with({});
    g.set(10);
    g.inc();
    g.dec(3);
    CHECK(g.value() == 8);
    CHECK(r.render() ==
          "# HELP http_in_flight Requests in flight.\n"
          "# TYPE http_in_flight gauge\n"
          "http_in_flight 8\n"
          "# HELP http_requests_total HTTP requests handled.\n"
          "# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"GET\"} 3\n"
          "http_requests_total{code=\"500\",method=\"POST\"} 0.5\n");
  }

  TEST_CASE("a family with no children renders only its metadata") {
    Registry r;
    r.counter("jobs_started_total", "Jobs started.");
    CHECK(r.render() ==
          "# HELP jobs_started_total Jobs started.\n"
          "# TYPE jobs_started_total counter\n");
  }

  TEST_CASE("label order does not matter and children are stable") {
    Registry r;
    auto& f = r.counter("x_total", "x");
    auto& a = f.with({{"b", "2"}, {"a", "1"}});
    auto& b = f.with({{"a", "1"}, {"b", "2"}});
    CHECK(&a == &b);
    a.inc();
    b.inc();
    CHECK(r.render() == "# HELP x_total x\n# TYPE x_total counter\nx_total{a=\"1\",b=\"2\"} 2\n");
  }

  TEST_CASE("label values and help text are escaped") {
    Registry r;
    r.gauge("g", "Help with \\ backslash\nnewline and \"quotes\".")
        .with({{"path", "C:\\dir\\\"x\"\nnext"}, {"plain", "ünïcödé"}})
        .set(1);
    CHECK(r.render() ==
          "# HELP g Help with \\\\ backslash\\nnewline and \"quotes\".\n"
          "# TYPE g gauge\n"
          "g{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\",plain=\"ünïcödé\"} 1\n");
  }

  TEST_CASE("histogram renders cumulative buckets with +Inf and sum and count") {
    Registry r;
    auto& h = r.histogram("req_seconds", "Request latency.", {0.1, 0.5, 1}).with({{"route", "/a"}});
    h.observe(0.05);
    h.observe(0.1);  // upper bounds are inclusive
    h.observe(0.3);
    h.observe(2);
    CHECK(r.render() ==
          "# HELP req_seconds Request latency.\n"
          "# TYPE req_seconds histogram\n"
          "req_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
          "req_seconds_bucket{route=\"/a\",le=\"0.5\"} 3\n"
          "req_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
          "req_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
          "req_seconds_sum{route=\"/a\"} 2.45\n"
          "req_seconds_count{route=\"/a\"} 4\n");
    auto s = h.snapshot();
    CHECK(s.bounds == std::vector<double>{0.1, 0.5, 1});
    CHECK(s.cumulative == std::vector<std::uint64_t>{2, 3, 3, 4});
    CHECK(s.count == 4);
    CHECK(s.sum == doctest::Approx(2.45));
  }

  TEST_CASE("histogram without labels and with default buckets") {
    CHECK(default_latency_buckets() ==
          std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    Registry r;
    r.histogram("d_seconds", "d").with({}).observe(0.003);
    CHECK(r.render() ==
          "# HELP d_seconds d\n"
          "# TYPE d_seconds histogram\n"
          "d_seconds_bucket{le=\"0.0005\"} 0\n"
          "d_seconds_bucket{le=\"0.001\"} 0\n"
          "d_seconds_bucket{le=\"0.0025\"} 0\n"
          "d_seconds_bucket{le=\"0.005\"} 1\n"
          "d_seconds_bucket{le=\"0.01\"} 1\n"
          "d_seconds_bucket{le=\"0.025\"} 1\n"
          "d_seconds_bucket{le=\"0.05\"} 1\n"
          "d_seconds_bucket{le=\"0.1\"} 1\n"
          "d_seconds_bucket{le=\"0.25\"} 1\n"
          "d_seconds_bucket{le=\"0.5\"} 1\n"
          "d_seconds_bucket{le=\"1\"} 1\n"
          "d_seconds_bucket{le=\"2.5\"} 1\n"
          "d_seconds_bucket{le=\"5\"} 1\n"
          "d_seconds_bucket{le=\"10\"} 1\n"
          "d_seconds_bucket{le=\"+Inf\"} 1\n"
          "d_seconds_sum 0.003\n"
          "d_seconds_count 1\n");
  }

  TEST_CASE("histogram bounds are validated") {
    CHECK_THROWS_AS(Histogram({1, 0.5}), std::invalid_argument);
    CHECK_THROWS_AS(Histogram({1, 1}), std::invalid_argument);
    CHECK_THROWS_AS(Histogram({std::nan("")}), std::invalid_argument);
    Registry r;
    CHECK_THROWS_AS(r.histogram("h", "h", {2, 1}), std::invalid_argument);
    // An explicit +Inf is the implied one, not a second +Inf bucket.
    Histogram h({1, std::numeric_limits<double>::infinity()});
    h.observe(5);
    CHECK(h.snapshot().bounds == std::vector<double>{1});
    CHECK(h.snapshot().cumulative == std::vector<std::uint64_t>{0, 1});
    // No bounds at all: just +Inf.
    Histogram none({});
    none.observe(1);
    CHECK(none.snapshot().cumulative == std::vector<std::uint64_t>{1});
  }

  TEST_CASE("numbers are formatted as Prometheus parses them") {
    Registry r;
    auto& g = r.gauge("v", "v");
    const std::vector<std::pair<double, std::string>> cases{
        {0, "0"},
        {-0.0, "0"},
        {42, "42"},
        {-7, "-7"},
        {1e15, "1000000000000000"},
        {1234567890123, "1234567890123"},
        {0.1, "0.1"},
        {0.0005, "0.0005"},
        {1234567.5, "1.2345675e+06"},
        {2.5, "2.5"},
        {1.0 / 3, "0.3333333333333333"},
        {1e-5, "1e-05"},
        {1e300, "1e+300"},
        {std::numeric_limits<double>::infinity(), "+Inf"},
        {-std::numeric_limits<double>::infinity(), "-Inf"},
        {std::nan(""), "NaN"},
    };
    for (const auto& [value, text] : cases) {
      CAPTURE(text);
      g.with({{"case", text}}).set(value);
      CHECK(sample_value(r.render(), "v{case=\"" + text + "\"}").has_value());
      CHECK(r.render().find("v{case=\"" + text + "\"} " + text + "\n") != std::string::npos);
    }
  }

  TEST_CASE("float values round-trip") {
    Registry r;
    auto& g = r.gauge("v", "v").with({});
    for (double v : {0.1 + 0.2, 123.456, 6.02214076e23, 4.9e-324, -1.5e-7}) {
      g.set(v);
      auto parsed = sample_value(r.render(), "v");
      REQUIRE(parsed);
      CHECK(*parsed == v);
    }
  }

  TEST_CASE("metric names are validated") {
    Registry r;
    for (const char* bad : {"", "1abc", "a-b", "a b", "é", "a.b"}) {
      CAPTURE(bad);
      CHECK_THROWS_AS(r.gauge(bad, "h"), std::invalid_argument);
    }
    CHECK_NOTHROW(r.gauge("ok_name:sub", "h"));
    CHECK_NOTHROW(r.gauge(":colon_first", "h"));
    CHECK_NOTHROW(r.gauge("_underscore", "h"));
    // Counters are named with _total by their callers; the registry does not append it.
    CHECK_THROWS_AS(r.counter("requests", "h"), std::invalid_argument);
    CHECK_THROWS_AS(r.callback_counter("cpu_seconds", "h", [] { return Registry::Samples{}; }), std::invalid_argument);
  }

  TEST_CASE("registering a name twice throws") {
    Registry r;
    r.counter("a_total", "a");
    CHECK_THROWS_AS(r.counter("a_total", "a"), std::logic_error);
    CHECK_THROWS_AS(r.gauge("a_total", "a"), std::logic_error);
    CHECK_THROWS_AS(r.callback_gauge("a_total", "a", [] { return Registry::Samples{}; }), std::logic_error);
    // A histogram's series names are taken too, both ways round.
    r.histogram("lat_seconds", "l");
    CHECK_THROWS_AS(r.gauge("lat_seconds_count", "c"), std::logic_error);
    CHECK_THROWS_AS(r.gauge("lat_seconds_bucket", "c"), std::logic_error);
    r.gauge("size_sum", "s");
    CHECK_THROWS_AS(r.histogram("size", "s"), std::logic_error);
    // Failed registrations leave nothing behind.
    CHECK(r.render().find("size_sum") != std::string::npos);
    CHECK(r.render().find("# TYPE size histogram") == std::string::npos);
  }

  TEST_CASE("label names are validated") {
    Registry r;
    auto& f = r.gauge("g", "g");
    for (const char* bad : {"", "1a", "a-b", "__reserved", "a:b", "é"}) {
      CAPTURE(bad);
      CHECK_THROWS_AS(f.with({{bad, "v"}}), std::invalid_argument);
    }
    CHECK_THROWS_AS(f.with({{"a", "1"}, {"a", "2"}}), std::invalid_argument);
    CHECK_NOTHROW(f.with({{"_a", "1"}, {"B9", ""}}));
    CHECK_NOTHROW(f.with({{"le", "x"}}));  // only histograms reserve "le"
    auto& h = r.histogram("h", "h");
    CHECK_THROWS_AS(h.with({{"le", "1"}}), std::invalid_argument);
    // Nothing invalid was created.
    CHECK(r.render().find("__reserved") == std::string::npos);
  }

  TEST_CASE("counters only go up") {
    Counter c;
    c.inc();
    c.inc(0);
    CHECK_THROWS_AS(c.inc(-1), std::invalid_argument);
    CHECK_THROWS_AS(c.inc(std::nan("")), std::invalid_argument);
    CHECK(c.value() == 1);
  }

  TEST_CASE("concurrent updates are not lost") {
    Registry r;
    auto& c = r.counter("c_total", "c").with({});
    auto& g = r.gauge("g", "g").with({});
    auto& h = r.histogram("h", "h", {0.5}).with({});
    constexpr int kThreads = 8, kIters = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < kIters; ++i) {
          c.inc(0.5);
          g.inc(2);
          g.dec();
          h.observe(i % 2 ? 1.0 : 0.25);
        }
      });
    for (auto& t : threads) t.join();
    CHECK(c.value() == kThreads * kIters * 0.5);
    CHECK(g.value() == kThreads * kIters);
    auto s = h.snapshot();
    CHECK(s.count == kThreads * kIters);
    CHECK(s.cumulative == std::vector<std::uint64_t>{kThreads * kIters / 2, kThreads * kIters});
    CHECK(s.sum == kThreads * kIters / 2 * 1.25);
  }

  TEST_CASE("callback gauges and counters are sampled at render time") {
    Registry r;
    double pool = 1;
    r.callback_gauge("pool_in_use", "Connections in use.", [&] {
      return Registry::Samples{{{{"pool", "b"}}, pool * 2}, {{{"pool", "a"}}, pool}};
    });
    r.callback_counter("bytes_read_total", "Bytes read.", [] { return Registry::Samples{{{}, 1024}}; });
    CHECK(r.render() ==
          "# HELP bytes_read_total Bytes read.\n"
          "# TYPE bytes_read_total counter\n"
          "bytes_read_total 1024\n"
          "# HELP pool_in_use Connections in use.\n"
          "# TYPE pool_in_use gauge\n"
          "pool_in_use{pool=\"b\"} 2\n"
          "pool_in_use{pool=\"a\"} 1\n");
    pool = 5;
    CHECK(sample_value(r.render(), "pool_in_use{pool=\"a\"}") == 5);
  }

  TEST_CASE("a failing callback does not break the scrape") {
    Registry r;
    r.callback_gauge("broken", "b", []() -> Registry::Samples { throw std::runtime_error("boom"); });
    r.callback_gauge("bad_labels", "b", [] { return Registry::Samples{{{{"__x", "1"}}, 1}, {{{"ok", "1"}}, 2}}; });
    r.gauge("fine", "f").with({}).set(1);
    CHECK(r.render() ==
          "# HELP bad_labels b\n# TYPE bad_labels gauge\nbad_labels{ok=\"1\"} 2\n"
          "# HELP broken b\n# TYPE broken gauge\n"
          "# HELP fine f\n# TYPE fine gauge\nfine 1\n");
    CHECK_THROWS_AS(r.callback_gauge("null", "n", nullptr), std::invalid_argument);
  }

  TEST_CASE("process metrics read /proc/self") {
    Registry r;
    register_process_metrics(r);
    CHECK_THROWS_AS(register_process_metrics(r), std::logic_error);
    const auto text = r.render();
    CAPTURE(text);
    CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
    for (const char* gauge : {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                              "process_max_fds", "process_start_time_seconds"})
      CHECK(text.find(std::string("# TYPE ") + gauge + " gauge\n") != std::string::npos);

    auto rss = sample_value(text, "process_resident_memory_bytes");
    auto vsz = sample_value(text, "process_virtual_memory_bytes");
    REQUIRE(rss);
    REQUIRE(vsz);
    CHECK(*rss > 1024 * 1024);
    CHECK(*vsz >= *rss);

    auto cpu = sample_value(text, "process_cpu_seconds_total");
    REQUIRE(cpu);
    CHECK(*cpu >= 0);

    // Opening files shows up in the next scrape.
    auto fds = sample_value(text, "process_open_fds");
    REQUIRE(fds);
    CHECK(*fds >= 3);
    std::vector<FILE*> files;
    for (int i = 0; i < 5; ++i) files.push_back(std::fopen("/proc/self/stat", "r"));
    CHECK(sample_value(r.render(), "process_open_fds") == *fds + 5);
    for (auto* f : files) std::fclose(f);
    auto max_fds = sample_value(text, "process_max_fds");
    REQUIRE(max_fds);
    CHECK(*max_fds >= *fds);

    auto start = sample_value(text, "process_start_time_seconds");
    REQUIRE(start);
    const auto now = static_cast<double>(std::time(nullptr));
    CHECK(*start <= now + 1);
    CHECK(*start > now - 3600);  // this test binary started within the hour
  }

  TEST_CASE("promtool accepts a registry with every metric type") {
    if (!std::filesystem::exists(kPromtool))
      FAIL("promtool not found at ", kPromtool, ": run scripts/setup --test to install it (package prometheus)");

    Registry r;
    register_process_metrics(r);
    auto& requests = r.counter("neurod_http_requests_total", "HTTP requests by method, route and status.");
    requests.with({{"method", "GET"}, {"route", "/api/v1/jobs/{id}"}, {"status", "200"}}).inc(41);
    requests.with({{"method", "POST"}, {"route", "/api/v1/jobs"}, {"status", "422"}}).inc();
    r.counter("neurod_jobs_started_total", "Jobs started.");  // no children yet
    r.gauge("neurod_jobs_running", "Jobs running now.").with({}).set(3);
    r.gauge("neurod_escape_test_info", "Labels with \\ backslashes,\nnewlines and \"quotes\".")
        .with({{"path", "C:\\temp\\\"quoted\"\nline two"}, {"user", "ünïcödé"}})
        .set(1);
    auto& odd = r.gauge("neurod_odd_values", "Values Prometheus spells specially.");
    odd.with({{"kind", "nan"}}).set(std::nan(""));
    odd.with({{"kind", "inf"}}).set(std::numeric_limits<double>::infinity());
    odd.with({{"kind", "neg_inf"}}).set(-std::numeric_limits<double>::infinity());
    odd.with({{"kind", "tiny"}}).set(1e-9);
    odd.with({{"kind", "huge"}}).set(1e300);
    auto& latency = r.histogram("neurod_http_request_duration_seconds", "Request latency.");
    for (double v : {0.0001, 0.003, 0.2, 7.0, 30.0}) latency.with({{"route", "/api/v1/jobs"}}).observe(v);
    r.histogram("neurod_db_query_seconds", "Query latency.", {0.001, 0.01}).with({}).observe(0.002);
    r.callback_gauge("neurod_db_pool_connections", "Database connections by state.", [] {
      return Registry::Samples{{{{"state", "idle"}}, 4}, {{{"state", "busy"}}, 1}};
    });
    r.callback_counter("neurod_storage_read_bytes_total", "Bytes read from storage.", [] {
      return Registry::Samples{{{}, 123456789}};
    });

    const auto text = r.render();
    neurod::test::TempDir dir;
    auto file = dir.write("metrics.prom", text);
    auto result = run_with_stdin(std::string(kPromtool) + " check metrics", file);
    INFO("exposition:\n", text);
    INFO("promtool output:\n", result.output);
    CHECK(result.exit_code == 0);
    CHECK(result.output == "");  // lint problems are printed even when promtool exits 0
  }

  TEST_CASE("promtool rejects a broken exposition (the check is real)") {
    if (!std::filesystem::exists(kPromtool))
      FAIL("promtool not found at ", kPromtool, ": run scripts/setup --test to install it (package prometheus)");
    neurod::test::TempDir dir;
    auto file = dir.write("bad.prom", "# TYPE x counter\nx{a=\"unterminated} 1\n");
    CHECK(run_with_stdin(std::string(kPromtool) + " check metrics", file).exit_code != 0);
  }
}

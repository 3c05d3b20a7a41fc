// Telemetry and metrics end to end in one process (modules/monitoring/README.md): /top over
// WebSocket, the history, a fake nvidia-smi's GPU figures, who may watch, and /metrics.
// Jobs run on the test Podman service (docker) and on the process runtime; every case on
// SQLite and PostgreSQL.
#include "http/jobs_helpers.hpp"
#include "http/ws_client.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

using namespace neurod;
using namespace neurod::jobtest;
using authtest::code;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// The node of jobs_helpers.hpp plus telemetry at test speed: a 1 s history step.
std::string telemetry_yaml(const std::string& runtime, const std::string& extra = "") {
  return executor_yaml(runtime, "  monitoring:\n    sample_interval: 1s\n    history_step: 1s\n" + extra);
}

// A node with one GPU and a fake nvidia-smi that reports it busy.
std::string gpu_yaml(const std::string& nvidia_smi) {
  auto y = telemetry_yaml("docker");
  auto at = y.find("      gpus: 0\n");
  REQUIRE(at != std::string::npos);
  y.replace(at, 14, "      gpus: 1\n      gpu_model: Fake A100\n    nvidia_smi: " + nvidia_smi + "\n");
  return y;
}

std::string fake_nvidia_smi(test::TempDir& t) {
  auto path = t / "nvidia-smi";
  std::ofstream(path) << "#!/bin/sh\n"
                         "case \"$*\" in\n"
                         "  *utilization.gpu*) echo '0, 37, 1024, 16384'; echo '1, 99, 9999, 16384' ;;\n"
                         "  *) echo '0, GPU-fake, Fake A100, 16384' ;;\n"
                         "esac\n";
  ::chmod(path.c_str(), 0755);
  return path.string();
}

const json kBusy = {{"resources", {{"cpu", 0.5}, {"memory", 64 << 20}}}};

http::WebSocketClient top(authtest::Env& env, const std::string& token, const std::string& job,
                          std::vector<std::string> protocols = {"top.apolo.us"}) {
  http::ClientOptions o;
  o.token = token;
  return http::WebSocketClient(env.server().url(), "/api/v1/jobs/" + job + "/top", o, std::move(protocols));
}

// The value of one series in a /metrics text ("name{a=\"b\"}"), nullopt when absent.
std::optional<double> metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "telemetry: /top of a busy job shows its CPU and memory once a second, history fills, and /top "
    "closes when the job ends",
    B, NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", telemetry_yaml(runtime));
    auto alice = env.user("alice");
    auto id = submit_job(alice, sh_job("while :; do :; done", kBusy));
    wait_status(alice, id, "running");

    auto ws = top(env, alice.token(), id);
    CHECK(ws.subprotocol() == "top.apolo.us");
    std::vector<json> msgs;
    while (msgs.size() < 5) {
      auto m = ws.read();
      REQUIRE(m);
      CHECK_FALSE(m->binary);
      msgs.push_back(json::parse(m->data));
    }
    double cpu_sum = 0, cpu_max = 0;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      const auto& m = msgs[i];
      CAPTURE(m.dump());
      CHECK(m["memory_bytes"].template get<std::uint64_t>() > 0);
      CHECK(m["memory"].template get<double>() ==
            doctest::Approx(m["memory_bytes"].template get<double>() / kMiB).epsilon(0.01));
      CHECK_FALSE(m.contains("gpu_duty_cycle"));
      if (i > 0) {
        auto gap = m["timestamp"].template get<double>() - msgs[i - 1]["timestamp"].template get<double>();
        CHECK(gap > 0.5);
        CHECK(gap < 2.5);
      }
      if (i >= 2) {  // the job has been busy for a while
        cpu_sum += m["cpu"].template get<double>();
        cpu_max = std::max(cpu_max, m["cpu"].template get<double>());
      }
    }
    // Limited to half a core: about 0.5 on an idle machine, never much more. On a loaded
    // 2-core machine the job gets much less (0.08 seen with a load average of 8), so the
    // lower bound only proves that CPU time is counted.
    CHECK(cpu_sum / 3 > 0.03);
    CHECK(cpu_max < 0.75);

    auto metrics = env.admin().get("/metrics").body;
    auto series = "neurod_job_cpu_cores{job_id=\"" + id + "\",owner=\"alice\",project=\"alice\"}";
    CHECK_MESSAGE(metric(metrics, series), metrics);
    CHECK(metric(metrics, "neurod_job_memory_bytes{job_id=\"" + id + "\",owner=\"alice\",project=\"alice\"}")
              .value_or(0) > 0);

    // The history: one point per second, and the recent samples at full rate.
    json hist;
    CHECK(authtest::eventually(
        [&] {
          auto r = alice.get("/api/v1/jobs/" + id + "/telemetry");
          if (r.status != 200) return false;
          hist = r.json();
          return hist["points"].size() >= 2;
        },
        std::chrono::seconds(10)));
    CHECK(hist["source"] == "history");
    CHECK(hist["step"] == 1.0);
    CHECK(hist["status"] == "running");
    for (const auto& p : hist["points"]) {
      CAPTURE(p.dump());
      CHECK(p["memory_max_bytes"].template get<std::int64_t>() > 0);
      CHECK(p["cpu_max"].template get<double>() >= p["cpu_avg"].template get<double>());
      CHECK(p["samples"].template get<int>() >= 1);
    }
    auto coarse = alice.get("/api/v1/jobs/" + id + "/telemetry?step=1m&since=10m");
    REQUIRE_STATUS(coarse, 200);
    CHECK(coarse.json()["step"] == 60.0);
    CHECK(coarse.json()["points"].size() >= 1);
    auto fine = alice.get("/api/v1/jobs/" + id + "/telemetry?step=0.5");
    REQUIRE_STATUS(fine, 200);
    CHECK(fine.json()["source"] == "recent");
    CHECK(fine.json()["points"].size() >= 3);
    EXPECT_STATUS(alice.get("/api/v1/jobs/" + id + "/telemetry?step=fast"), 400);
    EXPECT_STATUS(alice.get("/api/v1/jobs/" + id + "/telemetry?since=yesterday-ish"), 400);
    EXPECT_STATUS(alice.get("/api/v1/jobs/" + id + "/telemetry?step=1s&since=2000-01-01T00:00:00Z"), 400);

    // The job ends: /top closes normally, and a new /top of the finished job closes at once.
    EXPECT_STATUS(alice.del("/api/v1/jobs/" + id), 204);
    int more = 0;
    while (ws.read()) ++more;
    CHECK(more <= 3);
    CHECK(ws.close_code() == 1000);
    auto late = top(env, alice.token(), id, {});
    CHECK(late.subprotocol().empty());  // not offered, not answered
    CHECK_FALSE(late.read());
    CHECK(late.close_code() == 1000);
    // Its history stays.
    auto after = alice.get("/api/v1/jobs/" + id + "/telemetry").json();
    CHECK(after["points"].size() >= hist["points"].size());
    CHECK(after["status"] == "cancelled");
    CHECK(authtest::eventually([&] { return !metric(env.admin().get("/metrics").body, series); },
                               std::chrono::seconds(3)));
  }
}

TEST_CASE_TEMPLATE("telemetry: a GPU job's /top and history carry what nvidia-smi reports for its GPU", B,
                   NEUROD_DB_BACKENDS) {
  test::TempDir t;
  authtest::Env env(B::kDialect, "", gpu_yaml(fake_nvidia_smi(t)));
  auto alice = env.user("alice");
  json body = kBusy;
  body["resources"]["nvidia_gpu"] = 1;
  auto id = submit_job(alice, sh_job("sleep 300", body));
  auto job = wait_status(alice, id, "running");
  auto ws = top(env, alice.token(), id);
  auto m = ws.read();
  REQUIRE(m);
  auto j = json::parse(m->data);
  CAPTURE(j.dump());
  CHECK(j["gpu_duty_cycle"] == 37);  // GPU 0's, not GPU 1's (99)
  CHECK(j["gpu_memory"] == 1024.0);
  CHECK(j["gpu_memory_bytes"] == 1024ull << 20);
  CHECK(j["cpu"].template get<double>() < 0.2);  // it sleeps
  json hist;
  CHECK(authtest::eventually(
      [&] {
        hist = alice.get("/api/v1/jobs/" + id + "/telemetry").json();
        return !hist["points"].empty();
      },
      std::chrono::seconds(10)));
  REQUIRE_FALSE(hist["points"].empty());
  CHECK(hist["points"][0]["gpu_duty_cycle_avg"] == 37.0);
  CHECK(hist["points"][0]["gpu_memory_max_bytes"] == 1024ll << 20);
  auto metrics = env.admin().get("/metrics").body;
  CHECK(metric(metrics, "neurod_job_gpu_duty_cycle_percent{job_id=\"" + id + "\",owner=\"alice\",project=\"alice\"}") ==
        37.0);
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + id), 204);
}

TEST_CASE_TEMPLATE("telemetry: history past its retention is deleted", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", telemetry_yaml("process", "    history_retention: 3s\n"));
  auto alice = env.user("alice");
  auto id = submit_job(alice, sh_job("sleep 300", kBusy));
  wait_status(alice, id, "running");
  auto points = [&] {
    auto r = alice.get("/api/v1/jobs/" + id + "/telemetry");
    REQUIRE_STATUS(r, 200);
    return r.json()["points"].size();
  };
  CHECK(authtest::eventually([&] { return points() >= 1; }, std::chrono::seconds(10)));
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + id), 204);
  CHECK(authtest::eventually([&] { return points() == 0; }, std::chrono::seconds(10)));
}

TEST_CASE_TEMPLATE("telemetry: anonymous callers get 401 and other users 404", B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", telemetry_yaml("process"));
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto id = submit_job(alice, sh_job("sleep 300", kBusy));
  wait_status(alice, id, "running");
  EXPECT_STATUS(env.anonymous().get("/api/v1/jobs/" + id + "/telemetry"), 401);
  EXPECT_STATUS(bob.get("/api/v1/jobs/" + id + "/telemetry"), 404);
  CHECK(code(bob.get("/api/v1/jobs/" + id + "/telemetry")) == "not_found");
  try {
    top(env, "", id);
    FAIL("anonymous /top was accepted");
  } catch (const Error& e) {
    CHECK_MESSAGE(e.code() == errc::unauthenticated, std::string(e.what()));
  }
  try {
    top(env, bob.token(), id);
    FAIL("bob's /top of alice's job was accepted");
  } catch (const Error& e) {
    CHECK_MESSAGE(e.code() == errc::not_found, std::string(e.what()));
  }
  // Once shared, bob may watch.
  REQUIRE_STATUS(alice.post("/api/v1/users/bob/permissions",
                            json::array({{{"uri", "job://test/alice/" + id}, {"action", "read"}}})),
                 201);
  auto ws = top(env, bob.token(), id);
  CHECK(ws.read());
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + id), 204);
}

TEST_CASE_TEMPLATE(
    "metrics: jobs by status, the queue, scheduler decisions, wait times, executor errors and "
    "storage bytes appear and move",
    B, NEUROD_DB_BACKENDS) {
  authtest::Env env(B::kDialect, "", telemetry_yaml("docker"));
  auto alice = env.user("alice");
  auto& admin = env.admin();
  auto before = admin.get("/metrics").body;
  for (const char* family : {"neurod_jobs", "neurod_scheduler_queue_length", "neurod_scheduler_wait_seconds",
                             "neurod_scheduler_decisions_total", "neurod_executor_errors_total", "neurod_storage_bytes",
                             "neurod_registry_bytes", "neurod_job_cpu_cores", "neurod_job_memory_bytes",
                             "neurod_job_cpu_seconds_total", "neurod_telemetry_watchers"}) {
    CAPTURE(family);
    CHECK(before.find(std::string("# TYPE ") + family + " ") != std::string::npos);
  }
  for (const char* st : {"pending", "running", "suspended", "succeeded", "failed", "cancelled"})
    CHECK(metric(before, std::string("neurod_jobs{status=\"") + st + "\"}") == 0.0);

  auto ok = submit_job(alice, sh_job("true"));
  auto bad = submit_job(alice, {{"image", "localhost:1/nope/missing:1"}, {"command", {"true"}}});
  CHECK(wait_finished(alice, ok)["status"] == "succeeded");
  CHECK(wait_finished(alice, bad)["history"]["reason"] == "ErrImagePull");
  // One holds the node, the next waits for it.
  auto big = submit_job(alice, sh_job("sleep 300", {{"resources", {{"cpu", 2}, {"memory", 64 << 20}}}}));
  wait_status(alice, big, "running");
  auto waits = submit_job(alice, sh_job("true"));
  wait_job(alice, waits, [](const json& j) { return j["history"]["reason"] == "Scheduling"; });
  put_file(alice, "alice", "data/f.bin", std::string(5000, 'x'));

  std::string text;
  CHECK(authtest::eventually(
      [&] {
        text = admin.get("/metrics").body;
        return metric(text, "neurod_scheduler_queue_length") == 1.0 &&
               metric(text, "neurod_jobs{status=\"running\"}") == 1.0;
      },
      std::chrono::seconds(5)));
  CAPTURE(text);
  CHECK(metric(text, "neurod_jobs{status=\"succeeded\"}") == 1.0);
  CHECK(metric(text, "neurod_jobs{status=\"failed\"}") == 1.0);
  CHECK(metric(text, "neurod_jobs{status=\"pending\"}") == 1.0);
  CHECK(metric(text, "neurod_scheduler_decisions_total{outcome=\"admitted\",reason=\"fits\"}") == 3.0);
  CHECK(metric(text, "neurod_scheduler_decisions_total{outcome=\"waiting\",reason=\"capacity\"}") == 1.0);
  CHECK(metric(text, "neurod_scheduler_wait_seconds_count") == 2.0);  // ok and big ran
  CHECK(metric(text, "neurod_executor_errors_total{reason=\"ErrImagePull\"}") == 1.0);
  CHECK(metric(text, "neurod_storage_bytes{project=\"alice\"}") == 5000.0);

  EXPECT_STATUS(alice.del("/api/v1/jobs/" + waits), 204);
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + big), 204);
  // The gauges follow at the scheduler's next pass.
  CHECK(authtest::eventually(
      [&] {
        text = admin.get("/metrics").body;
        return metric(text, "neurod_jobs{status=\"cancelled\"}") == 2.0 &&
               metric(text, "neurod_scheduler_queue_length") == 0.0 &&
               metric(text, "neurod_jobs{status=\"pending\"}") == 0.0;
      },
      std::chrono::seconds(5)));
}

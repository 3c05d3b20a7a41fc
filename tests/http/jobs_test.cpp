// The jobs API end to end in one process: real Podman behind the docker executor (the
// test Podman service), every case on SQLite and PostgreSQL.
#include "http/jobs_helpers.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using namespace neurod::jobtest;
using authtest::code;

namespace {

authtest::Env docker_env(db::Dialect d, const std::string& jobs_extra = "") {
  return authtest::Env(d, "", executor_yaml("docker", jobs_extra));
}

std::string submit(Api& api, const json& body) {
  auto r = api.post("/api/v1/jobs", body);
  REQUIRE_STATUS(r, 202);
  auto j = r.json();
  CHECK(j["status"] == "pending");
  CHECK(j["history"]["reason"] == "Creating");
  return j["id"];
}

}  // namespace

TEST_CASE_TEMPLATE("jobs: a job runs, its output is logged, and it is found by id and by name", B, NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  auto id = submit(alice, sh_job("echo hi; echo \"id=$NEURO_JOB_ID owner=$NEURO_JOB_OWNER p=$NEURO_JOB_PROJECT "
                                 "preset=$NEURO_JOB_PRESET c=$NEURO_JOB_CLUSTER n=$NEURO_JOB_NAME lr=$LR\"",
                                 {{"name", "train-1"}, {"tags", {"exp=3"}}, {"env", {{"LR", "0.1"}}}}));
  CHECK(id.rfind("job-", 0) == 0);
  auto job = wait_finished(alice, id);
  CHECK(job["status"] == "succeeded");
  CHECK(job["history"]["reason"] == "Completed");
  CHECK(job["history"]["exit_code"] == 0);
  CHECK(job["executor"] == "docker");
  CHECK(job["owner"] == "alice");
  CHECK(job["project_name"] == "alice");
  CHECK(job["uri"] == "job://test/alice/" + id);
  CHECK(job["tags"] == json::array({"exp=3"}));
  CHECK(job["preset_name"] == "cpu-small");
  CHECK(!job["history"]["started_at"].is_null());
  CHECK(!job["history"]["finished_at"].is_null());
  std::vector<std::string> statuses;
  for (const auto& s : job["statuses"]) statuses.push_back(s["status"]);
  CHECK(statuses.front() == "pending");
  CHECK(std::find(statuses.begin(), statuses.end(), "running") != statuses.end());
  CHECK(statuses.back() == "succeeded");

  auto by_name = alice.get("/api/v1/jobs/train-1");
  REQUIRE_STATUS(by_name, 200);
  CHECK(by_name.json()["id"] == id);
  auto hist = alice.get("/api/v1/jobs/train-1/statuses");
  REQUIRE_STATUS(hist, 200);
  CHECK(hist.json()["statuses"].size() == job["statuses"].size());

  auto log = alice.get("/api/v1/jobs/" + id + "/log");
  REQUIRE_STATUS(log, 200);
  CHECK(log.body == "hi\nid=" + id + " owner=alice p=alice preset=cpu-small c=test n=train-1 lr=0.1\n");
  auto stamped = alice.get("/api/v1/jobs/" + id + "/log?timestamps=true");
  CHECK(stamped.body.find(" hi\n") == 30);  // "2026-11-23T15:04:05.123456789Z hi"
  auto future = alice.get("/api/v1/jobs/" + id + "/log?since=2100-01-01T00:00:00Z");
  CHECK(future.body.empty());

  auto list = alice.get("/api/v1/jobs?status=succeeded&tag=exp%3D3&name=train-1");
  REQUIRE_STATUS(list, 200);
  REQUIRE(list.json()["jobs"].size() == 1);
  CHECK(alice.get("/api/v1/jobs?status=running").json()["jobs"].empty());
  CHECK(alice.get("/api/v1/jobs?status=active").json()["jobs"].empty());
  auto nd = alice.request("GET", "/api/v1/jobs", "", {{"Accept", "application/x-ndjson"}});
  REQUIRE_STATUS(nd, 200);
  CHECK(nd.header("Content-Type").value_or("").find("ndjson") != std::string::npos);
  CHECK(json::parse(nd.body.substr(0, nd.body.find('\n')))["id"] == id);
}

TEST_CASE_TEMPLATE("jobs: exit codes, OOM and a missing command map to statuses and reasons", B, NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  auto fail = submit(alice, sh_job("echo bye; exit 3"));
  auto oom = submit(alice, sh_job("x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
                                  {{"preset_name", "cpu-tiny"}}));
  auto missing = submit(alice, {{"image", test_image()}, {"command", {"/no/such/program"}}});
  auto j = wait_finished(alice, fail);
  CHECK(j["status"] == "failed");
  CHECK(j["history"]["reason"] == "Error");
  CHECK(j["history"]["exit_code"] == 3);
  CHECK(alice.get("/api/v1/jobs/" + fail + "/log").body == "bye\n");
  j = wait_finished(alice, oom);
  CHECK(j["status"] == "failed");
  CHECK(j["history"]["reason"] == "OOMKilled");
  j = wait_finished(alice, missing);
  CHECK(j["status"] == "failed");
  CHECK(j["history"]["reason"] == "ContainerCannotRun");
}

TEST_CASE_TEMPLATE("jobs: cancel, restart policy, schedule timeout and life span", B, NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  // Cancel a running job: it is cancelled at once and its container stops.
  auto sleeper = submit(alice, sh_job("echo started; sleep 300", {{"name", "sleeper"}}));
  wait_status(alice, sleeper, "running");
  auto twin = alice.post("/api/v1/jobs", sh_job("true", {{"name", "sleeper"}}));
  EXPECT_STATUS(twin, 409);
  CHECK(code(twin) == "name_in_use");
  EXPECT_STATUS(alice.del("/api/v1/jobs/sleeper"), 204);
  auto j = alice.get("/api/v1/jobs/" + sleeper).json();
  CHECK(j["status"] == "cancelled");
  CHECK(j["history"]["reason"] == "UserRequested");
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + sleeper), 204);  // again: nothing to do

  // always: it restarts after each exit, with back-off, until killed.
  auto again = submit(alice, sh_job("echo run; exit 1", {{"restart_policy", "always"}}));
  j = wait_job(alice, again, [](const json& x) { return x["history"]["restarts"].template get<int>() >= 2; });
  CHECK(j["history"]["restarts"].template get<int>() >= 2);
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + again), 204);
  j = wait_finished(alice, again);
  CHECK(j["status"] == "cancelled");
  auto restarting = std::count_if(j["statuses"].begin(), j["statuses"].end(),
                                  [](const json& s) { return s["reason"] == "Restarting"; });
  CHECK(restarting >= 2);

  // A job that cannot fit while another holds the node fails after its schedule timeout.
  auto big = submit(alice, sh_job("sleep 300", {{"resources", {{"cpu", 2}, {"memory", 64 << 20}}}}));
  wait_status(alice, big, "running");
  auto waits = submit(alice, sh_job("true", {{"schedule_timeout", 2}}));
  j = wait_job(alice, waits, [](const json& x) { return x["history"]["reason"] == "Scheduling"; });
  CHECK(j["history"]["description"].template get<std::string>().find("waiting for resources") != std::string::npos);
  j = wait_finished(alice, waits, std::chrono::seconds(20));
  CHECK(j["status"] == "failed");
  CHECK(j["history"]["reason"] == "ScheduleTimeout");

  // Bumping the life span: absolute, then additional.
  auto bumped = alice.put("/api/v1/jobs/" + big + "/max_run_time_minutes", {{"max_run_time_minutes", 5}});
  REQUIRE_STATUS(bumped, 200);
  CHECK(bumped.json()["max_run_time_minutes"] == 5);
  bumped = alice.put("/api/v1/jobs/" + big + "/max_run_time_minutes", {{"additional_max_run_time_minutes", 10}});
  CHECK(bumped.json()["max_run_time_minutes"] == 15);
  EXPECT_STATUS(alice.put("/api/v1/jobs/" + big + "/max_run_time_minutes", {{"max_run_time_minutes", 0}}), 400);
  EXPECT_STATUS(alice.put("/api/v1/jobs/" + big + "/max_run_time_minutes", json::object()), 400);
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + big), 204);
  EXPECT_STATUS(alice.put("/api/v1/jobs/" + big + "/max_run_time_minutes", {{"max_run_time_minutes", 5}}), 409);
}

TEST_CASE_TEMPLATE("jobs: malformed, unschedulable and over-quota submissions are refused and nothing is created", B,
                   NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  auto bad = [&](const json& body, int status, const std::string& expect) {
    auto r = alice.post("/api/v1/jobs", body);
    CAPTURE(body.dump().substr(0, 200));
    EXPECT_STATUS(r, status);
    CHECK_MESSAGE(r.body.find(expect) != std::string::npos, r.body);
  };
  bad(sh_job("true", {{"name", "Bad_Name"}}), 400, "name:");
  bad(sh_job("true", {{"resources", {{"cpu", -1}, {"memory", 1 << 30}}}}), 400, "resources.cpu");
  bad(sh_job("true", {{"preset_name", "huge"}}), 404, "no preset 'huge'");
  bad(sh_job("true", {{"env", {{"BIG", std::string(300 * 1024, 'x')}}}}), 400, "env:");
  bad(sh_job("true", {{"resources", {{"cpu", 1}, {"memory", 1 << 30}, {"nvidia_gpu", 1}}}}), 400,
      "this node has no GPUs");
  bad(sh_job("true", {{"resources", {{"cpu", 64}, {"memory", 1 << 30}}}}), 400, "unschedulable");
  bad(sh_job("true", {{"project_name", "admin"}}), 403, "missing");
  bad({{"command", "true"}}, 400, "image: required");
  // Over the 1 MiB body limit: 413 before the body is read. The client may see the
  // connection closed under its feet instead (it is still sending), which is a refusal too.
  try {
    auto huge = alice.request("POST", "/api/v1/jobs", sh_job(std::string(2 << 20, 'x')).dump());
    CHECK(huge.status == 413);
  } catch (const Error& e) {
    MESSAGE("the oversized submission was cut off: " << e.what());
  }
  auto malformed = alice.request("POST", "/api/v1/jobs", "{not json");
  EXPECT_STATUS(malformed, 400);
  CHECK(alice.get("/api/v1/jobs").json()["jobs"].empty());

  // The running-jobs quota: refused at submission, or queued with wait_for_jobs_quota.
  REQUIRE_STATUS(env.admin().put("/api/v1/admin/quotas/users/alice", {{"max_running_jobs", 1}}), 200);
  auto first = submit(alice, sh_job("sleep 300"));
  auto r = alice.post("/api/v1/jobs", sh_job("true"));
  EXPECT_STATUS(r, 403);
  CHECK(code(r) == "quota_exceeded");
  auto queued = submit(alice, sh_job("echo queued", {{"wait_for_jobs_quota", true}}));
  auto j = wait_job(alice, queued, [](const json& x) {
    return x["history"]["description"].template get<std::string>().find("running-jobs quota") != std::string::npos;
  });
  CHECK(j["status"] == "pending");
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + first), 204);
  j = wait_finished(alice, queued);
  CHECK(j["status"] == "succeeded");
  CHECK(alice.get("/api/v1/jobs?status=finished").json()["jobs"].size() == 2);
}

TEST_CASE_TEMPLATE("jobs: users see only their own and shared jobs", B, NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto id = submit(alice, sh_job("echo secret-output", {{"name", "private"}}));
  wait_finished(alice, id);
  CHECK(bob.get("/api/v1/jobs/" + id).status == 404);
  CHECK(bob.get("/api/v1/jobs/" + id + "/log").status == 404);
  CHECK(bob.del("/api/v1/jobs/" + id).status == 404);
  CHECK(bob.get("/api/v1/jobs").json()["jobs"].empty());
  CHECK(bob.get("/api/v1/jobs?owner=alice").json()["jobs"].empty());
  // alice shares it for reading: bob sees it and its log, and still cannot cancel it.
  auto grant = alice.post("/api/v1/users/bob/permissions", json::array({{{"uri", "job://test/alice/" + id},
                                                                          {"action", "read"}}}));
  REQUIRE_MESSAGE((grant.status == 200 || grant.status == 201), grant.body);
  wait_job(bob, id, [](const json&) { return true; });
  CHECK(bob.get("/api/v1/jobs").json()["jobs"].size() == 1);
  CHECK(bob.get("/api/v1/jobs/" + id + "/log").body == "secret-output\n");
  CHECK(bob.del("/api/v1/jobs/" + id).status == 403);
  // The admin sees everything.
  CHECK(env.admin().get("/api/v1/jobs?owner=alice").json()["jobs"].size() == 1);
}

TEST_CASE_TEMPLATE("jobs: higher priority is admitted first, and used-up CPU-hours cancel running jobs", B,
                   NEUROD_DB_BACKENDS) {
  auto env = docker_env(B::kDialect);
  auto alice = env.user("alice");
  // The node has 2 CPUs: a holder takes both, then a low and a high priority job wait.
  auto holder = submit(alice, sh_job("sleep 300", {{"resources", {{"cpu", 2}, {"memory", 64 << 20}}}}));
  wait_status(alice, holder, "running");
  auto low = submit(alice, sh_job("sleep 300", {{"resources", {{"cpu", 2}, {"memory", 64 << 20}}}, {"priority", "low"}}));
  auto high =
      submit(alice, sh_job("sleep 300", {{"resources", {{"cpu", 2}, {"memory", 64 << 20}}}, {"priority", "high"}}));
  wait_job(alice, low, [](const json& x) { return x["history"]["reason"] == "Scheduling"; });
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + holder), 204);
  wait_status(alice, high, "running");
  CHECK(alice.get("/api/v1/jobs/" + low).json()["status"] == "pending");
  EXPECT_STATUS(alice.del("/api/v1/jobs/" + high), 204);
  wait_status(alice, low, "running");

  // 0.0005 CPU-hours is under two seconds of this 2-CPU job: metering (every second here)
  // cancels it.
  REQUIRE_STATUS(env.admin().put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", 0.0005}}), 200);
  auto j = wait_finished(alice, low, std::chrono::seconds(30));
  CHECK(j["status"] == "cancelled");
  CHECK(j["history"]["reason"] == "QuotaExhausted");
  // Nothing left: a new job is cancelled before it starts.
  auto next = submit(alice, sh_job("true"));
  j = wait_finished(alice, next, std::chrono::seconds(30));
  CHECK(j["history"]["reason"] == "QuotaExhausted");
}

TEST_CASE_TEMPLATE("jobs: storage volumes, secret env and secret files on both runtimes", B, NEUROD_DB_BACKENDS) {
  for (std::string runtime : {"docker", "process"}) {
    CAPTURE(runtime);
    authtest::Env env(B::kDialect, "", executor_yaml(runtime));
    auto alice = env.user("alice");
    auto bob = env.user("bob");
    put_file(alice, "alice", "data/a.txt", "one\n");
    put_file(alice, "alice", "data/b.txt", "two\n");
    put_file(bob, "bob", "data/private.txt", "bob's\n");
    auto value = "wandb-" + authtest::base64(std::to_string(authtest::now_ms())) + "-" + runtime;
    add_secret(alice, "alice", "WANDB_KEY", value);

    // ro at /data (writes fail), rw at /out (created on first use), the secret as env and
    // as a file whose parent the image lacks.
    auto id = submit(
        alice,
        sh_job("ls /data > /out/list; echo x 2>/dev/null > /data/new && echo data-writable || echo data-ro; "
               "test \"$WANDB_KEY\" = \"$(cat /etc/neurod/key)\" && echo same; echo ${#WANDB_KEY}; "
               "stat -c %a /etc/neurod/key; echo x 2>/dev/null > /etc/neurod/key || echo key-ro",
               {{"volumes",
                 {{{"src_storage_uri", "storage:data"}, {"dst_path", "/data"}},
                  {{"src_storage_uri", "storage:out"}, {"dst_path", "/out"}, {"read_only", false}}}},
                {"secret_env", {{"WANDB_KEY", "secret:WANDB_KEY"}}},
                {"secret_volumes", {{{"src_secret_uri", "secret:WANDB_KEY"}, {"dst_path", "/etc/neurod/key"}}}}}));
    auto job = wait_finished(alice, id);
    CHECK(job["status"] == "succeeded");
    CHECK(job["executor"] == runtime);
    auto log = alice.get("/api/v1/jobs/" + id + "/log").body;
    CHECK(log == "data-ro\nsame\n" + std::to_string(value.size()) + "\n444\nkey-ro\n");
    CHECK_FALSE(std::filesystem::exists(env.server().data_dir() / "storage" / "alice" / "data" / "new"));
    auto list = alice.get("/api/v1/storage/alice/out/list");
    EXPECT_STATUS(list, 200);
    CHECK(list.body == "a.txt\nb.txt\n");
    CHECK(read_file((env.server().data_dir() / "storage" / "alice" / "out" / "list").string()) == "a.txt");

    // The spec names the secret, never its value; nor does anything else the API says.
    CHECK(job["container"]["secret_env"] == json({{"WANDB_KEY", "secret://test/alice/WANDB_KEY"}}));
    CHECK(job["container"]["secret_volumes"][0]["src_secret_uri"] == "secret://test/alice/WANDB_KEY");
    CHECK(job["container"]["volumes"][1] ==
          json({{"src_storage_uri", "storage://test/alice/out"}, {"dst_path", "/out"}, {"read_only", false}}));
    CHECK(job.dump().find(value) == std::string::npos);
    CHECK(alice.get("/api/v1/jobs/" + id + "/statuses").body.find(value) == std::string::npos);
    CHECK(alice.get("/api/v1/jobs").body.find(value) == std::string::npos);
    // The secret file left the host with the job.
    auto node = read_file((env.server().data_dir() / "executor" / "node-id").string());
    REQUIRE_FALSE(node.empty());
    CHECK_FALSE(std::filesystem::exists(std::filesystem::path("/dev/shm/neurod-secrets") / node / id));

    // A missing secret, a missing read-only path: failed at launch, and saying which.
    auto nope = submit(alice, sh_job("true", {{"secret_env", {{"TOKEN", "secret:NOPE"}}}}));
    job = wait_finished(alice, nope);
    CHECK(job["status"] == "failed");
    CHECK(job["history"]["reason"] == "CreateContainerConfigError");
    CHECK(job["history"]["description"] ==
          "secret NOPE does not exist in project alice (secret://test/alice/NOPE), needed for the environment "
          "variable TOKEN");
    auto nofile = submit(alice, sh_job("true", {{"secret_volumes", {{{"src_secret_uri", "secret:NOPE"},
                                                                     {"dst_path", "/run/nope"}}}}}));
    job = wait_finished(alice, nofile);
    CHECK(job["history"]["reason"] == "CreateContainerConfigError");
    CHECK(job["history"]["description"].template get<std::string>().find("needed for the file /run/nope") !=
          std::string::npos);
    auto missing = submit(alice, sh_job("true", {{"volumes", {{{"src_storage_uri", "storage:missing/dir"},
                                                               {"dst_path", "/m"}}}}}));
    job = wait_finished(alice, missing);
    CHECK(job["status"] == "failed");
    CHECK(job["history"]["reason"] == "CreateContainerConfigError");
    CHECK(job["history"]["description"].template get<std::string>().find(
              "storage volume storage://test/alice/missing/dir at /m") != std::string::npos);
    auto disk = submit(alice, sh_job("true", {{"disk_volumes", {{{"src_disk_uri", "disk:disk-1"},
                                                                 {"dst_path", "/disk"}}}}}));
    job = wait_finished(alice, disk);
    CHECK(job["history"]["reason"] == "CreateContainerConfigError");
    CHECK(job["history"]["description"].template get<std::string>().find("disk volumes are not supported yet") !=
          std::string::npos);

    // Someone else's storage and secrets are refused at submission, as are bad targets.
    auto r = alice.post("/api/v1/jobs", sh_job("true", {{"volumes", {{{"src_storage_uri", "storage://test/bob/data"},
                                                                      {"dst_path", "/data"}}}}}));
    EXPECT_STATUS(r, 403);
    CHECK(r.body.find("storage://test/bob/data") != std::string::npos);
    r = alice.post("/api/v1/jobs", sh_job("true", {{"secret_env", {{"K", "secret://test/bob/K"}}}}));
    EXPECT_STATUS(r, 403);
    // Writing needs write: bob may read alice's data, not mount it read-write.
    REQUIRE(alice.post("/api/v1/users/bob/permissions",
                       json::array({{{"uri", "storage://test/alice/data"}, {"action", "read"}}}))
                .status < 300);
    auto shared = submit(bob, sh_job("cat /in/a.txt", {{"volumes", {{{"src_storage_uri", "storage://test/alice/data"},
                                                                      {"dst_path", "/in"}}}}}));
    CHECK(wait_finished(bob, shared)["status"] == "succeeded");
    CHECK(bob.get("/api/v1/jobs/" + shared + "/log").body == "one\n");
    r = bob.post("/api/v1/jobs", sh_job("true", {{"volumes", {{{"src_storage_uri", "storage://test/alice/data"},
                                                               {"dst_path", "/in"},
                                                               {"read_only", false}}}}}));
    EXPECT_STATUS(r, 403);
    r = alice.post("/api/v1/jobs",
                   sh_job("true", {{"volumes", {{{"src_storage_uri", "storage:out"}, {"dst_path", "/out"}}}},
                                   {"secret_volumes", {{{"src_secret_uri", "secret:WANDB_KEY"},
                                                        {"dst_path", "/out/key"}}}}}));
    EXPECT_STATUS(r, 400);
    CHECK(r.body.find("secret_volumes[0].dst_path: must not be inside the volume at /out") != std::string::npos);
  }
}

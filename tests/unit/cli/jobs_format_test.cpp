#include "cli/jobs_format.hpp"

#include <doctest/doctest.h>

#include <chrono>

using neurod::cli::CliError;
using neurod::cli::EnvPairs;
using neurod::cli::Exit;
using neurod::cli::RunArgs;
using neurod::cli::SysTime;
using nlohmann::json;

namespace {

// 2024-05-01T12:30:00Z
SysTime fixed_now() {
  using namespace std::chrono;
  return SysTime(sys_days{year{2024} / May / 1}.time_since_epoch() + hours{12} + minutes{30});
}

RunArgs image(std::string name = "image:bb:1") {
  RunArgs a;
  a.image = std::move(name);
  return a;
}

json request(const RunArgs& a, const EnvPairs& env_file = {}) { return neurod::cli::job_request(a, env_file); }

// The usage error's message, or "" when there was none.
template <class F>
std::string usage_error(F&& f) {
  try {
    f();
  } catch (const CliError& e) {
    CHECK(e.exit() == Exit::usage);
    return e.what();
  }
  return {};
}

std::string bad_request(const RunArgs& a) {
  return usage_error([&] { request(a); });
}

}  // namespace

TEST_CASE("neuro run: the least request is the image alone") {
  CHECK(request(image()) == json{{"image", "image:bb:1"}});
  CHECK(request(image("ubuntu:24.04")) == json{{"image", "ubuntu:24.04"}});
  CHECK(bad_request(image("")) == "IMAGE must not be empty");
}

TEST_CASE("neuro run: the command is sent as the argv list given, without a leading --") {
  auto a = image();
  a.command = {"--", "sh", "-c", "echo 'hi there'; exit 3"};
  CHECK(request(a)["command"] == json{"sh", "-c", "echo 'hi there'; exit 3"});
  a.command = {"python", "train.py", "--lr", "0.1"};
  CHECK(request(a)["command"] == json{"python", "train.py", "--lr", "0.1"});
  a.command = {"--"};
  CHECK_FALSE(request(a).contains("command"));
}

TEST_CASE("neuro run: --entrypoint goes as a string for the server to split") {
  auto a = image();
  a.entrypoint = "/bin/sh -c";
  CHECK(request(a)["entrypoint"] == "/bin/sh -c");
  a.entrypoint = " ";
  CHECK(bad_request(a) == "--entrypoint must not be empty");
}

TEST_CASE("neuro run: -e VAR=VAL to env, VAR=secret:KEY to secret_env, -e after --env-file") {
  auto a = image();
  a.env = {"LR=0.1", "EMPTY=", "EQ=a=b", "TOKEN=secret:hf-token", "FROM_FILE=cli"};
  EnvPairs file{{"FROM_FILE", "file"}, {"ONLY_FILE", "x"}, {"PASSWORD", "secret:db"}, {"LR", "secret:lr"}};
  auto r = request(a, file);
  CHECK(r["env"] == json{{"LR", "0.1"}, {"EMPTY", ""}, {"EQ", "a=b"}, {"FROM_FILE", "cli"}, {"ONLY_FILE", "x"}});
  CHECK(r["secret_env"] == json{{"TOKEN", "secret:hf-token"}, {"PASSWORD", "secret:db"}});

  a.env = {"NOVALUE"};
  CHECK(bad_request(a) == "-e/--env: \"NOVALUE\" is not VAR=VALUE or VAR=secret:KEY");
  a.env = {"1X=2"};
  CHECK_FALSE(bad_request(a).empty());
  a.env = {"=x"};
  CHECK_FALSE(bad_request(a).empty());
}

TEST_CASE("neuro run: --env-file lines") {
  auto pairs =
      neurod::cli::parse_env_file("# settings\n\nA=1\r\n  B = two words \nC=x=y\n   # indented comment\nD=", "f.env");
  CHECK(pairs == EnvPairs{{"A", "1"}, {"B", " two words "}, {"C", "x=y"}, {"D", ""}});
  CHECK(neurod::cli::parse_env_file("", "f.env").empty());
  CHECK(usage_error([] { neurod::cli::parse_env_file("A=1\nB\n", "f.env"); }) ==
        "f.env:2: expected VAR=VALUE, where VAR is letters, digits and '_'");
  CHECK(usage_error([] { neurod::cli::parse_env_file("A-B=1", "f.env"); }).starts_with("f.env:1: "));
}

TEST_CASE("neuro run: -v storage, secret and disk volumes") {
  auto a = image();
  a.volumes = {"storage:data:/data", "storage://default/alice/out:/out:rw",
               "storage:ro:/x:ro",   "secret:key:/etc/key",
               "disk:disk-1:/disk",  "disk:disk-2:/scratch:rw"};
  auto r = request(a);
  CHECK(r["volumes"] == json::parse(R"([
    {"src_storage_uri": "storage:data", "dst_path": "/data", "read_only": true},
    {"src_storage_uri": "storage://default/alice/out", "dst_path": "/out", "read_only": false},
    {"src_storage_uri": "storage:ro", "dst_path": "/x", "read_only": true}])"));
  CHECK(r["secret_volumes"] == json::parse(R"([{"src_secret_uri": "secret:key", "dst_path": "/etc/key"}])"));
  CHECK(r["disk_volumes"] == json::parse(R"([
    {"src_disk_uri": "disk:disk-1", "dst_path": "/disk", "read_only": true},
    {"src_disk_uri": "disk:disk-2", "dst_path": "/scratch", "read_only": false}])"));
}

TEST_CASE("neuro run: malformed volumes") {
  auto bad = [](std::string spec) {
    auto a = image();
    a.volumes = {std::move(spec)};
    return bad_request(a);
  };
  CHECK(bad("data:/data") == "-v/--volume: \"data:/data\": unknown kind \"data\": use storage:, secret: or disk:");
  CHECK(bad("/data") ==
        "-v/--volume: \"/data\": expected storage:PATH:/MOUNT[:ro|rw], secret:KEY:/FILE or disk:ID:/MOUNT[:ro|rw]");
  CHECK(bad("storage:data") == "-v/--volume: \"storage:data\": no mount path: add :/PATH");
  CHECK(bad("storage:data:rw") == "-v/--volume: \"storage:data:rw\": no mount path: add :/PATH");
  CHECK(bad("storage:data:data") == "-v/--volume: \"storage:data:data\": the mount path must be absolute");
  CHECK(bad("storage::/data") == "-v/--volume: \"storage::/data\": nothing after \"storage:\"");
  CHECK(bad("secret:k:/f:ro") ==
        "-v/--volume: \"secret:k:/f:ro\": a secret file is always read-only: leave out :ro/:rw");
}

TEST_CASE("neuro run: a preset, or explicit resources, and --extshm with either") {
  auto a = image();
  a.preset = "gpu-small";
  CHECK(request(a) == json{{"image", "image:bb:1"}, {"preset_name", "gpu-small"}});
  a.extshm = true;
  CHECK(request(a) == json{{"image", "image:bb:1"}, {"preset_name", "gpu-small"}, {"resources", {{"shm", true}}}});

  auto b = image();
  b.cpu = "0.5";
  b.memory = "4GiB";
  b.gpu = "2";
  b.gpu_model = "A100";
  b.extshm = true;
  CHECK(request(b)["resources"] ==
        json{{"cpu", 0.5}, {"memory", 4294967296ULL}, {"nvidia_gpu", 2}, {"nvidia_gpu_model", "A100"}, {"shm", true}});
  CHECK_FALSE(request(b).contains("preset_name"));

  auto c = image();
  c.extshm = true;  // the server's default preset, with shm
  CHECK(request(c) == json{{"image", "image:bb:1"}, {"resources", {{"shm", true}}}});

  b.preset = "cpu-small";
  CHECK(bad_request(b) == "-s/--preset cannot be combined with --cpu, --memory, --gpu or --gpu-model");
}

TEST_CASE("neuro run: bad resource values") {
  auto with = [](auto set) {
    auto a = image();
    set(a);
    return bad_request(a);
  };
  CHECK(with([](RunArgs& a) { a.cpu = "0"; }) == "--cpu: \"0\" is not a positive number of CPUs");
  CHECK(with([](RunArgs& a) { a.cpu = "two"; }) == "--cpu: \"two\" is not a positive number of CPUs");
  CHECK(with([](RunArgs& a) { a.memory = "4 lots"; }) == "--memory: \"4 lots\" is not a size such as 4GiB or 512MiB");
  CHECK(with([](RunArgs& a) { a.gpu = "-1"; }) == "--gpu: \"-1\" is not a number of GPUs");
  CHECK(with([](RunArgs& a) { a.gpu_model = "A100"; }) == "--gpu-model needs --gpu N");
}

TEST_CASE("neuro run: durations") {
  CHECK(neurod::cli::duration_minutes("--life-span", "1d") == 1440);
  CHECK(neurod::cli::duration_minutes("--life-span", "2h30m") == 150);
  CHECK(neurod::cli::duration_minutes("--life-span", "90s") == 2);  // rounded up
  CHECK(neurod::cli::duration_minutes("--life-span", "1s") == 1);
  CHECK(usage_error([] { neurod::cli::duration_minutes("--life-span", "90"); }) ==
        "--life-span: \"90\" needs a unit, e.g. 90m, 90h or 90d");
  CHECK(usage_error([] { neurod::cli::duration_minutes("--life-span", "0s"); }) ==
        "--life-span: \"0s\" is not a duration such as 1d, 8h or 1h30m");
  CHECK(usage_error([] { neurod::cli::duration_minutes("DURATION", "soon"); }).starts_with("DURATION: "));

  CHECK(neurod::cli::duration_seconds("--schedule-timeout", "5m") == 300);
  CHECK(neurod::cli::duration_seconds("--schedule-timeout", "90") == 90);
  CHECK(neurod::cli::duration_seconds("--schedule-timeout", "1500ms") == 1.5);

  auto a = image();
  a.life_span = "1d";
  a.schedule_timeout = "5m";
  auto r = request(a);
  CHECK(r["max_run_time_minutes"] == 1440);
  CHECK(r["schedule_timeout"] == 300);
  CHECK(r["schedule_timeout"].is_number_integer());
  a.schedule_timeout = "1500ms";
  CHECK(request(a)["schedule_timeout"] == 1.5);
  a.schedule_timeout = "never";
  CHECK(bad_request(a).starts_with("--schedule-timeout: "));
}

TEST_CASE("neuro run: the other job fields") {
  auto a = image();
  a.name = "train-1";
  a.description = "first try";
  a.tags = {"exp=3", "lr"};
  a.workdir = "/work";
  a.tty = true;
  a.restart = "on-failure";
  a.priority = "high";
  a.wait_for_seat = true;
  a.project = "ml";
  CHECK(request(a) == json::parse(R"({"image": "image:bb:1", "name": "train-1", "description": "first try",
    "tags": ["exp=3", "lr"], "working_dir": "/work", "tty": true, "restart_policy": "on-failure",
    "priority": "high", "wait_for_jobs_quota": true, "project_name": "ml"})"));

  a.workdir = "work";
  CHECK(bad_request(a) == "-w/--workdir: \"work\" must be absolute");
  a.workdir.clear();
  a.restart = "sometimes";
  CHECK(bad_request(a) == "--restart: \"sometimes\" is not never, on-failure or always");
  a.restart.clear();
  a.tags = {""};
  CHECK(bad_request(a) == "--tag must not be empty");
}

TEST_CASE("neuro run: --http-port, with auth unless --no-http-auth") {
  auto a = image();
  a.http_port = "8888";
  CHECK(request(a)["http"] == json{{"port", 8888}, {"requires_auth", true}});
  a.http_auth = false;
  CHECK(request(a)["http"] == json{{"port", 8888}, {"requires_auth", false}});
  a.http_port = "70000";
  CHECK(bad_request(a) == "--http-port: \"70000\" is not a port (1-65535)");
  a.http_port.clear();
  CHECK(bad_request(a) == "--no-http-auth needs --http-port");
}

TEST_CASE("job life spans and commands for people") {
  CHECK(neurod::cli::format_minutes(json(1440)) == "1d");
  CHECK(neurod::cli::format_minutes(json(90)) == "1h30m");
  CHECK(neurod::cli::format_minutes(json(1500)) == "1d1h");
  CHECK(neurod::cli::format_minutes(json(nullptr)) == "");

  CHECK(neurod::cli::shell_join(json{"sh", "-c", "echo 'hi'; exit 3"}) == "sh -c 'echo '\\''hi'\\''; exit 3'");
  CHECK(neurod::cli::shell_join(json{"python", "train.py", "--lr=0.1", "data/x.csv", ""}) ==
        "python train.py --lr=0.1 data/x.csv ''");
  CHECK(neurod::cli::shell_join(json("sleep 10")) == "sleep 10");
  CHECK(neurod::cli::shell_join(json::array()) == "");
  CHECK(neurod::cli::shell_join(json(nullptr)) == "");
}

TEST_CASE("neuro ps: the query") {
  using neurod::cli::PsArgs;
  using neurod::cli::QueryParams;
  auto q = [](const PsArgs& a) { return neurod::cli::ps_query(a, fixed_now()); };
  CHECK(q(PsArgs{}) == QueryParams{{"status", "active"}});
  PsArgs all;
  all.all = true;
  CHECK(q(all).empty());

  PsArgs a;
  a.statuses = {"failed", "cancelled"};
  a.name = "train";
  a.tags = {"exp=3", "lr"};
  a.owners = {"ME", "bob"};
  a.projects = {"ml"};
  a.since = "1h";
  a.until = "2024-05-01T14:00+02:00";
  a.recent_first = true;
  CHECK(q(a) == QueryParams{{"status", "failed"},
                            {"status", "cancelled"},
                            {"name", "train"},
                            {"tag", "exp=3"},
                            {"tag", "lr"},
                            {"owner", "me"},
                            {"owner", "bob"},
                            {"project_name", "ml"},
                            {"since", "2024-05-01T11:30:00Z"},
                            {"until", "2024-05-01T12:00:00Z"},
                            {"reverse", "true"}});

  PsArgs bad;
  bad.since = "last week";
  CHECK(usage_error([&] { q(bad); }).starts_with("--since: \"last week\" is not a date/time"));
}

TEST_CASE("neuro ps: --format columns") {
  using V = std::vector<std::string>;
  CHECK(neurod::cli::parse_columns(neurod::cli::kPsDefaultFormat) ==
        V{"id", "name", "status", "when", "image", "owner", "command"});
  CHECK(neurod::cli::parse_columns(" ID, life-span ,exit_code,") == V{"id", "life_span", "exit_code"});
  CHECK(usage_error([] {
          neurod::cli::parse_columns("id,colour");
        }).starts_with("--format: unknown column \"colour\"; the columns are id,name,"));
  CHECK(usage_error([] { neurod::cli::parse_columns(" , "); }).starts_with("--format: no columns"));
}

namespace {

json sample_job() {
  return json::parse(R"({
    "id": "job-1", "name": "train-1", "owner": "alice", "project_name": "ml", "cluster_name": "default",
    "uri": "job://default/ml/job-1", "status": "failed",
    "history": {"status": "failed", "reason": "Error", "description": "boom", "created_at": "2024-05-01T10:00:00.000Z",
                "started_at": "2024-05-01T10:00:05.000Z", "finished_at": "2024-05-01T12:25:00.000Z",
                "exit_code": 3, "run_time_seconds": 8695.4, "restarts": 1},
    "statuses": [
      {"status": "pending", "reason": "Creating", "description": "", "transition_time": "2024-05-01T10:00:00.000Z", "exit_code": null},
      {"status": "pending", "reason": "Pulling", "description": "image:bb:1", "transition_time": "2024-05-01T10:00:01.000Z", "exit_code": null},
      {"status": "running", "reason": "", "description": "", "transition_time": "2024-05-01T10:00:05.000Z", "exit_code": null},
      {"status": "failed", "reason": "Error", "description": "boom", "transition_time": "2024-05-01T12:25:00.000Z", "exit_code": 3}],
    "container": {"image": "image:bb:1", "command": ["sh", "-c", "echo hi; exit 3"], "entrypoint": [],
                  "env": {"LR": "0.1"}, "working_dir": "/work", "tty": false,
                  "resources": {"cpu": 1, "memory": 2147483648, "memory_mb": 2048, "shm": true, "nvidia_gpu": 0},
                  "volumes": [{"src_storage_uri": "storage:data", "dst_path": "/data", "read_only": true}],
                  "secret_env": {"TOKEN": "secret:hf"},
                  "secret_volumes": [{"src_secret_uri": "secret:key", "dst_path": "/etc/key"}],
                  "disk_volumes": [], "http": null},
    "preset_name": "cpu-small", "tags": ["exp=3", "lr"], "description": "line one\nline two",
    "restart_policy": "on-failure", "priority": "normal", "schedule_timeout": 300,
    "max_run_time_minutes": 1440, "executor": "docker", "gpu_ids": []})");
}

}  // namespace

TEST_CASE("neuro ps: when, relative to now") {
  auto now = fixed_now();
  CHECK(neurod::cli::ago(json("2024-05-01T12:29:30Z"), now) == "just now");
  CHECK(neurod::cli::ago(json("2024-05-01T12:25:00.000Z"), now) == "5m ago");
  CHECK(neurod::cli::ago(json("2024-05-01T09:00:00+00:00"), now) == "3h ago");
  CHECK(neurod::cli::ago(json("2024-04-28T12:30:00Z"), now) == "3d ago");
  CHECK(neurod::cli::ago(json("2024-01-01T00:00:00.5Z"), now) == "2024-01-01T00:00:00Z");
  CHECK(neurod::cli::ago(json(1714566300000), now) == "5m ago");  // epoch milliseconds
  CHECK(neurod::cli::ago(json(nullptr), now) == "");

  auto job = sample_job();
  CHECK(neurod::cli::when_of(job) == "2024-05-01T12:25:00.000Z");  // finished: its end
  job["status"] = "running";
  CHECK(neurod::cli::when_of(job) == "2024-05-01T10:00:05.000Z");  // running: its start
  job["status"] = "pending";
  CHECK(neurod::cli::when_of(job) == "2024-05-01T10:00:00.000Z");  // pending: its submission
}

TEST_CASE("neuro ps: the table") {
  auto now = fixed_now();
  auto job = sample_job();
  auto pending = json::parse(R"({"id": "job-2", "status": "pending", "owner": "bob",
    "history": {"status": "pending", "created_at": "2024-05-01T12:29:59Z", "restarts": 0},
    "container": {"image": "ubuntu:24.04", "command": null}})");
  auto jobs = json::array({job, pending});
  CHECK(neurod::cli::render_jobs(jobs, neurod::cli::parse_columns(neurod::cli::kPsDefaultFormat), now, false) ==
        "ID     NAME     STATUS   WHEN      IMAGE         OWNER  COMMAND\n"
        "job-1  train-1  failed   5m ago    image:bb:1    alice  sh -c 'echo hi; exit 3'\n"
        "job-2           pending  just now  ubuntu:24.04  bob\n");
  CHECK(neurod::cli::render_jobs(jobs, neurod::cli::parse_columns("id,tags,description,life_span,exit_code,restarts"),
                                 now, false) ==
        "ID     TAGS      DESCRIPTION        LIFE SPAN  EXIT CODE  RESTARTS\n"
        "job-1  exp=3,lr  line one line two  1d                 3         1\n"
        "job-2                                                            0\n");
  CHECK(neurod::cli::render_jobs(json::array(), {"id", "status"}, now, false) == "ID  STATUS\n");
  CHECK(neurod::cli::job_cell(job, "project", now) == "ml");
  CHECK(neurod::cli::job_cell(job, "preset", now) == "cpu-small");
}

TEST_CASE("neuro run: status lines while following") {
  CHECK(neurod::cli::status_line(json{{"status", "pending"}, {"reason", "Creating"}, {"description", ""}}) ==
        "pending Creating");
  CHECK(neurod::cli::status_line(json{{"status", "pending"}, {"reason", "Pulling"}, {"description", "image:bb:1"}}) ==
        "pending Pulling: image:bb:1");
  CHECK(neurod::cli::status_line(json{{"status", "running"}, {"reason", nullptr}}) == "running");
  CHECK(neurod::cli::status_line(json{{"status", "failed"}, {"reason", "OOMKilled"}, {"exit_code", 137}}) ==
        "failed OOMKilled (exit code 137)");
  CHECK(neurod::cli::status_line(
            json{{"status", "failed"}, {"reason", "Error"}, {"description", "exit code 3"}, {"exit_code", 3}}) ==
        "failed Error: exit code 3");
  CHECK(neurod::cli::status_line(json{{"status", "succeeded"}, {"reason", "Completed"}, {"exit_code", 0}}) ==
        "succeeded Completed");

  auto job = sample_job();
  neurod::cli::Transitions t;
  auto partial = job;
  partial["statuses"].erase(3);  // only the pending items so far
  partial["statuses"].erase(2);
  CHECK(neurod::cli::new_transitions(partial, t) ==
        std::vector<std::string>{"pending Creating", "pending Pulling: image:bb:1"});
  CHECK(neurod::cli::new_transitions(partial, t).empty());
  CHECK(neurod::cli::new_transitions(job, t) ==
        std::vector<std::string>{"running", "failed Error: boom (exit code 3)"});
  CHECK(neurod::cli::new_transitions(job, t).empty());

  // Without "statuses", the history's current state, when it changes.
  neurod::cli::Transitions h;
  auto bare = json{{"status", "pending"}, {"history", {{"status", "pending"}, {"reason", "Scheduling"}}}};
  CHECK(neurod::cli::new_transitions(bare, h) == std::vector<std::string>{"pending Scheduling"});
  CHECK(neurod::cli::new_transitions(bare, h).empty());
  bare["status"] = "running";
  bare["history"] = {{"status", "running"}};
  CHECK(neurod::cli::new_transitions(bare, h) == std::vector<std::string>{"running"});
}

TEST_CASE("neuro run: the exit code") {
  auto outcome = [](std::string status, json reason, json exit_code) {
    return neurod::cli::job_outcome(
        json{{"id", "job-1"},
             {"status", status},
             {"history", {{"status", status}, {"reason", reason}, {"exit_code", exit_code}}}});
  };
  auto ok = outcome("succeeded", "Completed", 0);
  CHECK(ok.exit_code == 0);
  CHECK(ok.message.empty());
  CHECK(outcome("succeeded", "Completed", nullptr).exit_code == 0);

  auto error = outcome("failed", "Error", 3);
  CHECK(error.exit_code == 3);
  CHECK(error.message == "job job-1 failed Error (exit code 3)");
  CHECK(outcome("failed", "OOMKilled", 137).exit_code == 137);
  CHECK(outcome("cancelled", "UserRequested", 143).exit_code == 143);

  auto pull = outcome("failed", "ErrImagePull", nullptr);
  CHECK(pull.exit_code == neurod::cli::kJobCouldNotRun);
  CHECK(pull.message == "job job-1 failed ErrImagePull; it ended without an exit code of its own");
  auto cancelled = outcome("cancelled", "UserRequested", nullptr);
  CHECK(cancelled.exit_code == 125);
  auto odd = outcome("failed", "Error", -1);
  CHECK(odd.exit_code == 125);
  CHECK(odd.message == "job job-1 failed Error (exit code -1); it ended without an exit code of its own");
  auto clean = outcome("cancelled", "UserRequested", 0);  // stopped cleanly on SIGTERM: still not a success
  CHECK(clean.exit_code == 125);
  CHECK(clean.message == "job job-1 cancelled UserRequested; it ended without an exit code of its own");
}

TEST_CASE("neuro status: the report") {
  auto text = neurod::cli::render_job_status(sample_job(), fixed_now(), false);
  CHECK(text ==
        "Job:               job-1\n"
        "Name:              train-1\n"
        "Owner:             alice\n"
        "Project:           ml\n"
        "URI:               job://default/ml/job-1\n"
        "Tags:              exp=3, lr\n"
        "Description:       line one line two\n"
        "Image:             image:bb:1\n"
        "Command:           sh -c 'echo hi; exit 3'\n"
        "Working dir:       /work\n"
        "Preset:            cpu-small\n"
        "Resources:         1 CPU, 2 GiB memory, extended /dev/shm\n"
        "Env:               LR=0.1\n"
        "Secret env:        TOKEN\n"
        "Volumes:           storage:data:/data:ro\n"
        "                   secret:key:/etc/key\n"
        "Life span:         1d\n"
        "Restart:           on-failure\n"
        "Priority:          normal\n"
        "Schedule timeout:  5m\n"
        "Executor:          docker\n"
        "Status:            failed Error: boom\n"
        "Exit code:         3\n"
        "Created:           2024-05-01T10:00:00Z (2h ago)\n"
        "Started:           2024-05-01T10:00:05Z (2h ago)\n"
        "Finished:          2024-05-01T12:25:00Z (5m ago)\n"
        "Run time:          2h24m55s\n"
        "Restarts:          1\n"
        "\n"
        "TIME                  STATUS   REASON    DESCRIPTION  EXIT CODE\n"
        "2024-05-01T10:00:00Z  pending  Creating\n"
        "2024-05-01T10:00:01Z  pending  Pulling   image:bb:1\n"
        "2024-05-01T10:00:05Z  running\n"
        "2024-05-01T12:25:00Z  failed   Error     boom                 3\n");
  // The secret's key is not shown, only the variable's name.
  CHECK(text.find("secret:hf") == std::string::npos);
}

TEST_CASE("neuro status: a job with GPUs, HTTP and a disk") {
  auto job = sample_job();
  job["container"]["resources"] = {{"cpu", 8}, {"memory_mb", 65536}, {"nvidia_gpu", 2}, {"nvidia_gpu_model", "A100"}};
  job["container"]["http"] = {{"port", 8888}, {"requires_auth", false}};
  job["container"]["volumes"] = json::array();
  job["container"]["secret_volumes"] = json::array();
  job["container"]["disk_volumes"] = {{{"src_disk_uri", "disk:disk-1"}, {"dst_path", "/d"}, {"read_only", false}}};
  job["gpu_ids"] = {0, 1};
  auto text = neurod::cli::render_job_status(job, fixed_now(), false);
  CHECK(text.find("Resources:         8 CPU, 64 GiB memory, 2 GPU (A100)\n") != std::string::npos);
  CHECK(text.find("GPUs:              0, 1\n") != std::string::npos);
  CHECK(text.find("Volumes:           disk:disk-1:/d:rw\n") != std::string::npos);
  CHECK(text.find("HTTP:              port 8888, no auth\n") != std::string::npos);
}

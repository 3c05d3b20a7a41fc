// The job model: submission validation (reference §1.1, §2.2), shell splitting, the
// derived history fields and the stored form's round trip.
#include "core/errors.hpp"
#include "modules/jobs/model.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using namespace neurod::jobs;
using nlohmann::json;

namespace {

std::vector<config::Preset> presets() {
  return {{"cpu-small", 1, config::Size{2ull << 30}, 0, "", config::Size{0}, 1.5},
          {"gpu-large", 8, config::Size{64ull << 30}, 2, "A100", config::Size{1ull << 30}, 10}};
}

UriResolver resolver() {
  return [](std::string_view text, std::string_view scheme) {
    std::string t(text);
    auto prefix = std::string(scheme) + ":";
    if (t.rfind(prefix, 0) != 0) throw Error(errc::invalid_argument, "must be a " + std::string(scheme) + ": URI");
    auto rest = t.substr(prefix.size());
    if (rest.rfind("//", 0) == 0) return t;
    return std::string(scheme) + "://default/alice/" + rest;
  };
}

JobSpec parse(const json& body) { return parse_spec(body, presets(), SpecLimits{}, resolver()); }

std::string error_of(const json& body) {
  try {
    parse(body);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("job spec: defaults come from the first preset and the limits") {
  auto s = parse({{"image", "image:bb:1"}, {"command", "sh -c 'echo hi; exit 3'"}});
  CHECK(s.preset == "cpu-small");
  CHECK(s.resources.cpu == 1);
  CHECK(s.resources.memory == 2ull << 30);
  CHECK(s.command == std::vector<std::string>{"sh", "-c", "echo hi; exit 3"});
  CHECK(s.restart_policy == RestartPolicy::never);
  CHECK(s.priority == 0);
  CHECK(s.schedule_timeout == 300);
  CHECK(s.max_run_time_minutes == 24 * 60);
}

TEST_CASE("job spec: explicit resources, tags, env, volumes") {
  auto s = parse({{"image", "busybox:1"},
                  {"command", {"echo", "a b"}},
                  {"resources", {{"cpu", 0.5}, {"memory_mb", 64}, {"shm", true}}},
                  {"tags", {"b", "a", "b"}},
                  {"env", {{"Z", "1"}, {"A", "2"}}},
                  {"name", "train-1"},
                  {"priority", "high"},
                  {"restart_policy", "on-failure"},
                  {"volumes", {{{"src_storage_uri", "storage:data"}, {"dst_path", "/data"}}}},
                  {"secret_env", {{"KEY", "secret:k"}}}});
  CHECK(s.preset.empty());
  CHECK(s.resources.memory == 64ull << 20);
  CHECK(s.resources.shm);
  CHECK(s.tags == std::vector<std::string>{"a", "b"});
  CHECK(s.env.front().first == "A");
  CHECK(s.volumes.at(0).uri == "storage://default/alice/data");
  CHECK(s.volumes.at(0).read_only);
  CHECK(s.secret_env.at("KEY") == "secret://default/alice/k");
  CHECK(s.priority == 1);
  CHECK(s.restart_policy == RestartPolicy::on_failure);
  auto round = parse_stored_spec(spec_to_json(s));
  CHECK(spec_to_json(round) == spec_to_json(s));
}

TEST_CASE("job spec: bad input names the field") {
  CHECK(error_of({{"command", "x"}}).find("image: required") != std::string::npos);
  CHECK(error_of({{"image", "bb"}, {"name", "Train"}}).find("name:") == 0);
  CHECK(error_of({{"image", "bb"}, {"name", "job-abc"}}).find("name:") == 0);
  CHECK(error_of({{"image", "bb"}, {"name", "ab"}}).find("name:") == 0);
  CHECK(error_of({{"image", "bb"}, {"tags", {"ok", "has space"}}}).find("tags[1]:") == 0);
  CHECK(error_of({{"image", "bb"}, {"resources", {{"cpu", -1}, {"memory", 1 << 30}}}}).find("resources.cpu") == 0);
  CHECK(error_of({{"image", "bb"}, {"resources", {{"cpu", 1}, {"memory", 1024}}}}).find("resources.memory") == 0);
  CHECK(error_of({{"image", "bb"}, {"preset_name", "cpu-small"}, {"resources", {{"cpu", 1}, {"memory", 1 << 30}}}})
            .find("resources: give either") == 0);
  CHECK(error_of({{"image", "bb"}, {"preset_name", "nope"}}).find("no preset 'nope'") != std::string::npos);
  CHECK(error_of({{"image", "bb"}, {"restart_policy", "sometimes"}}).find("restart_policy") == 0);
  CHECK(error_of({{"image", "bb"}, {"priority", "urgent"}}).find("priority") == 0);
  CHECK(error_of({{"image", "bb"}, {"env", {{"1X", "a"}}}}).find("env.1X") == 0);
  CHECK(error_of({{"image", "bb"}, {"env", {{"NEURO_JOB_ID", "a"}}}}).find("env.NEURO_JOB_ID") == 0);
  CHECK(error_of({{"image", "bb"}, {"env", {{"A", std::string(200 * 1024, 'x')}}}}).find("env:") == 0);
  CHECK(error_of({{"image", "bb"}, {"command", "echo 'unterminated"}}).find("command:") == 0);
  CHECK(error_of({{"image", "bb"}, {"working_dir", "rel"}}).find("working_dir") == 0);
  CHECK(error_of({{"image", "bb"}, {"schedule_timeout", 0}}).find("schedule_timeout") == 0);
  CHECK(error_of({{"image", "bb"}, {"max_run_time_minutes", 0}}).find("max_run_time_minutes") == 0);
  CHECK(error_of({{"image", "bb"}, {"bogus", 1}}).find("bogus: unknown field") == 0);
  CHECK(error_of({{"image", "bb"},
                  {"volumes",
                   {{{"src_storage_uri", "storage:a"}, {"dst_path", "/x"}},
                    {{"src_storage_uri", "storage:b"}, {"dst_path", "/x/"}}}}})
            .find("volumes[1].dst_path") == 0);
  CHECK(error_of({{"image", "bb"}, {"volumes", {{{"src_storage_uri", "secret:a"}, {"dst_path", "/x"}}}}})
            .find("volumes[0].src_storage_uri") == 0);
  CHECK(error_of({{"image", "bb"}, {"volumes", {{{"src_storage_uri", "storage:a"}, {"dst_path", "/a/../b"}}}}})
            .find("volumes[0].dst_path") == 0);
  CHECK(error_of(json::array()).find("JSON object") != std::string::npos);
  json many = json::array();
  for (int i = 0; i < 17; ++i) many.push_back("t" + std::to_string(i));
  CHECK(error_of({{"image", "bb"}, {"tags", many}}).find("tags: at most 16") == 0);
}

TEST_CASE("job names follow the reference's rule") {
  CHECK(valid_job_name("train-1"));
  CHECK(valid_job_name("abc"));
  CHECK_FALSE(valid_job_name("ab"));
  CHECK_FALSE(valid_job_name("1abc"));
  CHECK_FALSE(valid_job_name("a--b"));
  CHECK_FALSE(valid_job_name("abc-"));
  CHECK_FALSE(valid_job_name("job-x1"));
  CHECK_FALSE(valid_job_name(std::string(41, 'a')));
}

TEST_CASE("shell_split handles quotes and escapes without expanding") {
  CHECK(shell_split("a  b") == std::vector<std::string>{"a", "b"});
  CHECK(shell_split("sh -c 'echo $HOME; x'") == std::vector<std::string>{"sh", "-c", "echo $HOME; x"});
  CHECK(shell_split(R"(a "b \"c\" d" e\ f '')") == std::vector<std::string>{"a", "b \"c\" d", "e f", ""});
  CHECK_THROWS_AS(shell_split("'x"), Error);
  CHECK_THROWS_AS(shell_split("\"x"), Error);
}

TEST_CASE("job history: started, finished, run time, restarts") {
  Job j;
  j.created_ms = 1000;
  j.statuses = {{Status::pending, "Creating", "", {}, 1000},
                {Status::running, "", "", {}, 2000},
                {Status::pending, "Restarting", "", 1, 5000},
                {Status::running, "", "", {}, 7000},
                {Status::failed, "Error", "exit code 3", 3, 8000}};
  CHECK(j.started_ms() == 2000);
  CHECK(j.finished_ms() == 8000);
  CHECK(j.restarts() == 1);
  CHECK(j.run_time_seconds(99999) == doctest::Approx(4.0));
  auto out = to_json(j, 9000);
  CHECK(out["history"]["exit_code"] == 3);
  CHECK(out["history"]["restarts"] == 1);
  CHECK(out["statuses"].size() == 5);
}

TEST_CASE("times parse in RFC 3339 forms") {
  CHECK(parse_time_ms("1970-01-01T00:00:01Z") == 1000);
  CHECK(parse_time_ms("1970-01-01T00:00:01.5Z") == 1500);
  CHECK(parse_time_ms("1970-01-01T01:00:00+01:00") == 0);
  CHECK(parse_time_ms("1970-01-02") == 86400000);
  CHECK_FALSE(parse_time_ms("yesterday"));
  CHECK(format_time_ms(1500) == "1970-01-01T00:00:01.500Z");
}

TEST_CASE("registry images: short, project and cluster forms, tags and digests") {
  auto a = parse_registry_image("image:train:1", "alice", "default");
  REQUIRE(a);
  CHECK(a->project == "alice");
  CHECK(a->repository == "alice/train");
  CHECK(a->reference == ":1");
  auto b = parse_registry_image("image:train", "alice", "default");
  REQUIRE(b);
  CHECK(b->reference == ":latest");
  auto c = parse_registry_image("image:/team/tools/cuda:12.1-devel", "alice", "default");
  REQUIRE(c);
  CHECK(c->project == "team");
  CHECK(c->repository == "team/tools/cuda");
  CHECK(c->reference == ":12.1-devel");
  const std::string digest = "sha256:" + std::string(64, 'a');
  auto d = parse_registry_image("image://default/team/x@" + digest, "alice", "default");
  REQUIRE(d);
  CHECK(d->repository == "team/x");
  CHECK(d->reference == "@" + digest);
  auto e = parse_registry_image("image:my-app__v2.x:v1", "alice", "default");
  REQUIRE(e);
  CHECK(e->repository == "alice/my-app__v2.x");
  CHECK_FALSE(parse_registry_image("busybox:1", "alice", "default"));
  CHECK_FALSE(parse_registry_image("localhost:5000/alice/x:1", "alice", "default"));
}

TEST_CASE("registry images: malformed names and other clusters are refused") {
  for (std::string bad : {"image:", "image:Train:1", "image:../x:1", "image:a/../b", "image:x:", "image:x:-1",
                          "image:/onlyproject", "image://other/alice/x:1", "image://default", "image:x@sha256:XYZ",
                          "image:a..b", "image:-a", "image:a_"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_registry_image(bad, "alice", "default"), Error);
  }
  CHECK_THROWS_WITH(parse_registry_image("image://other/alice/x:1", "alice", "default"),
                    doctest::Contains("not this one"));
}

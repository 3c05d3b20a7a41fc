// Shared by the jobs http tests: a server whose executor talks to the test Podman
// service (tests/support/podman.sh) or runs the process runtime, and short ways to
// submit jobs and wait for their statuses.
#pragma once

#include "http/auth_helpers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

namespace neurod::jobtest {

using authtest::Api;
using authtest::json;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

inline std::string podman_dir() {
  const char* d = std::getenv("NEUROD_TEST_PODMAN_DIR");
  return d && *d ? d : NEUROD_TEST_PODMAN_DIR;
}

inline std::string podman_socket() { return read_file(podman_dir() + "/socket"); }
// The image built offline from busybox-static by podman.sh.
inline std::string test_image() {
  auto image = read_file(podman_dir() + "/image");
  return image.empty() ? "localhost/neurod-test/busybox:1" : image;
}

// modules: YAML for a node with 2 CPUs, 4 GiB and no GPUs, on `runtime`.
inline std::string executor_yaml(const std::string& runtime, const std::string& jobs_extra = "") {
  std::string y = "modules:\n  executor:\n    runtime: " + runtime +
                  "\n    stop_grace: 2s\n    capacity:\n      cpu: 2\n      memory: 4GiB\n      gpus: 0\n";
  if (runtime == "docker")
    y += "    docker:\n      socket: " + podman_socket() +
         "\n      ulimits:\n        - {name: nofile, soft: 1024, hard: 1024}\n"
         "        - {name: nproc, soft: 4096, hard: 4096}\n";
  y += "  jobs:\n    restart_backoff: 200ms\n    metering_interval: 1s\n" + jobs_extra;
  y += "presets:\n  - {name: cpu-small, cpu: 1, memory: 256MiB}\n  - {name: cpu-tiny, cpu: 0.5, memory: 64MiB}\n";
  return y;
}

// A job body with the test image and a shell command.
inline json sh_job(const std::string& script, json extra = json::object()) {
  json body = {{"image", test_image()}, {"command", {"sh", "-c", script}}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// Polls the job until `done(job)` or the deadline; returns the last answer.
template <class Pred>
json wait_job(Api& api, const std::string& id, Pred done, std::chrono::seconds deadline = std::chrono::seconds(60)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  json last;
  while (std::chrono::steady_clock::now() < until) {
    auto r = api.get("/api/v1/jobs/" + id);
    if (r.status == 200) {
      last = r.json();
      if (done(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL_CHECK("job " << id << " did not reach the expected state; last: " << last.dump());
  return last;
}

inline json wait_finished(Api& api, const std::string& id, std::chrono::seconds deadline = std::chrono::seconds(60)) {
  return wait_job(
      api, id,
      [](const json& j) {
        auto s = j["status"].get<std::string>();
        return s == "succeeded" || s == "failed" || s == "cancelled";
      },
      deadline);
}

// A file in project storage through the storage API (PUT …?op=CREATE).
inline void put_file(Api& api, const std::string& project, const std::string& path, const std::string& content) {
  auto r = api.request("PUT", "/api/v1/storage/" + project + "/" + path, content);
  REQUIRE_MESSAGE(r.status == 201, "PUT storage " << project << "/" << path << ": " << r.status << ": " << r.body);
}

// A secret through the secrets API.
inline void add_secret(Api& api, const std::string& project, const std::string& key, const std::string& value) {
  auto r = api.post("/api/v1/secrets",
                    {{"key", key}, {"value", authtest::base64(value)}, {"project_name", project}});
  REQUIRE_MESSAGE((r.status == 201 || r.status == 200), "POST secret " << key << ": " << r.status << ": " << r.body);
}

inline json wait_status(Api& api, const std::string& id, const std::string& status,
                        std::chrono::seconds deadline = std::chrono::seconds(60)) {
  return wait_job(api, id, [&](const json& j) { return j["status"] == status; }, deadline);
}

// Submits a job and returns its id (202 required).
inline std::string submit_job(Api& api, const json& body) {
  auto r = api.post("/api/v1/jobs", body);
  REQUIRE_STATUS(r, 202);
  return r.json()["id"];
}

// A port nothing listens on now (the process runtime's jobs share the host's ports). Below
// the ephemeral range (32768+): an ephemeral port can be taken by any outgoing connection
// meanwhile, and a connect to an unused ephemeral port can even connect to itself.
inline std::uint16_t free_port() {
  static std::atomic<unsigned> next{20000 + unsigned(::getpid()) % 10000};
  for (;;) {
    auto port = static_cast<std::uint16_t>(20000 + next.fetch_add(7) % 12000);
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

}  // namespace neurod::jobtest

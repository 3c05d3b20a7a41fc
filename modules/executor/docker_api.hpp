// A thin typed wrapper over the Docker Engine API (the compat endpoints that Docker and
// Podman's `podman system service` both serve) on a unix socket, and the pure helpers the
// docker runner needs: image references, registry auth headers, the log stream decoder.
// Blocking; one DockerApi per thread (it owns one connection). No Beast in this header.
#pragma once

#include "http/client.hpp"
#include "modules/executor/executor.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace neurod::executor {

// The engine answered with an error status (or a pull stream reported one). what() is the
// engine's message; status 0 for an error inside a 200 stream.
class DockerEngineError : public std::runtime_error {
 public:
  DockerEngineError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// "registry:5000/team/app:1.2@sha256:…" split as the Engine API wants it.
struct DockerImageRef {
  std::string domain;  // empty: the engine's default registry (docker.io)
  std::string path;    // "team/app"
  std::string tag;     // may be empty
  std::string digest;  // "sha256:…", may be empty
  // For POST /images/create: fromImage (domain/path) and tag (the digest, the tag or "latest").
  std::string repository() const;
  std::string pull_tag() const;
  // The registry the credentials are for: the domain, "docker.io" when none.
  std::string registry() const;
};
// nullopt for what the engine would reject as an invalid reference format.
std::optional<DockerImageRef> parse_docker_image_ref(std::string_view text);

// The X-Registry-Auth header value: base64url of {"username","password","serveraddress"}.
std::string docker_registry_auth_header(const RegistryAuth& auth);
// Whether a configured registry server ("host:port", "https://index.docker.io/v1/") is the
// reference's registry.
bool docker_registry_matches(std::string_view server, std::string_view registry);

// One line of a job's output as the engine recorded it.
struct DockerLogLine {
  TimePoint time;   // when the line ended: the time of the record that completed it
  TimePoint start;  // when its first part was recorded (earlier for a line written in pieces)
  std::string_view text;
};

// Splits the body of GET /containers/{id}/logs?timestamps=1 into lines: the multiplexed
// form (8-byte frame headers, stdout and stderr kept apart) when the container has no TTY,
// the raw form otherwise. A line written in pieces (Podman's partial records, Docker's
// 16 KiB splits) comes in several frames, each with its own timestamp: the pieces are
// joined, and the line's time is that of its last piece, so lines come out in time order.
// Lines not ended yet wait for more input; finish() flushes them.
class DockerLogDecoder {
 public:
  using LineFn = std::function<void(const DockerLogLine&)>;
  DockerLogDecoder(bool tty, LineFn on_line) : tty_(tty), on_line_(std::move(on_line)) {}
  void feed(std::string_view bytes);
  void finish();
  // The start of the oldest line not ended yet.
  std::optional<TimePoint> pending_start() const;

 private:
  struct Partial {
    std::string text;
    TimePoint start{};
    TimePoint last{};
    bool open = false;
  };
  void payload(int stream, std::string_view data);
  void raw_line(std::string_view line);
  void emit(Partial& p, TimePoint time);

  bool tty_;
  LineFn on_line_;
  std::string pending_;  // bytes not yet decoded (a frame not complete, a raw line not ended)
  Partial partial_[3];   // per stream: stdin (unused), stdout, stderr
};

// The engine's own log file of a container (inspect's LogPath), read directly for low
// latency (the docker runner tails it). Two formats, told apart by their first record:
//  - Podman's k8s-file (what Podman writes whatever LogConfig.Type says):
//    "<RFC 3339 nanosecond time> stdout|stderr F|P <text>\n"; P marks a piece of a line that
//    goes on in the next record of the same stream, F its end.
//  - Docker's json-file: {"log":"<text, \n at the end of a line>","stream":"stdout","time":"…"}
//    per record; a record whose log does not end in "\n" is a piece (16 KiB splits).
// Pieces are joined per stream; a line's time is that of its last piece (as DockerLogDecoder).
// Only whole records (ended by "\n" in the file) are decoded: a record being written waits.
class EngineLogFileDecoder {
 public:
  enum class Format { unknown, k8s_file, json_file };
  using LineFn = std::function<void(const DockerLogLine&)>;
  explicit EngineLogFileDecoder(LineFn on_line) : on_line_(std::move(on_line)) {}
  // False once the bytes are in neither format (the caller falls back to the API).
  bool feed(std::string_view bytes);
  void finish();  // the container stopped: flush lines whose end never came
  std::optional<TimePoint> pending_start() const;
  Format format() const { return format_; }

 private:
  struct Partial {
    std::string text;
    TimePoint start{};
    TimePoint last{};
    bool open = false;
  };
  bool record(std::string_view line);
  void piece(int stream, TimePoint time, std::string_view text, bool ends);

  LineFn on_line_;
  Format format_ = Format::unknown;
  std::string pending_;
  Partial partial_[2];  // stdout, stderr
};

class DockerApi {
 public:
  // version: the API version in the path ("1.41"); empty for unversioned paths.
  DockerApi(const std::string& socket, std::string version, Duration timeout = std::chrono::seconds(60));

  http::Client& client() { return client_; }
  void set_timeout(Duration timeout) { client_.set_timeout(timeout); }
  void cancel() { client_.cancel(); }  // thread-safe

  // Any status comes back; throws Error(unavailable|gateway_timeout) when the engine does not answer.
  http::ClientResponse call(std::string_view method, const std::string& path, const nlohmann::json* body = nullptr,
                            std::vector<std::pair<std::string, std::string>> headers = {});

  nlohmann::json version();  // GET /version (unversioned)
  bool image_exists(const std::string& ref);
  // POST /images/create; reads the progress stream to its end. Throws DockerEngineError
  // with the engine's message when the pull fails, Error(gateway_timeout) past deadline.
  void pull(const DockerImageRef& ref, const std::string& auth_header, Clock::time_point deadline);
  std::string create_container(const std::string& name, const nlohmann::json& body);  // the id
  void start_container(const std::string& id);
  void stop_container(const std::string& id, int seconds);
  bool remove_container(const std::string& id);  // force, with volumes; false: there was none
  std::optional<nlohmann::json> inspect_container(const std::string& id);
  nlohmann::json list_containers(const std::string& label);  // all=1, filtered by "key=value"
  // GET /containers/{id}/stats?stream=false (one sample); nullopt: no such container.
  std::optional<nlohmann::json> stats(const std::string& id);
  // GET /containers/{id}/logs with timestamps; since: unix seconds. Returns true when the
  // engine ended the stream (for follow: the container stopped), false when on_chunk did.
  bool logs(const std::string& id, bool follow, std::optional<std::int64_t> since,
            const std::function<bool(std::string_view)>& on_chunk);

  // Interactive sessions: exec and attach. A request whose connection the engine takes
  // over for a raw stream (exec start, attach): a new connection of its own (not this
  // api's), `Connection: Upgrade`, `Upgrade: tcp`. Returns the connected descriptor once
  // the engine answered 101 or 200 (the caller owns it), and in `early` the stream bytes
  // that came with the answer. Throws DockerEngineError for an error answer,
  // Error(unavailable) when the engine cannot be reached.
  int hijack(std::string_view method, const std::string& path, const nlohmann::json* body, std::string& early);

  // POST /commit: the container's filesystem as image repo:tag; returns the image id.
  std::string commit(const std::string& container, const std::string& repo, const std::string& tag);
  // POST /images/{repo}/push?tag=: calls on_line with each progress line (one JSON object,
  // without its newline) as it comes. Throws DockerEngineError with the engine's message
  // when the push fails (an error status, or an {"error"} line in the stream).
  void push(const std::string& repo, const std::string& tag, const std::string& auth_header,
            const std::function<void(const std::string&)>& on_line);
  void remove_image(const std::string& name);  // best effort: the engine's answer is ignored

 private:
  std::string path(std::string_view p) const;
  http::Client client_;
  std::string prefix_;
};

// The engine's message in an error answer ({"message": …}), or the body.
std::string docker_error_message(const http::ClientResponse& r);

}  // namespace neurod::executor

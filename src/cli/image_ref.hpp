// The image commands' pure parts: image: URIs and local image names, the registry's
// host, Link pagination, the registry's error bodies, manifest sizes, the commands run
// through podman or docker, the podman/docker auth files and the docker credential
// helper protocol (docs/cli.md "Images").
#pragma once

#include "cli/output.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::cli {

// An image: URI as written: "image:NAME[:TAG]" (in the current project),
// "image:/PROJECT/NAME[:TAG]" or "image://CLUSTER/PROJECT/NAME[:TAG]"; "@sha256:…" may
// stand for ":TAG". NAME may hold '/'. The repository in the registry is PROJECT/NAME.
struct ImageUri {
  std::optional<std::string> cluster;
  bool relative = true;  // to the current project
  std::string project;   // empty while relative
  std::string name;
  std::string tag;     // empty when none was given
  std::string digest;  // "sha256:…" when given with '@'

  // Throws CliError(usage) with a clear message when text is not a valid image URI
  // (names follow the OCI distribution spec: lower-case letters, digits, '.', '_', '-').
  static ImageUri parse(std::string_view text);
  ImageUri resolved(const std::string& current_project) const;

  bool has_reference() const { return !tag.empty() || !digest.empty(); }
  std::string repository() const;  // "project/name"
  std::string reference() const;   // the digest, else the tag, else "latest"
  // "image:NAME[:TAG]" relative (or in current_project), "image:/PROJECT/NAME[:TAG]" otherwise.
  std::string display(std::string_view current_project = {}) const;
  // "image:/PROJECT/NAME[:TAG]" (resolved URIs), for JSON.
  std::string absolute() const;
};

bool is_image_uri(std::string_view text);  // starts with "image:"

// A local image name as podman and docker take it ("train:1", "localhost/train:1",
// "docker.io/library/ubuntu:24.04"): name is the path without the registry host (and
// without docker.io's "library/"), tag defaults to "latest".
struct LocalImage {
  std::string ref;  // as written
  std::string name;
  std::string tag;
  bool by_digest = false;  // "name@sha256:…": no tag to name the remote after
};
LocalImage parse_local_image(std::string_view text);  // CliError(usage) when malformed

// "HOST:PORT" of the server URL, where /v2/ is served ("HOST" for https on 443);
// IPv6 addresses in brackets.
std::string registry_host(std::string_view scheme, std::string_view host, std::string_view port);
// What a registry client calls the same registry: scheme, path and a trailing newline
// dropped, ":443" dropped ("https://h:5000/v2/\n" -> "h:5000").
std::string normalize_registry(std::string_view server_url);

// The next page's target from a Link header (`</v2/_catalog?last=a&n=2>; rel="next"`):
// path and query, also when the link is an absolute URL. nullopt without rel="next".
std::optional<std::string> next_link(std::string_view link_header);

// The error for a registry answer that is not 2xx: the spec's {"errors":[{"code",
// "message","detail"}]} as "MESSAGE: DETAIL (HTTP 404 Not Found, NAME_UNKNOWN, request id
// ID)", else what server_error makes of neurod's own error body. 401 and 403 exit 4.
CliError registry_error(int status, std::string_view body, std::string_view request_id = {});

// Manifest media types; kManifestAccept lists all four for Accept.
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
std::string manifest_accept();

// Whether a manifest is an index (OCI index or Docker manifest list), by its mediaType
// or the response's Content-Type, else by having "manifests".
bool is_index(const nlohmann::json& manifest, std::string_view content_type);
// An image manifest's size: its config's plus its layers' sizes. CliError(server) when
// the manifest lacks them.
std::uint64_t image_size(const nlohmann::json& manifest);
// An index entry's platform: "linux/amd64", "linux/arm64/v8", "unknown" when absent.
std::string platform_string(const nlohmann::json& descriptor);

// The engine that pushes and pulls: podman, or docker where podman is missing.
enum class Engine { podman, docker };
// "podman", "docker" or "" (auto) from --engine / NEURO_IMAGE_ENGINE; CliError(usage) otherwise.
std::optional<Engine> parse_engine(std::string_view text);
std::string engine_name(Engine e);

// The commands run for a push or a pull, in order. auth_dir holds config.json with the
// credentials (podman: --authfile DIR/config.json, docker: --config DIR), so that no
// secret is on a command line. tls_verify is false for a plain-HTTP server (podman's
// --tls-verify=false; docker decides by its daemon's insecure-registries).
using Argv = std::vector<std::string>;
std::vector<Argv> push_commands(Engine e, const std::string& local, const std::string& remote,
                                const std::string& auth_dir, bool tls_verify, bool quiet);
std::vector<Argv> pull_commands(Engine e, const std::string& remote, const std::string& local,
                                const std::string& auth_dir, bool tls_verify, bool quiet);

std::string base64_encode(std::string_view in);
// "Basic base64(user:password)".
std::string basic_auth(std::string_view user, std::string_view password);

// A docker config.json or containers auth.json with the registry set up, everything else
// kept: credHelpers[host] = helper (and no stored auths[host]), or, with a token,
// auths[host].auth = base64(user:token) (and no credHelpers[host]). CliError(usage) when
// the existing document is not a JSON object or its credHelpers/auths are not objects.
nlohmann::json with_registry_auth(nlohmann::json config, const std::string& host, const std::string& helper,
                                  const std::optional<std::pair<std::string, std::string>>& user_token);

// For a plain-HTTP server: a containers-registries.conf.d(5) drop-in that marks the registry
// insecure (so podman talks HTTP to it without --tls-verify=false), and its file name
// ("neuro-127.0.0.1_8080.conf").
std::string insecure_registry_conf(const std::string& host, const std::string& server_url);
std::string insecure_registry_file_name(const std::string& host);

// The docker credential helper protocol (github.com/docker/docker-credential-helpers):
// the action's stdin in, what to print on stdout and the exit code out.
struct HelperAnswer {
  int exit = 0;
  std::string out;
};
inline constexpr std::string_view kHelperNotFound = "credentials not found in native keychain";
// get: stdin is the server URL; answers {"ServerURL","Username","Secret"} for our registry
// when there is a token, "credentials not found…" (exit 1) otherwise.
// store/erase: neuro keeps its own token: accepted and ignored. list: {"HOST": user}.
// An unknown action exits 1 with a message.
HelperAnswer credential_helper(std::string_view action, std::string_view input, const std::string& registry,
                               const std::string& user, const std::string& token);

}  // namespace neurod::cli

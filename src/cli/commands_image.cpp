// neuro image push|pull|ls|tags|rm|size|digest, neuro config docker and the docker
// credential helper (docs/cli.md "Images"). The registry is neurod's own OCI
// Distribution API under /v2/ on the host:port of the server URL; neuro talks to it with
// HTTP Basic (the token as password), and pushes and pulls through the local podman (or
// docker), handing it the credentials in a private auth file, never on a command line.
#include "cli/commands.hpp"
#include "cli/image_ref.hpp"
#include "cli/table.hpp"
#include "core/units.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

extern char** environ;

namespace neurod::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string errno_text() { return std::strerror(errno); }

// --- the registry over HTTP ---------------------------------------------------------

class Registry {
 public:
  explicit Registry(Context& ctx) : ctx_(ctx) {
    const auto& s = ctx.settings();
    http::Url url;
    try {
      url = http::Url::parse(s.url);
    } catch (const Error& e) {
      throw CliError(Exit::usage, e.what());
    }
    if (url.scheme == "unix") throw CliError(Exit::usage, "the image commands need an http:// or https:// server URL");
    host_ = registry_host(url.scheme, url.host, url.port);
    tls_ = url.scheme == "https";
    token_ = s.token;
  }

  const std::string& host() const { return host_; }
  bool tls() const { return tls_; }
  const std::string& token() const { return token_; }

  // Needs a token: the registry answers nothing without one.
  const std::string& need_token() const {
    if (token_.empty())
      throw CliError(Exit::auth, "not logged in: log in with `neuro login`, or set a token with NEURO_TOKEN");
    return token_;
  }

  // The user name sent with the token (any name works; the principal's reads best in logs).
  std::string user() {
    if (user_.empty()) user_ = ctx_.me();
    return user_;
  }

  http::ClientResponse call(std::string_view method, const std::string& target,
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Authorization", basic_auth(user(), need_token()));
    return ctx_.call(method, target, {}, std::move(headers));
  }

  // A 2xx answer, else the registry's error.
  http::ClientResponse ok(std::string_view method, const std::string& target,
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto r = call(method, target, std::move(headers));
    if (r.status < 200 || r.status >= 300) throw registry_error(r.status, r.body, r.header("X-Request-Id").value_or(""));
    return r;
  }

  // Every page of a paginated list (Link: <…>; rel="next"), each page's array under key.
  std::vector<std::string> list_all(std::string target, const char* key) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    while (seen.insert(target).second) {
      auto r = ok("GET", target);
      auto j = r.json();
      if (!j.is_object()) throw CliError(Exit::server, "the registry's answer to GET " + target + " is not an object");
      if (j.contains(key) && j[key].is_array())
        for (const auto& v : j[key])
          if (v.is_string()) out.push_back(v.get<std::string>());
      auto link = r.header("Link");
      if (!link) break;
      auto next = next_link(*link);
      if (!next) break;
      target = *next;
    }
    return out;
  }

  struct Manifest {
    json body;
    std::string raw;
    std::string content_type;
    std::string digest;
  };

  Manifest manifest(const ImageUri& u, const std::string& reference) {
    auto r = fetch(u, "GET", reference);
    Manifest m;
    m.raw = std::move(r.body);
    m.content_type = r.header("Content-Type").value_or("");
    m.digest = r.header("Docker-Content-Digest").value_or("");
    if (m.digest.empty()) m.digest = sha256_digest(m.raw);
    m.body = json::parse(m.raw, nullptr, /*allow_exceptions=*/false);
    if (!m.body.is_object()) throw CliError(Exit::server, "the registry sent a manifest that is not a JSON object");
    return m;
  }

  // The digest of the manifest a tag names (HEAD; a digest is its own).
  std::string digest(const ImageUri& u) {
    if (!u.digest.empty()) return u.digest;
    auto r = fetch(u, "HEAD", u.reference());
    if (auto d = r.header("Docker-Content-Digest"); d && !d->empty()) return *d;
    return manifest(u, u.reference()).digest;  // a registry that leaves the header out
  }

  static std::string sha256_digest(std::string_view data) {
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    std::string hex = "sha256:";
    for (unsigned char c : out) hex += fmt::format("{:02x}", c);
    return hex;
  }

 private:
  http::ClientResponse fetch(const ImageUri& u, std::string_view method, const std::string& reference) {
    auto target = "/v2/" + u.repository() + "/manifests/" + reference;
    auto r = call(method, target, {{"Accept", manifest_accept()}});
    if (r.status == 404 && r.body.empty()) {
      auto id = r.header("X-Request-Id");
      throw CliError(Exit::server, fmt::format("{} not found (HTTP 404 Not Found{})", u.display(current_),
                                               id ? ", request id " + *id : ""));
    }
    if (r.status < 200 || r.status >= 300) throw registry_error(r.status, r.body, r.header("X-Request-Id").value_or(""));
    return r;
  }

  Context& ctx_;
  std::string host_;
  bool tls_ = false;
  std::string token_;
  std::string user_;

 public:
  std::string current_;  // for messages: the current project
};

// Parses and resolves an image: URI: relative ones under the caller's own project, and
// image://CLUSTER/… only for this server's cluster.
ImageUri resolve(Context& ctx, std::string_view text) {
  auto u = ImageUri::parse(text);
  if (u.cluster) ctx.require_this_cluster(text, *u.cluster);
  if (u.relative) u.project = ctx.me();
  return u;
}

// --- podman and docker ---------------------------------------------------------------

bool on_path(const std::string& name, const EnvLookup& env) {
  auto path = env("PATH").value_or("/usr/local/bin:/usr/bin:/bin");
  std::size_t pos = 0;
  while (pos <= path.size()) {
    auto colon = path.find(':', pos);
    auto dir = path.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    if (dir.empty()) dir = ".";
    auto file = dir + "/" + name;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(file.c_str(), X_OK) == 0) return true;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return false;
}

Engine pick_engine(const std::string& flag, const EnvLookup& env) {
  auto chosen = parse_engine(!flag.empty() ? flag : env("NEURO_IMAGE_ENGINE").value_or(""));
  if (chosen) {
    if (!on_path(engine_name(*chosen), env))
      throw CliError(Exit::usage, fmt::format("{} is not installed (not found on PATH)", engine_name(*chosen)));
    return *chosen;
  }
  if (on_path("podman", env)) return Engine::podman;
  if (on_path("docker", env)) return Engine::docker;
  throw CliError(Exit::usage,
                 "neither podman nor docker is installed: neuro pushes and pulls images with one of them "
                 "(Debian/Ubuntu: apt-get install podman)");
}

// Runs a command with its output on our stderr (stdout stays ours: -o json), and returns
// its exit code (128 + the signal when it was killed). Ctrl-C reaches the child; neuro
// waits for it and cleans up.
int run_tool(const Argv& argv, bool verbose) {
  if (verbose) {
    std::string line = "$";
    for (const auto& a : argv) line += " " + a;
    std::cerr << line << std::endl;
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  std::cout.flush();
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw CliError(Exit::failure, fmt::format("cannot run {}: {}", argv[0], std::strerror(rc)));
  struct sigaction ignore {}, old_int {}, old_term {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &ignore, &old_term);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// A private directory (0700) with config.json (0600) holding the registry's credentials,
// for podman --authfile and docker --config; removed when done.
class AuthDir {
 public:
  AuthDir(const EnvLookup& env, const std::string& host, const std::string& user, const std::string& token) {
    std::string base = env("XDG_RUNTIME_DIR").value_or("");
    std::error_code ec;
    if (base.empty() || !fs::is_directory(base, ec) || ::access(base.c_str(), W_OK) != 0)
      base = fs::temp_directory_path(ec).string();
    if (base.empty()) base = "/tmp";
    std::string tmpl = base + "/neuro-auth-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw CliError(Exit::failure, fmt::format("cannot create a private directory in {}: {}", base, errno_text()));
    dir_ = tmpl;
    auto file = dir_ + "/config.json";
    auto content = with_registry_auth(json::object(), host, "", std::make_pair(user, token)).dump();
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw CliError(Exit::failure, fmt::format("cannot write {}: {}", file, errno_text()));
    bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    if (!ok) throw CliError(Exit::failure, fmt::format("cannot write {}: {}", file, errno_text()));
  }
  ~AuthDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  AuthDir(const AuthDir&) = delete;
  AuthDir& operator=(const AuthDir&) = delete;
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

void run_all(const std::vector<Argv>& commands, bool verbose) {
  for (const auto& argv : commands) {
    int rc = run_tool(argv, verbose);
    if (rc != 0) {
      std::string what = argv[0];
      for (std::size_t i = 1; i < argv.size() && i < 4; ++i)
        if (!argv[i].starts_with("-") && argv[i] != "--config" && argv[i - 1] != "--config") {
          what += " " + argv[i];
          break;
        }
      throw CliError(Exit::failure, fmt::format("{} failed (exit code {})", what, rc));
    }
  }
}

std::string remote_ref(const Registry& r, const ImageUri& u) {
  return r.host() + "/" + u.repository() + (u.digest.empty() ? ":" + u.reference() : "@" + u.digest);
}

// --- commands ------------------------------------------------------------------------

struct TransferArgs {
  std::string first, second, engine;
  bool quiet = false;
};

int run_push(Context& ctx, const TransferArgs& a) {
  auto local = parse_local_image(a.first);
  std::string remote_text = a.second;
  if (remote_text.empty()) {
    if (local.by_digest)
      throw CliError(Exit::usage, fmt::format("name the remote image for {}: neuro image push {} image:NAME:TAG",
                                              a.first, a.first));
    remote_text = "image:" + local.name + ":" + local.tag;
  }
  auto remote = resolve(ctx, remote_text);
  if (!remote.digest.empty()) throw CliError(Exit::usage, "push to a tag, not a digest: image:NAME:TAG");
  if (remote.tag.empty()) remote.tag = local.tag;
  auto engine = pick_engine(a.engine, ctx.env());
  Registry r(ctx);
  r.current_ = ctx.me();
  AuthDir auth(ctx.env(), r.host(), r.user(), r.need_token());
  auto ref = remote_ref(r, remote);
  run_all(push_commands(engine, local.ref, ref, auth.path(), r.tls(), a.quiet), ctx.options.verbose);
  std::string digest;
  try {
    digest = r.digest(remote);
  } catch (const std::exception&) {
  }
  if (ctx.json_output()) {
    print_json({{"local", local.ref},
                {"uri", remote.absolute()},
                {"remote", ref},
                {"digest", digest.empty() ? json(nullptr) : json(digest)}});
  } else {
    std::cout << "Pushed " << local.ref << " to " << remote.display(r.current_) << " (" << ref
              << (digest.empty() ? "" : ", " + digest) << ")." << std::endl;
  }
  return code(Exit::ok);
}

int run_pull(Context& ctx, const TransferArgs& a) {
  if (!is_image_uri(a.first))
    throw CliError(Exit::usage, fmt::format("\"{}\" is not an image URI: write image:NAME[:TAG] or image:/PROJECT/NAME[:TAG]",
                                            a.first));
  auto remote = resolve(ctx, a.first);
  std::string local = a.second;
  if (local.empty()) local = remote.name + ":" + (remote.tag.empty() ? "latest" : remote.tag);
  parse_local_image(local);  // a clear message for a bad name
  auto engine = pick_engine(a.engine, ctx.env());
  Registry r(ctx);
  r.current_ = ctx.me();
  auto ref = remote_ref(r, remote);
  {
    AuthDir auth(ctx.env(), r.host(), r.user(), r.need_token());
    run_all(pull_commands(engine, ref, local, auth.path(), r.tls(), a.quiet), ctx.options.verbose);
  }
  if (ctx.json_output())
    print_json({{"uri", remote.absolute()}, {"remote", ref}, {"local", local}});
  else
    std::cout << "Pulled " << remote.display(r.current_) << " to " << local << "." << std::endl;
  return code(Exit::ok);
}

struct LsArgs {
  bool long_format = false;
  std::string project;
  std::string name_regex;
};

int run_ls(Context& ctx, const LsArgs& a) {
  Registry r(ctx);
  r.current_ = ctx.me();
  std::optional<std::regex> filter;
  if (!a.name_regex.empty()) {
    try {
      filter.emplace(a.name_regex, std::regex::extended);
    } catch (const std::regex_error& e) {
      throw CliError(Exit::usage, fmt::format("-n: \"{}\" is not a regular expression: {}", a.name_regex, e.what()));
    }
  }
  auto repos = r.list_all("/v2/_catalog?n=1000", "repositories");
  json out = json::array();
  Table t({{"IMAGE"}, {"TAGS"}});
  for (const auto& repo : repos) {
    auto slash = repo.find('/');
    if (slash == std::string::npos) continue;  // not PROJECT/NAME: not neurod's
    ImageUri u;
    u.relative = false;
    u.project = repo.substr(0, slash);
    u.name = repo.substr(slash + 1);
    if (!a.project.empty() && u.project != a.project) continue;
    if (filter && !std::regex_search(u.name, *filter)) continue;
    json item{{"uri", u.absolute()}, {"repository", repo}, {"project", u.project}, {"name", u.name}};
    std::vector<std::string> tags;
    if (a.long_format) {
      tags = r.list_all("/v2/" + repo + "/tags/list?n=1000", "tags");
      item["tags"] = tags;
    }
    if (ctx.json_output()) {
      out.push_back(std::move(item));
    } else if (a.long_format) {
      std::string joined;
      for (const auto& tg : tags) joined += (joined.empty() ? "" : ", ") + tg;
      t.add_row({u.display(r.current_), joined});
    } else {
      std::cout << u.display(r.current_) << "\n";
    }
  }
  if (ctx.json_output())
    print_json(out);
  else if (a.long_format)
    std::cout << t.render(false) << std::flush;
  else
    std::cout << std::flush;
  return code(Exit::ok);
}

int run_tags(Context& ctx, const std::string& text) {
  auto u = resolve(ctx, text);
  if (u.has_reference())
    throw CliError(Exit::usage, fmt::format("{}: give the image without a tag (image:NAME)", text));
  Registry r(ctx);
  r.current_ = ctx.me();
  auto tags = r.list_all("/v2/" + u.repository() + "/tags/list?n=1000", "tags");
  if (ctx.json_output()) {
    print_json({{"uri", u.absolute()}, {"repository", u.repository()}, {"tags", tags}});
  } else {
    for (const auto& tg : tags) std::cout << tg << "\n";
    std::cout << std::flush;
  }
  return code(Exit::ok);
}

int run_rm(Context& ctx, const std::vector<std::string>& images) {
  Registry r(ctx);
  r.current_ = ctx.me();
  json out = json::array();
  std::optional<Exit> first_failure;
  for (const auto& text : images) {
    try {
      auto u = resolve(ctx, text);
      if (!u.has_reference())
        throw CliError(Exit::usage, fmt::format("{}: give a tag or a digest (image:NAME:TAG)", text));
      auto digest = r.digest(u);
      r.ok("DELETE", "/v2/" + u.repository() + "/manifests/" + digest);
      if (ctx.json_output())
        out.push_back({{"uri", u.absolute()}, {"digest", digest}, {"deleted", true}});
      else
        std::cout << "Deleted " << u.display(r.current_) << " (" << digest << ")." << std::endl;
    } catch (const CliError& e) {
      std::cerr << "neuro: cannot delete " << text << ": " << e.what() << std::endl;
      if (!first_failure) first_failure = e.exit();
      if (ctx.json_output()) out.push_back({{"uri", text}, {"deleted", false}, {"error", e.what()}});
    }
  }
  if (ctx.json_output()) print_json(out);
  return code(first_failure.value_or(Exit::ok));
}

int run_size(Context& ctx, const std::string& text) {
  auto u = resolve(ctx, text);
  Registry r(ctx);
  r.current_ = ctx.me();
  auto m = r.manifest(u, u.reference());
  json result{{"uri", u.absolute()}, {"digest", m.digest}};
  if (!is_index(m.body, m.content_type)) {
    auto size = image_size(m.body);
    result["size"] = size;
    if (ctx.json_output())
      print_json(result);
    else
      std::cout << format_size_human(size) << std::endl;
    return code(Exit::ok);
  }
  json platforms = json::array();
  Table t({{"PLATFORM"}, {"SIZE", Align::right}, {"DIGEST"}});
  if (m.body.contains("manifests") && m.body["manifests"].is_array()) {
    for (const auto& d : m.body["manifests"]) {
      auto digest = d.is_object() && d.contains("digest") && d["digest"].is_string() ? d["digest"].get<std::string>() : "";
      if (digest.empty()) continue;
      auto child = r.manifest(u, digest);
      std::uint64_t size = is_index(child.body, child.content_type) ? 0 : image_size(child.body);
      auto platform = platform_string(d);
      platforms.push_back({{"platform", platform}, {"digest", digest}, {"size", size}});
      t.add_row({platform, format_size_human(size), digest});
    }
  }
  result["platforms"] = platforms;
  if (ctx.json_output())
    print_json(result);
  else
    std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_digest(Context& ctx, const std::string& text) {
  auto u = resolve(ctx, text);
  Registry r(ctx);
  r.current_ = ctx.me();
  auto digest = r.digest(u);
  if (ctx.json_output())
    print_json({{"uri", u.absolute()}, {"digest", digest}});
  else
    std::cout << digest << std::endl;
  return code(Exit::ok);
}

// --- neuro config docker ---------------------------------------------------------------

std::string home_dir(const EnvLookup& env) {
  if (auto h = env("HOME")) return *h;
  if (auto* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  throw CliError(Exit::usage, "HOME is not set");
}

fs::path docker_config_file(const EnvLookup& env) {
  if (auto d = env("DOCKER_CONFIG")) return fs::path(*d) / "config.json";
  return fs::path(home_dir(env)) / ".docker" / "config.json";
}

fs::path containers_auth_file(const EnvLookup& env) {
  if (auto f = env("REGISTRY_AUTH_FILE")) return *f;
  if (auto d = env("XDG_RUNTIME_DIR")) return fs::path(*d) / "containers" / "auth.json";
  if (auto d = env("XDG_CONFIG_HOME")) return fs::path(*d) / "containers" / "auth.json";
  return fs::path(home_dir(env)) / ".config" / "containers" / "auth.json";
}

json read_json_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError(Exit::failure, fmt::format("cannot read {}: {}", path.string(), errno_text()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw CliError(Exit::usage, fmt::format("{} is not valid JSON; fix or remove it and run this again", path.string()));
  return j;
}

// Atomically (temporary file + rename), mode 0600; missing directories are made 0700.
void write_private_file(const fs::path& path, const std::string& content) {
  auto dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw CliError(Exit::failure, fmt::format("cannot create {}: {}", dir.string(), errno_text()));
  }
  std::string tmpl = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw CliError(Exit::failure, fmt::format("cannot write {}: {}", path.string(), errno_text()));
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmpl.c_str(), path.c_str()) != 0) {
    auto why = errno_text();
    ::unlink(tmpl.c_str());
    throw CliError(Exit::failure, fmt::format("cannot write {}: {}", path.string(), why));
  }
}

constexpr std::string_view kHelperName = "docker-credential-neuro";

int run_config_docker(Context& ctx, bool no_helper) {
  Registry r(ctx);
  std::optional<std::pair<std::string, std::string>> creds;
  if (no_helper) creds = std::make_pair(r.user(), r.need_token());
  std::vector<fs::path> files{docker_config_file(ctx.env()), containers_auth_file(ctx.env())};
  // Read and check both before writing either.
  std::vector<json> updated;
  for (const auto& f : files) {
    try {
      updated.push_back(with_registry_auth(read_json_file(f), r.host(), "neuro", creds));
    } catch (const CliError& e) {
      if (e.exit() != Exit::usage || std::string_view(e.what()).find(f.string()) != std::string_view::npos) throw;
      throw CliError(Exit::usage, fmt::format("{}: {}; fix it and run this again", f.string(), e.what()));
    }
  }
  for (std::size_t i = 0; i < files.size(); ++i) write_private_file(files[i], updated[i].dump(2) + "\n");
  // A plain-HTTP server: podman would insist on TLS for every push and pull without
  // --tls-verify=false; a registries.conf drop-in of its own marks just this registry.
  std::optional<fs::path> insecure_file;
  if (!r.tls()) {
    insecure_file = fs::path(home_dir(ctx.env())) / ".config" / "containers" / "registries.conf.d" /
                    insecure_registry_file_name(r.host());
    write_private_file(*insecure_file, insecure_registry_conf(r.host(), ctx.settings().url));
  }
  bool helper_found = on_path(std::string(kHelperName), ctx.env());
  if (ctx.json_output()) {
    json j{{"registry", r.host()}, {"helper", !no_helper}, {"files", json::array()}};
    for (const auto& f : files) j["files"].push_back(f.string());
    if (!no_helper) j["helper_on_path"] = helper_found;
    j["insecure_registry_file"] = insecure_file ? json(insecure_file->string()) : json(nullptr);
    print_json(j);
  } else {
    if (no_helper)
      std::cout << "Stored your token for " << r.host() << " in:\n";
    else
      std::cout << "podman and docker now ask " << kHelperName << " for " << r.host() << " (credHelpers) in:\n";
    for (const auto& f : files) std::cout << "  " << f.string() << "\n";
    if (insecure_file)
      std::cout << "podman treats " << r.host() << " as a plain-HTTP registry (" << insecure_file->string() << ").\n";
    std::cout << "Push and pull as " << r.host() << "/PROJECT/NAME:TAG, e.g. podman push localhost/train:1 "
              << r.host() << "/" << (no_helper ? creds->first : std::string("PROJECT")) << "/train:1" << std::endl;
  }
  if (!no_helper && !helper_found)
    std::cerr << "neuro: note: " << kHelperName << " is not on PATH; podman and docker run it to get the token.\n"
              << "  Make it a link to neuro: ln -s \"$(command -v neuro)\" ~/.local/bin/" << kHelperName
              << " (a directory on PATH),\n  or use `neuro config docker --no-helper` to store the token itself."
              << std::endl;
  if (no_helper)
    std::cerr << "neuro: note: the stored token stops working when it expires or you log out; run this again then."
              << std::endl;
  if (!r.tls())
    std::cerr << "neuro: note: docker allows a plain-HTTP registry on 127.0.0.0/8, or when its daemon lists "
              << r.host() << " in insecure-registries (/etc/docker/daemon.json)." << std::endl;
  return code(Exit::ok);
}

// --- the credential helper -----------------------------------------------------------

// `docker-credential-neuro ACTION` (or `neuro docker-credential ACTION`): answers on stdout
// as the protocol wants, errors included.
int run_credential_helper(Context& ctx, const std::string& action) {
  try {
    std::string input;
    if (action == "get" || action == "store" || action == "erase")
      input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (action != "get" && action != "list") {
      auto a = credential_helper(action, input, "", "", "");
      std::cout << a.out << std::flush;
      if (action == "store")
        std::cerr << "neuro: the credential helper keeps nothing: it always answers with neuro's current token" << std::endl;
      return a.exit;
    }
    ctx.options.timeout = "10s";
    Registry r(ctx);
    std::string user = "neuro";
    if (!r.token().empty()) {
      try {
        user = r.user();
      } catch (const std::exception&) {
        // The registry will say what is wrong with the token.
      }
    }
    auto a = credential_helper(action, input, r.host(), user, r.token());
    std::cout << a.out << std::flush;
    return a.exit;
  } catch (const std::exception& e) {
    std::cout << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

void register_image_commands(CLI::App& app, Context& ctx) {
  auto* image = app.add_subcommand("image", "Push, pull, list and delete images in the server's registry");
  image->require_subcommand(1);
  image->footer(
      "IMAGE is image:NAME[:TAG] (your project), image:/PROJECT/NAME[:TAG] or image://CLUSTER/PROJECT/NAME[:TAG];\n"
      "the registry is HOST:PORT of the server URL, and the repository is PROJECT/NAME.");

  // push, pull and ls are also at the top level, as in the reference CLI: neuro push|pull|images.
  static constexpr const char* kEngineHelp = "podman or docker (default: NEURO_IMAGE_ENGINE, else podman, else docker)";
  auto add_push = [&ctx](CLI::App* parent, const std::string& name) {
    auto* push = parent->add_subcommand(name, "Push a local image (podman or docker) to the registry");
    auto p = std::make_shared<TransferArgs>();
    push->add_option("LOCAL", p->first, "The local image, e.g. train:1 (= localhost/train:1)")->required();
    push->add_option("REMOTE", p->second, "Where to (default: image:NAME:TAG after the local one)");
    push->add_option("--engine", p->engine, kEngineHelp)->type_name("ENGINE");
    push->add_flag("-q,--quiet", p->quiet, "No progress output");
    on_run(push, ctx, [&ctx, p] { return run_push(ctx, *p); });
  };
  auto add_pull = [&ctx](CLI::App* parent, const std::string& name) {
    auto* pull = parent->add_subcommand(name, "Pull an image from the registry into podman or docker");
    auto q = std::make_shared<TransferArgs>();
    pull->add_option("REMOTE", q->first, "The image, e.g. image:train:1")->required();
    pull->add_option("LOCAL", q->second, "The local name (default: NAME:TAG)");
    pull->add_option("--engine", q->engine, kEngineHelp)->type_name("ENGINE");
    pull->add_flag("-q,--quiet", q->quiet, "No progress output");
    on_run(pull, ctx, [&ctx, q] { return run_pull(ctx, *q); });
  };
  auto add_ls = [&ctx](CLI::App* parent, const std::string& name) {
    auto* ls = parent->add_subcommand(name, "List the images you may read");
    auto l = std::make_shared<LsArgs>();
    ls->add_flag("-l", l->long_format, "With their tags");
    ls->add_option("-p,--project", l->project, "Only this project's")->type_name("PROJECT");
    ls->add_option("-n,--name", l->name_regex, "Only names matching this regular expression")->type_name("REGEX");
    on_run(ls, ctx, [&ctx, l] { return run_ls(ctx, *l); });
  };
  add_push(image, "push");
  add_pull(image, "pull");
  add_ls(image, "ls");
  add_push(&app, "push");
  add_pull(&app, "pull");
  add_ls(&app, "images");

  auto* tags = image->add_subcommand("tags", "List an image's tags");
  auto t = std::make_shared<std::string>();
  tags->add_option("IMAGE", *t, "image:NAME")->required();
  on_run(tags, ctx, [&ctx, t] { return run_tags(ctx, *t); });

  auto* rm = image->add_subcommand("rm", "Delete images (the manifest a tag names, with every tag on it)");
  auto rms = std::make_shared<std::vector<std::string>>();
  rm->add_option("IMAGE", *rms, "image:NAME:TAG or image:NAME@sha256:…")->required();
  on_run(rm, ctx, [&ctx, rms] { return run_rm(ctx, *rms); });

  auto* size = image->add_subcommand("size", "Show an image's size (layers and config; per platform for an index)");
  auto s = std::make_shared<std::string>();
  size->add_option("IMAGE", *s, "image:NAME[:TAG]")->required();
  on_run(size, ctx, [&ctx, s] { return run_size(ctx, *s); });

  auto* digest = image->add_subcommand("digest", "Print the digest of an image's manifest");
  auto d = std::make_shared<std::string>();
  digest->add_option("IMAGE", *d, "image:NAME[:TAG]")->required();
  on_run(digest, ctx, [&ctx, d] { return run_digest(ctx, *d); });

  // neuro config docker (the config group is registered before this one).
  if (auto* config = app.get_subcommand("config")) {
    auto* docker = config->add_subcommand("docker", "Set up podman and docker credentials for the server's registry");
    auto no_helper = std::make_shared<bool>(false);
    docker->add_flag("--no-helper", *no_helper,
                     "Store the token in the auth files instead of using the docker-credential-neuro helper");
    on_run(docker, ctx, [&ctx, no_helper] { return run_config_docker(ctx, *no_helper); });
  }

  auto* helper = app.add_subcommand("docker-credential",
                                    "The docker credential helper (what docker-credential-neuro runs)");
  auto action = std::make_shared<std::string>();
  helper->add_option("ACTION", *action, "get, store, erase or list")->required();
  on_run(helper, ctx, [&ctx, action] { return run_credential_helper(ctx, *action); });
}

}  // namespace neurod::cli

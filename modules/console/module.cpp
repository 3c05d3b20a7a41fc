#include "modules/console/module.hpp"

#include "core/errors.hpp"
#include "modules/console/assets.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

namespace neurod::console {

using http::Request;
using http::Response;

void Config::describe(config::Schema<Config>& s) {
  s.field("directory", &Config::directory,
          "Serve the console from this directory (web/dist after `npm run build` in web/) instead of the copy "
          "embedded in the binary; files are read on every request, for working on the console");
  s.field("content_security_policy", &Config::content_security_policy,
          "The Content-Security-Policy header of every console page");
}

namespace {

constexpr std::string_view kIndex = "/index.html";

std::string_view content_type_of(std::string_view path) {
  static const std::unordered_map<std::string_view, std::string_view> types{
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".ico", "image/x-icon"},
      {".json", "application/json"},         {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},              {".map", "application/json"}};
  auto dot = path.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  auto it = types.find(path.substr(dot));
  return it == types.end() ? std::string_view("application/octet-stream") : it->second;
}

bool accepts_gzip(const Request& req) {
  auto ae = req.header("Accept-Encoding");
  if (!ae) return false;
  // "gzip;q=0" refuses it; anything else naming gzip accepts it.
  auto pos = ae->find("gzip");
  if (pos == std::string_view::npos) return false;
  auto rest = ae->substr(pos + 4);
  auto comma = rest.find(',');
  auto params = rest.substr(0, comma);
  return params.find("q=0") == std::string_view::npos || params.find("q=0.") != std::string_view::npos;
}

bool etag_matches(const Request& req, std::string_view etag) {
  auto inm = req.header("If-None-Match");
  return inm && (inm->find(etag) != std::string_view::npos || *inm == "*");
}

}  // namespace

// Where the files come from: the embedded build, or a directory for development.
class Files {
 public:
  struct Found {
    std::string content_type;
    std::string etag;
    std::string body;     // the bytes to send (the gzip copy when `gzip`)
    bool gzip = false;
    bool immutable = false;
  };
  virtual ~Files() = default;
  // nullopt when there is no such file.
  virtual std::optional<Found> get(std::string_view path, bool gzip_ok) const = 0;
  virtual std::string describe() const = 0;
};

namespace {

class EmbeddedFiles final : public Files {
 public:
  EmbeddedFiles() : assets_(embedded_assets()) {
    for (std::size_t i = 0; i < assets_.count; ++i) index_.emplace(assets_.assets[i].path, &assets_.assets[i]);
  }
  std::optional<Found> get(std::string_view path, bool gzip_ok) const override {
    auto it = index_.find(path);
    if (it == index_.end()) return std::nullopt;
    const Asset& a = *it->second;
    Found f{a.content_type, a.etag, {}, false, a.immutable};
    const char* blob = reinterpret_cast<const char*>(assets_.blob);
    if (gzip_ok && a.gz_size > 0) {
      f.body.assign(blob + a.gz_offset, a.gz_size);
      f.gzip = true;
    } else {
      f.body.assign(blob + a.offset, a.size);
    }
    return f;
  }
  std::string describe() const override { return std::to_string(assets_.count) + " files embedded in the binary"; }
  bool empty() const { return assets_.count == 0; }

 private:
  EmbeddedAssets assets_;
  std::unordered_map<std::string_view, const Asset*> index_;
};

class DirectoryFiles final : public Files {
 public:
  explicit DirectoryFiles(std::filesystem::path root) : root_(std::filesystem::weakly_canonical(std::move(root))) {}
  std::optional<Found> get(std::string_view path, bool) const override {
    // The router hands over a decoded path; refuse anything that could climb out.
    if (path.find("..") != std::string_view::npos || path.find('\0') != std::string_view::npos) return std::nullopt;
    auto file = std::filesystem::weakly_canonical(root_ / std::filesystem::path(path).relative_path());
    auto rel = file.lexically_relative(root_);
    if (rel.empty() || *rel.begin() == "..") return std::nullopt;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return std::nullopt;
    }
    Found f{std::string(content_type_of(path)),
            "\"" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) + "." +
                std::to_string(st.st_mtim.tv_nsec) + "\"",
            {}, false, std::string_view(path).starts_with("/assets/")};
    f.body.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < f.body.size()) {
      auto n = ::read(fd, f.body.data() + got, f.body.size() - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    f.body.resize(got);
    return f;
  }
  std::string describe() const override { return "files from " + root_.string(); }

 private:
  std::filesystem::path root_;
};

}  // namespace

Module::Module(const Config& config, app::ModuleContext& ctx) : config_(config) {
  if (!config_.directory.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(std::filesystem::path(config_.directory) / "index.html", ec))
      throw Error(errc::bad_request, "modules.console.directory: " + config_.directory +
                                         "/index.html does not exist: build the console first (cd web && npm run build)");
    files_ = std::make_unique<DirectoryFiles>(config_.directory);
  } else {
    auto embedded = std::make_unique<EmbeddedFiles>();
    if (embedded->empty())
      spdlog::warn("console: neurod was built without the web console (-DNEUROD_CONSOLE=OFF); set "
                   "modules.console.directory to serve one, or disable the module");
    files_ = std::move(embedded);
  }
  spdlog::info("console: serving {}", files_->describe());

  // Public: the login page has to load before anybody is logged in. The files hold no
  // data; everything the pages show comes from the API, which checks who asks.
  http::RouteOptions opts{.public_route = true, .body = http::BodyKind::none, .exec = http::Exec::io,
                          .summary = "The web console: its files, and index.html for every other page path"};
  if (!config_.directory.empty()) opts.exec = http::Exec::pool;  // reads the disk
  ctx.router().set_fallback([this](Request& req) { return serve(req); }, opts);
}

Module::~Module() = default;

app::Health Module::health() {
  app::Health h;
  h.details = {{"source", files_->describe()}};
  return h;
}

Response Module::serve(const Request& req) const {
  const std::string path = "/" + req.param("path");
  // Paths the API owns keep their JSON 404: a mistyped API call must not get a web page.
  if (path.starts_with("/api/") || path == "/api" || path.starts_with("/v2/") || path == "/metrics")
    throw Error(errc::not_found, "no route for " + std::string(http::to_string(req.method)) + " " + path)
        .with_code("route_not_found");

  bool gzip_ok = accepts_gzip(req);
  std::optional<Files::Found> f;
  if (path != "/" && path != kIndex) f = files_->get(path, gzip_ok);
  if (!f) {
    // A missing script or image is a 404, not the index page (which would fail to parse
    // as JavaScript and hide the real problem). Any other path is a page of the app.
    auto last = path.substr(path.rfind('/') + 1);
    if (path.starts_with("/assets/") || last.find('.') != std::string::npos) {
      auto r = Response::text("not found: " + path + "\n", 404);
      r.headers.set("Cache-Control", "no-cache");
      return r;
    }
    f = files_->get(kIndex, gzip_ok);
    if (!f) {
      return Response::text(
          "The web console is not part of this build of neurod (configured with -DNEUROD_CONSOLE=OFF).\n"
          "Build it with the console, or set modules.console.directory to a built web/dist.\n",
          404);
    }
  }

  Response r;
  r.headers.set("ETag", f->etag);
  r.headers.set("Cache-Control", f->immutable ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.set("Vary", "Accept-Encoding");
  r.headers.set("X-Content-Type-Options", "nosniff");
  if (f->content_type.starts_with("text/html")) {
    r.headers.set("Content-Security-Policy", config_.content_security_policy);
    r.headers.set("X-Frame-Options", "DENY");
    r.headers.set("Referrer-Policy", "same-origin");
    r.headers.set("Cross-Origin-Opener-Policy", "same-origin");
  }
  if (etag_matches(req, f->etag)) {
    r.status = 304;
    return r;
  }
  r.headers.set("Content-Type", f->content_type);
  if (f->gzip) r.headers.set("Content-Encoding", "gzip");
  r.body = std::move(f->body);
  return r;
}

}  // namespace neurod::console

// The /v2/ routes (README.md here). One catch-all route per method: repository names hold
// slashes, so the path is parsed here (oci.hpp parse_target) rather than by the router.
#include "core/errors.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "modules/auth/module.hpp"
#include "modules/registry/module.hpp"
#include "modules/registry/repo.hpp"
#include "modules/storage/accounting.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <set>

namespace neurod::registry {

namespace {

using nlohmann::json;
using http::Request;
using http::Response;

constexpr std::string_view kApiVersion = "registry/2.0";
constexpr std::size_t kMaxPage = 1000;

std::string project_of(const std::string& name) { return name.substr(0, name.find('/')); }

Target target_of(const Request& req) {
  std::string_view path = req.path;
  if (!path.starts_with("/v2/")) return {};
  return parse_target(path.substr(4));
}

void check_name(const std::string& name) {
  if (!valid_name(name))
    throw oci_error(errc::bad_request, "NAME_INVALID",
                    "invalid repository name '" + name +
                        "': PROJECT/NAME in lowercase letters, digits and single separators (. _ __ -), no '..'",
                    {{"name", name}});
}

void check_digest(const std::string& d) {
  if (valid_digest(d)) return;
  if (digest_shaped(d) && !d.starts_with("sha256:"))
    throw oci_error(errc::bad_request, "UNSUPPORTED", "only sha256 digests are supported, not " + d);
  throw oci_error(errc::bad_request, "DIGEST_INVALID", "invalid digest '" + d + "'", {{"digest", d}});
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string range_header(std::uint64_t size) { return "0-" + std::to_string(size ? size - 1 : 0); }

std::string upload_location(const std::string& name, const std::string& id) {
  return "/v2/" + name + "/blobs/uploads/" + id;
}

Response empty(int status) {
  Response r;
  r.status = status;
  return r;
}

std::string rfc3339(std::int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// n and last of a paginated list; n absent: everything (up to kMaxPage).
struct Page {
  std::size_t n = kMaxPage;
  bool given = false;
  std::string last;
};
Page page_of(const Request& req) {
  Page p;
  if (auto n = req.query_param("n")) {
    std::uint64_t v = 0;
    if (!parse_u64(*n, v))
      throw oci_error(errc::bad_request, "UNSUPPORTED", "n must be a non-negative integer, not '" + *n + "'");
    p.n = static_cast<std::size_t>(std::min<std::uint64_t>(v, kMaxPage));
    p.given = true;
  }
  p.last = req.query_param("last").value_or("");
  return p;
}

// Selects a page of a sorted list; sets Link when more follow.
std::vector<std::string> paginate(const std::vector<std::string>& all, const Page& p, const std::string& base,
                                  Response& r) {
  auto it = p.last.empty() ? all.begin() : std::upper_bound(all.begin(), all.end(), p.last);
  std::vector<std::string> out;
  for (; it != all.end() && out.size() < p.n; ++it) out.push_back(*it);
  if (it != all.end() && !out.empty())
    r.headers.set("Link", "<" + base + "?n=" + std::to_string(p.n) + "&last=" + out.back() + ">; rel=\"next\"");
  return out;
}

// A descriptor's digest, validated.
std::string descriptor_digest(const json& d, const std::string& where) {
  if (!d.is_object() || !d.contains("digest") || !d["digest"].is_string())
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", where + " is not a descriptor with a digest");
  auto digest = d["digest"].get<std::string>();
  if (!valid_digest(digest))
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", where + " has an invalid digest '" + digest + "'");
  if (d.contains("size") && !d["size"].is_number_integer())
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", where + " has a size that is not an integer");
  return digest;
}

bool foreign_layer(const json& d) {
  auto t = d.value("mediaType", std::string());
  return t.find("foreign") != std::string::npos || t.find("nondistributable") != std::string::npos;
}

// Scope "repository:NAME:pull,push" → its parts.
struct Scope {
  std::string type, name;
  std::set<std::string> actions;
};
std::optional<Scope> parse_scope(std::string_view s) {
  auto first = s.find(':');
  auto last = s.rfind(':');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  Scope out;
  out.type = std::string(s.substr(0, first));
  out.name = std::string(s.substr(first + 1, last - first - 1));
  auto acts = s.substr(last + 1);
  while (!acts.empty()) {
    auto c = acts.find(',');
    auto a = acts.substr(0, c);
    if (!a.empty()) out.actions.insert(std::string(a));
    acts = c == std::string_view::npos ? std::string_view{} : acts.substr(c + 1);
  }
  return out;
}

// Whether the principal's token grants `action` ("pull", "push", "delete") on repository
// `name`: always for a full token, else when one of its scopes names it.
bool scopes_allow(const http::Principal& who, const std::string& name, const std::string& action) {
  if (!who.scopes) return true;
  for (const auto& s : *who.scopes) {
    auto sc = parse_scope(s);
    if (sc && sc->type == "repository" && sc->name == name && (sc->actions.contains(action) || sc->actions.contains("*")))
      return true;
  }
  return false;
}

}  // namespace

std::string Module::realm(const Request& req) const {
  std::string base = config_.external_url;
  if (base.empty()) base = std::string(tls_ ? "https://" : "http://") + std::string(req.header("Host").value_or("localhost"));
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/v2/token";
}

Response Module::render_error(const Error& e, const Request& req) const {
  std::string code = e.code_name();
  bool oci = !code.empty() && std::all_of(code.begin(), code.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
  if (!oci) {
    switch (e.code()) {
      case errc::unauthenticated: code = "UNAUTHORIZED"; break;
      case errc::forbidden: code = "DENIED"; break;
      case errc::not_found: code = "NAME_UNKNOWN"; break;
      case errc::payload_too_large: code = "SIZE_INVALID"; break;
      case errc::too_many_requests: code = "TOOMANYREQUESTS"; break;
      default: code = http_status(e.code()) >= 500 ? "UNKNOWN" : "UNSUPPORTED"; break;
    }
  }
  json detail = e.details().is_object() ? e.details() : json::object();
  json headers = detail.contains("headers") ? detail["headers"] : json::object();
  std::string scope = detail.value("scope", std::string());
  detail.erase("headers");
  detail.erase("scope");
  if (!e.code_name().empty() && !oci) detail["neurod_code"] = e.code_name();
  json err{{"code", code}, {"message", std::string(e.what())}};
  if (!detail.empty()) err["detail"] = detail;
  auto r = Response::json(json{{"errors", json::array({err})}}, http_status(e.code()));
  r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
  for (auto it = headers.begin(); it != headers.end(); ++it)
    if (it.value().is_string()) r.headers.set(it.key(), it.value().get<std::string>());
  if (e.code() == errc::unauthenticated) {
    if (scope.empty()) {
      auto t = target_of(req);
      if (t.kind != Target::invalid && valid_name(t.name))
        scope = "repository:" + t.name +
                (req.method == http::Method::get || req.method == http::Method::head ? ":pull" : ":pull,push");
    }
    std::string challenge = "Bearer realm=\"" + realm(req) + "\",service=\"neurod\"";
    if (!scope.empty()) challenge += ",scope=\"" + scope + "\"";
    if (e.code_name() == "invalid_token" || code == "UNAUTHORIZED") {
      if (req.principal.scopes) challenge += ",error=\"insufficient_scope\"";
    }
    r.headers.set("WWW-Authenticate", challenge);
  }
  if (e.code() == errc::too_many_requests || e.code() == errc::db_busy) r.headers.set("Retry-After", "1");
  return r;
}

bool Module::may(const http::Principal& who, const std::string& name, Need need) const {
  auto uri = "image://" + cluster_ + "/" + name;
  return authz_->allowed(who, uri, need == Need::pull ? auth::Action::read : auth::Action::write);
}

std::string Module::authorize(const Request& req, const std::string& name, Need need) const {
  check_name(name);
  const auto& who = req.principal;
  const char* action = need == Need::pull ? "pull" : "push";
  if (!scopes_allow(who, name, action)) {
    throw oci_error(errc::unauthenticated, "UNAUTHORIZED",
                      std::string("the token does not grant ") + action + " on " + name + ": ask /v2/token for it",
                      {{"scope", "repository:" + name + (need == Need::pull ? ":pull" : ":pull,push")}});
  }
  if (may(who, name, need)) return project_of(name);
  if (need == Need::push && may(who, name, Need::pull))
    throw oci_error(errc::forbidden, "DENIED", "you may pull " + name + " but not push to it or delete from it",
                    {{"missing", json::array({{{"uri", "image://" + cluster_ + "/" + name}, {"action", "write"}}})}});
  if (need == Need::push)
    throw oci_error(errc::forbidden, "DENIED", "requested access to " + name + " is denied",
                    {{"missing", json::array({{{"uri", "image://" + cluster_ + "/" + name}, {"action", "write"}}})}});
  // Pulling what one may not see: as if it did not exist.
  throw oci_error(errc::not_found, "NAME_UNKNOWN", "repository " + name + " is not known to the registry",
                  {{"name", name}});
}

void Module::check_quota(const std::string& project, std::uint64_t more) const {
  auto limit = acct_->limit(project);
  if (!limit) return;
  auto used = acct_->used(project);
  if (used + more > *limit)
    throw oci_error(errc::forbidden, "DENIED",
                    "project " + project + " is over its storage quota: this push needs " + std::to_string(more) +
                        " bytes but only " + std::to_string(*limit > used ? *limit - used : 0) + " of " +
                        std::to_string(*limit) + " are left",
                    {{"limit", *limit}, {"used", used}, {"needed", more}, {"reason", "quota_exceeded"}});
}

void Module::link_blob(const std::string& name, const std::string& project, const std::string& digest,
                       std::uint64_t size, const std::string& kind) {
  db_.write([&](soci::session& s) {
    repo::upsert_blob(s, digest, static_cast<std::int64_t>(size), now_ms());
    bool new_to_project = !repo::project_holds(s, project, digest);
    if (new_to_project) {
      try {
        acct_->reserve(project, size, "registry");
      } catch (const Error& e) {
        throw oci_error(errc::forbidden, "DENIED", e.what(), e.details());
      }
    }
    try {
      repo::link(s, name, project, digest, kind, now_ms());
    } catch (...) {
      if (new_to_project) acct_->release(project, size, "registry");
      throw;
    }
  });
}

void Module::commit_upload(const std::string& name, const std::string& project,
                           const std::shared_ptr<UploadSession>& session, const std::string& digest) {
  bool holds = db_.read([&](soci::session& s) { return repo::project_holds(s, project, digest); });
  if (!holds) {
    try {
      check_quota(project, session->size);
    } catch (...) {
      uploads_->remove(session->id);  // refused: nothing is kept
      throw;
    }
  }
  auto lock = store_->commit_lock();
  auto size = uploads_->commit(session, digest);
  link_blob(name, project, digest, size, "layer");
}

void Module::add_routes(http::Router& r) {
  auto render = [this](const Error& e, const Request& req) { return render_error(e, req); };
  auto opts = [&](std::string summary, http::BodyKind body = http::BodyKind::memory) {
    http::RouteOptions o;
    o.render_error = render;
    o.body = body;
    o.summary = std::move(summary);
    if (body == http::BodyKind::sink) {
      o.sink = [this](Request& req) { return make_sink(req); };
      o.body_limit = config_.max_blob_size.bytes;
      o.timeout = std::chrono::hours(1);
    }
    return o;
  };
  r.get(
      "/v2/",
      [](Request&) {
        auto res = Response::json(json::object());
        res.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
        return res;
      },
      opts("OCI registry: API version check"));
  r.get("/v2/token", [this](Request& req) { return handle_token(req); },
        opts("OCI registry: a short-lived scoped token for the registry (Basic auth)"));
  r.get("/v2/_catalog", [this](Request& req) { return handle_catalog(req); },
        opts("OCI registry: repositories the caller may pull"));
  r.get("/v2/{path...}", [this](Request& req) { return handle_get(req); },
        opts("OCI registry: manifests, blobs, tags, referrers, upload status"));
  r.put("/v2/{path...}", [this](Request& req) { return handle_put(req); },
        opts("OCI registry: push a manifest or finish an upload", http::BodyKind::sink));
  r.post("/v2/{path...}", [this](Request& req) { return handle_post(req); },
         opts("OCI registry: start an upload or mount a blob", http::BodyKind::sink));
  r.patch("/v2/{path...}", [this](Request& req) { return handle_patch(req); },
          opts("OCI registry: upload a chunk", http::BodyKind::sink));
  r.del("/v2/{path...}", [this](Request& req) { return handle_delete(req); },
        opts("OCI registry: delete a manifest, tag, blob or upload"));
}

std::shared_ptr<http::BodySink> Module::make_sink(Request& req) {
  auto t = target_of(req);
  std::optional<std::uint64_t> declared;
  if (auto cl = req.header("Content-Length")) {
    std::uint64_t v = 0;
    if (parse_u64(*cl, v)) declared = v;
  }
  auto session_for = [&](const std::string& project) {
    auto s = uploads_->find(t.reference);
    if (!s || s->repository != t.name)
      throw oci_error(errc::not_found, "BLOB_UPLOAD_UNKNOWN", "upload " + t.reference + " is not known to " + t.name);
    (void)project;
    return s;
  };
  if (req.method == http::Method::put && t.kind == Target::manifest) {
    authorize(req, t.name, Need::push);
    if (declared && *declared > config_.max_manifest_size.bytes)
      throw oci_error(errc::payload_too_large, "SIZE_INVALID",
                      "the manifest is " + std::to_string(*declared) + " bytes; the limit is " +
                          std::to_string(config_.max_manifest_size.bytes));
    return std::make_shared<BufferSink>(config_.max_manifest_size.bytes);
  }
  if (req.method == http::Method::put && t.kind == Target::upload) {
    auto project = authorize(req, t.name, Need::push);
    auto s = session_for(project);
    check_digest(req.query_param("digest").value_or(""));
    if (declared) check_quota(project, s->size + *declared);
    return std::make_shared<AppendSink>(s, config_.max_blob_size.bytes);
  }
  if (req.method == http::Method::patch && t.kind == Target::upload) {
    auto project = authorize(req, t.name, Need::push);
    auto s = session_for(project);
    std::uint64_t at = s->size;
    if (auto cr = req.header("Content-Range")) {
      std::string_view v = *cr;
      if (v.starts_with("bytes=")) v.remove_prefix(6);
      if (v.starts_with("bytes ")) v.remove_prefix(6);
      auto dash = v.find('-');
      std::uint64_t first = 0, last = 0;
      if (dash == std::string_view::npos || !parse_u64(v.substr(0, dash), first) || !parse_u64(v.substr(dash + 1), last) ||
          last < first)
        throw oci_error(errc::bad_request, "BLOB_UPLOAD_INVALID", "malformed Content-Range '" + std::string(*cr) + "'");
      if (first != at)
        throw oci_error(errc::range_not_satisfiable, "BLOB_UPLOAD_INVALID",
                        "the chunk starts at " + std::to_string(first) + " but the upload has " + std::to_string(at) +
                            " bytes",
                        {{"headers",
                          {{"Location", upload_location(t.name, s->id)},
                           {"Range", range_header(at)},
                           {"Docker-Upload-UUID", s->id}}}});
      if (declared && *declared != last - first + 1)
        throw oci_error(errc::bad_request, "BLOB_UPLOAD_INVALID", "Content-Range and Content-Length disagree");
    }
    if (declared) check_quota(project, at + *declared);
    return std::make_shared<AppendSink>(s, config_.max_blob_size.bytes);
  }
  if (req.method == http::Method::post && t.kind == Target::upload_start) {
    auto project = authorize(req, t.name, Need::push);
    if (req.query_param("mount")) return std::make_shared<DiscardSink>();
    if (auto d = req.query_param("digest")) {
      check_digest(*d);
      if (declared) check_quota(project, *declared);
      auto s = uploads_->start(t.name, project, req.principal.name);
      return std::make_shared<AppendSink>(s, config_.max_blob_size.bytes);
    }
    return std::make_shared<DiscardSink>();
  }
  if (t.kind == Target::invalid) check_name(t.name.empty() ? std::string(req.path) : t.name);
  check_name(t.name);
  throw oci_error(errc::method_not_allowed, "UNSUPPORTED",
                  std::string(http::to_string(req.method)) + " is not supported on " + req.path);
}

Response Module::upload_status(const std::string& name, const UploadSession& s, int status) const {
  auto r = empty(status);
  r.headers.set("Location", upload_location(name, s.id));
  r.headers.set("Range", range_header(s.size));
  r.headers.set("Docker-Upload-UUID", s.id);
  r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
  return r;
}

Response Module::handle_get(Request& req) {
  auto t = target_of(req);
  if (t.kind == Target::invalid) {
    check_name(t.name.empty() ? req.path.substr(4) : t.name);
    throw oci_error(errc::not_found, "UNSUPPORTED", "no registry endpoint at " + req.path);
  }
  auto project = authorize(req, t.name, Need::pull);
  req.resource = "image://" + cluster_ + "/" + t.name;
  switch (t.kind) {
    case Target::manifest:
      return get_manifest(req, t.name, t.reference);
    case Target::blob: {
      check_digest(t.reference);
      // Opened before the link is checked: a collection that removes both in between makes
      // this a clean BLOB_UNKNOWN, and one after it cannot take the bytes from under us.
      int fd = store_->open_blob(t.reference);
      auto r = Response::from_fd(fd, "application/octet-stream");  // owns fd (closed even when refused below)
      bool ok = db_.read([&](soci::session& s) { return repo::linked(s, t.name, t.reference); });
      if (!ok) throw oci_error(errc::not_found, "BLOB_UNKNOWN", "blob " + t.reference + " is not in " + t.name,
                               {{"digest", t.reference}});
      if (fd < 0) throw oci_error(errc::not_found, "BLOB_UNKNOWN", "blob " + t.reference + " is missing on disk");
      r.headers.set("Docker-Content-Digest", t.reference);
      r.headers.set("ETag", "\"" + t.reference + "\"");
      r.headers.set("Cache-Control", "max-age=31536000");
      r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
      return r;
    }
    case Target::upload: {
      authorize(req, t.name, Need::push);
      auto s = uploads_->find(t.reference);
      if (!s || s->repository != t.name)
        throw oci_error(errc::not_found, "BLOB_UPLOAD_UNKNOWN", "upload " + t.reference + " is not known");
      return upload_status(t.name, *s, 204);
    }
    case Target::tags: {
      auto page = page_of(req);
      auto all = db_.read([&](soci::session& s) {
        if (!repo::repository_exists(s, t.name))
          throw oci_error(errc::not_found, "NAME_UNKNOWN", "repository " + t.name + " is not known to the registry",
                          {{"name", t.name}});
        return repo::tags(s, t.name);
      });
      Response r;
      auto tags = paginate(all, page, "/v2/" + t.name + "/tags/list", r);
      auto out = Response::json(json{{"name", t.name}, {"tags", tags}});
      if (auto link = r.headers.get("Link")) out.headers.set("Link", std::string(*link));
      return out;
    }
    case Target::referrers: {
      check_digest(t.reference);
      auto rows = db_.read([&](soci::session& s) { return repo::referrers(s, t.name, t.reference); });
      auto filters = req.query_params("artifactType");
      json manifests = json::array();
      for (const auto& m : rows) {
        if (!filters.empty() && std::find(filters.begin(), filters.end(), m.artifact_type) == filters.end()) continue;
        json d{{"mediaType", m.media_type}, {"digest", m.digest}, {"size", m.size}};
        if (!m.artifact_type.empty()) d["artifactType"] = m.artifact_type;
        if (!m.annotations.empty()) {
          auto a = json::parse(m.annotations, nullptr, false);
          if (a.is_object() && !a.empty()) d["annotations"] = a;
        }
        manifests.push_back(d);
      }
      auto r = Response::text(json{{"schemaVersion", 2}, {"mediaType", std::string(kOciIndex)}, {"manifests", manifests}}.dump(), 200,
                              std::string(kOciIndex));
      if (!filters.empty()) r.headers.set("OCI-Filters-Applied", "artifactType");
      return r;
    }
    default:
      break;
  }
  (void)project;
  throw oci_error(errc::not_found, "UNSUPPORTED", "no registry endpoint at " + req.path);
}

Response Module::get_manifest(Request& req, const std::string& name, const std::string& reference) {
  (void)req;
  std::string digest = reference;
  auto row = db_.read([&](soci::session& s) -> std::optional<repo::ManifestRow> {
    std::optional<repo::ManifestRow> m;
    if (!valid_digest(reference)) {
      auto d = valid_tag(reference) ? repo::tag(s, name, reference) : std::nullopt;
      if (d) digest = *d;
      if (d) m = repo::manifest(s, name, digest);
    } else {
      m = repo::manifest(s, name, digest);
    }
    if (!m && !repo::repository_exists(s, name))
      throw oci_error(errc::not_found, "NAME_UNKNOWN", "repository " + name + " is not known to the registry",
                      {{"name", name}});
    return m;
  });
  if (!row)
    throw oci_error(errc::not_found, "MANIFEST_UNKNOWN", "manifest " + reference + " is not in " + name,
                    {{"reference", reference}});
  std::string body;
  try {
    body = store_->read_blob(digest, config_.max_manifest_size.bytes);
  } catch (const Error&) {  // deleted (and collected) since the row was read
    throw oci_error(errc::not_found, "MANIFEST_UNKNOWN", "manifest " + reference + " is not in " + name,
                    {{"reference", reference}});
  }
  auto r = Response::text(std::move(body), 200, row->media_type);
  r.headers.set("Docker-Content-Digest", digest);
  r.headers.set("ETag", "\"" + digest + "\"");
  r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
  return r;
}

Response Module::put_manifest(Request& req, const std::string& name, const std::string& project,
                              const std::string& reference) {
  auto* sink = dynamic_cast<BufferSink*>(req.sink.get());
  if (!sink) throw Error(errc::internal, "the manifest was not received");
  const std::string& body = sink->data;
  bool by_digest = valid_digest(reference);
  if (!by_digest) {
    if (digest_shaped(reference)) check_digest(reference);
    if (!valid_tag(reference))
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", "invalid tag '" + reference + "'", {{"tag", reference}});
  }
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", "the manifest is not a JSON object");
  auto content_type = std::string(req.header("Content-Type").value_or(""));
  if (auto semi = content_type.find(';'); semi != std::string::npos) content_type.resize(semi);
  while (!content_type.empty() && content_type.back() == ' ') content_type.pop_back();
  std::string media_type;
  if (doc.contains("mediaType")) {
    if (!doc["mediaType"].is_string()) throw oci_error(errc::bad_request, "MANIFEST_INVALID", "mediaType must be a string");
    media_type = doc["mediaType"].get<std::string>();
  }
  if (!content_type.empty() && is_manifest_type(content_type)) {
    if (!media_type.empty() && media_type != content_type)
      throw oci_error(errc::bad_request, "MANIFEST_INVALID",
                      "the manifest's mediaType " + media_type + " differs from its Content-Type " + content_type);
    media_type = content_type;
  }
  if (media_type.empty()) media_type = doc.contains("manifests") ? std::string(kOciIndex) : std::string(kOciManifest);
  if (!is_manifest_type(media_type))
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", "unsupported manifest media type '" + media_type + "'");
  if (!doc.contains("schemaVersion") || doc["schemaVersion"] != 2)
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", "schemaVersion must be 2");

  // What it refers to: blobs (config, layers) or manifests (an index's entries).
  std::vector<std::string> blobs, manifests;
  if (doc.contains("artifactType") && !doc["artifactType"].is_string())
    throw oci_error(errc::bad_request, "MANIFEST_INVALID", "artifactType must be a string");
  std::string artifact_type = doc.value("artifactType", std::string());
  if (is_index_type(media_type)) {
    if (!doc.contains("manifests") || !doc["manifests"].is_array())
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", "an index needs a 'manifests' array");
    std::size_t i = 0;
    for (const auto& m : doc["manifests"]) manifests.push_back(descriptor_digest(m, "manifests[" + std::to_string(i++) + "]"));
  } else {
    if (!doc.contains("config"))
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", "an image manifest needs a 'config' descriptor");
    blobs.push_back(descriptor_digest(doc["config"], "config"));
    if (artifact_type.empty() && media_type == kOciManifest)
      artifact_type = doc["config"].value("mediaType", std::string());
    if (!doc.contains("layers") || !doc["layers"].is_array())
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", "an image manifest needs a 'layers' array");
    std::size_t i = 0;
    for (const auto& l : doc["layers"]) {
      auto d = descriptor_digest(l, "layers[" + std::to_string(i++) + "]");
      if (!foreign_layer(l)) blobs.push_back(d);
    }
  }
  std::string subject;
  if (doc.contains("subject")) subject = descriptor_digest(doc["subject"], "subject");
  std::string annotations;
  if (doc.contains("annotations")) {
    if (!doc["annotations"].is_object())
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", "annotations must be an object");
    annotations = doc["annotations"].dump();
  }

  auto digest = sha256_digest(body);
  if (by_digest && digest != reference)
    throw oci_error(errc::bad_request, "DIGEST_INVALID",
                    "the manifest's digest is " + digest + ", not " + reference, {{"expected", reference}, {"actual", digest}});

  auto lock = store_->commit_lock();
  // Everything it refers to must be in this repository already.
  db_.read([&](soci::session& s) {
    for (const auto& b : blobs)
      if (!repo::linked(s, name, b))
        throw oci_error(errc::bad_request, "MANIFEST_BLOB_UNKNOWN", "blob " + b + " is not in " + name,
                        {{"digest", b}});
    for (const auto& m : manifests)
      if (!repo::manifest(s, name, m))
        throw oci_error(errc::bad_request, "MANIFEST_BLOB_UNKNOWN", "manifest " + m + " is not in " + name,
                        {{"digest", m}});
    return 0;
  });
  check_quota(project, body.size());
  store_->write_blob(body, digest);
  repo::ManifestRow row{name, digest, media_type, static_cast<std::int64_t>(body.size()), artifact_type, subject,
                        annotations, now_ms()};
  std::vector<std::string> children = blobs;
  children.insert(children.end(), manifests.begin(), manifests.end());
  db_.write([&](soci::session& s) {
    // Checked again inside the transaction: a concurrent delete may have removed one.
    for (const auto& b : blobs)
      if (!repo::linked(s, name, b))
        throw oci_error(errc::bad_request, "MANIFEST_BLOB_UNKNOWN", "blob " + b + " is not in " + name,
                        {{"digest", b}});
    repo::upsert_blob(s, digest, static_cast<std::int64_t>(body.size()), now_ms());
    bool new_to_project = !repo::project_holds(s, project, digest);
    if (new_to_project) {
      try {
        acct_->reserve(project, body.size(), "registry");
      } catch (const Error& e) {
        throw oci_error(errc::forbidden, "DENIED", e.what(), e.details());
      }
    }
    try {
      repo::link(s, name, project, digest, "manifest", now_ms());
      repo::put_manifest(s, row, children);
      if (!by_digest) repo::set_tag(s, name, reference, digest, now_ms());
    } catch (...) {
      if (new_to_project) acct_->release(project, body.size(), "registry");
      throw;
    }
  });
  auto r = empty(201);
  r.headers.set("Location", "/v2/" + name + "/manifests/" + digest);
  r.headers.set("Docker-Content-Digest", digest);
  if (!subject.empty()) r.headers.set("OCI-Subject", subject);
  r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
  return r;
}

Response Module::handle_put(Request& req) {
  auto t = target_of(req);
  auto project = authorize(req, t.name, Need::push);
  req.resource = "image://" + cluster_ + "/" + t.name;
  if (t.kind == Target::manifest) {
    try {
      return put_manifest(req, t.name, project, t.reference);
    } catch (const nlohmann::json::exception& e) {
      throw oci_error(errc::bad_request, "MANIFEST_INVALID", std::string("malformed manifest: ") + e.what());
    }
  }
  auto* sink = dynamic_cast<AppendSink*>(req.sink.get());
  if (t.kind != Target::upload || !sink) throw oci_error(errc::method_not_allowed, "UNSUPPORTED", "PUT is not supported here");
  auto digest = req.query_param("digest").value_or("");
  check_digest(digest);
  commit_upload(t.name, project, sink->session(), digest);
  auto r = empty(201);
  r.headers.set("Location", "/v2/" + t.name + "/blobs/" + digest);
  r.headers.set("Docker-Content-Digest", digest);
  r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
  return r;
}

Response Module::handle_post(Request& req) {
  auto t = target_of(req);
  auto project = authorize(req, t.name, Need::push);
  req.resource = "image://" + cluster_ + "/" + t.name;
  if (t.kind != Target::upload_start) throw oci_error(errc::method_not_allowed, "UNSUPPORTED", "POST is not supported here");
  auto created = [&](const std::string& digest) {
    auto r = empty(201);
    r.headers.set("Location", "/v2/" + t.name + "/blobs/" + digest);
    r.headers.set("Docker-Content-Digest", digest);
    r.headers.set("Docker-Distribution-API-Version", std::string(kApiVersion));
    return r;
  };
  if (auto mount = req.query_param("mount")) {
    check_digest(*mount);
    auto from = req.query_param("from").value_or("");
    // A mount the caller may not make (or of a blob that is not there) starts an upload
    // instead, as the spec says; the client then pushes the bytes.
    bool readable = valid_name(from) && may(req.principal, from, Need::pull);
    if (readable && req.principal.scopes) {
      readable = false;
      for (const auto& s : *req.principal.scopes) {
        auto sc = parse_scope(s);
        if (sc && sc->type == "repository" && sc->name == from && (sc->actions.contains("pull") || sc->actions.contains("*")))
          readable = true;
      }
    }
    if (readable) {
      auto lock = store_->commit_lock();
      auto size = db_.read([&](soci::session& s) -> std::optional<std::int64_t> {
        if (!repo::linked(s, from, *mount)) return std::nullopt;
        return repo::blob_size(s, *mount);
      });
      if (size && store_->has_blob(*mount)) {
        if (!db_.read([&](soci::session& s) { return repo::project_holds(s, project, *mount); }))
          check_quota(project, static_cast<std::uint64_t>(*size));
        link_blob(t.name, project, *mount, static_cast<std::uint64_t>(*size), "layer");
        return created(*mount);
      }
    }
  } else if (auto* sink = dynamic_cast<AppendSink*>(req.sink.get())) {
    auto digest = req.query_param("digest").value_or("");
    commit_upload(t.name, project, sink->session(), digest);
    return created(digest);
  }
  auto s = uploads_->start(t.name, project, req.principal.name);
  auto r = upload_status(t.name, *s, 202);
  return r;
}

Response Module::handle_patch(Request& req) {
  auto t = target_of(req);
  authorize(req, t.name, Need::push);
  req.resource = "image://" + cluster_ + "/" + t.name;
  auto* sink = dynamic_cast<AppendSink*>(req.sink.get());
  if (t.kind != Target::upload || !sink) throw oci_error(errc::method_not_allowed, "UNSUPPORTED", "PATCH is not supported here");
  sink->release();
  return upload_status(t.name, *sink->session(), 202);
}

Response Module::handle_delete(Request& req) {
  auto t = target_of(req);
  if (t.kind == Target::invalid) check_name(t.name.empty() ? req.path.substr(4) : t.name);
  auto project = authorize(req, t.name, Need::push);
  req.resource = "image://" + cluster_ + "/" + t.name;
  switch (t.kind) {
    case Target::manifest: {
      bool found = false;
      if (valid_digest(t.reference)) {
        found = db_.write([&](soci::session& s) { return repo::delete_manifest(s, t.name, t.reference); });
      } else if (valid_tag(t.reference)) {
        found = db_.write([&](soci::session& s) { return repo::delete_tag(s, t.name, t.reference); });
      } else {
        check_digest(t.reference);
      }
      if (!found)
        throw oci_error(errc::not_found, "MANIFEST_UNKNOWN", "manifest " + t.reference + " is not in " + t.name,
                        {{"reference", t.reference}});
      refresh_usage(project);
      return empty(202);
    }
    case Target::blob: {
      check_digest(t.reference);
      bool found = db_.write([&](soci::session& s) {
        if (repo::manifest(s, t.name, t.reference))
          throw oci_error(errc::method_not_allowed, "UNSUPPORTED",
                          t.reference + " is a manifest: delete it through /manifests/");
        return repo::unlink(s, t.name, t.reference);
      });
      if (!found)
        throw oci_error(errc::not_found, "BLOB_UNKNOWN", "blob " + t.reference + " is not in " + t.name,
                        {{"digest", t.reference}});
      refresh_usage(project);
      return empty(202);
    }
    case Target::upload: {
      auto s = uploads_->find(t.reference);
      if (!s || s->repository != t.name)
        throw oci_error(errc::not_found, "BLOB_UPLOAD_UNKNOWN", "upload " + t.reference + " is not known");
      uploads_->remove(s->id);
      return empty(204);
    }
    default:
      break;
  }
  throw oci_error(errc::method_not_allowed, "UNSUPPORTED", "DELETE is not supported on " + req.path);
}

Response Module::handle_token(Request& req) {
  // A registry token may be exchanged for one with the same or fewer rights (what a client
  // does when it holds a job's pull token and the registry challenges it with Bearer):
  // each action granted must be in the caller's own scopes as well as in the ACL.
  const auto& who = req.principal;
  std::vector<std::string> granted;
  for (const auto& param : req.query_params("scope")) {
    std::string_view rest = param;
    while (!rest.empty()) {  // several scopes may share one parameter, separated by spaces
      auto sp = rest.find(' ');
      auto one = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
      auto sc = parse_scope(one);
      if (!sc) continue;
      if (sc->type == "registry" && sc->name == "catalog") {
        bool catalog = !who.scopes;
        if (who.scopes)
          for (const auto& mine : *who.scopes) catalog = catalog || mine == "registry:catalog:*";
        if (catalog) granted.push_back("registry:catalog:*");
        continue;
      }
      if (sc->type != "repository" || !valid_name(sc->name)) continue;
      std::vector<std::string> acts;
      bool all = sc->actions.contains("*");
      auto wants = [&](const std::string& a) { return (all || sc->actions.contains(a)) && scopes_allow(who, sc->name, a); };
      if (wants("pull") && may(who, sc->name, Need::pull)) acts.push_back("pull");
      if (wants("push") && may(who, sc->name, Need::push)) acts.push_back("push");
      if (wants("delete") && may(who, sc->name, Need::push)) acts.push_back("delete");
      if (acts.empty()) continue;
      std::string s = "repository:" + sc->name + ":";
      for (std::size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + acts[i];
      granted.push_back(s);
    }
  }
  // An exchanged token never outlives the one presented, so a leaked token cannot be
  // renewed for ever.
  std::optional<std::int64_t> not_after;
  if (who.scopes) {
    not_after = auth_->scoped_token_expiry(req);
    if (!not_after)
      throw oci_error(errc::unauthenticated, "UNAUTHORIZED", "present the registry token itself to exchange it");
  }
  auto issued = auth_->issue_scoped_token(who, granted, config_.token_ttl, not_after);
  auto ttl_s = (issued.expires_at_ms - issued.issued_at_ms) / 1000;
  auto r = Response::json(json{{"token", issued.token},
                               {"access_token", issued.token},
                               {"expires_in", ttl_s},
                               {"issued_at", rfc3339(issued.issued_at_ms)}});
  r.headers.set("Cache-Control", "no-store");
  return r;
}

Response Module::handle_catalog(Request& req) {
  auto page = page_of(req);
  const auto& who = req.principal;
  bool catalog_scope = !who.scopes;
  if (who.scopes)
    for (const auto& s : *who.scopes)
      if (s == "registry:catalog:*") catalog_scope = true;
  if (!catalog_scope)
    throw oci_error(errc::unauthenticated, "UNAUTHORIZED", "the token does not grant the catalog",
                    {{"scope", "registry:catalog:*"}});
  auto all = db_.read([](soci::session& s) { return repo::repositories(s); });
  std::vector<std::string> visible;
  for (auto& name : all)
    if (valid_name(name) && may(who, name, Need::pull)) visible.push_back(std::move(name));
  std::sort(visible.begin(), visible.end());
  Response r;
  auto repos = paginate(visible, page, "/v2/_catalog", r);
  auto out = Response::json(json{{"repositories", repos}});
  if (auto link = r.headers.get("Link")) out.headers.set("Link", std::string(*link));
  return out;
}

}  // namespace neurod::registry

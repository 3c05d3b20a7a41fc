#include "modules/secrets/service.hpp"

#include "core/errors.hpp"
#include "core/times.hpp"
#include "db/database.hpp"
#include "modules/auth/authorizer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace neurod::secrets {

namespace {

std::string format_time(std::int64_t ms) { return format_rfc3339(ms * 1'000'000, 3); }

Error not_found(std::string_view project, std::string_view key) {
  return Error(
             errc::not_found,
             fmt::format("no secret '{}' in project '{}' that you can read (neuro secret ls lists them)", key, project))
      .with_code("secret_not_found");
}

bool valid_project(std::string_view p) {
  if (p.empty() || p.size() > 255 || p == "." || p == "..") return false;
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#') return false;
  return true;
}

}  // namespace

std::string secret_uri(std::string_view cluster, std::string_view project, std::string_view key) {
  return fmt::format("secret://{}/{}/{}", cluster, project, key);
}

nlohmann::json to_json(const Secret& s, const std::string& cluster) {
  nlohmann::json j{{"key", s.meta.name},
                   {"owner", s.meta.owner},
                   {"project_name", s.meta.project},
                   {"uri", secret_uri(cluster, s.meta.project, s.meta.name)},
                   {"created_at", format_time(s.meta.created_at)},
                   {"updated_at", format_time(s.meta.updated_at)}};
  if (s.value) j["value"] = base64_encode(*s.value);
  return j;
}

Service::Service(db::Database& db, auth::Authorizer& authz, KeyStore& keys) : db_(db), authz_(authz), keys_(keys) {}

void Service::validate_key(std::string_view key) {
  auto bad = [&](std::string_view why) {
    return Error(errc::bad_request,
                 fmt::format("invalid secret key: {}; a key is a letter or '_', then up to 254 letters, digits, '_', "
                             "'.' or '-'",
                             why))
        .with_code("invalid_secret_key");
  };
  if (key.empty()) throw bad("it is empty");
  if (key.size() > 255) throw bad(fmt::format("it is {} characters long", key.size()));
  auto alpha = [](unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(static_cast<unsigned char>(key[0]))) throw bad("it must start with a letter or '_'");
  for (unsigned char c : key)
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-')
      throw bad(c >= 0x20 && c < 0x7f ? fmt::format("'{}' is not allowed", static_cast<char>(c))
                                      : std::string("it holds a character that is not allowed"));
}

std::string Service::project_for(const http::Principal& who, std::string project) const {
  if (project.empty()) project = authz_.context_for(who).project;
  if (!valid_project(project))
    throw Error(errc::bad_request, "project_name: not a project name").with_code("invalid_project");
  return project;
}

std::string Service::uri(std::string_view project, std::string_view key) const {
  return secret_uri(authz_.cluster(), project, key);
}

std::string Service::decrypt(const repo::Row& row) {
  auto ad = uri(row.meta.project, row.meta.name);
  auto ring = keys_.keyring();
  const Key* key = ring->find(row.sealed.key_id);
  if (!key) {
    ring = keys_.reload();  // rotated by another process since we last looked
    key = ring->find(row.sealed.key_id);
  }
  std::optional<std::string> plain;
  if (key) plain = open(*key, row.sealed, ad);
  if (!plain) {
    spdlog::error("secrets: {} cannot be decrypted ({}); refusing to return it", ad,
                  key ? "it fails authentication: tampered with, or moved from another key"
                      : "its master key " + row.sealed.key_id + " is not loaded");
    throw Error(errc::internal,
                fmt::format("the secret '{}' in project '{}' cannot be decrypted; an administrator should check the "
                            "server log",
                            row.meta.name, row.meta.project))
        .with_code("secret_undecryptable");
  }
  return std::move(*plain);
}

std::pair<Secret, bool> Service::put(const http::Principal& who, std::string project, const std::string& key,
                                     std::string_view value) {
  project = project_for(who, std::move(project));
  validate_key(key);
  auto u = uri(project, key);
  authz_.require(who, u, auth::Action::write);
  if (value.size() > kMaxValueBytes)
    throw Error(errc::payload_too_large, fmt::format("the value is {} bytes; a secret holds at most {} bytes (1 MiB)",
                                                     value.size(), kMaxValueBytes))
        .with_code("secret_too_large");
  auto sealed = seal(keys_.keyring()->current(), value, u);
  repo::Meta meta{project, key, who.name, now_ms(), 0};
  meta.updated_at = meta.created_at;
  auto [stored, created] = db_.write([&](soci::session& s) { return repo::upsert(s, meta, sealed); });
  return {Secret{stored, std::nullopt}, created};
}

std::vector<Secret> Service::list(const http::Principal& who, const std::string& project) {
  if (!project.empty() && !valid_project(project))
    throw Error(errc::bad_request, "project_name: not a project name").with_code("invalid_project");
  auto rows = db_.read([&](soci::session& s) { return repo::list(s, project); });
  std::vector<Secret> out;
  for (auto& m : rows)
    if (authz_.allowed(who, uri(m.project, m.name), auth::Action::read)) out.push_back({std::move(m), std::nullopt});
  return out;
}

Secret Service::get(const http::Principal& who, std::string project, const std::string& key) {
  project = project_for(who, std::move(project));
  validate_key(key);
  // Permission first: whether it exists is none of a stranger's business.
  if (!authz_.allowed(who, uri(project, key), auth::Action::read)) throw not_found(project, key);
  auto row = db_.read([&](soci::session& s) { return repo::load(s, project, key); });
  if (!row) throw not_found(project, key);
  return Secret{row->meta, decrypt(*row)};
}

void Service::remove(const http::Principal& who, std::string project, const std::string& key) {
  project = project_for(who, std::move(project));
  validate_key(key);
  auto u = uri(project, key);
  if (!authz_.allowed(who, u, auth::Action::read)) throw not_found(project, key);
  if (!authz_.allowed(who, u, auth::Action::write))
    throw Error(errc::forbidden, fmt::format("you may read the secret '{}' but not delete it", key),
                {{"missing", nlohmann::json::array({{{"uri", u}, {"action", "write"}}})}});
  if (!db_.write([&](soci::session& s) { return repo::remove(s, project, key); })) throw not_found(project, key);
}

std::optional<std::string> Service::value(std::string_view secret_uri) {
  constexpr std::string_view kScheme = "secret://";
  if (!secret_uri.starts_with(kScheme)) return std::nullopt;
  auto rest = secret_uri.substr(kScheme.size());
  auto slash1 = rest.find('/');
  if (slash1 == std::string_view::npos || rest.substr(0, slash1) != authz_.cluster()) return std::nullopt;
  rest.remove_prefix(slash1 + 1);
  auto slash2 = rest.find('/');
  if (slash2 == std::string_view::npos) return std::nullopt;
  std::string project(rest.substr(0, slash2)), key(rest.substr(slash2 + 1));
  if (project.empty() || key.empty() || key.find('/') != std::string::npos) return std::nullopt;
  auto row = db_.read([&](soci::session& s) { return repo::load(s, project, key); });
  if (!row) return std::nullopt;
  return decrypt(*row);
}

}  // namespace neurod::secrets

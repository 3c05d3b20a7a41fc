#include "modules/registry/repo.hpp"

#include "db/rows.hpp"

#include <algorithm>

namespace neurod::registry::repo {

using db::as_int64;
using db::as_string;

namespace {
constexpr const char* kManifestCols =
    "repository, digest, media_type, size, artifact_type, subject, annotations, created_at";

ManifestRow manifest_from(const soci::row& r) {
  return {as_string(r, 0), as_string(r, 1), as_string(r, 2), as_int64(r, 3),
          as_string(r, 4), as_string(r, 5), as_string(r, 6), as_int64(r, 7)};
}

std::int64_t count(soci::session& s, const std::string& sql, const std::string& a, const std::string& b) {
  soci::rowset<soci::row> rs = (s.prepare << sql, soci::use(a), soci::use(b));
  for (const auto& r : rs) return as_int64(r, 0);
  return 0;
}
}  // namespace

std::optional<std::int64_t> blob_size(soci::session& s, const std::string& digest) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT size FROM registry_blobs WHERE digest = :d", soci::use(digest));
  for (const auto& r : rs) return as_int64(r, 0);
  return std::nullopt;
}

void upsert_blob(soci::session& s, const std::string& digest, std::int64_t size, std::int64_t now) {
  long long sz = size, at = now;
  if (blob_size(s, digest)) {
    // A fresh push of a blob renews it: the collector's grace period starts again.
    s << "UPDATE registry_blobs SET created_at = :t WHERE digest = :d", soci::use(at), soci::use(digest);
    return;
  }
  s << "INSERT INTO registry_blobs (digest, size, created_at) VALUES (:d, :s, :t)", soci::use(digest), soci::use(sz),
      soci::use(at);
}

bool linked(soci::session& s, const std::string& repository, const std::string& digest) {
  return count(s, "SELECT COUNT(*) FROM registry_links WHERE repository = :r AND digest = :d", repository, digest) > 0;
}

bool project_holds(soci::session& s, const std::string& project, const std::string& digest) {
  return count(s, "SELECT COUNT(*) FROM registry_links WHERE project = :p AND digest = :d", project, digest) > 0;
}

bool link(soci::session& s, const std::string& repository, const std::string& project, const std::string& digest,
          const std::string& kind, std::int64_t now) {
  long long at = now;
  if (linked(s, repository, digest)) {
    s << "UPDATE registry_links SET created_at = :t WHERE repository = :r AND digest = :d", soci::use(at),
        soci::use(repository), soci::use(digest);
    if (kind == "manifest")
      s << "UPDATE registry_links SET kind = 'manifest' WHERE repository = :r AND digest = :d", soci::use(repository),
          soci::use(digest);
    return false;
  }
  s << "INSERT INTO registry_links (repository, digest, project, kind, created_at) VALUES (:r, :d, :p, :k, :t)",
      soci::use(repository), soci::use(digest), soci::use(project), soci::use(kind), soci::use(at);
  return true;
}

bool unlink(soci::session& s, const std::string& repository, const std::string& digest) {
  soci::statement st = (s.prepare << "DELETE FROM registry_links WHERE repository = :r AND digest = :d",
                        soci::use(repository), soci::use(digest));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

bool repository_exists(soci::session& s, const std::string& repository) {
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT 1 FROM registry_links WHERE repository = :r LIMIT 1", soci::use(repository));
  for (const auto& r : rs) {
    (void)r;
    return true;
  }
  return false;
}

std::vector<std::string> repositories(soci::session& s) {
  std::vector<std::string> out;
  soci::rowset<soci::row> rs = (s.prepare << "SELECT DISTINCT repository FROM registry_links");
  for (const auto& r : rs) out.push_back(as_string(r, 0));
  return out;
}

void put_manifest(soci::session& s, const ManifestRow& m, const std::vector<std::string>& children) {
  long long size = m.size, at = m.created_at;
  if (!manifest(s, m.repository, m.digest)) {
    s << "INSERT INTO registry_manifests (repository, digest, media_type, size, artifact_type, subject, annotations, "
         "created_at) VALUES (:r, :d, :m, :s, :a, :sub, :an, :t)",
        soci::use(m.repository), soci::use(m.digest), soci::use(m.media_type), soci::use(size),
        soci::use(m.artifact_type), soci::use(m.subject), soci::use(m.annotations), soci::use(at);
  }
  s << "DELETE FROM registry_manifest_refs WHERE repository = :r AND manifest = :d", soci::use(m.repository),
      soci::use(m.digest);
  std::vector<std::string> seen;
  for (const auto& c : children) {
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
    seen.push_back(c);
    s << "INSERT INTO registry_manifest_refs (repository, manifest, child) VALUES (:r, :m, :c)",
        soci::use(m.repository), soci::use(m.digest), soci::use(c);
  }
}

std::optional<ManifestRow> manifest(soci::session& s, const std::string& repository, const std::string& digest) {
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kManifestCols +
                        " FROM registry_manifests WHERE repository = :r AND digest = :d",
       soci::use(repository), soci::use(digest));
  for (const auto& r : rs) return manifest_from(r);
  return std::nullopt;
}

bool delete_manifest(soci::session& s, const std::string& repository, const std::string& digest) {
  soci::statement st = (s.prepare << "DELETE FROM registry_manifests WHERE repository = :r AND digest = :d",
                        soci::use(repository), soci::use(digest));
  st.execute(true);
  bool existed = st.get_affected_rows() > 0;
  s << "DELETE FROM registry_manifest_refs WHERE repository = :r AND manifest = :d", soci::use(repository),
      soci::use(digest);
  s << "DELETE FROM registry_tags WHERE repository = :r AND digest = :d", soci::use(repository), soci::use(digest);
  unlink(s, repository, digest);
  return existed;
}

std::vector<ManifestRow> referrers(soci::session& s, const std::string& repository, const std::string& subject) {
  std::vector<ManifestRow> out;
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kManifestCols +
                        " FROM registry_manifests WHERE repository = :r AND subject = :s",
       soci::use(repository), soci::use(subject));
  for (const auto& r : rs) out.push_back(manifest_from(r));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.digest < b.digest; });
  return out;
}

std::int64_t referenced_by(soci::session& s, const std::string& repository, const std::string& child) {
  return count(s, "SELECT COUNT(*) FROM registry_manifest_refs WHERE repository = :r AND child = :c", repository,
               child);
}

std::optional<std::string> tag(soci::session& s, const std::string& repository, const std::string& tag) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT digest FROM registry_tags WHERE repository = :r AND tag = :t",
                                soci::use(repository), soci::use(tag));
  for (const auto& r : rs) return as_string(r, 0);
  return std::nullopt;
}

void set_tag(soci::session& s, const std::string& repository, const std::string& t, const std::string& digest,
             std::int64_t now) {
  long long at = now;
  if (tag(s, repository, t)) {
    s << "UPDATE registry_tags SET digest = :d, updated_at = :u WHERE repository = :r AND tag = :t", soci::use(digest),
        soci::use(at), soci::use(repository), soci::use(t);
  } else {
    s << "INSERT INTO registry_tags (repository, tag, digest, updated_at) VALUES (:r, :t, :d, :u)",
        soci::use(repository), soci::use(t), soci::use(digest), soci::use(at);
  }
}

bool delete_tag(soci::session& s, const std::string& repository, const std::string& t) {
  soci::statement st = (s.prepare << "DELETE FROM registry_tags WHERE repository = :r AND tag = :t",
                        soci::use(repository), soci::use(t));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

std::vector<std::string> tags(soci::session& s, const std::string& repository) {
  std::vector<std::string> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT tag FROM registry_tags WHERE repository = :r", soci::use(repository));
  for (const auto& r : rs) out.push_back(as_string(r, 0));
  std::sort(out.begin(), out.end());  // byte order on both backends, whatever the collation
  return out;
}

std::uint64_t usage(soci::session& s, const std::string& project) {
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT COALESCE(SUM(b.size), 0) FROM registry_blobs b WHERE b.digest IN "
                    "(SELECT l.digest FROM registry_links l WHERE l.project = :p)",
       soci::use(project));
  for (const auto& r : rs) return static_cast<std::uint64_t>(as_int64(r, 0));
  return 0;
}

std::map<std::string, std::uint64_t> usage_all(soci::session& s) {
  std::map<std::string, std::uint64_t> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT p.project, COALESCE(SUM(b.size), 0) FROM (SELECT DISTINCT project, digest FROM "
                    "registry_links) p JOIN registry_blobs b ON b.digest = p.digest GROUP BY p.project");
  for (const auto& r : rs) out[as_string(r, 0)] = static_cast<std::uint64_t>(as_int64(r, 1));
  return out;
}

std::vector<Link> unreferenced_layer_links(soci::session& s, std::int64_t before) {
  long long t = before;
  std::vector<Link> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT l.repository, l.digest, l.project FROM registry_links l WHERE l.kind = 'layer' AND "
                    "l.created_at < :t AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs m WHERE m.repository = "
                    "l.repository AND m.child = l.digest)",
       soci::use(t));
  for (const auto& r : rs) out.push_back({as_string(r, 0), as_string(r, 1), as_string(r, 2)});
  return out;
}

std::vector<std::string> orphan_blobs(soci::session& s, std::int64_t before) {
  long long t = before;
  std::vector<std::string> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT b.digest FROM registry_blobs b WHERE b.created_at < :t AND NOT EXISTS (SELECT 1 FROM "
                    "registry_links l WHERE l.digest = b.digest)",
       soci::use(t));
  for (const auto& r : rs) out.push_back(as_string(r, 0));
  return out;
}

bool delete_blob_if_orphan(soci::session& s, const std::string& digest) {
  soci::statement st = (s.prepare << "DELETE FROM registry_blobs WHERE digest = :d AND NOT EXISTS (SELECT 1 FROM "
                                     "registry_links l WHERE l.digest = :d2)",
                        soci::use(digest), soci::use(digest));
  st.execute(true);
  return st.get_affected_rows() > 0;
}

}  // namespace neurod::registry::repo

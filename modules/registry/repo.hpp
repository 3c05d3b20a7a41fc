// The registry's tables (migrations/registry): blobs, repository links, manifests, their
// references and tags. Plain functions over a session; the caller picks the transaction.
#pragma once

#include <soci/soci.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace neurod::registry::repo {

struct ManifestRow {
  std::string repository;
  std::string digest;
  std::string media_type;
  std::int64_t size = 0;
  std::string artifact_type;
  std::string subject;      // "" when none
  std::string annotations;  // JSON object text, "" when none
  std::int64_t created_at = 0;
};

std::optional<std::int64_t> blob_size(soci::session& s, const std::string& digest);
void upsert_blob(soci::session& s, const std::string& digest, std::int64_t size, std::int64_t now);
bool linked(soci::session& s, const std::string& repository, const std::string& digest);
// Whether any repository of the project holds the digest.
bool project_holds(soci::session& s, const std::string& project, const std::string& digest);
// Inserts the link unless present; true when it was added.
bool link(soci::session& s, const std::string& repository, const std::string& project, const std::string& digest,
          const std::string& kind, std::int64_t now);
bool unlink(soci::session& s, const std::string& repository, const std::string& digest);
bool repository_exists(soci::session& s, const std::string& repository);
std::vector<std::string> repositories(soci::session& s);

void put_manifest(soci::session& s, const ManifestRow& m, const std::vector<std::string>& children);
std::optional<ManifestRow> manifest(soci::session& s, const std::string& repository, const std::string& digest);
// Removes the manifest, its references, the tags on it and its link.
bool delete_manifest(soci::session& s, const std::string& repository, const std::string& digest);
std::vector<ManifestRow> referrers(soci::session& s, const std::string& repository, const std::string& subject);
// Manifests of the repository that refer to `child` (an index holding it, …).
std::int64_t referenced_by(soci::session& s, const std::string& repository, const std::string& child);

std::optional<std::string> tag(soci::session& s, const std::string& repository, const std::string& tag);
void set_tag(soci::session& s, const std::string& repository, const std::string& tag, const std::string& digest,
             std::int64_t now);
bool delete_tag(soci::session& s, const std::string& repository, const std::string& tag);
std::vector<std::string> tags(soci::session& s, const std::string& repository);

// Registry bytes per project: each distinct blob a project's repositories hold, once.
std::uint64_t usage(soci::session& s, const std::string& project);
std::map<std::string, std::uint64_t> usage_all(soci::session& s);

// Garbage collection. Layer links no manifest of their repository refers to, made before
// `before`; removed, returned as (repository, digest, project).
struct Link {
  std::string repository, digest, project;
};
std::vector<Link> unreferenced_layer_links(soci::session& s, std::int64_t before);
// Blobs no repository holds, made before `before`.
std::vector<std::string> orphan_blobs(soci::session& s, std::int64_t before);
bool delete_blob_if_orphan(soci::session& s, const std::string& digest);

}  // namespace neurod::registry::repo

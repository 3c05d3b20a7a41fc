-- The image registry (modules/registry/README.md). Blob bytes live on disk under
-- <data_dir>/registry/blobs/sha256/XX/<hex>, once per digest; these tables say which
-- repository holds which blob and manifest. Times are Unix epoch milliseconds.
CREATE TABLE registry_blobs (
  digest TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
-- A blob (layer, config or manifest) belongs to a repository. `project` is the
-- repository's first component: the quota's subject.
CREATE TABLE registry_links (
  repository TEXT NOT NULL,
  digest TEXT NOT NULL REFERENCES registry_blobs (digest),
  project TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (repository, digest)
);
CREATE INDEX registry_links_digest ON registry_links (digest);
CREATE INDEX registry_links_project ON registry_links (project, digest);
CREATE TABLE registry_manifests (
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  artifact_type TEXT NOT NULL,
  subject TEXT NOT NULL,
  annotations TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (repository, digest)
);
CREATE INDEX registry_manifests_subject ON registry_manifests (repository, subject);
-- What a manifest refers to (config, layers, or an index's manifests).
CREATE TABLE registry_manifest_refs (
  repository TEXT NOT NULL,
  manifest TEXT NOT NULL,
  child TEXT NOT NULL,
  PRIMARY KEY (repository, manifest, child)
);
CREATE INDEX registry_manifest_refs_child ON registry_manifest_refs (repository, child);
CREATE TABLE registry_tags (
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (repository, tag)
);
CREATE INDEX registry_tags_digest ON registry_tags (repository, digest);

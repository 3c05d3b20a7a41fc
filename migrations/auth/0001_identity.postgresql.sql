-- Identity and access (modules/auth/README.md). Times are Unix epoch milliseconds.
-- One row: a counter bumped by every change, so other processes sharing the database
-- know to reload, and the cluster these grants were made for.
CREATE TABLE auth_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL,
  cluster TEXT
);
INSERT INTO auth_state (id, version, cluster) VALUES (1, 0, NULL);

-- Users, service accounts and roles.
CREATE TABLE auth_principals (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('user', 'service', 'role')),
  email TEXT,
  password_hash TEXT,
  owner TEXT,
  builtin INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);

CREATE TABLE auth_grants (
  principal TEXT NOT NULL REFERENCES auth_principals (name) ON DELETE CASCADE,
  uri TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('deny', 'list', 'read', 'write', 'manage')),
  granted_by TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (principal, uri)
);
CREATE INDEX auth_grants_uri ON auth_grants (uri);

-- Tokens by the SHA-256 of their value; the value itself is never stored.
CREATE TABLE auth_tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  principal TEXT NOT NULL REFERENCES auth_principals (name) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('session', 'api', 'service', 'bootstrap')),
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT
);
CREATE INDEX auth_tokens_principal ON auth_tokens (principal);

CREATE TABLE auth_projects (
  name TEXT PRIMARY KEY,
  personal INTEGER NOT NULL DEFAULT 0,
  created_by TEXT,
  created_at BIGINT NOT NULL
);

-- Limits; NULL is unlimited. period_ms is the window of the *_hours counters.
CREATE TABLE auth_quotas (
  subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'project')),
  subject TEXT NOT NULL,
  max_running_jobs BIGINT,
  cpu_hours DOUBLE PRECISION,
  gpu_hours DOUBLE PRECISION,
  storage_bytes BIGINT,
  period_ms BIGINT NOT NULL,
  PRIMARY KEY (subject_kind, subject)
);

CREATE TABLE auth_usage (
  subject_kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  resource TEXT NOT NULL,
  used DOUBLE PRECISION NOT NULL,
  window_start BIGINT NOT NULL,
  PRIMARY KEY (subject_kind, subject, resource)
);

CREATE TABLE auth_audit (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  principal TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  route TEXT NOT NULL,
  resource TEXT NOT NULL,
  status INTEGER NOT NULL,
  remote TEXT NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX auth_audit_principal ON auth_audit (principal, id);
CREATE INDEX auth_audit_at ON auth_audit (at);

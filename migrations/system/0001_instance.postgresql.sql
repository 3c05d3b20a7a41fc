-- One row describing this installation: a stable id and when it was created.
CREATE TABLE system_instance (
  id TEXT PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL
);

-- Jobs (modules/jobs/README.md). Times are Unix epoch milliseconds.
-- The row holds the job's current state; job_statuses is its append-only history and,
-- written in the same transaction as the row, the outbox of status events.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  name TEXT,
  owner TEXT NOT NULL,
  project TEXT NOT NULL,
  status TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  finished_at BIGINT,
  spec TEXT NOT NULL,
  executor TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 0,
  launched INTEGER NOT NULL DEFAULT 0,
  gpu_ids TEXT NOT NULL DEFAULT '',
  max_run_time_minutes INTEGER,
  restart_at BIGINT,
  charged_ms BIGINT NOT NULL DEFAULT 0,
  price_per_hour DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('pending', 'running', 'suspended');
CREATE INDEX jobs_launched ON jobs (launched) WHERE launched = 1;
CREATE INDEX jobs_owner_name ON jobs (owner, name, created_at);
CREATE INDEX jobs_project ON jobs (project, created_at);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE job_tags (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (job_id, tag)
);
CREATE INDEX job_tags_tag ON job_tags (tag);

CREATE TABLE job_statuses (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  exit_code INTEGER,
  time BIGINT NOT NULL
);
CREATE INDEX job_statuses_job ON job_statuses (job_id, seq);

-- Notifications (modules/notifications/README.md). Times are Unix epoch milliseconds.
-- Subscriptions: who is told what, and where. project NULL: the owner's own jobs and quota.
CREATE TABLE notify_subscriptions (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  project TEXT,
  channel TEXT NOT NULL,
  target TEXT NOT NULL,
  secret TEXT NOT NULL DEFAULT '',
  events TEXT NOT NULL,
  statuses TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX notify_subscriptions_owner ON notify_subscriptions (owner);
CREATE INDEX notify_subscriptions_project ON notify_subscriptions (project);

-- Users who opted out of the admin's default email notifications.
CREATE TABLE notify_optouts (
  principal TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL
);

-- How far each outbox of another module has been read (name 'job_statuses': its seq).
CREATE TABLE notify_cursors (
  name TEXT PRIMARY KEY,
  seq BIGINT NOT NULL
);

-- The durable outbox of deliveries: one row per event, subscription and recipient.
-- status: pending (not tried yet) | failed (tried, retried at next_attempt_at) | delivered | dead.
CREATE TABLE notify_deliveries (
  id BIGSERIAL PRIMARY KEY,
  idempotency_key TEXT NOT NULL UNIQUE,
  event_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  channel TEXT NOT NULL,
  target TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX notify_deliveries_owner ON notify_deliveries (owner, id);
CREATE INDEX notify_deliveries_subscription ON notify_deliveries (subscription_id, id);

-- The delivery log: every attempt with its result.
CREATE TABLE notify_attempts (
  id BIGSERIAL PRIMARY KEY,
  delivery_id BIGINT NOT NULL REFERENCES notify_deliveries (id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  time BIGINT NOT NULL,
  ok INTEGER NOT NULL,
  response_status INTEGER,
  error TEXT NOT NULL DEFAULT '',
  duration_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notify_attempts_delivery ON notify_attempts (delivery_id, id);

-- Secrets (modules/secrets/README.md). Values are never stored in the clear: `ciphertext`
-- is XChaCha20-Poly1305 of the value under the master key `key_id`, with `nonce` (both
-- base64) and the canonical URI secret://CLUSTER/PROJECT/NAME as associated data.
-- Times are Unix epoch milliseconds.
CREATE TABLE secrets (
  project TEXT NOT NULL,
  name TEXT NOT NULL,
  owner TEXT NOT NULL,
  key_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project, name)
);
CREATE INDEX secrets_key_id ON secrets (key_id);

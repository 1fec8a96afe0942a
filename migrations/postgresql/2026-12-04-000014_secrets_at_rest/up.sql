-- Secrets at rest: an enrollment link is found by its hash (the `token` column now
-- holds the SHA-256 of the secret) and shown to admins from its sealed copy; unlock and
-- bootstrap tokens and profile payloads are sealed in place. tafel converts what is
-- stored in the clear at start, each step once (recorded here).
ALTER TABLE enrollment_tokens ADD COLUMN token_sealed BYTEA;
CREATE TABLE secret_migrations (
    name TEXT PRIMARY KEY NOT NULL,
    done_at TIMESTAMP NOT NULL
);

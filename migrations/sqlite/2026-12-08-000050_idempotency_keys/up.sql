-- Answers to POSTs that carried an Idempotency-Key, kept 24 hours: a repeat (an admin's
-- retry after a dropped connection) gets the first answer instead of doing it twice.
-- `scope` is the SHA-256 of the caller's credentials, so keys never cross callers;
-- `status` is NULL while the first request is being answered.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    body BLOB,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

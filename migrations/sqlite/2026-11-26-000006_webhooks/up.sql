-- Outbox of webhook notifications: a row is written in the same transaction as the
-- change it reports, and a background sender delivers it (with retries) afterwards.
-- No foreign keys: a notification about a school must outlive the school.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    tenant_id TEXT,
    school_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);

-- The sender's question: which pending deliveries are due?
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
-- Retention and listing.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);

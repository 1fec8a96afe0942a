-- APNs push certificates, one per school authority; the key is sealed with secrets.key.
CREATE TABLE push_certificates (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    topic TEXT NOT NULL,
    not_after TIMESTAMP NOT NULL,
    cert_pem TEXT NOT NULL,
    key_sealed BYTEA NOT NULL,
    uploaded_by TEXT,
    uploaded_at TIMESTAMP NOT NULL
);

-- Push state per device: last result, failures for backoff, invalid tokens.
ALTER TABLE devices ADD COLUMN push_invalid_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN last_push_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN last_push_result TEXT;
ALTER TABLE devices ADD COLUMN push_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN next_push_at TIMESTAMP;
CREATE INDEX devices_next_push ON devices(next_push_at);
CREATE INDEX devices_last_seen ON devices(last_seen_at);

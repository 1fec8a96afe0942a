-- Automated Device Enrollment: server tokens per authority (tafel's key pair, then the
-- OAuth credentials from Apple School Manager, both sealed), and the devices Apple
-- assigned to tafel.
CREATE TABLE ade_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    cert_pem TEXT NOT NULL,
    key_sealed BYTEA NOT NULL,
    tokens_sealed BYTEA,
    expires_at TIMESTAMP,
    server_name TEXT,
    sync_cursor TEXT,
    status TEXT NOT NULL,
    last_error TEXT,
    last_sync_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ade_tokens_tenant ON ade_tokens(tenant_id);

CREATE TABLE ade_devices (
    serial_number TEXT PRIMARY KEY NOT NULL,
    token_id TEXT NOT NULL REFERENCES ade_tokens(id),
    tenant_id TEXT NOT NULL,
    model TEXT,
    description TEXT,
    color TEXT,
    asset_tag TEXT,
    profile_status TEXT,
    profile_uuid TEXT,
    assigned_at TIMESTAMP,
    deleted_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX ade_devices_tenant ON ade_devices(tenant_id);

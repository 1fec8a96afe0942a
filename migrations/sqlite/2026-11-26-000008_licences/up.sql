-- Apps and Books: content tokens per authority location (sealed), the assets they own,
-- and the device licences (adamId × serial) Apple holds for them.
CREATE TABLE vpp_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    location_name TEXT NOT NULL,
    org_name TEXT NOT NULL,
    token_sealed BLOB NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    last_sync_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX vpp_tokens_tenant ON vpp_tokens(tenant_id);

CREATE TABLE vpp_assets (
    token_id TEXT NOT NULL REFERENCES vpp_tokens(id),
    adam_id TEXT NOT NULL,
    pricing_param TEXT NOT NULL,
    total INTEGER NOT NULL,
    assigned INTEGER NOT NULL,
    available INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, adam_id)
);
CREATE INDEX vpp_assets_adam ON vpp_assets(adam_id);

CREATE TABLE vpp_licences (
    token_id TEXT NOT NULL REFERENCES vpp_tokens(id),
    adam_id TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    release_after TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, adam_id, serial_number)
);
CREATE INDEX vpp_licences_serial ON vpp_licences(serial_number);

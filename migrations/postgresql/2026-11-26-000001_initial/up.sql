-- tafel initial schema (PostgreSQL). Timestamps are UTC; ids are UUIDs generated in Rust.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    push_topic TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE schools (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'Europe/Berlin',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX schools_tenant ON schools(tenant_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT UNIQUE,
    role TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants(id),
    school_id TEXT REFERENCES schools(id),
    password_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- One row per enrolled (or pre-registered) device; the device channel of an enrollment.
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    udid TEXT UNIQUE,
    serial_number TEXT,
    tenant_id TEXT REFERENCES tenants(id),
    school_id TEXT REFERENCES schools(id),
    name TEXT,
    model TEXT,
    model_name TEXT,
    product_name TEXT,
    os_version TEXT,
    build_version TEXT,
    imei TEXT,
    enrollment_status TEXT NOT NULL,
    topic TEXT,
    identity_cert_sha256 TEXT,
    identity_cert_not_after TIMESTAMP,
    push_token TEXT,
    push_magic TEXT,
    unlock_token BYTEA,
    bootstrap_token BYTEA,
    awaiting_configuration BOOLEAN NOT NULL DEFAULT FALSE,
    enrolled_at TIMESTAMP,
    unenrolled_at TIMESTAMP,
    last_seen_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX devices_serial ON devices(serial_number);
CREATE INDEX devices_school ON devices(school_id);
CREATE INDEX devices_tenant ON devices(tenant_id);
CREATE INDEX devices_identity ON devices(identity_cert_sha256);

-- Every identity certificate our CA issued; a renewal names the certificate it replaces.
CREATE TABLE device_certificates (
    sha256 TEXT PRIMARY KEY NOT NULL,
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before TIMESTAMP NOT NULL,
    not_after TIMESTAMP NOT NULL,
    renewed_from TEXT,
    enrollment_token_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX device_certificates_renewed_from ON device_certificates(renewed_from);

-- A command is stored once ...
CREATE TABLE commands (
    command_uuid TEXT PRIMARY KEY NOT NULL,
    request_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP
);

-- ... and fanned out to one queue row per target device.
CREATE TABLE command_queue (
    device_id TEXT NOT NULL REFERENCES devices(id),
    command_uuid TEXT NOT NULL REFERENCES commands(command_uuid),
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    answered_at TIMESTAMP,
    result BYTEA,
    error_chain TEXT,
    PRIMARY KEY (device_id, command_uuid)
);
CREATE INDEX command_queue_next ON command_queue(device_id, status, priority, created_at);
CREATE INDEX command_queue_command ON command_queue(command_uuid);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT,
    tenant_id TEXT,
    school_id TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_object ON audit_log(object_type, object_id);

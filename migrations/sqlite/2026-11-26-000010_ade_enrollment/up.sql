-- Automated Device Enrollment, second half: where ASM devices land (rules), the ADE
-- profile and release policy per school, and how each device's initial configuration
-- ended (released complete, or by timeout with the gap).
ALTER TABLE ade_devices ADD COLUMN order_number TEXT;
ALTER TABLE ade_devices ADD COLUMN os TEXT;
ALTER TABLE ade_devices ADD COLUMN device_family TEXT;
ALTER TABLE ade_devices ADD COLUMN profile_assigned_at TIMESTAMP;
ALTER TABLE ade_devices ADD COLUMN profile_pushed_at TIMESTAMP;
ALTER TABLE ade_devices ADD COLUMN profile_error TEXT;
CREATE INDEX ade_devices_order ON ade_devices(order_number);
-- ASM devices meet tafel's devices by serial within their authority; the pair also
-- serves lookups by serial alone, so the old serial index goes.
CREATE INDEX devices_serial_tenant ON devices(serial_number, tenant_id);
DROP INDEX devices_serial;
-- A sync claims its token, so two nodes never sync the same token at once.
ALTER TABLE ade_tokens ADD COLUMN sync_claimed_at TIMESTAMP;
-- ADE enrollments use one internal token per school (kind 'ade'); links are 'link'.
ALTER TABLE enrollment_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'link';
CREATE UNIQUE INDEX enrollment_tokens_one_ade ON enrollment_tokens(school_id) WHERE kind = 'ade';
-- An ADE challenge is for the device whose machine info asked for it; the identity
-- issued with it may take over that UDID's enrollment (an erased iPad).
ALTER TABLE scep_challenges ADD COLUMN udid TEXT;
ALTER TABLE device_certificates ADD COLUMN ade_udid TEXT;

-- Placement rules: a serial list or an order number → school (and optionally class/cart).
CREATE TABLE ade_rules (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    school_id TEXT NOT NULL REFERENCES schools(id),
    class_id TEXT REFERENCES classes(id),
    group_id TEXT REFERENCES device_groups(id),
    order_number TEXT,
    serials TEXT,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ade_rules_tenant ON ade_rules(tenant_id);

-- One ADE profile per school: Setup Assistant settings (JSON), release policy.
CREATE TABLE ade_profiles (
    school_id TEXT PRIMARY KEY NOT NULL REFERENCES schools(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    settings TEXT NOT NULL,
    revision INTEGER NOT NULL,
    release_timeout_minutes INTEGER NOT NULL,
    release_requires TEXT,
    updated_at TIMESTAMP NOT NULL
);

-- The profile as defined at Apple, per school and server token.
CREATE TABLE ade_profile_uploads (
    school_id TEXT NOT NULL REFERENCES schools(id),
    token_id TEXT NOT NULL REFERENCES ade_tokens(id),
    revision INTEGER NOT NULL,
    profile_hash TEXT NOT NULL,
    profile_uuid TEXT NOT NULL,
    defined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (school_id, token_id)
);

-- The Setup Assistant wait of a device: when it started, when and how it ended.
CREATE TABLE device_setup (
    device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices(id),
    serial_number TEXT,
    first_contact_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    outcome TEXT,
    missing TEXT
);

-- The catalog: App Store and in-house apps, configuration profiles.
CREATE TABLE apps (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT REFERENCES tenants(id),
    name TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    adam_id TEXT,
    manifest_url TEXT,
    management_flags INTEGER NOT NULL DEFAULT 1,
    removable BOOLEAN NOT NULL DEFAULT TRUE,
    configuration TEXT,
    licensed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX apps_bundle ON apps(bundle_id);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT REFERENCES tenants(id),
    school_id TEXT REFERENCES schools(id),
    name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    payload BYTEA NOT NULL,
    template TEXT,
    payload_types TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX profiles_identifier ON profiles(identifier);

-- School calendars: closures (holidays) per authority or school.
CREATE TABLE closures (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    school_id TEXT REFERENCES schools(id),
    name TEXT NOT NULL,
    from_date TEXT NOT NULL,
    to_date TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX closures_tenant ON closures(tenant_id);

-- Assignments: app or profile -> target -> schedule.
CREATE TABLE assignments (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    school_id TEXT REFERENCES schools(id),
    item_kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    schedule TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX assignments_target ON assignments(target_kind, target_id);

-- Observed state (inventory and acknowledged commands).
CREATE TABLE device_apps (
    device_id TEXT NOT NULL REFERENCES devices(id),
    bundle_id TEXT NOT NULL,
    name TEXT,
    version TEXT,
    status TEXT NOT NULL,
    managed BOOLEAN NOT NULL DEFAULT FALSE,
    by_tafel BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (device_id, bundle_id)
);
CREATE INDEX device_apps_bundle ON device_apps(bundle_id);

CREATE TABLE device_profiles (
    device_id TEXT NOT NULL REFERENCES devices(id),
    identifier TEXT NOT NULL,
    uuid TEXT,
    name TEXT,
    managed BOOLEAN NOT NULL DEFAULT FALSE,
    by_tafel BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (device_id, identifier)
);
CREATE INDEX device_profiles_identifier ON device_profiles(identifier);

-- Commands link back to what asked for them.
ALTER TABLE commands ADD COLUMN assignment_id TEXT;
ALTER TABLE commands ADD COLUMN item_key TEXT;
ALTER TABLE commands ADD COLUMN action TEXT;
CREATE INDEX commands_item ON commands(item_key);
CREATE INDEX commands_assignment ON commands(assignment_id);
CREATE INDEX command_queue_status ON command_queue(status, device_id);

-- Inventory: the latest DeviceInformation / SecurityInfo per device.
CREATE TABLE device_inventory (
    device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices(id),
    battery_level DOUBLE PRECISION,
    capacity_gb DOUBLE PRECISION,
    available_gb DOUBLE PRECISION,
    supervised BOOLEAN,
    wifi_mac TEXT,
    passcode_present BOOLEAN,
    details TEXT,
    updated_at TIMESTAMP NOT NULL
);

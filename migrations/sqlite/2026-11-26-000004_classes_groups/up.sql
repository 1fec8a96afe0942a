-- Classes (with teachers) and device groups such as tablet carts; devices belong to
-- one school and may be in several classes and groups.
CREATE TABLE classes (
    id TEXT PRIMARY KEY NOT NULL,
    school_id TEXT NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL,
    school_year TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (school_id, school_year, name)
);

CREATE TABLE class_teachers (
    class_id TEXT NOT NULL REFERENCES classes(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (class_id, user_id)
);
CREATE INDEX class_teachers_user ON class_teachers(user_id);

CREATE TABLE class_devices (
    class_id TEXT NOT NULL REFERENCES classes(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    PRIMARY KEY (class_id, device_id)
);
CREATE INDEX class_devices_device ON class_devices(device_id);

CREATE TABLE device_groups (
    id TEXT PRIMARY KEY NOT NULL,
    school_id TEXT NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (school_id, name)
);

CREATE TABLE group_devices (
    group_id TEXT NOT NULL REFERENCES device_groups(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_devices_device ON group_devices(device_id);

CREATE INDEX devices_school_page ON devices(school_id, id);
CREATE INDEX devices_tenant_page ON devices(tenant_id, id);
CREATE INDEX devices_model ON devices(product_name);
CREATE INDEX devices_os ON devices(os_version);
CREATE INDEX devices_status ON devices(enrollment_status);
CREATE INDEX users_tenant ON users(tenant_id);
CREATE INDEX users_school ON users(school_id);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, at);
CREATE INDEX audit_log_school ON audit_log(school_id, at);

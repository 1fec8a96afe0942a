-- Lessons: per-school period times and approval rules, pre-approved apps, and the
-- teachers' requests; approved requests become assignments.
CREATE TABLE lesson_settings (
    school_id TEXT PRIMARY KEY NOT NULL REFERENCES schools(id),
    periods TEXT NOT NULL,
    min_notice_minutes INTEGER NOT NULL,
    max_duration_minutes INTEGER NOT NULL,
    lead_minutes INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE approved_apps (
    school_id TEXT NOT NULL REFERENCES schools(id),
    app_id TEXT NOT NULL REFERENCES apps(id),
    PRIMARY KEY (school_id, app_id)
);

CREATE TABLE lesson_requests (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    school_id TEXT NOT NULL REFERENCES schools(id),
    teacher_id TEXT NOT NULL REFERENCES users(id),
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    app_ids TEXT NOT NULL,
    lesson_date TEXT NOT NULL,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    repeat_until TEXT,
    after_lesson TEXT NOT NULL,
    note TEXT,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TIMESTAMP,
    reason TEXT,
    notified_start TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX lesson_requests_school ON lesson_requests(school_id, status);
CREATE INDEX lesson_requests_teacher ON lesson_requests(teacher_id);

ALTER TABLE assignments ADD COLUMN lesson_request_id TEXT;
CREATE INDEX assignments_lesson ON assignments(lesson_request_id);

-- Enrollment tokens: a URL an admin hands to a school; each device that enrolls
-- through it lands in the token's school (and class / device group, when set).
CREATE TABLE enrollment_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    school_id TEXT NOT NULL REFERENCES schools(id),
    class_id TEXT,
    group_id TEXT,
    description TEXT NOT NULL,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX enrollment_tokens_school ON enrollment_tokens(school_id);

-- One-time SCEP challenges, handed out in enrollment profiles; stored as SHA-256.
CREATE TABLE scep_challenges (
    challenge_sha256 TEXT PRIMARY KEY NOT NULL,
    token_id TEXT NOT NULL REFERENCES enrollment_tokens(id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX scep_challenges_expiry ON scep_challenges(expires_at);

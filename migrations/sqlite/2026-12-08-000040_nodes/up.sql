-- Several nodes on one database. A lease row per periodic job: a node runs a job only
-- after claiming its row (held_until past, last_run a whole interval ago), so each
-- job runs once per tick across the nodes, and a node that dies mid-run frees it when
-- held_until passes. Secrets every node needs (the webhook signing secret) and a canary
-- that proves a node's secrets.key opens what the database holds are stored sealed.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT,
    held_until TIMESTAMP NOT NULL,
    last_run TIMESTAMP
);
CREATE TABLE shared_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value_sealed BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

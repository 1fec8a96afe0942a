-- One row that /readyz updates in a transaction it rolls back: proof that the database
-- takes writes, without keeping anything.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY NOT NULL,
    probed_at TIMESTAMP NOT NULL
);
INSERT INTO health_probe (id, probed_at) VALUES (1, CURRENT_TIMESTAMP);

-- A password an admin issued (a one-time password) lets its user do one thing: choose
-- their own. Until then every other call is refused; after `password_expires_at` the
-- one-time password no longer logs in.
ALTER TABLE users ADD COLUMN password_must_change BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_expires_at TIMESTAMP;

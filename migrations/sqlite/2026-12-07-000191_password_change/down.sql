ALTER TABLE users DROP COLUMN password_expires_at;
ALTER TABLE users DROP COLUMN password_must_change;

DROP INDEX devices_last_seen;
DROP INDEX devices_next_push;
ALTER TABLE devices DROP COLUMN next_push_at;
ALTER TABLE devices DROP COLUMN push_failures;
ALTER TABLE devices DROP COLUMN last_push_result;
ALTER TABLE devices DROP COLUMN last_push_at;
ALTER TABLE devices DROP COLUMN push_invalid_at;
DROP TABLE push_certificates;

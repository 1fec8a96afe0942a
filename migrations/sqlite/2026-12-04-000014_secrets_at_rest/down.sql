DROP TABLE secret_migrations;
ALTER TABLE enrollment_tokens DROP COLUMN token_sealed;

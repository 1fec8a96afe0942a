ALTER TABLE tenants DROP COLUMN reenroll_requires_release;
DROP INDEX device_certificates_token_udid;
ALTER TABLE device_certificates DROP COLUMN udid;

-- Device trust: a certificate belongs to one UDID for its whole life (bound at its first
-- Authenticate, or when issued for an ADE machine info or a renewal); an authority may
-- require an admin's release before a known iPad enrolls with a new identity.
ALTER TABLE device_certificates ADD COLUMN udid TEXT;
UPDATE device_certificates SET udid = ade_udid WHERE udid IS NULL AND ade_udid IS NOT NULL;
UPDATE device_certificates SET udid = (
    SELECT devices.udid FROM devices WHERE devices.identity_cert_sha256 = device_certificates.sha256
) WHERE udid IS NULL;
CREATE INDEX device_certificates_token_udid ON device_certificates(enrollment_token_id, udid);
-- `uses` now counts the devices enrolled with a token, not the certificates issued.
UPDATE enrollment_tokens SET uses = (
    SELECT COUNT(DISTINCT c.udid) FROM device_certificates c
    WHERE c.enrollment_token_id = enrollment_tokens.id AND c.udid IS NOT NULL
);
ALTER TABLE tenants ADD COLUMN reenroll_requires_release BOOLEAN NOT NULL DEFAULT FALSE;

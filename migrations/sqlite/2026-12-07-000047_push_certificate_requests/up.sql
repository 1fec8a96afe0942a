-- A push certificate request per school authority, waiting for the certificate Apple
-- issues for it: the key tafel made (sealed with secrets.key, bound to the authority)
-- and the request (PEM) the admin takes to the MDM vendor and Apple's portal.
CREATE TABLE push_certificate_requests (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    key_sealed BLOB NOT NULL,
    csr_pem TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL
);

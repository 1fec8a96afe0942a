DROP INDEX devices_tenant_seen;
DROP INDEX devices_school_seen;

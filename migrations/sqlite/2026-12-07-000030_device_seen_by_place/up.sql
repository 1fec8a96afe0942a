-- The admins' overview counts a school's or an authority's devices by when they were
-- last seen: an index per place and time answers each count from the index alone.
CREATE INDEX devices_school_seen ON devices (school_id, last_seen_at);
CREATE INDEX devices_tenant_seen ON devices (tenant_id, last_seen_at);

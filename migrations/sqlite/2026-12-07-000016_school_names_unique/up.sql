-- A school's name is unique in its authority, as classes are in their school and year
-- and carts in their school: the API refuses a duplicate (409) and this index decides
-- when two requests race. Duplicates stored before keep the oldest school's name; the
-- others get their id appended, for an admin to rename.
UPDATE schools SET name = name || ' (' || id || ')'
WHERE id NOT IN (SELECT MIN(id) FROM schools GROUP BY tenant_id, name);
CREATE UNIQUE INDEX schools_tenant_name ON schools(tenant_id, name);

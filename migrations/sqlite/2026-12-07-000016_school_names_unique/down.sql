DROP INDEX schools_tenant_name;

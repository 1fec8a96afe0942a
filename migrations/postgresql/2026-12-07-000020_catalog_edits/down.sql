DROP INDEX profiles_identifier_live;
DROP INDEX apps_bundle_live;
ALTER TABLE profiles DROP COLUMN deleted_at;
ALTER TABLE apps DROP COLUMN deleted_at;

ALTER TABLE commands DROP COLUMN item_version;
ALTER TABLE profiles DROP COLUMN payload_uuid;

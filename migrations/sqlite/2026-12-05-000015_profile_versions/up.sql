-- Profile versions: a catalog profile keeps its outer PayloadUUID (new content gets a new
-- one), and a command that installs a profile names the version it carries, so that the
-- version a device holds (ProfileList, or the acknowledged install) can be compared
-- with the one wanted. Unknown (NULL) versions of rows stored earlier match anything.
ALTER TABLE profiles ADD COLUMN payload_uuid TEXT;
ALTER TABLE commands ADD COLUMN item_version TEXT;

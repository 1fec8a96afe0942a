-- Apps and profiles are deleted softly: the reconciler still knows them as tafel's
-- items (and removes them from iPads where nothing wants them any more), lists and new
-- assignments no longer see them.
ALTER TABLE apps ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE profiles ADD COLUMN deleted_at TIMESTAMP;
CREATE INDEX apps_bundle_live ON apps (bundle_id) WHERE deleted_at IS NULL;
CREATE INDEX profiles_identifier_live ON profiles (identifier) WHERE deleted_at IS NULL;

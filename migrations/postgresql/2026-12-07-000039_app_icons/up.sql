-- App icons as the App Store shows them, fetched once per App Store id, so that the
-- console shows them without loading anything from another host.
CREATE TABLE app_icons (
    adam_id TEXT PRIMARY KEY NOT NULL,
    content_type TEXT NOT NULL,
    data BYTEA NOT NULL,
    fetched_at TIMESTAMP NOT NULL
);

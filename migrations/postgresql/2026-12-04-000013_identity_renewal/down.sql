ALTER TABLE scep_challenges DROP COLUMN renews_sha256;

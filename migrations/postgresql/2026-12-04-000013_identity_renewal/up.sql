-- An identity renewal: tafel sends an enrolled iPad its enrollment profile again with a
-- challenge that renews the certificate it is bound to; the new certificate counts as
-- a renewal of that one.
ALTER TABLE scep_challenges ADD COLUMN renews_sha256 TEXT;

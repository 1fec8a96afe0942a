-- A machine info body (Setup Assistant's signed request for an ADE profile) is accepted
-- once: this is the challenge handed out for it. The same body again gets a new
-- challenge only while the last one is unused; once a certificate was issued, only a
-- profile push that Apple's sync reports later (the iPad was reset) opens it again.
CREATE TABLE ade_machine_infos (
    body_sha256 TEXT PRIMARY KEY NOT NULL,
    udid TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    challenge_sha256 TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX ade_machine_infos_udid ON ade_machine_infos(udid);

//! Encryption at rest for secrets kept in the database (push certificate keys, Apple
//! service tokens, enrollment links, devices' unlock and bootstrap tokens, profiles
//! with credentials): AES-256-GCM under a key that lives in a file
//! (`certs/secrets.key`, mode 0600), never in the database and never in logs. Every
//! node of a PostgreSQL cluster needs the same key file.
//!
//! A sealed value is bound to its place (`table.column` and the row's id, as
//! associated data): copied into another row it no longer opens. Values sealed before
//! that binding (format 1) are sealed again at start ([`migrate_at_rest`]).

use std::path::Path;

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use crate::pki::{check_key_permissions, write_key_file, PkiError};

/// Format version of sealed values without a binding (read for the migration only).
const VERSION: u8 = 1;
/// Format version of sealed values bound to their row.
const BOUND: u8 = 2;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Seals and opens secrets.
pub struct SecretBox {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// A sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt a stored secret (wrong secrets.key?)")]
pub struct OpenError;

impl SecretBox {
    /// Creates the key file when missing (0600).
    pub fn create_if_missing(path: &Path) -> Result<bool, PkiError> {
        if path.exists() {
            return Ok(false);
        }
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key)?;
        write_key_file(path, hex::encode(key).as_bytes(), false)?;
        Ok(true)
    }

    /// Loads the key file (64 hex characters), refusing loose permissions.
    pub fn load(path: &Path) -> Result<SecretBox, PkiError> {
        check_key_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
            path: path.to_owned(),
            source,
        })?;
        let bytes = hex::decode(text.trim()).map_err(|_| {
            PkiError::Malformed(format!("{} is not 64 hex characters", path.display()))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            PkiError::Malformed(format!("{} is not 64 hex characters", path.display()))
        })?;
        Ok(SecretBox { key })
    }

    /// A keyed digest of `data` for `purpose` (HMAC-SHA-256 under a key derived from
    /// this box's key), hex: equal data gives equal digests on this installation, and
    /// nobody without `secrets.key` can test guesses against it.
    pub fn fingerprint(&self, purpose: &str, data: &[u8]) -> Result<String, PkiError> {
        let derived = hmac_sha256(
            &self.key,
            format!("tafel fingerprint\n{purpose}").as_bytes(),
        )?;
        Ok(hex::encode(hmac_sha256(&derived, data)?))
    }

    /// A box with a given key (tests).
    pub fn from_key(key: [u8; 32]) -> SecretBox {
        SecretBox { key }
    }

    /// Encrypts `plain` without a binding (format 1; only tests and the conversion of
    /// old values use it).
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.seal_with(VERSION, &[VERSION], plain)
    }

    /// Encrypts `plain` for the place `binding` (e.g. `devices.unlock_token:<id>`):
    /// it opens only with the same binding.
    pub fn seal_for(&self, binding: &str, plain: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.seal_with(BOUND, &aad(binding), plain)
    }

    /// Decrypts what [`SecretBox::seal_for`] produced for the same `binding`.
    pub fn open_for(&self, binding: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_with(BOUND, &aad(binding), sealed)
    }

    /// Decrypts what [`SecretBox::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_with(VERSION, &[VERSION], sealed)
    }

    /// `version`, nonce, ciphertext, tag; `aad` authenticated alongside.
    fn seal_with(&self, version: u8, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            aad,
            plain,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + NONCE + ct.len() + TAG);
        out.push(version);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn open_with(&self, version: u8, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != version {
            return Err(OpenError);
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(Cipher::aes_256_gcm(), &self.key, Some(nonce), aad, ct, tag)
            .map_err(|_| OpenError)
    }
}

fn aad(binding: &str) -> Vec<u8> {
    let mut out = vec![BOUND];
    out.extend_from_slice(binding.as_bytes());
    out
}

/// The binding of a sealed value: its table and column, and its row.
pub fn binding(place: &str, row: &str) -> String {
    format!("{place}:{row}")
}

/// Runs each one-time conversion of secrets at rest that has not run yet: values sealed
/// before they were bound to their row are sealed again; enrollment links, unlock and
/// bootstrap tokens and profile payloads stored in the clear are sealed. Each step runs
/// in one transaction with its marker, once across all nodes.
pub fn migrate_at_rest(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<(), MigrateError> {
    for (name, step) in [
        ("bind_sealed_values", bind_sealed_values as Step),
        ("seal_enrollment_links", seal_enrollment_links as Step),
        ("seal_device_tokens", seal_device_tokens as Step),
        ("seal_profile_payloads", seal_profile_payloads as Step),
    ] {
        run_once(conn, name, |conn| step(conn, secrets))?;
    }
    Ok(())
}

type Step = fn(&mut crate::db::DbConn, &SecretBox) -> Result<usize, MigrateError>;

/// Why a conversion of secrets at rest failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// A stored value does not open (another secrets.key?).
    #[error("{0}: a stored secret does not open with this secrets.key")]
    Open(String),
    /// Sealing failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

fn run_once(
    conn: &mut crate::db::DbConn,
    name: &str,
    step: impl FnOnce(&mut crate::db::DbConn) -> Result<usize, MigrateError>,
) -> Result<(), MigrateError> {
    use crate::db::schema::secret_migrations;
    use diesel::prelude::*;
    let done: i64 = secret_migrations::table
        .find(name)
        .count()
        .get_result(conn)?;
    if done > 0 {
        return Ok(());
    }
    let result = conn.write_tx(|conn| -> Result<usize, MigrateError> {
        // The marker first: a second node doing the same waits here, then fails on it.
        diesel::insert_into(secret_migrations::table)
            .values((
                secret_migrations::name.eq(name),
                secret_migrations::done_at.eq(crate::db::now()),
            ))
            .execute(conn)?;
        step(conn)
    });
    match result {
        Ok(n) => {
            if n > 0 {
                tracing::info!(step = name, values = n, "secrets at rest converted");
            }
            Ok(())
        }
        // Another node ran it meanwhile.
        Err(MigrateError::Db(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Ok(()),
        Err(e) => Err(e),
    }
}

fn bind_sealed_values(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<usize, MigrateError> {
    use crate::db::schema::{ade_tokens, push_certificates, vpp_tokens};
    use diesel::prelude::*;
    let mut n = 0;
    let rebind = |place: &str, row: &str, sealed: &[u8]| -> Result<Vec<u8>, MigrateError> {
        let plain = secrets
            .open(sealed)
            .map_err(|_| MigrateError::Open(place.to_owned()))?;
        Ok(secrets.seal_for(&binding(place, row), &plain)?)
    };
    let rows: Vec<(String, Vec<u8>)> = push_certificates::table
        .select((push_certificates::tenant_id, push_certificates::key_sealed))
        .load(conn)?;
    for (id, sealed) in rows
        .into_iter()
        .filter(|(_, s)| s.first() == Some(&VERSION))
    {
        let v = rebind(places::PUSH_KEY, &id, &sealed)?;
        diesel::update(push_certificates::table.find(&id))
            .set(push_certificates::key_sealed.eq(v))
            .execute(conn)?;
        n += 1;
    }
    let rows: Vec<(String, Vec<u8>)> = vpp_tokens::table
        .select((vpp_tokens::id, vpp_tokens::token_sealed))
        .load(conn)?;
    for (id, sealed) in rows
        .into_iter()
        .filter(|(_, s)| s.first() == Some(&VERSION))
    {
        let v = rebind(places::CONTENT_TOKEN, &id, &sealed)?;
        diesel::update(vpp_tokens::table.find(&id))
            .set(vpp_tokens::token_sealed.eq(v))
            .execute(conn)?;
        n += 1;
    }
    let rows: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = ade_tokens::table
        .select((
            ade_tokens::id,
            ade_tokens::key_sealed,
            ade_tokens::tokens_sealed,
        ))
        .load(conn)?;
    for (id, key, tokens) in rows {
        if key.first() == Some(&VERSION) {
            let v = rebind(places::ADE_KEY, &id, &key)?;
            diesel::update(ade_tokens::table.find(&id))
                .set(ade_tokens::key_sealed.eq(v))
                .execute(conn)?;
            n += 1;
        }
        if let Some(t) = tokens.filter(|t| t.first() == Some(&VERSION)) {
            let v = rebind(places::ADE_TOKENS, &id, &t)?;
            diesel::update(ade_tokens::table.find(&id))
                .set(ade_tokens::tokens_sealed.eq(Some(v)))
                .execute(conn)?;
            n += 1;
        }
    }
    Ok(n)
}

fn seal_enrollment_links(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<usize, MigrateError> {
    use crate::db::schema::enrollment_tokens;
    use diesel::prelude::*;
    let rows: Vec<(String, String)> = enrollment_tokens::table
        .filter(enrollment_tokens::token_sealed.is_null())
        .select((enrollment_tokens::id, enrollment_tokens::token))
        .load(conn)?;
    for (id, secret) in &rows {
        diesel::update(enrollment_tokens::table.find(id))
            .set((
                enrollment_tokens::token.eq(crate::enrollment::tokens::link_hash(secret)),
                enrollment_tokens::token_sealed.eq(Some(
                    secrets.seal_for(&binding(places::ENROLLMENT_LINK, id), secret.as_bytes())?,
                )),
            ))
            .execute(conn)?;
    }
    Ok(rows.len())
}

fn seal_device_tokens(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<usize, MigrateError> {
    use crate::db::schema::devices;
    use diesel::prelude::*;
    type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = devices::table
        .filter(
            devices::unlock_token
                .is_not_null()
                .or(devices::bootstrap_token.is_not_null()),
        )
        .select((devices::id, devices::unlock_token, devices::bootstrap_token))
        .load(conn)?;
    for (id, unlock, bootstrap) in &rows {
        let unlock = match unlock {
            Some(u) => Some(secrets.seal_for(&binding(places::UNLOCK_TOKEN, id), u)?),
            None => None,
        };
        let bootstrap = match bootstrap {
            Some(b) => Some(secrets.seal_for(&binding(places::BOOTSTRAP_TOKEN, id), b)?),
            None => None,
        };
        diesel::update(devices::table.find(id))
            .set((
                devices::unlock_token.eq(unlock),
                devices::bootstrap_token.eq(bootstrap),
            ))
            .execute(conn)?;
    }
    Ok(rows.len())
}

fn seal_profile_payloads(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<usize, MigrateError> {
    use crate::db::schema::profiles;
    use diesel::prelude::*;
    let rows: Vec<(String, Vec<u8>)> = profiles::table
        .select((profiles::id, profiles::payload))
        .load(conn)?;
    for (id, payload) in &rows {
        diesel::update(profiles::table.find(id))
            .set(profiles::payload.eq(secrets.seal_for(&binding(places::PROFILE, id), payload)?))
            .execute(conn)?;
    }
    Ok(rows.len())
}

/// `secrets.key` does not fit the database (a restore with another installation's key).
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// Storage.
    #[error("{0}")]
    Db(#[from] diesel::result::Error),
    /// A stored value does not open.
    #[error("secrets.key does not open the secrets stored in the database ({0}): it belongs to another installation; use the secrets.key saved with this database")]
    WrongKey(String),
}

/// Opens the sealed values that every installation keeps (enrollment links, push
/// certificate keys, content and ADE tokens) with `secrets`: proof that this key file
/// belongs to this database. Returns how many values were opened.
pub fn check_key(
    conn: &mut crate::db::DbConn,
    secrets: &SecretBox,
) -> Result<usize, KeyCheckError> {
    use crate::db::schema::{ade_tokens, enrollment_tokens, push_certificates, vpp_tokens};
    use diesel::prelude::*;
    const SAMPLE: i64 = 100;
    let mut stored: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let rows: Vec<(String, Option<Vec<u8>>)> = enrollment_tokens::table
        .filter(enrollment_tokens::token_sealed.is_not_null())
        .select((enrollment_tokens::id, enrollment_tokens::token_sealed))
        .limit(SAMPLE)
        .load(conn)?;
    stored.extend(
        rows.into_iter()
            .filter_map(|(id, s)| s.map(|s| (places::ENROLLMENT_LINK, id, s))),
    );
    let rows: Vec<(String, Vec<u8>)> = push_certificates::table
        .select((push_certificates::tenant_id, push_certificates::key_sealed))
        .limit(SAMPLE)
        .load(conn)?;
    stored.extend(rows.into_iter().map(|(id, s)| (places::PUSH_KEY, id, s)));
    let rows: Vec<(String, Vec<u8>)> = vpp_tokens::table
        .select((vpp_tokens::id, vpp_tokens::token_sealed))
        .limit(SAMPLE)
        .load(conn)?;
    stored.extend(
        rows.into_iter()
            .map(|(id, s)| (places::CONTENT_TOKEN, id, s)),
    );
    let rows: Vec<(String, Vec<u8>)> = ade_tokens::table
        .select((ade_tokens::id, ade_tokens::key_sealed))
        .limit(SAMPLE)
        .load(conn)?;
    stored.extend(rows.into_iter().map(|(id, s)| (places::ADE_KEY, id, s)));
    for (place, row, sealed) in &stored {
        let opened = match sealed.first() {
            Some(&VERSION) => secrets.open(sealed).map(drop),
            _ => secrets.open_for(&binding(place, row), sealed).map(drop),
        };
        if opened.is_err() {
            return Err(KeyCheckError::WrongKey(format!("{place} of {row}")));
        }
    }
    Ok(stored.len())
}

/// The places sealed values live in (the first half of their binding).
pub mod places {
    /// `push_certificates.key_sealed`, by authority.
    pub const PUSH_KEY: &str = "push_certificates.key_sealed";
    /// `push_certificate_requests.key_sealed`, by authority: the key of a push
    /// certificate request, waiting for Apple's certificate.
    pub const PUSH_REQUEST_KEY: &str = "push_certificate_requests.key_sealed";
    /// `vpp_tokens.token_sealed`.
    pub const CONTENT_TOKEN: &str = "vpp_tokens.token_sealed";
    /// `ade_tokens.key_sealed`.
    pub const ADE_KEY: &str = "ade_tokens.key_sealed";
    /// `ade_tokens.tokens_sealed`.
    pub const ADE_TOKENS: &str = "ade_tokens.tokens_sealed";
    /// `enrollment_tokens.token_sealed`.
    pub const ENROLLMENT_LINK: &str = "enrollment_tokens.token_sealed";
    /// `devices.unlock_token`.
    pub const UNLOCK_TOKEN: &str = "devices.unlock_token";
    /// `devices.bootstrap_token`.
    pub const BOOTSTRAP_TOKEN: &str = "devices.bootstrap_token";
    /// `profiles.payload`.
    pub const PROFILE: &str = "profiles.payload";
    /// `commands.body` of a command that carries a device's secret (ClearPasscode's
    /// unlock token), by device.
    pub const COMMAND_BODY: &str = "commands.body";
}

/// A command body as the device gets it: stored as XML, or sealed for the device when it
/// carries that device's secret (a sealed value never starts with `<`).
pub fn command_body(
    secrets: &SecretBox,
    device_id: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, OpenError> {
    if body.first() == Some(&b'<') {
        Ok(body)
    } else {
        secrets.open_for(&binding(places::COMMAND_BODY, device_id), &body)
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>, PkiError> {
    let key = openssl::pkey::PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(data)?;
    Ok(signer.sign_to_vec()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let a = SecretBox::from_key([7; 32]);
        let sealed = a.seal(b"-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"));
        assert_eq!(a.open(&sealed).unwrap(), b"-----BEGIN PRIVATE KEY-----");
        assert!(SecretBox::from_key([8; 32]).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(a.open(&tampered).is_err());
    }

    #[test]
    fn fingerprints_are_stable_per_key_and_purpose_and_say_nothing_without_the_key() {
        let a = SecretBox::from_key([7; 32]);
        let b = SecretBox::from_key([8; 32]);
        let f = a.fingerprint("wifi", b"geheim").unwrap();
        assert_eq!(f, a.fingerprint("wifi", b"geheim").unwrap());
        assert_eq!(f.len(), 64);
        assert_ne!(f, a.fingerprint("wifi", b"geheim2").unwrap());
        assert_ne!(f, a.fingerprint("other", b"geheim").unwrap());
        assert_ne!(f, b.fingerprint("wifi", b"geheim").unwrap());
        assert_ne!(f, hex::encode(openssl::sha::sha256(b"geheim")));
    }

    #[test]
    fn a_bound_value_opens_only_in_its_own_row() {
        let b = SecretBox::from_key([7; 32]);
        let sealed = b.seal_for("devices.unlock_token:a", b"unlock").unwrap();
        assert_eq!(
            b.open_for("devices.unlock_token:a", &sealed).unwrap(),
            b"unlock"
        );
        assert!(b.open_for("devices.unlock_token:b", &sealed).is_err());
        assert!(b.open_for("devices.bootstrap_token:a", &sealed).is_err());
        assert!(b.open(&sealed).is_err(), "not an unbound value");
        let legacy = b.seal(b"x").unwrap();
        assert!(b.open_for("anything:a", &legacy).is_err());
    }

    #[test]
    fn the_key_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        assert!(SecretBox::create_if_missing(&path).unwrap());
        assert!(!SecretBox::create_if_missing(&path).unwrap());
        let a = SecretBox::load(&path).unwrap();
        let b = SecretBox::load(&path).unwrap();
        assert_eq!(b.open(&a.seal(b"x").unwrap()).unwrap(), b"x");
    }
}

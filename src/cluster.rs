//! What the nodes sharing one database must agree on, settled at start.
//!
//! - **Secrets every node needs** (the webhook signing secret) live sealed in the
//!   `shared_secrets` table: the first node makes and stores one, the others read it
//!   ([`shared_secret`]).
//! - **What cannot live in the database** is copied to every node: `secrets.key` (it
//!   seals the rest) and the CA's files (README: several nodes). [`check_node`] refuses a
//!   node whose `secrets.key` does not open the canary the first node sealed, or whose
//!   root CA is not the one the first node recorded (the devices trust only that one),
//!   naming the file to copy.

use std::path::{Path, PathBuf};

use diesel::prelude::*;

use crate::db::schema::shared_secrets;
use crate::db::{now, DbConn};
use crate::pki::PkiError;
use crate::secrets::{binding, SecretBox};

/// Where shared secrets are sealed (the first half of their binding).
const PLACE: &str = "shared_secrets.value_sealed";
/// Random bytes the first node sealed: a node whose `secrets.key` cannot open them has
/// another key.
const CANARY: &str = "canary";
/// The SHA-256 fingerprint of the root CA certificate the first node started with.
const ROOT_CA: &str = "ca.root";
/// The webhook signing secret.
pub const WEBHOOK_SECRET: &str = "webhook.secret";

/// Why this node may not serve with the others, or why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// This node's `secrets.key` is not the key the database's secrets are sealed with.
    #[error("{} does not open the secrets stored in the database: this node's secrets.key is not the one the database was set up with. Copy secrets.key from a node that runs (or from where the database was set up) to {} and start again (README: several nodes)", .path.display(), .path.display())]
    WrongSecretsKey {
        /// This node's key file.
        path: PathBuf,
    },
    /// This node's root CA is not the one the database's devices trust.
    #[error("{} is not the root CA this database's devices trust: copy root.pem, ca.pem, ca.key, scep-ra.pem, scep-ra.key, signing.pem and signing.key from a node that runs to {} and start again (README: several nodes)", .path.display(), .dir.display())]
    OtherCa {
        /// This node's root certificate.
        path: PathBuf,
        /// This node's certificate directory.
        dir: PathBuf,
    },
    /// Storage.
    #[error("checking what the nodes share: {0}")]
    Db(#[from] diesel::result::Error),
    /// Making or sealing a value.
    #[error("checking what the nodes share: {0}")]
    Pki(#[from] PkiError),
}

/// The value stored as `name`, opened: the one another node stored, or the one `make`
/// gives, stored now (when two nodes start at once, the first stored wins and both
/// return it). Fails with [`ClusterError::WrongSecretsKey`] when the stored value does
/// not open with `secrets` (`key_path` is named in the message).
pub fn shared_secret(
    conn: &mut DbConn,
    secrets: &SecretBox,
    key_path: &Path,
    name: &str,
    make: impl FnOnce() -> Result<Vec<u8>, PkiError>,
) -> Result<Vec<u8>, ClusterError> {
    let place = binding(PLACE, name);
    let sealed = match stored(conn, name)? {
        Some(s) => s,
        None => {
            let sealed = secrets.seal_for(&place, &make()?)?;
            let row = diesel::insert_into(shared_secrets::table)
                .values((
                    shared_secrets::name.eq(name),
                    shared_secrets::value_sealed.eq(&sealed),
                    shared_secrets::created_at.eq(now()),
                ))
                .on_conflict_do_nothing();
            crate::with_backend!(conn, |c| row.execute(c))?;
            // Another node may have been first: read what won.
            stored(conn, name)?.unwrap_or(sealed)
        }
    };
    secrets
        .open_for(&place, &sealed)
        .map_err(|_| ClusterError::WrongSecretsKey {
            path: key_path.to_owned(),
        })
}

fn stored(conn: &mut DbConn, name: &str) -> QueryResult<Option<Vec<u8>>> {
    shared_secrets::table
        .find(name)
        .select(shared_secrets::value_sealed)
        .first(conn)
        .optional()
}

/// Forgets which root CA the nodes trust, after `tafel init --force` made a new one on
/// purpose: the next node to start records its root. Returns whether one was recorded.
pub fn forget_root_ca(conn: &mut DbConn) -> QueryResult<bool> {
    let n = diesel::delete(
        crate::db::schema::shared_secrets::table
            .filter(crate::db::schema::shared_secrets::name.eq(ROOT_CA)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Checks at start that this node can serve with the others: its `secrets.key` opens
/// what the database holds, and its root CA is the one the database's devices trust.
/// The first node to start records both.
pub fn check_node(
    conn: &mut DbConn,
    secrets: &SecretBox,
    certs_dir: &Path,
    root: &openssl::x509::X509Ref,
) -> Result<(), ClusterError> {
    let paths = crate::pki::store::CertPaths::new(certs_dir);
    shared_secret(conn, secrets, &paths.secrets_key, CANARY, || {
        let mut canary = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut canary)?;
        Ok(canary)
    })?;
    let mine = root
        .digest(openssl::hash::MessageDigest::sha256())
        .map_err(PkiError::from)?
        .to_vec();
    let trusted = shared_secret(conn, secrets, &paths.secrets_key, ROOT_CA, || {
        Ok(mine.clone())
    })?;
    if trusted != mine {
        return Err(ClusterError::OtherCa {
            path: paths.root_cert,
            dir: certs_dir.to_owned(),
        });
    }
    Ok(())
}

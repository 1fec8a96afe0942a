//! The webhook secret: read from the configured file (mode 0600 enforced), or the one
//! all nodes share, stored sealed in the database and copied to
//! `<certs_dir>/webhook.secret` on every node. Its content never appears in logs or
//! `Debug` output.

use std::path::{Path, PathBuf};

use crate::pki::{check_key_permissions, write_key_file, PkiError};

/// The file generated when `webhooks.secret_file` is not set.
pub const DEFAULT_FILE: &str = "webhook.secret";
/// Shorter secrets are refused: they could be guessed.
const MIN_LEN: usize = 16;

/// What [`WebhookSecret::shared`] did with this node's copy of the shared secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCopy {
    /// Written where there was none.
    Created(PathBuf),
    /// It held another secret (made by this node before the nodes shared one) and now
    /// holds the shared one.
    Replaced(PathBuf),
}

/// The HMAC key: the secret file's content with surrounding whitespace removed.
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret every node signs with when `webhooks.secret_file` is not set: stored
    /// sealed in the database by the first node ([`crate::cluster`]), made from this
    /// node's `<certs_dir>/webhook.secret` when one is there from an earlier start (so
    /// receivers keep their secret), else 32 random bytes as hex. Every node keeps a copy
    /// in that file (0600) for the operator to give to the receiver; returns what
    /// happened to the file when it was written.
    pub fn shared(
        conn: &mut crate::db::DbConn,
        secrets: &crate::secrets::SecretBox,
        certs_dir: &Path,
    ) -> Result<(WebhookSecret, Option<SecretCopy>), crate::cluster::ClusterError> {
        let path = certs_dir.join(DEFAULT_FILE);
        let local = if path.exists() {
            Some(Self::load(&path)?)
        } else {
            None
        };
        let key_path = crate::pki::store::CertPaths::new(certs_dir).secrets_key;
        let local_bytes = local.as_ref().map(|l| l.0.clone());
        let shared = crate::cluster::shared_secret(
            conn,
            secrets,
            &key_path,
            crate::cluster::WEBHOOK_SECRET,
            || match local_bytes {
                Some(b) => Ok(b),
                None => {
                    let mut key = [0u8; 32];
                    openssl::rand::rand_bytes(&mut key)?;
                    Ok(hex::encode(key).into_bytes())
                }
            },
        )?;
        if shared.len() < MIN_LEN {
            return Err(PkiError::Malformed(format!(
                "the shared webhook secret has fewer than {MIN_LEN} characters"
            ))
            .into());
        }
        let copy = match &local {
            Some(l) if l.0 == shared => None,
            Some(_) => Some(SecretCopy::Replaced(path.clone())),
            None => Some(SecretCopy::Created(path.clone())),
        };
        if copy.is_some() {
            let mut text = shared.clone();
            text.push(b'\n');
            write_key_file(&path, &text, true)?;
        }
        Ok((WebhookSecret(shared), copy))
    }

    /// Reads a secret file, refusing loose permissions and short secrets.
    pub fn load(path: &Path) -> Result<WebhookSecret, PkiError> {
        check_key_permissions(path)?;
        let bytes = std::fs::read(path).map_err(|source| PkiError::Io {
            path: path.to_owned(),
            source,
        })?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_LEN {
            return Err(PkiError::Malformed(format!(
                "{}: a webhook secret needs at least {MIN_LEN} characters",
                path.display()
            )));
        }
        Ok(WebhookSecret(secret.to_vec()))
    }

    /// A secret given directly (tests).
    pub fn from_bytes(secret: &[u8]) -> WebhookSecret {
        WebhookSecret(secret.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_configured_secret_must_be_private_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.key");
        std::fs::write(&path, "  correct horse battery staple\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            WebhookSecret::load(&path),
            Err(PkiError::InsecurePermissions(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = WebhookSecret::load(&path).unwrap();
        assert_eq!(secret.as_bytes(), b"correct horse battery staple");
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            WebhookSecret::load(&path),
            Err(PkiError::Malformed(_))
        ));
    }
}

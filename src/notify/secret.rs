//! The webhook secret: read from the configured file (mode 0600 enforced), or
//! generated as `<certs_dir>/webhook.secret` on first start. Its content never
//! appears in logs or `Debug` output.

use std::path::{Path, PathBuf};

use crate::pki::{check_key_permissions, write_key_file, PkiError};

/// The file generated when `webhooks.secret_file` is not set.
pub const DEFAULT_FILE: &str = "webhook.secret";
/// Shorter secrets are refused: they could be guessed.
const MIN_LEN: usize = 16;

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

    /// Loads `configured`, or the default file in `certs_dir`, creating the latter
    /// (32 random bytes as hex, mode 0600) when missing. Returns the secret and the
    /// path of a file this call created.
    pub fn load_or_create(
        configured: Option<&Path>,
        certs_dir: &Path,
    ) -> Result<(WebhookSecret, Option<PathBuf>), PkiError> {
        if let Some(path) = configured {
            return Ok((Self::load(path)?, None));
        }
        let path = certs_dir.join(DEFAULT_FILE);
        let mut created = None;
        if !path.exists() {
            let mut key = [0u8; 32];
            openssl::rand::rand_bytes(&mut key)?;
            match write_key_file(&path, format!("{}\n", hex::encode(key)).as_bytes(), false) {
                Ok(()) => created = Some(path.clone()),
                // Another node sharing the directory was faster: use its secret.
                Err(PkiError::KeyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((Self::load(&path)?, created))
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
    fn the_default_secret_is_generated_private_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = WebhookSecret::load_or_create(None, dir.path()).unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        assert_eq!(created.as_deref(), Some(path.as_path()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(first.as_bytes().len(), 64);
        assert_eq!(format!("{first:?}"), "WebhookSecret(..)");
        let (again, created) = WebhookSecret::load_or_create(None, dir.path()).unwrap();
        assert!(created.is_none());
        assert_eq!(again.as_bytes(), first.as_bytes());
    }

    #[test]
    fn a_configured_secret_must_be_private_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.key");
        std::fs::write(&path, "  correct horse battery staple\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            WebhookSecret::load_or_create(Some(&path), dir.path()),
            Err(PkiError::InsecurePermissions(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (secret, created) = WebhookSecret::load_or_create(Some(&path), dir.path()).unwrap();
        assert!(created.is_none());
        assert_eq!(secret.as_bytes(), b"correct horse battery staple");
        assert!(!dir.path().join(DEFAULT_FILE).exists());
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            WebhookSecret::load(&path),
            Err(PkiError::Malformed(_))
        ));
    }
}

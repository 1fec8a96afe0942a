//! Encryption at rest for secrets kept in the database (push certificate keys,
//! Apple service tokens): AES-256-GCM under a key that lives in a file
//! (`certs/secrets.key`, mode 0600), never in the database and never in logs.
//! Every node of a PostgreSQL cluster needs the same key file.

use std::path::Path;

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use crate::pki::{check_key_permissions, write_key_file, PkiError};

/// Format version of sealed values.
const VERSION: u8 = 1;
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

    /// A box with a given key (tests).
    pub fn from_key(key: [u8; 32]) -> SecretBox {
        SecretBox { key }
    }

    /// Encrypts `plain`.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            &[VERSION],
            plain,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + NONCE + ct.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts what [`SecretBox::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            &[VERSION],
            ct,
            tag,
        )
        .map_err(|_| OpenError)
    }
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

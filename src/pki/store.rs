//! The `certs/` directory: creating the CA and server certificate (`tafel init`) and
//! loading them at start. Private keys are written 0600 and refused when readable by
//! others.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::{check_key_permissions, write_key_file, CertificateAuthority, PkiError};

/// Validity of the development CA, in days.
const CA_DAYS: u32 = 3650;
/// Validity of the server certificate, in days.
const SERVER_DAYS: u32 = 825;

/// The files in the certificate directory.
#[derive(Debug, Clone)]
pub struct CertPaths {
    /// Root CA certificate (public).
    pub ca_cert: PathBuf,
    /// Root CA key (0600, git-ignored).
    pub ca_key: PathBuf,
    /// Server certificate (public).
    pub server_cert: PathBuf,
    /// Server key (0600, git-ignored).
    pub server_key: PathBuf,
    /// Certificate that signs enrollment and configuration profiles (public).
    pub signing_cert: PathBuf,
    /// Its key (0600, git-ignored).
    pub signing_key: PathBuf,
    /// Key that seals secrets stored in the database (0600, git-ignored).
    pub secrets_key: PathBuf,
}

impl CertPaths {
    /// The files under `dir`.
    pub fn new(dir: &Path) -> Self {
        CertPaths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            signing_cert: dir.join("signing.pem"),
            signing_key: dir.join("signing.key"),
            secrets_key: dir.join("secrets.key"),
        }
    }
}

/// What `init` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Files written.
    pub created: Vec<PathBuf>,
    /// Files that existed and were kept.
    pub kept: Vec<PathBuf>,
}

/// The loaded certificates the server works with.
pub struct LoadedPki {
    /// Our CA (signs device identities and profiles).
    pub ca: CertificateAuthority,
    /// The HTTPS server certificate.
    pub server_cert: X509,
    /// Its key.
    pub server_key: PKey<Private>,
    /// Profile signing certificate.
    pub signing_cert: X509,
    /// Its key.
    pub signing_key: PKey<Private>,
    /// Seals secrets stored in the database.
    pub secrets: crate::secrets::SecretBox,
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_public(path: &Path, pem: &[u8]) -> Result<(), PkiError> {
    std::fs::write(path, pem).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Creates what is missing in `dir`: the CA, then a server certificate for `hosts`.
///
/// Idempotent: existing files are kept. A key is never replaced unless `force`, in
/// which case everything is created anew (devices enrolled under the old CA must
/// enroll again).
pub fn init(dir: &Path, hosts: &[String], force: bool) -> Result<InitReport, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let paths = CertPaths::new(dir);
    let mut report = InitReport::default();

    let ca_exists = paths.ca_cert.exists() || paths.ca_key.exists();
    let ca = if ca_exists && !force {
        let ca = CertificateAuthority::load(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?;
        report
            .kept
            .extend([paths.ca_cert.clone(), paths.ca_key.clone()]);
        ca
    } else {
        let ca = CertificateAuthority::generate("tafel Root CA", CA_DAYS)?;
        write_key_file(&paths.ca_key, &ca.key_pem()?, force)?;
        write_public(&paths.ca_cert, &ca.cert_pem()?)?;
        report
            .created
            .extend([paths.ca_cert.clone(), paths.ca_key.clone()]);
        ca
    };

    let server_exists = paths.server_cert.exists() || paths.server_key.exists();
    if server_exists && !force && !(report.created.contains(&paths.ca_cert)) {
        report
            .kept
            .extend([paths.server_cert.clone(), paths.server_key.clone()]);
    } else {
        if server_exists && !force {
            // A new CA with an old server key: refuse rather than overwrite the key.
            return Err(PkiError::KeyExists(paths.server_key.clone()));
        }
        let (cert, key) = ca.issue_server_cert(hosts, SERVER_DAYS)?;
        write_key_file(&paths.server_key, &key.private_key_to_pem_pkcs8()?, force)?;
        write_public(&paths.server_cert, &cert.to_pem()?)?;
        report
            .created
            .extend([paths.server_cert.clone(), paths.server_key.clone()]);
    }
    let ca_created = report.created.contains(&paths.ca_cert);
    let signing_exists = paths.signing_cert.exists() || paths.signing_key.exists();
    if signing_exists && !force && !ca_created {
        report
            .kept
            .extend([paths.signing_cert.clone(), paths.signing_key.clone()]);
    } else {
        if signing_exists && !force {
            return Err(PkiError::KeyExists(paths.signing_key.clone()));
        }
        let (cert, key) = ca.issue_signing_cert("tafel profile signing", SERVER_DAYS)?;
        write_key_file(&paths.signing_key, &key.private_key_to_pem_pkcs8()?, force)?;
        write_public(&paths.signing_cert, &cert.to_pem()?)?;
        report
            .created
            .extend([paths.signing_cert.clone(), paths.signing_key.clone()]);
    }
    if crate::secrets::SecretBox::create_if_missing(&paths.secrets_key)? {
        report.created.push(paths.secrets_key.clone());
    } else {
        report.kept.push(paths.secrets_key.clone());
    }
    Ok(report)
}

/// Loads the CA and server certificate from `dir`, checking key permissions.
pub fn load(dir: &Path) -> Result<LoadedPki, PkiError> {
    let paths = CertPaths::new(dir);
    check_key_permissions(&paths.ca_key)?;
    check_key_permissions(&paths.server_key)?;
    check_key_permissions(&paths.signing_key)?;
    let ca = CertificateAuthority::load(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?;
    let server_cert = X509::from_pem(&read(&paths.server_cert)?)?;
    let server_key = PKey::private_key_from_pem(&read(&paths.server_key)?)?;
    let signing_cert = X509::from_pem(&read(&paths.signing_cert)?)?;
    let signing_key = PKey::private_key_from_pem(&read(&paths.signing_key)?)?;
    let secrets = crate::secrets::SecretBox::load(&paths.secrets_key)?;
    Ok(LoadedPki {
        ca,
        server_cert,
        server_key,
        signing_cert,
        signing_key,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent_and_keeps_keys() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["mdm.example.org".to_owned(), "127.0.0.1".to_owned()];
        let first = init(dir.path(), &hosts, false).unwrap();
        assert_eq!(first.created.len(), 7);
        let key_before = std::fs::read(dir.path().join("ca.key")).unwrap();
        let second = init(dir.path(), &hosts, false).unwrap();
        assert!(second.created.is_empty());
        assert_eq!(second.kept.len(), 7);
        assert_eq!(
            key_before,
            std::fs::read(dir.path().join("ca.key")).unwrap()
        );
        let loaded = load(dir.path()).unwrap();
        loaded.ca.verify_issued(&loaded.server_cert, None).unwrap();

        let forced = init(dir.path(), &hosts, true).unwrap();
        assert_eq!(forced.created.len(), 6);
        assert_ne!(
            key_before,
            std::fs::read(dir.path().join("ca.key")).unwrap()
        );
    }

    #[test]
    fn a_lone_server_key_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.key"), b"old").unwrap();
        let err = init(dir.path(), &["localhost".to_owned()], false).unwrap_err();
        assert!(matches!(err, PkiError::KeyExists(_)), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("server.key")).unwrap(),
            b"old"
        );
    }
}

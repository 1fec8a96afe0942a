//! The `certs/` directory: creating the certificate hierarchy (`tafel init`), migrating a
//! single-root installation to it, renewing what tafel may renew online (`tafel certs
//! renew`), and loading it at start. Private keys are written 0600 and refused when
//! readable by others; the root key is kept encrypted.
//!
//! | file | what | key used by |
//! |---|---|---|
//! | `root.pem`, `root.key` | the root every profile installs as anchor | `tafel init` / `tafel certs renew issuing` only (offline-capable, encrypted) |
//! | `ca.pem`, `ca.key` | the issuing CA, name-constrained to `hosts` | the server: device identities, server, signing and RA certificates |
//! | `scep-ra.pem`, `scep-ra.key` | SCEP RA | the server: decrypts SCEP requests, signs CertReps |
//! | `server.pem`, `server.key` | TLS server certificate | the server |
//! | `signing.pem`, `signing.key` | signs enrollment and configuration profiles | the server |
//! | `secrets.key` | seals secrets in the database | the server |
//!
//! The root key's passphrase comes from `TAFEL_ROOT_PASSPHRASE`, else from
//! `root.passphrase` (0600), which `init` writes when it makes a root; production
//! moves `root.key` and its passphrase off the server (README).

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::X509;

use super::ca::{ISSUING_DAYS, MAX_SERVER_CERT_DAYS, ROOT_DAYS};
use super::{check_key_permissions, write_key_file, CertificateAuthority, PkiError};

/// Validity of the SCEP RA, server and signing certificates, in days.
const LEAF_DAYS: u32 = MAX_SERVER_CERT_DAYS;
/// Environment variable with the root key's passphrase.
pub const ROOT_PASSPHRASE_ENV: &str = "TAFEL_ROOT_PASSPHRASE";

const ROOT_NAME: &str = "tafel Root CA";
const ISSUING_NAME: &str = "tafel Issuing CA";
const RA_NAME: &str = "tafel SCEP RA";
const SIGNING_NAME: &str = "tafel profile signing";

/// The files in the certificate directory.
#[derive(Debug, Clone)]
pub struct CertPaths {
    /// Root certificate (public): the anchor profiles install.
    pub root_cert: PathBuf,
    /// Root key (encrypted PKCS #8, 0600).
    pub root_key: PathBuf,
    /// The root key's passphrase, when it lives beside it (0600).
    pub root_passphrase: PathBuf,
    /// Issuing CA certificate (public).
    pub ca_cert: PathBuf,
    /// Issuing CA key (0600, git-ignored).
    pub ca_key: PathBuf,
    /// SCEP RA certificate (public).
    pub ra_cert: PathBuf,
    /// SCEP RA key (0600).
    pub ra_key: PathBuf,
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
            root_cert: dir.join("root.pem"),
            root_key: dir.join("root.key"),
            root_passphrase: dir.join("root.passphrase"),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            ra_cert: dir.join("scep-ra.pem"),
            ra_key: dir.join("scep-ra.key"),
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
    /// A single-root installation became a hierarchy (its root stays the anchor).
    pub migrated: bool,
}

/// The loaded certificates the server works with.
pub struct LoadedPki {
    /// The issuing CA with its chain to the root and the SCEP RA.
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

fn cert_file(path: &Path) -> Result<X509, PkiError> {
    X509::from_pem(&read(path)?).map_err(|e| {
        PkiError::Malformed(format!("{} is not a PEM certificate: {e}", path.display()))
    })
}

fn key_file(path: &Path) -> Result<PKey<Private>, PkiError> {
    check_key_permissions(path)?;
    PKey::private_key_from_pem(&read(path)?)
        .map_err(|e| PkiError::Malformed(format!("{} is not a PEM key: {e}", path.display())))
}

/// The root key's passphrase: the environment, else the file beside the key.
fn root_passphrase(paths: &CertPaths) -> Result<Vec<u8>, PkiError> {
    if let Ok(p) = std::env::var(ROOT_PASSPHRASE_ENV) {
        if !p.is_empty() {
            return Ok(p.into_bytes());
        }
    }
    if paths.root_passphrase.exists() {
        check_key_permissions(&paths.root_passphrase)?;
        let text = read(&paths.root_passphrase)?;
        return Ok(String::from_utf8_lossy(&text).trim().as_bytes().to_vec());
    }
    Err(PkiError::Malformed(format!(
        "the root key is needed: set {ROOT_PASSPHRASE_ENV} (or bring {} back)",
        paths.root_passphrase.display()
    )))
}

/// A passphrase for a new root key: the environment's, or a random one written beside it.
fn new_root_passphrase(paths: &CertPaths, report: &mut InitReport) -> Result<Vec<u8>, PkiError> {
    if let Ok(p) = std::env::var(ROOT_PASSPHRASE_ENV) {
        if !p.is_empty() {
            return Ok(p.into_bytes());
        }
    }
    let mut raw = [0u8; 32];
    openssl::rand::rand_bytes(&mut raw)?;
    let pass = hex::encode(raw);
    write_key_file(&paths.root_passphrase, pass.as_bytes(), true)?;
    report.created.push(paths.root_passphrase.clone());
    Ok(pass.into_bytes())
}

fn write_root(
    paths: &CertPaths,
    root: &CertificateAuthority,
    report: &mut InitReport,
    force: bool,
) -> Result<(), PkiError> {
    let pass = new_root_passphrase(paths, report)?;
    let pem = root
        .key()
        .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), &pass)?;
    write_key_file(&paths.root_key, &pem, force)?;
    write_public(&paths.root_cert, &root.cert_pem()?)?;
    report
        .created
        .extend([paths.root_cert.clone(), paths.root_key.clone()]);
    Ok(())
}

/// Opens the root (needs its passphrase).
pub fn open_root(dir: &Path) -> Result<CertificateAuthority, PkiError> {
    let paths = CertPaths::new(dir);
    check_key_permissions(&paths.root_key)?;
    let pass = root_passphrase(&paths)?;
    let key =
        PKey::private_key_from_pem_passphrase(&read(&paths.root_key)?, &pass).map_err(|_| {
            PkiError::Malformed("the root key does not open with its passphrase".into())
        })?;
    CertificateAuthority::load(&read(&paths.root_cert)?, &key.private_key_to_pem_pkcs8()?)
}

fn write_issuing(
    paths: &CertPaths,
    issuing: &CertificateAuthority,
    report: &mut InitReport,
) -> Result<(), PkiError> {
    write_key_file(&paths.ca_key, &issuing.key_pem()?, true)?;
    write_public(&paths.ca_cert, &issuing.cert_pem()?)?;
    report
        .created
        .extend([paths.ca_cert.clone(), paths.ca_key.clone()]);
    Ok(())
}

fn write_leaf(
    cert_path: &Path,
    key_path: &Path,
    (cert, key): (X509, PKey<Private>),
    report: &mut InitReport,
) -> Result<(), PkiError> {
    write_key_file(key_path, &key.private_key_to_pem_pkcs8()?, true)?;
    write_public(cert_path, &cert.to_pem()?)?;
    report
        .created
        .extend([cert_path.to_owned(), key_path.to_owned()]);
    Ok(())
}

/// Is this certificate its own issuer (a root)?
fn self_signed(cert: &X509) -> bool {
    cert.issuer_name().to_der().ok() == cert.subject_name().to_der().ok()
        && cert
            .public_key()
            .and_then(|k| cert.verify(&k))
            .unwrap_or(false)
}

/// Creates what is missing in `dir`: the root (its key encrypted), the issuing CA
/// (name-constrained to `hosts`), the SCEP RA, a server certificate for `hosts` and the
/// profile-signing certificate; migrates a single-root installation (its root stays
/// the anchor every enrolled iPad trusts, its key gets encrypted, an issuing CA and an
/// RA are made under it; identities it issued stay valid).
///
/// Idempotent: existing files are kept. With `force` everything is created anew
/// (devices enrolled under the old root must enroll again).
pub fn init(dir: &Path, hosts: &[String], force: bool) -> Result<InitReport, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let paths = CertPaths::new(dir);
    let mut report = InitReport::default();

    // A lone leftover key is never overwritten without `force`.
    for (cert, key) in [
        (&paths.server_cert, &paths.server_key),
        (&paths.signing_cert, &paths.signing_key),
        (&paths.ra_cert, &paths.ra_key),
    ] {
        if !force && key.exists() && !cert.exists() {
            return Err(PkiError::KeyExists(key.clone()));
        }
    }

    // 1. The root.
    let mut root: Option<CertificateAuthority> = None;
    let legacy = !force && !paths.root_cert.exists() && paths.ca_cert.exists();
    if legacy {
        let single = CertificateAuthority::load(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?;
        if !self_signed(&X509::from_der(&single.cert().to_der()?)?) {
            return Err(PkiError::Malformed(format!(
                "{} is not a root but {} is missing",
                paths.ca_cert.display(),
                paths.root_cert.display()
            )));
        }
        write_root(&paths, &single, &mut report, true)?;
        report.migrated = true;
        root = Some(single);
    } else if force || !paths.root_cert.exists() {
        let fresh = CertificateAuthority::generate_root(ROOT_NAME, ROOT_DAYS)?;
        write_root(&paths, &fresh, &mut report, force)?;
        root = Some(fresh);
    } else {
        report.kept.push(paths.root_cert.clone());
        if paths.root_key.exists() {
            report.kept.push(paths.root_key.clone());
        }
    }
    let root_is_new = root.is_some() && !report.migrated;

    // 2. The issuing CA (needs the root key when it is made).
    let issuing = if root.is_some() || !paths.ca_cert.exists() {
        let root = match root {
            Some(r) => r,
            None => open_root(dir)?,
        };
        let issuing = root.issue_issuing_ca(ISSUING_NAME, ISSUING_DAYS, hosts, None)?;
        write_issuing(&paths, &issuing, &mut report)?;
        issuing
    } else {
        report
            .kept
            .extend([paths.ca_cert.clone(), paths.ca_key.clone()]);
        CertificateAuthority::load(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?
            .with_chain(vec![cert_file(&paths.root_cert)?])
    };
    let issuing_is_new = report.created.contains(&paths.ca_cert);

    // 3. The leaves: new under a new issuing CA (except after a migration, where the
    // old root's server and signing certificates stay valid until renewed), or when
    // missing.
    let renew_leaves = root_is_new || force;
    if renew_leaves || (issuing_is_new && !report.migrated) || !paths.ra_cert.exists() {
        write_leaf(
            &paths.ra_cert,
            &paths.ra_key,
            issuing.issue_ra_cert(RA_NAME, LEAF_DAYS)?,
            &mut report,
        )?;
    } else {
        report
            .kept
            .extend([paths.ra_cert.clone(), paths.ra_key.clone()]);
    }
    if renew_leaves || !paths.server_cert.exists() {
        write_leaf(
            &paths.server_cert,
            &paths.server_key,
            issuing.issue_server_cert(hosts, LEAF_DAYS)?,
            &mut report,
        )?;
    } else {
        report
            .kept
            .extend([paths.server_cert.clone(), paths.server_key.clone()]);
    }
    if renew_leaves || !paths.signing_cert.exists() {
        write_leaf(
            &paths.signing_cert,
            &paths.signing_key,
            issuing.issue_signing_cert(SIGNING_NAME, LEAF_DAYS)?,
            &mut report,
        )?;
    } else {
        report
            .kept
            .extend([paths.signing_cert.clone(), paths.signing_key.clone()]);
    }
    if crate::secrets::SecretBox::create_if_missing(&paths.secrets_key)? {
        report.created.push(paths.secrets_key.clone());
    } else {
        report.kept.push(paths.secrets_key.clone());
    }
    Ok(report)
}

/// What `tafel certs renew` may renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewable {
    /// The TLS server certificate (with the online issuing CA).
    Server,
    /// The profile-signing certificate (with the online issuing CA).
    Signing,
    /// The SCEP RA certificate (with the online issuing CA).
    Ra,
    /// The issuing CA itself: certified again by the root (its key, so everything it
    /// issued stays valid); needs the root key.
    Issuing,
}

/// Renews one certificate in `dir`; returns the files written. Running servers pick
/// the new files up when they restart.
pub fn renew(dir: &Path, hosts: &[String], what: Renewable) -> Result<Vec<PathBuf>, PkiError> {
    let paths = CertPaths::new(dir);
    let mut report = InitReport::default();
    let issuing = CertificateAuthority::load(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?
        .with_chain(vec![cert_file(&paths.root_cert)?]);
    match what {
        Renewable::Server => write_leaf(
            &paths.server_cert,
            &paths.server_key,
            issuing.issue_server_cert(hosts, LEAF_DAYS)?,
            &mut report,
        )?,
        Renewable::Signing => write_leaf(
            &paths.signing_cert,
            &paths.signing_key,
            issuing.issue_signing_cert(SIGNING_NAME, LEAF_DAYS)?,
            &mut report,
        )?,
        Renewable::Ra => write_leaf(
            &paths.ra_cert,
            &paths.ra_key,
            issuing.issue_ra_cert(RA_NAME, LEAF_DAYS)?,
            &mut report,
        )?,
        Renewable::Issuing => {
            let root = open_root(dir)?;
            let key = key_file(&paths.ca_key)?;
            let renewed = root.issue_issuing_ca(ISSUING_NAME, ISSUING_DAYS, hosts, Some(key))?;
            write_issuing(&paths, &renewed, &mut report)?;
        }
    }
    Ok(report.created)
}

/// Loads the hierarchy from `dir`, checking key permissions and that the issuing CA
/// chains to the root.
pub fn load(dir: &Path) -> Result<LoadedPki, PkiError> {
    let paths = CertPaths::new(dir);
    check_key_permissions(&paths.ca_key)?;
    let root = cert_file(&paths.root_cert)?;
    let issuing_cert = cert_file(&paths.ca_cert)?;
    let root_key = root.public_key()?;
    if !issuing_cert.verify(&root_key).unwrap_or(false) {
        return Err(PkiError::Malformed(format!(
            "{} was not issued by {}",
            paths.ca_cert.display(),
            paths.root_cert.display()
        )));
    }
    let ca = CertificateAuthority::load(&issuing_cert.to_pem()?, &read(&paths.ca_key)?)?
        .with_chain(vec![root])
        .with_ra(cert_file(&paths.ra_cert)?, key_file(&paths.ra_key)?);
    let server_cert = cert_file(&paths.server_cert)?;
    let server_key = key_file(&paths.server_key)?;
    let signing_cert = cert_file(&paths.signing_cert)?;
    let signing_key = key_file(&paths.signing_key)?;
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

/// The certificates in `dir` by name, for expiry reports (the root's public part only).
pub fn certificates(dir: &Path) -> Result<Vec<(&'static str, X509)>, PkiError> {
    let paths = CertPaths::new(dir);
    Ok(vec![
        ("root", cert_file(&paths.root_cert)?),
        ("issuing", cert_file(&paths.ca_cert)?),
        ("scep_ra", cert_file(&paths.ra_cert)?),
        ("server", cert_file(&paths.server_cert)?),
        ("signing", cert_file(&paths.signing_cert)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent_and_keeps_keys() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["mdm.example.org".to_owned(), "127.0.0.1".to_owned()];
        let first = init(dir.path(), &hosts, false).unwrap();
        // root (+ passphrase), issuing CA, RA, server, signing: 11 files and the secrets key.
        assert_eq!(first.created.len(), 12, "{first:?}");
        let key_before = std::fs::read(dir.path().join("ca.key")).unwrap();
        let second = init(dir.path(), &hosts, false).unwrap();
        assert!(second.created.is_empty(), "{second:?}");
        assert_eq!(second.kept.len(), 11);
        assert_eq!(
            key_before,
            std::fs::read(dir.path().join("ca.key")).unwrap()
        );
        let loaded = load(dir.path()).unwrap();
        loaded.ca.verify_issued(&loaded.server_cert, None).unwrap();
        // The root key is kept encrypted.
        let root_key = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
        assert!(root_key.contains("ENCRYPTED PRIVATE KEY"), "{root_key}");

        let forced = init(dir.path(), &hosts, true).unwrap();
        assert_eq!(forced.created.len(), 11, "everything but the secrets key");
        assert_ne!(
            key_before,
            std::fs::read(dir.path().join("ca.key")).unwrap()
        );
    }

    #[test]
    fn a_single_root_directory_becomes_a_hierarchy_and_its_identities_stay_valid() {
        use openssl::x509::X509Name;
        // What tafel wrote before the hierarchy: one root for everything.
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["mdm.school.example".to_owned()];
        let legacy = CertificateAuthority::generate("tafel Root CA", 3650).unwrap();
        write_key_file(
            &dir.path().join("ca.key"),
            &legacy.key_pem().unwrap(),
            false,
        )
        .unwrap();
        std::fs::write(dir.path().join("ca.pem"), legacy.cert_pem().unwrap()).unwrap();
        let (server, server_key) = legacy.issue_server_cert(&hosts, 825).unwrap();
        write_key_file(
            &dir.path().join("server.key"),
            &server_key.private_key_to_pem_pkcs8().unwrap(),
            false,
        )
        .unwrap();
        std::fs::write(dir.path().join("server.pem"), server.to_pem().unwrap()).unwrap();
        let (signing, signing_key) = legacy.issue_signing_cert("signing", 825).unwrap();
        write_key_file(
            &dir.path().join("signing.key"),
            &signing_key.private_key_to_pem_pkcs8().unwrap(),
            false,
        )
        .unwrap();
        std::fs::write(dir.path().join("signing.pem"), signing.to_pem().unwrap()).unwrap();
        let device_key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let public = PKey::public_key_from_der(&device_key.public_key_to_der().unwrap()).unwrap();
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_text("CN", "enrolled before").unwrap();
        let old_identity = legacy
            .issue_client_cert(&public, &name.build(), 365)
            .unwrap();

        let report = init(dir.path(), &hosts, false).unwrap();
        assert!(report.migrated, "{report:?}");
        // The old root is the root: what every enrolled iPad trusts stays.
        assert_eq!(
            std::fs::read(dir.path().join("root.pem")).unwrap(),
            legacy.cert_pem().unwrap()
        );
        let root_key = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
        assert!(root_key.contains("ENCRYPTED PRIVATE KEY"));
        assert!(open_root(dir.path()).unwrap().key().public_eq(legacy.key()));
        // The server and signing certificates stay until renewed.
        assert_eq!(
            std::fs::read(dir.path().join("server.pem")).unwrap(),
            server.to_pem().unwrap()
        );
        let loaded = load(dir.path()).unwrap();
        assert!(loaded.ca.has_ra());
        assert_ne!(
            sha256_of(loaded.ca.cert()),
            sha256_of(legacy.cert()),
            "a new issuing CA"
        );
        assert_eq!(sha256_of(loaded.ca.anchor()), sha256_of(legacy.cert()));
        loaded
            .ca
            .verify_device_identity(&old_identity, None)
            .unwrap();
        loaded.ca.verify_issued(&loaded.server_cert, None).unwrap();
        // Renewing online leaves the root alone.
        let renewed = renew(dir.path(), &hosts, Renewable::Server).unwrap();
        assert_eq!(renewed.len(), 2);
        let loaded = load(dir.path()).unwrap();
        loaded.ca.verify_issued(&loaded.server_cert, None).unwrap();
        assert_ne!(sha256_of(&loaded.server_cert), sha256_of(&server));
        // And the issuing CA renews with its key: identities it issued stay valid.
        let issued = loaded
            .ca
            .issue_client_cert(&public, loaded.ca.cert().subject_name(), 30)
            .unwrap();
        renew(dir.path(), &hosts, Renewable::Issuing).unwrap();
        let again = load(dir.path()).unwrap();
        again.ca.verify_device_identity(&issued, None).unwrap();
        again
            .ca
            .verify_device_identity(&old_identity, None)
            .unwrap();
        // A second init changes nothing.
        let second = init(dir.path(), &hosts, false).unwrap();
        assert!(second.created.is_empty() && !second.migrated, "{second:?}");
    }

    fn sha256_of(cert: &openssl::x509::X509Ref) -> String {
        super::super::sha256_fingerprint(cert).unwrap()
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

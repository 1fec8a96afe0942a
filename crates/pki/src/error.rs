//! The error type of the `pki` module.

use std::path::PathBuf;

/// Everything that can go wrong with certificates, keys and CMS messages.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// OpenSSL itself failed (out of memory, unsupported algorithm, …).
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file we were working on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CMS signature does not match the signed content or signer.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The certificate does not chain to our CA.
    #[error("untrusted certificate: {0}")]
    UntrustedCertificate(String),
    /// The certificate (or one in its chain) has expired.
    #[error("certificate has expired")]
    Expired,
    /// The certificate (or one in its chain) is not valid yet.
    #[error("certificate is not yet valid")]
    NotYetValid,
    /// Input could not be parsed or is structurally unacceptable.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// Refused to overwrite an existing key file.
    #[error("{} already exists; refusing to overwrite a key", .0.display())]
    KeyExists(PathBuf),
    /// A private key file is readable or writable by group or others.
    #[error("{} is accessible by group or others; chmod 600 it", .0.display())]
    InsecurePermissions(PathBuf),
}

/// `Result` with [`PkiError`] as the default error.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

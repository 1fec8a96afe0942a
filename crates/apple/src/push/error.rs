//! The error type of the `push` module.

/// Everything that can go wrong loading a push certificate or building the APNs client.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// OpenSSL itself failed (out of memory, unsupported algorithm, …).
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// The certificate or key could not be parsed.
    #[error("malformed push certificate: {0}")]
    Malformed(String),
    /// The certificate has no subject UID of the form `com.apple.mgmt.…`.
    #[error("not an MDM push certificate: {0}")]
    NotMdmPushCertificate(String),
    /// The private key does not belong to the certificate.
    #[error("the private key does not belong to the push certificate")]
    KeyMismatch,
    /// The PEM private key is protected by a passphrase.
    #[error(
        "the private key is encrypted; upload it without a passphrase \
         (openssl pkey -in key.pem -out key-plain.pem)"
    )]
    EncryptedKey,
    /// The PKCS #12 password is wrong.
    #[error("wrong password for the .p12 file")]
    WrongPassword,
    /// The `.p12` uses legacy encryption (RC2/3DES) and OpenSSL's legacy provider is missing.
    #[error(
        "this .p12 file uses legacy RC2 encryption that this server's OpenSSL cannot read \
         (legacy provider not available); upload the certificate and key as PEM instead \
         (openssl pkcs12 -legacy -in push.p12 -nodes -out push.pem)"
    )]
    LegacyPkcs12,
    /// The certificate does not chain to the trusted push CA (Apple's, or the configured anchors).
    #[error(
        "the push certificate was issued by \"{issuer}\" and does not chain to Apple's push CA \
         ({reason}); expected {expected}. Upload the certificate Apple's Push Certificates \
         Portal (identity.apple.com/pushcert) issued; only for tests and simulators may the \
         operator set push.allow_untrusted_certificates"
    )]
    Untrusted {
        /// The certificate's issuer (common name).
        issuer: String,
        /// What a trusted certificate is issued by.
        expected: String,
        /// OpenSSL's reason.
        reason: String,
    },
    /// The HTTP client could not be built (bad root certificate, TLS setup).
    #[error("apns client: {0}")]
    Client(#[from] reqwest::Error),
}

/// `Result` with [`PushError`] as the default error.
pub type Result<T, E = PushError> = std::result::Result<T, E>;

//! The MDM push certificate from Apple's Push Certificates Portal: certificate, key, topic and expiry.

use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::provider::Provider;
use openssl::x509::{X509Ref, X509};

use super::error::{PushError, Result};

/// Every MDM push topic starts with this (`com.apple.mgmt.External.<uuid>`);
/// an app's push certificate carries a bundle id instead and cannot wake devices.
pub const MDM_TOPIC_PREFIX: &str = "com.apple.mgmt.";

/// An MDM push certificate with its private key.
pub struct PushCertificate {
    /// The certificate Apple issued.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
    /// The push topic: the subject's UID, e.g. `com.apple.mgmt.External.<uuid>`.
    pub topic: String,
    /// When the certificate expires; pushes fail after this until the admin renews it.
    pub not_after: DateTime<Utc>,
}

impl fmt::Debug for PushCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("PushCertificate")
            .field("topic", &self.topic)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl PushCertificate {
    /// Loads a certificate and its unencrypted private key from PEM.
    ///
    /// Both may live in one file: pass the same bytes twice, or an empty
    /// `key_pem`. When `cert_pem` holds a chain, the certificate that belongs to
    /// the key is taken, wherever it stands in the file.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let key_pem = if key_pem.iter().all(u8::is_ascii_whitespace) {
            cert_pem
        } else {
            key_pem
        };
        let key = private_key_from_pem(key_pem)?;
        let certs = X509::stack_from_pem(cert_pem)
            .map_err(|e| PushError::Malformed(format!("certificate is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(PushError::Malformed("no PEM certificate found".into()));
        }
        let mut matching = None;
        for cert in certs {
            if cert.public_key()?.public_eq(&key) {
                matching = Some(cert);
                break;
            }
        }
        let cert = matching.ok_or(PushError::KeyMismatch)?;
        Self::new(cert, key)
    }

    /// Loads a `.p12` export (Keychain Access, the Push Certificates Portal flow).
    ///
    /// OpenSSL 3 only reads the RC2 encryption of older exports with its
    /// `legacy` provider, which is loaded on first need; where it is missing the
    /// error asks the admin to upload PEM instead.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self> {
        let p12 = Pkcs12::from_der(der)
            .map_err(|e| PushError::Malformed(format!("not a PKCS #12 file: {e}")))?;
        let parsed = match p12.parse2(password) {
            Ok(parsed) => parsed,
            Err(e) if is_mac_failure(&e) => return Err(PushError::WrongPassword),
            Err(first) => {
                if !load_legacy_provider() {
                    return Err(if first.to_string().contains("unsupported") {
                        PushError::LegacyPkcs12
                    } else {
                        PushError::Malformed(format!("cannot read the .p12 file: {first}"))
                    });
                }
                p12.parse2(password).map_err(|e| {
                    if is_mac_failure(&e) {
                        PushError::WrongPassword
                    } else {
                        PushError::Malformed(format!("cannot read the .p12 file: {e}"))
                    }
                })?
            }
        };
        let key = parsed
            .pkey
            .ok_or_else(|| PushError::Malformed("the .p12 file holds no private key".into()))?;
        let cert = parsed
            .cert
            .ok_or_else(|| PushError::Malformed("the .p12 file holds no certificate".into()))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(PushError::KeyMismatch);
        }
        Self::new(cert, key)
    }

    fn new(cert: X509, key: PKey<Private>) -> Result<Self> {
        let topic = topic_of(&cert)?;
        let not_after = asn1_to_chrono(cert.not_after())?;
        Ok(Self {
            cert,
            key,
            topic,
            not_after,
        })
    }

    /// True when the certificate expires within `days` days from now (or already has).
    pub fn expires_within(&self, days: u32) -> bool {
        self.expires_before(Utc::now() + TimeDelta::days(i64::from(days)))
    }

    /// True when the certificate is no longer valid at `when`.
    pub fn expires_before(&self, when: DateTime<Utc>) -> bool {
        self.not_after <= when
    }
}

/// The push topic of `cert`: its subject UID (OID 0.9.2342.19200300.100.1.1),
/// which must start with [`MDM_TOPIC_PREFIX`].
pub fn topic_of(cert: &X509Ref) -> Result<String> {
    let entry = cert
        .subject_name()
        .entries_by_nid(Nid::USERID)
        .next()
        .ok_or_else(|| PushError::NotMdmPushCertificate("the subject has no UID (topic)".into()))?;
    let topic = entry.data().to_string().map_err(|e| {
        PushError::NotMdmPushCertificate(format!("the subject UID is not text: {e}"))
    })?;
    // The topic travels in the `apns-topic` header.
    if !topic.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PushError::NotMdmPushCertificate(format!(
            "topic {topic:?} is not printable ASCII"
        )));
    }
    if !topic.starts_with(MDM_TOPIC_PREFIX) {
        return Err(PushError::NotMdmPushCertificate(format!(
            "topic {topic:?} does not start with {MDM_TOPIC_PREFIX}; is this an app's push certificate?"
        )));
    }
    Ok(topic)
}

/// Reads an unencrypted private key, refusing encrypted ones with a clear error.
fn private_key_from_pem(pem: &[u8]) -> Result<PKey<Private>> {
    // `PKey::private_key_from_pem` would let OpenSSL ask for a passphrase on the
    // controlling terminal; a callback that refuses keeps a server from blocking.
    PKey::private_key_from_pem_callback(pem, |_| Err(ErrorStack::get())).map_err(|e| {
        if String::from_utf8_lossy(pem).contains("ENCRYPTED") {
            PushError::EncryptedKey
        } else {
            PushError::Malformed(format!("no unencrypted PEM private key found: {e}"))
        }
    })
}

/// OpenSSL reports a wrong PKCS #12 password as a MAC verification failure.
fn is_mac_failure(e: &ErrorStack) -> bool {
    e.errors()
        .iter()
        .any(|e| e.reason().is_some_and(|r| r.contains("mac verify failure")))
}

/// Loads OpenSSL 3's `legacy` provider (RC2, 3DES-era PBEs) once per process,
/// keeping the default provider; false when it is not installed.
fn load_legacy_provider() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| match Provider::try_load(None, "legacy", true) {
        Ok(provider) => {
            // Dropping the handle would unload it; it is meant to stay for the
            // life of the process (`Provider` is not `Send`, so it cannot sit in a static).
            std::mem::forget(provider);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "OpenSSL legacy provider not available; legacy .p12 files cannot be read");
            false
        }
    })
}

fn asn1_to_chrono(time: &Asn1TimeRef) -> Result<DateTime<Utc>> {
    let diff = Asn1Time::from_unix(0)?.diff(time)?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| PushError::Malformed("certificate notAfter is out of range".into()))
}

#[cfg(test)]
mod tests {
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::symm::Cipher;
    use openssl::x509::{X509Builder, X509Name};

    use super::*;

    const TOPIC: &str = "com.apple.mgmt.External.test-topic";

    /// A self-signed certificate with `uid` as subject UID, valid for `days`.
    fn certificate(uid: Option<&str>, days: u32) -> (X509, PKey<Private>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509Name::builder().unwrap();
        if let Some(uid) = uid {
            name.append_entry_by_nid(Nid::USERID, uid).unwrap();
        }
        name.append_entry_by_nid(Nid::COMMONNAME, "APSP:test")
            .unwrap();
        let name = name.build();
        let mut builder = X509Builder::new().unwrap();
        builder.set_version(2).unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        (builder.build(), key)
    }

    fn pems(cert: &X509, key: &PKey<Private>) -> (Vec<u8>, Vec<u8>) {
        (
            cert.to_pem().unwrap(),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
    }

    #[test]
    fn the_admin_uploads_certificate_and_key_as_pem() {
        let (cert, key) = certificate(Some(TOPIC), 365);
        let (cert_pem, key_pem) = pems(&cert, &key);
        let push = PushCertificate::from_pem(&cert_pem, &key_pem).unwrap();
        assert_eq!(push.topic, TOPIC);
        let days_left = (push.not_after - Utc::now()).num_days();
        assert!((363..=365).contains(&days_left), "{days_left}");
        assert!(!push.expires_within(30));
        assert!(push.expires_within(400));
        assert!(!format!("{push:?}").contains("PRIVATE"));
    }

    #[test]
    fn certificate_and_key_may_share_one_file_in_any_order() {
        let (cert, key) = certificate(Some(TOPIC), 30);
        let (cert_pem, key_pem) = pems(&cert, &key);
        let (other, _) = certificate(Some(TOPIC), 30);
        // Key first, then an unrelated certificate, then ours.
        let bundle = [key_pem, other.to_pem().unwrap(), cert_pem].concat();
        let push = PushCertificate::from_pem(&bundle, b"").unwrap();
        assert_eq!(push.cert.to_der().unwrap(), cert.to_der().unwrap());
        let push = PushCertificate::from_pem(&bundle, &bundle).unwrap();
        assert_eq!(push.topic, TOPIC);
    }

    #[test]
    fn a_certificate_without_uid_is_not_a_push_certificate() {
        let (cert, key) = certificate(None, 30);
        let (cert_pem, key_pem) = pems(&cert, &key);
        let err = PushCertificate::from_pem(&cert_pem, &key_pem).unwrap_err();
        assert!(matches!(err, PushError::NotMdmPushCertificate(_)), "{err}");
        assert!(err.to_string().contains("not an MDM push certificate"));
    }

    #[test]
    fn an_apps_push_certificate_is_refused() {
        let (cert, key) = certificate(Some("com.example.chat"), 30);
        let (cert_pem, key_pem) = pems(&cert, &key);
        let err = PushCertificate::from_pem(&cert_pem, &key_pem).unwrap_err();
        assert!(matches!(err, PushError::NotMdmPushCertificate(_)), "{err}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = certificate(Some(TOPIC), 30);
        let (_, other_key) = certificate(Some(TOPIC), 30);
        let (cert_pem, key_pem) = pems(&cert, &other_key);
        let err = PushCertificate::from_pem(&cert_pem, &key_pem).unwrap_err();
        assert!(matches!(err, PushError::KeyMismatch), "{err}");
    }

    #[test]
    fn an_encrypted_key_is_refused_without_asking_a_terminal() {
        let (cert, key) = certificate(Some(TOPIC), 30);
        let encrypted = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"secret")
            .unwrap();
        let err = PushCertificate::from_pem(&cert.to_pem().unwrap(), &encrypted).unwrap_err();
        assert!(matches!(err, PushError::EncryptedKey), "{err}");
    }

    #[test]
    fn a_modern_p12_export_round_trips() {
        let (cert, key) = certificate(Some(TOPIC), 30);
        let der = Pkcs12::builder()
            .name("MDM push")
            .pkey(&key)
            .cert(&cert)
            .key_algorithm(Nid::AES_256_CBC)
            .cert_algorithm(Nid::AES_256_CBC)
            .mac_md(MessageDigest::sha256())
            .build2("s3cret")
            .unwrap()
            .to_der()
            .unwrap();
        let push = PushCertificate::from_pkcs12(&der, "s3cret").unwrap();
        assert_eq!(push.topic, TOPIC);
        assert_eq!(push.cert.to_der().unwrap(), cert.to_der().unwrap());
        assert!(push.key.public_eq(&key));

        let err = PushCertificate::from_pkcs12(&der, "wrong").unwrap_err();
        assert!(matches!(err, PushError::WrongPassword), "{err}");
        let err = PushCertificate::from_pkcs12(b"not der", "s3cret").unwrap_err();
        assert!(matches!(err, PushError::Malformed(_)), "{err}");
    }

    /// Keychain Access and older `openssl pkcs12 -export` write RC2-40 certificate bags.
    #[test]
    fn a_legacy_rc2_p12_loads_or_asks_for_pem() {
        let (cert, key) = certificate(Some(TOPIC), 30);
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("push.pem");
        let p12 = dir.path().join("push.p12");
        let (cert_pem, key_pem) = pems(&cert, &key);
        std::fs::write(&pem, [cert_pem, key_pem].concat()).unwrap();
        let made = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-legacy", "-passout", "pass:pw", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&p12)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no openssl CLI with -legacy to make an RC2 .p12");
            return;
        }
        match PushCertificate::from_pkcs12(&std::fs::read(&p12).unwrap(), "pw") {
            Ok(push) => assert_eq!(push.topic, TOPIC),
            Err(err @ PushError::LegacyPkcs12) => assert!(err.to_string().contains("PEM")),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

//! Whether a push certificate really comes from Apple: its chain to Apple's push CA.
//!
//! Apple's Push Certificates Portal (identity.apple.com/pushcert) issues MDM push
//! certificates under "Apple Application Integration 2 Certification Authority"
//! ([`APPLE_AAI2_CA_PEM`]), which Apple Root CA signed
//! ([`crate::ade::machine_info::APPLE_ROOT_CA_PEM`]). The `.pem` file Apple hands out
//! holds only the leaf, so the intermediate is built in and offered for path
//! building; it is not self-signed and never becomes an anchor itself.
//!
//! A self-signed certificate with an invented topic cannot wake a single iPad, but an
//! upload of one would silently replace a working certificate; tafel refuses it unless
//! the operator allows untrusted push certificates (simulators, tests).

use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Ref, X509StoreContext, X509};

use super::error::{PushError, Result};

/// "Apple Application Integration 2 Certification Authority" (2013–2028), issued by
/// Apple Root CA: the issuer of MDM push certificates. From Apple's certificate
/// authority page (`AppleAAI2CA.cer`); SHA-256 fingerprint
/// `D3:49:6F:4B:73:CD:67:AA:B9:F2:FC:B1:D5:AA:41:F8:DC:45:77:69:C4:55:C7:92:B7:0D:DB:19:E9:20:23:D6`
/// (checked by a unit test, as is its signature by Apple Root CA).
pub const APPLE_AAI2_CA_PEM: &[u8] = include_bytes!("apple_aai2_ca.pem");

/// What the operator is told to expect when a certificate does not chain.
pub const EXPECTED_ISSUER: &str =
    "Apple Application Integration 2 Certification Authority (under Apple Root CA)";

/// The trust anchors push certificates must chain to, and the intermediates offered.
pub struct PushTrust {
    store: X509Store,
    intermediates: Vec<X509>,
    /// Says what is expected, in refusals.
    expected: String,
}

impl std::fmt::Debug for PushTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTrust")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl PushTrust {
    /// Apple's push CA: Apple Root CA as the anchor, AAI2 as the intermediate.
    pub fn apple() -> Result<Self> {
        let root = X509::from_pem(crate::ade::machine_info::APPLE_ROOT_CA_PEM)?;
        let aai2 = X509::from_pem(APPLE_AAI2_CA_PEM)?;
        Self::build(vec![root], vec![aai2], EXPECTED_ISSUER.to_owned())
    }

    /// Other anchors (PEM, one or more certificates each), e.g. a test CA standing in
    /// for Apple's. Apple's intermediate is still offered.
    pub fn with_anchors(anchors_pem: &[Vec<u8>]) -> Result<Self> {
        let mut anchors = Vec::new();
        for pem in anchors_pem {
            anchors.extend(X509::stack_from_pem(pem).map_err(|e| {
                PushError::Malformed(format!("push certificate anchor is not PEM: {e}"))
            })?);
        }
        if anchors.is_empty() {
            return Err(PushError::Malformed(
                "no certificate in the push certificate anchors".into(),
            ));
        }
        let expected = anchors
            .iter()
            .map(|a| format!("a certificate issued under \"{}\"", common_name(a)))
            .collect::<Vec<_>>()
            .join(" or ");
        let aai2 = X509::from_pem(APPLE_AAI2_CA_PEM)?;
        Self::build(anchors, vec![aai2], expected)
    }

    fn build(anchors: Vec<X509>, intermediates: Vec<X509>, expected: String) -> Result<Self> {
        let mut store = X509StoreBuilder::new()?;
        // Who issued the certificate is the question here; an expired certificate is
        // refused by the upload with its date, in words of its own.
        store.set_flags(X509VerifyFlags::NO_CHECK_TIME)?;
        for a in anchors {
            store.add_cert(a)?;
        }
        Ok(Self {
            store: store.build(),
            intermediates,
            expected,
        })
    }

    /// What a trusted certificate's issuer is expected to be.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// Checks that `cert` chains to an anchor (with `extra` certificates from the
    /// upload offered as intermediates) and may authenticate a TLS client, which is how
    /// APNs knows the provider.
    pub fn verify(&self, cert: &X509Ref, extra: &[X509]) -> Result<()> {
        let mut chain = Stack::new()?;
        for c in self.intermediates.iter().chain(extra) {
            chain.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        let outcome = ctx.init(&self.store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok::<_, ErrorStack>((ok, c.error().error_string().to_owned()))
        })?;
        let untrusted = |reason: String| PushError::Untrusted {
            issuer: common_name_of(cert.issuer_name()),
            expected: self.expected.clone(),
            reason,
        };
        match outcome {
            (true, _) => {}
            (false, reason) => return Err(untrusted(reason)),
        }
        if !allows_client_auth(cert) {
            return Err(untrusted(
                "its extended key usage does not allow TLS client authentication".into(),
            ));
        }
        Ok(())
    }
}

/// No extended key usage, or one that lists TLS client authentication (or any usage).
fn allows_client_auth(cert: &X509Ref) -> bool {
    // openssl's X509 has no accessor for the EKU list; its text form is enough here.
    let Ok(text) = cert.to_text() else {
        return false;
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("X509v3 Extended Key Usage") {
            let usages = lines.next().unwrap_or("");
            return usages.contains("TLS Web Client Authentication")
                || usages.contains("Any Extended Key Usage");
        }
    }
    true
}

fn common_name(cert: &X509Ref) -> String {
    common_name_of(cert.subject_name())
}

/// The CN of a name, or the whole name when it has none.
fn common_name_of(name: &openssl::x509::X509NameRef) -> String {
    name.entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .map(|s| s.to_string())
        .unwrap_or_else(|| {
            name.entries()
                .filter_map(|e| e.data().to_string().ok().map(|s| s.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        })
}

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
    use openssl::x509::{X509Builder, X509Name};

    use super::*;

    fn key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    fn name(cn: &str, uid: Option<&str>) -> X509Name {
        let mut n = X509Name::builder().unwrap();
        if let Some(uid) = uid {
            n.append_entry_by_nid(Nid::USERID, uid).unwrap();
        }
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        n.build()
    }

    /// A certificate for `subject` with `key`, signed by `issuer` (itself when `None`).
    fn issue(
        subject: &X509Name,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        ca: bool,
        client_auth: Option<bool>,
    ) -> X509 {
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(subject).unwrap();
        b.set_issuer_name(issuer.map_or(subject, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        if ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(KeyUsage::new().critical().key_cert_sign().build().unwrap())
                .unwrap();
        }
        match client_auth {
            Some(true) => b
                .append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
                .unwrap(),
            Some(false) => b
                .append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                .unwrap(),
            None => {}
        }
        b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
            .unwrap();
        b.build()
    }

    const TOPIC: &str = "com.apple.mgmt.External.trust-test";

    #[test]
    fn the_built_in_apple_certificates_are_the_published_ones() {
        let aai2 = X509::from_pem(APPLE_AAI2_CA_PEM).unwrap();
        let root = X509::from_pem(crate::ade::machine_info::APPLE_ROOT_CA_PEM).unwrap();
        assert_eq!(
            hex::encode(aai2.digest(MessageDigest::sha256()).unwrap()),
            "d3496f4b73cd67aab9f2fcb1d5aa41f8dc457769c455c792b70ddb19e92023d6"
        );
        assert_eq!(
            common_name(&aai2),
            "Apple Application Integration 2 Certification Authority"
        );
        assert!(aai2.verify(&root.public_key().unwrap()).unwrap());
        assert_eq!(
            aai2.issuer_name().to_der().unwrap(),
            root.subject_name().to_der().unwrap()
        );
    }

    #[test]
    fn a_self_signed_push_certificate_is_refused_naming_its_issuer_and_apples() {
        let k = key();
        let cert = issue(&name("APSP:invented", Some(TOPIC)), &k, None, false, None);
        let err = PushTrust::apple().unwrap().verify(&cert, &[]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PushError::Untrusted { .. }), "{text}");
        assert!(text.contains("\"APSP:invented\""), "{text}");
        assert!(
            text.contains("Apple Application Integration 2 Certification Authority"),
            "{text}"
        );
    }

    #[test]
    fn a_certificate_under_a_configured_anchor_is_trusted_even_through_an_intermediate() {
        let (root_key, mid_key, leaf_key) = (key(), key(), key());
        let root = issue(&name("Test Root", None), &root_key, None, true, None);
        let mid = issue(
            &name("Test Push CA", None),
            &mid_key,
            Some((&root, &root_key)),
            true,
            None,
        );
        let leaf = issue(
            &name("APSP:test", Some(TOPIC)),
            &leaf_key,
            Some((&mid, &mid_key)),
            false,
            Some(true),
        );
        let trust = PushTrust::with_anchors(&[root.to_pem().unwrap()]).unwrap();
        trust.verify(&leaf, std::slice::from_ref(&mid)).unwrap();
        // Without the intermediate in the upload there is no path.
        let err = trust.verify(&leaf, &[]).unwrap_err();
        assert!(err.to_string().contains("\"Test Push CA\""), "{err}");
        assert!(err.to_string().contains("\"Test Root\""), "{err}");
        // Apple's anchors do not trust the test root.
        assert!(PushTrust::apple().unwrap().verify(&leaf, &[mid]).is_err());
    }

    #[test]
    fn a_server_only_certificate_cannot_be_a_push_certificate() {
        let (root_key, leaf_key) = (key(), key());
        let root = issue(&name("Test Root", None), &root_key, None, true, None);
        let leaf = issue(
            &name("APSP:test", Some(TOPIC)),
            &leaf_key,
            Some((&root, &root_key)),
            false,
            Some(false),
        );
        let trust = PushTrust::with_anchors(&[root.to_pem().unwrap()]).unwrap();
        let err = trust.verify(&leaf, &[]).unwrap_err();
        assert!(err.to_string().contains("client authentication"), "{err}");
    }
}

//! tafel's own certificate authorities: an offline-capable root that only certifies
//! issuing CAs, and the online issuing CA (name-constrained to tafel's hosts) that
//! signs device identities, the server's TLS certificate, the profile-signing
//! certificate and the SCEP RA certificate, which decrypts SCEP envelopes and signs
//! CertReps. Each key does one job.
//!
//! A bare [`CertificateAuthority::generate`] root still acts as all of these at once
//! (tests, and districts that ran tafel before the hierarchy, until `tafel init`
//! migrates them).

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509Builder, X509Name, X509NameRef, X509Ref, X509StoreContext, X509};

use super::error::{PkiError, Result};

/// The root lives for years, so it gets a bigger key than the leaves.
const CA_KEY_BITS: u32 = 3072;
/// Apple devices generate 2048-bit identities; our leaves match.
const LEAF_KEY_BITS: u32 = 2048;
/// `notBefore` is backdated so a device whose clock runs a little slow still
/// accepts a certificate issued a moment ago.
const CLOCK_SKEW_SECS: i64 = 3600;
const SECS_PER_DAY: i64 = 86_400;
/// iOS 13+ / macOS 10.15+ reject TLS server certificates valid for more than
/// 825 days (Apple support article HT210176, "Requirements for trusted certificates").
pub const MAX_SERVER_CERT_DAYS: u32 = 825;

/// A CA certificate with its private key, the certificates above it up to the root,
/// and the SCEP RA it works with.
pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
    /// Issuers above `cert`, the root (trust anchor) last; empty when `cert` is a root.
    chain: Vec<X509>,
    /// The SCEP RA; `None`: the CA answers SCEP itself.
    ra: Option<(X509, PKey<Private>)>,
}

/// Validity of a root, in days (20 years).
pub const ROOT_DAYS: u32 = 7300;
/// Validity of an issuing CA, in days (10 years).
pub const ISSUING_DAYS: u32 = 3650;

/// What a leaf certificate is for; decides its extensions.
enum Profile<'a> {
    /// TLS server: serverAuth, SANs.
    Server { hosts: &'a [String] },
    /// Device identity: clientAuth.
    Client,
    /// Signs CMS messages such as `.mobileconfig` files: emailProtection,
    /// which OpenSSL's `smime_sign` purpose demands when an EKU is present.
    Signing,
    /// SCEP RA: devices encrypt their requests to it (keyEncipherment, what SCEP
    /// clients look for when they pick the encryption certificate) and it signs every
    /// CertRep (digitalSignature).
    Ra,
}

impl CertificateAuthority {
    /// Creates a new self-signed root (RSA 3072, SHA-256) valid for `days`;
    /// its keyUsage also lets it act as tafel's SCEP CA/RA.
    pub fn generate(common_name: &str, days: u32) -> Result<Self> {
        let key = rsa_key(CA_KEY_BITS)?;
        let name = common_name_only(common_name)?;
        let (not_before, not_after) = validity_from_now(days)?;

        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = random_serial()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(not_before)?;
        builder.set_not_before(&not_before)?;
        let not_after = Asn1Time::from_unix(not_after)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        // The root is also the SCEP CA/RA (see `scep.rs`): devices encrypt
        // their PKCSReq to it (keyEncipherment, what SCEP clients look for
        // when they pick an encryption certificate) and it signs every CertRep
        // (digitalSignature, which OpenSSL's S/MIME purpose check demands of
        // a CMS signer when the chain is verified).
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        // With no issuer given the context points at the certificate itself,
        // so the AKI copies the SKI appended just above.
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(None, None))?;
        builder.append_extension(aki)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert: builder.build(),
            key,
            chain: Vec::new(),
            ra: None,
        })
    }

    /// Creates a new self-signed root for the hierarchy (RSA 3072, SHA-256) valid for
    /// `days`: it certifies issuing CAs and nothing else.
    pub fn generate_root(common_name: &str, days: u32) -> Result<Self> {
        let key = rsa_key(CA_KEY_BITS)?;
        let name = common_name_only(common_name)?;
        let (not_before, not_after) = validity_from_now(days)?;
        let cert = build_ca_cert(&key, &name, None, not_before, not_after, 1, &[])?;
        Ok(Self {
            cert,
            key,
            chain: Vec::new(),
            ra: None,
        })
    }

    /// Certifies an issuing CA under this root: a fresh key (or `key`, to renew one
    /// without touching what it issued), valid for `days` but never beyond the root,
    /// allowed to name only `permitted` hosts (DNS names and IP addresses) in what it
    /// issues, so that its key, which is online, cannot impersonate any other site.
    pub fn issue_issuing_ca(
        &self,
        common_name: &str,
        days: u32,
        permitted: &[String],
        key: Option<PKey<Private>>,
    ) -> Result<CertificateAuthority> {
        let key = match key {
            Some(k) => k,
            None => rsa_key(CA_KEY_BITS)?,
        };
        let name = common_name_only(common_name)?;
        let (not_before, not_after) = validity_from_now(days)?;
        let not_after = not_after.min(asn1_unix(self.cert.not_after())?);
        let cert = build_ca_cert(
            &key,
            &name,
            Some((&self.cert, &self.key)),
            not_before,
            not_after,
            0,
            permitted,
        )?;
        let mut chain = vec![self.cert.clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(CertificateAuthority {
            cert,
            key,
            chain,
            ra: None,
        })
    }

    /// Issues the SCEP RA certificate with a fresh key.
    pub fn issue_ra_cert(&self, common_name: &str, days: u32) -> Result<(X509, PKey<Private>)> {
        let key = rsa_key(LEAF_KEY_BITS)?;
        let subject = common_name_only(common_name)?;
        let (not_before, not_after) = validity_from_now(days)?;
        let cert = self.issue(&key, &subject, not_before, not_after, Profile::Ra)?;
        Ok((cert, key))
    }

    /// This CA with the issuers above it (the root last).
    pub fn with_chain(mut self, chain: Vec<X509>) -> Self {
        self.chain = chain;
        self
    }

    /// This CA with its SCEP RA.
    pub fn with_ra(mut self, cert: X509, key: PKey<Private>) -> Self {
        self.ra = Some((cert, key));
        self
    }

    /// The trust anchor: the root at the top of the chain (this CA when it is one).
    pub fn anchor(&self) -> &X509Ref {
        self.chain.last().map_or(&*self.cert, |c| &**c)
    }

    /// When this CA and every issuer above it are valid, in unix seconds
    /// (`from <= t < until`): a certificate it issued cannot be valid outside.
    pub fn validity_window(&self) -> Result<(i64, i64)> {
        let mut window = (i64::MIN, i64::MAX);
        for c in std::iter::once(&self.cert).chain(&self.chain) {
            window.0 = window.0.max(asn1_unix(c.not_before())?);
            window.1 = window.1.min(asn1_unix(c.not_after())?.saturating_add(1));
        }
        Ok(window)
    }

    /// The issuers above this CA, the root last.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// The certificates a client needs to reach the anchor from something this CA
    /// issued: this CA, then every issuer but the anchor.
    pub fn intermediates(&self) -> Vec<X509> {
        if self.chain.is_empty() {
            return Vec::new();
        }
        let mut out = vec![self.cert.clone()];
        out.extend(self.chain[..self.chain.len() - 1].iter().cloned());
        out
    }

    /// The SCEP RA certificate (this CA when it has none).
    pub fn ra_cert(&self) -> &X509Ref {
        self.ra.as_ref().map_or(&*self.cert, |(c, _)| &**c)
    }

    /// The SCEP RA key (this CA's when it has no RA).
    pub fn ra_key(&self) -> &PKeyRef<Private> {
        self.ra.as_ref().map_or(&*self.key, |(_, k)| &**k)
    }

    /// Whether a separate RA answers SCEP.
    pub fn has_ra(&self) -> bool {
        self.ra.is_some()
    }

    /// Loads a CA from PEM; the key must belong to the certificate.
    pub fn load(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let cert = X509::from_pem(cert_pem)
            .map_err(|e| PkiError::Malformed(format!("CA certificate is not PEM: {e}")))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| PkiError::Malformed(format!("CA key is not PEM: {e}")))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(PkiError::Malformed(
                "CA key does not belong to the CA certificate".into(),
            ));
        }
        Ok(Self {
            cert,
            key,
            chain: Vec::new(),
            ra: None,
        })
    }

    /// The CA certificate.
    pub fn cert(&self) -> &X509Ref {
        &self.cert
    }

    /// The CA private key.
    pub fn key(&self) -> &PKeyRef<Private> {
        &self.key
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> Result<Vec<u8>> {
        Ok(self.cert.to_pem()?)
    }

    /// The CA private key as unencrypted PKCS #8 PEM; store it with
    /// [`write_key_file`](super::files::write_key_file).
    pub fn key_pem(&self) -> Result<Vec<u8>> {
        Ok(self.key.private_key_to_pem_pkcs8()?)
    }

    /// Issues a TLS server certificate with a fresh RSA key for `hosts`.
    ///
    /// Every host becomes a SAN (an IP address SAN when it parses as one);
    /// the first host is also the CN. `days` may not exceed
    /// [`MAX_SERVER_CERT_DAYS`], or iOS refuses the certificate.
    pub fn issue_server_cert(&self, hosts: &[String], days: u32) -> Result<(X509, PKey<Private>)> {
        if days > MAX_SERVER_CERT_DAYS {
            return Err(PkiError::Malformed(format!(
                "server certificates may be valid for at most {MAX_SERVER_CERT_DAYS} days, iOS rejects longer ones"
            )));
        }
        let (not_before, not_after) = validity_from_now(days)?;
        // The backdated start counts too: the whole span stays within Apple's limit.
        let not_after = not_after.min(not_before + i64::from(MAX_SERVER_CERT_DAYS) * SECS_PER_DAY);
        self.issue_server_cert_between(hosts, not_before, not_after)
    }

    /// Like [`issue_server_cert`](Self::issue_server_cert) with an explicit validity
    /// window in unix seconds (an injected clock: certificates about to expire).
    pub fn issue_server_cert_between(
        &self,
        hosts: &[String],
        not_before: i64,
        not_after: i64,
    ) -> Result<(X509, PKey<Private>)> {
        let first = hosts
            .first()
            .ok_or_else(|| PkiError::Malformed("a server certificate needs a host".into()))?;
        let key = rsa_key(LEAF_KEY_BITS)?;
        let subject = common_name_only(first)?;
        let cert = self.issue(
            &key,
            &subject,
            not_before,
            not_after,
            Profile::Server { hosts },
        )?;
        Ok((cert, key))
    }

    /// Issues a device identity certificate (clientAuth) for a key the device
    /// generated, e.g. from a SCEP request.
    pub fn issue_client_cert(
        &self,
        public_key: &PKeyRef<Public>,
        subject: &X509NameRef,
        days: u32,
    ) -> Result<X509> {
        let (not_before, not_after) = validity_from_now(days)?;
        self.issue(public_key, subject, not_before, not_after, Profile::Client)
    }

    /// Like [`issue_client_cert`](Self::issue_client_cert) but with an
    /// explicit validity window in unix seconds, for an injected clock.
    pub fn issue_client_cert_between(
        &self,
        public_key: &PKeyRef<Public>,
        subject: &X509NameRef,
        not_before: i64,
        not_after: i64,
    ) -> Result<X509> {
        self.issue(public_key, subject, not_before, not_after, Profile::Client)
    }

    /// Issues a certificate with a fresh key for signing CMS messages such as
    /// `.mobileconfig` profiles. Its EKU (emailProtection) is what
    /// `openssl cms -verify` requires; a serverAuth-only certificate fails there.
    pub fn issue_signing_cert(
        &self,
        common_name: &str,
        days: u32,
    ) -> Result<(X509, PKey<Private>)> {
        let key = rsa_key(LEAF_KEY_BITS)?;
        let subject = common_name_only(common_name)?;
        let (not_before, not_after) = validity_from_now(days)?;
        let cert = self.issue(&key, &subject, not_before, not_after, Profile::Signing)?;
        Ok((cert, key))
    }

    /// Checks that `cert` chains to this CA's anchor (through this CA or directly, as
    /// certificates issued before the hierarchy did) and is valid at `at` (unix
    /// seconds; now when `None`).
    pub fn verify_issued(&self, cert: &X509Ref, at: Option<i64>) -> Result<()> {
        self.verify(cert, at, None)
    }

    /// As [`verify_issued`](Self::verify_issued), for a device identity: the
    /// certificate must also be meant for TLS clients (clientAuth), so no server,
    /// signing or RA certificate of ours passes as a device.
    pub fn verify_device_identity(&self, cert: &X509Ref, at: Option<i64>) -> Result<()> {
        self.verify(cert, at, Some("sslclient"))
    }

    fn verify(&self, cert: &X509Ref, at: Option<i64>, purpose: Option<&str>) -> Result<()> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(self.anchor().to_owned())?;
        let mut param = X509VerifyParam::new()?;
        if let Some(at) = at {
            param.set_time(at);
        }
        if let Some(purpose) = purpose {
            let id = openssl::x509::X509PurposeRef::get_by_sname(purpose)?;
            let purpose = openssl::x509::X509PurposeRef::from_idx(id)?;
            param.set_purpose(purpose.purpose())?;
        }
        store.set_param(&param)?;
        let store = store.build();
        let mut untrusted = Stack::new()?;
        for c in self.intermediates() {
            untrusted.push(c)?;
        }
        let mut ctx = X509StoreContext::new()?;
        let failure = ctx.init(&store, cert, &untrusted, |ctx| {
            Ok(if ctx.verify_cert()? {
                None
            } else {
                Some(ctx.error())
            })
        })?;
        match failure {
            None => Ok(()),
            Some(e) => Err(match e.as_raw() {
                openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED => PkiError::Expired,
                openssl_sys::X509_V_ERR_CERT_NOT_YET_VALID => PkiError::NotYetValid,
                _ => PkiError::UntrustedCertificate(e.error_string().to_owned()),
            }),
        }
    }

    /// Builds and signs a leaf certificate.
    fn issue<T: HasPublic>(
        &self,
        public_key: &PKeyRef<T>,
        subject: &X509NameRef,
        not_before: i64,
        not_after: i64,
        profile: Profile<'_>,
    ) -> Result<X509> {
        // Nothing outlives its issuer: a device identity issued a week before the CA
        // expires is valid for that week, and renewed under the next CA.
        let not_after = not_after.min(asn1_unix(self.cert.not_after())?);
        if not_before >= not_after {
            return Err(PkiError::Malformed(
                "certificate validity ends before it starts (is the CA expiring?)".into(),
            ));
        }
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = random_serial()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(subject)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(public_key)?;
        let not_before = Asn1Time::from_unix(not_before)?;
        builder.set_not_before(&not_before)?;
        let not_after = Asn1Time::from_unix(not_after)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;

        match profile {
            Profile::Server { hosts } => {
                builder.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .key_encipherment()
                        .build()?,
                )?;
                builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
                let mut san = SubjectAlternativeName::new();
                for host in hosts {
                    if host.is_empty() {
                        return Err(PkiError::Malformed("empty host name".into()));
                    }
                    if host.parse::<IpAddr>().is_ok() {
                        san.ip(host);
                    } else {
                        san.dns(host);
                    }
                }
                let san = san.build(&builder.x509v3_context(Some(&self.cert), None))?;
                builder.append_extension(san)?;
            }
            Profile::Client => {
                // keyEncipherment is an RSA operation; an EC key only signs.
                let mut usage = KeyUsage::new();
                usage.critical().digital_signature();
                if public_key.id() == openssl::pkey::Id::RSA {
                    usage.key_encipherment();
                }
                builder.append_extension(usage.build()?)?;
                builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
            }
            Profile::Signing => {
                builder
                    .append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
                builder.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
            }
            Profile::Ra => {
                builder.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .key_encipherment()
                        .build()?,
                )?;
            }
        }

        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(aki)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build())
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.cert.subject_name())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A CA certificate for `key`: self-signed when `issuer` is `None`; keyCertSign and
/// cRLSign (and digitalSignature for an issuing CA); a path length; name constraints
/// when `permitted` names hosts.
fn build_ca_cert(
    key: &PKeyRef<Private>,
    name: &X509NameRef,
    issuer: Option<(&X509, &PKey<Private>)>,
    not_before: i64,
    not_after: i64,
    pathlen: u32,
    permitted: &[String],
) -> Result<X509> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = random_serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(name)?;
    builder.set_issuer_name(issuer.map_or(name, |(c, _)| c.subject_name()))?;
    builder.set_pubkey(key)?;
    let (not_before, not_after) = (
        Asn1Time::from_unix(not_before)?,
        Asn1Time::from_unix(not_after)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(
        BasicConstraints::new()
            .critical()
            .ca()
            .pathlen(pathlen)
            .build()?,
    )?;
    let mut usage = KeyUsage::new();
    usage.critical().key_cert_sign().crl_sign();
    if issuer.is_some() {
        usage.digital_signature();
    }
    builder.append_extension(usage.build()?)?;
    if !permitted.is_empty() {
        builder.append_extension(name_constraints(permitted)?)?;
    }
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&builder.x509v3_context(issuer.map(|(c, _)| &**c), None))?;
    builder.append_extension(aki)?;
    builder.sign(issuer.map_or(key, |(_, k)| &**k), MessageDigest::sha256())?;
    Ok(builder.build())
}

/// A critical nameConstraints extension permitting exactly these DNS names (and
/// their subdomains) and IP addresses (RFC 5280 §4.2.1.10), DER-encoded by hand:
/// rust-openssl has no builder for it.
fn name_constraints(permitted: &[String]) -> Result<openssl::x509::X509Extension> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len <= 0xff {
            out.extend_from_slice(&[0x81, len as u8]);
        } else {
            out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }
    let mut subtrees = Vec::new();
    for host in permitted {
        let base = match host.parse::<IpAddr>() {
            // iPAddress [7]: the address and a mask of all ones.
            Ok(IpAddr::V4(ip)) => {
                let mut v = ip.octets().to_vec();
                v.extend_from_slice(&[0xff; 4]);
                tlv(0x87, &v)
            }
            Ok(IpAddr::V6(ip)) => {
                let mut v = ip.octets().to_vec();
                v.extend_from_slice(&[0xff; 16]);
                tlv(0x87, &v)
            }
            // dNSName [2] IA5String.
            Err(_) => {
                if host.is_empty() || !host.is_ascii() {
                    return Err(PkiError::Malformed(format!(
                        "{host:?} is not a host name for a name constraint"
                    )));
                }
                tlv(0x82, host.as_bytes())
            }
        };
        subtrees.extend(tlv(0x30, &base));
    }
    // NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees }
    let der = tlv(0x30, &tlv(0xa0, &subtrees));
    let oid = openssl::asn1::Asn1Object::from_str("2.5.29.30")?;
    let value = openssl::asn1::Asn1OctetString::new_from_bytes(&der)?;
    Ok(openssl::x509::X509Extension::new_from_der(
        &oid, true, &value,
    )?)
}

/// An ASN.1 time as unix seconds.
pub fn asn1_unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64> {
    let diff = Asn1Time::from_unix(0)?.diff(t)?;
    Ok(i64::from(diff.days) * SECS_PER_DAY + i64::from(diff.secs))
}

/// Lowercase hex SHA-256 of the certificate's DER: how tafel names a
/// certificate (e.g. binding a device identity at Authenticate).
///
/// Returns a `Result` rather than a bare `String` because OpenSSL's digest
/// can fail, and an empty "fingerprint" must never compare equal to another.
pub fn sha256_fingerprint(cert: &X509Ref) -> Result<String> {
    Ok(hex::encode(cert.digest(MessageDigest::sha256())?))
}

fn rsa_key(bits: u32) -> Result<PKey<Private>> {
    Ok(PKey::from_rsa(Rsa::generate(bits)?)?)
}

fn common_name_only(common_name: &str) -> Result<X509Name> {
    if common_name.is_empty() {
        return Err(PkiError::Malformed("empty common name".into()));
    }
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

/// A random positive 128-bit serial (CA/Browser Forum asks for ≥ 64 bits of entropy).
fn random_serial() -> Result<Asn1Integer> {
    let mut serial = BigNum::new()?;
    serial.rand(128, MsbOption::ONE, false)?;
    Ok(serial.to_asn1_integer()?)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `(not_before, not_after)` for a certificate issued now, in unix seconds.
fn validity_from_now(days: u32) -> Result<(i64, i64)> {
    if days == 0 {
        return Err(PkiError::Malformed(
            "certificate validity must be at least one day".into(),
        ));
    }
    let now = unix_now();
    Ok((now - CLOCK_SKEW_SECS, now + i64::from(days) * SECS_PER_DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device_subject(udid: &str) -> X509Name {
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, udid).unwrap();
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "tafel devices")
            .unwrap();
        name.build()
    }

    fn device_key() -> PKey<Public> {
        let private = rsa_key(2048).unwrap();
        PKey::public_key_from_der(&private.public_key_to_der().unwrap()).unwrap()
    }

    fn text(cert: &X509Ref) -> String {
        String::from_utf8(cert.to_text().unwrap()).unwrap()
    }

    #[test]
    fn a_generated_ca_is_a_self_signed_root_that_survives_a_pem_round_trip() {
        let ca = CertificateAuthority::generate("tafel test CA", 3650).unwrap();
        let details = text(ca.cert());
        assert!(details.contains("CA:TRUE"), "{details}");
        assert!(
            details.contains("Digital Signature, Key Encipherment, Certificate Sign, CRL Sign"),
            "{details}"
        );
        assert!(details.contains("X509v3 Subject Key Identifier"));
        assert!(details.contains("X509v3 Authority Key Identifier"));
        assert_eq!(ca.cert().serial_number().to_bn().unwrap().num_bits(), 128);
        assert!(ca.cert().verify(ca.key()).unwrap(), "self-signed");

        let loaded =
            CertificateAuthority::load(&ca.cert_pem().unwrap(), &ca.key_pem().unwrap()).unwrap();
        assert_eq!(
            sha256_fingerprint(loaded.cert()).unwrap(),
            sha256_fingerprint(ca.cert()).unwrap()
        );
        assert!(loaded.key().public_eq(ca.key()));
        assert!(format!("{loaded:?}").contains("<redacted>"));
    }

    #[test]
    fn loading_refuses_a_key_of_another_ca_and_garbage() {
        let ca = CertificateAuthority::generate("one", 30).unwrap();
        let other = CertificateAuthority::generate("two", 30).unwrap();
        let err = CertificateAuthority::load(&ca.cert_pem().unwrap(), &other.key_pem().unwrap())
            .unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)), "{err}");
        let err = CertificateAuthority::load(b"not pem", &ca.key_pem().unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)), "{err}");
    }

    #[test]
    fn the_server_certificate_names_every_host_and_chains_to_the_ca() {
        let ca = CertificateAuthority::generate("tafel test CA", 30).unwrap();
        let hosts = vec!["mdm.school.example".to_owned(), "10.0.0.5".to_owned()];
        let (cert, key) = ca.issue_server_cert(&hosts, 365).unwrap();

        assert!(cert.public_key().unwrap().public_eq(&key));
        let sans = cert.subject_alt_names().unwrap();
        let dns: Vec<_> = sans.iter().filter_map(|n| n.dnsname()).collect();
        let ips: Vec<_> = sans.iter().filter_map(|n| n.ipaddress()).collect();
        assert_eq!(dns, ["mdm.school.example"]);
        assert_eq!(ips, [&[10u8, 0, 0, 5][..]]);
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().as_slice(), b"mdm.school.example");
        let details = text(&cert);
        assert!(
            details.contains("TLS Web Server Authentication"),
            "{details}"
        );
        assert!(details.contains("CA:FALSE"), "{details}");

        ca.verify_issued(&cert, None).unwrap();
    }

    #[test]
    fn a_server_certificate_spans_at_most_825_days_backdating_included() {
        let ca = CertificateAuthority::generate("tafel test CA", 3650).unwrap();
        let (cert, _) = ca
            .issue_server_cert(&["mdm.school.example".to_owned()], MAX_SERVER_CERT_DAYS)
            .unwrap();
        let span = asn1_unix(cert.not_after()).unwrap() - asn1_unix(cert.not_before()).unwrap();
        assert!(
            span <= i64::from(MAX_SERVER_CERT_DAYS) * SECS_PER_DAY,
            "{span}"
        );
    }

    #[test]
    fn server_certificates_obey_apples_limits() {
        let ca = CertificateAuthority::generate("tafel test CA", 30).unwrap();
        let hosts = vec!["mdm.school.example".to_owned()];
        assert!(matches!(
            ca.issue_server_cert(&hosts, MAX_SERVER_CERT_DAYS + 1),
            Err(PkiError::Malformed(_))
        ));
        assert!(matches!(
            ca.issue_server_cert(&[], 30),
            Err(PkiError::Malformed(_))
        ));
    }

    #[test]
    fn a_device_identity_verifies_and_one_from_a_foreign_ca_does_not() {
        let ours = CertificateAuthority::generate("tafel CA", 30).unwrap();
        // Same name as ours: only the signature can tell them apart.
        let foreign = CertificateAuthority::generate("tafel CA", 30).unwrap();
        let subject = device_subject("00008030-001A2B3C4D5E6F70");

        let cert = ours
            .issue_client_cert(&device_key(), &subject, 365)
            .unwrap();
        ours.verify_issued(&cert, None).unwrap();
        let details = text(&cert);
        assert!(
            details.contains("TLS Web Client Authentication"),
            "{details}"
        );
        assert!(
            details.contains("Digital Signature, Key Encipherment"),
            "{details}"
        );
        assert!(details.contains("CA:FALSE"), "{details}");

        let impostor = foreign
            .issue_client_cert(&device_key(), &subject, 365)
            .unwrap();
        let err = ours.verify_issued(&impostor, None).unwrap_err();
        assert!(matches!(err, PkiError::UntrustedCertificate(_)), "{err}");
    }

    #[test]
    fn an_identity_outside_its_validity_window_is_expired_or_not_yet_valid() {
        let ca = CertificateAuthority::generate("tafel CA", 3650).unwrap();
        let subject = device_subject("device");
        let now = unix_now();

        let last_year = ca
            .issue_client_cert_between(
                &device_key(),
                &subject,
                now - 400 * SECS_PER_DAY,
                now - SECS_PER_DAY,
            )
            .unwrap();
        assert!(matches!(
            ca.verify_issued(&last_year, None),
            Err(PkiError::Expired)
        ));

        let next_week = ca
            .issue_client_cert_between(
                &device_key(),
                &subject,
                now + 7 * SECS_PER_DAY,
                now + 30 * SECS_PER_DAY,
            )
            .unwrap();
        assert!(matches!(
            ca.verify_issued(&next_week, None),
            Err(PkiError::NotYetValid)
        ));

        let current = ca.issue_client_cert(&device_key(), &subject, 30).unwrap();
        ca.verify_issued(&current, Some(now + 10 * SECS_PER_DAY))
            .unwrap();
        assert!(matches!(
            ca.verify_issued(&current, Some(now + 31 * SECS_PER_DAY)),
            Err(PkiError::Expired)
        ));
    }

    fn hierarchy() -> (CertificateAuthority, CertificateAuthority) {
        let root = CertificateAuthority::generate_root("tafel Root CA", 7300).unwrap();
        let hosts = vec!["mdm.school.example".to_owned(), "10.0.0.5".to_owned()];
        let issuing = root
            .issue_issuing_ca("tafel Issuing CA", 3650, &hosts, None)
            .unwrap();
        (root, issuing)
    }

    #[test]
    fn the_issuing_ca_names_only_tafels_hosts_and_its_identities_chain_to_the_root() {
        let (root, issuing) = hierarchy();
        assert_eq!(
            sha256_fingerprint(issuing.anchor()).unwrap(),
            sha256_fingerprint(root.cert()).unwrap()
        );
        let root_text = text(root.cert());
        assert!(
            root_text.contains("Certificate Sign, CRL Sign"),
            "{root_text}"
        );
        assert!(!root_text.contains("Key Encipherment"), "{root_text}");
        let text_ca = text(issuing.cert());
        assert!(text_ca.contains("Name Constraints"), "{text_ca}");
        assert!(text_ca.contains("pathlen:0"), "{text_ca}");

        // Device identities (whatever CN the device asked for) and tafel's own server.
        for cn in ["tafel device 3f2a9c01bd77", "00008103-000A1B2C3D4E5F60"] {
            let cert = issuing
                .issue_client_cert(&device_key(), &device_subject(cn), 365)
                .unwrap();
            issuing.verify_device_identity(&cert, None).unwrap();
        }
        let hosts = vec!["mdm.school.example".to_owned()];
        let (server, _) = issuing.issue_server_cert(&hosts, 365).unwrap();
        issuing.verify_issued(&server, None).unwrap();
        // Its key cannot vouch for any other site: the constraint fails the chain.
        let elsewhere = vec!["www.bank.example".to_owned()];
        let (forged, _) = issuing.issue_server_cert(&elsewhere, 365).unwrap();
        assert!(matches!(
            issuing.verify_issued(&forged, None),
            Err(PkiError::UntrustedCertificate(_))
        ));
        // The server certificate is no device.
        assert!(matches!(
            issuing.verify_device_identity(&server, None),
            Err(PkiError::UntrustedCertificate(_))
        ));
    }

    #[test]
    fn identities_issued_by_the_old_single_root_still_verify_under_its_issuing_ca() {
        let legacy = CertificateAuthority::generate("tafel Root CA", 3650).unwrap();
        let old_identity = legacy
            .issue_client_cert(&device_key(), &device_subject("old"), 365)
            .unwrap();
        let issuing = legacy
            .issue_issuing_ca("tafel Issuing CA", 3650, &["localhost".to_owned()], None)
            .unwrap();
        issuing.verify_device_identity(&old_identity, None).unwrap();
        let new_identity = issuing
            .issue_client_cert(&device_key(), &device_subject("new"), 365)
            .unwrap();
        issuing.verify_device_identity(&new_identity, None).unwrap();
        legacy.verify_issued(&new_identity, None).unwrap_err();
    }

    #[test]
    fn nothing_outlives_its_issuer() {
        let root = CertificateAuthority::generate_root("root", 7300).unwrap();
        let issuing = root.issue_issuing_ca("issuing", 30, &[], None).unwrap();
        let identity = issuing
            .issue_client_cert(&device_key(), &device_subject("d"), 365)
            .unwrap();
        assert!(identity.not_after() <= issuing.cert().not_after());
        let long = root.issue_issuing_ca("long", 99_999, &[], None).unwrap();
        assert!(long.cert().not_after() <= root.cert().not_after());
    }

    #[test]
    fn the_ra_encrypts_and_signs_for_scep_and_is_no_ca() {
        let (_, issuing) = hierarchy();
        let (ra, key) = issuing.issue_ra_cert("tafel SCEP RA", 825).unwrap();
        let details = text(&ra);
        assert!(details.contains("CA:FALSE"), "{details}");
        assert!(
            details.contains("Digital Signature, Key Encipherment"),
            "{details}"
        );
        let issuing = issuing.with_ra(ra.clone(), key);
        assert!(issuing.has_ra());
        assert_eq!(issuing.ra_cert().to_der().unwrap(), ra.to_der().unwrap());
        issuing.verify_issued(&ra, None).unwrap();
    }

    #[test]
    fn the_fingerprint_is_lowercase_hex_sha256_of_the_der() {
        let ca = CertificateAuthority::generate("tafel CA", 30).unwrap();
        let fingerprint = sha256_fingerprint(ca.cert()).unwrap();
        let expected = hex::encode(openssl::sha::sha256(&ca.cert().to_der().unwrap()));
        assert_eq!(fingerprint, expected);
        assert_eq!(fingerprint.len(), 64);
        assert_eq!(fingerprint, fingerprint.to_lowercase());
    }
}

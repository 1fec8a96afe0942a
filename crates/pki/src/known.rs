//! The `Mdm-Signature` of a device already known, checked without OpenSSL's decoders.
//!
//! Every connect carries a detached CMS signature with the device's identity certificate
//! in it. [`cms::verify_detached`](super::cms::verify_detached) decodes the whole
//! message, the certificate and its public key each time — in OpenSSL 3 a chain of
//! name-based algorithm and decoder look-ups under global locks, several times the cost
//! of the one RSA operation the check needs. A device connects many times with the same
//! certificate, so here the parts are read once and kept:
//!
//! - [`Signed::parse`] reads the SignedData's layers (DER or iOS's indefinite-length BER)
//!   with a bounded reader and borrows the certificate, the signer's identifier, the
//!   signed attributes and the signature from the message; nothing is decoded.
//! - [`KnownCertificates`] keeps, per certificate (SHA-256 of its DER), the public key
//!   and the window in which it and its chain are valid, for certificates whose chain a
//!   full check accepted. Bounded: two generations of at most half the capacity each.
//! - [`KnownCertificates::verify`] accepts a message only when all of it checks out:
//!   one signer, identified by the certificate's issuer and serial; the content-type
//!   attribute is id-data; the message-digest attribute is the body's digest; the RSA
//!   PKCS #1 v1.5 signature over the DER of the signed attributes is valid under the
//!   kept key; now is inside the kept window. Anything else — an unknown certificate,
//!   another key type or layout, a bad signature — answers `None`, and the caller takes
//!   the full path, which gives the reason. This path can only say yes to what the full
//!   path would accept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openssl::pkey::Public;
use openssl::rsa::{Padding, Rsa};
use openssl::x509::X509Ref;

use super::error::Result;

/// How deep indefinite-length layers may nest (iOS uses four).
const MAX_DEPTH: u8 = 8;

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// rsaEncryption, and the `…WithRSAEncryption` arcs below it (last octet).
const OID_PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;

/// The digest a signer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn from_oid(oid: &[u8]) -> Option<Digest> {
        const NIST: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
        match oid {
            [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Some(Digest::Sha1),
            [nist @ .., last] if nist == NIST => match last {
                1 => Some(Digest::Sha256),
                2 => Some(Digest::Sha384),
                3 => Some(Digest::Sha512),
                _ => None,
            },
            _ => None,
        }
    }

    /// The last arc of `…WithRSAEncryption` under PKCS #1 for this digest.
    fn rsa_arc(self) -> u8 {
        match self {
            Digest::Sha1 => 5,
            Digest::Sha256 => 11,
            Digest::Sha384 => 12,
            Digest::Sha512 => 13,
        }
    }

    /// The DER DigestInfo up to the hash (RFC 8017, section 9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Digest::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Digest::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Digest::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Digest::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The digest of `parts`, concatenated (OpenSSL's one-shot functions: no algorithm
    /// is looked up by name).
    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        use openssl::sha::{Sha1, Sha256, Sha384, Sha512};
        macro_rules! run {
            ($h:expr) => {{
                let mut h = $h;
                for p in parts {
                    h.update(p);
                }
                h.finish().to_vec()
            }};
        }
        match self {
            Digest::Sha1 => run!(Sha1::new()),
            Digest::Sha256 => run!(Sha256::new()),
            Digest::Sha384 => run!(Sha384::new()),
            Digest::Sha512 => run!(Sha512::new()),
        }
    }
}

/// One BER element: its tag (low tag numbers only), content and whole encoding.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
    indefinite: bool,
}

/// Reads one element from the front of `input`; `None` for anything malformed, a
/// high tag number, a length over 4 octets, or nesting deeper than [`MAX_DEPTH`].
fn read(input: &[u8], depth: u8) -> Option<(Tlv<'_>, &[u8])> {
    if depth > MAX_DEPTH {
        return None;
    }
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    if first == 0x80 {
        // Indefinite length: constructed only, children up to the end-of-contents.
        if tag & 0x20 == 0 {
            return None;
        }
        let mut rest = input.get(2..)?;
        while !rest.starts_with(&[0, 0]) {
            rest = read(rest, depth + 1)?.1;
        }
        let end = input.len() - rest.len();
        return Some((
            Tlv {
                tag,
                content: &input[2..end],
                whole: &input[..end + 2],
                indefinite: true,
            },
            &rest[2..],
        ));
    }
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count > 4 {
            return None;
        }
        let octets = input.get(2..2 + count)?;
        (
            octets
                .iter()
                .fold(0usize, |acc, &o| (acc << 8) | usize::from(o)),
            2 + count,
        )
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((
        Tlv {
            tag,
            content: &whole[header..],
            whole,
            indefinite: false,
        },
        &input[end..],
    ))
}

/// The elements inside a constructed element, in order.
struct Children<'a> {
    rest: &'a [u8],
    depth: u8,
}

impl<'a> Children<'a> {
    fn of(tlv: Tlv<'a>, depth: u8) -> Option<Children<'a>> {
        (tlv.tag & 0x20 != 0).then_some(Children {
            rest: tlv.content,
            depth: depth + 1,
        })
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let (tlv, rest) = read(self.rest, self.depth)?;
        (tlv.tag == tag).then(|| {
            self.rest = rest;
            tlv
        })
    }

    /// The next element if it has `tag`.
    fn optional(&mut self, tag: u8) -> Option<Option<Tlv<'a>>> {
        if self.rest.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Some(None)
        }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn done(&self) -> bool {
        self.rest.is_empty()
    }
}

/// A detached CMS SignedData as iOS sends it in `Mdm-Signature`, borrowed from the
/// message: one embedded certificate, one signer with signed attributes.
#[derive(Debug)]
pub struct Signed<'a> {
    /// The embedded certificate's DER.
    pub certificate: &'a [u8],
    /// The signer's issuer (Name, DER) and serial (INTEGER, DER).
    issuer: &'a [u8],
    serial: &'a [u8],
    digest: Digest,
    /// The signed attributes as encoded (`[0]`, definite length).
    attributes: &'a [u8],
    message_digest: &'a [u8],
    signature: &'a [u8],
}

impl<'a> Signed<'a> {
    /// Reads the layout; `None` for anything else (which the full path then judges).
    pub fn parse(der: &'a [u8]) -> Option<Signed<'a>> {
        let (info, rest) = read(der, 0)?;
        if !rest.is_empty() || info.tag != SEQUENCE {
            return None;
        }
        let mut info_children = Children::of(info, 0)?;
        if info_children.expect(OID)?.content != OID_SIGNED_DATA {
            return None;
        }
        let explicit = info_children.expect(CONTEXT_0)?;
        if !info_children.done() {
            return None;
        }
        let mut wrapper = Children::of(explicit, 1)?;
        let signed_data = wrapper.expect(SEQUENCE)?;
        if !wrapper.done() {
            return None;
        }
        let mut sd = Children::of(signed_data, 2)?;
        sd.expect(INTEGER)?;
        sd.expect(SET)?;
        // Detached: the encapsulated content is id-data without eContent.
        let mut encap = Children::of(sd.expect(SEQUENCE)?, 3)?;
        if encap.expect(OID)?.content != OID_DATA || !encap.done() {
            return None;
        }
        let mut certs = Children::of(sd.expect(CONTEXT_0)?, 3)?;
        let certificate = certs.expect(SEQUENCE)?;
        if !certs.done() || certificate.indefinite {
            return None;
        }
        // CRLs, other layouts: the full path.
        let mut signers = Children::of(sd.expect(SET)?, 3)?;
        if !sd.done() {
            return None;
        }
        let signer = signers.expect(SEQUENCE)?;
        if !signers.done() {
            return None;
        }
        let mut si = Children::of(signer, 4)?;
        if si.expect(INTEGER)?.content != [1] {
            return None;
        }
        let mut sid = Children::of(si.expect(SEQUENCE)?, 5)?;
        let issuer = sid.expect(SEQUENCE)?;
        let serial = sid.expect(INTEGER)?;
        if !sid.done() || issuer.indefinite {
            return None;
        }
        let mut digest_alg = Children::of(si.expect(SEQUENCE)?, 5)?;
        let digest = Digest::from_oid(digest_alg.expect(OID)?.content)?;
        let attributes = si.expect(CONTEXT_0)?;
        if attributes.indefinite {
            return None;
        }
        let mut sig_alg = Children::of(si.expect(SEQUENCE)?, 5)?;
        match sig_alg.expect(OID)?.content.split_last() {
            Some((&arc, OID_PKCS1)) if arc == 1 || arc == digest.rsa_arc() => {}
            _ => return None,
        }
        let signature = si.expect(OCTET_STRING)?;
        si.optional(CONTEXT_1)?;
        if !si.done() {
            return None;
        }
        let message_digest = Self::message_digest(attributes)?;
        Some(Signed {
            certificate: certificate.whole,
            issuer: issuer.whole,
            serial: serial.whole,
            digest,
            attributes: attributes.whole,
            message_digest,
            signature: signature.content,
        })
    }

    /// The message-digest attribute, when the attributes also say the content is
    /// id-data; each attribute once, with one value.
    fn message_digest(attributes: Tlv<'a>) -> Option<&'a [u8]> {
        let mut attrs = Children::of(attributes, 5)?;
        let (mut content_type, mut digest) = (None, None);
        while !attrs.done() {
            let mut attr = Children::of(attrs.expect(SEQUENCE)?, 6)?;
            let kind = attr.expect(OID)?.content;
            let mut values = Children::of(attr.expect(SET)?, 7)?;
            if !attr.done() {
                return None;
            }
            let slot = if kind == OID_CONTENT_TYPE {
                &mut content_type
            } else if kind == OID_MESSAGE_DIGEST {
                &mut digest
            } else {
                continue;
            };
            let tag = values.peek_tag()?;
            let value = values.expect(tag)?;
            if !values.done() || slot.is_some() {
                return None;
            }
            *slot = Some((tag, value.content));
        }
        match (content_type, digest) {
            (Some((OID, OID_DATA)), Some((OCTET_STRING, d))) => Some(d),
            _ => None,
        }
    }

    /// Whether this is a valid signature by `known` over `content`.
    fn is_valid(&self, known: &Known, content: &[u8]) -> bool {
        if self.issuer != known.issuer.as_slice() || self.serial != known.serial.as_slice() {
            return false;
        }
        if self.digest.hash(&[content]) != self.message_digest {
            return false;
        }
        // What is signed is the attributes' DER with the SET OF tag, not `[0]`.
        let signed = self.digest.hash(&[&[SET], &self.attributes[1..]]);
        let mut plain = vec![0u8; known.key.size() as usize];
        let Ok(n) = known
            .key
            .public_decrypt(self.signature, &mut plain, Padding::PKCS1)
        else {
            return false;
        };
        let prefix = self.digest.digest_info_prefix();
        plain.get(..n).is_some_and(|p| {
            p.len() == prefix.len() + signed.len()
                && p.starts_with(prefix)
                && p[prefix.len()..] == signed[..]
        })
    }
}

/// A certificate whose chain a full check accepted, as kept for the next message.
pub struct Known {
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
    /// The certificate's notAfter (unix seconds).
    pub not_after: i64,
    key: Rsa<Public>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    /// When the certificate and every certificate of its chain are valid (unix seconds,
    /// `valid_from <= t < valid_until`).
    valid_from: i64,
    valid_until: i64,
}

impl Known {
    /// Reads what a later check needs from `cert`, valid (with its chain) between
    /// `chain_window` (unix seconds); `None` for a key that is not RSA.
    pub fn new(cert: &X509Ref, chain_window: (i64, i64)) -> Result<Option<Known>> {
        let der = cert.to_der()?;
        let Ok(key) = cert.public_key()?.rsa() else {
            return Ok(None);
        };
        let Some((issuer, serial)) = issuer_and_serial(&der) else {
            return Ok(None);
        };
        let not_before = super::ca::asn1_unix(cert.not_before())?;
        let not_after = super::ca::asn1_unix(cert.not_after())?;
        Ok(Some(Known {
            sha256: openssl::sha::sha256(&der),
            not_after,
            key,
            issuer: issuer.to_vec(),
            serial: serial.to_vec(),
            valid_from: not_before.max(chain_window.0),
            // notAfter is the last valid second.
            valid_until: not_after.saturating_add(1).min(chain_window.1),
        }))
    }
}

/// The issuer Name and serial INTEGER of a certificate's DER, as encoded.
fn issuer_and_serial(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (cert, _) = read(der, 0)?;
    let mut cert = Children::of(cert, 0)?;
    let mut tbs = Children::of(cert.expect(SEQUENCE)?, 1)?;
    tbs.optional(CONTEXT_0)?;
    let serial = tbs.expect(INTEGER)?.whole;
    tbs.expect(SEQUENCE)?;
    let issuer = tbs.expect(SEQUENCE)?.whole;
    Some((issuer, serial))
}

/// Two generations: new entries go to the young one; when it is full it becomes the
/// old one and the old one is dropped; a hit in the old one moves to the young.
#[derive(Default)]
struct Generations {
    young: HashMap<[u8; 32], Arc<Known>>,
    old: HashMap<[u8; 32], Arc<Known>>,
}

/// Certificates whose chain was checked, by SHA-256; bounded.
pub struct KnownCertificates {
    half: usize,
    inner: Mutex<Generations>,
}

impl KnownCertificates {
    /// Keeps at most `capacity` certificates (0: none).
    pub fn new(capacity: usize) -> KnownCertificates {
        KnownCertificates {
            half: capacity / 2,
            inner: Mutex::new(Generations::default()),
        }
    }

    fn generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many certificates are kept.
    pub fn len(&self) -> usize {
        let g = self.generations();
        g.young.len() + g.old.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every certificate (the trust anchors changed).
    pub fn clear(&self) {
        *self.generations() = Generations::default();
    }

    /// Keeps `known` for the next message.
    pub fn insert(&self, known: Known) {
        if self.half == 0 {
            return;
        }
        let mut g = self.generations();
        if g.young.len() >= self.half {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(known.sha256, Arc::new(known));
    }

    fn get(&self, sha256: &[u8; 32]) -> Option<Arc<Known>> {
        let mut g = self.generations();
        if let Some(k) = g.young.get(sha256) {
            return Some(k.clone());
        }
        let k = g.old.remove(sha256)?;
        if g.young.len() >= self.half {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(*sha256, k.clone());
        Some(k)
    }

    /// The certificate that made `signature` over `content`, if it is kept, valid at
    /// `now` (unix seconds), and every part of the message checks out (see the module);
    /// `None` means: take the full path.
    pub fn verify(&self, signature: &[u8], content: &[u8], now: i64) -> Option<Arc<Known>> {
        let signed = Signed::parse(signature)?;
        let known = self.get(&openssl::sha::sha256(signed.certificate))?;
        if now < known.valid_from || now >= known.valid_until {
            return None;
        }
        signed.is_valid(&known, content).then_some(known)
    }
}

#[cfg(test)]
mod tests {
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::{X509Name, X509};

    use super::super::ca::CertificateAuthority;
    use super::super::cms;
    use super::*;

    const BODY: &[u8] = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>";

    fn device(ca: &CertificateAuthority) -> (X509, PKey<Private>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "device").unwrap();
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        let cert = ca.issue_client_cert(&public, &name.build(), 30).unwrap();
        (cert, key)
    }

    fn known(cert: &X509) -> Known {
        Known::new(cert, (i64::MIN, i64::MAX)).unwrap().unwrap()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn accepts_der_and_ios_ber_from_a_kept_certificate_only() {
        let ca = CertificateAuthority::generate("Test CA", 30).unwrap();
        let (cert, key) = device(&ca);
        let cache = KnownCertificates::new(10);
        let der = cms::sign_detached(BODY, &cert, &key).unwrap();
        let ber = cms::sign_detached_ber_indefinite(BODY, &cert, &key).unwrap();
        assert!(cache.verify(&der, BODY, now()).is_none(), "not kept yet");
        cache.insert(known(&cert));
        for sig in [&der, &ber] {
            let k = cache.verify(sig, BODY, now()).expect("kept and valid");
            assert_eq!(k.sha256, openssl::sha::sha256(&cert.to_der().unwrap()));
        }
        // Another body, a flipped signature bit, a truncated message: no.
        assert!(cache.verify(&der, b"<plist/>", now()).is_none());
        let mut bad = der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(cache.verify(&bad, BODY, now()).is_none());
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert!(cache.verify(&der[..cut], BODY, now()).is_none());
        }
        // Outside the window the full path decides (and says why).
        let k = Known::new(&cert, (0, now() - 1)).unwrap().unwrap();
        let expired = KnownCertificates::new(10);
        expired.insert(k);
        assert!(expired.verify(&der, BODY, now()).is_none());
    }

    #[test]
    fn only_the_kept_key_and_signer_are_accepted() {
        let ca = CertificateAuthority::generate("Test CA", 30).unwrap();
        let (cert, _) = device(&ca);
        let (cert2, key2) = device(&ca);
        let theirs = cms::sign_detached(BODY, &cert2, &key2).unwrap();
        let signed = Signed::parse(&theirs).unwrap();
        let mut k = known(&cert2);
        assert!(signed.is_valid(&k, BODY));
        // The same message checked against another certificate's key: refused.
        k.key = cert.public_key().unwrap().rsa().unwrap();
        assert!(!signed.is_valid(&k, BODY));
        // The right key, but the signer named is another certificate: refused.
        let mut k = known(&cert2);
        k.serial = known(&cert).serial.clone();
        assert!(!signed.is_valid(&k, BODY));
        // A kept certificate does not vouch for a message carrying another one.
        let cache = KnownCertificates::new(10);
        cache.insert(known(&cert));
        assert!(cache.verify(&theirs, BODY, now()).is_none());
    }

    #[test]
    fn the_reader_is_bounded() {
        // 10,000 nested indefinite SEQUENCEs: refused at MAX_DEPTH, no deep recursion.
        let mut deep = vec![];
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0, 0]);
        }
        assert!(read(&deep, 0).is_none());
        assert!(Signed::parse(&deep).is_none());
        // A length beyond the input, and an indefinite primitive.
        assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0).is_none());
        assert!(read(&[0x04, 0x80, 0, 0], 0).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let ca = CertificateAuthority::generate("Test CA", 30).unwrap();
        let (cert, _) = device(&ca);
        let cache = KnownCertificates::new(4);
        for i in 0..10u8 {
            let mut k = known(&cert);
            k.sha256 = [i; 32];
            cache.insert(k);
            assert!(cache.len() <= 4);
        }
        cache.clear();
        assert!(cache.is_empty());
    }
}

//! CMS (PKCS #7) messages: detached `Mdm-Signature`s, signed profiles, and envelopes for SCEP and Apple's server token.

use openssl::cms::{CMSOptions, CmsContentInfo, CmsContentInfoRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Ref, X509};

use super::error::{PkiError, Result};
use super::ffi;

// From <openssl/err.h> and <openssl/cmserr.h>; openssl-sys does not export them.
const ERR_LIB_CMS: i32 = 46;
pub const CMS_R_CERTIFICATE_VERIFY_ERROR: i32 = 100;
pub const CMS_R_CIPHER_INITIALISATION_ERROR: i32 = 101;
pub const CMS_R_CONTENT_TYPE_NOT_SIGNED_DATA: i32 = 108;
pub const CMS_R_NO_CONTENT: i32 = 127;
pub const CMS_R_NO_SIGNERS: i32 = 135;
pub const CMS_R_SIGNER_CERTIFICATE_NOT_FOUND: i32 = 138;

/// Whether a CMS failure carries one of these reasons.
pub fn has_cms_reason(e: &ErrorStack, reasons: &[i32]) -> bool {
    e.errors()
        .iter()
        .any(|err| err.library_code() == ERR_LIB_CMS && reasons.contains(&err.reason_code()))
}

/// Signs `content` as a detached CMS SignedData (SHA-256, signer certificate
/// included, DER) — what a device puts, base64-encoded, in `Mdm-Signature`.
pub fn sign_detached(content: &[u8], cert: &X509Ref, key: &PKeyRef<Private>) -> Result<Vec<u8>> {
    let cms = sign(
        content,
        cert,
        key,
        &[],
        CMSOptions::BINARY | CMSOptions::DETACHED,
    )?;
    Ok(cms.to_der()?)
}

/// Like [`sign_detached`] but BER-encoded with indefinite lengths, as iOS
/// encodes `Mdm-Signature`: the ContentInfo, its `[0]`, the SignedData and the
/// (empty) encapContentInfo use the `0x80` length octet and end in `00 00`.
pub fn sign_detached_ber_indefinite(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
) -> Result<Vec<u8>> {
    der_to_indefinite(&sign_detached(content, cert, key)?)
}

/// Verifies a detached CMS signature (DER or BER) over `content` and returns
/// the one signer's certificate embedded in it.
///
/// Only the signature is checked here, not the certificate chain: the caller
/// decides which CA to trust, with
/// [`CertificateAuthority::verify_issued`](super::ca::CertificateAuthority::verify_issued).
pub fn verify_detached(signature: &[u8], content: &[u8]) -> Result<X509> {
    let mut cms = parse(signature)?;
    require_one_signer_info(&cms)?;
    cms.verify(
        None,
        None,
        Some(content),
        None,
        CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
    )
    .map_err(verify_error)?;
    the_signer(&cms)
}

/// Signs `content` as CMS SignedData with the content included (DER), e.g. a
/// `.mobileconfig`. `chain` holds intermediates to include beside `cert`.
pub fn sign_attached(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<Vec<u8>> {
    Ok(sign(content, cert, key, chain, CMSOptions::BINARY)?.to_der()?)
}

/// The content of a signed profile, its signature checked but not its chain (what a
/// device does before it trusts our CA: the profile shows as "not verified").
pub fn signed_content(signed: &[u8]) -> Result<Vec<u8>> {
    let mut cms = parse(signed)?;
    require_one_signer_info(&cms)?;
    let mut content = Vec::new();
    cms.verify(
        None,
        None,
        None,
        Some(&mut content),
        CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
    )
    .map_err(verify_error)?;
    Ok(content)
}

/// Verifies CMS SignedData with included content against the trust anchor
/// `ca` and returns the content and the signer's certificate.
///
/// Like `openssl cms -verify`, the signer must suit S/MIME signing: no EKU,
/// or one containing emailProtection (see
/// [`issue_signing_cert`](super::ca::CertificateAuthority::issue_signing_cert)).
pub fn verify_attached(signed: &[u8], ca: &X509Ref) -> Result<(Vec<u8>, X509)> {
    let mut cms = parse(signed)?;
    require_one_signer_info(&cms)?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(ca.to_owned())?;
    let store = store.build();
    let mut content = Vec::new();
    cms.verify(
        None,
        Some(&store),
        None,
        Some(&mut content),
        CMSOptions::BINARY,
    )
    .map_err(verify_error)?;
    Ok((content, the_signer(&cms)?))
}

/// Encrypts `content` for `recipient` as CMS EnvelopedData (AES-256-CBC, DER).
pub fn encrypt_envelope(content: &[u8], recipient: &X509Ref) -> Result<Vec<u8>> {
    let mut recipients = Stack::new()?;
    recipients.push(recipient.to_owned())?;
    let cms = CmsContentInfo::encrypt(
        &recipients,
        content,
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )?;
    Ok(cms.to_der()?)
}

/// Decrypts DER CMS EnvelopedData addressed to `cert` with its `key`.
pub fn decrypt_envelope(der: &[u8], cert: &X509Ref, key: &PKeyRef<Private>) -> Result<Vec<u8>> {
    let cms = parse(der)?;
    Ok(cms.decrypt(key, &cert.to_owned())?)
}

/// Builds SignedData with an explicit SHA-256 digest (CMS_sign would pick the
/// key's default digest).
fn sign(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
    flags: CMSOptions,
) -> Result<CmsContentInfo> {
    let mut certs = Stack::new()?;
    for extra in chain {
        certs.push(extra.clone())?;
    }
    let mut cms = CmsContentInfo::sign::<Private>(
        None,
        None,
        Some(&certs),
        None,
        flags | CMSOptions::PARTIAL,
    )?;
    ffi::add_signer_and_finalize(&mut cms, cert, key, MessageDigest::sha256(), content, flags)?;
    Ok(cms)
}

fn parse(bytes: &[u8]) -> Result<CmsContentInfo> {
    if bytes.is_empty() {
        return Err(PkiError::Malformed("empty CMS message".into()));
    }
    CmsContentInfo::from_der(bytes)
        .map_err(|e| PkiError::Malformed(format!("not a CMS message: {}", describe(&e))))
}

fn require_one_signer_info(cms: &CmsContentInfoRef) -> Result<()> {
    match ffi::signer_info_count(cms) {
        None => Err(PkiError::Malformed("not CMS SignedData".into())),
        Some(1) => Ok(()),
        Some(n) => Err(PkiError::Malformed(format!(
            "expected exactly one signer, found {n}"
        ))),
    }
}

fn the_signer(cms: &CmsContentInfoRef) -> Result<X509> {
    let mut signers = ffi::signers(cms);
    match (signers.pop(), signers.is_empty()) {
        (Some(signer), true) => Ok(signer),
        _ => Err(PkiError::BadSignature(
            "no single signer certificate after verification".into(),
        )),
    }
}

/// Sorts a `CMS_verify` failure into the error the caller can act on.
fn verify_error(e: ErrorStack) -> PkiError {
    let has = |reason: i32| has_cms_reason(&e, &[reason]);
    if has(CMS_R_CERTIFICATE_VERIFY_ERROR) {
        PkiError::UntrustedCertificate(describe(&e))
    } else if has(CMS_R_SIGNER_CERTIFICATE_NOT_FOUND) {
        PkiError::Malformed("the signer's certificate is not included".into())
    } else if has(CMS_R_NO_CONTENT) {
        PkiError::Malformed("the message carries no content".into())
    } else {
        PkiError::BadSignature(describe(&e))
    }
}

/// A short, single-line account of an OpenSSL error stack.
pub fn describe(e: &ErrorStack) -> String {
    let parts: Vec<String> = e
        .errors()
        .iter()
        .map(|err| match (err.reason(), err.data()) {
            (Some(reason), Some(data)) => format!("{reason} ({data})"),
            (Some(reason), None) => reason.to_owned(),
            (None, _) => format!("error code {}", err.code()),
        })
        .collect();
    if parts.is_empty() {
        "unknown OpenSSL error".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Re-encodes DER SignedData with indefinite lengths on the outer layers.
///
/// OpenSSL's own streaming encoder (`i2d_CMS_bio_stream`) cannot do this for
/// a detached signature: it puts the content back in. The layers converted
/// are those iOS streams: depth 0–2 (ContentInfo, `[0]`, SignedData) and the
/// encapContentInfo SEQUENCE at depth 3. Certificates and SignerInfos stay
/// DER, so their signatures still cover the exact bytes.
fn der_to_indefinite(der: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(der.len() + 16);
    reencode(der, 0, &mut out)?;
    Ok(out)
}

fn reencode(mut input: &[u8], depth: usize, out: &mut Vec<u8>) -> Result<()> {
    const CONSTRUCTED: u8 = 0x20;
    const SEQUENCE: u8 = 0x30;
    while !input.is_empty() {
        let tlv = split_tlv(input)?;
        let constructed = tlv.tag.first().is_some_and(|t| t & CONSTRUCTED != 0);
        let streamed = depth < 3 || (depth == 3 && tlv.tag == [SEQUENCE]);
        if constructed && streamed {
            out.extend_from_slice(tlv.tag);
            out.push(0x80);
            reencode(tlv.value, depth + 1, out)?;
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(tlv.whole);
        }
        input = tlv.rest;
    }
    Ok(())
}

/// One DER tag-length-value and what follows it.
struct Tlv<'a> {
    tag: &'a [u8],
    value: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

fn split_tlv(input: &[u8]) -> Result<Tlv<'_>> {
    let truncated = || PkiError::Malformed("truncated DER".into());
    let first = *input.first().ok_or_else(truncated)?;
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        // High tag number form: base-128 digits, the last without bit 8.
        loop {
            let byte = *input.get(pos).ok_or_else(truncated)?;
            pos += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    let tag_end = pos;
    let length_octet = *input.get(pos).ok_or_else(truncated)?;
    pos += 1;
    let len = if length_octet < 0x80 {
        usize::from(length_octet)
    } else {
        let count = usize::from(length_octet & 0x7f);
        if count == 0 || count > std::mem::size_of::<usize>() {
            return Err(PkiError::Malformed("not definite-length DER".into()));
        }
        let octets = input.get(pos..pos + count).ok_or_else(truncated)?;
        pos += count;
        octets
            .iter()
            .fold(0usize, |acc, &octet| (acc << 8) | usize::from(octet))
    };
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= input.len())
        .ok_or_else(truncated)?;
    let (whole, rest) = input.split_at(end);
    Ok(Tlv {
        tag: &whole[..tag_end],
        value: &whole[pos..],
        whole,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::X509Name;

    use super::super::ca::CertificateAuthority;
    use super::*;

    const OPENSSL_CLI: &str = "/usr/bin/openssl";
    const CHECKIN: &[u8] = b"<?xml version=\"1.0\"?>\n<plist><dict><key>MessageType</key>\
        <string>Authenticate</string><key>UDID</key><string>0000-1111</string></dict></plist>\n";

    /// A device as SCEP leaves it: its own key and a certificate from our CA.
    struct Device {
        ca: CertificateAuthority,
        cert: X509,
        key: PKey<Private>,
    }

    fn enrolled_device() -> Device {
        let ca = CertificateAuthority::generate("tafel test CA", 30).unwrap();
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        let mut subject = X509Name::builder().unwrap();
        subject
            .append_entry_by_nid(Nid::COMMONNAME, "0000-1111")
            .unwrap();
        let cert = ca.issue_client_cert(&public, &subject.build(), 30).unwrap();
        Device { ca, cert, key }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_device_signature_in_der_verifies_and_names_the_device() {
        let device = enrolled_device();
        let signature = sign_detached(CHECKIN, &device.cert, &device.key).unwrap();
        assert_eq!(signature[..2], [0x30, 0x82], "definite-length DER");
        assert!(!contains(&signature, CHECKIN), "detached: body not inside");
        // id-sha256 (2.16.840.1.101.3.4.2.1) is the digest algorithm.
        assert!(contains(
            &signature,
            &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
        ));

        let signer = verify_detached(&signature, CHECKIN).unwrap();
        assert_eq!(signer.to_der().unwrap(), device.cert.to_der().unwrap());
        device.ca.verify_issued(&signer, None).unwrap();
    }

    #[test]
    fn an_ipad_style_ber_signature_uses_indefinite_lengths_and_verifies() {
        let device = enrolled_device();
        let signature = sign_detached_ber_indefinite(CHECKIN, &device.cert, &device.key).unwrap();
        // SEQUENCE, indefinite; then the signedData OID; then [0], indefinite;
        // then the SignedData SEQUENCE, indefinite.
        assert_eq!(signature[..2], [0x30, 0x80]);
        assert_eq!(signature[13..17], [0xa0, 0x80, 0x30, 0x80]);
        assert_eq!(signature[signature.len() - 6..], [0; 6]);
        assert!(!contains(&signature, CHECKIN));

        let signer = verify_detached(&signature, CHECKIN).unwrap();
        assert_eq!(signer.to_der().unwrap(), device.cert.to_der().unwrap());
        let err = verify_detached(&signature, b"<plist>tampered</plist>").unwrap_err();
        assert!(matches!(err, PkiError::BadSignature(_)), "{err}");
    }

    #[test]
    fn the_ber_signature_also_satisfies_the_openssl_cli() {
        if !std::path::Path::new(OPENSSL_CLI).exists() {
            eprintln!("skipped: {OPENSSL_CLI} not installed");
            return;
        }
        let device = enrolled_device();
        let dir = tempfile::tempdir().unwrap();
        let (sig, body) = (dir.path().join("sig.ber"), dir.path().join("body"));
        std::fs::write(
            &sig,
            sign_detached_ber_indefinite(CHECKIN, &device.cert, &device.key).unwrap(),
        )
        .unwrap();
        std::fs::write(&body, CHECKIN).unwrap();
        let parsed = Command::new(OPENSSL_CLI)
            .args(["asn1parse", "-inform", "DER", "-i", "-in"])
            .arg(&sig)
            .output()
            .unwrap();
        assert!(parsed.status.success());
        let listing = String::from_utf8_lossy(&parsed.stdout);
        assert!(
            listing.lines().next().unwrap().contains("l=inf"),
            "{listing}"
        );
        let verified = Command::new(OPENSSL_CLI)
            .args([
                "cms",
                "-verify",
                "-noverify",
                "-binary",
                "-inform",
                "DER",
                "-in",
            ])
            .arg(&sig)
            .arg("-content")
            .arg(&body)
            .args(["-out", "/dev/null"])
            .output()
            .unwrap();
        assert!(verified.status.success(), "{verified:?}");
    }

    #[test]
    fn a_tampered_body_is_a_bad_signature() {
        let device = enrolled_device();
        let signature = sign_detached(CHECKIN, &device.cert, &device.key).unwrap();
        let mut tampered = CHECKIN.to_vec();
        tampered[60] ^= 1;
        let err = verify_detached(&signature, &tampered).unwrap_err();
        assert!(matches!(err, PkiError::BadSignature(_)), "{err}");
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in [
            &b""[..],
            b"hello",
            &[0x30, 0x80, 0x06],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
        ] {
            let err = verify_detached(garbage, CHECKIN).unwrap_err();
            assert!(matches!(err, PkiError::Malformed(_)), "{garbage:?}: {err}");
        }
        // Valid CMS, but an envelope rather than a signature.
        let device = enrolled_device();
        let envelope = encrypt_envelope(CHECKIN, &device.cert).unwrap();
        let err = verify_detached(&envelope, CHECKIN).unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)), "{err}");
    }

    #[test]
    fn two_signers_or_a_missing_signer_certificate_are_refused() {
        if !std::path::Path::new(OPENSSL_CLI).exists() {
            eprintln!("skipped: {OPENSSL_CLI} not installed");
            return;
        }
        let (one, two) = (enrolled_device(), enrolled_device());
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("body"), CHECKIN).unwrap();
        for (name, device) in [("one", &one), ("two", &two)] {
            std::fs::write(path(&format!("{name}.crt")), device.cert.to_pem().unwrap()).unwrap();
            let key = device.key.private_key_to_pem_pkcs8().unwrap();
            std::fs::write(path(&format!("{name}.key")), key).unwrap();
        }
        let cli_sign = |extra: &[&str], out: &str| {
            let status = Command::new(OPENSSL_CLI)
                .args(["cms", "-sign", "-binary", "-outform", "DER", "-in"])
                .arg(path("body"))
                .args(extra)
                .arg("-out")
                .arg(path(out))
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
            std::fs::read(path(out)).unwrap()
        };

        let plain = cli_sign(&["-signer", "one.crt", "-inkey", "one.key"], "plain.der");
        verify_detached(&plain, CHECKIN).unwrap();

        let both = cli_sign(
            &[
                "-signer", "one.crt", "-inkey", "one.key", "-signer", "two.crt", "-inkey",
                "two.key",
            ],
            "both.der",
        );
        let err = verify_detached(&both, CHECKIN).unwrap_err();
        assert!(
            matches!(&err, PkiError::Malformed(m) if m.contains("found 2")),
            "{err}"
        );

        let bare = cli_sign(
            &["-signer", "one.crt", "-inkey", "one.key", "-nocerts"],
            "bare.der",
        );
        let err = verify_detached(&bare, CHECKIN).unwrap_err();
        assert!(
            matches!(&err, PkiError::Malformed(m) if m.contains("not included")),
            "{err}"
        );
    }

    #[test]
    fn a_signed_profile_verifies_here_and_with_the_openssl_cli() {
        let ca = CertificateAuthority::generate("tafel test CA", 30).unwrap();
        let (cert, key) = ca.issue_signing_cert("tafel profile signing", 30).unwrap();
        let profile = b"<?xml version=\"1.0\"?>\r\n<plist>\n<dict/>\n</plist>\n".to_vec();
        let signed = sign_attached(&profile, &cert, &key, &[]).unwrap();
        assert!(contains(&signed, &profile));

        let (content, signer) = verify_attached(&signed, ca.cert()).unwrap();
        assert_eq!(content, profile);
        assert_eq!(signer.to_der().unwrap(), cert.to_der().unwrap());

        let foreign = CertificateAuthority::generate("tafel test CA", 30).unwrap();
        let err = verify_attached(&signed, foreign.cert()).unwrap_err();
        assert!(matches!(err, PkiError::UntrustedCertificate(_)), "{err}");

        if !std::path::Path::new(OPENSSL_CLI).exists() {
            eprintln!("skipped the CLI half: {OPENSSL_CLI} not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (signed_path, ca_path, out_path) = (
            dir.path().join("profile.mobileconfig"),
            dir.path().join("ca.pem"),
            dir.path().join("out.plist"),
        );
        std::fs::write(&signed_path, &signed).unwrap();
        std::fs::write(&ca_path, ca.cert_pem().unwrap()).unwrap();
        let verified = Command::new(OPENSSL_CLI)
            .args(["cms", "-verify", "-inform", "DER", "-in"])
            .arg(&signed_path)
            .arg("-CAfile")
            .arg(&ca_path)
            .arg("-out")
            .arg(&out_path)
            .output()
            .unwrap();
        assert!(verified.status.success(), "{verified:?}");
        assert_eq!(std::fs::read(&out_path).unwrap(), profile);
    }

    #[test]
    fn an_envelope_opens_only_for_its_recipient() {
        let device = enrolled_device();
        let envelope = encrypt_envelope(CHECKIN, &device.cert).unwrap();
        assert!(!contains(&envelope, b"Authenticate"));
        assert_eq!(
            decrypt_envelope(&envelope, &device.cert, &device.key).unwrap(),
            CHECKIN
        );

        let stranger = enrolled_device();
        assert!(decrypt_envelope(&envelope, &stranger.cert, &stranger.key).is_err());
        assert!(matches!(
            decrypt_envelope(b"junk", &device.cert, &device.key),
            Err(PkiError::Malformed(_))
        ));
    }

    #[test]
    fn der_is_reencoded_only_on_the_outer_layers() {
        // SEQUENCE { [0] { SEQUENCE { INTEGER 1, SEQUENCE { OID-ish }, SET { } } } }
        let der = [
            0x30, 0x0f, 0xa0, 0x0d, 0x30, 0x0b, 0x02, 0x01, 0x01, 0x30, 0x03, 0x06, 0x01, 0x2a,
            0x31, 0x01, 0x05,
        ];
        // The inner SET is malformed on purpose: it is copied, never parsed.
        let ber = der_to_indefinite(&der).unwrap();
        assert_eq!(
            ber,
            [
                0x30, 0x80, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x01, 0x30, 0x80, 0x06, 0x01, 0x2a,
                0x00, 0x00, 0x31, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ]
        );
        assert!(der_to_indefinite(&[0x30, 0x05, 0x02]).is_err());
    }
}

//! The certificate signing request for an authority's push certificate, and the MDM
//! vendor's signature over it that Apple's Push Certificates Portal asks for.
//!
//! The flow (Apple's "MDM Vendor CSR Signing Overview"): the customer makes a key and a
//! plain PKCS #10 request; an MDM vendor, holding an "MDM CSR" certificate from the
//! Apple Developer Enterprise Program, signs the request's DER with SHA-256 and RSA and
//! wraps request, signature and its certificate chain in a `PushCertRequest` plist,
//! base64-encoded; the customer uploads that at identity.apple.com/pushcert and gets
//! the push certificate for the request's key. The same steps as MicroMDM's
//! `mdmctl mdmcert vendor` (`pkg/crypto/mdmcertutil`).

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::{X509Name, X509Req, X509ReqBuilder, X509};

use super::error::{PushError, Result};

/// RSA key size of push keys (what Keychain Access and the vendors' tools make).
const KEY_BITS: u32 = 2048;
/// X.520 upper bound for common and organization names (`ub-common-name`).
const NAME_CHARS: usize = 64;

/// A new push key and its certificate signing request.
pub struct CertificateRequest {
    /// The private key: the push certificate's key once Apple has issued it.
    pub key: PKey<Private>,
    /// The request (subject `CN=tafel <authority>, O=<authority>, C=DE`).
    pub csr: X509Req,
}

impl std::fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("CertificateRequest").finish_non_exhaustive()
    }
}

impl CertificateRequest {
    /// Makes an RSA-2048 key and a SHA-256-signed request for `authority` (its name).
    pub fn generate(authority: &str) -> Result<Self> {
        let key = PKey::from_rsa(Rsa::generate(KEY_BITS)?)?;
        let mut b = X509ReqBuilder::new()?;
        b.set_version(0)?;
        let name = subject(authority)?;
        b.set_subject_name(&name)?;
        b.set_pubkey(&key)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            key,
            csr: b.build(),
        })
    }

    /// The request as PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub fn csr_pem(&self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.csr.to_pem()?).into_owned())
    }
}

/// `CN=tafel <authority>, O=<authority>, C=DE`, each cut to the length X.520 allows.
pub fn subject(authority: &str) -> Result<X509Name> {
    let authority = authority.trim();
    let org = if authority.is_empty() {
        "tafel"
    } else {
        authority
    };
    let mut n = X509Name::builder()?;
    n.append_entry_by_nid(Nid::COMMONNAME, &cut(&format!("tafel {org}")))?;
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, &cut(org))?;
    n.append_entry_by_nid(Nid::COUNTRYNAME, "DE")?;
    Ok(n.build())
}

fn cut(s: &str) -> String {
    s.chars().take(NAME_CHARS).collect()
}

/// Reads a PEM request, checking its self-signature.
pub fn parse_csr(pem: &[u8]) -> Result<X509Req> {
    let csr = X509Req::from_pem(pem)
        .map_err(|e| PushError::Malformed(format!("not a PEM certificate request: {e}")))?;
    let key = csr.public_key()?;
    if !csr.verify(&key)? {
        return Err(PushError::Malformed(
            "the certificate request's signature does not verify".into(),
        ));
    }
    Ok(csr)
}

/// "Apple Worldwide Developer Relations Certification Authority" G3 (2020–2030), issued
/// by Apple Root CA: the usual issuer of vendors' "MDM CSR" certificates. From Apple's
/// certificate authority page (`AppleWWDRCAG3.cer`); SHA-256 fingerprint
/// `DC:F2:18:78:C7:7F:41:98:E4:B4:61:4F:03:D6:96:D8:9C:66:C6:60:08:D4:24:4E:1B:99:16:1A:AC:91:60:1F`
/// (checked by a unit test).
pub const APPLE_WWDR_G3_CA_PEM: &[u8] = include_bytes!("apple_wwdr_g3_ca.pem");

/// The chain Apple's portal wants after the vendor's certificate: `issuers` when given,
/// else the built-in WWDR G3 intermediate (when it issued the vendor's certificate);
/// Apple Root CA is added when the chain does not end in it.
pub fn vendor_chain(vendor: X509, issuers: Vec<X509>) -> Result<Vec<X509>> {
    let root = X509::from_pem(crate::ade::machine_info::APPLE_ROOT_CA_PEM)?;
    let wwdr = X509::from_pem(APPLE_WWDR_G3_CA_PEM)?;
    let mut chain = vec![vendor];
    if issuers.is_empty() {
        let issuer = chain[0].issuer_name().to_der()?;
        if issuer == wwdr.subject_name().to_der()? {
            chain.push(wwdr);
        } else if issuer != root.subject_name().to_der()? {
            return Err(PushError::Malformed(format!(
                "the vendor certificate was issued by {:?}, which tafel does not have built in: pass its issuer (from apple.com/certificateauthority) as the chain",
                chain[0]
                    .issuer_name()
                    .entries_by_nid(Nid::COMMONNAME)
                    .next()
                    .and_then(|e| e.data().to_string().ok())
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )));
        }
    } else {
        chain.extend(issuers);
    }
    let last = chain.last().map(|c| c.to_der()).transpose()?;
    if last != Some(root.to_der()?) {
        chain.push(root);
    }
    Ok(chain)
}

/// The vendor's `PushCertRequest` for Apple's portal, base64 of an XML plist with
/// `PushCertRequestCSR` (base64 DER), `PushCertCertificateChain` (the vendor's
/// certificate, then its issuers, PEM) and `PushCertSignature` (SHA-256 with RSA over
/// the request's DER, base64).
///
/// `vendor_chain` starts with the vendor's "MDM CSR" certificate, whose key `vendor_key`
/// must be.
pub fn vendor_sign(
    csr: &X509Req,
    vendor_chain: &[X509],
    vendor_key: &PKeyRef<Private>,
) -> Result<String> {
    let vendor = vendor_chain
        .first()
        .ok_or_else(|| PushError::Malformed("no vendor certificate".into()))?;
    if !vendor.public_key()?.public_eq(vendor_key) {
        return Err(PushError::KeyMismatch);
    }
    let der = csr.to_der()?;
    let mut signer = Signer::new(MessageDigest::sha256(), vendor_key)?;
    signer.update(&der)?;
    let signature = signer.sign_to_vec()?;
    let mut chain = String::new();
    for c in vendor_chain {
        chain.push_str(&String::from_utf8_lossy(&c.to_pem()?));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut dict = plist::Dictionary::new();
    dict.insert("PushCertRequestCSR".into(), b64.encode(&der).into());
    dict.insert("PushCertCertificateChain".into(), chain.into());
    dict.insert("PushCertSignature".into(), b64.encode(signature).into());
    let mut xml = Vec::new();
    plist::Value::Dictionary(dict)
        .to_writer_xml(&mut xml)
        .map_err(|e| PushError::Malformed(format!("cannot write the plist: {e}")))?;
    Ok(b64.encode(xml))
}

#[cfg(test)]
mod tests {
    use openssl::asn1::Asn1Time;
    use openssl::sign::Verifier;
    use openssl::x509::X509Builder;

    use super::*;

    #[test]
    fn the_request_names_the_authority_and_carries_a_fresh_2048_bit_key() {
        let r = CertificateRequest::generate("Landkreis Musterstadt – Schulträger").unwrap();
        let csr = parse_csr(r.csr_pem().unwrap().as_bytes()).unwrap();
        let subject: Vec<(String, String)> = csr
            .subject_name()
            .entries()
            .map(|e| {
                (
                    e.object().nid().short_name().unwrap().to_owned(),
                    e.data().to_string().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            subject,
            [
                (
                    "CN".into(),
                    "tafel Landkreis Musterstadt – Schulträger".into()
                ),
                ("O".into(), "Landkreis Musterstadt – Schulträger".into()),
                ("C".into(), "DE".into()),
            ]
        );
        let key = csr.public_key().unwrap();
        assert!(key.public_eq(&r.key));
        assert_eq!(key.bits(), 2048);
        assert!(!format!("{r:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_long_name_is_cut_to_what_x520_allows() {
        let long = "Zweckverband ".repeat(10);
        let r = CertificateRequest::generate(&long).unwrap();
        let cn = r
            .csr
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap()
            .to_string();
        assert_eq!(cn.chars().count(), 64);
    }

    #[test]
    fn the_built_in_wwdr_intermediate_is_apples_and_completes_a_vendor_chain() {
        let wwdr = X509::from_pem(APPLE_WWDR_G3_CA_PEM).unwrap();
        let root = X509::from_pem(crate::ade::machine_info::APPLE_ROOT_CA_PEM).unwrap();
        assert_eq!(
            hex::encode(wwdr.digest(MessageDigest::sha256()).unwrap()),
            "dcf21878c77f4198e4b4614f03d696d89c66c66008d4244e1b99161aac91601f"
        );
        assert!(wwdr.verify(&root.public_key().unwrap()).unwrap());
        // A vendor certificate "issued" by WWDR G3 (its name only) gets WWDR and root.
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = X509Builder::new().unwrap();
        b.set_subject_name(&subject("Vendor").unwrap()).unwrap();
        b.set_issuer_name(wwdr.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let chain = vendor_chain(b.build(), vec![]).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[1].to_der().unwrap(), wwdr.to_der().unwrap());
        assert_eq!(chain[2].to_der().unwrap(), root.to_der().unwrap());
        // One from an unknown issuer needs the chain named.
        let mut b = X509Builder::new().unwrap();
        let name = subject("Elsewhere").unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let err = vendor_chain(b.build(), vec![]).unwrap_err();
        assert!(err.to_string().contains("tafel Elsewhere"), "{err}");
    }

    #[test]
    fn the_vendor_signs_the_request_as_apples_portal_expects() {
        let r = CertificateRequest::generate("Stadt Beispiel").unwrap();
        let vendor_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = X509Builder::new().unwrap();
        let name = subject("MDM Vendor").unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&vendor_key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&vendor_key, MessageDigest::sha256()).unwrap();
        let vendor = b.build();

        let encoded = vendor_sign(&r.csr, std::slice::from_ref(&vendor), &vendor_key).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let xml = b64.decode(encoded).unwrap();
        let dict: plist::Dictionary = plist::from_bytes(&xml).unwrap();
        let field = |k: &str| dict.get(k).unwrap().as_string().unwrap().to_owned();
        let der = b64.decode(field("PushCertRequestCSR")).unwrap();
        assert_eq!(der, r.csr.to_der().unwrap());
        assert!(field("PushCertCertificateChain")
            .starts_with(&String::from_utf8(vendor.to_pem().unwrap()).unwrap()));
        let signature = b64.decode(field("PushCertSignature")).unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &vendor_key).unwrap();
        v.update(&der).unwrap();
        assert!(v.verify(&signature).unwrap());

        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        assert!(matches!(
            vendor_sign(&r.csr, &[vendor], &other),
            Err(PushError::KeyMismatch)
        ));
    }
}

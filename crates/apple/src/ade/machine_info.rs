//! The machine info an ADE device POSTs to its enrollment profile URL: verifying its CMS signature against Apple's device PKI and reading the plist.
//!
//! During Setup Assistant a device assigned in Apple School Manager POSTs
//! (`Content-Type: application/pkcs7-signature`) a CMS SignedData with the
//! content attached: an XML plist dictionary described by Apple's schema
//! `other/machineinfo.yaml` (apple/device-management). Apple's note there:
//! "This dictionary is CMS-signed with the device identity certificate. The
//! system includes the device's certificate and all necessary intermediate
//! certificates. The certificate chain should validate against the Apple
//! Root CA." ([`APPLE_ROOT_CA_PEM`]).
//!
//! Two things about that chain matter in practice:
//! * "Apple iPhone Device CA" expired in 2014 and "Apple iPhone Certification
//!   Authority" in 2022, yet Apple still issues device identities under them,
//!   so real devices only verify with `check_time = false` (Apple's OTA
//!   profile-service guide: validity dates of certificates signed by "Apple
//!   iPhone Device CA" should be ignored). Both are RSA with SHA-1 signatures.
//! * Device identities carry no S/MIME key purpose, so any purpose is accepted.
//!
//! Error policy: every failure is a [`MachineInfoError`] whose message says
//! what was wrong with the request in words an administrator can act on; none
//! of them should be answered with HTTP 401 (see STYLE.md).

use std::path::{Path, PathBuf};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509Ref, X509};
use tafel_pki::cms::{
    describe, has_cms_reason, CMS_R_CERTIFICATE_VERIFY_ERROR, CMS_R_CONTENT_TYPE_NOT_SIGNED_DATA,
    CMS_R_NO_CONTENT, CMS_R_NO_SIGNERS, CMS_R_SIGNER_CERTIFICATE_NOT_FOUND,
};

/// Apple Root CA (Apple Inc., 2006–2035), the anchor of the device identity
/// chain. SHA-256 fingerprint
/// `B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24`
/// (checked by a unit test).
pub const APPLE_ROOT_CA_PEM: &[u8] = include_bytes!("apple_root_ca.pem");

/// The two public Apple intermediates between [`APPLE_ROOT_CA_PEM`] and a
/// device identity: "Apple iPhone Certification Authority" (2007–2022, issued
/// by Apple Root CA) and "Apple iPhone Device CA" (2007–2014, issued by the
/// former). Devices should include them, but MicroMDM reports the chains iOS
/// and macOS send are inconsistent, so [`verify`] offers them for path
/// building. They are not self-signed, so they never become trust anchors
/// themselves: a chain through them is trusted only if their root is among
/// the caller's anchors. A unit test checks both signatures up to the root.
const APPLE_DEVICE_INTERMEDIATES_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIID8zCCAtugAwIBAgIBFzANBgkqhkiG9w0BAQUFADBiMQswCQYDVQQGEwJVUzET
MBEGA1UEChMKQXBwbGUgSW5jLjEmMCQGA1UECxMdQXBwbGUgQ2VydGlmaWNhdGlv
biBBdXRob3JpdHkxFjAUBgNVBAMTDUFwcGxlIFJvb3QgQ0EwHhcNMDcwNDEyMTc0
MzI4WhcNMjIwNDEyMTc0MzI4WjB5MQswCQYDVQQGEwJVUzETMBEGA1UEChMKQXBw
bGUgSW5jLjEmMCQGA1UECxMdQXBwbGUgQ2VydGlmaWNhdGlvbiBBdXRob3JpdHkx
LTArBgNVBAMTJEFwcGxlIGlQaG9uZSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTCC
ASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAKMevvBHwLSeEFtGpLghuE+G
IXAoRWBcHMPICmRjiPv8ae74VPzpW7cGTgQvw2szr0RM6kuACbSH9lu0/WTds3Lg
E7P9F9m856jtwoxhwir57M6lXtZp62QLjQiPuKBQRgncGeTlsJRtu/eZmMTom0FO
1PFl4xtSetzoA9luHdoQVYakKVhJDOpH1xU0M/bAoERKcL4stSowN4wuFevR5GyX
OFVWsTUrWOpEoyaF7shmSuTPifA9Y60p3q26WrPcpaOapwlOgBY1ZaSFDWN7PmOK
2n1KRuyjORg0ucYoZRi8E2Ccf1esFMmJ7aG2h2hStoROuMiD7PmeGauzwQuGx58C
AwEAAaOBnDCBmTAOBgNVHQ8BAf8EBAMCAYYwDwYDVR0TAQH/BAUwAwEB/zAdBgNV
HQ4EFgQU5zQqLiLeOWBrtJTOd4NhLzGgfDUwHwYDVR0jBBgwFoAUK9BpR5R2Cf70
a40uQKb3R01/CF4wNgYDVR0fBC8wLTAroCmgJ4YlaHR0cDovL3d3dy5hcHBsZS5j
b20vYXBwbGVjYS9yb290LmNybDANBgkqhkiG9w0BAQUFAAOCAQEAHdHVe910TtcX
/IItDJmbXkJy8mnc1WteDQxrSz57FCXes5TooPoPgInyFz0AAqKRkb50V9yvmp+h
Cn0wvgAqzCFZ6/1JrG51GeiaegPRhvbn9rAOS0n6o7dButfR41ahfYOrl674UUom
wYVCEyaNA1RmEF5ghAUSMStrVMCgyEG8VB7nVK0TANJKx7vBiq+BCI7wRgq/J6a+
3M85OoBwGSMyo2tmXZ5NqEdJsntFtVEzp3RnCU62bG9I9yy5MwVEa0W+dEtvsoaR
tD4lKCWes8JRhvxP5a87qrtELAFJ4nSzNPpE7xTCEfItGRpRidMISkFsWFbemzrh
BVflYs/SDw==
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIDaTCCAlGgAwIBAgIBATANBgkqhkiG9w0BAQUFADB5MQswCQYDVQQGEwJVUzET
MBEGA1UEChMKQXBwbGUgSW5jLjEmMCQGA1UECxMdQXBwbGUgQ2VydGlmaWNhdGlv
biBBdXRob3JpdHkxLTArBgNVBAMTJEFwcGxlIGlQaG9uZSBDZXJ0aWZpY2F0aW9u
IEF1dGhvcml0eTAeFw0wNzA0MTYyMjU0NDZaFw0xNDA0MTYyMjU0NDZaMFoxCzAJ
BgNVBAYTAlVTMRMwEQYDVQQKEwpBcHBsZSBJbmMuMRUwEwYDVQQLEwxBcHBsZSBp
UGhvbmUxHzAdBgNVBAMTFkFwcGxlIGlQaG9uZSBEZXZpY2UgQ0EwgZ8wDQYJKoZI
hvcNAQEBBQADgY0AMIGJAoGBAPGUSsnquloYYK3Lok1NTlQZaRdZB2bLl+hmmkdf
Rq5nerVKc1SxywT2vTa4DFU4ioSDMVJl+TPhl3ecK0wmsCU/6TKqewh0lOzBSzgd
Z04IUpRai1mjXNeT9KD+VYW7TEaXXm6yd0UvZ1y8Cxi/WblshvcqdXbSGXH0KWO5
JQuvAgMBAAGjgZ4wgZswDgYDVR0PAQH/BAQDAgGGMA8GA1UdEwEB/wQFMAMBAf8w
HQYDVR0OBBYEFLL+ISNEhpVqedWBJo5zENinTI50MB8GA1UdIwQYMBaAFOc0Ki4i
3jlga7SUzneDYS8xoHw1MDgGA1UdHwQxMC8wLaAroCmGJ2h0dHA6Ly93d3cuYXBw
bGUuY29tL2FwcGxlY2EvaXBob25lLmNybDANBgkqhkiG9w0BAQUFAAOCAQEAd13P
Z3pMViukVHe9WUg8Hum+0I/0kHKvjhwVd/IMwGlXyU7DhUYWdja2X/zqj7W24Aq5
7dEKm3fqqxK5XCFVGY5HI0cRsdENyTP7lxSiiTRYj2mlPedheCn+k6T5y0U4Xr40
FXwWb2nWqCF1AgIudhgvVbxlvqcxUm8Zz7yDeJ0JFovXQhyO5fLUHRLCQFssAbf8
B4i8rYYsBUhYTspVJcxVpIIltkYpdIRSIARA49HNvKK4hzjzMS/OhKQpVKw+OCEZ
xptCVeN2pjbdt9uzi175oVo/u6B2ArKAW17u6XEHIdDMOe7cb33peVI6TD15W4MI
pyQPbp8orlXe+tA8JA==
-----END CERTIFICATE-----
";

/// A real body is a few kilobytes (plist plus two or three certificates);
/// anything much larger is refused before OpenSSL parses it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest value accepted for any key (UDIDs are 25 or 40 characters,
/// serials 10–14, IMEIs 15).
pub const MAX_VALUE_CHARS: usize = 128;

/// What a device says about itself when it asks for its enrollment profile.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct MachineInfo {
    /// `UDID`: the device's UDID.
    pub udid: String,
    /// `SERIAL`: the hardware serial number, as Apple School Manager lists it.
    pub serial: String,
    /// `PRODUCT`: the product type, e.g. `iPad13,18`.
    pub product: String,
    /// `VERSION`: the OS build, e.g. `21E236`.
    pub version: String,
    /// `IMEI`, on cellular models.
    pub imei: Option<String>,
    /// `MEID`, on CDMA-capable models.
    pub meid: Option<String>,
    /// `LANGUAGE`: the language picked in Setup Assistant, e.g. `de`.
    pub language: Option<String>,
    /// `DEVICE_NAME`: not in Apple's MachineInfo schema (it is an OTA
    /// profile-service attribute), read when a device sends it.
    pub device_name: Option<String>,
}

/// Why a machine info body was refused.
#[derive(Debug, thiserror::Error)]
pub enum MachineInfoError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error(
        "the request body is {size} bytes; a device's signed machine info is never larger \
         than {max} bytes"
    )]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not CMS SignedData (e.g. a bare plist, or garbage).
    #[error(
        "the request body is not a CMS-signed message: devices in Setup Assistant POST their \
         machine info signed (application/pkcs7-signature), so this did not come from one"
    )]
    NotSigned,
    /// Signed, but the plist is not inside (a detached signature).
    #[error("the signed message carries no machine info (the content is detached)")]
    NoContent,
    /// The signature does not match the content or the signer's key.
    #[error(
        "the machine info signature does not verify, so the body was altered or corrupted: {0}"
    )]
    BadSignature(String),
    /// The signer's certificate does not chain to a configured anchor (or has
    /// expired while `check_time` is on).
    #[error(
        "the certificate that signed the machine info is not trusted (it must chain to Apple's \
         device CA and root): {0}"
    )]
    Untrusted(String),
    /// The signed content is not a plist dictionary of strings as Apple describes it.
    #[error("the signed machine info is not a valid property list: {0}")]
    BadPlist(String),
    /// A required key (`UDID`, `SERIAL`, `PRODUCT`, `VERSION`) is absent or empty.
    #[error("the signed machine info lacks the required key {0}")]
    Missing(&'static str),
    /// A trust anchor file could not be read or holds no PEM certificate.
    #[error("cannot load trust anchors from {}: {reason}", path.display())]
    Anchors {
        /// The file named in the configuration.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// OpenSSL itself failed (out of memory, unsupported key, …).
    #[error("openssl: {0}")]
    Crypto(#[from] ErrorStack),
}

/// Verifies the CMS signature (signer cert chains to one of `anchors`;
/// intermediates taken from the SignedData; any key purpose accepted — Apple
/// device certs carry no S/MIME purpose) and parses the plist.
/// `check_time=false` skips certificate validity dates
/// (`X509_V_FLAG_NO_CHECK_TIME`) since some Apple device CA certs are long expired.
///
/// `anchors` are roots: a certificate that is not self-signed only helps to
/// build a path (as Apple's intermediates always do here), it does not end one.
/// The body may be DER or BER with indefinite lengths; every signer must verify.
pub fn verify(
    body: &[u8],
    anchors: &[X509],
    check_time: bool,
) -> Result<MachineInfo, MachineInfoError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(MachineInfoError::TooLarge {
            size: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    if body.is_empty() {
        return Err(MachineInfoError::NotSigned);
    }
    // d2i_CMS_ContentInfo reads BER too, which is what a streaming signer writes.
    let mut cms = CmsContentInfo::from_der(body).map_err(|_| MachineInfoError::NotSigned)?;
    if anchors.is_empty() {
        return Err(MachineInfoError::Untrusted(
            "no trust anchor is configured".into(),
        ));
    }
    let store = trust_store(anchors, check_time)?;
    let mut content = Vec::new();
    // CMS_verify checks every signer's chain against `store` (untrusted
    // intermediates: the certificates inside the message), then each
    // signature over the signed attributes, then the content digest.
    cms.verify(
        None,
        Some(&store),
        None,
        Some(&mut content),
        CMSOptions::BINARY,
    )
    .map_err(verify_error)?;
    // A chain to the root is not enough: Apple Root CA also anchors push,
    // developer and many other certificates whose keys live outside Apple. The
    // signer must be a device identity: issued by the (verified) "Apple iPhone
    // Device CA" in its chain, or, for tests and simulators, directly by a
    // configured anchor.
    for signer in tafel_pki::ffi::signers(&cms) {
        let by_device_ca = common_name(signer.issuer_name()).as_deref() == Some(DEVICE_CA_NAME);
        let by_anchor = anchors.iter().any(|anchor| {
            anchor.issued(&signer) == openssl::x509::X509VerifyResult::OK
                && anchor
                    .public_key()
                    .and_then(|key| signer.verify(&key))
                    .unwrap_or(false)
        });
        if !by_device_ca && !by_anchor {
            return Err(MachineInfoError::Untrusted(format!(
                "the signer ({}) is not a device identity issued by {DEVICE_CA_NAME}",
                common_name(signer.subject_name()).unwrap_or_default()
            )));
        }
    }
    parse(&content)
}

/// Common name of Apple's CA that issues every device identity.
const DEVICE_CA_NAME: &str = "Apple iPhone Device CA";

/// The common name in a certificate name, if any.
fn common_name(name: &openssl::x509::X509NameRef) -> Option<String> {
    name.entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

/// The signed body a device sends (used by the simulator and tests): the
/// plist signed by `cert`/`key` with `chain` included, DER.
pub fn sign(
    info: &MachineInfo,
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<Vec<u8>, MachineInfoError> {
    sign_content(&to_plist(info), cert, key, chain, CMSOptions::BINARY)
}

/// The plist as a device writes it: XML, keys sorted, absent or empty
/// optional values left out.
pub fn to_plist(info: &MachineInfo) -> Vec<u8> {
    let mut entries: Vec<(&str, &str)> = vec![
        ("UDID", &info.udid),
        ("SERIAL", &info.serial),
        ("PRODUCT", &info.product),
        ("VERSION", &info.version),
    ];
    let optional = [
        ("IMEI", &info.imei),
        ("MEID", &info.meid),
        ("LANGUAGE", &info.language),
        ("DEVICE_NAME", &info.device_name),
    ];
    entries.extend(
        optional
            .iter()
            .filter_map(|(key, value)| value.as_deref().map(|value| (*key, value))),
    );
    entries.retain(|(_, value)| !value.is_empty());
    // CFPropertyList writes dictionary keys in sorted order.
    entries.sort_unstable_by_key(|(key, _)| *key);

    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    for (key, value) in entries {
        xml.push_str("\t<key>");
        xml.push_str(key);
        xml.push_str("</key>\n\t<string>");
        push_escaped(&mut xml, value);
        xml.push_str("</string>\n");
    }
    xml.push_str("</dict>\n</plist>\n");
    xml.into_bytes()
}

/// Loads PEM trust anchors from files (each file may hold several
/// certificates); a clear error naming the file otherwise.
pub fn load_anchors(paths: &[PathBuf]) -> Result<Vec<X509>, MachineInfoError> {
    let mut anchors = Vec::new();
    for path in paths {
        anchors.extend(load_anchor_file(path)?);
    }
    Ok(anchors)
}

fn load_anchor_file(path: &Path) -> Result<Vec<X509>, MachineInfoError> {
    let problem = |reason: String| MachineInfoError::Anchors {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| problem(format!("not PEM certificates ({})", describe(&e))))?;
    if certs.is_empty() {
        return Err(problem(
            "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The store `CMS_verify` checks signer chains against.
fn trust_store(anchors: &[X509], check_time: bool) -> Result<X509Store, MachineInfoError> {
    let mut store = X509StoreBuilder::new()?;
    for anchor in anchors {
        store.add_cert(anchor.clone())?;
    }
    for intermediate in X509::stack_from_pem(APPLE_DEVICE_INTERMEDIATES_PEM.as_bytes())? {
        store.add_cert(intermediate)?;
    }
    // CMS_verify asks for the smime_sign purpose only when the store names
    // none; device identities are not S/MIME certificates.
    store.set_purpose(X509PurposeId::ANY)?;
    if !check_time {
        store.set_flags(X509VerifyFlags::NO_CHECK_TIME)?;
    }
    Ok(store.build())
}

fn sign_content(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
    flags: CMSOptions,
) -> Result<Vec<u8>, MachineInfoError> {
    let mut certs = Stack::new()?;
    for extra in chain {
        certs.push(extra.clone())?;
    }
    let cms = CmsContentInfo::sign(Some(cert), Some(key), Some(&certs), Some(content), flags)?;
    Ok(cms.to_der()?)
}

/// Reads the plist dictionary; unknown keys (`OS_VERSION`,
/// `SOFTWARE_UPDATE_DEVICE_ID`, `MDM_CAN_REQUEST_SOFTWARE_UPDATE`, …) and
/// their types are ignored.
fn parse(content: &[u8]) -> Result<MachineInfo, MachineInfoError> {
    use tafel_protocol::bounded::{parse_dictionary, Limits};
    let dict = parse_dictionary(content, Limits::DEVICE)
        .map_err(|e| MachineInfoError::BadPlist(e.to_string()))?;
    let required = |key: &'static str| -> Result<String, MachineInfoError> {
        string(&dict, key)?.ok_or(MachineInfoError::Missing(key))
    };
    Ok(MachineInfo {
        udid: required("UDID")?,
        serial: required("SERIAL")?,
        product: required("PRODUCT")?,
        version: required("VERSION")?,
        imei: string(&dict, "IMEI")?,
        meid: string(&dict, "MEID")?,
        language: string(&dict, "LANGUAGE")?,
        device_name: string(&dict, "DEVICE_NAME")?,
    })
}

/// The string value of `key`; `None` when absent or empty.
fn string(dict: &plist::Dictionary, key: &'static str) -> Result<Option<String>, MachineInfoError> {
    let Some(value) = dict.get(key) else {
        return Ok(None);
    };
    let text = value
        .as_string()
        .ok_or_else(|| MachineInfoError::BadPlist(format!("{key} is not a string")))?;
    if text.chars().count() > MAX_VALUE_CHARS {
        return Err(MachineInfoError::BadPlist(format!(
            "{key} is longer than {MAX_VALUE_CHARS} characters"
        )));
    }
    // These values end up in logs and the database; no device writes controls.
    if text.chars().any(char::is_control) {
        return Err(MachineInfoError::BadPlist(format!(
            "{key} contains control characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Appends `text` as XML character data. Characters XML 1.0 cannot carry
/// (C0 controls but tab, newline and carriage return) become U+FFFD.
fn push_escaped(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '\t' | '\n' | '\r' => xml.push(c),
            c if u32::from(c) < 0x20 => xml.push('\u{FFFD}'),
            c => xml.push(c),
        }
    }
}

/// Sorts a `CMS_verify` failure into the error the caller can act on.
fn verify_error(e: ErrorStack) -> MachineInfoError {
    let has = |reason: i32| has_cms_reason(&e, &[reason]);
    if has(CMS_R_CONTENT_TYPE_NOT_SIGNED_DATA) || has(CMS_R_NO_SIGNERS) {
        MachineInfoError::NotSigned
    } else if has(CMS_R_NO_CONTENT) {
        MachineInfoError::NoContent
    } else if has(CMS_R_CERTIFICATE_VERIFY_ERROR) {
        MachineInfoError::Untrusted(describe(&e))
    } else if has(CMS_R_SIGNER_CERTIFICATE_NOT_FOUND) {
        MachineInfoError::Untrusted(
            "the signer's certificate is not included in the message".into(),
        )
    } else {
        MachineInfoError::BadSignature(describe(&e))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::OnceLock;
    use std::time::{SystemTime, UNIX_EPOCH};

    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
    use openssl::x509::{X509Builder, X509Name, X509StoreContext};

    use super::*;
    use tafel_pki::ca::CertificateAuthority;

    const OPENSSL_CLI: &str = "/usr/bin/openssl";
    const DAY: i64 = 86_400;

    /// A stand-in for Apple's device PKI: a root, an "Apple iPhone Device
    /// CA" below it, and two iPads' identities (one expired).
    struct FakeApple {
        root: X509,
        device_ca: X509,
        ipad: X509,
        ipad_key: PKey<Private>,
        expired_ipad: X509,
    }

    enum Kind {
        Ca,
        Device,
    }

    fn now() -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        i64::try_from(secs).unwrap()
    }

    fn rsa(bits: u32) -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
    }

    fn name(common_name: &str) -> X509Name {
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COUNTRYNAME, "US").unwrap();
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Not Apple Inc.")
            .unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)
            .unwrap();
        name.build()
    }

    /// A certificate for `key` named `cn`, self-signed when `issuer` is
    /// `None`, valid from `not_before` to `not_after` (unix seconds).
    fn issue(
        cn: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        kind: Kind,
        (not_before, not_after): (i64, i64),
        digest: MessageDigest,
    ) -> X509 {
        let subject = name(cn);
        let mut cert = X509Builder::new().unwrap();
        cert.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        cert.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
            .unwrap();
        cert.set_subject_name(&subject).unwrap();
        let (issuer_name, signing_key) = match issuer {
            Some((issuer, issuer_key)) => (issuer.subject_name().to_owned().unwrap(), issuer_key),
            None => (subject, key),
        };
        cert.set_issuer_name(&issuer_name).unwrap();
        cert.set_pubkey(key).unwrap();
        cert.set_not_before(&Asn1Time::from_unix(not_before).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
            .unwrap();
        match kind {
            Kind::Ca => {
                cert.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
                cert.append_extension(
                    KeyUsage::new()
                        .critical()
                        .key_cert_sign()
                        .crl_sign()
                        .build()
                        .unwrap(),
                )
                .unwrap();
            }
            Kind::Device => {
                cert.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .key_encipherment()
                        .build()
                        .unwrap(),
                )
                .unwrap();
                // clientAuth only: the smime_sign purpose CMS_verify uses by
                // default would refuse this certificate.
                cert.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
                    .unwrap();
            }
        }
        cert.sign(signing_key, digest).unwrap();
        cert.build()
    }

    fn apple() -> &'static FakeApple {
        static APPLE: OnceLock<FakeApple> = OnceLock::new();
        APPLE.get_or_init(|| {
            let now = now();
            let years = (now - 365 * DAY, now + 10 * 365 * DAY);
            let sha256 = MessageDigest::sha256();
            let root_key = rsa(2048);
            let root = issue(
                "Fake Apple Root CA",
                &root_key,
                None,
                Kind::Ca,
                years,
                sha256,
            );
            let device_ca_key = rsa(2048);
            let device_ca = issue(
                "Apple iPhone Device CA",
                &device_ca_key,
                Some((&root, &root_key)),
                Kind::Ca,
                years,
                sha256,
            );
            let ipad_key = rsa(2048);
            let issuer = Some((&device_ca, &device_ca_key));
            let ipad = issue(
                "00008101-000A3D2E1C38001E",
                &ipad_key,
                issuer,
                Kind::Device,
                (now - DAY, now + 365 * DAY),
                sha256,
            );
            let expired_ipad = issue(
                "00008101-000A3D2E1C38001E",
                &ipad_key,
                issuer,
                Kind::Device,
                (now - 400 * DAY, now - 35 * DAY),
                sha256,
            );
            FakeApple {
                root,
                device_ca,
                ipad,
                ipad_key,
                expired_ipad,
            }
        })
    }

    fn ipad_info() -> MachineInfo {
        MachineInfo {
            udid: "00008101-000A3D2E1C38001E".into(),
            serial: "DMPXK2ABCDEF".into(),
            product: "iPad13,18".into(),
            version: "21E236".into(),
            language: Some("de".into()),
            ..MachineInfo::default()
        }
    }

    /// The iPad's body: `content` signed by its identity, Device CA included.
    fn signed_by_ipad(content: &[u8]) -> Vec<u8> {
        let apple = apple();
        sign_content(
            content,
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
            CMSOptions::BINARY,
        )
        .unwrap()
    }

    fn anchors() -> Vec<X509> {
        vec![apple().root.clone()]
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_ipad_in_setup_assistant_is_read_back_exactly() {
        let apple = apple();
        let info = ipad_info();
        let body = sign(
            &info,
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
        )
        .unwrap();
        assert_eq!(body[0], 0x30, "DER SEQUENCE");
        assert!(contains(&body, b"<key>SERIAL</key>"), "content attached");

        assert_eq!(verify(&body, &anchors(), true).unwrap(), info);
        assert_eq!(verify(&body, &anchors(), false).unwrap(), info);
    }

    #[test]
    fn every_field_survives_the_round_trip_even_with_xml_special_characters() {
        let apple = apple();
        let info = MachineInfo {
            udid: "0123456789abcdef0123456789abcdef01234567".into(),
            serial: "F9FXK1ABCDEF".into(),
            product: "iPad7,12".into(),
            version: "22A3354".into(),
            imei: Some("35 123456 789012 3".into()),
            meid: Some("35123456789012".into()),
            language: Some("zh-Hans-CN".into()),
            device_name: Some("Klasse 7b <Bio> & \"Chemie\" – Frau Müller's iPad".into()),
        };
        let plist = to_plist(&info);
        let text = String::from_utf8(plist.clone()).unwrap();
        assert!(text.contains("&lt;Bio&gt; &amp;"), "{text}");
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("<key>"))
            .filter_map(|rest| rest.strip_suffix("</key>"))
            .collect();
        assert_eq!(
            keys,
            [
                "DEVICE_NAME",
                "IMEI",
                "LANGUAGE",
                "MEID",
                "PRODUCT",
                "SERIAL",
                "UDID",
                "VERSION"
            ]
        );
        assert_eq!(parse(&plist).unwrap(), info);

        let body = sign(
            &info,
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
        )
        .unwrap();
        assert_eq!(verify(&body, &anchors(), true).unwrap(), info);
    }

    #[test]
    fn keys_apple_added_later_and_unknown_keys_are_ignored() {
        // An iPadOS 17.4 body: OS_VERSION and friends, a boolean, and a data value.
        let body = signed_by_ipad(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
              <key>IMEI</key><string></string>\
              <key>LANGUAGE</key><string>en</string>\
              <key>MDM_CAN_REQUEST_SOFTWARE_UPDATE</key><true/>\
              <key>OS_VERSION</key><string>17.4</string>\
              <key>PAIRING_TOKEN</key><data>AAEC</data>\
              <key>PRODUCT</key><string>iPad13,18</string>\
              <key>SERIAL</key><string>DMPXK2ABCDEF</string>\
              <key>SOFTWARE_UPDATE_DEVICE_ID</key><string>J307AP</string>\
              <key>SUPPLEMENTAL_BUILD_VERSION</key><string>21E236</string>\
              <key>UDID</key><string>00008101-000A3D2E1C38001E</string>\
              <key>VERSION</key><string>21E236</string>\
              </dict></plist>",
        );
        let info = verify(&body, &anchors(), true).unwrap();
        assert_eq!(info.serial, "DMPXK2ABCDEF");
        assert_eq!(info.language.as_deref(), Some("en"));
        assert_eq!(info.imei, None, "an empty IMEI is no IMEI");
        assert_eq!(info.device_name, None);
    }

    #[test]
    fn another_certificate_under_apples_root_is_not_a_device() {
        // Apple's root also anchors push and developer certificates, whose keys
        // are with schools and developers: chaining to the root is not enough.
        let a = apple();
        let now = now();
        let years = (now - DAY, now + 365 * DAY);
        let root_key = rsa(2048);
        let root = issue(
            "Fake Apple Root CA 2",
            &root_key,
            None,
            Kind::Ca,
            years,
            MessageDigest::sha256(),
        );
        let wwdr_key = rsa(2048);
        let wwdr = issue(
            "Apple Worldwide Developer Relations Certification Authority",
            &wwdr_key,
            Some((&root, &root_key)),
            Kind::Ca,
            years,
            MessageDigest::sha256(),
        );
        let push = issue(
            "APSP:0b5d4f71-push",
            &a.ipad_key,
            Some((&wwdr, &wwdr_key)),
            Kind::Device,
            years,
            MessageDigest::sha256(),
        );
        let body = sign(&ipad_info(), &push, &a.ipad_key, &[wwdr]).unwrap();
        let err = verify(&body, &[root], false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("Apple iPhone Device CA"), "{err}");
    }

    #[test]
    fn a_body_signed_under_the_schools_own_ca_is_untrusted() {
        // A device with a tafel-issued identity (from SCEP) tries to pose as
        // an ADE device: a valid signature, but not Apple's chain.
        let school = CertificateAuthority::generate("tafel school CA", 30).unwrap();
        let key = rsa(2048);
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        let cert = school
            .issue_client_cert(&public, &name("00008101-000A3D2E1C38001E"), 30)
            .unwrap();
        let body = sign(&ipad_info(), &cert, &key, &[]).unwrap();

        let err = verify(&body, &anchors(), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("issuer certificate"), "{err}");
        // Trusting the school's CA instead makes the same body acceptable.
        assert_eq!(
            verify(&body, &[school.cert().to_owned()], true).unwrap(),
            ipad_info()
        );
    }

    #[test]
    fn a_look_alike_device_ca_under_another_root_is_untrusted() {
        let apple = apple();
        let other_root = CertificateAuthority::generate("Apple Root CA", 30).unwrap();
        let body = sign(
            &ipad_info(),
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
        )
        .unwrap();
        let err = verify(&body, &[other_root.cert().to_owned()], false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
    }

    #[test]
    fn without_anchors_nothing_is_trusted_and_the_error_says_why() {
        let err = verify(&signed_by_ipad(&to_plist(&ipad_info())), &[], false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("no trust anchor"), "{err}");
    }

    #[test]
    fn an_intermediate_given_as_anchor_does_not_end_the_chain() {
        let apple = apple();
        let body = signed_by_ipad(&to_plist(&ipad_info()));
        let err = verify(&body, std::slice::from_ref(&apple.device_ca), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        // A bundle of root and intermediate (one PEM file) is fine.
        let bundle = [apple.device_ca.clone(), apple.root.clone()];
        assert_eq!(verify(&body, &bundle, true).unwrap(), ipad_info());
    }

    #[test]
    fn the_device_ca_may_be_missing_from_the_message_if_the_caller_bundles_it() {
        let apple = apple();
        let body = sign(&ipad_info(), &apple.ipad, &apple.ipad_key, &[]).unwrap();
        let err = verify(&body, &anchors(), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        let bundle = [apple.root.clone(), apple.device_ca.clone()];
        assert_eq!(verify(&body, &bundle, false).unwrap(), ipad_info());
    }

    #[test]
    fn a_tampered_serial_is_a_bad_signature() {
        let body = signed_by_ipad(&to_plist(&ipad_info()));
        let at = body.windows(12).position(|w| w == b"DMPXK2ABCDEF").unwrap();
        let mut tampered = body.clone();
        tampered[at..at + 12].copy_from_slice(b"DMPXK2ZZZZZZ");
        let err = verify(&tampered, &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::BadSignature(_)), "{err}");
    }

    #[test]
    fn a_broken_signature_value_is_a_bad_signature() {
        let mut forged = signed_by_ipad(&to_plist(&ipad_info()));
        // The body ends with the SignerInfo's signature (no unsigned
        // attributes follow): flip its last bit.
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        let err = verify(&forged, &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::BadSignature(_)), "{err}");
    }

    #[test]
    fn truncated_or_garbage_bodies_are_refused() {
        let body = signed_by_ipad(&to_plist(&ipad_info()));
        assert!(verify(&body[..body.len() - 10], &anchors(), true).is_err());
        assert!(matches!(
            verify(&[], &anchors(), true),
            Err(MachineInfoError::NotSigned)
        ));
        assert!(matches!(
            verify(&[0x30, 0x03, 0x02, 0x01, 0x00], &anchors(), true),
            Err(MachineInfoError::NotSigned)
        ));
    }

    #[test]
    fn a_body_without_a_serial_names_the_missing_key() {
        let mut info = ipad_info();
        info.serial.clear();
        let plist = to_plist(&info);
        assert!(!contains(&plist, b"SERIAL"));
        let err = verify(&signed_by_ipad(&plist), &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::Missing("SERIAL")), "{err}");
        assert_eq!(
            err.to_string(),
            "the signed machine info lacks the required key SERIAL"
        );

        let empty_udid = b"<plist><dict><key>UDID</key><string></string>\
            <key>SERIAL</key><string>X</string></dict></plist>";
        let err = verify(&signed_by_ipad(empty_udid), &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::Missing("UDID")), "{err}");
    }

    #[test]
    fn an_unsigned_plist_is_refused_as_not_signed() {
        let err = verify(&to_plist(&ipad_info()), &anchors(), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::NotSigned), "{err}");
        assert!(err.to_string().contains("application/pkcs7-signature"));
    }

    #[test]
    fn a_detached_signature_has_no_machine_info() {
        let apple = apple();
        let body = sign_content(
            &to_plist(&ipad_info()),
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
            CMSOptions::BINARY | CMSOptions::DETACHED,
        )
        .unwrap();
        let err = verify(&body, &anchors(), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::NoContent), "{err}");
    }

    #[test]
    fn an_envelope_instead_of_a_signature_is_not_signed() {
        let apple = apple();
        let mut recipients = Stack::new().unwrap();
        recipients.push(apple.ipad.clone()).unwrap();
        let envelope = CmsContentInfo::encrypt(
            &recipients,
            &to_plist(&ipad_info()),
            openssl::symm::Cipher::aes_256_cbc(),
            CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap();
        let err = verify(&envelope, &anchors(), false).unwrap_err();
        assert!(matches!(err, MachineInfoError::NotSigned), "{err}");
    }

    #[test]
    fn wrong_types_long_values_and_control_characters_are_bad_plists() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"<plist><dict><key>UDID</key><integer>7</integer></dict></plist>",
                "UDID is not a string",
            ),
            (b"<plist><array/></plist>", "not a dictionary"),
            (
                b"<plist><dict><key>UDID</key><string>a\x07b</string></dict></plist>",
                "UDID contains control characters",
            ),
            (b"not a plist at all", "property list"),
        ];
        for (content, expected) in cases {
            let err = verify(&signed_by_ipad(content), &anchors(), true).unwrap_err();
            assert!(matches!(err, MachineInfoError::BadPlist(_)), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
        let mut info = ipad_info();
        info.device_name = Some("x".repeat(MAX_VALUE_CHARS + 1));
        let err = verify(&signed_by_ipad(&to_plist(&info)), &anchors(), true).unwrap_err();
        assert!(
            err.to_string().contains("DEVICE_NAME is longer than 128"),
            "{err}"
        );
        info.device_name = Some("ü".repeat(MAX_VALUE_CHARS));
        assert!(verify(&signed_by_ipad(&to_plist(&info)), &anchors(), true).is_ok());
    }

    #[test]
    fn an_oversized_body_is_refused_before_parsing() {
        let err = verify(&vec![0x30; MAX_BODY_BYTES + 1], &anchors(), true).unwrap_err();
        assert!(
            matches!(err, MachineInfoError::TooLarge { size, .. } if size == MAX_BODY_BYTES + 1),
            "{err}"
        );
    }

    #[test]
    fn an_expired_device_identity_passes_only_without_time_checks() {
        let apple = apple();
        let body = sign(
            &ipad_info(),
            &apple.expired_ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
        )
        .unwrap();
        assert_eq!(verify(&body, &anchors(), false).unwrap(), ipad_info());
        let err = verify(&body, &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn a_chain_shaped_like_apples_sha1_rsa1024_and_long_expired_verifies() {
        // Apple iPhone Device CA: RSA-1024, sha1WithRSAEncryption, 2007–2014.
        let now = now();
        let sha1 = MessageDigest::sha1();
        let root_key = rsa(2048);
        let y2006 = 1_145_000_000;
        let root = issue(
            "Old Root",
            &root_key,
            None,
            Kind::Ca,
            (y2006, now + 3650 * DAY),
            sha1,
        );
        let ca_key = rsa(1024);
        let ca = issue(
            "Apple iPhone Device CA",
            &ca_key,
            Some((&root, &root_key)),
            Kind::Ca,
            (1_176_764_086, 1_397_688_886),
            sha1,
        );
        let device_key = rsa(1024);
        let device = issue(
            "0123456789abcdef0123456789abcdef01234567",
            &device_key,
            Some((&ca, &ca_key)),
            Kind::Device,
            (now - DAY, now + 365 * DAY),
            sha1,
        );
        let body = sign(&ipad_info(), &device, &device_key, &[ca]).unwrap();
        assert_eq!(
            verify(&body, std::slice::from_ref(&root), false).unwrap(),
            ipad_info()
        );
        let err = verify(&body, &[root], true).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn a_signature_without_signed_attributes_verifies() {
        // Older signers put the content digest straight into the signature.
        let apple = apple();
        let body = sign_content(
            &to_plist(&ipad_info()),
            &apple.ipad,
            &apple.ipad_key,
            std::slice::from_ref(&apple.device_ca),
            CMSOptions::BINARY | CMSOptions::NOATTR,
        )
        .unwrap();
        assert_eq!(verify(&body, &anchors(), true).unwrap(), ipad_info());
    }

    /// One DER tag-length-value (single-byte tags suffice here).
    fn split(input: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
        let tag = input[0];
        let (len, header) = match input[1] {
            short @ 0..=0x7f => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let len = input[2..2 + count]
                    .iter()
                    .fold(0, |acc, &b| (acc << 8) | usize::from(b));
                (len, 2 + count)
            }
        };
        let (whole, rest) = input.split_at(header + len);
        (tag, &whole[header..], whole, rest)
    }

    /// Re-encodes DER SignedData with attached content as a streaming
    /// encoder writes it: ContentInfo, its `[0]`, SignedData,
    /// encapContentInfo and its `[0]` with indefinite lengths, and the
    /// content as a constructed OCTET STRING in 100-byte pieces.
    /// Certificates and SignerInfos stay DER.
    fn to_ber_indefinite(der: &[u8]) -> Vec<u8> {
        fn walk(mut input: &[u8], depth: usize, out: &mut Vec<u8>) {
            while !input.is_empty() {
                let (tag, value, whole, rest) = split(input);
                let streamed = match depth {
                    0 | 2 => tag == 0x30,
                    1 | 4 => tag == 0xa0,
                    3 => tag == 0x30, // encapContentInfo, the only SEQUENCE here
                    _ => false,
                };
                if depth == 5 && tag == 0x04 {
                    out.extend_from_slice(&[0x24, 0x80]);
                    for piece in value.chunks(100) {
                        out.extend_from_slice(&[0x04, u8::try_from(piece.len()).unwrap()]);
                        out.extend_from_slice(piece);
                    }
                    out.extend_from_slice(&[0, 0]);
                } else if streamed {
                    out.extend_from_slice(&[tag, 0x80]);
                    walk(value, depth + 1, out);
                    out.extend_from_slice(&[0, 0]);
                } else {
                    out.extend_from_slice(whole);
                }
                input = rest;
            }
        }
        let mut out = Vec::new();
        walk(der, 0, &mut out);
        out
    }

    #[test]
    fn ber_with_indefinite_lengths_and_a_chunked_content_is_accepted() {
        let der = signed_by_ipad(&to_plist(&ipad_info()));
        let ber = to_ber_indefinite(&der);
        assert_eq!(ber[..2], [0x30, 0x80]);
        assert!(contains(&ber, &[0x24, 0x80, 0x04, 100]), "chunked content");
        assert_eq!(verify(&ber, &anchors(), true).unwrap(), ipad_info());

        let at = ber.windows(6).position(|w| w == b"DMPXK2").unwrap();
        let mut tampered = ber.clone();
        tampered[at] = b'X';
        let err = verify(&tampered, &anchors(), true).unwrap_err();
        assert!(matches!(err, MachineInfoError::BadSignature(_)), "{err}");
    }

    #[test]
    fn the_openssl_clis_streamed_ber_is_accepted() {
        if !Path::new(OPENSSL_CLI).exists() {
            eprintln!("skipped: {OPENSSL_CLI} not installed");
            return;
        }
        let apple = apple();
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let cert = file("ipad.pem", &apple.ipad.to_pem().unwrap());
        let key = file(
            "ipad.key",
            &apple.ipad_key.private_key_to_pem_pkcs8().unwrap(),
        );
        let chain = file("chain.pem", &apple.device_ca.to_pem().unwrap());
        let content = file("info.plist", &to_plist(&ipad_info()));
        let out = dir.path().join("body.ber");
        let status = Command::new(OPENSSL_CLI)
            .args([
                "cms",
                "-sign",
                "-binary",
                "-nodetach",
                "-stream",
                "-outform",
                "DER",
            ])
            .arg("-signer")
            .arg(&cert)
            .arg("-inkey")
            .arg(&key)
            .arg("-certfile")
            .arg(&chain)
            .arg("-in")
            .arg(&content)
            .arg("-out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let body = std::fs::read(&out).unwrap();
        assert_eq!(body[..2], [0x30, 0x80], "indefinite length");
        assert_eq!(verify(&body, &anchors(), true).unwrap(), ipad_info());
    }

    #[test]
    fn anchors_load_from_pem_files_and_errors_name_the_file() {
        let apple = apple();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("apple.pem");
        let mut pem = apple.root.to_pem().unwrap();
        pem.extend(apple.device_ca.to_pem().unwrap());
        std::fs::write(&bundle, pem).unwrap();
        let apple_root = dir.path().join("apple_root_ca.pem");
        std::fs::write(&apple_root, APPLE_ROOT_CA_PEM).unwrap();

        let loaded = load_anchors(&[bundle.clone(), apple_root]).unwrap();
        assert_eq!(loaded.len(), 3);
        let body = signed_by_ipad(&to_plist(&ipad_info()));
        assert_eq!(verify(&body, &loaded, true).unwrap(), ipad_info());
        assert!(load_anchors(&[]).unwrap().is_empty());

        let missing = dir.path().join("nope.pem");
        let err = load_anchors(&[bundle.clone(), missing.clone()]).unwrap_err();
        assert!(matches!(err, MachineInfoError::Anchors { ref path, .. } if *path == missing));
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let der = dir.path().join("root.der");
        std::fs::write(&der, apple.root.to_der().unwrap()).unwrap();
        let err = load_anchors(&[der]).unwrap_err();
        assert!(err.to_string().contains("root.der"), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    fn entry(cert: &X509Ref, nid: Nid) -> String {
        cert.subject_name()
            .entries_by_nid(nid)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap()
    }

    #[test]
    fn the_bundled_apple_root_ca_is_the_real_one() {
        let certs = X509::stack_from_pem(APPLE_ROOT_CA_PEM).unwrap();
        assert_eq!(certs.len(), 1);
        let root = &certs[0];
        assert!(
            root.verify(&root.public_key().unwrap()).unwrap(),
            "self-signed"
        );
        assert_eq!(entry(root, Nid::COMMONNAME), "Apple Root CA");
        assert_eq!(entry(root, Nid::ORGANIZATIONNAME), "Apple Inc.");
        assert_eq!(
            hex::encode_upper(root.digest(MessageDigest::sha256()).unwrap()),
            "B0B1730ECBC7FF4505142C49F1295E6EDA6BCAED7E2C68C5BE91B5A11001F024"
        );
    }

    #[test]
    fn apples_device_intermediates_chain_to_the_root_and_have_expired() {
        let root = X509::from_pem(APPLE_ROOT_CA_PEM).unwrap();
        let intermediates =
            X509::stack_from_pem(APPLE_DEVICE_INTERMEDIATES_PEM.as_bytes()).unwrap();
        let [iphone_ca, device_ca] = intermediates.as_slice() else {
            panic!("expected two intermediates");
        };
        assert_eq!(
            entry(iphone_ca, Nid::COMMONNAME),
            "Apple iPhone Certification Authority"
        );
        assert_eq!(entry(device_ca, Nid::COMMONNAME), "Apple iPhone Device CA");
        assert!(iphone_ca.verify(&root.public_key().unwrap()).unwrap());
        assert!(device_ca.verify(&iphone_ca.public_key().unwrap()).unwrap());

        // Only the root in the store: the chain is found through the bundled
        // intermediates, and holds only when validity dates are ignored.
        let chain_ok = |check_time: bool| {
            let store = trust_store(std::slice::from_ref(&root), check_time).unwrap();
            let mut ctx = X509StoreContext::new().unwrap();
            ctx.init(&store, device_ca, &Stack::new().unwrap(), |ctx| {
                Ok((ctx.verify_cert()?, ctx.error().error_string()))
            })
            .unwrap()
        };
        assert_eq!(chain_ok(false), (true, "ok"));
        assert_eq!(chain_ok(true), (false, "certificate has expired"));
    }
}

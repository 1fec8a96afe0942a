//! Enrollment as an iPad does it: download the profile, make a key, get the identity
//! certificate over SCEP with the profile's challenge, then Authenticate and TokenUpdate.

use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Name, X509Req};
use plist::Value;

use super::device::{SimDevice, SimError};
use tafel::pki::scep::{self, CertRepOutcome, MessageType};
use tafel::protocol::Udid;

/// What a device takes from the enrollment profile.
#[derive(Debug, Clone)]
pub struct ProfileInfo {
    /// SCEP URL.
    pub scep_url: String,
    /// One-time challenge.
    pub challenge: String,
    /// Subject CN to request.
    pub subject_cn: String,
    /// Command endpoint.
    pub server_url: String,
    /// Check-in endpoint.
    pub check_in_url: String,
    /// APNs topic.
    pub topic: String,
}

fn bad(m: impl Into<String>) -> SimError {
    SimError::Enrollment(m.into())
}

/// Reads the payloads a device needs out of a signed (or plain) profile.
pub fn read_profile(body: &[u8]) -> Result<ProfileInfo, SimError> {
    // Signed profiles are CMS SignedData with the plist inside; devices check the
    // signature before showing it, so do we (the signer's chain is checked by the caller).
    let xml = match openssl::cms::CmsContentInfo::from_der(body) {
        Ok(_) => tafel::pki::cms::signed_content(body)?,
        Err(_) => body.to_vec(),
    };
    let v = Value::from_reader(std::io::Cursor::new(xml))
        .map_err(|e| bad(format!("profile is not a plist: {e}")))?;
    let content = v
        .as_dictionary()
        .and_then(|d| d.get("PayloadContent"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("profile has no PayloadContent"))?;
    let of_type = |t: &str| {
        content
            .iter()
            .filter_map(Value::as_dictionary)
            .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(t))
    };
    let scep = of_type("com.apple.security.scep")
        .and_then(|p| p.get("PayloadContent"))
        .and_then(Value::as_dictionary)
        .ok_or_else(|| bad("profile has no SCEP payload"))?;
    let mdm = of_type("com.apple.mdm").ok_or_else(|| bad("profile has no MDM payload"))?;
    let s = |d: &plist::Dictionary, k: &str| {
        d.get(k)
            .and_then(Value::as_string)
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("profile lacks {k}")))
    };
    let subject_cn = scep
        .get("Subject")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_array)
        .find(|pair| pair.first().and_then(Value::as_string) == Some("CN"))
        .and_then(|pair| pair.get(1).and_then(Value::as_string))
        .unwrap_or("tafel device")
        .to_owned();
    Ok(ProfileInfo {
        scep_url: s(scep, "URL")?,
        challenge: s(scep, "Challenge")?,
        subject_cn,
        server_url: s(mdm, "ServerURL")?,
        check_in_url: s(mdm, "CheckInURL").or_else(|_| s(mdm, "ServerURL"))?,
        topic: s(mdm, "Topic")?,
    })
}

/// GetCACert: the certificate SCEP messages are encrypted to (the RA when the server
/// has one) and that signs the answers.
async fn ca_certificate(
    client: &reqwest::Client,
    scep_url: &str,
) -> Result<openssl::x509::X509, SimError> {
    let ca = client
        .get(scep_url)
        .query(&[("operation", "GetCACert")])
        .send()
        .await?;
    if !ca.status().is_success() {
        return Err(bad(format!("GetCACert answered {}", ca.status())));
    }
    let content_type = ca
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let certs = scep::parse_ca_cert_response(&content_type, &ca.bytes().await?)?;
    scep::recipient(&certs)
        .cloned()
        .ok_or_else(|| bad("GetCACert: no certificate"))
}

/// Sends a pkiMessage by POST and reads the CertRep (signed to `signer`).
async fn pki_operation(
    client: &reqwest::Client,
    scep_url: &str,
    request: (Vec<u8>, String, Vec<u8>),
    ca_cert: &openssl::x509::X509,
    key: &PKey<Private>,
    signer: &openssl::x509::X509,
) -> Result<openssl::x509::X509, SimError> {
    let (msg, _tid, nonce) = request;
    let res = client
        .post(scep_url)
        .query(&[("operation", "PKIOperation")])
        .header("Content-Type", "application/x-pki-message")
        .body(msg)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(bad(format!("PKIOperation answered {}", res.status())));
    }
    let body = res.bytes().await?;
    match scep::parse_cert_rep(&body, ca_cert, key, signer, &nonce)? {
        CertRepOutcome::Issued(cert) => Ok(cert),
        CertRepOutcome::Failed(info) => Err(bad(format!("SCEP failure: {info:?}"))),
        CertRepOutcome::Pending => Err(bad("SCEP answered PENDING")),
    }
}

/// Obtains an identity certificate over SCEP (GetCACert, then PKCSReq by POST).
pub async fn scep_enroll(
    client: &reqwest::Client,
    info: &ProfileInfo,
    key: &PKey<Private>,
) -> Result<openssl::x509::X509, SimError> {
    let ca_cert = ca_certificate(client, &info.scep_url).await?;
    let mut name = X509Name::builder().map_err(tafel::pki::PkiError::from)?;
    name.append_entry_by_text("CN", &info.subject_cn)
        .map_err(tafel::pki::PkiError::from)?;
    let name = name.build();
    let csr = build_csr(key, &name, &info.challenge)?;
    let self_signed = scep::self_signed_for_csr(key, &name)?;
    let request = scep::build_pkcs_req(&csr, &self_signed, key, &ca_cert, MessageType::PkcsReq)?;
    pki_operation(client, &info.scep_url, request, &ca_cert, key, &self_signed).await
}

/// Renews an identity over SCEP (RenewalReq signed with the current identity), with
/// a new key as iOS does before the certificate expires.
pub async fn scep_renew(
    client: &reqwest::Client,
    scep_url: &str,
    current: &openssl::x509::X509,
    current_key: &PKey<Private>,
    new_key: &PKey<Private>,
) -> Result<openssl::x509::X509, SimError> {
    let ca_cert = ca_certificate(client, scep_url).await?;
    let csr = scep::build_csr(new_key, current.subject_name(), None)?;
    let request = scep::build_pkcs_req(
        &csr,
        current,
        current_key,
        &ca_cert,
        MessageType::RenewalReq,
    )?;
    pki_operation(client, scep_url, request, &ca_cert, current_key, current).await
}

/// A PKCS#10 request with the challenge password attribute, as iOS builds it.
fn build_csr(
    key: &PKey<Private>,
    name: &openssl::x509::X509NameRef,
    challenge: &str,
) -> Result<X509Req, SimError> {
    let req = scep::csr_with_challenge(key, name, challenge)?;
    Ok(req)
}

/// A new RSA key as the profile asks (2048 bits).
pub fn new_key() -> Result<PKey<Private>, SimError> {
    let rsa = Rsa::generate(2048).map_err(tafel::pki::PkiError::from)?;
    Ok(PKey::from_rsa(rsa).map_err(tafel::pki::PkiError::from)?)
}

/// A whole enrollment over HTTP: profile → key → SCEP → Authenticate → TokenUpdate.
/// `key` may be shared between simulated devices to spare key generation in benchmarks.
pub async fn enroll(
    client: &reqwest::Client,
    enroll_url: &str,
    udid: Udid,
    serial: String,
    key: Option<PKey<Private>>,
) -> Result<SimDevice, SimError> {
    let res = client.get(enroll_url).send().await?;
    if !res.status().is_success() {
        let status = res.status().as_u16();
        return Err(SimError::Status {
            status,
            body: res.text().await.unwrap_or_default(),
        });
    }
    let profile = res.bytes().await?;
    from_profile(client, &profile, udid, serial, key, false).await
}

/// The rest of an enrollment once the device holds its profile: key → SCEP →
/// Authenticate → TokenUpdate (saying whether Setup Assistant awaits configuration).
pub async fn from_profile(
    client: &reqwest::Client,
    profile: &[u8],
    udid: Udid,
    serial: String,
    key: Option<PKey<Private>>,
    awaiting_configuration: bool,
) -> Result<SimDevice, SimError> {
    let info = read_profile(profile)?;
    let key = match key {
        Some(k) => k,
        None => new_key()?,
    };
    let cert = scep_enroll(client, &info, &key).await?;
    let mut device = SimDevice::new(client.clone(), "", udid, serial, key, cert);
    device.checkin_url = info.check_in_url.clone();
    device.connect_url = info.server_url.clone();
    device.topic = info.topic.clone();
    device.authenticate().await?;
    device.token_update(awaiting_configuration).await?;
    Ok(device)
}

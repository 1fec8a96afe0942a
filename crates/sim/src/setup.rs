//! A reset iPad in Setup Assistant, enrolling through Automated Device Enrollment:
//! machine info signed with its Apple device identity → enrollment profile → SCEP →
//! Authenticate → TokenUpdate (`AwaitingConfiguration`) → initial commands →
//! `DeviceConfigured`.
//!
//! Real iPads sign machine info with an identity from "Apple iPhone Device CA"; the
//! simulator's [`DeviceCa`] plays that CA, and the server trusts it through
//! `ade.machine_info_anchors`.

use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Name, X509};

use super::device::{SimDevice, SimError};
use super::enroll;
use tafel::ade::machine_info::{self, MachineInfo};
use tafel::pki::CertificateAuthority;
use tafel::protocol::Udid;

/// Stands in for Apple's device CA.
pub struct DeviceCa {
    ca: CertificateAuthority,
}

/// A device's Apple identity (signs machine info).
pub struct AppleIdentity {
    /// Certificate.
    pub cert: X509,
    /// Key.
    pub key: PKey<Private>,
}

fn pki(e: impl std::fmt::Display) -> SimError {
    SimError::Enrollment(e.to_string())
}

impl DeviceCa {
    /// A new CA.
    pub fn generate() -> Result<DeviceCa, SimError> {
        Ok(DeviceCa {
            ca: CertificateAuthority::generate("Simulated Apple iPhone Device CA", 3650)?,
        })
    }

    /// Its certificate (PEM), for `ade.machine_info_anchors`.
    pub fn cert_pem(&self) -> Result<Vec<u8>, SimError> {
        Ok(self.ca.cert_pem()?)
    }

    /// An identity for the device `udid`, with `key` (may be shared by devices).
    pub fn identity(&self, udid: &str, key: &PKey<Private>) -> Result<AppleIdentity, SimError> {
        let mut name = X509Name::builder().map_err(pki)?;
        name.append_entry_by_text("CN", udid).map_err(pki)?;
        let public =
            PKey::public_key_from_der(&key.public_key_to_der().map_err(pki)?).map_err(pki)?;
        let cert = self.ca.issue_client_cert(&public, &name.build(), 365)?;
        Ok(AppleIdentity {
            cert,
            key: key.clone(),
        })
    }
}

/// The machine info an iPad sends (`other/machineinfo.yaml`).
pub fn machine_info(udid: &Udid, serial: &str) -> MachineInfo {
    MachineInfo {
        udid: udid.as_str().to_owned(),
        serial: serial.to_owned(),
        product: "iPad13,18".into(),
        version: "22A3354".into(),
        language: Some("de-DE".into()),
        ..MachineInfo::default()
    }
}

/// Setup Assistant's enrollment: posts the signed machine info to the ADE profile's
/// `url`, then enrolls with the profile it gets, awaiting configuration.
pub async fn ade_enroll(
    client: &reqwest::Client,
    url: &str,
    udid: Udid,
    serial: String,
    apple: &AppleIdentity,
    key: Option<PKey<Private>>,
) -> Result<SimDevice, SimError> {
    let body = machine_info::sign(&machine_info(&udid, &serial), &apple.cert, &apple.key, &[])
        .map_err(pki)?;
    ade_enroll_with(client, url, udid, serial, body, key).await
}

/// As [`ade_enroll`], with a machine info body signed in advance (to send it again).
pub async fn ade_enroll_with(
    client: &reqwest::Client,
    url: &str,
    udid: Udid,
    serial: String,
    body: Vec<u8>,
    key: Option<PKey<Private>>,
) -> Result<SimDevice, SimError> {
    let res = client
        .post(url)
        .header("Content-Type", "application/pkcs7-signature")
        .body(body)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(SimError::Status {
            status: res.status().as_u16(),
            body: res.text().await.unwrap_or_default(),
        });
    }
    let profile = res.bytes().await?;
    enroll::from_profile(client, &profile, udid, serial, key, true).await
}

/// Connects (as pushes would make it) and executes every command until
/// `DeviceConfigured` arrives, or `within` passes. Returns the commands' request
/// types in order, `DeviceConfigured` last.
pub async fn await_configuration(
    device: &mut SimDevice,
    within: Duration,
    poll: Duration,
) -> Result<Vec<String>, SimError> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let mut next = device.idle().await?;
        while let Some(command) = next {
            seen.push(command.request_type.clone());
            let answer = device.execute(&command);
            next = device.answer(&command, answer).await?;
            if command.request_type == "DeviceConfigured" {
                return Ok(seen);
            }
        }
        if Instant::now() >= deadline {
            return Err(SimError::Enrollment(format!(
                "no DeviceConfigured within {within:?} (commands so far: {seen:?})"
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

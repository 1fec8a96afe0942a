//! One simulated iPad: identity key and certificate, signed check-ins, and a small
//! state (installed apps and profiles) that commands act on.

use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use plist::{Dictionary, Value};

use tafel::pki::cms;
use tafel::protocol::{
    Authenticate, CheckOut, CheckinMessage, Command, ConnectReport, EnrollmentIds, PushMagic,
    PushToken, Status, TokenUpdate, Udid,
};

/// How the device encodes its `Mdm-Signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// DER, as most clients send it.
    Der,
    /// BER with indefinite lengths, as real iPads send it.
    BerIndefinite,
}

/// What a simulated device answers to a command.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Executed.
    Acknowledged(Dictionary),
    /// Busy: try later.
    NotNow,
    /// Failed with an error chain.
    Error(Dictionary),
}

/// A simulated iPad.
pub struct SimDevice {
    /// Its UDID.
    pub udid: Udid,
    /// Its serial number.
    pub serial: String,
    /// Push topic it subscribes to.
    pub topic: String,
    /// Identity key.
    pub key: PKey<Private>,
    /// Identity certificate (from our CA).
    pub cert: X509,
    /// How it signs.
    pub encoding: SignatureEncoding,
    /// Check-in URL.
    pub checkin_url: String,
    /// Connect URL.
    pub connect_url: String,
    /// Installed apps (bundle ids).
    pub apps: std::collections::BTreeSet<String>,
    /// Installed profiles (identifiers).
    pub profiles: std::collections::BTreeSet<String>,
    /// Installed profiles as installed: identifier → the profile's plist (its
    /// `PayloadUUID` is what ProfileList reports).
    pub profile_payloads: std::collections::BTreeMap<String, Dictionary>,
    /// What the App Store knows: iTunesStoreID → bundle id (unknown ids install as `store.<id>`).
    pub store: std::collections::HashMap<i64, String>,
    /// Apps still downloading: `ManagedApplicationList` reports them `Installing`.
    pub downloading: std::collections::BTreeSet<String>,
    /// Apps whose install failed: `ManagedApplicationList` reports them `Failed`.
    pub failing: std::collections::BTreeSet<String>,
    /// A ClearPasscode with the right unlock token came.
    pub passcode_cleared: bool,
    /// `IsSupervised` as DeviceInformation reports it (true unless a test says otherwise).
    pub supervised: bool,
    /// `OSVersion` as DeviceInformation reports it.
    pub os_version: String,
    /// In MDM Lost Mode (EnableLostMode until DisableLostMode).
    pub lost_mode: bool,
    /// The lock screen's message and phone number (DeviceLock, EnableLostMode).
    pub lock_screen: Option<(Option<String>, Option<String>)>,
    /// A PlayLostModeSound came in Lost Mode.
    pub playing_sound: bool,
    /// Restarts and shutdowns done (RestartDevice, ShutDownDevice).
    pub restarts: usize,
    /// Shutdowns done.
    pub shutdowns: usize,
    /// The name a Settings command gave it.
    pub name: Option<String>,
    /// The OS update a ScheduleOSUpdate scheduled (ProductVersion, InstallAction).
    pub scheduled_update: Option<(String, String)>,
    /// An EraseDevice came, with its keys.
    pub erased: Option<Dictionary>,
    client: reqwest::Client,
    /// The last Idle body and its signature: an Idle report is the same bytes every
    /// time, so a benchmark need not pay for signing it again (the server still
    /// verifies every signature).
    idle_signature: std::sync::Mutex<Option<(Vec<u8>, String)>>,
}

/// A device-side failure.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// HTTP failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error status.
    #[error("server answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// Signing failed.
    #[error("signing: {0}")]
    Pki(#[from] tafel::pki::PkiError),
    /// The server sent something that is not a command.
    #[error("bad command from server: {0}")]
    Protocol(#[from] tafel::protocol::ProtocolError),
    /// Enrollment (profile or SCEP) failed.
    #[error("enrollment: {0}")]
    Enrollment(String),
}

/// A response of the server: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl SimDevice {
    /// A device with the given identity, talking to `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        udid: Udid,
        serial: String,
        key: PKey<Private>,
        cert: X509,
    ) -> SimDevice {
        SimDevice {
            udid,
            serial,
            topic: "com.apple.mgmt.External.tafel".into(),
            key,
            cert,
            encoding: SignatureEncoding::BerIndefinite,
            checkin_url: format!("{base_url}/mdm/checkin"),
            connect_url: format!("{base_url}/mdm/connect"),
            apps: Default::default(),
            profiles: Default::default(),
            profile_payloads: Default::default(),
            store: Default::default(),
            downloading: Default::default(),
            failing: Default::default(),
            passcode_cleared: false,
            supervised: true,
            os_version: "18.1".into(),
            lost_mode: false,
            lock_screen: None,
            playing_sound: false,
            restarts: 0,
            shutdowns: 0,
            name: None,
            scheduled_update: None,
            erased: None,
            client,
            idle_signature: std::sync::Mutex::new(None),
        }
    }

    /// Takes a new identity (a renewal); the cached Idle signature goes with the old.
    pub fn set_identity(&mut self, cert: X509, key: PKey<Private>) {
        self.cert = cert;
        self.key = key;
        *self
            .idle_signature
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The `Mdm-Signature` header value for `body`.
    pub fn sign(&self, body: &[u8]) -> Result<String, SimError> {
        let sig = match self.encoding {
            SignatureEncoding::Der => cms::sign_detached(body, &self.cert, &self.key)?,
            SignatureEncoding::BerIndefinite => {
                cms::sign_detached_ber_indefinite(body, &self.cert, &self.key)?
            }
        };
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }

    /// Sends a raw body, signed, to `url`; returns whatever the server answered.
    pub async fn send_raw(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, SimError> {
        let sig = self.sign(&body)?;
        let mut req = self.client.put(url).header("Mdm-Signature", sig).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.bytes().await?.to_vec();
        Ok(Reply { status, body })
    }

    async fn checkin(&self, msg: &CheckinMessage) -> Result<Reply, SimError> {
        let reply = self
            .send_raw(
                &self.checkin_url,
                Some("application/x-apple-aspen-mdm-checkin"),
                msg.to_xml(),
            )
            .await?;
        ok(reply)
    }

    fn ids(&self) -> EnrollmentIds {
        EnrollmentIds::device(self.udid.clone())
    }

    /// The `Authenticate` message this device sends.
    pub fn authenticate_message(&self) -> CheckinMessage {
        CheckinMessage::Authenticate(Authenticate {
            enrollment: self.ids(),
            topic: Some(self.topic.clone()),
            os_version: Some("18.1".into()),
            build_version: Some("22B83".into()),
            product_name: Some("iPad13,18".into()),
            serial_number: Some(self.serial.clone()),
            ..Authenticate::default()
        })
    }

    /// Sends `Authenticate`.
    pub async fn authenticate(&self) -> Result<Reply, SimError> {
        self.checkin(&self.authenticate_message()).await
    }

    /// The push token this device reports (derived from its UDID).
    pub fn push_token(&self) -> PushToken {
        let digest = openssl::sha::sha256(self.udid.as_str().as_bytes());
        PushToken::new(digest.to_vec())
    }

    /// Sends `TokenUpdate`.
    pub async fn token_update(&self, awaiting_configuration: bool) -> Result<Reply, SimError> {
        self.token_update_with(self.push_token(), awaiting_configuration)
            .await
    }

    /// Sends `TokenUpdate` with another push token (as after a restore, or when APNs
    /// hands the device a new one).
    pub async fn token_update_with(
        &self,
        token: PushToken,
        awaiting_configuration: bool,
    ) -> Result<Reply, SimError> {
        let msg = CheckinMessage::TokenUpdate(TokenUpdate {
            enrollment: self.ids(),
            topic: Some(self.topic.clone()),
            token,
            push_magic: PushMagic::new(format!("magic-{}", self.udid)),
            unlock_token: Some(UNLOCK_TOKEN.to_vec()),
            awaiting_configuration,
            not_on_console: false,
        });
        self.checkin(&msg).await
    }

    /// Sends `CheckOut`.
    pub async fn check_out(&self) -> Result<Reply, SimError> {
        let msg = CheckinMessage::CheckOut(CheckOut {
            enrollment: self.ids(),
            topic: Some(self.topic.clone()),
        });
        self.checkin(&msg).await
    }

    /// Sends a report and returns the next command, if the server sent one.
    pub async fn report(&self, report: &ConnectReport) -> Result<Option<Command>, SimError> {
        let reply = ok(self
            .send_raw(&self.connect_url, None, report.to_xml())
            .await?)?;
        if reply.body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Command::parse(&reply.body)?))
    }

    /// `Status=Idle`: starts a connect sequence.
    pub async fn idle(&self) -> Result<Option<Command>, SimError> {
        let body = ConnectReport::idle(self.udid.clone()).to_xml();
        let cached = {
            let guard = self
                .idle_signature
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            guard
                .as_ref()
                .filter(|(b, _)| *b == body)
                .map(|(_, s)| s.clone())
        };
        let sig = match cached {
            Some(s) => s,
            None => {
                let s = self.sign(&body)?;
                *self
                    .idle_signature
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some((body.clone(), s.clone()));
                s
            }
        };
        let res = self
            .client
            .put(&self.connect_url)
            .header("Mdm-Signature", sig)
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let reply = ok(Reply {
            status,
            body: res.bytes().await?.to_vec(),
        })?;
        if reply.body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Command::parse(&reply.body)?))
    }

    /// Answers `command` and returns the next one.
    pub async fn answer(
        &self,
        command: &Command,
        answer: Answer,
    ) -> Result<Option<Command>, SimError> {
        let (status, extra) = match answer {
            Answer::Acknowledged(d) => (Status::Acknowledged, d),
            Answer::NotNow => (Status::NotNow, Dictionary::new()),
            Answer::Error(d) => (Status::Error, d),
        };
        let report = ConnectReport::answer(
            self.udid.clone(),
            status,
            Some(command.command_uuid.clone()),
            extra,
        );
        self.report(&report).await
    }

    /// Executes a command against the simulated state and returns the answer a real
    /// iPad would give.
    pub fn execute(&mut self, command: &Command) -> Answer {
        let f = &command.fields;
        let text = |k: &str| f.get(k).and_then(Value::as_string).map(str::to_owned);
        let mut out = Dictionary::new();
        match command.request_type.as_str() {
            "DeviceInformation" => {
                let mut q = Dictionary::new();
                q.insert("SerialNumber".into(), Value::String(self.serial.clone()));
                q.insert("UDID".into(), Value::String(self.udid.to_string()));
                q.insert("OSVersion".into(), Value::String(self.os_version.clone()));
                q.insert("ProductName".into(), Value::String("iPad13,18".into()));
                q.insert("ModelName".into(), Value::String("iPad".into()));
                q.insert("Model".into(), Value::String("MK2K3FD".into()));
                q.insert("BuildVersion".into(), Value::String("22B83".into()));
                q.insert("DeviceCapacity".into(), Value::Real(64.0));
                q.insert("AvailableDeviceCapacity".into(), Value::Real(41.5));
                q.insert("WiFiMAC".into(), Value::String("f0:18:98:2a:4b:01".into()));
                q.insert(
                    "DeviceName".into(),
                    Value::String(
                        self.name
                            .clone()
                            .unwrap_or_else(|| format!("iPad {}", self.serial)),
                    ),
                );
                q.insert("IsSupervised".into(), Value::Boolean(self.supervised));
                q.insert(
                    "IsMDMLostModeEnabled".into(),
                    Value::Boolean(self.lost_mode),
                );
                q.insert("BatteryLevel".into(), Value::Real(0.8));
                out.insert("QueryResponses".into(), Value::Dictionary(q));
            }
            "SecurityInfo" => {
                let mut info = Dictionary::new();
                info.insert("PasscodePresent".into(), Value::Boolean(false));
                info.insert("PasscodeCompliant".into(), Value::Boolean(true));
                info.insert("HardwareEncryptionCaps".into(), Value::Integer(3.into()));
                out.insert("SecurityInfo".into(), Value::Dictionary(info));
            }
            "InstalledApplicationList" => {
                let apps = self
                    .apps
                    .iter()
                    .map(|id| {
                        let mut a = Dictionary::new();
                        a.insert("Identifier".into(), Value::String(id.clone()));
                        a.insert("Name".into(), Value::String(id.clone()));
                        if self.downloading.contains(id) {
                            a.insert("Installing".into(), Value::Boolean(true));
                        }
                        Value::Dictionary(a)
                    })
                    .collect();
                out.insert("InstalledApplicationList".into(), Value::Array(apps));
            }
            "ManagedApplicationList" => {
                // Installs finish at once on a simulated iPad unless told otherwise.
                let mut list = Dictionary::new();
                for id in &self.apps {
                    let status = if self.failing.contains(id) {
                        "Failed"
                    } else if self.downloading.contains(id) {
                        "Installing"
                    } else {
                        "Managed"
                    };
                    let mut a = Dictionary::new();
                    a.insert("Status".into(), Value::String(status.into()));
                    a.insert("HasConfiguration".into(), Value::Boolean(false));
                    a.insert("HasFeedback".into(), Value::Boolean(false));
                    a.insert("IsValidated".into(), Value::Boolean(true));
                    a.insert("ManagementFlags".into(), Value::Integer(1.into()));
                    list.insert(id.clone(), Value::Dictionary(a));
                }
                out.insert("ManagedApplicationList".into(), Value::Dictionary(list));
            }
            "ProfileList" => {
                let list = self
                    .profiles
                    .iter()
                    .map(|id| {
                        let mut p = Dictionary::new();
                        p.insert("PayloadIdentifier".into(), Value::String(id.clone()));
                        let uuid = self
                            .profile_payloads
                            .get(id)
                            .and_then(|d| d.get("PayloadUUID"))
                            .and_then(Value::as_string)
                            .map(str::to_owned)
                            .unwrap_or_else(|| {
                                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes())
                                    .to_string()
                                    .to_uppercase()
                            });
                        p.insert("PayloadUUID".into(), Value::String(uuid));
                        p.insert("IsManaged".into(), Value::Boolean(true));
                        Value::Dictionary(p)
                    })
                    .collect();
                out.insert("ProfileList".into(), Value::Array(list));
            }
            "InstallApplication" => {
                let id = text("Identifier")
                    .or_else(|| {
                        f.get("iTunesStoreID")
                            .and_then(Value::as_signed_integer)
                            .map(|n| {
                                self.store
                                    .get(&n)
                                    .cloned()
                                    .unwrap_or_else(|| format!("store.{n}"))
                            })
                    })
                    .unwrap_or_else(|| "unknown".into());
                out.insert("Identifier".into(), Value::String(id.clone()));
                out.insert("State".into(), Value::String("Installing".into()));
                self.apps.insert(id);
            }
            "RemoveApplication" => {
                if let Some(id) = text("Identifier") {
                    self.apps.remove(&id);
                }
            }
            "InstallProfile" => {
                let payload = f
                    .get("Payload")
                    .and_then(Value::as_data)
                    .unwrap_or_default();
                // Signed profiles are CMS SignedData around the plist.
                let plain = match openssl::cms::CmsContentInfo::from_der(payload) {
                    Ok(_) => cms::signed_content(payload).unwrap_or_default(),
                    Err(_) => payload.to_vec(),
                };
                let profile = plist::Value::from_reader(std::io::Cursor::new(plain))
                    .ok()
                    .and_then(Value::into_dictionary);
                let id = profile.as_ref().and_then(|d| {
                    d.get("PayloadIdentifier")
                        .and_then(Value::as_string)
                        .map(str::to_owned)
                });
                match (id, profile) {
                    // Same identifier: the new one replaces the old, as on an iPad.
                    (Some(id), Some(profile)) => {
                        self.profiles.insert(id.clone());
                        self.profile_payloads.insert(id, profile);
                    }
                    _ => {
                        return Answer::Error(error_chain(
                            4001,
                            "MCProfileErrorDomain",
                            "The profile could not be read.",
                        ))
                    }
                }
            }
            "RemoveProfile" => {
                if let Some(id) = text("Identifier") {
                    self.profile_payloads.remove(&id);
                    self.profiles.remove(&id);
                }
            }
            // As an iPad answers: only the unlock token it sent in TokenUpdate clears it.
            "ClearPasscode" => {
                if f.get("UnlockToken").and_then(Value::as_data) != Some(&UNLOCK_TOKEN[..]) {
                    return Answer::Error(error_chain(
                        12021,
                        "MCPasscodeErrorDomain",
                        "Invalid or missing \"UnlockToken\".",
                    ));
                }
                self.passcode_cleared = true;
            }
            // device.lock.yaml: MessageResult when a message or phone number was given.
            "DeviceLock" => {
                let (message, phone) = (text("Message"), text("PhoneNumber"));
                if message.is_some() || phone.is_some() {
                    let result = if self.lost_mode {
                        "DeviceInLostMode"
                    } else {
                        "Success"
                    };
                    out.insert("MessageResult".into(), Value::String(result.into()));
                }
                self.lock_screen = Some((message, phone));
            }
            // The device.lostmode.*.yaml commands are for supervised iPads; the location
            // and the sound only in Lost Mode.
            "EnableLostMode" | "DisableLostMode" | "DeviceLocation" | "PlayLostModeSound"
                if !self.supervised =>
            {
                return Answer::Error(error_chain(
                    12078,
                    "MCMDMErrorDomain",
                    "The device is not supervised.",
                ));
            }
            "EnableLostMode" => {
                let (message, phone) = (text("Message"), text("PhoneNumber"));
                if message.is_none() && phone.is_none() {
                    return Answer::Error(error_chain(
                        12100,
                        "MCMDMErrorDomain",
                        "Lost Mode needs a message or a phone number.",
                    ));
                }
                self.lost_mode = true;
                self.lock_screen = Some((message, phone));
            }
            "DisableLostMode" => {
                self.lost_mode = false;
                self.playing_sound = false;
                self.lock_screen = None;
            }
            "DeviceLocation" | "PlayLostModeSound" if !self.lost_mode => {
                return Answer::Error(error_chain(
                    12067,
                    "MCMDMErrorDomain",
                    "The device is not in Lost Mode.",
                ));
            }
            // device.lostmode.location.yaml: every response key is required (negative
            // when unknown); somewhere in Bad Segeberg.
            "DeviceLocation" => {
                out.insert("Latitude".into(), Value::Real(53.9361));
                out.insert("Longitude".into(), Value::Real(10.3085));
                out.insert("HorizontalAccuracy".into(), Value::Real(12.0));
                out.insert("VerticalAccuracy".into(), Value::Real(-1.0));
                out.insert("Altitude".into(), Value::Real(-1.0));
                out.insert("Speed".into(), Value::Real(-1.0));
                out.insert("Course".into(), Value::Real(-1.0));
                out.insert(
                    "Timestamp".into(),
                    Value::String("2026-12-07T10:15:00Z".into()),
                );
            }
            "PlayLostModeSound" => self.playing_sound = true,
            "RestartDevice" | "ShutDownDevice" if !self.supervised => {
                return Answer::Error(error_chain(
                    12078,
                    "MCMDMErrorDomain",
                    "The device is not supervised.",
                ));
            }
            "RestartDevice" => self.restarts += 1,
            "ShutDownDevice" => self.shutdowns += 1,
            "Settings" => {
                let items = f.get("Settings").and_then(Value::as_array);
                for item in items.into_iter().flatten() {
                    let d = item.as_dictionary();
                    let is_name = d.and_then(|d| d.get("Item")).and_then(Value::as_string)
                        == Some("DeviceName");
                    if is_name && self.supervised {
                        self.name = d
                            .and_then(|d| d.get("DeviceName"))
                            .and_then(Value::as_string)
                            .map(str::to_owned);
                    }
                }
            }
            // system.update.schedule.yaml: UpdateResults, one per update asked for.
            "ScheduleOSUpdate" => {
                let items = f.get("Updates").and_then(Value::as_array);
                let mut results = Vec::new();
                for item in items.into_iter().flatten().filter_map(Value::as_dictionary) {
                    let get = |k: &str| item.get(k).and_then(Value::as_string).unwrap_or("");
                    let (version, action) = (get("ProductVersion"), get("InstallAction"));
                    let scheduled = if action == "Default" {
                        "InstallASAP"
                    } else {
                        action
                    };
                    let mut r = Dictionary::new();
                    r.insert(
                        "ProductKey".into(),
                        Value::String(format!("iOSUpdate{version}")),
                    );
                    r.insert("InstallAction".into(), Value::String(scheduled.into()));
                    r.insert("Status".into(), Value::String("Downloading".into()));
                    results.push(Value::Dictionary(r));
                    self.scheduled_update = Some((version.to_owned(), action.to_owned()));
                }
                out.insert("UpdateResults".into(), Value::Array(results));
            }
            "EraseDevice" => self.erased = Some(f.clone()),
            _ => {}
        }
        Answer::Acknowledged(out)
    }
}

/// The unlock token a simulated iPad sends in its TokenUpdate (and wants back in
/// ClearPasscode).
pub const UNLOCK_TOKEN: [u8; 32] = [0xAB; 32];

/// An `ErrorChain` with one entry, as the device reports failures.
pub fn error_chain(code: i64, domain: &str, description: &str) -> Dictionary {
    let mut item = Dictionary::new();
    item.insert("ErrorCode".into(), Value::Integer(code.into()));
    item.insert("ErrorDomain".into(), Value::String(domain.into()));
    item.insert(
        "LocalizedDescription".into(),
        Value::String(description.into()),
    );
    item.insert(
        "USEnglishDescription".into(),
        Value::String(description.into()),
    );
    let mut d = Dictionary::new();
    d.insert(
        "ErrorChain".into(),
        Value::Array(vec![Value::Dictionary(item)]),
    );
    d
}

fn ok(reply: Reply) -> Result<Reply, SimError> {
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        Err(SimError::Status {
            status: reply.status,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        })
    }
}

//! The HTTP client for Apple's device assignment service: session handling,
//! account, device fetch and sync, and enrollment (setup) profiles.
//!
//! Paths, headers and JSON names follow Apple's "Device Assignment"
//! documentation and the `DeviceAssignment` schemas nanodep generates its
//! `godep` types from: `GET /session`, `GET /account`, `POST /server/devices`,
//! `POST /devices/sync`, `POST /profile`, `GET /profile?profile_uuid=`,
//! `POST /profile/devices` (documented as POST; older clients send PUT) and
//! `DELETE /profile/devices` with a JSON body.
//!
//! Sessions: `GET /session` signed with OAuth 1.0a returns an
//! `auth_session_token`, sent as `X-ADM-Auth-Session` on every other call.
//! Apple may hand out a replacement in the same response header at any time;
//! the client keeps it. When a session is refused (401, or 403 `FORBIDDEN`
//! which Apple's simulator uses for an unknown session) the client gets a new
//! one once and repeats the call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::error::{AdeError, Result};
use super::oauth;
use super::token::OAuthTokens;

/// Apple's production endpoint.
pub const DEFAULT_BASE_URL: &str = "https://mdmenrollment.apple.com";
/// `X-Server-Protocol-Version` tafel speaks.
pub const DEFAULT_PROTOCOL_VERSION: &str = "3";
/// Apple's maximum `limit` for fetch and sync, and per profile assignment.
pub const MAX_LIMIT: u32 = 1000;

const SESSION_HEADER: &str = "X-ADM-Auth-Session";
const PROTOCOL_HEADER: &str = "X-Server-Protocol-Version";
/// The media type Apple's documentation and examples use, spelling included.
const JSON_UTF8: &str = "application/json;charset=UTF8";
/// How much of an error body goes into an error message.
const BODY_EXCERPT: usize = 512;

/// How throttled (429) and unavailable (503) answers are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry when there is no `Retry-After`; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of any wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// `GET /account`: the MDM server and organization this token belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Name of the MDM server in Apple School Manager.
    #[serde(default)]
    pub server_name: String,
    /// Apple's identifier of the MDM server.
    #[serde(default)]
    pub server_uuid: String,
    /// Managed Apple Account of the admin who made the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<String>,
    /// Legacy name of `admin_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator_id: Option<String>,
    /// Organization name.
    #[serde(default)]
    pub org_name: String,
    /// Organization email.
    #[serde(default)]
    pub org_email: String,
    /// Organization phone.
    #[serde(default)]
    pub org_phone: String,
    /// Organization address.
    #[serde(default)]
    pub org_address: String,
    /// Customer ID (protocol 3+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Hash of the organization ID (protocol 3+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id_hash: Option<String>,
    /// `edu` or `org` (protocol 3+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_type: Option<String>,
    /// `v1` (Apple Deployment Programs) or `v2` (Apple School/Business Manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_version: Option<String>,
    /// The API's endpoints with methods and limits (protocol 3+).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<AccountUrl>,
}

/// One entry of [`Account::urls`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUrl {
    /// Path, e.g. `/server/devices`.
    #[serde(default)]
    pub uri: String,
    /// `GET`, `POST`, `PUT`, `DELETE`.
    #[serde(default)]
    pub http_method: Vec<String>,
    /// The `limit` range, where the endpoint has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<UrlLimit>,
}

/// Default and maximum `limit` of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlLimit {
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u32>,
    /// Maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u32>,
}

/// `profile_status` of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    /// No profile assigned.
    #[default]
    Empty,
    /// A profile is assigned; the device fetches it at its next activation.
    Assigned,
    /// The device fetched the profile.
    Pushed,
    /// The profile was removed.
    Removed,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// `op_type` of a device in a sync answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// Assigned to this MDM server.
    Added,
    /// Changed (e.g. profile assigned, asset tag).
    Modified,
    /// Unassigned from this MDM server (moved, released or disowned).
    Deleted,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// A device as the service lists it (Apple's `Device` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Serial number.
    pub serial_number: String,
    /// Model name, e.g. `iPad (9th generation)`.
    #[serde(default)]
    pub model: String,
    /// Apple's product description, e.g. `IPAD WI-FI 64GB SPACE GRAY`.
    #[serde(default)]
    pub description: String,
    /// Colour.
    #[serde(default)]
    pub color: String,
    /// Asset tag, when the reseller recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_tag: Option<String>,
    /// Enrollment-profile state.
    #[serde(default)]
    pub profile_status: ProfileStatus,
    /// The assigned profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uuid: Option<String>,
    /// When the profile was assigned.
    #[serde(
        default,
        with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub profile_assign_time: Option<DateTime<Utc>>,
    /// When the device fetched the profile.
    #[serde(
        default,
        with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub profile_push_time: Option<DateTime<Utc>>,
    /// When the device was assigned to this MDM server.
    #[serde(
        default,
        with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_assigned_date: Option<DateTime<Utc>>,
    /// Who assigned it (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_assigned_by: Option<String>,
    /// `iOS`, `iPadOS`, `OSX`, `tvOS`, `visionOS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// `iPad`, `iPhone`, `Mac`, `AppleTV`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// Sync only: what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_type: Option<OpType>,
    /// Sync only: when it happened.
    #[serde(
        default,
        with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub op_date: Option<DateTime<Utc>>,
}

/// One page of `POST /server/devices` or `POST /devices/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesPage {
    /// The devices of this page.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Where the next request starts; after the last page, the cursor to sync from.
    #[serde(default)]
    pub cursor: String,
    /// Whether to ask again at once with `cursor`.
    #[serde(default)]
    pub more_to_follow: bool,
    /// How far the service has listed.
    #[serde(
        default,
        with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub fetched_until: Option<DateTime<Utc>>,
}

/// What [`AdeClient::sync_all`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// With `full`, every device assigned to this MDM server (devices missing
    /// from the list are no longer assigned); otherwise the changes since the
    /// cursor, each with its `op_type`, oldest first.
    pub devices: Vec<Device>,
    /// The cursor to store for the next sync.
    pub cursor: String,
    /// Whether this was a full fetch (no cursor, or the cursor had expired).
    pub full: bool,
}

/// An Automated Device Enrollment profile (Apple's `Profile` object): what
/// Setup Assistant does on a device before it enrolls. `None` fields are left
/// out so Apple's defaults apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Name shown in Apple School Manager and in Setup Assistant.
    pub profile_name: String,
    /// The MDM server's enrollment URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Web view for authentication before enrollment (iOS 13+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_web_url: Option<String>,
    /// Deprecated in iOS 13; defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_pairing: Option<bool>,
    /// Supervise the device (ignored since iOS 13: always supervised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_supervised: Option<bool>,
    /// Shared iPad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_multi_user: Option<bool>,
    /// The user cannot skip enrollment (always so since iOS 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mandatory: Option<bool>,
    /// Whether the user may remove the MDM profile; `false` needs supervision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mdm_removable: Option<bool>,
    /// Hold Setup Assistant until the server sends `DeviceConfigured`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub await_device_configured: Option<bool>,
    /// Advance through Setup Assistant automatically (tvOS, macOS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_advance_setup: Option<bool>,
    /// Department or location shown during setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Support phone shown during setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_phone_number: Option<String>,
    /// Support email shown during setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_email_address: Option<String>,
    /// Identifies the organization's services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_magic: Option<String>,
    /// Base64 DER certificates the device trusts for `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchor_certs: Vec<String>,
    /// Base64 DER certificates of hosts allowed to pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supervising_host_certs: Vec<String>,
    /// Setup panes to skip (`mdm/…/skipkeys.yaml`: `Location`, `Restore`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_setup_items: Vec<String>,
    /// ISO 639 language (tvOS, macOS 11+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// ISO 3166 region (tvOS, macOS 11+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Serials to assign the profile to when defining it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Set by Apple in `GET /profile` answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uuid: Option<String>,
}

/// Per-device outcome of defining, assigning or removing a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignResult {
    /// Done.
    Success,
    /// The serial is not assigned to this MDM server.
    NotAccessible,
    /// Apple failed.
    Failed,
    /// Throttled for this device (protocol 9+); try again later.
    Throttled,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

impl AssignResult {
    /// What the outcome means, in words for an administrator.
    pub fn describe(self) -> &'static str {
        match self {
            AssignResult::Success => "assigned",
            AssignResult::NotAccessible => {
                "Apple School Manager does not assign this device to this MDM server \
                 (NOT_ACCESSIBLE): assign it to the server in Apple School Manager"
            }
            AssignResult::Failed => {
                "Apple School Manager could not assign the profile (FAILED); tafel tries \
                 again at the next sync"
            }
            AssignResult::Throttled => {
                "Apple School Manager throttled the assignment for this device (THROTTLED); \
                 tafel tries again at the next sync"
            }
            AssignResult::Unknown => {
                "Apple School Manager refused the profile with an answer tafel does not know; \
                 tafel tries again at the next sync"
            }
        }
    }
}

/// Answer to defining or assigning a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileResponse {
    /// The profile.
    #[serde(default)]
    pub profile_uuid: String,
    /// Serial → outcome.
    #[serde(default)]
    pub devices: BTreeMap<String, AssignResult>,
    /// With throttled devices (protocol 10+): seconds to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct SessionAnswer {
    auth_session_token: String,
}

#[derive(Deserialize)]
struct ClearAnswer {
    #[serde(default)]
    devices: BTreeMap<String, AssignResult>,
}

/// Client for one MDM server's token at Apple (one per tenant).
pub struct AdeClient {
    http: reqwest::Client,
    base: String,
    tokens: OAuthTokens,
    protocol_version: String,
    retry: RetryPolicy,
    page_limit: u32,
    session: Mutex<Option<String>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for AdeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdeClient")
            .field("base", &self.base)
            .field("tokens", &self.tokens)
            .field("protocol_version", &self.protocol_version)
            .finish_non_exhaustive()
    }
}

/// What to do with an unsuccessful answer.
enum Verdict {
    /// Get a new session and repeat (once).
    Renew,
    /// Wait and repeat.
    Retry(Option<Duration>),
    /// Give up with this error.
    Fail(AdeError),
}

impl AdeClient {
    /// A client for `base_url` (normally [`DEFAULT_BASE_URL`]) with the
    /// credentials of a server token, speaking `server_protocol_version`
    /// (normally [`DEFAULT_PROTOCOL_VERSION`]).
    pub fn new(base_url: &str, tokens: OAuthTokens, server_protocol_version: &str) -> Result<Self> {
        let parsed = Url::parse(base_url).map_err(|_| AdeError::BaseUrl(base_url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AdeError::BaseUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("tafel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(AdeClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            tokens,
            protocol_version: server_protocol_version.to_owned(),
            retry: RetryPolicy::default(),
            page_limit: MAX_LIMIT,
            session: Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// Replaces the retry policy for 429/503.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `limit` [`fetch_all`](Self::fetch_all) and [`sync_all`](Self::sync_all)
    /// ask for (1…1000; default 1000).
    pub fn with_page_limit(mut self, limit: u32) -> Self {
        self.page_limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    /// HTTP requests sent so far, `/session` and retries included.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `GET /account`.
    pub async fn account(&self) -> Result<Account> {
        self.call(Method::GET, "/account", None).await
    }

    /// One page of `POST /server/devices`: every device assigned to this MDM
    /// server. Start without a cursor; continue with the returned one while
    /// `more_to_follow`.
    pub async fn fetch_devices(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DevicesPage> {
        let body = page_request(cursor, limit);
        self.call(Method::POST, "/server/devices", Some(body)).await
    }

    /// One page of `POST /devices/sync`: changes since `cursor` (from a fetch
    /// or an earlier sync), each with an `op_type`.
    pub async fn sync_devices(&self, cursor: &str, limit: Option<u32>) -> Result<DevicesPage> {
        let body = page_request(Some(cursor), limit);
        self.call(Method::POST, "/devices/sync", Some(body)).await
    }

    /// Fetches every device, following the cursor until `more_to_follow` is false.
    pub async fn fetch_all(&self) -> Result<SyncResult> {
        let mut devices = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .fetch_devices(cursor.as_deref(), Some(self.page_limit))
                .await?;
            let stuck = page.more_to_follow && cursor.as_deref() == Some(page.cursor.as_str());
            devices.extend(page.devices);
            if stuck {
                // Guards the loop against a service that never finishes.
                return Err(AdeError::Protocol(
                    "more_to_follow with a cursor that does not advance".into(),
                ));
            }
            let more = page.more_to_follow;
            cursor = Some(page.cursor);
            if !more {
                break;
            }
        }
        tracing::debug!(devices = devices.len(), "full ADE device fetch done");
        Ok(SyncResult {
            devices,
            cursor: cursor.unwrap_or_default(),
            full: true,
        })
    }

    /// Brings a device list up to date: without a cursor a full fetch; with
    /// one, a sync that falls back to a full fetch when Apple no longer
    /// accepts the cursor (`EXPIRED_CURSOR` after seven days, `INVALID_CURSOR`).
    pub async fn sync_all(&self, cursor: Option<String>) -> Result<SyncResult> {
        let Some(mut cursor) = cursor.filter(|c| !c.is_empty()) else {
            return self.fetch_all().await;
        };
        let mut devices = Vec::new();
        loop {
            let page = match self.sync_devices(&cursor, Some(self.page_limit)).await {
                Ok(page) => page,
                Err(AdeError::CursorExpired { code }) => {
                    tracing::info!(%code, "device sync cursor refused; doing a full fetch");
                    return self.fetch_all().await;
                }
                Err(e) => return Err(e),
            };
            if page.more_to_follow && page.cursor == cursor {
                return Err(AdeError::Protocol(
                    "more_to_follow with a cursor that does not advance".into(),
                ));
            }
            devices.extend(page.devices);
            cursor = page.cursor;
            if !page.more_to_follow {
                break;
            }
        }
        Ok(SyncResult {
            devices,
            cursor,
            full: false,
        })
    }

    /// `POST /profile`: defines a profile (assigning it to `profile.devices`).
    pub async fn define_profile(&self, profile: &Profile) -> Result<ProfileResponse> {
        let body = to_json(profile)?;
        self.call(Method::POST, "/profile", Some(body)).await
    }

    /// `POST /profile/devices`: assigns a profile to serials, 1000 per request
    /// as Apple asks; the outcomes are merged.
    pub async fn assign_profile(
        &self,
        profile_uuid: &str,
        serials: &[String],
    ) -> Result<ProfileResponse> {
        let mut merged = ProfileResponse {
            profile_uuid: profile_uuid.to_owned(),
            ..ProfileResponse::default()
        };
        for chunk in serials.chunks(MAX_LIMIT as usize) {
            let body = serde_json::json!({ "profile_uuid": profile_uuid, "devices": chunk });
            // Apple documents 404 for a profile UUID it cannot find (Assign a Profile).
            let answer: ProfileResponse = self
                .call(Method::POST, "/profile/devices", Some(body))
                .await
                .map_err(|e| match e {
                    AdeError::Status { code: 404, .. } => AdeError::ProfileNotFound {
                        profile_uuid: profile_uuid.to_owned(),
                    },
                    other => other,
                })?;
            merged.devices.extend(answer.devices);
            merged.retry_after_seconds = merged.retry_after_seconds.max(answer.retry_after_seconds);
        }
        Ok(merged)
    }

    /// `DELETE /profile/devices`: removes whatever profile the serials have.
    pub async fn remove_profile(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, AssignResult>> {
        let mut merged = BTreeMap::new();
        for chunk in serials.chunks(MAX_LIMIT as usize) {
            let body = serde_json::json!({ "devices": chunk });
            let answer: ClearAnswer = self
                .call(Method::DELETE, "/profile/devices", Some(body))
                .await?;
            merged.extend(answer.devices);
        }
        Ok(merged)
    }

    /// `GET /profile?profile_uuid=…`.
    pub async fn get_profile(&self, profile_uuid: &str) -> Result<Profile> {
        let path = format!(
            "/profile?profile_uuid={}",
            oauth::percent_encode(profile_uuid)
        );
        self.call(Method::GET, &path, None).await
    }

    /// Sends an authenticated call and decodes the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let body = match body {
            Some(value) => Some(serde_json::to_vec(&value).map_err(|e| AdeError::Decode {
                path: path.to_owned(),
                source: e,
            })?),
            None => None,
        };
        let url = format!("{}{path}", self.base);
        let mut renewed = false;
        let mut retries = 0;
        loop {
            let session = self.session().await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(SESSION_HEADER, &session)
                .header(PROTOCOL_HEADER, &self.protocol_version)
                .header(CONTENT_TYPE, JSON_UTF8)
                .header(ACCEPT, JSON_UTF8);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = request.send().await?;
            let status = response.status();
            self.keep_new_session(&session, response.headers()).await;
            if status.is_success() {
                let bytes = response.bytes().await?;
                return serde_json::from_slice(&bytes).map_err(|e| AdeError::Decode {
                    path: path.to_owned(),
                    source: e,
                });
            }
            let retry_after = retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            match api_verdict(status, &text, retry_after) {
                Verdict::Renew if !renewed => {
                    tracing::debug!(%path, %status, "ADE session refused; renewing");
                    renewed = true;
                    self.renew_session(&session).await?;
                }
                Verdict::Renew => {
                    return Err(AdeError::TokenInvalid {
                        reason: format!(
                            "a new session was refused too ({status}: {})",
                            excerpt(&text)
                        ),
                    })
                }
                Verdict::Retry(after) if retries < self.retry.max_retries => {
                    let wait = self.retry.delay(retries, after);
                    tracing::info!(%path, %status, ?wait, "Apple throttled the ADE call; waiting");
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Verdict::Retry(after) => {
                    return Err(AdeError::Throttled {
                        status: status.as_u16(),
                        times: retries + 1,
                        retry_after: after,
                    })
                }
                Verdict::Fail(e) => return Err(e),
            }
        }
    }

    /// The current session token, getting one first when there is none.
    async fn session(&self) -> Result<String> {
        let mut slot = self.session.lock().await;
        if let Some(token) = slot.as_ref() {
            return Ok(token.clone());
        }
        let token = self.new_session().await?;
        *slot = Some(token.clone());
        Ok(token)
    }

    /// Replaces `refused` by a new session, unless another task already did.
    async fn renew_session(&self, refused: &str) -> Result<()> {
        let mut slot = self.session.lock().await;
        if slot.as_deref().is_some_and(|current| current != refused) {
            return Ok(());
        }
        *slot = None;
        *slot = Some(self.new_session().await?);
        Ok(())
    }

    /// Apple may send a replacement session token with any answer.
    async fn keep_new_session(&self, sent: &str, headers: &HeaderMap) {
        let Some(new) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if new.is_empty() || new == sent {
            return;
        }
        let mut slot = self.session.lock().await;
        if slot.as_deref() == Some(sent) {
            *slot = Some(new.to_owned());
        }
    }

    /// `GET /session` with the OAuth header.
    async fn new_session(&self) -> Result<String> {
        let url = format!("{}/session", self.base);
        let mut retries = 0;
        loop {
            let authorization = oauth::authorization_header(&self.tokens, "GET", &url)?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = self
                .http
                .get(&url)
                .header(AUTHORIZATION, authorization)
                .header(PROTOCOL_HEADER, &self.protocol_version)
                .header(ACCEPT, JSON_UTF8)
                .send()
                .await?;
            let status = response.status();
            if status.is_success() {
                let bytes = response.bytes().await?;
                let answer: SessionAnswer =
                    serde_json::from_slice(&bytes).map_err(|e| AdeError::Decode {
                        path: "/session".into(),
                        source: e,
                    })?;
                return Ok(answer.auth_session_token);
            }
            let after = retry_after(response.headers());
            let www = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let text = response.text().await.unwrap_or_default();
            match session_verdict(status, &text, &www, after) {
                Verdict::Retry(after) if retries < self.retry.max_retries => {
                    retries += 1;
                    tokio::time::sleep(self.retry.delay(retries - 1, after)).await;
                }
                Verdict::Retry(after) => {
                    return Err(AdeError::Throttled {
                        status: status.as_u16(),
                        times: retries + 1,
                        retry_after: after,
                    })
                }
                Verdict::Renew => {
                    return Err(AdeError::TokenInvalid {
                        reason: excerpt(&text),
                    })
                }
                Verdict::Fail(e) => return Err(e),
            }
        }
    }
}

fn page_request(cursor: Option<&str>, limit: Option<u32>) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    if let Some(cursor) = cursor {
        body.insert("cursor".into(), cursor.into());
    }
    if let Some(limit) = limit {
        body.insert("limit".into(), limit.clamp(1, MAX_LIMIT).into());
    }
    serde_json::Value::Object(body)
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| AdeError::Decode {
        path: "request".into(),
        source: e,
    })
}

/// Apple's error bodies are a bare code, a quoted code or `{"code": …}`;
/// looking for the code in the text covers all three.
fn api_verdict(status: StatusCode, body: &str, retry_after: Option<Duration>) -> Verdict {
    match status.as_u16() {
        401 => Verdict::Renew,
        403 if body.contains("T_C_NOT_SIGNED") => Verdict::Fail(AdeError::TermsNotSigned),
        403 if body.contains("ACCESS_DENIED") => Verdict::Fail(AdeError::TokenInvalid {
            reason: "ACCESS_DENIED".into(),
        }),
        // nanodep: Apple's simulator answers an unknown session with 403 FORBIDDEN.
        403 if body.contains("FORBIDDEN") => Verdict::Renew,
        400 if body.contains("EXPIRED_CURSOR") => Verdict::Fail(AdeError::CursorExpired {
            code: "EXPIRED_CURSOR".into(),
        }),
        400 if body.contains("INVALID_CURSOR") => Verdict::Fail(AdeError::CursorExpired {
            code: "INVALID_CURSOR".into(),
        }),
        400 if body.contains("EXHAUSTED_CURSOR") => Verdict::Fail(AdeError::CursorExhausted),
        429 | 503 => Verdict::Retry(retry_after),
        code => Verdict::Fail(AdeError::Status {
            code,
            body: excerpt(body),
        }),
    }
}

/// `/session` answers: 400/401 are OAuth problems with the token itself.
fn session_verdict(
    status: StatusCode,
    body: &str,
    www: &str,
    retry_after: Option<Duration>,
) -> Verdict {
    match status.as_u16() {
        400 | 401 | 403 if body.contains("T_C_NOT_SIGNED") => {
            Verdict::Fail(AdeError::TermsNotSigned)
        }
        400 | 401 | 403 => Verdict::Fail(AdeError::TokenInvalid {
            reason: oauth_problem(www)
                .or_else(|| oauth_problem(body))
                .unwrap_or_else(|| format!("HTTP {}: {}", status.as_u16(), excerpt(body))),
        }),
        429 | 503 => Verdict::Retry(retry_after),
        code => Verdict::Fail(AdeError::Status {
            code,
            body: excerpt(body),
        }),
    }
}

/// `oauth_problem=token_expired` or `oauth_problem="token_expired"` in a body or header.
fn oauth_problem(text: &str) -> Option<String> {
    let at = text.find("oauth_problem")?;
    let rest = text[at + "oauth_problem".len()..].trim_start_matches([' ', '=', ':', '"']);
    let value: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!value.is_empty()).then_some(value)
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (at.with_timezone(&Utc) - Utc::now()).num_seconds().max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_owned(),
    }
}

/// Dates as Apple writes them (`2024-08-01T07:12:55Z`); an unreadable or
/// empty date becomes `None` rather than failing a whole sync.
mod lenient_time {
    use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Some(at.with_timezone(&Utc)));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(Some(naive.and_utc()));
        }
        tracing::warn!(%text, "unreadable date from the ADE service; ignored");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_json_from_apples_documentation_shape() {
        let json = r#"{
            "serial_number": "C8TJ500QF1MN", "model": "IPAD WI-FI 16GB",
            "description": "IPAD WI-FI 16GB BLACK-USA", "color": "BLACK",
            "asset_tag": "233", "profile_status": "empty",
            "device_assigned_date": "2013-01-01T00:00:00Z",
            "device_assigned_by": "user@example.com", "os": "iPadOS",
            "device_family": "iPad", "op_type": "added", "op_date": "2014-01-01T00:00:00Z",
            "profile_push_time": "", "response_status": "SUCCESS"
        }"#;
        let device: Device = serde_json::from_str(json).unwrap();
        assert_eq!(device.serial_number, "C8TJ500QF1MN");
        assert_eq!(device.op_type, Some(OpType::Added));
        assert_eq!(device.profile_status, ProfileStatus::Empty);
        assert_eq!(device.profile_push_time, None);
        assert!(device.device_assigned_date.is_some());
    }

    #[test]
    fn profile_leaves_unset_fields_out() {
        let profile = Profile {
            profile_name: "Grundschule".into(),
            url: Some("https://mdm.example/enroll".into()),
            is_mdm_removable: Some(false),
            skip_setup_items: vec!["Location".into()],
            ..Profile::default()
        };
        let json = serde_json::to_value(&profile).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "is_mdm_removable",
                "profile_name",
                "skip_setup_items",
                "url"
            ]
        );
    }

    #[test]
    fn error_bodies_map_to_errors() {
        let v =
            |code: u16, body: &str| api_verdict(StatusCode::from_u16(code).unwrap(), body, None);
        assert!(matches!(
            v(403, "\"T_C_NOT_SIGNED\""),
            Verdict::Fail(AdeError::TermsNotSigned)
        ));
        assert!(matches!(
            v(403, "{\"code\": \"T_C_NOT_SIGNED\"}"),
            Verdict::Fail(AdeError::TermsNotSigned)
        ));
        assert!(matches!(
            v(403, "ACCESS_DENIED"),
            Verdict::Fail(AdeError::TokenInvalid { .. })
        ));
        assert!(matches!(v(403, "FORBIDDEN"), Verdict::Renew));
        assert!(matches!(v(401, ""), Verdict::Renew));
        assert!(matches!(
            v(400, "EXPIRED_CURSOR"),
            Verdict::Fail(AdeError::CursorExpired { .. })
        ));
        assert!(matches!(
            v(400, "EXHAUSTED_CURSOR"),
            Verdict::Fail(AdeError::CursorExhausted)
        ));
        assert!(matches!(v(503, ""), Verdict::Retry(None)));
        assert!(matches!(
            v(500, "oops"),
            Verdict::Fail(AdeError::Status { code: 500, .. })
        ));
        assert_eq!(
            oauth_problem("oauth_problem=token_expired").as_deref(),
            Some("token_expired")
        );
        assert_eq!(
            oauth_problem("OAuth realm=\"ADM\", oauth_problem=\"token_rejected\"").as_deref(),
            Some("token_rejected")
        );
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, None), Duration::from_secs(1));
        assert_eq!(policy.delay(3, None), Duration::from_secs(8));
        assert_eq!(policy.delay(30, None), Duration::from_secs(60));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }
}

//! The JSON of Apple's App and Book Management API v2, as serde types with
//! Apple's field names (`ClientConfigResponse`, `GetAssetsResponse`,
//! `ResponseAsset`, `ManageAssetsRequest`, `EventResponse`, `StatusResponse`,
//! `GetAssignmentsResponse`, `ServiceConfigResponse` in Apple's Device
//! Management documentation). Unknown fields are ignored: Apple adds fields.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::codes;

/// Parses Apple's dates: `2030-11-08T22:33:22+0000` (no colon in the offset,
/// so not RFC 3339), and RFC 3339 in case Apple ever switches.
pub fn parse_apple_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|date| date.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            // Apple says all dates are UTC; accept one written without an offset.
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|naive| naive.and_utc())
        })
}

/// Formats a date the way Apple writes it.
pub fn format_apple_date(date: DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// `tokenExpirationDate`: Apple only sends it in the last 15 days before expiry.
/// A date that does not parse is dropped rather than failing the whole response.
fn apple_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    Ok(text.as_deref().and_then(parse_apple_date))
}

/// `adamId` is a string in v2 but a number in older payloads; accept both.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(text) => text,
        Either::Number(number) => number.to_string(),
    })
}

/// The identity an MDM stores in the token's client config (`MdmInfo`). In v2
/// this replaces v1's `clientContext`; Apple echoes it on every response so an
/// MDM can notice another MDM taking over the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmInfo {
    /// A unique identifier of the MDM for this organisation (tafel: its server UUID).
    pub id: String,
    /// The MDM's name, shown to Apple support when two MDMs collide.
    pub name: String,
    /// Free-form metadata (v2's replacement for `clientContext`).
    #[serde(default)]
    pub metadata: String,
}

/// `ClientConfigResponse`: what Apple knows about the token's location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// The ISO 3166 alpha-2 country of the organisation (`countryISO2ACode`).
    #[serde(rename = "countryISO2ACode", default)]
    pub country_iso2a_code: Option<String>,
    /// `volumestore` (education) or `enterprisestore`.
    #[serde(default)]
    pub default_platform: Option<String>,
    /// The location (library) name.
    #[serde(default)]
    pub location_name: Option<String>,
    /// The MDM that last set the client config, if any.
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    /// Where Apple posts notifications.
    #[serde(default)]
    pub notification_url: Option<String>,
    /// The notification types subscribed to.
    #[serde(default)]
    pub subscribed_notification_types: Vec<String>,
    /// The token's expiry; Apple includes it only in the last 15 days.
    #[serde(default, deserialize_with = "apple_date")]
    pub token_expiration_date: Option<DateTime<Utc>>,
    /// The library identifier: tokens that share a library share a `uId`.
    #[serde(default)]
    pub u_id: Option<String>,
    /// `https://school.apple.com` or `https://business.apple.com` (`websiteURL`).
    #[serde(rename = "websiteURL", default)]
    pub website_url: Option<String>,
}

impl ClientConfig {
    /// True when the config names the MDM with this `id`.
    pub fn is_managed_by(&self, id: &str) -> bool {
        self.mdm_info.as_ref().is_some_and(|info| info.id == id)
    }
}

/// `ClientConfigRequest`: fields left `None` are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigRequest {
    /// The MDM identity Apple echoes on every later response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mdm_info: Option<MdmInfo>,
    /// The HTTPS URL Apple posts notifications to (host and path only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    /// The bearer Apple sends with notifications (a shared secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_auth_token: Option<String>,
    /// The complete set of notification types to subscribe to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_types: Option<Vec<String>>,
}

/// One asset (app or book) to associate: `Asset` in `ManageAssetsRequest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRef {
    /// The store identifier.
    #[serde(deserialize_with = "string_or_number")]
    pub adam_id: String,
    /// `STDQ` (standard) or `PLUS`.
    pub pricing_param: String,
}

impl AssetRef {
    /// An asset with the given pricing parameter.
    pub fn new(adam_id: impl Into<String>, pricing_param: impl Into<String>) -> Self {
        Self {
            adam_id: adam_id.into(),
            pricing_param: pricing_param.into(),
        }
    }

    /// An asset of standard quality (`STDQ`), which is what apps are.
    pub fn stdq(adam_id: impl Into<String>) -> Self {
        Self::new(adam_id, "STDQ")
    }
}

/// `ResponseAsset`: an asset the location owns, with its licence counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    /// The store identifier.
    #[serde(deserialize_with = "string_or_number")]
    pub adam_id: String,
    /// `STDQ` or `PLUS`.
    pub pricing_param: String,
    /// `App` or `Book`.
    #[serde(default)]
    pub product_type: String,
    /// Licences in use.
    #[serde(default)]
    pub assigned_count: i64,
    /// Licences free to assign.
    #[serde(default)]
    pub available_count: i64,
    /// Licences retired.
    #[serde(default)]
    pub retired_count: i64,
    /// Licences bought.
    #[serde(default)]
    pub total_count: i64,
    /// Whether a licence can go to a serial number (books cannot).
    #[serde(default)]
    pub device_assignable: bool,
    /// Whether a licence can be taken back.
    #[serde(default)]
    pub revocable: bool,
    /// `iOS`, `macOS`, `tvOS`, `watchOS`, `visionOS`.
    #[serde(default)]
    pub supported_platforms: Vec<String>,
}

impl Asset {
    /// The reference used to associate this asset.
    pub fn asset_ref(&self) -> AssetRef {
        AssetRef::new(self.adam_id.clone(), self.pricing_param.clone())
    }
}

/// One page of `GetAssetsResponse`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetsPage {
    /// The assets on this page.
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// Assets with unlimited licences (newer API versions), kept as sent.
    #[serde(default)]
    pub unlimited_assets: Vec<serde_json::Value>,
    /// This page's index (zero-based).
    #[serde(default)]
    pub current_page_index: u32,
    /// The next page, absent on the last one.
    #[serde(default)]
    pub next_page_index: Option<u32>,
    /// Pages in the whole result; may change while paging.
    #[serde(default)]
    pub total_pages: u32,
    /// Records on this page.
    #[serde(default)]
    pub size: u32,
    /// Changes whenever the underlying data changes.
    #[serde(default)]
    pub version_id: Option<String>,
    /// The MDM identity stored for the token.
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    /// The token's expiry, in its last 15 days.
    #[serde(default, deserialize_with = "apple_date")]
    pub token_expiration_date: Option<DateTime<Utc>>,
    /// The library identifier.
    #[serde(default)]
    pub u_id: Option<String>,
}

/// `Assignment`: a licence held by a device (or, for user-assigned licences, a user).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The store identifier.
    #[serde(deserialize_with = "string_or_number")]
    pub adam_id: String,
    /// `STDQ` or `PLUS`.
    pub pricing_param: String,
    /// The device, for device assignments.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// The user, for user assignments (tafel does not make these).
    #[serde(default)]
    pub client_user_id: Option<String>,
}

/// One page of `GetAssignmentsResponse`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentsPage {
    /// The assignments on this page.
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    /// This page's index (zero-based).
    #[serde(default)]
    pub current_page_index: u32,
    /// The next page, absent on the last one.
    #[serde(default)]
    pub next_page_index: Option<u32>,
    /// Pages in the whole result; may change while paging.
    #[serde(default)]
    pub total_pages: u32,
    /// Records on this page.
    #[serde(default)]
    pub size: u32,
    /// Changes whenever the underlying data changes; usable as `sinceVersionId`.
    #[serde(default)]
    pub version_id: Option<String>,
    /// The MDM identity stored for the token.
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    /// The token's expiry, in its last 15 days.
    #[serde(default, deserialize_with = "apple_date")]
    pub token_expiration_date: Option<DateTime<Utc>>,
    /// The library identifier.
    #[serde(default)]
    pub u_id: Option<String>,
}

/// Query filters of `GET /mdm/v2/assignments`; `None` is not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    /// Only this asset.
    pub adam_id: Option<String>,
    /// Only this pricing parameter.
    pub pricing_param: Option<String>,
    /// Only this device.
    pub serial_number: Option<String>,
    /// Only records changed since this `versionId`.
    pub since_version_id: Option<String>,
}

impl AssignmentFilter {
    /// Assignments of one asset.
    pub fn asset(adam_id: impl Into<String>) -> Self {
        Self {
            adam_id: Some(adam_id.into()),
            ..Self::default()
        }
    }

    /// Assignments of one device.
    pub fn device(serial_number: impl Into<String>) -> Self {
        Self {
            serial_number: Some(serial_number.into()),
            ..Self::default()
        }
    }

    /// Also restrict to one device.
    pub fn and_device(mut self, serial_number: impl Into<String>) -> Self {
        self.serial_number = Some(serial_number.into());
        self
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        [
            ("adamId", &self.adam_id),
            ("pricingParam", &self.pricing_param),
            ("serialNumber", &self.serial_number),
            ("sinceVersionId", &self.since_version_id),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.clone().map(|value| (key, value)))
        .collect()
    }
}

/// The identifier of an asynchronous associate/disassociate event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `EventResponse` of associate, disassociate and revoke.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventResponse {
    pub event_id: EventId,
}

/// The overall state of an event (`eventStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventState {
    /// Still being processed.
    Pending,
    /// Done without failures.
    Complete,
    /// Done, with at least one failure (some tasks may still have succeeded).
    Failed,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// `ResponseErrorInfo`: the entities an error concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// The assets concerned.
    #[serde(default)]
    pub assets: Vec<AssetRef>,
    /// The users concerned.
    #[serde(default)]
    pub client_user_ids: Vec<String>,
    /// The devices concerned.
    #[serde(default)]
    pub serial_numbers: Vec<String>,
}

/// `ErrorResponse`, as found in an event's `failures`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFailure {
    /// Apple's error number, e.g. 9709 (not enough licences).
    #[serde(default)]
    pub error_number: i64,
    /// Apple's message.
    #[serde(default)]
    pub error_message: String,
    /// The entities the failure concerns.
    #[serde(default)]
    pub error_info: Option<ErrorInfo>,
}

impl EventFailure {
    /// True for "there aren't enough assets available" (9709).
    pub fn is_not_enough_licenses(&self) -> bool {
        self.error_number == codes::NOT_ENOUGH_ASSETS
    }

    /// The serial numbers the failure concerns.
    pub fn serial_numbers(&self) -> &[String] {
        self.error_info
            .as_ref()
            .map_or(&[], |info| info.serial_numbers.as_slice())
    }
}

/// `StatusResponse` of `GET /mdm/v2/status?eventId=…`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStatus {
    /// `PENDING`, `COMPLETE` or `FAILED`.
    pub event_status: EventState,
    /// `ASSOCIATE`, `DISASSOCIATE`, `REVOKE`, …
    #[serde(default)]
    pub event_type: Option<String>,
    /// Tasks (asset × device pairs) done so far.
    #[serde(default)]
    pub num_completed: i64,
    /// Tasks in the request.
    #[serde(default)]
    pub num_requested: i64,
    /// What failed, once the event has finished.
    #[serde(default)]
    pub failures: Vec<EventFailure>,
    /// The MDM identity stored for the token.
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    /// The token's expiry, in its last 15 days.
    #[serde(default, deserialize_with = "apple_date")]
    pub token_expiration_date: Option<DateTime<Utc>>,
    /// The library identifier.
    #[serde(default)]
    pub u_id: Option<String>,
}

impl EventStatus {
    /// True once Apple has finished the event (complete or failed).
    pub fn is_finished(&self) -> bool {
        self.event_status != EventState::Pending
    }

    /// Every serial number named in a failure.
    pub fn failed_serials(&self) -> BTreeSet<String> {
        self.failures
            .iter()
            .flat_map(|failure| failure.serial_numbers().iter().cloned())
            .collect()
    }

    /// Serial numbers that got no licence because too few were left (9709).
    pub fn serials_without_license(&self) -> BTreeSet<String> {
        self.failures
            .iter()
            .filter(|failure| failure.is_not_enough_licenses())
            .flat_map(|failure| failure.serial_numbers().iter().cloned())
            .collect()
    }
}

/// `ServiceConfigResponse`: Apple's current request limits and URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    /// Limit name → value, e.g. `maxAssets` → 25, `maxSerialNumbers` → 1000.
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    /// Endpoint name → URL.
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
    /// The notification types Apple supports.
    #[serde(default)]
    pub notification_types: Vec<String>,
}

/// How many assets and serial numbers one associate/disassociate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// `maxAssets`.
    pub max_assets: usize,
    /// `maxSerialNumbers`.
    pub max_serial_numbers: usize,
}

impl BatchLimits {
    /// The values Apple documents in "Managing assets" (`maxAssets` 25,
    /// `maxSerialNumbers` 1000); Apple says they are dynamic, see
    /// [`ServiceConfig::batch_limits`].
    pub const DOCUMENTED: Self = Self {
        max_assets: 25,
        max_serial_numbers: 1000,
    };
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self::DOCUMENTED
    }
}

impl ServiceConfig {
    /// The batch limits Apple announces, falling back to the documented values
    /// for a missing or nonsensical key.
    pub fn batch_limits(&self) -> BatchLimits {
        let limit = |key: &str, fallback: usize| {
            self.limits
                .get(key)
                .and_then(|value| usize::try_from(*value).ok())
                .filter(|value| *value > 0)
                .unwrap_or(fallback)
        };
        BatchLimits {
            max_assets: limit("maxAssets", BatchLimits::DOCUMENTED.max_assets),
            max_serial_numbers: limit(
                "maxSerialNumbers",
                BatchLimits::DOCUMENTED.max_serial_numbers,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn apple_dates_parse_with_and_without_colon() {
        let want = Utc.with_ymd_and_hms(2030, 11, 8, 22, 33, 22).unwrap();
        assert_eq!(parse_apple_date("2030-11-08T22:33:22+0000"), Some(want));
        assert_eq!(parse_apple_date("2030-11-08T22:33:22Z"), Some(want));
        assert_eq!(parse_apple_date("2030-11-08T23:33:22+01:00"), Some(want));
        assert_eq!(parse_apple_date("2030-11-08T22:33:22"), Some(want));
        assert_eq!(parse_apple_date("soon"), None);
        assert_eq!(format_apple_date(want), "2030-11-08T22:33:22+0000");
    }

    #[test]
    fn client_config_reads_apples_example() {
        // The example response of Apple's "Client Config" endpoint.
        let json = r#"{
            "countryISO2ACode": "US", "defaultPlatform": "volumestore",
            "locationName": "PS01",
            "mdmInfo": {"id": "522d5c43-44ca-4f7e-ba7a-53570cf60765",
                        "name": "Apple Configurator 2", "metadata": "2.13.3"},
            "notificationAuthToken": "SUp3rS3Cr3t",
            "notificationUrl": "https://www.next.com/notification",
            "subscribedNotificationTypes": ["ASSET_COUNT", "ASSET_MANAGEMENT"],
            "tokenExpirationDate": "2030-11-08T22:33:22+0000",
            "uId": "2049025000431439", "websiteURL": "https://school.apple.com"}"#;
        let config: ClientConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.country_iso2a_code.as_deref(), Some("US"));
        assert_eq!(config.u_id.as_deref(), Some("2049025000431439"));
        assert_eq!(
            config.website_url.as_deref(),
            Some("https://school.apple.com")
        );
        assert!(config.is_managed_by("522d5c43-44ca-4f7e-ba7a-53570cf60765"));
        assert!(config.token_expiration_date.is_some());
        // The notification secret is not kept (and so never printed).
        assert!(!format!("{config:?}").contains("SUp3rS3Cr3t"));
    }

    #[test]
    fn status_reads_apples_failed_example() {
        let json = r#"{"eventStatus": "FAILED", "eventType": "ASSOCIATE",
            "failures": [{"errorInfo": {"serialNumbers": ["C02X1", "C02X2"],
                                        "assets": [{"adamId": 408709785, "pricingParam": "STDQ"}]},
                          "errorNumber": 9709,
                          "errorMessage": "There aren't enough assets available to complete this association."}],
            "numCompleted": 14, "numRequested": 16, "uId": "2049025000431439"}"#;
        let status: EventStatus = serde_json::from_str(json).unwrap();
        assert_eq!(status.event_status, EventState::Failed);
        assert!(status.is_finished());
        assert_eq!(
            status
                .serials_without_license()
                .into_iter()
                .collect::<Vec<_>>(),
            ["C02X1", "C02X2"]
        );
        let info = status.failures[0].error_info.as_ref().unwrap();
        assert_eq!(info.assets[0], AssetRef::stdq("408709785"));
        let odd: EventStatus = serde_json::from_str(r#"{"eventStatus": "PAUSED"}"#).unwrap();
        assert_eq!(odd.event_status, EventState::Unknown);
    }

    #[test]
    fn service_config_limits_fall_back_to_documented_values() {
        let config: ServiceConfig =
            serde_json::from_str(r#"{"limits": {"maxAssets": 10, "maxSerialNumbers": 0}}"#)
                .unwrap();
        assert_eq!(
            config.batch_limits(),
            BatchLimits {
                max_assets: 10,
                max_serial_numbers: 1000
            }
        );
    }

    #[test]
    fn filter_sends_only_what_is_set() {
        let filter = AssignmentFilter::asset("361309726").and_device("DMPX1");
        assert_eq!(
            filter.query(),
            [
                ("adamId", "361309726".to_owned()),
                ("serialNumber", "DMPX1".to_owned())
            ]
        );
    }
}

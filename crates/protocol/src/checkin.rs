//! Check-in messages (the `CheckInURL` channel): parse what a device sends, and
//! build the same bodies for a device simulator.
//!
//! Schema: `mdm/checkin/*.yaml`. Parsing is liberal: besides `MessageType`, only
//! the device identity (UDID, or EnrollmentID for a user enrollment) and the
//! keys without which the server cannot act (TokenUpdate's `Token` and
//! `PushMagic`, DeclarativeManagement's `Endpoint`, GetToken's
//! `TokenServiceType`) are required; everything else is optional.

use plist::Dictionary;

use super::dict::{parse_body, to_xml, DictWriter, Fields};
use super::enrollment::EnrollmentIds;
use super::error::ProtocolError;
use super::ids::{PushMagic, PushToken, Udid};

/// One check-in request, chosen by its `MessageType`.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckinMessage {
    /// `Authenticate`: the first message of an enrollment (`mdm/checkin/authenticate.yaml`).
    Authenticate(Authenticate),
    /// `TokenUpdate`: push token and magic (`mdm/checkin/tokenupdate.yaml`).
    TokenUpdate(TokenUpdate),
    /// `CheckOut`: the device left MDM (`mdm/checkin/checkout.yaml`).
    CheckOut(CheckOut),
    /// `UserAuthenticate`: macOS network/mobile user (`mdm/checkin/userauthenticate.yaml`).
    UserAuthenticate(UserAuthenticate),
    /// `DeclarativeManagement`: a DDM sync request (`mdm/checkin/declarativemanagement.yaml`).
    DeclarativeManagement(DeclarativeManagementRequest),
    /// `GetBootstrapToken` (macOS) (`mdm/checkin/getbootstraptoken.yaml`).
    GetBootstrapToken(GetBootstrapToken),
    /// `SetBootstrapToken` (macOS) (`mdm/checkin/setbootstraptoken.yaml`).
    SetBootstrapToken(SetBootstrapToken),
    /// `GetToken`: a service token request (`mdm/checkin/gettoken.yaml`).
    GetToken(GetToken),
}

impl CheckinMessage {
    /// Parses a check-in body (XML or binary plist); `MessageType` picks the variant.
    pub fn parse(body: &[u8]) -> Result<CheckinMessage, ProtocolError> {
        let dict = parse_body(body)?;
        CheckinMessage::from_dict(&dict)
    }

    /// Parses an already-decoded check-in dictionary.
    pub fn from_dict(dict: &Dictionary) -> Result<CheckinMessage, ProtocolError> {
        let f = Fields::new(dict);
        let message_type = f.required_string("MessageType")?;
        let enrollment = EnrollmentIds::read(&f)?;
        let message = match message_type.as_str() {
            "Authenticate" => CheckinMessage::Authenticate(Authenticate::read(&f, enrollment)?),
            "TokenUpdate" => CheckinMessage::TokenUpdate(TokenUpdate::read(&f, enrollment)?),
            "CheckOut" => CheckinMessage::CheckOut(CheckOut {
                enrollment,
                topic: f.string("Topic")?,
            }),
            "UserAuthenticate" => CheckinMessage::UserAuthenticate(UserAuthenticate {
                enrollment,
                digest_response: f.string("DigestResponse")?,
            }),
            "DeclarativeManagement" => {
                CheckinMessage::DeclarativeManagement(DeclarativeManagementRequest {
                    enrollment,
                    endpoint: f.required_string("Endpoint")?,
                    data: f.data("Data")?,
                })
            }
            "GetBootstrapToken" => CheckinMessage::GetBootstrapToken(GetBootstrapToken {
                enrollment,
                awaiting_configuration: f.boolean("AwaitingConfiguration")?.unwrap_or(false),
            }),
            "SetBootstrapToken" => CheckinMessage::SetBootstrapToken(SetBootstrapToken {
                enrollment,
                bootstrap_token: f.data("BootstrapToken")?,
                awaiting_configuration: f.boolean("AwaitingConfiguration")?.unwrap_or(false),
            }),
            "GetToken" => CheckinMessage::GetToken(GetToken::read(&f, enrollment)?),
            other => return Err(ProtocolError::UnknownMessageType(other.to_owned())),
        };
        // userauthenticate.yaml: UDID is required and user enrollment is
        // forbidden, so an EnrollmentID cannot stand in for it there.
        if let CheckinMessage::UserAuthenticate(m) = &message {
            if m.enrollment.udid.is_none() {
                return Err(ProtocolError::MissingKey("UDID"));
            }
        }
        // Every other message needs UDID or, for a user enrollment, EnrollmentID.
        // The bootstrap-token schemas list no UDID at all, but macOS sends it
        // and the server cannot attribute the token without it.
        message.enrollment().require_device()?;
        Ok(message)
    }

    /// The message's `MessageType` string.
    pub fn message_type(&self) -> &'static str {
        match self {
            CheckinMessage::Authenticate(_) => "Authenticate",
            CheckinMessage::TokenUpdate(_) => "TokenUpdate",
            CheckinMessage::CheckOut(_) => "CheckOut",
            CheckinMessage::UserAuthenticate(_) => "UserAuthenticate",
            CheckinMessage::DeclarativeManagement(_) => "DeclarativeManagement",
            CheckinMessage::GetBootstrapToken(_) => "GetBootstrapToken",
            CheckinMessage::SetBootstrapToken(_) => "SetBootstrapToken",
            CheckinMessage::GetToken(_) => "GetToken",
        }
    }

    /// The identity keys (UDID, EnrollmentID, user keys) of the message.
    pub fn enrollment(&self) -> &EnrollmentIds {
        match self {
            CheckinMessage::Authenticate(m) => &m.enrollment,
            CheckinMessage::TokenUpdate(m) => &m.enrollment,
            CheckinMessage::CheckOut(m) => &m.enrollment,
            CheckinMessage::UserAuthenticate(m) => &m.enrollment,
            CheckinMessage::DeclarativeManagement(m) => &m.enrollment,
            CheckinMessage::GetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::SetBootstrapToken(m) => &m.enrollment,
            CheckinMessage::GetToken(m) => &m.enrollment,
        }
    }

    /// The device's UDID; `None` for a user enrollment (which sends EnrollmentID).
    pub fn udid(&self) -> Option<&Udid> {
        self.enrollment().udid.as_ref()
    }

    /// The message as a plist dictionary, `MessageType` included.
    pub fn to_dict(&self) -> Dictionary {
        match self {
            CheckinMessage::Authenticate(m) => m.to_dict(),
            CheckinMessage::TokenUpdate(m) => m.to_dict(),
            CheckinMessage::CheckOut(m) => m.to_dict(),
            CheckinMessage::UserAuthenticate(m) => m.to_dict(),
            CheckinMessage::DeclarativeManagement(m) => m.to_dict(),
            CheckinMessage::GetBootstrapToken(m) => m.to_dict(),
            CheckinMessage::SetBootstrapToken(m) => m.to_dict(),
            CheckinMessage::GetToken(m) => m.to_dict(),
        }
    }

    /// The message as an XML plist body, as a device would send it.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// Starts a check-in dictionary: `MessageType` first, then the identity keys.
fn begin(message_type: &str, enrollment: &EnrollmentIds) -> DictWriter {
    enrollment.write(DictWriter::new().set("MessageType", message_type))
}

/// `Authenticate` (`mdm/checkin/authenticate.yaml`).
///
/// The schema marks DeviceName, ModelName and Model required but not
/// available on iOS, tvOS, visionOS or watchOS: only macOS sends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authenticate {
    /// UDID (device enrollment) or EnrollmentID (user enrollment).
    pub enrollment: EnrollmentIds,
    /// `Topic`: the APNs topic the device subscribes to.
    pub topic: Option<String>,
    /// `DeviceName` (macOS only).
    pub device_name: Option<String>,
    /// `ModelName` (macOS only), e.g. `MacBook Pro`.
    pub model_name: Option<String>,
    /// `Model` (macOS only), e.g. `MacBookPro18,3`.
    pub model: Option<String>,
    /// `OSVersion`, e.g. `17.5.1`.
    pub os_version: Option<String>,
    /// `BuildVersion`, e.g. `21F90`.
    pub build_version: Option<String>,
    /// `ProductName`, e.g. `iPad13,18`.
    pub product_name: Option<String>,
    /// `SerialNumber` (absent for user enrollments).
    pub serial_number: Option<String>,
    /// `IMEI` (cellular devices).
    pub imei: Option<String>,
    /// `MEID` (cellular devices).
    pub meid: Option<String>,
}

impl Authenticate {
    fn read(f: &Fields<'_>, enrollment: EnrollmentIds) -> Result<Authenticate, ProtocolError> {
        Ok(Authenticate {
            enrollment,
            topic: f.string("Topic")?,
            device_name: f.string("DeviceName")?,
            model_name: f.string("ModelName")?,
            model: f.string("Model")?,
            os_version: f.string("OSVersion")?,
            build_version: f.string("BuildVersion")?,
            product_name: f.string("ProductName")?,
            serial_number: f.string("SerialNumber")?,
            imei: f.string("IMEI")?,
            meid: f.string("MEID")?,
        })
    }

    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("Authenticate", &self.enrollment)
            .string("Topic", self.topic.as_deref())
            .string("DeviceName", self.device_name.as_deref())
            .string("ModelName", self.model_name.as_deref())
            .string("Model", self.model.as_deref())
            .string("OSVersion", self.os_version.as_deref())
            .string("BuildVersion", self.build_version.as_deref())
            .string("ProductName", self.product_name.as_deref())
            .string("SerialNumber", self.serial_number.as_deref())
            .string("IMEI", self.imei.as_deref())
            .string("MEID", self.meid.as_deref())
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `TokenUpdate` (`mdm/checkin/tokenupdate.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUpdate {
    /// Identity; user-channel TokenUpdates carry UserID/UserShortName too.
    pub enrollment: EnrollmentIds,
    /// `Topic`: the APNs topic.
    pub topic: Option<String>,
    /// `Token` (`<data>`, required): the APNs device token.
    pub token: PushToken,
    /// `PushMagic` (required): goes in every push to this device.
    pub push_magic: PushMagic,
    /// `UnlockToken` (`<data>`): needed later for ClearPasscode.
    pub unlock_token: Option<Vec<u8>>,
    /// `AwaitingConfiguration` (default false): the device waits in Setup
    /// Assistant for DeviceConfigured (device channel) or UserConfigured.
    pub awaiting_configuration: bool,
    /// `NotOnConsole` (macOS user channel, default false).
    pub not_on_console: bool,
}

impl TokenUpdate {
    fn read(f: &Fields<'_>, enrollment: EnrollmentIds) -> Result<TokenUpdate, ProtocolError> {
        Ok(TokenUpdate {
            enrollment,
            topic: f.string("Topic")?,
            token: PushToken::new(f.data("Token")?.ok_or(ProtocolError::MissingKey("Token"))?),
            push_magic: PushMagic::new(f.required_string("PushMagic")?),
            unlock_token: f.data("UnlockToken")?,
            awaiting_configuration: f.boolean("AwaitingConfiguration")?.unwrap_or(false),
            not_on_console: f.boolean("NotOnConsole")?.unwrap_or(false),
        })
    }

    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("TokenUpdate", &self.enrollment)
            .string("Topic", self.topic.as_deref())
            .data("Token", Some(self.token.as_bytes()))
            .set("PushMagic", self.push_magic.as_str())
            .data("UnlockToken", self.unlock_token.as_deref())
            .flag("AwaitingConfiguration", self.awaiting_configuration)
            .flag("NotOnConsole", self.not_on_console)
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `CheckOut` (`mdm/checkin/checkout.yaml`); only sent when the enrollment
/// profile set `CheckOutWhenRemoved`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckOut {
    /// Identity of the departing enrollment.
    pub enrollment: EnrollmentIds,
    /// `Topic`.
    pub topic: Option<String>,
}

impl CheckOut {
    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("CheckOut", &self.enrollment)
            .string("Topic", self.topic.as_deref())
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `UserAuthenticate` (`mdm/checkin/userauthenticate.yaml`), macOS only.
///
/// `UserID` (required by the schema) is in `enrollment.user_id`. The first
/// request has no `DigestResponse`; the schema documents no response keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserAuthenticate {
    /// Identity: UDID plus the user's UserID/UserShortName/UserLongName.
    pub enrollment: EnrollmentIds,
    /// `DigestResponse`: present on the second request only.
    pub digest_response: Option<String>,
}

impl UserAuthenticate {
    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("UserAuthenticate", &self.enrollment)
            .string("DigestResponse", self.digest_response.as_deref())
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// The `Endpoint` of a DeclarativeManagement check-in, parsed
/// (`mdm/checkin/declarativemanagement.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclarativeEndpoint {
    /// `tokens`: the device fetches the synchronization tokens.
    Tokens,
    /// `declaration-items`: the device fetches the declaration manifest.
    DeclarationItems,
    /// `status`: the device sends a status report in `Data`.
    Status,
    /// `declaration/<type>/<identifier>`: the device fetches one declaration.
    Declaration {
        /// The declaration type segment, e.g. `configuration`, `asset`.
        declaration_type: String,
        /// The declaration identifier.
        identifier: String,
    },
    /// Any other endpoint string, kept verbatim.
    Other(String),
}

impl DeclarativeEndpoint {
    /// Parses an `Endpoint` string.
    pub fn parse(endpoint: &str) -> DeclarativeEndpoint {
        match endpoint {
            "tokens" => DeclarativeEndpoint::Tokens,
            "declaration-items" => DeclarativeEndpoint::DeclarationItems,
            "status" => DeclarativeEndpoint::Status,
            _ => {
                let declaration = endpoint
                    .strip_prefix("declaration/")
                    .and_then(|rest| rest.split_once('/'))
                    .filter(|(kind, id)| !kind.is_empty() && !id.is_empty());
                match declaration {
                    Some((kind, id)) => DeclarativeEndpoint::Declaration {
                        declaration_type: kind.to_owned(),
                        identifier: id.to_owned(),
                    },
                    None => DeclarativeEndpoint::Other(endpoint.to_owned()),
                }
            }
        }
    }
}

/// `DeclarativeManagement` check-in (`mdm/checkin/declarativemanagement.yaml`).
///
/// The reply is not a plist: the schema lists no response keys here, and the
/// body is the JSON document of `declarative/protocol/` (TokensResponse,
/// DeclarationItemsResponse, or a declaration), built outside this module.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarativeManagementRequest {
    /// Identity (device or user channel).
    pub enrollment: EnrollmentIds,
    /// `Endpoint` (required): `tokens`, `declaration-items`, `status`, `declaration/…/…`.
    pub endpoint: String,
    /// `Data` (`<data>`): JSON bytes, e.g. the status report for `status`.
    pub data: Option<Vec<u8>>,
}

impl DeclarativeManagementRequest {
    /// The endpoint, parsed.
    pub fn endpoint_kind(&self) -> DeclarativeEndpoint {
        DeclarativeEndpoint::parse(&self.endpoint)
    }

    /// `Data` decoded as JSON, if present.
    pub fn data_json(&self) -> Result<Option<serde_json::Value>, ProtocolError> {
        self.data
            .as_deref()
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|e| ProtocolError::InvalidValue {
                    key: "Data".to_owned(),
                    reason: format!("not JSON: {e}"),
                })
            })
            .transpose()
    }

    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("DeclarativeManagement", &self.enrollment)
            .set("Endpoint", self.endpoint.as_str())
            .data("Data", self.data.as_deref())
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `GetBootstrapToken` (`mdm/checkin/getbootstraptoken.yaml`), macOS only;
/// answer with [`super::checkin_reply::GetBootstrapTokenResponse`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetBootstrapToken {
    /// Identity (device channel).
    pub enrollment: EnrollmentIds,
    /// `AwaitingConfiguration` (default false).
    pub awaiting_configuration: bool,
}

impl GetBootstrapToken {
    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("GetBootstrapToken", &self.enrollment)
            .flag("AwaitingConfiguration", self.awaiting_configuration)
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `SetBootstrapToken` (`mdm/checkin/setbootstraptoken.yaml`), macOS only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetBootstrapToken {
    /// Identity (device channel).
    pub enrollment: EnrollmentIds,
    /// `BootstrapToken` (`<data>`); absent or empty means "remove the stored token".
    pub bootstrap_token: Option<Vec<u8>>,
    /// `AwaitingConfiguration` (default false).
    pub awaiting_configuration: bool,
}

impl SetBootstrapToken {
    /// True when the server should delete its stored token
    /// (setbootstraptoken.yaml: missing or zero length).
    pub fn clears_token(&self) -> bool {
        self.bootstrap_token.as_ref().is_none_or(Vec::is_empty)
    }

    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        begin("SetBootstrapToken", &self.enrollment)
            .data("BootstrapToken", self.bootstrap_token.as_deref())
            .flag("AwaitingConfiguration", self.awaiting_configuration)
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

/// `TokenParameters` of a GetToken request: a `<dict>` of strings in the
/// schema (`mdm/checkin/gettoken.yaml`), all needed for `com.apple.watch.pairing`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenParameters {
    /// `SecurityToken`.
    pub security_token: Option<String>,
    /// `PhoneUDID`: the phone paired to the watch.
    pub phone_udid: Option<String>,
    /// `WatchUDID`: the watch paired to the phone.
    pub watch_udid: Option<String>,
}

/// `GetToken` (`mdm/checkin/gettoken.yaml`); answer with
/// [`super::checkin_reply::GetTokenResponse`].
#[derive(Debug, Clone, PartialEq)]
pub struct GetToken {
    /// Identity (device or user channel).
    pub enrollment: EnrollmentIds,
    /// `TokenServiceType` (required): `com.apple.maid` or `com.apple.watch.pairing`.
    pub token_service_type: String,
    /// `TokenParameters`.
    pub token_parameters: Option<TokenParameters>,
}

impl GetToken {
    fn read(f: &Fields<'_>, enrollment: EnrollmentIds) -> Result<GetToken, ProtocolError> {
        let token_parameters = match f.dict("TokenParameters")? {
            None => None,
            Some(params) => {
                let p = Fields::nested(params, "TokenParameters");
                Some(TokenParameters {
                    security_token: p.string("SecurityToken")?,
                    phone_udid: p.string("PhoneUDID")?,
                    watch_udid: p.string("WatchUDID")?,
                })
            }
        };
        Ok(GetToken {
            enrollment,
            token_service_type: f.required_string("TokenServiceType")?,
            token_parameters,
        })
    }

    /// The message as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        let params = self.token_parameters.as_ref().map(|p| {
            DictWriter::new()
                .string("SecurityToken", p.security_token.as_deref())
                .string("PhoneUDID", p.phone_udid.as_deref())
                .string("WatchUDID", p.watch_udid.as_deref())
                .finish()
        });
        begin("GetToken", &self.enrollment)
            .set("TokenServiceType", self.token_service_type.as_str())
            .opt("TokenParameters", params)
            .finish()
    }

    /// The message as an XML plist body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDID: &str = "00008103-000A1C2E3F48801E";
    const TOPIC: &str = "com.apple.mgmt.External.2f0bf6c4-5a0e-4a8b-9d5c-2c1b0a9e8f7d";

    /// Wraps dictionary entries the way iOS formats a check-in body.
    fn plist(entries: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
{entries}
</dict>
</plist>
"#
        )
        .into_bytes()
    }

    /// Every message must survive build → parse unchanged (the simulator relies on it).
    fn round_trip(message: &CheckinMessage) {
        assert_eq!(&CheckinMessage::parse(&message.to_xml()).unwrap(), message);
        let mut binary = Vec::new();
        plist::Value::Dictionary(message.to_dict())
            .to_writer_binary(&mut binary)
            .unwrap();
        assert_eq!(&CheckinMessage::parse(&binary).unwrap(), message);
    }

    #[test]
    fn ipad_authenticate() {
        let body = plist(&format!(
            "\t<key>BuildVersion</key>\n\t<string>21F90</string>\n\
             \t<key>IMEI</key>\n\t<string>35 744609 261734 5</string>\n\
             \t<key>MEID</key>\n\t<string>35744609261734</string>\n\
             \t<key>MessageType</key>\n\t<string>Authenticate</string>\n\
             \t<key>OSVersion</key>\n\t<string>17.5.1</string>\n\
             \t<key>ProductName</key>\n\t<string>iPad13,18</string>\n\
             \t<key>SerialNumber</key>\n\t<string>F9FXK2ABCD12</string>\n\
             \t<key>Topic</key>\n\t<string>{TOPIC}</string>\n\
             \t<key>UDID</key>\n\t<string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        assert_eq!(message.message_type(), "Authenticate");
        assert_eq!(message.udid().map(Udid::as_str), Some(UDID));
        let CheckinMessage::Authenticate(auth) = &message else {
            panic!("expected Authenticate, got {message:?}");
        };
        assert_eq!(auth.topic.as_deref(), Some(TOPIC));
        assert_eq!(auth.os_version.as_deref(), Some("17.5.1"));
        assert_eq!(auth.product_name.as_deref(), Some("iPad13,18"));
        assert_eq!(auth.serial_number.as_deref(), Some("F9FXK2ABCD12"));
        assert_eq!(auth.device_name, None, "iOS does not send DeviceName");
        round_trip(&message);
    }

    #[test]
    fn user_enrollment_authenticate_has_no_udid() {
        let body = plist(&format!(
            "<key>EnrollmentID</key><string>E1A7C0DE-5B1D-4C1E-8B0A-1F2E3D4C5B6A</string>\
             <key>MessageType</key><string>Authenticate</string>\
             <key>Topic</key><string>{TOPIC}</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        assert_eq!(message.udid(), None);
        assert!(message.enrollment().is_user_enrollment());
        assert_eq!(
            message.enrollment().device_key(),
            Some("E1A7C0DE-5B1D-4C1E-8B0A-1F2E3D4C5B6A")
        );
        round_trip(&message);
    }

    #[test]
    fn ipad_token_update_during_setup() {
        let body = plist(&format!(
            "\t<key>AwaitingConfiguration</key>\n\t<true/>\n\
             \t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n\
             \t<key>PushMagic</key>\n\t<string>8E2C4A7F-1B3D-4F5A-9C6E-0D1E2F3A4B5C</string>\n\
             \t<key>Token</key>\n\t<data>\n\tq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=\n\t</data>\n\
             \t<key>Topic</key>\n\t<string>{TOPIC}</string>\n\
             \t<key>UDID</key>\n\t<string>{UDID}</string>\n\
             \t<key>UnlockToken</key>\n\t<data>\n\tAAECAwQFBgcICQ==\n\t</data>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        let CheckinMessage::TokenUpdate(update) = &message else {
            panic!("expected TokenUpdate, got {message:?}");
        };
        assert_eq!(
            update.token.to_hex(),
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
        assert_eq!(
            update.push_magic.as_str(),
            "8E2C4A7F-1B3D-4F5A-9C6E-0D1E2F3A4B5C"
        );
        assert_eq!(
            update.unlock_token.as_deref(),
            Some(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9][..])
        );
        assert!(update.awaiting_configuration);
        assert!(!update.not_on_console);
        assert!(!update.enrollment.is_user_channel());
        round_trip(&message);
    }

    #[test]
    fn token_update_needs_token_as_data_and_push_magic() {
        let no_magic = plist(&format!(
            "<key>MessageType</key><string>TokenUpdate</string>\
             <key>Token</key><data>AAEC</data>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&no_magic),
            Err(ProtocolError::MissingKey("PushMagic"))
        );
        let no_token = plist(&format!(
            "<key>MessageType</key><string>TokenUpdate</string>\
             <key>PushMagic</key><string>M</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&no_token),
            Err(ProtocolError::MissingKey("Token"))
        );
        let string_token = plist(&format!(
            "<key>MessageType</key><string>TokenUpdate</string>\
             <key>PushMagic</key><string>M</string>\
             <key>Token</key><string>AAEC</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&string_token),
            Err(ProtocolError::WrongType {
                key: "Token".to_owned(),
                expected: "data"
            })
        );
    }

    #[test]
    fn shared_ipad_user_channel_token_update() {
        let body = plist(&format!(
            "<key>MessageType</key><string>TokenUpdate</string>\
             <key>PushMagic</key><string>PM</string>\
             <key>Token</key><data>AAEC</data>\
             <key>Topic</key><string>{TOPIC}</string>\
             <key>UDID</key><string>{UDID}</string>\
             <key>UserID</key><string>FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF</string>\
             <key>UserShortName</key><string>lena.schmidt@schule.example</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        assert!(message.enrollment().is_user_channel());
        assert_eq!(
            message.enrollment().user_short_name.as_deref(),
            Some("lena.schmidt@schule.example")
        );
        round_trip(&message);
    }

    #[test]
    fn ipad_check_out() {
        let body = plist(&format!(
            "\t<key>MessageType</key>\n\t<string>CheckOut</string>\n\
             \t<key>Topic</key>\n\t<string>{TOPIC}</string>\n\
             \t<key>UDID</key>\n\t<string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        assert!(
            matches!(&message, CheckinMessage::CheckOut(c) if c.topic.as_deref() == Some(TOPIC))
        );
        round_trip(&message);
    }

    #[test]
    fn mac_user_authenticate() {
        let body = plist(&format!(
            "<key>DigestResponse</key><string>username=\"lena\",realm=\"tafel\"</string>\
             <key>MessageType</key><string>UserAuthenticate</string>\
             <key>UDID</key><string>{UDID}</string>\
             <key>UserID</key><string>A1B2C3D4-0000-1111-2222-333344445555</string>\
             <key>UserLongName</key><string>Lena Schmidt</string>\
             <key>UserShortName</key><string>lena</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        let CheckinMessage::UserAuthenticate(ua) = &message else {
            panic!("expected UserAuthenticate");
        };
        assert!(ua.digest_response.is_some());
        assert_eq!(
            ua.enrollment.user_long_name.as_deref(),
            Some("Lena Schmidt")
        );
        round_trip(&message);

        // userauthenticate.yaml forbids user enrollment: EnrollmentID is no substitute.
        let no_udid = plist(
            "<key>MessageType</key><string>UserAuthenticate</string>\
             <key>EnrollmentID</key><string>E</string>",
        );
        assert_eq!(
            CheckinMessage::parse(&no_udid),
            Err(ProtocolError::MissingKey("UDID"))
        );
    }

    #[test]
    fn ipad_declarative_management_status_report() {
        let body = plist(&format!(
            "\t<key>Data</key>\n\t<data>\n\teyJTdGF0dXNJdGVtcyI6e30sIkVycm9ycyI6W119\n\t</data>\n\
             \t<key>Endpoint</key>\n\t<string>status</string>\n\
             \t<key>MessageType</key>\n\t<string>DeclarativeManagement</string>\n\
             \t<key>UDID</key>\n\t<string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        let CheckinMessage::DeclarativeManagement(ddm) = &message else {
            panic!("expected DeclarativeManagement");
        };
        assert_eq!(ddm.endpoint_kind(), DeclarativeEndpoint::Status);
        assert_eq!(
            ddm.data_json().unwrap(),
            Some(serde_json::json!({"StatusItems": {}, "Errors": []}))
        );
        round_trip(&message);
    }

    #[test]
    fn declarative_endpoints_parse() {
        assert_eq!(
            DeclarativeEndpoint::parse("tokens"),
            DeclarativeEndpoint::Tokens
        );
        assert_eq!(
            DeclarativeEndpoint::parse("declaration-items"),
            DeclarativeEndpoint::DeclarationItems
        );
        assert_eq!(
            DeclarativeEndpoint::parse("declaration/configuration/de.schule.passcode"),
            DeclarativeEndpoint::Declaration {
                declaration_type: "configuration".to_owned(),
                identifier: "de.schule.passcode".to_owned()
            }
        );
        assert_eq!(
            DeclarativeEndpoint::parse("declaration/"),
            DeclarativeEndpoint::Other("declaration/".to_owned())
        );
    }

    #[test]
    fn mac_bootstrap_token_messages() {
        let set = plist(&format!(
            "<key>AwaitingConfiguration</key><true/>\
             <key>BootstrapToken</key><data>Ym9vdHN0cmFw</data>\
             <key>MessageType</key><string>SetBootstrapToken</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&set).unwrap();
        let CheckinMessage::SetBootstrapToken(token) = &message else {
            panic!("expected SetBootstrapToken");
        };
        assert_eq!(token.bootstrap_token.as_deref(), Some(&b"bootstrap"[..]));
        assert!(token.awaiting_configuration);
        assert!(!token.clears_token());
        round_trip(&message);

        let clear = plist(&format!(
            "<key>BootstrapToken</key><data></data>\
             <key>MessageType</key><string>SetBootstrapToken</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        let CheckinMessage::SetBootstrapToken(cleared) = CheckinMessage::parse(&clear).unwrap()
        else {
            panic!("expected SetBootstrapToken");
        };
        assert!(cleared.clears_token());

        let get = plist(&format!(
            "<key>MessageType</key><string>GetBootstrapToken</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&get).unwrap();
        assert!(matches!(
            &message,
            CheckinMessage::GetBootstrapToken(g) if !g.awaiting_configuration
        ));
        round_trip(&message);
    }

    #[test]
    fn iphone_get_token_for_watch_pairing() {
        let body = plist(&format!(
            "<key>MessageType</key><string>GetToken</string>\
             <key>TokenParameters</key><dict>\
               <key>PhoneUDID</key><string>{UDID}</string>\
               <key>SecurityToken</key><string>5B3F0C1E-AAAA-4BBB-8CCC-DDDDEEEEFFFF</string>\
               <key>WatchUDID</key><string>00008301-0011223344556677</string>\
             </dict>\
             <key>TokenServiceType</key><string>com.apple.watch.pairing</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        let message = CheckinMessage::parse(&body).unwrap();
        let CheckinMessage::GetToken(get) = &message else {
            panic!("expected GetToken");
        };
        assert_eq!(get.token_service_type, "com.apple.watch.pairing");
        let params = get.token_parameters.as_ref().unwrap();
        assert_eq!(
            params.watch_udid.as_deref(),
            Some("00008301-0011223344556677")
        );
        round_trip(&message);

        let wrong = plist(&format!(
            "<key>MessageType</key><string>GetToken</string>\
             <key>TokenParameters</key><dict><key>PhoneUDID</key><data>AA==</data></dict>\
             <key>TokenServiceType</key><string>com.apple.maid</string>\
             <key>UDID</key><string>{UDID}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&wrong),
            Err(ProtocolError::WrongType {
                key: "TokenParameters.PhoneUDID".to_owned(),
                expected: "string"
            })
        );
    }

    #[test]
    fn malformed_bodies_are_malformed() {
        for body in [
            &b""[..],
            b"<plist><dict><key>A</key>",
            b"{\"MessageType\":\"Authenticate\"}",
        ] {
            assert!(
                matches!(
                    CheckinMessage::parse(body),
                    Err(ProtocolError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn unknown_or_missing_message_type() {
        let body = plist(&format!(
            "<key>MessageType</key><string>Enroll</string><key>UDID</key><string>{UDID}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&body),
            Err(ProtocolError::UnknownMessageType("Enroll".to_owned()))
        );
        let body = plist(&format!("<key>UDID</key><string>{UDID}</string>"));
        assert_eq!(
            CheckinMessage::parse(&body),
            Err(ProtocolError::MissingKey("MessageType"))
        );
    }

    #[test]
    fn missing_or_invalid_udid() {
        let body = plist(&format!(
            "<key>MessageType</key><string>Authenticate</string>\
             <key>Topic</key><string>{TOPIC}</string>"
        ));
        assert_eq!(
            CheckinMessage::parse(&body),
            Err(ProtocolError::MissingKey("UDID"))
        );
        let body = plist(
            "<key>MessageType</key><string>CheckOut</string>\
             <key>UDID</key><string>../../etc/passwd</string>",
        );
        assert!(matches!(
            CheckinMessage::parse(&body),
            Err(ProtocolError::InvalidUdid { .. })
        ));
    }

    #[test]
    fn simulator_built_messages_round_trip() {
        let udid = Udid::parse(UDID).unwrap();
        let messages = [
            CheckinMessage::Authenticate(Authenticate {
                enrollment: EnrollmentIds::device(udid.clone()),
                topic: Some(TOPIC.to_owned()),
                device_name: Some("Mac von Lena".to_owned()),
                model_name: Some("MacBook Air".to_owned()),
                model: Some("Mac14,2".to_owned()),
                ..Authenticate::default()
            }),
            CheckinMessage::TokenUpdate(TokenUpdate {
                enrollment: EnrollmentIds {
                    user_id: Some("U".to_owned()),
                    user_long_name: Some("Lena Schmidt".to_owned()),
                    ..EnrollmentIds::device(udid.clone())
                },
                topic: Some(TOPIC.to_owned()),
                token: PushToken::new(vec![1, 2, 3]),
                push_magic: PushMagic::new("magic"),
                unlock_token: None,
                awaiting_configuration: false,
                not_on_console: true,
            }),
            CheckinMessage::GetToken(GetToken {
                enrollment: EnrollmentIds::user_enrollment("E"),
                token_service_type: "com.apple.maid".to_owned(),
                token_parameters: None,
            }),
            CheckinMessage::DeclarativeManagement(DeclarativeManagementRequest {
                enrollment: EnrollmentIds::device(udid),
                endpoint: "tokens".to_owned(),
                data: None,
            }),
        ];
        for message in &messages {
            let xml = String::from_utf8(message.to_xml()).unwrap();
            assert!(xml.contains(&format!(
                "<key>MessageType</key>\n\t<string>{}</string>",
                message.message_type()
            )));
            round_trip(message);
        }
    }
}

//! Command reports (the `ServerURL` channel): what a device PUTs after an Idle
//! poll or after running a command, and how a simulator builds one.
//!
//! The general report keys (Status, CommandUUID, ErrorChain with ErrorCode /
//! ErrorDomain / LocalizedDescription / USEnglishDescription) come from Apple's
//! MDM protocol reference; the YAML schema only describes per-command
//! `responsekeys` (`mdm/commands/*.yaml`), so nothing here cites a file.

use std::fmt;

use plist::{Dictionary, Value};

use super::dict::{parse_body, to_xml, DictWriter, Fields};
use super::enrollment::EnrollmentIds;
use super::error::ProtocolError;
use super::ids::{CommandUuid, Udid};

/// The `Status` of a command report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The device is ready for the next command; no CommandUUID.
    Idle,
    /// The command ran successfully.
    Acknowledged,
    /// The command failed; see the ErrorChain.
    Error,
    /// The device could not parse the command.
    CommandFormatError,
    /// The device cannot run the command now (e.g. locked); the server retries later.
    NotNow,
}

impl Status {
    /// Parses the plist `Status` string (exact, case-sensitive).
    pub fn parse(value: &str) -> Result<Status, ProtocolError> {
        match value {
            "Idle" => Ok(Status::Idle),
            "Acknowledged" => Ok(Status::Acknowledged),
            "Error" => Ok(Status::Error),
            "CommandFormatError" => Ok(Status::CommandFormatError),
            "NotNow" => Ok(Status::NotNow),
            other => Err(ProtocolError::UnknownStatus(other.to_owned())),
        }
    }

    /// The plist `Status` string.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Idle => "Idle",
            Status::Acknowledged => "Acknowledged",
            Status::Error => "Error",
            Status::CommandFormatError => "CommandFormatError",
            Status::NotNow => "NotNow",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a report's `ErrorChain`, outermost error first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorChainItem {
    /// `ErrorCode`; 0 when the device omitted it.
    pub error_code: i64,
    /// `ErrorDomain`, e.g. `MCProfileErrorDomain`; empty when omitted.
    pub error_domain: String,
    /// `LocalizedDescription`: in the device's language.
    pub localized_description: Option<String>,
    /// `USEnglishDescription`: present when the device's language is not US English.
    pub us_english_description: Option<String>,
}

impl ErrorChainItem {
    /// Reads one item. Liberal: a missing code or domain must not cost us the
    /// rest of the report, so they default to 0 and "".
    fn read(f: &Fields<'_>) -> Result<ErrorChainItem, ProtocolError> {
        Ok(ErrorChainItem {
            error_code: f.integer("ErrorCode")?.unwrap_or(0),
            error_domain: f.string("ErrorDomain")?.unwrap_or_default(),
            localized_description: f.string("LocalizedDescription")?,
            us_english_description: f.string("USEnglishDescription")?,
        })
    }

    fn to_dict(&self) -> Dictionary {
        DictWriter::new()
            .set("ErrorCode", self.error_code)
            .set("ErrorDomain", self.error_domain.as_str())
            .string(
                "LocalizedDescription",
                self.localized_description.as_deref(),
            )
            .string(
                "USEnglishDescription",
                self.us_english_description.as_deref(),
            )
            .finish()
    }

    /// The best human description: US English if given, else the localized one.
    pub fn description(&self) -> Option<&str> {
        self.us_english_description
            .as_deref()
            .or(self.localized_description.as_deref())
    }
}

/// A command report as the device sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectReport {
    /// `UDID`; absent for a user enrollment.
    pub udid: Option<Udid>,
    /// `EnrollmentID` of a user enrollment.
    pub enrollment_id: Option<String>,
    /// `Status`.
    pub status: Status,
    /// `CommandUUID`; required unless `status` is Idle.
    pub command_uuid: Option<CommandUuid>,
    /// `ErrorChain`, empty when absent.
    pub error_chain: Vec<ErrorChainItem>,
    /// The whole body, for the command-specific keys (see `super::results`).
    pub raw: Dictionary,
}

impl ConnectReport {
    /// Parses a report body (XML or binary plist).
    pub fn parse(body: &[u8]) -> Result<ConnectReport, ProtocolError> {
        ConnectReport::from_dict(parse_body(body)?)
    }

    /// Parses an already-decoded report dictionary.
    pub fn from_dict(raw: Dictionary) -> Result<ConnectReport, ProtocolError> {
        let f = Fields::new(&raw);
        let enrollment = EnrollmentIds::read(&f)?;
        enrollment.require_device()?;
        let status = Status::parse(&f.required_string("Status")?)?;
        let command_uuid = f
            .string("CommandUUID")?
            .map(|s| CommandUuid::parse(&s))
            .transpose()?;
        // Every status but Idle answers a command, so it must say which one.
        if status != Status::Idle && command_uuid.is_none() {
            return Err(ProtocolError::MissingKey("CommandUUID"));
        }
        let error_chain = f
            .dict_array("ErrorChain")?
            .unwrap_or_default()
            .into_iter()
            .map(|(path, item)| ErrorChainItem::read(&Fields::nested(item, &path)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConnectReport {
            udid: enrollment.udid,
            enrollment_id: enrollment.enrollment_id,
            status,
            command_uuid,
            error_chain,
            raw,
        })
    }

    /// The identity keys of the report, user-channel keys included.
    pub fn enrollment(&self) -> Result<EnrollmentIds, ProtocolError> {
        EnrollmentIds::read(&Fields::new(&self.raw))
    }

    /// An Idle poll from a device-enrolled device (simulator side).
    pub fn idle(udid: Udid) -> ConnectReport {
        ConnectReport::answer(udid, Status::Idle, None, Dictionary::new())
    }

    /// A report answering a command (simulator side); `extra` holds the
    /// command's response keys (e.g. `QueryResponses`) and may hold an `ErrorChain`.
    pub fn answer(
        udid: Udid,
        status: Status,
        command_uuid: Option<CommandUuid>,
        extra: Dictionary,
    ) -> ConnectReport {
        let mut raw = DictWriter::new()
            .set("UDID", udid.as_str())
            .set("Status", status.as_str())
            .string(
                "CommandUUID",
                command_uuid.as_ref().map(CommandUuid::as_str),
            )
            .finish();
        for (key, value) in extra {
            raw.insert(key, value);
        }
        let error_chain = Fields::new(&raw)
            .dict_array("ErrorChain")
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(path, item)| ErrorChainItem::read(&Fields::nested(item, &path)).ok())
            .collect();
        ConnectReport {
            udid: Some(udid),
            enrollment_id: None,
            status,
            command_uuid,
            error_chain,
            raw,
        }
    }

    /// Adds an ErrorChain item (simulator side).
    pub fn with_error(mut self, item: ErrorChainItem) -> ConnectReport {
        self.error_chain.push(item);
        self
    }

    /// The report as a plist dictionary: `raw`, with the typed fields written over it.
    pub fn to_dict(&self) -> Dictionary {
        let mut dict = self.raw.clone();
        let mut put = |key: &str, value: Option<Value>| match value {
            Some(v) => {
                dict.insert(key.to_owned(), v);
            }
            None => {
                dict.remove(key);
            }
        };
        put("UDID", self.udid.as_ref().map(|u| u.as_str().into()));
        put(
            "EnrollmentID",
            self.enrollment_id.as_deref().map(Value::from),
        );
        put("Status", Some(self.status.as_str().into()));
        put(
            "CommandUUID",
            self.command_uuid.as_ref().map(|c| c.as_str().into()),
        );
        if !self.error_chain.is_empty() {
            let items = self
                .error_chain
                .iter()
                .map(|item| Value::Dictionary(item.to_dict()))
                .collect::<Vec<_>>();
            put("ErrorChain", Some(Value::Array(items)));
        }
        dict
    }

    /// The report as an XML plist body, as a device would send it.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDID: &str = "00008103-000A1C2E3F48801E";

    fn udid() -> Udid {
        Udid::parse(UDID).unwrap()
    }

    #[test]
    fn idle_poll_from_an_ipad() {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Status</key>
	<string>Idle</string>
	<key>UDID</key>
	<string>{UDID}</string>
</dict>
</plist>"#
        );
        let report = ConnectReport::parse(body.as_bytes()).unwrap();
        assert_eq!(report.status, Status::Idle);
        assert_eq!(report.udid, Some(udid()));
        assert_eq!(report.command_uuid, None);
        assert!(report.error_chain.is_empty());
    }

    #[test]
    fn acknowledged_without_command_uuid_is_rejected() {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
	<key>Status</key><string>Acknowledged</string>
	<key>UDID</key><string>{UDID}</string>
</dict></plist>"#
        );
        assert_eq!(
            ConnectReport::parse(body.as_bytes()),
            Err(ProtocolError::MissingKey("CommandUUID"))
        );
    }

    #[test]
    fn unknown_status_and_missing_identity_are_rejected() {
        let body = format!(
            r#"<plist version="1.0"><dict>
	<key>Status</key><string>Done</string>
	<key>UDID</key><string>{UDID}</string>
</dict></plist>"#
        );
        assert_eq!(
            ConnectReport::parse(body.as_bytes()),
            Err(ProtocolError::UnknownStatus("Done".to_owned()))
        );
        let anonymous = br#"<plist version="1.0"><dict>
	<key>Status</key><string>Idle</string>
</dict></plist>"#;
        assert_eq!(
            ConnectReport::parse(anonymous),
            Err(ProtocolError::MissingKey("UDID"))
        );
        assert!(matches!(
            ConnectReport::parse(b"{garbage"),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn profile_install_error_with_error_chain() {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CommandUUID</key>
	<string>0F6E3B2A-7C41-4C55-9E0B-5D2B8E1A9C44</string>
	<key>ErrorChain</key>
	<array>
		<dict>
			<key>ErrorCode</key>
			<integer>4001</integer>
			<key>ErrorDomain</key>
			<string>MCProfileErrorDomain</string>
			<key>LocalizedDescription</key>
			<string>Das Profil „Schul-WLAN“ konnte nicht installiert werden.</string>
			<key>USEnglishDescription</key>
			<string>The profile “Schul-WLAN” could not be installed.</string>
		</dict>
		<dict>
			<key>ErrorCode</key>
			<integer>2003</integer>
			<key>ErrorDomain</key>
			<string>MCInstallationErrorDomain</string>
			<key>LocalizedDescription</key>
			<string>Ungültiges Profil</string>
		</dict>
	</array>
	<key>Status</key>
	<string>Error</string>
	<key>UDID</key>
	<string>{UDID}</string>
</dict>
</plist>"#
        );
        let report = ConnectReport::parse(body.as_bytes()).unwrap();
        assert_eq!(report.status, Status::Error);
        assert_eq!(
            report.command_uuid.as_ref().map(CommandUuid::as_str),
            Some("0F6E3B2A-7C41-4C55-9E0B-5D2B8E1A9C44")
        );
        assert_eq!(report.error_chain.len(), 2);
        assert_eq!(report.error_chain[0].error_code, 4001);
        assert_eq!(report.error_chain[0].error_domain, "MCProfileErrorDomain");
        assert_eq!(
            report.error_chain[0].description(),
            Some("The profile “Schul-WLAN” could not be installed.")
        );
        assert_eq!(report.error_chain[1].us_english_description, None);
        assert_eq!(
            report.error_chain[1].description(),
            Some("Ungültiges Profil")
        );
        // Round trip through the simulator-side serializer.
        assert_eq!(ConnectReport::parse(&report.to_xml()).unwrap(), report);
    }

    #[test]
    fn error_chain_of_the_wrong_shape_names_the_item() {
        let body = format!(
            r#"<plist version="1.0"><dict>
	<key>Status</key><string>Error</string>
	<key>CommandUUID</key><string>X</string>
	<key>UDID</key><string>{UDID}</string>
	<key>ErrorChain</key><array><string>oops</string></array>
</dict></plist>"#
        );
        assert_eq!(
            ConnectReport::parse(body.as_bytes()),
            Err(ProtocolError::WrongType {
                key: "ErrorChain[0]".to_owned(),
                expected: "dictionary"
            })
        );
    }

    #[test]
    fn user_enrollment_report_uses_enrollment_id() {
        let body = br#"<plist version="1.0"><dict>
	<key>EnrollmentID</key><string>7F6A2D1C-0000-4B8E-9A21-3C4D5E6F7081</string>
	<key>Status</key><string>NotNow</string>
	<key>CommandUUID</key><string>ABC</string>
</dict></plist>"#;
        let report = ConnectReport::parse(body).unwrap();
        assert_eq!(report.udid, None);
        assert_eq!(report.status, Status::NotNow);
        assert!(report.enrollment().unwrap().is_user_enrollment());
    }

    #[test]
    fn simulator_builders_round_trip() {
        let idle = ConnectReport::idle(udid());
        let parsed = ConnectReport::parse(&idle.to_xml()).unwrap();
        assert_eq!(parsed, idle);

        let mut responses = Dictionary::new();
        responses.insert("DeviceName".to_owned(), "Klasse 7b iPad 12".into());
        let mut extra = Dictionary::new();
        extra.insert("QueryResponses".to_owned(), Value::Dictionary(responses));
        let answer = ConnectReport::answer(
            udid(),
            Status::Acknowledged,
            Some(CommandUuid::new()),
            extra,
        );
        let xml = String::from_utf8(answer.to_xml()).unwrap();
        assert!(xml.contains("<key>QueryResponses</key>"));
        assert_eq!(ConnectReport::parse(xml.as_bytes()).unwrap(), answer);

        let failed = ConnectReport::answer(
            udid(),
            Status::Error,
            Some(CommandUuid::new()),
            Dictionary::new(),
        )
        .with_error(ErrorChainItem {
            error_code: 12064,
            error_domain: "MDMErrorDomain".to_owned(),
            localized_description: Some("Not supported".to_owned()),
            us_english_description: None,
        });
        let back = ConnectReport::parse(&failed.to_xml()).unwrap();
        assert_eq!(back.error_chain, failed.error_chain);
        assert_eq!(back.status, Status::Error);
    }

    #[test]
    fn status_strings_round_trip() {
        for status in [
            Status::Idle,
            Status::Acknowledged,
            Status::Error,
            Status::CommandFormatError,
            Status::NotNow,
        ] {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
        }
        assert!(Status::parse("idle").is_err());
    }
}

//! The command envelope the server returns to a device's report:
//! `{CommandUUID, Command: {RequestType, …fields}}`, built, parsed (simulator
//! side) and made from the admin API's JSON.
//!
//! Typed constructors for the commands tafel sends live in `command_builders.rs`.

use plist::{Dictionary, Value};

use super::dict::{parse_body, to_xml, Fields};
use super::error::ProtocolError;
use super::ids::CommandUuid;
use super::json::json_object_to_plist;

/// One MDM command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `CommandUUID`: the device echoes it in its report.
    pub command_uuid: CommandUuid,
    /// `Command.RequestType`, e.g. `DeviceInformation`.
    pub request_type: String,
    /// The other keys of the `Command` dictionary (never `RequestType`).
    pub fields: Dictionary,
}

/// Checks a RequestType: Apple's are all ASCII letters and digits.
fn validate_request_type(request_type: &str) -> Result<(), ProtocolError> {
    if request_type.is_empty() || !request_type.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ProtocolError::InvalidRequestType(request_type.to_owned()));
    }
    Ok(())
}

impl Command {
    /// A command with a fresh CommandUUID; any `RequestType` in `fields` is
    /// dropped in favour of `request_type`.
    pub fn new(request_type: &str, mut fields: Dictionary) -> Result<Command, ProtocolError> {
        validate_request_type(request_type)?;
        fields.remove("RequestType");
        Ok(Command {
            command_uuid: CommandUuid::new(),
            request_type: request_type.to_owned(),
            fields,
        })
    }

    /// The same command under a given CommandUUID (e.g. one chosen by the admin).
    pub fn with_uuid(mut self, command_uuid: CommandUuid) -> Command {
        self.command_uuid = command_uuid;
        self
    }

    /// A raw command from the admin API: `fields` must be a JSON object (or
    /// null for none), converted as described in `json.rs`, so
    /// `{"$data": "<base64>"}` becomes `<data>` and `{"$date": "…"}` `<date>`.
    pub fn from_json(
        request_type: &str,
        fields: &serde_json::Value,
    ) -> Result<Command, ProtocolError> {
        validate_request_type(request_type)?;
        let dict = match fields {
            serde_json::Value::Null => Dictionary::new(),
            serde_json::Value::Object(object) => json_object_to_plist(object, "")?,
            _ => {
                return Err(ProtocolError::WrongType {
                    key: "Command".to_owned(),
                    expected: "JSON object of command fields",
                })
            }
        };
        if dict.contains_key("RequestType") {
            return Err(ProtocolError::InvalidValue {
                key: "RequestType".to_owned(),
                reason: "give the request type separately, not among the fields".to_owned(),
            });
        }
        Command::new(request_type, dict)
    }

    /// Parses a command body as the server sends it (the device simulator's side).
    pub fn parse(body: &[u8]) -> Result<Command, ProtocolError> {
        let dict = parse_body(body)?;
        let f = Fields::new(&dict);
        let command_uuid = CommandUuid::parse(&f.required_string("CommandUUID")?)?;
        let mut fields = f
            .dict("Command")?
            .ok_or(ProtocolError::MissingKey("Command"))?
            .clone();
        let request_type = Fields::nested(&fields, "Command").required_string("RequestType")?;
        validate_request_type(&request_type)?;
        fields.remove("RequestType");
        Ok(Command {
            command_uuid,
            request_type,
            fields,
        })
    }

    /// The command as a plist dictionary.
    pub fn to_dict(&self) -> Dictionary {
        let mut command = Dictionary::new();
        command.insert(
            "RequestType".to_owned(),
            Value::String(self.request_type.clone()),
        );
        for (key, value) in &self.fields {
            if key != "RequestType" {
                command.insert(key.clone(), value.clone());
            }
        }
        let mut envelope = Dictionary::new();
        envelope.insert(
            "CommandUUID".to_owned(),
            Value::String(self.command_uuid.as_str().to_owned()),
        );
        envelope.insert("Command".to_owned(), Value::Dictionary(command));
        envelope
    }

    /// The command as the XML plist body of the server's HTTP response.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn to_xml_is_the_apple_envelope_and_parses_back() {
        let command = Command::device_information(&["DeviceName", "OSVersion"]);
        let xml = String::from_utf8(command.to_xml()).unwrap();
        assert!(xml.contains("<key>RequestType</key>"));
        assert!(xml.contains("<string>DeviceInformation</string>"));
        assert!(xml.contains("<key>CommandUUID</key>"));
        assert!(xml.contains("<key>Queries</key>"));
        let parsed = Command::parse(xml.as_bytes()).unwrap();
        assert_eq!(parsed, command);
    }

    #[test]
    fn from_json_turns_data_markers_into_data() {
        // A profile the admin pastes as base64 must reach the device as <data>.
        let command = Command::from_json(
            "InstallProfile",
            &json!({"Payload": {"$data": "PD94bWwgdmVyc2lvbj0iMS4wIj8+"}}),
        )
        .unwrap();
        assert_eq!(
            command.fields.get("Payload"),
            Some(&Value::Data(b"<?xml version=\"1.0\"?>".to_vec()))
        );
        let xml = String::from_utf8(command.to_xml()).unwrap();
        assert!(xml.contains("<data>"));
    }

    #[test]
    fn from_json_bad_base64_names_the_key() {
        let err = Command::from_json("ClearPasscode", &json!({"UnlockToken": {"$data": "%%%"}}))
            .unwrap_err();
        assert!(matches!(&err, ProtocolError::InvalidValue { key, .. } if key == "UnlockToken"));
        assert!(err.to_string().contains("UnlockToken"));
    }

    #[test]
    fn from_json_keeps_types() {
        let command = Command::from_json(
            "InstallApplication",
            &json!({"iTunesStoreID": 361285480, "Options": {"PurchaseMethod": 1},
                    "Configuration": {"ratio": 0.75, "kiosk": true}}),
        )
        .unwrap();
        assert_eq!(
            command.fields.get("iTunesStoreID"),
            Some(&Value::Integer(361285480.into()))
        );
        let config = command
            .fields
            .get("Configuration")
            .and_then(Value::as_dictionary)
            .unwrap();
        assert_eq!(config.get("ratio"), Some(&Value::Real(0.75)));
        assert_eq!(config.get("kiosk"), Some(&Value::Boolean(true)));
    }

    #[test]
    fn from_json_rejects_bad_request_types_and_shapes() {
        for bad in ["", "Device Information", "Install-Profile", "Ümlaut"] {
            assert!(matches!(
                Command::from_json(bad, &json!({})),
                Err(ProtocolError::InvalidRequestType(_))
            ));
        }
        assert!(matches!(
            Command::from_json("ProfileList", &json!([1])),
            Err(ProtocolError::WrongType { .. })
        ));
        assert!(Command::from_json("ProfileList", &json!(null)).is_ok());
        assert!(matches!(
            Command::from_json("ProfileList", &json!({"RequestType": "Other"})),
            Err(ProtocolError::InvalidValue { .. })
        ));
    }

    #[test]
    fn parse_requires_the_envelope_keys() {
        let no_uuid = br#"<plist version="1.0"><dict>
<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>
</dict></plist>"#;
        assert_eq!(
            Command::parse(no_uuid),
            Err(ProtocolError::MissingKey("CommandUUID"))
        );
        let no_type = br#"<plist version="1.0"><dict>
<key>CommandUUID</key><string>X</string>
<key>Command</key><dict/>
</dict></plist>"#;
        assert_eq!(
            Command::parse(no_type),
            Err(ProtocolError::MissingKey("RequestType"))
        );
    }
}

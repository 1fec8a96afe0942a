//! Identifier newtypes of the MDM protocol: UDID, CommandUUID, push magic and push token.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::ProtocolError;

/// Longest UDID or CommandUUID accepted; real ones are 25–40 characters.
const MAX_ID_LEN: usize = 128;

/// Cuts a rejected value short so an error message cannot flood a log.
fn clip(value: &str) -> String {
    value.chars().take(MAX_ID_LEN + 8).collect()
}

/// A device's UDID as sent in check-in and command reports (`UDID` key).
///
/// Real values look like `00008030-001A2B3C4D5E802E` (iOS) or an uppercase
/// UUID (macOS); we accept any non-empty string of at most 128 characters
/// from `[A-Za-z0-9-_.:]` so that it is safe in URLs, file names and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Udid(String);

impl Udid {
    /// Validates a UDID.
    pub fn parse(value: &str) -> Result<Udid, ProtocolError> {
        let reason = if value.is_empty() {
            Some("must not be empty")
        } else if value.len() > MAX_ID_LEN {
            Some("must be at most 128 characters")
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            Some("may only contain ASCII letters, digits and - _ . :")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ProtocolError::InvalidUdid {
                value: clip(value),
                reason,
            }),
            None => Ok(Udid(value.to_owned())),
        }
    }

    /// The UDID as sent by the device.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Udid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Udid {
    type Error = ProtocolError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Udid::parse(&value)
    }
}

impl From<Udid> for String {
    fn from(value: Udid) -> Self {
        value.0
    }
}

/// The `CommandUUID` that ties a command to the device's report about it.
///
/// We mint uppercase v4 UUIDs, but a device echoes whatever the server sent,
/// so parsing accepts any non-empty printable ASCII without whitespace, up to
/// 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandUuid(String);

impl CommandUuid {
    /// A fresh random command id (UUID v4, uppercase like Apple's own).
    pub fn new() -> CommandUuid {
        CommandUuid(uuid::Uuid::new_v4().to_string().to_uppercase())
    }

    /// Validates a CommandUUID received from a device or an admin.
    pub fn parse(value: &str) -> Result<CommandUuid, ProtocolError> {
        let reason = if value.is_empty() {
            Some("must not be empty")
        } else if value.len() > MAX_ID_LEN {
            Some("must be at most 128 characters")
        } else if !value.chars().all(|c| c.is_ascii_graphic()) {
            Some("must be printable ASCII without whitespace")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ProtocolError::InvalidCommandUuid {
                value: clip(value),
                reason,
            }),
            None => Ok(CommandUuid(value.to_owned())),
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CommandUuid {
    fn default() -> Self {
        CommandUuid::new()
    }
}

impl fmt::Display for CommandUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommandUuid {
    type Error = ProtocolError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CommandUuid::parse(&value)
    }
}

impl From<CommandUuid> for String {
    fn from(value: CommandUuid) -> Self {
        value.0
    }
}

/// The `PushMagic` string from TokenUpdate; it goes in every APNs push to the
/// device (`mdm/checkin/tokenupdate.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PushMagic(String);

impl PushMagic {
    /// Wraps the push magic string as the device sent it.
    pub fn new(value: impl Into<String>) -> PushMagic {
        PushMagic(value.into())
    }

    /// The push magic string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PushMagic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The APNs device token from TokenUpdate's `Token` key, a `<data>` value
/// (`mdm/checkin/tokenupdate.yaml`); APNs wants it hex-encoded in the URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PushToken(Vec<u8>);

impl PushToken {
    /// Wraps the raw token bytes.
    pub fn new(bytes: Vec<u8>) -> PushToken {
        PushToken(bytes)
    }

    /// Parses a hex string (either case) as produced by [`PushToken::to_hex`].
    pub fn from_hex(hex: &str) -> Result<PushToken, ProtocolError> {
        let invalid = || ProtocolError::InvalidValue {
            key: "Token".to_owned(),
            reason: "not an even-length hex string".to_owned(),
        };
        if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
            return Err(invalid());
        }
        hex.as_bytes()
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or_else(invalid)
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(PushToken)
    }

    /// The raw token bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex, the form APNs expects in `/3/device/<token>`.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.0.len() * 2);
        for byte in &self.0 {
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udid_accepts_ios_and_macos_forms() {
        assert!(Udid::parse("00008030-001A2B3C4D5E802E").is_ok());
        assert!(Udid::parse("564D7F1C-3B7E-4E0F-9C5A-1E2D3C4B5A69").is_ok());
        assert!(Udid::parse("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678").is_ok());
    }

    #[test]
    fn udid_rejects_empty_long_and_odd_characters() {
        assert!(matches!(
            Udid::parse(""),
            Err(ProtocolError::InvalidUdid { .. })
        ));
        assert!(Udid::parse(&"A".repeat(129)).is_err());
        assert!(Udid::parse(&"A".repeat(128)).is_ok());
        assert!(Udid::parse("abc/def").is_err());
        assert!(Udid::parse("abc def").is_err());
        assert!(Udid::parse("ü").is_err());
    }

    #[test]
    fn udid_serde_is_a_plain_validated_string() {
        let udid = Udid::parse("ABC-123").unwrap();
        assert_eq!(serde_json::to_string(&udid).unwrap(), "\"ABC-123\"");
        let back: Udid = serde_json::from_str("\"ABC-123\"").unwrap();
        assert_eq!(back, udid);
        assert!(serde_json::from_str::<Udid>("\"bad udid\"").is_err());
    }

    #[test]
    fn command_uuid_new_is_uppercase_v4() {
        let id = CommandUuid::new();
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(id.as_str(), id.as_str().to_uppercase());
        assert!(CommandUuid::parse(id.as_str()).is_ok());
        assert_ne!(CommandUuid::new(), id);
    }

    #[test]
    fn command_uuid_parse_rules() {
        assert!(CommandUuid::parse("install-keynote_7b#1").is_ok());
        assert!(CommandUuid::parse("").is_err());
        assert!(CommandUuid::parse("has space").is_err());
        assert!(CommandUuid::parse("tab\there").is_err());
        assert!(CommandUuid::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn push_token_hex_round_trip() {
        let token = PushToken::new(vec![0x00, 0xab, 0x10, 0xff]);
        assert_eq!(token.to_hex(), "00ab10ff");
        assert_eq!(PushToken::from_hex("00AB10FF").unwrap(), token);
        assert!(PushToken::from_hex("abc").is_err());
        assert!(PushToken::from_hex("zz").is_err());
    }
}

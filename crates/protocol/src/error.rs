//! The one error type of the protocol module: what can go wrong when reading or building Apple MDM plists.

use thiserror::Error;

/// Why a plist body (or a value meant to become one) was rejected.
///
/// Every variant that concerns a key names it, with a dotted path for nested keys
/// (`QueryResponses.DeviceName`, `Queries[2]`), so a log line says what the device
/// or the admin got wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The body is not a property list (XML or binary), or its top level is not a dictionary.
    #[error("malformed property list: {0}")]
    Malformed(String),
    /// A key the protocol requires is absent.
    #[error("missing required key `{0}`")]
    MissingKey(&'static str),
    /// A key is present but holds a value of another plist type.
    #[error("key `{key}` has the wrong type: expected {expected}")]
    WrongType {
        /// The key (dotted path for nested keys).
        key: String,
        /// The plist (or JSON) type that was expected, e.g. `string`, `data`.
        expected: &'static str,
    },
    /// A key holds a value of the right type that is not acceptable.
    #[error("key `{key}` has an invalid value: {reason}")]
    InvalidValue {
        /// The key (dotted path for nested keys).
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A check-in body whose `MessageType` this module does not know.
    #[error("unknown check-in MessageType `{0}`")]
    UnknownMessageType(String),
    /// A command report whose `Status` is not one Apple defines.
    #[error("unknown command Status `{0}`")]
    UnknownStatus(String),
    /// A string that is not an acceptable device UDID.
    #[error("invalid UDID `{value}`: {reason}")]
    InvalidUdid {
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A string that is not an acceptable CommandUUID.
    #[error("invalid CommandUUID `{value}`: {reason}")]
    InvalidCommandUuid {
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A RequestType that is empty or not plain ASCII letters and digits.
    #[error("invalid RequestType `{0}`: must be non-empty ASCII letters and digits")]
    InvalidRequestType(String),
}

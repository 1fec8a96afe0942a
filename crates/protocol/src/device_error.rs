//! Error bodies the server returns with HTTP 403 to make a device act
//! (`mdm/errors/*.yaml`): unenroll, update its OS first, or fetch a watch
//! pairing token.
//!
//! iOS may unenroll on a 401, so the server must answer an unknown device with
//! [`DeviceErrorResponse::unrecognized_device`] and 403 instead
//! (`mdm/errors/unrecognized.device.yaml`).

use plist::{Dictionary, Value};

use super::dict::{to_xml, DictWriter};
use super::json::plist_dict_to_json;

/// A 403 error body: `{code, description?, message?, details?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceErrorResponse {
    /// `code`, e.g. `com.apple.unrecognized.device`.
    pub code: String,
    /// `description`: logged by the device, never shown.
    pub description: Option<String>,
    /// `message`: may be shown to the user.
    pub message: Option<String>,
    /// `details`: code-specific data (required for some codes).
    pub details: Option<Dictionary>,
}

impl DeviceErrorResponse {
    /// The device is unknown; it unenrolls (`mdm/errors/unrecognized.device.yaml`).
    pub fn unrecognized_device() -> DeviceErrorResponse {
        DeviceErrorResponse {
            code: "com.apple.unrecognized.device".to_owned(),
            description: None,
            message: None,
            details: None,
        }
    }

    /// Enrollment needs an OS update first (`mdm/errors/softwareupdate.required.yaml`;
    /// `details.OSVersion` required, `details.BuildVersion` optional).
    pub fn software_update_required(
        os_version: &str,
        build_version: Option<&str>,
    ) -> DeviceErrorResponse {
        DeviceErrorResponse {
            code: "com.apple.softwareupdate.required".to_owned(),
            description: None,
            message: None,
            details: Some(
                DictWriter::new()
                    .set("OSVersion", os_version)
                    .string("BuildVersion", build_version)
                    .finish(),
            ),
        }
    }

    /// A watch must fetch a pairing token first
    /// (`mdm/errors/watch.pairing.token.missing.yaml`; `details.security-token` required).
    pub fn watch_pairing_token_missing(security_token: &str) -> DeviceErrorResponse {
        DeviceErrorResponse {
            code: "com.apple.watch.pairing.token.missing".to_owned(),
            description: None,
            message: None,
            details: Some(
                DictWriter::new()
                    .set("security-token", security_token)
                    .finish(),
            ),
        }
    }

    fn to_dict(&self) -> Dictionary {
        DictWriter::new()
            .set("code", self.code.as_str())
            .string("description", self.description.as_deref())
            .string("message", self.message.as_deref())
            .opt("details", self.details.clone().map(Value::Dictionary))
            .finish()
    }

    /// The body as an XML plist (send with `Content-Type: application/xml`).
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(&self.to_dict())
    }

    /// The body as JSON (send with `Content-Type: application/json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(plist_dict_to_json(&self.to_dict()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unrecognized_device_body() {
        let body = DeviceErrorResponse::unrecognized_device();
        assert_eq!(
            body.to_json(),
            json!({"code": "com.apple.unrecognized.device"})
        );
        let xml = String::from_utf8(body.to_xml()).unwrap();
        assert!(xml.contains("<string>com.apple.unrecognized.device</string>"));
    }

    #[test]
    fn software_update_required_has_details() {
        let body = DeviceErrorResponse::software_update_required("17.5", Some("21F79"));
        assert_eq!(
            body.to_json(),
            json!({"code": "com.apple.softwareupdate.required",
                   "details": {"OSVersion": "17.5", "BuildVersion": "21F79"}})
        );
        let watch = DeviceErrorResponse::watch_pairing_token_missing("5B3F…");
        assert_eq!(watch.to_json()["details"]["security-token"], json!("5B3F…"));
    }
}

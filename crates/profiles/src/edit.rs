//! Small reads and edits of stored profiles that the catalog needs besides validation.

use plist::Value;

use super::error::ProfileError;
use super::parse::{parse_plist, to_xml};
use super::validate::validate_value;

/// The outer `PayloadIdentifier` of a valid profile: the key the reconciler compares
/// installed profiles by. Validates the whole profile first.
pub fn profile_identifier(bytes: &[u8]) -> Result<String, ProfileError> {
    let root = parse_plist(bytes)?;
    Ok(validate_value(&root)?.identifier)
}

/// Returns the profile as XML with `PayloadRemovalDisallowed` set to `locked`.
///
/// `TopLevel.yaml`: honoured on supervised devices only; on iOS a profile installed by
/// MDM cannot be removed by the user anyway, so this matters for profiles that are also
/// handed out for manual installation. The input is validated first; the output is
/// always XML (a binary upload comes back as XML) and passes validation again.
pub fn with_removal_disallowed(bytes: &[u8], locked: bool) -> Result<Vec<u8>, ProfileError> {
    let mut root = parse_plist(bytes)?;
    validate_value(&root)?;
    if let Value::Dictionary(top) = &mut root {
        top.insert("PayloadRemovalDisallowed".into(), Value::Boolean(locked));
    }
    let out = to_xml(&root)?;
    validate_value(&root)?;
    Ok(out)
}

/// Returns the profile as XML with its outer `PayloadUUID` set to `uuid`: a new version
/// of a profile whose content changed but whose author kept the UUID (the UUID is what
/// an iPad's ProfileList reports, so it is how tafel tells versions apart). Validated
/// before and after, like [`with_removal_disallowed`].
pub fn with_payload_uuid(bytes: &[u8], uuid: &uuid::Uuid) -> Result<Vec<u8>, ProfileError> {
    let mut root = parse_plist(bytes)?;
    validate_value(&root)?;
    if let Value::Dictionary(top) = &mut root {
        top.insert(
            "PayloadUUID".into(),
            Value::String(uuid.hyphenated().to_string().to_uppercase()),
        );
    }
    let out = to_xml(&root)?;
    validate_value(&root)?;
    Ok(out)
}

/// Do two profiles say the same, apart from their outer `PayloadUUID` (the version)?
/// XML and binary forms of one profile are the same.
pub fn same_content(a: &[u8], b: &[u8]) -> Result<bool, ProfileError> {
    let strip = |bytes: &[u8]| -> Result<Value, ProfileError> {
        let mut root = parse_plist(bytes)?;
        if let Value::Dictionary(top) = &mut root {
            top.remove("PayloadUUID");
        }
        Ok(root)
    };
    Ok(strip(a)? == strip(b)?)
}

//! Reading and writing profile plists, with the limits an upload needs.
//!
//! Uploads come from school admins' browsers, so reading is defensive: a size cap, and
//! the bounded reader shared with the device door ([`tafel_protocol::bounded`]), which
//! limits nesting depth (building and dropping a deeply nested value recurses) and the
//! number of values (binary plists may reference one object many times, so a small file
//! can describe a huge tree) before any tree is built.

use plist::Value;

use super::error::ProfileError;
use tafel_protocol::bounded::{self, BoundedError, Limits};

/// Largest profile accepted, in bytes (1 MiB). Real profiles are a few KiB; a font or
/// certificate payload can reach a few hundred.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// Deepest nesting of arrays/dictionaries accepted. Apple's deepest schema (home
/// screen folders) needs about ten.
pub const MAX_DEPTH: usize = Limits::PROFILE.depth;

/// Most plist values (keys included) accepted in one profile.
pub const MAX_VALUES: usize = Limits::PROFILE.values;

/// Parses an XML or binary plist within the limits above.
pub fn parse_plist(bytes: &[u8]) -> Result<Value, ProfileError> {
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(ProfileError::TooLarge {
            size: bytes.len(),
            limit: MAX_PROFILE_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProfileError::Empty);
    }
    // A CMS SignedData is a DER SEQUENCE: 0x30 followed by a long-form length byte.
    if bytes.first() == Some(&0x30) && bytes.get(1).is_some_and(|b| *b >= 0x80) {
        return Err(ProfileError::Signed);
    }
    bounded::parse(bytes, Limits::PROFILE).map_err(|e| match e {
        BoundedError::TooDeep(n) => ProfileError::TooDeep(n),
        BoundedError::TooManyValues(n) => ProfileError::TooManyValues(n),
        other => ProfileError::Malformed(other.to_string()),
    })
}

/// Writes a plist as XML, the form profiles are stored and sent in.
pub fn to_xml(value: &Value) -> Result<Vec<u8>, ProfileError> {
    let mut out = Vec::new();
    value
        .to_writer_xml(&mut out)
        .map_err(|e| ProfileError::Write(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// The plist type of a value, spelled as the schema does.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "array",
        Value::Dictionary(_) => "dictionary",
        Value::Boolean(_) => "boolean",
        Value::Data(_) => "data",
        Value::Date(_) => "date",
        Value::Real(_) => "real",
        Value::Integer(_) => "integer",
        Value::String(_) => "string",
        Value::Uid(_) => "uid",
        _ => "unknown",
    }
}

//! Reading and writing profile plists, with the limits an upload needs.
//!
//! Uploads come from school admins' browsers, so reading is defensive: a size cap, and
//! a first streaming pass that bounds nesting depth (dropping a deeply nested value
//! recurses) and the number of values (binary plists may reference one object many
//! times, so a small file can describe a huge tree).

use std::cell::Cell;
use std::fmt;
use std::io::Cursor;

use plist::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::ProfileError;

/// Largest profile accepted, in bytes (1 MiB). Real profiles are a few KiB; a font or
/// certificate payload can reach a few hundred.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// Deepest nesting of arrays/dictionaries accepted. Apple's deepest schema (home
/// screen folders) needs about ten.
pub const MAX_DEPTH: usize = 64;

/// Most plist values (keys included) accepted in one profile.
pub const MAX_VALUES: usize = 200_000;

const BINARY_MAGIC: &[u8] = b"bplist00";

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
    let malformed = |e: plist::Error| ProfileError::Malformed(e.to_string());
    LIMIT_HIT.with(|hit| hit.set(None));
    DEPTH.with(|d| d.set(0));
    COUNT.with(|c| c.set(0));
    let scanned = if bytes.starts_with(BINARY_MAGIC) {
        plist::from_reader::<_, Scan>(Cursor::new(bytes))
    } else {
        // Only XML: `plist::from_reader` would also take OpenStep ASCII plists, which
        // no device accepts as a profile.
        plist::from_reader_xml::<_, Scan>(bytes)
    };
    if let Some(limit) = LIMIT_HIT.with(Cell::take) {
        return Err(limit);
    }
    scanned.map_err(malformed)?;
    if bytes.starts_with(BINARY_MAGIC) {
        Value::from_reader(Cursor::new(bytes)).map_err(malformed)
    } else {
        Value::from_reader_xml(bytes).map_err(malformed)
    }
}

// The first pass walks the plist through serde (plist's event stream API is not public
// without an unstable feature) and stops at the limits. Serde gives a visitor no state
// of its own, so the running depth and count live in thread-locals, reset per parse.
thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LIMIT_HIT: Cell<Option<ProfileError>> = const { Cell::new(None) };
}

fn limit<E: de::Error>(error: ProfileError) -> E {
    let message = error.to_string();
    LIMIT_HIT.with(|hit| hit.set(Some(error)));
    E::custom(message)
}

fn count_one<E: de::Error>() -> Result<Scan, E> {
    let n = COUNT.with(|c| {
        let n = c.get() + 1;
        c.set(n);
        n
    });
    if n > MAX_VALUES {
        Err(limit(ProfileError::TooManyValues(MAX_VALUES)))
    } else {
        Ok(Scan)
    }
}

/// Runs `walk` one level deeper, refusing to go past [`MAX_DEPTH`].
fn nested<E: de::Error>(walk: impl FnOnce() -> Result<(), E>) -> Result<Scan, E> {
    count_one::<E>()?;
    let depth = DEPTH.with(|d| d.get()) + 1;
    if depth > MAX_DEPTH {
        return Err(limit(ProfileError::TooDeep(MAX_DEPTH)));
    }
    DEPTH.with(|d| d.set(depth));
    let result = walk();
    DEPTH.with(|d| d.set(depth - 1));
    result.map(|()| Scan)
}

/// A value that is only counted, never stored.
struct Scan;

impl<'de> Deserialize<'de> for Scan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScanVisitor)
    }
}

struct ScanVisitor;

impl<'de> Visitor<'de> for ScanVisitor {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a property list value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scan, E> {
        count_one()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scan, E> {
        count_one()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scan, E> {
        count_one()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scan, E> {
        count_one()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scan, E> {
        count_one()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Scan, E> {
        count_one()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scan, A::Error> {
        nested(|| {
            while seq.next_element::<Scan>()?.is_some() {}
            Ok(())
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        nested(|| {
            while map.next_entry::<Scan, Scan>()?.is_some() {}
            Ok(())
        })
    }
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

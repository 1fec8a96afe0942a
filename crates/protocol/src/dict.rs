//! Typed reading and writing of plist dictionaries, with errors that name the key.
//!
//! Every parser in this module goes through [`Fields`], so a wrong type or a
//! missing key always produces the same [`ProtocolError`] shape.

use plist::{Dictionary, Value};

use super::error::ProtocolError;

/// Parses an XML or binary plist body whose top level must be a dictionary, within
/// the bounds of a device message ([`super::bounded::Limits::DEVICE`]).
pub fn parse_body(body: &[u8]) -> Result<Dictionary, ProtocolError> {
    super::bounded::parse_dictionary(body, super::bounded::Limits::DEVICE)
        .map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Serializes a dictionary as an XML plist document.
pub(crate) fn to_xml(dict: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    // The plist writer can only fail on I/O errors, and writing into a Vec<u8>
    // has none; an empty body here would be a bug in the plist crate.
    if Value::Dictionary(dict.clone())
        .to_writer_xml(&mut out)
        .is_err()
    {
        out.clear();
    }
    out
}

/// Read access to one plist dictionary; nested readers carry a dotted key path
/// so errors read `QueryResponses.DeviceName`.
pub(crate) struct Fields<'a> {
    dict: &'a Dictionary,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// Reads the top-level dictionary.
    pub(crate) fn new(dict: &'a Dictionary) -> Fields<'a> {
        Fields {
            dict,
            prefix: String::new(),
        }
    }

    /// Reads a nested dictionary; `path` is the dotted path of `dict` itself.
    pub(crate) fn nested(dict: &'a Dictionary, path: &str) -> Fields<'a> {
        Fields {
            dict,
            prefix: format!("{path}."),
        }
    }

    /// The full dotted path of `key`.
    pub(crate) fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn wrong(&self, key: &str, expected: &'static str) -> ProtocolError {
        ProtocolError::WrongType {
            key: self.path(key),
            expected,
        }
    }

    /// An optional `<string>`.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "string")),
        }
    }

    /// A required `<string>`.
    pub(crate) fn required_string(&self, key: &'static str) -> Result<String, ProtocolError> {
        self.string(key)?.ok_or(ProtocolError::MissingKey(key))
    }

    /// An optional `<true/>`/`<false/>`.
    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "boolean")),
        }
    }

    /// An optional `<data>`; never accepts a string in its place.
    pub(crate) fn data(&self, key: &str) -> Result<Option<Vec<u8>>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Data(d)) => Ok(Some(d.clone())),
            Some(_) => Err(self.wrong(key, "data")),
        }
    }

    /// An optional `<integer>` that fits in an i64.
    pub(crate) fn integer(&self, key: &str) -> Result<Option<i64>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => i
                .as_signed()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "integer within i64")),
            Some(_) => Err(self.wrong(key, "integer")),
        }
    }

    /// An optional number: `<real>`, or an `<integer>` where a device sends a
    /// whole number for a key Apple types as real (e.g. DeviceCapacity).
    pub(crate) fn real(&self, key: &str) -> Result<Option<f64>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Real(r)) => Ok(Some(*r)),
            Some(Value::Integer(i)) => match (i.as_signed(), i.as_unsigned()) {
                (Some(s), _) => Ok(Some(s as f64)),
                (None, Some(u)) => Ok(Some(u as f64)),
                (None, None) => Err(self.wrong(key, "real")),
            },
            Some(_) => Err(self.wrong(key, "real")),
        }
    }

    /// An optional `<dict>`.
    pub(crate) fn dict(&self, key: &str) -> Result<Option<&'a Dictionary>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Dictionary(d)) => Ok(Some(d)),
            Some(_) => Err(self.wrong(key, "dictionary")),
        }
    }

    /// An optional `<array>`.
    pub(crate) fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, ProtocolError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.wrong(key, "array")),
        }
    }

    /// An optional `<array>` whose items must all be `<dict>`; yields each with
    /// its path (`ProfileList[3]`) for nested readers.
    pub(crate) fn dict_array(
        &self,
        key: &str,
    ) -> Result<Option<Vec<(String, &'a Dictionary)>>, ProtocolError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{}[{i}]", self.path(key));
                match item {
                    Value::Dictionary(d) => Ok((path, d)),
                    _ => Err(ProtocolError::WrongType {
                        key: path,
                        expected: "dictionary",
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Builds a dictionary key by key, skipping absent optional values.
#[derive(Default)]
pub(crate) struct DictWriter {
    dict: Dictionary,
}

impl DictWriter {
    /// An empty dictionary.
    pub(crate) fn new() -> DictWriter {
        DictWriter::default()
    }

    /// Always sets `key`.
    pub(crate) fn set(mut self, key: &str, value: impl Into<Value>) -> DictWriter {
        self.dict.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` when `value` is present.
    pub(crate) fn opt<V: Into<Value>>(self, key: &str, value: Option<V>) -> DictWriter {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Sets a `<string>` when present.
    pub(crate) fn string(self, key: &str, value: Option<&str>) -> DictWriter {
        self.opt(key, value)
    }

    /// Sets a `<data>` when present.
    pub(crate) fn data(self, key: &str, value: Option<&[u8]>) -> DictWriter {
        self.opt(key, value.map(|d| Value::Data(d.to_vec())))
    }

    /// Sets a boolean only when it is true: Apple defaults these keys to false.
    pub(crate) fn flag(self, key: &str, value: bool) -> DictWriter {
        if value {
            self.set(key, true)
        } else {
            self
        }
    }

    /// The finished dictionary.
    pub(crate) fn finish(self) -> Dictionary {
        self.dict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_non_dictionary_bodies_are_rejected() {
        assert!(matches!(
            parse_body(b"not a plist"),
            Err(ProtocolError::Malformed(_))
        ));
        let array = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><array><string>x</string></array></plist>"#;
        assert!(matches!(
            parse_body(array),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_types_name_the_nested_key() {
        let mut inner = Dictionary::new();
        inner.insert("DeviceName".to_owned(), Value::Integer(3.into()));
        let fields = Fields::nested(&inner, "QueryResponses");
        assert_eq!(
            fields.string("DeviceName"),
            Err(ProtocolError::WrongType {
                key: "QueryResponses.DeviceName".to_owned(),
                expected: "string"
            })
        );
    }

    #[test]
    fn data_is_never_read_from_a_string() {
        let dict = DictWriter::new().set("Token", "AAEC").finish();
        assert!(matches!(
            Fields::new(&dict).data("Token"),
            Err(ProtocolError::WrongType { .. })
        ));
    }

    #[test]
    fn real_accepts_whole_numbers() {
        let dict = DictWriter::new().set("A", 64i64).set("B", 0.5f64).finish();
        let f = Fields::new(&dict);
        assert_eq!(f.real("A"), Ok(Some(64.0)));
        assert_eq!(f.real("B"), Ok(Some(0.5)));
    }
}

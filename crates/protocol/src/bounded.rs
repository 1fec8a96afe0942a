//! Reading untrusted property lists with bounds: nesting depth, number of values and
//! bytes of string and data content are checked while the events stream in, before
//! any tree is built.
//!
//! Why: `plist::Value::from_reader` builds (and dropping a `Value` frees) the tree
//! recursively, so one body nested a few thousand levels deep overflows a worker's
//! stack and aborts the whole process. A binary plist may also reference one object
//! many times, so a small body can describe a huge tree. Here the tree is built with
//! an explicit stack from plist's event readers, which are iterative, and every limit
//! is checked per event. Only XML and binary plists are read (never OpenStep ASCII,
//! which no Apple device sends).

use std::io::Cursor;

use plist::stream::{BinaryReader, Event, OwnedEvent, XmlReader};
use plist::{Dictionary, Value};

/// Bounds for one property list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays and dictionaries (the top level counts as 1).
    pub depth: usize,
    /// Most values, dictionary keys included.
    pub values: usize,
    /// Most bytes of string and data content, summed over the whole tree.
    pub bytes: usize,
}

impl Limits {
    /// What Apple's device messages need, with room to spare: check-in messages and
    /// command reports nest a handful of levels (a ProfileList answer about six).
    pub const DEVICE: Limits = Limits {
        depth: 32,
        values: 250_000,
        bytes: 32 * 1024 * 1024,
    };

    /// Configuration profiles: Apple's deepest schema (home screen folders) needs
    /// about ten levels.
    pub const PROFILE: Limits = Limits {
        depth: 64,
        values: 200_000,
        bytes: 32 * 1024 * 1024,
    };
}

/// Why a property list was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundedError {
    /// Not an XML or binary plist, or broken.
    #[error("{0}")]
    Malformed(String),
    /// Nested deeper than allowed.
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    /// More values than allowed.
    #[error("more than {0} values")]
    TooManyValues(usize),
    /// More string and data content than allowed.
    #[error("more than {0} bytes of string and data content")]
    TooMuchContent(usize),
}

const BINARY_MAGIC: &[u8] = b"bplist00";

/// Parses an XML or binary plist within `limits`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Value, BoundedError> {
    if bytes.starts_with(BINARY_MAGIC) {
        build(BinaryReader::new(Cursor::new(bytes)), limits)
    } else {
        build(XmlReader::new(Cursor::new(bytes)), limits)
    }
}

/// Parses a plist whose top level must be a dictionary.
pub fn parse_dictionary(bytes: &[u8], limits: Limits) -> Result<Dictionary, BoundedError> {
    parse(bytes, limits)?
        .into_dictionary()
        .ok_or_else(|| BoundedError::Malformed("top-level value is not a dictionary".into()))
}

/// A collection being filled.
enum Open {
    Array(Vec<Value>),
    /// A dictionary and the key whose value comes next.
    Dict(Dictionary, Option<String>),
}

fn build(
    events: impl Iterator<Item = Result<OwnedEvent, plist::Error>>,
    limits: Limits,
) -> Result<Value, BoundedError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut values = 0usize;
    let mut content = 0usize;
    for event in events {
        let event = event.map_err(|e| BoundedError::Malformed(e.to_string()))?;
        values += 1;
        if values > limits.values {
            return Err(BoundedError::TooManyValues(limits.values));
        }
        let value = match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if stack.len() >= limits.depth {
                    return Err(BoundedError::TooDeep(limits.depth));
                }
                if matches!(stack.last(), Some(Open::Dict(_, None))) {
                    return Err(BoundedError::Malformed(
                        "a dictionary key must be a string".into(),
                    ));
                }
                stack.push(match event {
                    Event::StartArray(_) => Open::Array(Vec::new()),
                    _ => Open::Dict(Dictionary::new(), None),
                });
                continue;
            }
            Event::EndCollection => match stack.pop() {
                Some(Open::Array(items)) => Value::Array(items),
                Some(Open::Dict(dict, None)) => Value::Dictionary(dict),
                Some(Open::Dict(_, Some(key))) => {
                    return Err(BoundedError::Malformed(format!(
                        "dictionary key {key:?} has no value"
                    )))
                }
                None => {
                    return Err(BoundedError::Malformed(
                        "unbalanced end of collection".into(),
                    ))
                }
            },
            Event::String(s) => {
                content = add_content(content, s.len(), limits)?;
                if let Some(Open::Dict(_, key @ None)) = stack.last_mut() {
                    *key = Some(s.into_owned());
                    continue;
                }
                Value::String(s.into_owned())
            }
            Event::Data(d) => {
                content = add_content(content, d.len(), limits)?;
                Value::Data(d.into_owned())
            }
            Event::Boolean(b) => Value::Boolean(b),
            Event::Date(d) => Value::Date(d),
            Event::Integer(i) => Value::Integer(i),
            Event::Real(r) => Value::Real(r),
            Event::Uid(u) => Value::Uid(u),
            other => {
                return Err(BoundedError::Malformed(format!(
                    "unsupported plist element {other:?}"
                )))
            }
        };
        match stack.last_mut() {
            None => return Ok(value),
            Some(Open::Array(items)) => items.push(value),
            Some(Open::Dict(dict, key)) => match key.take() {
                Some(k) => {
                    dict.insert(k, value);
                }
                None => {
                    return Err(BoundedError::Malformed(
                        "a dictionary key must be a string".into(),
                    ))
                }
            },
        }
    }
    Err(BoundedError::Malformed(
        "unexpected end of the property list".into(),
    ))
}

fn add_content(so_far: usize, more: usize, limits: Limits) -> Result<usize, BoundedError> {
    let total = so_far.saturating_add(more);
    if total > limits.bytes {
        Err(BoundedError::TooMuchContent(limits.bytes))
    } else {
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hostile::{nested_binary, nested_xml};

    #[test]
    fn an_ordinary_message_reads_like_the_plist_crate_reads_it() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
  <key>MessageType</key><string>Authenticate</string>
  <key>Nested</key><dict><key>List</key><array><integer>1</integer><true/><data>AAE=</data><real>1.5</real></array></dict>
</dict></plist>"#;
        let ours = parse(xml, Limits::DEVICE).unwrap();
        let theirs = Value::from_reader_xml(&xml[..]).unwrap();
        assert_eq!(ours, theirs);
        let mut binary = Vec::new();
        theirs.to_writer_binary(&mut binary).unwrap();
        assert_eq!(parse(&binary, Limits::DEVICE).unwrap(), theirs);
    }

    #[test]
    fn a_body_nested_a_million_levels_is_refused_without_building_it() {
        for depth in [33, 17_000, 1_000_000] {
            assert_eq!(
                parse(&nested_xml(depth), Limits::DEVICE),
                Err(BoundedError::TooDeep(32)),
                "xml {depth}"
            );
        }
        for depth in [33, 110_000] {
            assert_eq!(
                parse(&nested_binary(depth), Limits::DEVICE),
                Err(BoundedError::TooDeep(32)),
                "binary {depth}"
            );
        }
        assert!(parse(&nested_xml(32), Limits::DEVICE).is_ok());
        assert!(parse(&nested_binary(32), Limits::DEVICE).is_ok());
    }

    #[test]
    fn a_binary_plist_that_references_one_object_many_times_is_bounded() {
        // Object 0: an array of 8 references to object 1; object 1: an array of 8
        // references to object 2; … 12 levels describe 8^12 values in a few bytes.
        let levels = 12usize;
        let mut out = b"bplist00".to_vec();
        let mut offsets = Vec::new();
        for n in 0..levels {
            offsets.push(out.len() as u16);
            if n + 1 < levels {
                out.push(0xA8);
                out.extend(std::iter::repeat_n((n + 1) as u8, 8));
            } else {
                out.push(0x10);
                out.push(7);
            }
        }
        let table = out.len() as u64;
        for o in &offsets {
            out.extend_from_slice(&o.to_be_bytes());
        }
        out.extend_from_slice(&[0; 6]);
        out.push(2);
        out.push(1);
        out.extend_from_slice(&(levels as u64).to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&table.to_be_bytes());
        assert_eq!(
            parse(&out, Limits::DEVICE),
            Err(BoundedError::TooManyValues(Limits::DEVICE.values))
        );
    }

    #[test]
    fn keys_must_be_strings_and_have_values() {
        let bad = br#"<plist version="1.0"><dict><key>A</key></dict></plist>"#;
        assert!(matches!(
            parse(bad, Limits::DEVICE),
            Err(BoundedError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"garbage", Limits::DEVICE),
            Err(BoundedError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"", Limits::DEVICE),
            Err(BoundedError::Malformed(_))
        ));
        // OpenStep ASCII is not read.
        assert!(matches!(
            parse(b"{ a = b; }", Limits::DEVICE),
            Err(BoundedError::Malformed(_))
        ));
    }

    #[test]
    fn content_is_counted_across_the_tree() {
        let limits = Limits {
            bytes: 10,
            ..Limits::DEVICE
        };
        let xml = br#"<plist version="1.0"><array><string>123456</string><string>123456</string></array></plist>"#;
        assert_eq!(parse(xml, limits), Err(BoundedError::TooMuchContent(10)));
    }
}

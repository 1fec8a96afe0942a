//! The shape of Apple's profile schema as Rust types, and look-ups into the generated tables.
//!
//! The data lives in `known.rs`, generated from Apple's `mdm/profiles/*.yaml` by
//! `tools/gen_known.py`; this file holds the hand-written types it is made of.

use super::known;

/// The plist type a key's value must have (`type:` in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `<string>`
    String,
    /// `<integer>`
    Integer,
    /// `<boolean>`
    Boolean,
    /// `<real>`; an `<integer>` is accepted too, devices read both as a number.
    Real,
    /// `<date>`
    Date,
    /// `<data>`
    Data,
    /// `<array>`
    Array,
    /// `<dictionary>`
    Dictionary,
    /// `<any>`: not checked.
    Any,
}

impl KeyType {
    /// The schema's spelling, as used in error messages (`boolean`, `dictionary`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Integer => "integer",
            KeyType::Boolean => "boolean",
            KeyType::Real => "real",
            KeyType::Date => "date",
            KeyType::Data => "data",
            KeyType::Array => "array",
            KeyType::Dictionary => "dictionary",
            KeyType::Any => "any",
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The values a key may take (`rangelist:` in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// No rangelist (or one of reals, which is not checked).
    Anything,
    /// One of these strings.
    Strings(&'static [&'static str]),
    /// One of these integers.
    Integers(&'static [i64]),
}

/// Short name used by the generated tables.
pub(super) const ANYTHING: Allowed = Allowed::Anything;

/// Where a key (or payload) works on iOS/iPadOS, from the schema's `supportedOS.iOS`,
/// with a key inheriting what its payload says (see `docs/schema.md` in Apple's repo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ios {
    /// Not `introduced: n/a` and not `removed`.
    pub available: bool,
    /// `supervised: true`: ignored (or refused) on unsupervised devices.
    pub supervised_only: bool,
    /// `sharedipad.mode: forbidden`: cannot be used on a Shared iPad.
    pub shared_ipad_forbidden: bool,
}

pub(super) const NO_IOS: Ios = Ios {
    available: false,
    supervised_only: false,
    shared_ipad_forbidden: false,
};
pub(super) const IOS: Ios = Ios {
    available: true,
    supervised_only: false,
    shared_ipad_forbidden: false,
};
pub(super) const IOS_SUP: Ios = Ios {
    available: true,
    supervised_only: true,
    shared_ipad_forbidden: false,
};
pub(super) const IOS_NOT_SHARED: Ios = Ios {
    available: true,
    supervised_only: false,
    shared_ipad_forbidden: true,
};
pub(super) const IOS_SUP_NOT_SHARED: Ios = Ios {
    available: true,
    supervised_only: true,
    shared_ipad_forbidden: true,
};

/// One key of a payload (or of a dictionary nested in one).
#[derive(Debug)]
pub struct KeySpec {
    /// The key; `"ANY"` stands for every key not listed beside it.
    pub key: &'static str,
    /// The type its value must have.
    pub ty: KeyType,
    /// `presence: required`.
    pub required: bool,
    /// The `rangelist`, if any.
    pub allowed: Allowed,
    /// Where it works on iOS.
    pub ios: Ios,
    /// For a dictionary its keys; for an array one entry describing every item.
    /// Empty: contents not described.
    pub subkeys: &'static [KeySpec],
}

/// Constructor used by the generated tables to keep them one line per key.
pub(super) const fn key(
    key: &'static str,
    ty: KeyType,
    required: bool,
    allowed: Allowed,
    ios: Ios,
    subkeys: &'static [KeySpec],
) -> KeySpec {
    KeySpec {
        key,
        ty,
        required,
        allowed,
        ios,
        subkeys,
    }
}

/// The key set of one payload type.
#[derive(Debug)]
pub struct PayloadSpec {
    /// The `PayloadType` value.
    pub payload_type: &'static str,
    /// Where the payload works on iOS.
    pub ios: Ios,
    /// Its keys, besides the common `Payload*` keys.
    pub keys: &'static [KeySpec],
}

/// Every `PayloadType` Apple's schema defines, sorted.
pub fn known_payload_types() -> &'static [&'static str] {
    known::KNOWN_PAYLOAD_TYPES
}

/// The schema of one payload type, if Apple's schema has it.
pub fn payload_spec(payload_type: &str) -> Option<&'static PayloadSpec> {
    known::PAYLOADS
        .binary_search_by(|p| p.payload_type.cmp(payload_type))
        .ok()
        .and_then(|i| known::PAYLOADS.get(i))
}

/// Keys of the profile's outer dictionary (`TopLevel.yaml`).
pub fn top_level_keys() -> &'static [KeySpec] {
    known::TOP_LEVEL_KEYS
}

/// Keys every payload dictionary carries (`CommonPayloadKeys.yaml`).
pub fn common_payload_keys() -> &'static [KeySpec] {
    known::COMMON_PAYLOAD_KEYS
}

/// The spec for `key` in a key list: its own entry, else the list's `ANY` entry.
pub fn find_key(keys: &'static [KeySpec], key: &str) -> Option<&'static KeySpec> {
    keys.iter()
        .find(|k| k.key == key)
        .or_else(|| keys.iter().find(|k| k.key == "ANY"))
}

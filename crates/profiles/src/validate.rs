//! Checks an uploaded `.mobileconfig` against Apple's profile schema.
//!
//! Rules and where they come from (all in Apple's `mdm/profiles/`):
//! - `TopLevel.yaml`: the outer dictionary has `PayloadType` `Configuration`,
//!   `PayloadVersion` 1, `PayloadIdentifier`, `PayloadUUID`, and `PayloadContent`.
//! - `CommonPayloadKeys.yaml`: every payload has `PayloadType`, `PayloadIdentifier`
//!   ("must be unique within the profile"), `PayloadUUID` and `PayloadVersion`.
//! - `<type>.yaml`: the payload type must exist; its keys have these types; its
//!   required keys are present (nested dictionaries and arrays included).
//!
//! What is an error and what a warning: a wrong type, a missing required key or an
//! unknown payload type breaks the profile on the device, so it is an error. Keys and
//! values Apple's schema does not list are warnings, because Apple adds both every year
//! and this table is only as new as the schema it was generated from.

use std::collections::HashMap;

use plist::{Dictionary, Value};
use uuid::Uuid;

use super::error::{Issue, Problem, ProfileError};
use super::parse::{parse_plist, type_name};
use super::schema::{self, Allowed, KeySpec, KeyType};

/// What a valid profile is, in the terms the catalog stores and compares.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInfo {
    /// The outer `PayloadIdentifier`: devices replace a profile with the same one.
    pub identifier: String,
    /// The outer `PayloadUUID`.
    pub uuid: Uuid,
    /// `PayloadDisplayName`, if set.
    pub display_name: Option<String>,
    /// `PayloadType` of each payload, in order.
    pub payload_types: Vec<String>,
    /// Things worth a look that do not stop the profile from working, each naming its path.
    pub warnings: Vec<String>,
    /// `PayloadRemovalDisallowed`, if set (only honoured on supervised devices).
    pub removal_disallowed: Option<bool>,
}

/// Validates an uploaded profile: an XML or binary plist, not CMS-signed (the caller
/// unwraps signatures), at most [`super::MAX_PROFILE_BYTES`] long.
pub fn validate_profile(bytes: &[u8]) -> Result<ProfileInfo, ProfileError> {
    let root = parse_plist(bytes)?;
    validate_value(&root)
}

/// Validates an already parsed profile.
pub fn validate_value(root: &Value) -> Result<ProfileInfo, ProfileError> {
    let mut v = Validator::default();
    let Some(top) = root.as_dictionary() else {
        return Err(ProfileError::Invalid(vec![Issue {
            path: "(root)".into(),
            problem: Problem::WrongType {
                expected: KeyType::Dictionary,
                found: type_name(root),
            },
        }]));
    };
    if top.get("IsEncrypted").and_then(Value::as_boolean) == Some(true) {
        return Err(ProfileError::Encrypted);
    }

    // PayloadContent is walked below, payload by payload, against each payload's own type.
    v.check_dict(
        top,
        schema::top_level_keys(),
        "",
        "the profile",
        &["PayloadContent"],
    );
    if let Some(ty) = string(top, "PayloadType").filter(|t| *t != "Configuration") {
        v.issue("PayloadType", Problem::NotConfiguration(ty.into()));
    }
    if let Some(version) = top.get("PayloadVersion").filter(|v| not_one(v)) {
        v.issue(
            "PayloadVersion",
            Problem::WrongVersion(integer_text(version)),
        );
    }
    let identifier = string(top, "PayloadIdentifier").map(|id| {
        v.check_identifier("PayloadIdentifier", id);
        id.to_owned()
    });
    let uuid = string(top, "PayloadUUID").and_then(|u| v.check_uuid("PayloadUUID", u));

    let mut payload_types = Vec::new();
    if let Some(Value::Array(payloads)) = top.get("PayloadContent") {
        for (i, payload) in payloads.iter().enumerate() {
            let path = format!("PayloadContent[{i}]");
            match payload.as_dictionary() {
                Some(dict) => {
                    if let Some(ty) = v.check_payload(&path, dict) {
                        payload_types.push(ty);
                    }
                }
                None => v.issue(
                    &path,
                    Problem::WrongType {
                        expected: KeyType::Dictionary,
                        found: type_name(payload),
                    },
                ),
            }
        }
    }

    match (identifier, uuid) {
        (Some(identifier), Some(uuid)) if v.issues.is_empty() => Ok(ProfileInfo {
            identifier,
            uuid,
            display_name: string(top, "PayloadDisplayName").map(str::to_owned),
            payload_types,
            warnings: v.warnings,
            removal_disallowed: top
                .get("PayloadRemovalDisallowed")
                .and_then(Value::as_boolean),
        }),
        // Without issues both are present: check_dict reports them missing otherwise.
        _ => Err(ProfileError::Invalid(v.issues)),
    }
}

fn string<'a>(dict: &'a Dictionary, key: &str) -> Option<&'a str> {
    dict.get(key).and_then(Value::as_string)
}

/// An integer other than 1 (other types are reported as type errors instead).
fn not_one(value: &Value) -> bool {
    matches!(value, Value::Integer(_)) && value.as_signed_integer() != Some(1)
}

fn integer_text(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        other => type_name(other).to_owned(),
    }
}

/// Reverse-DNS-ish: dot-separated, non-empty labels of ASCII letters, digits, `-`, `_`.
/// A single label (Jamf exports use bare UUIDs) is let through with a warning.
fn identifier_shape(id: &str) -> Result<bool, ()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if id.split('.').all(label_ok) {
        Ok(id.contains('.'))
    } else {
        Err(())
    }
}

/// Whether `id` is a reverse-DNS identifier with at least two labels.
pub fn is_reverse_dns(id: &str) -> bool {
    identifier_shape(id) == Ok(true)
}

#[derive(Default)]
struct Validator {
    issues: Vec<Issue>,
    warnings: Vec<String>,
    /// PayloadUUID (compared as UUIDs, so case does not matter) → path of its first use.
    uuids: HashMap<Uuid, String>,
    /// Payload PayloadIdentifier → path of its first use.
    identifiers: HashMap<String, String>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Validator {
    fn issue(&mut self, path: &str, problem: Problem) {
        self.issues.push(Issue {
            path: path.to_owned(),
            problem,
        });
    }

    fn warn(&mut self, path: &str, message: impl std::fmt::Display) {
        self.warnings.push(format!("{path}: {message}"));
    }

    fn check_identifier(&mut self, path: &str, id: &str) {
        match identifier_shape(id) {
            Ok(true) => {}
            Ok(false) => self.warn(path, format_args!("{id:?} is not reverse-DNS style")),
            Err(()) if id.is_empty() => self.issue(path, Problem::Empty),
            Err(()) => self.issue(path, Problem::NotReverseDns(id.to_owned())),
        }
    }

    fn check_uuid(&mut self, path: &str, text: &str) -> Option<Uuid> {
        // Apple's format: ^[0-9A-Za-z]{8}-...-[0-9A-Za-z]{12}$; `Uuid::try_parse` alone
        // would also take the simple, braced and URN forms.
        let parsed = (text.len() == 36)
            .then(|| Uuid::try_parse(text).ok())
            .flatten();
        match parsed {
            Some(uuid) => {
                if let Some(first) = self.uuids.get(&uuid) {
                    let first = first.clone();
                    self.issue(
                        path,
                        Problem::DuplicateUuid {
                            uuid: text.to_owned(),
                            first,
                        },
                    );
                } else {
                    self.uuids.insert(uuid, path.to_owned());
                }
                Some(uuid)
            }
            None => {
                self.issue(path, Problem::NotUuid(text.to_owned()));
                None
            }
        }
    }

    /// Checks one `PayloadContent` entry; returns its `PayloadType` if it has one.
    fn check_payload(&mut self, path: &str, dict: &Dictionary) -> Option<String> {
        let common = schema::common_payload_keys();
        let ty = string(dict, "PayloadType").map(str::to_owned);
        let spec = ty.as_deref().and_then(schema::payload_spec);
        if let (Some(t), None) = (&ty, spec) {
            self.issue(
                &join(path, "PayloadType"),
                Problem::UnknownPayloadType(t.clone()),
            );
        }

        for key in common {
            if key.required && !dict.contains_key(key.key) {
                self.issue(&join(path, key.key), Problem::Missing);
            }
        }
        if let Some(spec) = spec {
            for key in spec.keys {
                if key.required && key.key != "ANY" && !dict.contains_key(key.key) {
                    self.issue(&join(path, key.key), Problem::Missing);
                }
            }
        }
        for (key, value) in dict {
            let key_path = join(path, key);
            if let Some(c) = common.iter().find(|c| c.key == key) {
                self.check_value(value, c, &key_path);
            } else if let Some(spec) = spec {
                match schema::find_key(spec.keys, key) {
                    Some(k) => self.check_value(value, k, &key_path),
                    None => self.warn(
                        &key_path,
                        format_args!("key not in Apple's schema for {}", spec.payload_type),
                    ),
                }
            }
        }

        if let Some(id) = string(dict, "PayloadIdentifier") {
            let id_path = join(path, "PayloadIdentifier");
            self.check_identifier(&id_path, id);
            if let Some(first) = self.identifiers.get(id) {
                let first = first.clone();
                self.issue(
                    &id_path,
                    Problem::DuplicateIdentifier {
                        identifier: id.to_owned(),
                        first,
                    },
                );
            } else {
                self.identifiers.insert(id.to_owned(), id_path);
            }
        }
        if let Some(uuid) = string(dict, "PayloadUUID") {
            self.check_uuid(&join(path, "PayloadUUID"), uuid);
        }
        if let Some(version) = dict.get("PayloadVersion").filter(|v| not_one(v)) {
            self.warn(
                &join(path, "PayloadVersion"),
                format_args!("is {}, Apple documents only 1", integer_text(version)),
            );
        }
        ty
    }

    /// Checks a dictionary against a key list: required keys, then each present key.
    fn check_dict(
        &mut self,
        dict: &Dictionary,
        keys: &'static [KeySpec],
        path: &str,
        owner: &str,
        skip: &[&str],
    ) {
        for key in keys {
            if key.required && key.key != "ANY" && !dict.contains_key(key.key) {
                self.issue(&join(path, key.key), Problem::Missing);
            }
        }
        for (key, value) in dict {
            if skip.contains(&key.as_str()) {
                continue;
            }
            let key_path = join(path, key);
            match schema::find_key(keys, key) {
                Some(spec) => self.check_value(value, spec, &key_path),
                None => self.warn(
                    &key_path,
                    format_args!("key not in Apple's schema for {owner}"),
                ),
            }
        }
    }

    fn check_value(&mut self, value: &Value, spec: &'static KeySpec, path: &str) {
        let type_ok = match spec.ty {
            KeyType::Any => true,
            KeyType::String => matches!(value, Value::String(_)),
            KeyType::Integer => matches!(value, Value::Integer(_)),
            KeyType::Boolean => matches!(value, Value::Boolean(_)),
            KeyType::Real => matches!(value, Value::Real(_) | Value::Integer(_)),
            KeyType::Date => matches!(value, Value::Date(_)),
            KeyType::Data => matches!(value, Value::Data(_)),
            KeyType::Array => matches!(value, Value::Array(_)),
            KeyType::Dictionary => matches!(value, Value::Dictionary(_)),
        };
        if !type_ok {
            self.issue(
                path,
                Problem::WrongType {
                    expected: spec.ty,
                    found: type_name(value),
                },
            );
            return;
        }
        match (spec.allowed, value) {
            (Allowed::Strings(allowed), Value::String(s)) if !allowed.contains(&s.as_str()) => {
                self.warn(
                    path,
                    format_args!("{s:?} is not one of {}", allowed.join(", ")),
                );
            }
            (Allowed::Integers(allowed), Value::Integer(i))
                if !i.as_signed().is_some_and(|i| allowed.contains(&i)) =>
            {
                let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                self.warn(path, format_args!("{i} is not one of {}", list.join(", ")));
            }
            _ => {}
        }
        match value {
            Value::Array(items) => {
                if let Some(item_spec) = spec.subkeys.first() {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(item, item_spec, &format!("{path}[{i}]"));
                    }
                }
            }
            Value::Dictionary(dict) if !spec.subkeys.is_empty() => {
                self.check_dict(dict, spec.subkeys, path, spec.key, &[]);
            }
            _ => {}
        }
    }
}

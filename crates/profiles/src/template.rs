//! Profile templates: `.mobileconfig` files with `{{variable}}` placeholders, rendered
//! per school into valid profiles with stable UUIDs.
//!
//! A template is a pair of files in `profiles/` at the repository root:
//! - `<name>.mobileconfig`: an XML plist. A `<string>` that is exactly `{{var}}` is
//!   replaced by the variable's *typed* value (`<true/>`, `<integer>`, `<string>`); a
//!   placeholder inside a longer string is replaced by its text. Placeholders may not
//!   appear in keys. The file has no `PayloadUUID`s: rendering derives them.
//! - `<name>.json`: `{"description", "variables": [...], "notes": {key: why}}`, see
//!   [`Variable`]. `notes` documents each setting the template makes.
//!
//! Substitution works on the parsed tree, so values are escaped by the plist writer and a
//! value containing `{{x}}` is never expanded again. Secrets are only allowed as a whole
//! value outside `Payload*` keys, so they cannot leak into identifiers, names or the
//! errors that quote those; errors name variables, never their values.

use std::collections::{BTreeMap, BTreeSet};

use plist::{Dictionary, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ProfileError;
use super::parse::{parse_plist, to_xml};
use super::validate::validate_value;

/// Namespace of every rendered PayloadUUID (random, fixed forever: changing it would
/// give every rendered profile new UUIDs and make devices reinstall them).
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x0e49_6b5b_7ce2_4a7d_bf4d_cb10_f6ba_ffa3);

/// The templates shipped with tafel: (name, mobileconfig, metadata).
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "school-wifi",
        include_str!("../../../profiles/school-wifi.mobileconfig"),
        include_str!("../../../profiles/school-wifi.json"),
    ),
    (
        "pupil-restrictions",
        include_str!("../../../profiles/pupil-restrictions.mobileconfig"),
        include_str!("../../../profiles/pupil-restrictions.json"),
    ),
    (
        "exam-mode",
        include_str!("../../../profiles/exam-mode.mobileconfig"),
        include_str!("../../../profiles/exam-mode.json"),
    ),
];

/// Loads every built-in template. Fails only if a shipped file is broken, which the
/// tests rule out; callers load them once at startup and propagate the error.
pub fn builtin_templates() -> Result<Vec<Template>, ProfileError> {
    BUILTIN
        .iter()
        .map(|(name, xml, meta)| Template::load(name, xml, meta))
        .collect()
}

/// Loads one built-in template by name.
pub fn builtin_template(name: &str) -> Result<Template, ProfileError> {
    BUILTIN
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ProfileError::NoSuchTemplate(name.to_owned()))
        .and_then(|(name, xml, meta)| Template::load(name, xml, meta))
}

/// What a variable holds, and so how it is written into the plist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariableKind {
    /// Text.
    String,
    /// Text that must not show up in logs, errors or UUIDs (a Wi-Fi password).
    Secret,
    /// `true`/`false`; a whole-value placeholder becomes `<true/>`/`<false/>`.
    Bool,
    /// A whole number; a whole-value placeholder becomes `<integer>`.
    Integer,
    /// 1–63 lower-case ASCII letters, digits and inner `-`: safe inside a `PayloadIdentifier`.
    Slug,
}

impl VariableKind {
    /// How an error describes the expected value.
    pub fn describe(self) -> &'static str {
        match self {
            VariableKind::String => "a string",
            VariableKind::Secret => "a string (secret)",
            VariableKind::Bool => "true or false",
            VariableKind::Integer => "an integer",
            VariableKind::Slug => "a slug (lower-case letters, digits, inner '-')",
        }
    }

    fn is_text(self) -> bool {
        matches!(
            self,
            VariableKind::String | VariableKind::Secret | VariableKind::Slug
        )
    }
}

/// One variable a template declares in its JSON metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Name used in `{{name}}`: lower-case letters, digits, `_`.
    pub name: String,
    /// What to enter, for the admin UI.
    pub description: String,
    /// Type of the value.
    pub kind: VariableKind,
    /// Must be given (and, for text, be non-empty). Optional variables need a `default`.
    #[serde(default)]
    pub required: bool,
    /// Value used when none is given. Not allowed for secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Least number of characters, for text kinds (a WPA2 passphrase needs 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Most number of characters, for text kinds (a WPA2 passphrase allows 63).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    description: String,
    variables: Vec<Variable>,
    #[serde(default)]
    notes: BTreeMap<String, String>,
}

/// A loaded template. Holds no variable values, so its `Debug` output has no secrets.
#[derive(Clone, Debug)]
pub struct Template {
    /// File stem, e.g. `school-wifi`; part of every derived PayloadUUID.
    pub name: String,
    /// What the profile does, for the admin UI.
    pub description: String,
    /// Declared variables, in file order.
    pub variables: Vec<Variable>,
    /// Why each setting is what it is, keyed by plist key.
    pub notes: BTreeMap<String, String>,
    root: Dictionary,
}

/// A resolved, type-checked variable value.
#[derive(Clone)]
enum Resolved {
    Text(String),
    Bool(bool),
    Integer(i64),
}

impl Resolved {
    fn to_plist(&self) -> Value {
        match self {
            Resolved::Text(s) => Value::String(s.clone()),
            Resolved::Bool(b) => Value::Boolean(*b),
            Resolved::Integer(i) => Value::Integer((*i).into()),
        }
    }

    fn push_text(&self, out: &mut String) {
        match self {
            Resolved::Text(s) => out.push_str(s),
            Resolved::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Resolved::Integer(i) => out.push_str(&i.to_string()),
        }
    }
}

/// A piece of a template string.
enum Segment<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn valid_variable_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Splits `s` at `{{name}}` placeholders.
fn segments(s: &str) -> Result<Vec<Segment<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Segment::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed '{{{{' in {s:?}"))?;
        let name = &after[..end];
        if !valid_variable_name(name) {
            return Err(format!("bad placeholder {{{{{name}}}}}"));
        }
        out.push(Segment::Var(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    Ok(out)
}

fn slug_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
}

/// Type-checks one value against its variable. Errors never contain the value.
fn resolve(var: &Variable, value: &serde_json::Value) -> Result<Resolved, ProfileError> {
    let wrong_type = || ProfileError::VariableType {
        name: var.name.clone(),
        expected: var.kind,
    };
    let bad = |reason: String| ProfileError::VariableValue {
        name: var.name.clone(),
        reason,
    };
    match var.kind {
        VariableKind::Bool => value.as_bool().map(Resolved::Bool).ok_or_else(wrong_type),
        VariableKind::Integer => value.as_i64().map(Resolved::Integer).ok_or_else(wrong_type),
        VariableKind::String | VariableKind::Secret | VariableKind::Slug => {
            let s = value.as_str().ok_or_else(wrong_type)?;
            let chars = s.chars().count();
            if var.required && s.is_empty() {
                return Err(bad("must not be empty".into()));
            }
            if let Some(min) = var.min_length.filter(|min| chars < *min) {
                return Err(bad(format!("needs at least {min} characters")));
            }
            if let Some(max) = var.max_length.filter(|max| chars > *max) {
                return Err(bad(format!("allows at most {max} characters")));
            }
            if s.chars().any(char::is_control) {
                return Err(bad("must not contain control characters".into()));
            }
            if var.kind == VariableKind::Slug && !slug_ok(s) {
                return Err(wrong_type());
            }
            Ok(Resolved::Text(s.to_owned()))
        }
    }
}

impl Template {
    /// Loads a template from its `.mobileconfig` text and JSON metadata, checking that
    /// every placeholder is declared, every declared variable is used, defaults fit their
    /// kinds, and secrets are only used as whole values.
    pub fn load(name: &str, xml: &str, meta_json: &str) -> Result<Template, ProfileError> {
        let fail = |message: String| ProfileError::Template {
            template: name.to_owned(),
            message,
        };
        let meta: Meta =
            serde_json::from_str(meta_json).map_err(|e| fail(format!("metadata: {e}")))?;

        let mut declared = BTreeMap::new();
        for var in &meta.variables {
            if !valid_variable_name(&var.name) {
                return Err(fail(format!("bad variable name {:?}", var.name)));
            }
            if declared.insert(var.name.as_str(), var).is_some() {
                return Err(fail(format!("variable {:?} declared twice", var.name)));
            }
            match (&var.default, var.required, var.kind) {
                (Some(_), _, VariableKind::Secret) => {
                    return Err(fail(format!(
                        "secret {:?} must not have a default",
                        var.name
                    )));
                }
                (Some(_), true, _) => {
                    return Err(fail(format!(
                        "required {:?} must not have a default",
                        var.name
                    )));
                }
                (None, false, _) => {
                    return Err(fail(format!("optional {:?} needs a default", var.name)));
                }
                (Some(default), false, _) => {
                    resolve(var, default)
                        .map_err(|e| fail(format!("default of {:?}: {e}", var.name)))?;
                }
                (None, true, _) => {}
            }
            if !var.kind.is_text() && (var.min_length.is_some() || var.max_length.is_some()) {
                return Err(fail(format!("{:?}: lengths apply to text only", var.name)));
            }
        }

        let root = parse_plist(xml.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let mut used = BTreeSet::new();
        scan(&root, "", "", &declared, &mut used).map_err(fail)?;
        let Value::Dictionary(root) = root else {
            return Err(fail("the plist root must be a dictionary".into()));
        };
        if let Some(unused) = declared.keys().find(|n| !used.contains(**n)) {
            return Err(fail(format!(
                "variable {unused:?} is declared but never used"
            )));
        }
        let payloads = root.get("PayloadContent").and_then(Value::as_array);
        let dicts = std::iter::once(&root).chain(
            payloads
                .into_iter()
                .flatten()
                .filter_map(Value::as_dictionary),
        );
        for dict in dicts {
            if dict.contains_key("PayloadUUID") {
                return Err(fail(
                    "templates must not set PayloadUUID; rendering derives it".into(),
                ));
            }
            if dict
                .get("PayloadIdentifier")
                .and_then(Value::as_string)
                .is_none()
            {
                return Err(fail(
                    "every payload needs a string PayloadIdentifier".into(),
                ));
            }
        }

        Ok(Template {
            name: name.to_owned(),
            description: meta.description,
            variables: meta.variables,
            notes: meta.notes,
            root,
        })
    }

    /// The declared variable called `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The outer `PayloadIdentifier` with its placeholders, e.g. `de.tafel.wifi.{{school_slug}}`.
    pub fn identifier_pattern(&self) -> &str {
        self.root
            .get("PayloadIdentifier")
            .and_then(Value::as_string)
            .unwrap_or_default()
    }

    /// `PayloadType` of each payload the template renders.
    pub fn payload_types(&self) -> Vec<&str> {
        self.root
            .get("PayloadContent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_dictionary()?.get("PayloadType")?.as_string())
            .collect()
    }

    /// The template's plist before substitution (for showing what it sets).
    pub fn plist(&self) -> &Dictionary {
        &self.root
    }

    /// Renders the profile as XML for these values.
    ///
    /// Checks that every value belongs to a declared variable, that required ones are
    /// given, and that each fits its kind; fills defaults; derives every `PayloadUUID` as
    /// UUIDv5 of (template name, non-secret values, payload identifier), so rendering
    /// again for the same school gives byte-identical output; and validates the result.
    pub fn render(
        &self,
        values: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Vec<u8>, ProfileError> {
        self.render_keyed(values, &|_| Ok(String::new()))
    }

    /// As [`Template::render`], with the secret values in the `PayloadUUID`s too, through
    /// `keyed` (a keyed digest, such as tafel's `SecretBox::fingerprint`): a new
    /// Wi-Fi password gives new UUIDs, so devices holding the old version are found and
    /// get the new one, while the UUIDs, which devices show, reveal nothing about it.
    pub fn render_keyed(
        &self,
        values: &BTreeMap<String, serde_json::Value>,
        keyed: &dyn Fn(&[u8]) -> Result<String, String>,
    ) -> Result<Vec<u8>, ProfileError> {
        let unknown: Vec<String> = values
            .keys()
            .filter(|k| self.variable(k).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ProfileError::UnknownVariables(unknown));
        }
        let missing: Vec<String> = self
            .variables
            .iter()
            .filter(|v| v.required && !values.contains_key(&v.name))
            .map(|v| v.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(ProfileError::MissingVariables(missing));
        }

        let mut resolved = BTreeMap::new();
        // Canonical form of the inputs, for the UUIDs: the secret ones only through `keyed`.
        let mut identity = BTreeMap::new();
        let mut secret = BTreeMap::new();
        for var in &self.variables {
            let Some(value) = values.get(&var.name).or(var.default.as_ref()) else {
                continue; // unreachable: required are checked above, optional have defaults
            };
            resolved.insert(var.name.as_str(), resolve(var, value)?);
            if var.kind == VariableKind::Secret {
                secret.insert(var.name.as_str(), value);
            } else {
                identity.insert(var.name.as_str(), value);
            }
        }
        let write = |e: serde_json::Error| ProfileError::Write(e.to_string());
        let mut identity = serde_json::to_string(&identity).map_err(write)?;
        if !secret.is_empty() {
            let digest = keyed(serde_json::to_string(&secret).map_err(write)?.as_bytes())
                .map_err(ProfileError::Write)?;
            if !digest.is_empty() {
                identity.push('\n');
                identity.push_str(&digest);
            }
        }

        let mut root = substitute(&Value::Dictionary(self.root.clone()), &resolved);
        if let Value::Dictionary(top) = &mut root {
            self.assign_uuid(top, "profile", &identity);
            if let Some(Value::Array(payloads)) = top.get_mut("PayloadContent") {
                for payload in payloads {
                    if let Value::Dictionary(p) = payload {
                        self.assign_uuid(p, "payload", &identity);
                    }
                }
            }
        }
        let bytes = to_xml(&root)?;
        validate_value(&root)?;
        Ok(bytes)
    }

    /// Sets `PayloadUUID` right after `PayloadIdentifier` (where people look for it).
    fn assign_uuid(&self, dict: &mut Dictionary, level: &str, identity: &str) {
        let identifier = dict
            .get("PayloadIdentifier")
            .and_then(Value::as_string)
            .unwrap_or_default();
        let name = format!(
            "tafel profile template\n{}\n{identity}\n{level}\n{identifier}",
            self.name
        );
        let uuid = Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes());
        let uuid = Value::String(uuid.hyphenated().to_string().to_uppercase());
        let mut out = Dictionary::new();
        for (k, v) in std::mem::take(dict) {
            let after = k == "PayloadIdentifier";
            out.insert(k, v);
            if after {
                out.insert("PayloadUUID".into(), uuid.clone());
            }
        }
        if !out.contains_key("PayloadUUID") {
            out.insert("PayloadUUID".into(), uuid);
        }
        *dict = out;
    }
}

/// Walks the template: placeholders only in values, all declared; secrets only whole and
/// outside `Payload*` keys. Records which variables are used.
fn scan(
    value: &Value,
    key: &str,
    path: &str,
    declared: &BTreeMap<&str, &Variable>,
    used: &mut BTreeSet<String>,
) -> Result<(), String> {
    match value {
        Value::Dictionary(dict) => {
            for (k, v) in dict {
                if k.contains("{{") {
                    return Err(format!("{path}: placeholder in key {k:?}"));
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                scan(v, k, &child, declared, used)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                scan(item, key, &format!("{path}[{i}]"), declared, used)?;
            }
        }
        Value::String(s) => {
            let segs = segments(s).map_err(|e| format!("{path}: {e}"))?;
            let whole = segs.len() == 1;
            for seg in &segs {
                let Segment::Var(name) = seg else { continue };
                let var = declared
                    .get(name)
                    .ok_or_else(|| format!("{path}: undeclared variable {name:?}"))?;
                if var.kind == VariableKind::Secret && (!whole || key.starts_with("Payload")) {
                    return Err(format!(
                        "{path}: secret {name:?} may only be a whole value outside Payload* keys"
                    ));
                }
                used.insert((*name).to_owned());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces placeholders in a copy of the tree (values were resolved for every name).
fn substitute(value: &Value, vars: &BTreeMap<&str, Resolved>) -> Value {
    match value {
        Value::Dictionary(dict) => Value::Dictionary(
            dict.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::String(s) => {
            // Checked at load time; a string that fails to split again stays as it is.
            let Ok(segs) = segments(s) else {
                return value.clone();
            };
            match segs.as_slice() {
                [Segment::Var(name)] => vars
                    .get(name)
                    .map_or_else(|| value.clone(), Resolved::to_plist),
                _ => {
                    let mut out = String::with_capacity(s.len());
                    for seg in &segs {
                        match seg {
                            Segment::Text(t) => out.push_str(t),
                            Segment::Var(name) => {
                                if let Some(v) = vars.get(name) {
                                    v.push_text(&mut out);
                                }
                            }
                        }
                    }
                    Value::String(out)
                }
            }
        }
        other => other.clone(),
    }
}

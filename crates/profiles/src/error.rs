//! The one error type of the profile catalog, and the per-key issues validation reports.
//!
//! Error policy: messages name the place (`PayloadContent[1].AutoJoin`) and the rule,
//! never a value a template marked secret. Validation collects every issue it finds
//! instead of stopping at the first, so an upload form can show them all at once.

use super::schema::KeyType;
use super::template::VariableKind;

/// Everything that can go wrong reading, checking, editing or rendering a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Larger than [`super::MAX_PROFILE_BYTES`].
    #[error("profile is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Zero bytes.
    #[error("profile is empty")]
    Empty,
    /// Starts like DER (a CMS `SignedData`): the caller must unwrap it first.
    #[error("profile looks CMS-signed; unwrap the signature before validating")]
    Signed,
    /// Neither an XML nor a binary property list.
    #[error("not a property list: {0}")]
    Malformed(String),
    /// Nesting beyond [`super::parse::MAX_DEPTH`] (a guard against stack exhaustion).
    #[error("property list nests deeper than {0} levels")]
    TooDeep(usize),
    /// More values than [`super::parse::MAX_VALUES`] (binary plists can reuse objects,
    /// so a small file could otherwise expand to billions of values).
    #[error("property list holds more than {0} values")]
    TooManyValues(usize),
    /// `IsEncrypted` profiles are encrypted to one device; there is nothing to check.
    #[error("encrypted profiles are not supported")]
    Encrypted,
    /// The profile breaks one or more rules; each issue names its path.
    #[error("invalid profile: {}", join_issues(.0))]
    Invalid(Vec<Issue>),
    /// A template file or its metadata is unusable.
    #[error("template {template:?}: {message}")]
    Template {
        /// Template name.
        template: String,
        /// What is wrong, with the path inside the template where it applies.
        message: String,
    },
    /// Required variables without a value.
    #[error("missing required variable(s): {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    /// Values for variables the template does not declare.
    #[error("unknown variable(s): {}", .0.join(", "))]
    UnknownVariables(Vec<String>),
    /// A value of the wrong JSON type for the variable's kind.
    #[error("variable {name:?} must be {}", .expected.describe())]
    VariableType {
        /// Variable name.
        name: String,
        /// Its kind.
        expected: VariableKind,
    },
    /// A value of the right type that breaks the variable's rules (empty, too long, ...).
    #[error("variable {name:?}: {reason}")]
    VariableValue {
        /// Variable name.
        name: String,
        /// The rule it breaks (never the value itself).
        reason: String,
    },
    /// No built-in template of that name.
    #[error("no template named {0:?}")]
    NoSuchTemplate(String),
    /// Serialising the plist failed (should not happen for values built here).
    #[error("could not write property list: {0}")]
    Write(String),
}

fn join_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One broken rule at one place in the profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct Issue {
    /// Where: `PayloadContent[1].PayloadType`, or `(root)` for the outer value.
    pub path: String,
    /// What.
    pub problem: Problem,
}

/// The rule an [`Issue`] breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A required key is absent.
    #[error("required key is missing")]
    Missing,
    /// The value has another plist type than the schema says.
    #[error("must be {expected}, found {found}")]
    WrongType {
        /// What the schema says.
        expected: KeyType,
        /// What the profile has.
        found: &'static str,
    },
    /// A `PayloadType` that Apple's schema does not define.
    #[error("unknown payload type {0:?}")]
    UnknownPayloadType(String),
    /// The outer `PayloadType` is not `Configuration`.
    #[error("must be \"Configuration\", found {0:?}")]
    NotConfiguration(String),
    /// The outer `PayloadVersion` is not 1.
    #[error("must be 1, found {0}")]
    WrongVersion(String),
    /// An empty string where a value is needed.
    #[error("must not be empty")]
    Empty,
    /// Not a reverse-DNS-style identifier.
    #[error(
        "{0:?} is not a reverse-DNS identifier (dot-separated labels of letters, digits, '-', '_')"
    )]
    NotReverseDns(String),
    /// Not a UUID in the 8-4-4-4-12 form.
    #[error("{0:?} is not a UUID (8-4-4-4-12 hex digits)")]
    NotUuid(String),
    /// The same `PayloadUUID` twice in one profile.
    #[error("PayloadUUID {uuid} is used twice (first at {first})")]
    DuplicateUuid {
        /// The UUID.
        uuid: String,
        /// Path of its first use.
        first: String,
    },
    /// The same payload `PayloadIdentifier` twice in one profile.
    #[error("PayloadIdentifier {identifier:?} is used twice (first at {first})")]
    DuplicateIdentifier {
        /// The identifier.
        identifier: String,
        /// Path of its first use.
        first: String,
    },
}

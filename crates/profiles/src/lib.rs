//! Configuration profiles: validating uploads against Apple's schema, rendering the
//! built-in templates per school, and the small edits the catalog makes.
//!
//! Pure logic over bytes and plist values: no I/O, no database, no HTTP. The schema
//! tables in `known.rs` are generated from Apple's `mdm/profiles/*.yaml` by
//! `tools/gen_known.py`; the templates live in `profiles/` at the repository root and
//! are compiled in with `include_str!`.

mod edit;
mod error;
#[rustfmt::skip]
mod known;
mod parse;
pub mod schema;
mod template;
mod validate;

#[cfg(test)]
mod tests;

pub use edit::{profile_identifier, same_content, with_payload_uuid, with_removal_disallowed};
pub use error::{Issue, Problem, ProfileError};
pub use parse::{MAX_DEPTH, MAX_PROFILE_BYTES, MAX_VALUES};
pub use template::{builtin_template, builtin_templates, Template, Variable, VariableKind};
pub use validate::{is_reverse_dns, validate_profile, validate_value, ProfileInfo};

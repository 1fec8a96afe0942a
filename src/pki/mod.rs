//! Public-key infrastructure: tafel's own CA, CMS signatures and envelopes, SCEP messages, key files.
//!
//! Error policy: every fallible function returns [`PkiError`], except
//! [`scep::parse_request`], whose [`ScepError`] also says how to answer the
//! device. Input that a device or operator sent us and that we cannot parse is
//! `Malformed`; a signature that does not match is `BadSignature`; a
//! certificate that does not chain to our CA is `UntrustedCertificate` (or
//! `Expired` / `NotYetValid`).
//! All `unsafe` code lives in `ffi.rs`.

pub mod ca;
pub mod cms;
pub mod error;
pub(crate) mod ffi;
pub mod files;
pub mod scep;

pub use ca::{sha256_fingerprint, CertificateAuthority};
pub use error::{PkiError, Result};
pub use scep::ScepError;
pub mod store;

pub use files::{check_key_permissions, write_key_file};

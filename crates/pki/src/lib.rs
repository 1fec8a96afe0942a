//! Public-key infrastructure: tafel's own CA, CMS signatures and envelopes, SCEP messages,
//! key files. Pure: no database, no HTTP; the certificate directory and its lifecycle
//! live in the server crate (`tafel::pki::store`, `tafel::pki::lifecycle`).
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
/// The few OpenSSL calls the `openssl` crate lacks; other tafel crates that read CMS
/// and PKCS#7 structures use them too.
pub mod ffi;
pub mod files;
pub mod known;
pub mod scep;

pub use ca::{sha256_fingerprint, CertificateAuthority};
pub use error::{PkiError, Result};
pub use files::{check_key_permissions, write_key_file};
pub use scep::ScepError;

/// The keys tafel certifies for devices: RSA of 2048 to 4096 bits, or EC on P-256 or
/// P-384 (what iOS generates, and what stays safe and cheap to verify). Anything else
/// is refused with the reason.
pub fn key_policy<T: openssl::pkey::HasPublic>(
    key: &openssl::pkey::PKeyRef<T>,
) -> std::result::Result<(), String> {
    use openssl::nid::Nid;
    use openssl::pkey::Id;
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if (2048..=4096).contains(&bits) {
                Ok(())
            } else {
                Err(format!("RSA keys must have 2048 to 4096 bits, not {bits}"))
            }
        }
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1) => Ok(()),
                other => Err(format!(
                    "EC keys must be on P-256 or P-384, not {}",
                    other
                        .and_then(|n| n.short_name().ok())
                        .unwrap_or("an unnamed curve")
                )),
            }
        }
        other => Err(format!("{other:?} keys are not accepted: use RSA or EC")),
    }
}

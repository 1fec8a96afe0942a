//! Push notifications: the MDM push certificate, the APNs HTTP/2 client and the
//! per-device coalescer that keeps a burst of commands to one wake-up.
//!
//! Error policy: loading a certificate or building the client returns
//! [`PushError`]; a push itself never fails with an error but reports a
//! [`PushOutcome`] that tells the caller whether to retry, forget the token or
//! give up.

pub mod apns;
pub mod cert;
pub mod coalesce;
pub mod error;
pub mod request;
pub mod trust;

pub use apns::{ApnsClient, ApnsConfig, PushOutcome};
pub use cert::PushCertificate;
pub use coalesce::Coalescer;
pub use error::{PushError, Result};
pub use request::CertificateRequest;
pub use trust::PushTrust;

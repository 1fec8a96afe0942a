//! Public-key infrastructure: the pure parts (CA, CMS, SCEP messages, key files) are the
//! `tafel-pki` crate, re-exported here; the certificate directory ([`store`]) and the
//! certificates' lifecycle ([`lifecycle`]) need the server's secrets and device
//! identities and stay here.

pub use tafel_pki::*;

pub mod lifecycle;
pub mod store;

//! Push notifications. The certificate, the APNs client and the coalescer are the
//! `tafel-apple` crate's [`tafel_apple::push`], re-exported here; who is pushed when,
//! and what the answers mean for each device ([`service`]), the stored push
//! certificates ([`store`]) and the requests waiting for Apple's certificate
//! ([`requests`]) live here.

pub use tafel_apple::push::*;

pub mod requests;
pub mod service;
pub mod store;

pub use service::{PushResult, PushService};

//! Automated Device Enrollment. The Apple School Manager client (server token, OAuth
//! session, device sync, profiles, machine info) is the `tafel-apple` crate's
//! [`tafel_apple::ade`], re-exported here; what tafel does with it lives here: the
//! synced devices and server tokens ([`service`]), schools' ADE settings and placement
//! rules ([`school`]), and where an iPad in Setup Assistant enrolls ([`enroll`]).

pub use tafel_apple::ade::*;

pub mod enroll;
pub mod school;
pub mod service;

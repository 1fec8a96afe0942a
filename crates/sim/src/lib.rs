//! Device simulator: iPads with real keys and certificates that speak the MDM protocol
//! over HTTP exactly as a real one does (signed bodies, check-ins, command answers).

pub mod ade;
pub mod apns;
pub mod bench;
pub mod connect;
pub mod device;
pub mod enroll;
pub mod runner;
pub mod server_token;
pub mod setup;
pub mod vpp;
pub mod webhook;

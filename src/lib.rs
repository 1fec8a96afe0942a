//! tafel: an Apple MDM server for the central school-IT team of a district.
//!
//! The two doors are [`mdm`] (devices) and [`api`] (people, with the [`web`] console); the domain modules between
//! them never import the HTTP layer. The pure leaves are crates of their own (see
//! `docs/architecture.md`): storage, the MDM protocol, the PKI, schedules, profiles and Apple's
//! service clients; they are re-exported under their old paths so that `crate::protocol`,
//! `crate::vpp` and the others read as before.

pub mod accounts;
pub mod actions;
pub mod ade;
pub mod api;
pub mod assign;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod devices;
pub mod edge;
pub mod enrollment;
pub mod error;
pub mod export;
pub mod fuzz_targets;
pub mod health;
pub mod inventory;
pub mod lessons;
pub mod licences;
pub mod mdm;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod org;
pub mod paging;
pub mod patch;
pub mod pki;
pub mod push;
pub mod queue;
pub mod reports;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod time;
pub mod web;

pub use tafel_apple::vpp;
pub use tafel_db as db;
pub use tafel_db::{text_enum, text_sql, with_backend};
pub use tafel_protocol as protocol;

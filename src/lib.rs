//! tafel: an Apple MDM server for the central school-IT team of a district.
//!
//! The two doors are [`mdm`] (devices) and [`api`] (people); the domain modules between
//! them never import the HTTP layer, and [`protocol`] is pure data.

pub mod accounts;
pub mod ade;
pub mod api;
pub mod assign;
pub mod audit;
pub mod bench;
pub mod catalog;
pub mod config;
pub mod db;
pub mod devices;
pub mod enrollment;
pub mod error;
pub mod fuzz_targets;
pub mod inventory;
pub mod lessons;
pub mod licences;
pub mod mdm;
pub mod notify;
pub mod org;
pub mod paging;
pub mod pki;
pub mod protocol;
pub mod push;
pub mod queue;
pub mod secrets;
pub mod sim;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod time;
pub mod vpp;

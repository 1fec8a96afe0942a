//! Apple's Apps and Books (formerly VPP) licences: the content token a school
//! authority uploads, and the v2 API client that associates device-assigned
//! licences with serial numbers before tafel installs an app.
//!
//! Apple's documentation: Device Management → "App and Book Management"
//! (`https://vpp.itunes.apple.com/mdm/v2/…`). Error numbers and batch limits
//! are documented in [`error::codes`] and [`types::BatchLimits`].

pub mod client;
pub mod error;
pub mod token;
pub mod types;

pub use client::{RetryPolicy, VppClient, APPLE_BASE_URL};
pub use error::VppError;
pub use token::{ContentToken, TokenError};
pub use types::{
    Asset, AssetRef, AssetsPage, Assignment, AssignmentFilter, AssignmentsPage, BatchLimits,
    ClientConfig, ClientConfigRequest, ErrorInfo, EventFailure, EventId, EventState, EventStatus,
    MdmInfo, ServiceConfig,
};

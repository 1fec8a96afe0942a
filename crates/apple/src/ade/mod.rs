//! Automated Device Enrollment: the Apple School Manager "device assignment"
//! web service (`https://mdmenrollment.apple.com`, formerly DEP).
//!
//! [`token`] makes the key pair the admin uploads to Apple School Manager and
//! opens the server token (`.p7m`) that comes back; [`oauth`] signs the one
//! OAuth 1.0a request that turns that token into a session; [`client`] speaks
//! the JSON API (account, device fetch/sync, profiles).
//!
//! Error policy: every call returns [`AdeError`]. The variants a caller must
//! act on are [`AdeError::TermsNotSigned`] (an admin has to accept Apple's new
//! terms in Apple School Manager), [`AdeError::TokenInvalid`] (upload a new
//! server token) and [`AdeError::CursorExpired`] (fall back to a full fetch;
//! [`AdeClient::sync_all`] already does). Throttling (429/503) and an expired
//! session are handled inside the client.

pub mod client;
pub mod error;
pub mod machine_info;
pub mod oauth;
pub mod token;

pub use client::{
    Account, AccountUrl, AdeClient, AssignResult, Device, DevicesPage, OpType, Profile,
    ProfileResponse, ProfileStatus, RetryPolicy, SyncResult, UrlLimit, DEFAULT_BASE_URL,
    DEFAULT_PROTOCOL_VERSION,
};
pub use error::{AdeError, Result};
pub use oauth::OAuthProblem;
pub use token::{decrypt_server_token, new_token_keypair, OAuthTokens};

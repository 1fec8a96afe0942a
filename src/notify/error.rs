//! The error types of the `notify` module.

use crate::pki::PkiError;

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The secret file is missing, unreadable, too open or too short.
    #[error("webhook secret: {0}")]
    Secret(#[from] PkiError),
    /// The HTTP client could not be built.
    #[error("webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// An event name that cannot be sent (it travels in an HTTP header).
#[derive(Debug, thiserror::Error)]
#[error("invalid webhook event name {0:?}: use 1 to 100 letters, digits, '.', '_' or '-'")]
pub struct InvalidEvent(pub String);

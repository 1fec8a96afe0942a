//! The one error type of the Automated Device Enrollment client.

use std::time::Duration;

/// Result with [`AdeError`].
pub type Result<T, E = AdeError> = std::result::Result<T, E>;

/// Why a call to Apple's device assignment service (or reading a server token) failed.
#[derive(Debug, thiserror::Error)]
pub enum AdeError {
    /// The organization has not accepted Apple's latest terms and conditions
    /// (HTTP 403 `T_C_NOT_SIGNED`). Nothing works until an administrator does.
    #[error(
        "Apple School Manager refuses requests until the latest terms and conditions are \
         accepted (T_C_NOT_SIGNED): an administrator must sign in to school.apple.com and \
         accept them"
    )]
    TermsNotSigned,
    /// The server token was rejected: expired, revoked, replaced by a newer
    /// download, or the MDM server was deleted in Apple School Manager
    /// (401 on `/session`, 403 `ACCESS_DENIED`, a session refused right after renewal).
    #[error(
        "the Automated Device Enrollment server token was rejected ({reason}): download a \
         new token for this MDM server from Apple School Manager and upload it to tafel"
    )]
    TokenInvalid {
        /// Apple's reason, e.g. `token_expired`, `token_rejected`, `ACCESS_DENIED`.
        reason: String,
    },
    /// A sync cursor Apple no longer accepts (400 `EXPIRED_CURSOR` after 7 days,
    /// or `INVALID_CURSOR`): do a full fetch.
    #[error("the device sync cursor is no longer valid ({code}); a full fetch is needed")]
    CursorExpired {
        /// `EXPIRED_CURSOR` or `INVALID_CURSOR`.
        code: String,
    },
    /// Apple does not know the profile UUID a profile was to be assigned with (404 on
    /// `POST /profile/devices`): it has to be defined again.
    #[error(
        "Apple School Manager no longer knows the enrollment profile {profile_uuid}; it has \
         to be defined again"
    )]
    ProfileNotFound {
        /// The UUID Apple did not find.
        profile_uuid: String,
    },
    /// A fetch cursor that already returned every device (400 `EXHAUSTED_CURSOR`).
    #[error("the device fetch cursor is exhausted (EXHAUSTED_CURSOR); use it to sync instead")]
    CursorExhausted,
    /// Still throttled (429) or unavailable (503) after the bounded retries.
    #[error("Apple answered {status} {times} times in a row; giving up for now")]
    Throttled {
        /// The last status, 429 or 503.
        status: u16,
        /// How many answers were throttled.
        times: u32,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Any other unsuccessful answer.
    #[error("Apple answered HTTP {code}: {body}")]
    Status {
        /// HTTP status.
        code: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request did not get an answer (DNS, TLS, timeout, connection).
    #[error("request to Apple failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A successful answer whose body is not what the API documents.
    #[error("unexpected response body from {path}: {source}")]
    Decode {
        /// The API path.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// An answer that breaks the protocol (e.g. a cursor that does not advance).
    #[error("Apple's answer broke the protocol: {0}")]
    Protocol(String),
    /// The base URL is not an absolute http(s) URL.
    #[error("invalid base URL {0:?}")]
    BaseUrl(String),
    /// The server token file could not be read or decrypted.
    #[error("server token: {0}")]
    TokenFile(String),
    /// OpenSSL failed (key generation, certificate, CMS).
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

impl AdeError {
    /// Whether an administrator has to act in Apple School Manager (terms or token).
    pub fn needs_admin(&self) -> bool {
        matches!(
            self,
            AdeError::TermsNotSigned | AdeError::TokenInvalid { .. }
        )
    }
}

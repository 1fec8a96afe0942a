//! Errors of the Apps and Books client, and how Apple's error bodies
//! (`{"errorNumber": 9621, "errorMessage": "…"}`) map onto them.
//!
//! Policy: token problems ([`VppError::TokenExpired`], [`VppError::TokenRevoked`],
//! [`VppError::TokenInvalid`]) are final and never retried — a content manager
//! has to upload a new token. Rate limits and server errors are retried inside
//! the client; what reaches the caller has already exhausted its attempts.
//! Any Apple number without a variant of its own becomes [`VppError::Status`]
//! with the number kept.

use std::time::Duration;

use super::types::{EventId, EventStatus, MdmInfo};

/// Apple's error numbers that tafel acts on.
///
/// Source: Apple Device Management documentation, "Handling error responses"
/// (App and Book Management v2: synchronous numbers with their HTTP status,
/// asynchronous numbers seen in `StatusResponse.failures`), and the legacy
/// "Interpreting error codes" table for 9622 and 9610.
pub mod codes {
    /// 401 "Login required."
    pub const LOGIN_REQUIRED: i64 = 9601;
    /// 400 "Invalid argument."
    pub const INVALID_ARGUMENT: i64 = 9602;
    /// 500 "Internal error." — Apple: send the request again.
    pub const INTERNAL_ERROR: i64 = 9603;
    /// Legacy "License not found." (v1 only; v2 uses 9709).
    pub const LICENSE_NOT_FOUND_LEGACY: i64 = 9610;
    /// 401 "The token has expired."
    pub const TOKEN_EXPIRED: i64 = 9621;
    /// 401 "Invalid authentication token." (legacy table; still sent for a wrong token).
    pub const INVALID_TOKEN: i64 = 9622;
    /// 401 "The server has revoked the sToken."
    pub const TOKEN_REVOKED: i64 = 9625;
    /// Maintenance mode, try again later.
    pub const MAINTENANCE: i64 = 9644;
    /// 429 "There are too many requests for the current organization" — back off.
    pub const TOO_MANY_REQUESTS: i64 = 9646;
    /// 400 page index out of range.
    pub const BAD_PAGE_INDEX: i64 = 9650;
    /// 400 more `assets` than `maxAssets`.
    pub const TOO_MANY_ASSETS: i64 = 9700;
    /// 400 more `serialNumbers` than `maxSerialNumbers`.
    pub const TOO_MANY_SERIAL_NUMBERS: i64 = 9702;
    /// 400 duplicate `assets`.
    pub const DUPLICATE_ASSETS: i64 = 9703;
    /// 400 duplicate `serialNumbers`.
    pub const DUPLICATE_SERIAL_NUMBERS: i64 = 9705;
    /// 400 the asset is not device-assignable.
    pub const NOT_DEVICE_ASSIGNABLE: i64 = 9707;
    /// 400 unknown `eventId`.
    pub const EVENT_NOT_FOUND: i64 = 9708;
    /// Asynchronous: "There aren't enough assets available to complete this association."
    pub const NOT_ENOUGH_ASSETS: i64 = 9709;
    /// 400 no asset in the request.
    pub const MISSING_ASSETS: i64 = 9718;
    /// 400 neither `clientUserIds` nor `serialNumbers`.
    pub const MISSING_TARGETS: i64 = 9719;
    /// 401 the `Authorization` header is not `Bearer {sToken}`.
    pub const BAD_AUTHORIZATION_HEADER: i64 = 9722;
    /// 415 unsupported `Content-Type`.
    pub const UNSUPPORTED_CONTENT_TYPE: i64 = 9727;
    /// 503 "The service is temporarily unavailable."
    pub const UNAVAILABLE: i64 = 9729;
}

/// Everything that can go wrong talking to Apple's Apps and Books API.
#[derive(Debug, thiserror::Error)]
pub enum VppError {
    /// The request did not complete (connection, TLS, timeout, body read).
    #[error("HTTP request to Apps and Books failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The token has expired (9621): a new one must be uploaded.
    #[error("the content token has expired: {message}")]
    TokenExpired {
        /// Apple's message.
        message: String,
    },
    /// The token has been revoked (9625), e.g. after a new token was generated.
    #[error("the content token has been revoked: {message}")]
    TokenRevoked {
        /// Apple's message.
        message: String,
    },
    /// Apple does not accept the token (9601, 9622, 9722, or a bare 401).
    #[error("the content token was refused{}: {message}", apple_number(*.error_number))]
    TokenInvalid {
        /// Apple's number, when it sent one.
        error_number: Option<i64>,
        /// Apple's message or the response body.
        message: String,
    },
    /// Still rate limited (429 / 9646) after the allowed attempts, or Apple
    /// asked for a longer pause than the client may wait.
    #[error("Apps and Books is limiting the requests of this location{}", wait_words(*.retry_after))]
    RateLimited {
        /// Apple's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// Any other refusal: an HTTP error status, or an Apple error number
    /// without a variant of its own (also on a 200, which Apple sends for some errors).
    #[error("Apps and Books answered HTTP {code}{}: {message}", apple_number(*.error_number))]
    Status {
        /// HTTP status.
        code: u16,
        /// Apple's `errorNumber`, when the body had one.
        error_number: Option<i64>,
        /// Apple's `errorMessage`, or the start of the body.
        message: String,
    },
    /// A 2xx answer that is not the JSON the endpoint documents.
    #[error("unexpected answer from {endpoint}: {detail}")]
    Malformed {
        /// The path asked.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// Another MDM has written its identity into the token's client config.
    #[error("the location is managed by another MDM: {} ({})", .0.name, .0.id)]
    OtherMdm(Box<MdmInfo>),
    /// The data kept changing while the client paged through it.
    #[error("{endpoint} changed on every one of {attempts} walks through its pages")]
    DataChanged {
        /// The path paged.
        endpoint: String,
        /// Walks tried.
        attempts: u32,
    },
    /// An event was still pending when the caller stopped waiting.
    #[error("event {event_id} still pending after waiting")]
    EventPending {
        /// The event.
        event_id: EventId,
        /// Its last status.
        last: Box<EventStatus>,
    },
    /// The base URL given to the client is not a URL.
    #[error("the Apps and Books address '{0}' is not a URL")]
    BaseUrl(String),
}

impl VppError {
    /// True when the token itself is the problem: tell the content manager, do not retry.
    pub fn is_token_problem(&self) -> bool {
        matches!(
            self,
            VppError::TokenExpired { .. }
                | VppError::TokenRevoked { .. }
                | VppError::TokenInvalid { .. }
        )
    }

    /// Apple's error number, when the error came with one.
    pub fn error_number(&self) -> Option<i64> {
        match self {
            VppError::TokenExpired { .. } => Some(codes::TOKEN_EXPIRED),
            VppError::TokenRevoked { .. } => Some(codes::TOKEN_REVOKED),
            VppError::TokenInvalid { error_number, .. } | VppError::Status { error_number, .. } => {
                *error_number
            }
            _ => None,
        }
    }

    /// Whether the client retries this answer: rate limits, 5xx, and Apple's
    /// "try again" numbers. Never token problems.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            VppError::RateLimited { .. } => true,
            VppError::Status {
                code, error_number, ..
            } => {
                *code >= 500
                    || matches!(
                        error_number,
                        Some(codes::INTERNAL_ERROR | codes::MAINTENANCE | codes::UNAVAILABLE)
                    )
            }
            _ => false,
        }
    }
}

/// " (Apple error 9709)", or nothing when Apple sent no number: messages are read by
/// people, so no `Some(..)`.
fn apple_number(number: Option<i64>) -> String {
    number.map_or_else(String::new, |n| format!(" (Apple error {n})"))
}

/// How long Apple asked to wait, in words.
fn wait_words(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; Apple asks to wait {} seconds", wait.as_secs()),
        None => "; try again later".to_owned(),
    }
}

/// Longest body excerpt kept in an error.
const BODY_EXCERPT: usize = 512;

/// Maps an answer to an error, or `None` when it is a success. Apple sometimes
/// answers 200 with an error body (Fleet saw this for invalid tokens), so the
/// body is checked whatever the status.
pub(crate) fn answer_error(
    status: u16,
    body: Option<&serde_json::Value>,
    raw: &[u8],
) -> Option<VppError> {
    let apple = body.and_then(apple_error);
    if let Some((number, message)) = apple {
        return Some(match number {
            Some(codes::TOKEN_EXPIRED) => VppError::TokenExpired { message },
            Some(codes::TOKEN_REVOKED) => VppError::TokenRevoked { message },
            Some(
                codes::LOGIN_REQUIRED | codes::INVALID_TOKEN | codes::BAD_AUTHORIZATION_HEADER,
            ) => VppError::TokenInvalid {
                error_number: number,
                message,
            },
            Some(codes::TOO_MANY_REQUESTS) => VppError::RateLimited { retry_after: None },
            _ if status == 429 => VppError::RateLimited { retry_after: None },
            _ if status == 401 => VppError::TokenInvalid {
                error_number: number,
                message,
            },
            _ => VppError::Status {
                code: status,
                error_number: number,
                message,
            },
        });
    }
    if (200..300).contains(&status) {
        return None;
    }
    let message = excerpt(raw);
    Some(match status {
        401 => VppError::TokenInvalid {
            error_number: None,
            message,
        },
        429 => VppError::RateLimited { retry_after: None },
        _ => VppError::Status {
            code: status,
            error_number: None,
            message,
        },
    })
}

/// `(errorNumber, errorMessage)` when the body is an Apple error.
fn apple_error(body: &serde_json::Value) -> Option<(Option<i64>, String)> {
    let object = body.as_object()?;
    let number = object.get("errorNumber").and_then(|n| {
        n.as_i64()
            .or_else(|| n.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let message = object
        .get("errorMessage")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // `errorNumber: 0` with no message is how some APIs say "no error".
    (number.is_some_and(|n| n != 0) || !message.is_empty()).then_some((number, message))
}

fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(status: u16, body: serde_json::Value) -> Option<VppError> {
        let raw = body.to_string();
        answer_error(status, Some(&body), raw.as_bytes())
    }

    #[test]
    fn token_numbers_map_to_token_errors_whatever_the_status() {
        assert!(matches!(
            classify(401, json!({"errorNumber": 9621, "errorMessage": "expired"})),
            Some(VppError::TokenExpired { .. })
        ));
        assert!(matches!(
            classify(401, json!({"errorNumber": 9625})),
            Some(VppError::TokenRevoked { .. })
        ));
        // Apple has answered 200 with an error body for a wrong token.
        let error = classify(200, json!({"errorNumber": 9622, "errorMessage": "Invalid"}));
        assert!(matches!(
            error,
            Some(VppError::TokenInvalid {
                error_number: Some(9622),
                ..
            })
        ));
        assert!(error.is_some_and(|e| e.is_token_problem() && !e.is_retryable()));
    }

    #[test]
    fn rate_limits_and_server_errors_are_retryable() {
        let limited = classify(429, json!({"errorNumber": 9646})).unwrap();
        assert!(matches!(limited, VppError::RateLimited { .. }));
        assert!(limited.is_retryable());
        let internal = classify(500, json!({"errorNumber": 9603})).unwrap();
        assert!(internal.is_retryable());
        let html = answer_error(502, None, b"<html>Bad Gateway</html>").unwrap();
        assert!(matches!(html, VppError::Status { code: 502, .. }));
        assert!(html.is_retryable());
    }

    #[test]
    fn unknown_numbers_become_status_and_successes_pass() {
        let error = classify(
            400,
            json!({"errorNumber": 9702, "errorMessage": "too many"}),
        )
        .unwrap();
        assert_eq!(error.error_number(), Some(9702));
        assert!(matches!(error, VppError::Status { code: 400, .. }));
        assert!(!error.is_retryable());
        assert!(classify(200, json!({"eventId": "e"})).is_none());
        assert!(classify(200, json!({"errorNumber": 0})).is_none());
        assert!(matches!(
            answer_error(401, None, b""),
            Some(VppError::TokenInvalid {
                error_number: None,
                ..
            })
        ));
    }

    #[test]
    fn messages_are_words_without_debug_formatting() {
        let errors = [
            VppError::RateLimited { retry_after: None },
            VppError::RateLimited {
                retry_after: Some(Duration::from_secs(5)),
            },
            classify(
                400,
                json!({"errorNumber": 9709, "errorMessage": "not enough"}),
            )
            .unwrap(),
            answer_error(502, None, b"Bad Gateway").unwrap(),
            classify(401, json!({"errorNumber": 9622, "errorMessage": "Invalid"})).unwrap(),
            answer_error(401, None, b"").unwrap(),
            VppError::BaseUrl("nope".into()),
        ];
        for error in errors {
            let text = error.to_string();
            for leak in ["Some(", "None", "\"", "retry after"] {
                assert!(!text.contains(leak), "{leak} in {text}");
            }
        }
        assert_eq!(
            classify(
                400,
                json!({"errorNumber": 9709, "errorMessage": "not enough"})
            )
            .unwrap()
            .to_string(),
            "Apps and Books answered HTTP 400 (Apple error 9709): not enough"
        );
        assert_eq!(
            VppError::RateLimited {
                retry_after: Some(Duration::from_secs(5))
            }
            .to_string(),
            "Apps and Books is limiting the requests of this location; Apple asks to wait 5 seconds"
        );
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = "x".repeat(5000);
        let Some(VppError::Status { message, .. }) = answer_error(500, None, long.as_bytes())
        else {
            panic!("expected a status error");
        };
        assert!(message.chars().count() <= BODY_EXCERPT + 1);
    }
}

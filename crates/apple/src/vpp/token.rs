//! The content token (`.vpptoken`) a content manager downloads from Apple School
//! Manager: parsed once at upload, then used as the bearer of every API call.
//!
//! The file is base64 of `{"token": "...", "expDate": "2030-11-08T22:33:22+0000",
//! "orgName": "..."}`. The *whole* base64 string (not the inner `token` field) is
//! what Apple expects after `Authorization: Bearer` — Apple's "Managing apps and
//! books through web services" article passes the cToken as downloaded, and
//! Fleet and Zentral both send the file contents unchanged.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::types::parse_apple_date;

/// Standard alphabet; padding optional, because tokens pasted by hand lose it.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an uploaded token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file is empty (or only whitespace).
    #[error("the token file is empty")]
    Empty,
    /// The file is not base64.
    #[error("the token file is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded bytes are not the expected JSON object.
    #[error("the token file does not hold the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `expDate` is not a date Apple writes.
    #[error("the token's expDate '{0}' is not a date")]
    Date(String),
    /// A required field is empty.
    #[error("the token file has an empty {0}")]
    MissingField(&'static str),
    /// The token has already expired.
    #[error("the token expired at {expired_at}")]
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
}

/// The decoded JSON inside the file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFile {
    token: String,
    exp_date: String,
    org_name: String,
}

/// A parsed, unexpired content token for one Apple School Manager location.
///
/// `Debug` never prints the secret; use [`ContentToken::bearer`] to send it.
#[derive(Clone)]
pub struct ContentToken {
    bearer: String,
    expires_at: DateTime<Utc>,
    org_name: String,
}

impl ContentToken {
    /// Parses the contents of an uploaded `.vpptoken` file, refusing an expired one.
    pub fn parse(file_contents: &str) -> Result<Self, TokenError> {
        Self::parse_at(file_contents, Utc::now())
    }

    /// [`ContentToken::parse`] with the clock given, for tests.
    pub fn parse_at(file_contents: &str, now: DateTime<Utc>) -> Result<Self, TokenError> {
        // Browsers and editors add newlines; the bearer is the base64 text alone.
        let bearer: String = file_contents
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if bearer.is_empty() {
            return Err(TokenError::Empty);
        }
        let json = LENIENT_BASE64.decode(bearer.as_bytes())?;
        let file: TokenFile = serde_json::from_slice(&json)?;
        if file.token.trim().is_empty() {
            return Err(TokenError::MissingField("token"));
        }
        let expires_at = parse_apple_date(&file.exp_date).ok_or(TokenError::Date(file.exp_date))?;
        if expires_at <= now {
            return Err(TokenError::Expired {
                expired_at: expires_at,
            });
        }
        Ok(Self {
            bearer,
            expires_at,
            org_name: file.org_name,
        })
    }

    /// The value to send after `Authorization: Bearer ` (the whole token file).
    pub fn bearer(&self) -> &str {
        &self.bearer
    }

    /// When Apple stops accepting the token.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The organisation named in the token.
    pub fn org_name(&self) -> &str {
        &self.org_name
    }

    /// True when the token expires within `days` days from now (or already has):
    /// time to ask the content manager for a new one.
    pub fn expires_within(&self, days: i64) -> bool {
        self.expires_within_at(days, Utc::now())
    }

    /// [`ContentToken::expires_within`] with the clock given.
    pub fn expires_within_at(&self, days: i64, now: DateTime<Utc>) -> bool {
        let window = TimeDelta::try_days(days).unwrap_or(TimeDelta::MAX);
        match now.checked_add_signed(window) {
            Some(horizon) => self.expires_at <= horizon,
            None => true,
        }
    }
}

impl fmt::Debug for ContentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("org_name", &self.org_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    fn file(json: &str) -> String {
        STANDARD.encode(json)
    }

    const GOOD: &str =
        r#"{"token":"VFdwQmVV","expDate":"2027-03-14T09:30:00+0000","orgName":"Schulamt Nord"}"#;

    #[test]
    fn parses_apples_file_and_keeps_the_whole_file_as_bearer() {
        let contents = format!("{}\n", file(GOOD));
        let token = ContentToken::parse_at(&contents, now()).unwrap();
        assert_eq!(token.org_name(), "Schulamt Nord");
        assert_eq!(
            token.expires_at(),
            Utc.with_ymd_and_hms(2027, 3, 14, 9, 30, 0).unwrap()
        );
        assert_eq!(token.bearer(), contents.trim());
    }

    #[test]
    fn accepts_apples_sample_token_from_the_docs() {
        // From Apple's "Managing apps and books through web services" article.
        let sample = "ewogICAgInRva2VuIjogIlZGZHdRbVZWTVZSUldGSktVbGRTTlZkc1pHcGpNR3hIVTI1Q2FrMXRhRzlhUjJ3eldqRkdkVk50ZUd0VFJrWjZVMVZhVDJGSFRuUlNiVGxOVVRCS1ExcEdhRTlOUjBaWVRrUXdQUT09IiwKICAgICJleHBEYXRlIjogIjIwMzAtMTEtMDhUMjI6MzM6MjIrMDAwMCIsCiAgICAib3JnTmFtZSI6ICJPUkcxMjM0NSIKfQ==";
        let token = ContentToken::parse_at(sample, now()).unwrap();
        assert_eq!(token.org_name(), "ORG12345");
        assert_eq!(
            token.expires_at(),
            Utc.with_ymd_and_hms(2030, 11, 8, 22, 33, 22).unwrap()
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let token = ContentToken::parse_at(&file(GOOD), now()).unwrap();
        let printed = format!("{token:?}");
        assert!(!printed.contains("VFdwQmVV"), "{printed}");
        assert!(!printed.contains(token.bearer()), "{printed}");
        assert!(printed.contains("Schulamt Nord"));
    }

    #[test]
    fn refuses_bad_base64_bad_json_bad_dates_and_expired_tokens() {
        assert!(matches!(
            ContentToken::parse_at("  \n", now()),
            Err(TokenError::Empty)
        ));
        assert!(matches!(
            ContentToken::parse_at("not*base64!", now()),
            Err(TokenError::Base64(_))
        ));
        assert!(matches!(
            ContentToken::parse_at(&file("{\"token\": 1}"), now()),
            Err(TokenError::Json(_))
        ));
        let bad_date = r#"{"token":"x","expDate":"next year","orgName":"o"}"#;
        assert!(matches!(
            ContentToken::parse_at(&file(bad_date), now()),
            Err(TokenError::Date(_))
        ));
        let empty = r#"{"token":" ","expDate":"2027-01-01T00:00:00+0000","orgName":"o"}"#;
        assert!(matches!(
            ContentToken::parse_at(&file(empty), now()),
            Err(TokenError::MissingField("token"))
        ));
        let old = r#"{"token":"x","expDate":"2026-04-30T12:00:00+0000","orgName":"o"}"#;
        assert!(matches!(
            ContentToken::parse_at(&file(old), now()),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn unpadded_base64_is_accepted() {
        let unpadded = file(GOOD).trim_end_matches('=').to_owned();
        assert!(ContentToken::parse_at(&unpadded, now()).is_ok());
    }

    #[test]
    fn expires_within_counts_days_from_now() {
        let token = ContentToken::parse_at(&file(GOOD), now()).unwrap();
        // Expires 2027-03-14: 317 days after 2026-05-01.
        assert!(!token.expires_within_at(30, now()));
        assert!(token.expires_within_at(330, now()));
        let late = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
        assert!(token.expires_within_at(14, late));
        assert!(!token.expires_within_at(12, late));
        assert!(token.expires_within_at(i64::MAX, now()));
    }
}

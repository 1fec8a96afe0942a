//! The APNs provider-API client: one multiplexed HTTP/2 connection, authenticated
//! with the MDM push certificate, that wakes devices with `{"mdm": "<PushMagic>"}`.
//!
//! Protocol: Apple's "Sending notification requests to APNs" and the MDM
//! protocol reference ("Send a push notification": `apns-push-type: mdm`, the
//! body holds only the `mdm` key with the device's `PushMagic`).

use std::error::Error as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;

use super::cert::PushCertificate;
use super::error::{PushError, Result};

/// Apple's production gateway. MDM push certificates only work here; there is
/// no sandbox for MDM.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";

/// APNs recommends PING frames to check an idle connection's health.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and how the client connects.
#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// Gateway URL without a trailing path; [`PRODUCTION_URL`] by default.
    pub base_url: String,
    /// Extra trusted root certificates (PEM), for a local simulator in tests.
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// Limit for connecting and for each push.
    pub timeout: Duration,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        Self {
            base_url: PRODUCTION_URL.to_owned(),
            extra_root_ca_pem: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What became of one push; pushes never return an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// APNs accepted the notification (200).
    Delivered {
        /// The `apns-id` APNs assigned, for support cases.
        apns_id: Option<String>,
    },
    /// The token is dead (410 `Unregistered`, 400 `BadDeviceToken` or
    /// `DeviceTokenNotForTopic`): forget it until the device sends a new `TokenUpdate`.
    InvalidToken {
        /// APNs's reason.
        reason: String,
    },
    /// Try again later: 429, 5xx, timeouts and connection errors.
    Retry {
        /// APNs's reason or the transport error.
        reason: String,
        /// The server's `retry-after`, when it sent one.
        after: Option<Duration>,
    },
    /// Refused for a reason retrying cannot fix (other 4xx: a bug on our side or
    /// a bad, revoked or expired certificate).
    Failed {
        /// HTTP status.
        status: u16,
        /// APNs's reason.
        reason: String,
    },
}

impl PushOutcome {
    /// How long to wait before retry number `attempt` (0-based): the server's
    /// `retry-after` when given, else `delays[attempt]` (the last delay repeats);
    /// `None` when no retry is due.
    pub fn retry_delay(&self, delays: &[Duration], attempt: u32) -> Option<Duration> {
        match self {
            PushOutcome::Retry { after, .. } => Some(after.unwrap_or_else(|| {
                let i = usize::try_from(attempt)
                    .unwrap_or(usize::MAX)
                    .min(delays.len().saturating_sub(1));
                delays.get(i).copied().unwrap_or(Duration::from_secs(30))
            })),
            _ => None,
        }
    }
}

/// Sends MDM pushes over one HTTP/2 connection; clones share the connection.
#[derive(Clone)]
pub struct ApnsClient {
    http: reqwest::Client,
    base_url: String,
    topic: String,
}

impl ApnsClient {
    /// Builds the client; it connects on the first push and keeps the connection.
    pub fn new(cert: &PushCertificate, config: &ApnsConfig) -> Result<Self> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| PushError::Malformed(format!("APNs URL {base_url:?}: {e}")))?;
        if parsed.scheme() != "https" {
            return Err(PushError::Malformed(format!(
                "APNs URL {base_url:?} must use https"
            )));
        }
        let identity = reqwest::Identity::from_pkcs8_pem(
            &cert.cert.to_pem()?,
            &cert.key.private_key_to_pem_pkcs8()?,
        )?;
        let mut builder = reqwest::Client::builder()
            .use_native_tls()
            .identity(identity)
            // APNs speaks only HTTP/2. Prior knowledge makes ALPN offer just "h2"
            // and, unlike ALPN negotiation, lets the pool know up front that the
            // connection multiplexes: concurrent first pushes share one connection
            // instead of each opening their own.
            .http2_prior_knowledge()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            // Apple asks providers to keep the connection open rather than
            // reconnect for every burst; pings notice a dead one.
            .pool_idle_timeout(None)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .http2_keep_alive_while_idle(true);
        if let Some(pem) = &config.extra_root_ca_pem {
            for root in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(root);
            }
        }
        Ok(Self {
            http: builder.build()?,
            base_url,
            topic: cert.topic.clone(),
        })
    }

    /// The push topic every request carries.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Wakes one device. `expiration` is how long APNs keeps the notification
    /// for an offline device; a past time means "now or never".
    pub async fn push(
        &self,
        device_token_hex: &str,
        push_magic: &str,
        expiration: DateTime<Utc>,
    ) -> PushOutcome {
        let token_log = token_prefix(device_token_hex);
        // The token goes into the URL path: only hex may pass.
        if device_token_hex.is_empty() || hex::decode(device_token_hex).is_err() {
            return PushOutcome::InvalidToken {
                reason: "device token is not hex".into(),
            };
        }
        let url = format!("{}/3/device/{device_token_hex}", self.base_url);
        let sent = self
            .http
            .post(url)
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "mdm")
            .header("apns-priority", "10")
            .header("apns-expiration", expiration.timestamp().max(0).to_string())
            .json(&serde_json::json!({ "mdm": push_magic }))
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                // An unreadable error body only costs us the reason.
                let body = if status == StatusCode::OK {
                    Vec::new()
                } else {
                    response
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default()
                };
                classify(status.as_u16(), &headers, &body, Utc::now())
            }
            Err(e) => PushOutcome::Retry {
                // reqwest names the URL, which holds the whole token.
                reason: error_chain(&e).replace(device_token_hex, &format!("{token_log}…")),
                after: None,
            },
        };
        match &outcome {
            PushOutcome::Delivered { apns_id } => {
                tracing::debug!(token = token_log, apns_id = ?apns_id, "push delivered");
            }
            PushOutcome::InvalidToken { reason } => {
                tracing::info!(token = token_log, reason, "push token invalid");
            }
            PushOutcome::Retry { reason, after } => {
                tracing::warn!(token = token_log, reason, after = ?after, "push to retry");
            }
            PushOutcome::Failed { status, reason } => {
                tracing::error!(token = token_log, status, reason, "push refused");
            }
        }
        outcome
    }
}

/// APNs's error body.
#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

/// Maps an APNs answer to an outcome (Apple: "Handling notification responses from APNs").
fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> PushOutcome {
    if status == 200 {
        let apns_id = headers
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return PushOutcome::Delivered { apns_id };
    }
    let reason = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.reason)
        .unwrap_or_else(|| {
            StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map_or_else(|| format!("HTTP {status}"), str::to_owned)
        });
    match status {
        410 => PushOutcome::InvalidToken { reason },
        400 if reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic" => {
            PushOutcome::InvalidToken { reason }
        }
        429 | 500..=599 => PushOutcome::Retry {
            reason,
            after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now)),
        },
        _ => PushOutcome::Failed { status, reason },
    }
}

/// `retry-after` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// reqwest's top-level message hides the cause ("error sending request");
/// the whole chain tells timeouts, refused connections and TLS failures apart.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Enough of a token to follow it through the logs without logging all of it.
fn token_prefix(token: &str) -> &str {
    token.get(..8).unwrap_or(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = value.parse() {
                map.insert(*name, value);
            }
        }
        map
    }

    const DELAYS: [Duration; 4] = [
        Duration::from_secs(30),
        Duration::from_secs(120),
        Duration::from_secs(480),
        Duration::from_secs(1800),
    ];

    #[test]
    fn the_configured_delays_grow_and_the_last_repeats() {
        let retry = PushOutcome::Retry {
            reason: "x".into(),
            after: None,
        };
        let secs: Vec<u64> = (0..6)
            .map(|a| retry.retry_delay(&DELAYS, a).unwrap().as_secs())
            .collect();
        assert_eq!(secs, [30, 120, 480, 1800, 1800, 1800]);
    }

    #[test]
    fn server_retry_after_wins_over_backoff() {
        let told = PushOutcome::Retry {
            reason: "TooManyRequests".into(),
            after: Some(Duration::from_secs(7)),
        };
        assert_eq!(told.retry_delay(&DELAYS, 3), Some(Duration::from_secs(7)));
        let untold = PushOutcome::Retry {
            reason: "InternalServerError".into(),
            after: None,
        };
        assert_eq!(
            untold.retry_delay(&DELAYS, 1),
            Some(Duration::from_secs(120))
        );
        let dead = PushOutcome::InvalidToken {
            reason: "Unregistered".into(),
        };
        assert_eq!(dead.retry_delay(&DELAYS, 0), None);
    }

    #[test]
    fn apns_answers_map_to_outcomes() {
        let now = Utc::now();
        let none = HeaderMap::new();
        let reason = |r: &str| format!(r#"{{"reason":"{r}"}}"#).into_bytes();
        assert!(matches!(
            classify(400, &none, &reason("DeviceTokenNotForTopic"), now),
            PushOutcome::InvalidToken { .. }
        ));
        assert_eq!(
            classify(400, &none, &reason("BadTopic"), now),
            PushOutcome::Failed {
                status: 400,
                reason: "BadTopic".into()
            }
        );
        assert!(matches!(
            classify(403, &none, &reason("BadCertificate"), now),
            PushOutcome::Failed { status: 403, .. }
        ));
        assert_eq!(
            classify(503, &none, b"not json", now),
            PushOutcome::Retry {
                reason: "Service Unavailable".into(),
                after: None
            }
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = (now + chrono::TimeDelta::seconds(90)).to_rfc2822();
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let h = headers(&[("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT")]);
        assert_eq!(
            classify(429, &h, b"{}", now),
            PushOutcome::Retry {
                reason: "Too Many Requests".into(),
                after: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

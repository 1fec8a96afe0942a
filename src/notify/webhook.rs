//! The [`Notifier`]: stores events for the webhook and runs the background sender
//! that delivers them (sign, POST, record, retry).
//!
//! The sender looks for due deliveries when woken, and otherwise sleeps until the next
//! one is due (or [`IDLE_POLL`] at most, to pick up events other nodes stored). A pass
//! claims due deliveries oldest first and sends them one after another. When the
//! receiver itself is failing (no connection, timeout, 408, 429, 5xx) the rest of the
//! pass and every other due delivery wait with the failed one, so an outage costs one
//! request per retry delay rather than one per event; other answers (e.g. a 400 for one
//! payload) affect only that delivery.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::QueryResult;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::Notify;

use super::store::{self, Claimed, Recorded};
use super::{signature, NotifyError, WebhookSecret};
use crate::config::WebhookSettings;
use crate::db::{now, Db, DbConn, DbError};

/// Longest sleep when nothing is due: events stored by other nodes (or by a caller
/// that did not [`Notifier::wake`]) go out at most this late.
pub const IDLE_POLL: Duration = Duration::from_secs(30);
/// Sleep while deliveries are due but claimed elsewhere, or after a database error.
const TICK: Duration = Duration::from_secs(1);
/// Deliveries claimed per pass.
const BATCH: usize = 20;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Bytes of a failed answer's body kept in `last_error`.
const ERROR_BODY: usize = 200;
/// How often old deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Stores events for the webhook and delivers them in the background.
pub struct Notifier {
    sender: Option<Arc<Sender>>,
    wake: Arc<Notify>,
}

/// What the background task needs.
struct Sender {
    db: Db,
    url: String,
    secret: WebhookSecret,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// Set by [`Notifier::stop`]: no further pass starts.
    stopped: std::sync::atomic::AtomicBool,
    /// Held for the length of a pass, so that a stop waits for the one under way.
    passing: tokio::sync::Mutex<()>,
}

/// What one attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    /// A 2xx answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The receiver as a whole is failing (not just refusing this payload).
    pub fn receiver_failing(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 408 || s == 429 || s >= 500,
        }
    }
}

/// The delay before retry number `attempts` (1 after the first failure); the last
/// configured delay repeats.
pub fn retry_delay(delays_secs: &[u64], attempts: u32) -> Duration {
    let i = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    let secs = delays_secs
        .get(i)
        .or(delays_secs.last())
        .copied()
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Parses `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str, at: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (when.with_timezone(&chrono::Utc) - at)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

impl Notifier {
    /// Starts notifications as configured: without `webhooks.url` a notifier that stores
    /// nothing; otherwise starts the sender, signing with `secret`, on the current
    /// runtime.
    pub fn start(
        db: Db,
        settings: &WebhookSettings,
        secret: WebhookSecret,
    ) -> Result<Arc<Notifier>, NotifyError> {
        let Some(url) = settings.url.clone() else {
            return Ok(Arc::new(Notifier::disabled()));
        };
        let timeout = Duration::from_secs(settings.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tafel/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let sender = Arc::new(Sender {
            db,
            url,
            secret,
            settings: settings.clone(),
            client,
            stopped: std::sync::atomic::AtomicBool::new(false),
            passing: tokio::sync::Mutex::new(()),
        });
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(Arc::downgrade(&sender), wake.clone()));
        Ok(Arc::new(Notifier {
            sender: Some(sender),
            wake,
        }))
    }

    /// A notifier that stores nothing (no webhook configured).
    pub fn disabled() -> Notifier {
        Notifier {
            sender: None,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Is a webhook configured?
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Stores `event` for delivery. Call it inside the transaction of the change it
    /// reports, and [`Notifier::wake`] after the commit. `about` names what the event is
    /// about so that producing it again gives the same event (e.g. the lesson request's
    /// id, and the lesson's start for a notice before one lesson): the delivery id is
    /// derived from `event` and `about`, and an event already stored is not stored again.
    /// `data` becomes the body's `data`; `tenant_id` and `school_id` say whom the event
    /// concerns. Event names are
    /// 1–100 letters, digits, `.`, `_` or `-` (e.g. `lesson.created`); others fail.
    /// Without a configured webhook this stores nothing (but still checks the name,
    /// so a bad one shows up in tests that run without a webhook).
    pub fn enqueue(
        &self,
        conn: &mut DbConn,
        event: &str,
        about: &str,
        tenant_id: Option<&str>,
        school_id: Option<&str>,
        data: serde_json::Value,
    ) -> QueryResult<()> {
        store::check_event(event)?;
        match &self.sender {
            Some(s) => {
                store::insert(conn, &s.url, event, about, tenant_id, school_id, data).map(drop)
            }
            None => Ok(()),
        }
    }

    /// Sends what was stored now instead of at the next look. Call after the commit.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ends sending on this node (shutdown): a pass under way finishes, no other starts.
    /// What is still pending stays stored for the next start or another node.
    pub async fn stop(&self) {
        if let Some(s) = &self.sender {
            s.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
            let _pass = s.passing.lock().await;
            self.wake.notify_one();
        }
    }

    /// Stores one event in a transaction of its own and wakes the sender: for events
    /// that belong to no other change (`about` as for [`Notifier::enqueue`]).
    pub async fn send(
        &self,
        event: &str,
        about: &str,
        tenant_id: Option<&str>,
        school_id: Option<&str>,
        data: serde_json::Value,
    ) -> Result<(), DbError> {
        let Some(s) = &self.sender else {
            return Ok(());
        };
        let url = s.url.clone();
        let (event, about, tenant, school) = (
            event.to_owned(),
            about.to_owned(),
            tenant_id.map(str::to_owned),
            school_id.map(str::to_owned),
        );
        s.db.run(move |conn| -> Result<(), DbError> {
            conn.write_tx(|conn| {
                store::insert(
                    conn,
                    &url,
                    &event,
                    &about,
                    tenant.as_deref(),
                    school.as_deref(),
                    data,
                )
            })?;
            Ok(())
        })
        .await?;
        self.wake();
        Ok(())
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Let the sender notice at once that it is no longer wanted.
        drop(self.sender.take());
        self.wake.notify_one();
    }
}

impl Sender {
    /// Sends everything due; returns how long to sleep.
    async fn pass(&self) -> Result<Duration, DbError> {
        loop {
            let lease = chrono::Duration::from_std(
                Duration::from_secs(self.settings.timeout_secs + 5) * BATCH as u32,
            )
            .unwrap_or(chrono::Duration::hours(1));
            let batch = self
                .db
                .run(move |conn| {
                    store::claim_due(conn, now(), BATCH as i64, lease).map_err(DbError::from)
                })
                .await?;
            let full = batch.len() == BATCH;
            if batch.is_empty() || !self.deliver(batch).await? || !full {
                break;
            }
        }
        let next = self
            .db
            .run(|conn| store::next_due(conn).map_err(DbError::from))
            .await?;
        Ok(match next {
            None => IDLE_POLL,
            Some(t) => match (t - now()).to_std() {
                Ok(wait) if !wait.is_zero() => wait.min(IDLE_POLL),
                _ => TICK,
            },
        })
    }

    /// Sends a claimed batch in order; false when the receiver failed and the rest
    /// was deferred.
    async fn deliver(&self, batch: Vec<Claimed>) -> Result<bool, DbError> {
        let mut rest = batch.into_iter();
        while let Some(d) = rest.next() {
            let attempt = self.attempt(&d).await;
            let attempts = u32::try_from(d.attempts.max(0)).unwrap_or(0) + 1;
            let wait = attempt
                .retry_after
                .unwrap_or_else(|| retry_delay(&self.settings.retry_delays_secs, attempts));
            let until =
                now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            let result = if attempt.delivered() {
                Recorded::Delivered
            } else if attempts >= self.settings.max_attempts {
                tracing::error!(delivery = %d.id, event = %d.event, attempts, error = attempt.error.as_deref().unwrap_or(""), "webhook delivery failed for good");
                Recorded::Failed
            } else {
                tracing::warn!(delivery = %d.id, event = %d.event, attempts, retry_in_secs = wait.as_secs(), error = attempt.error.as_deref().unwrap_or(""), "webhook delivery will be retried");
                Recorded::Retry(until)
            };
            let (id, url) = (d.id.clone(), self.url.clone());
            let (status, error) = (attempt.status, attempt.error.clone());
            self.db
                .run(move |conn| {
                    store::record(conn, &id, &url, status, error.as_deref(), &result)
                        .map_err(DbError::from)
                })
                .await?;
            if !attempt.delivered() && attempt.receiver_failing() {
                let ids: Vec<String> = rest.map(|c| c.id).collect();
                let at = now();
                self.db
                    .run(move |conn| store::defer(conn, &ids, at, until).map_err(DbError::from))
                    .await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One signed POST.
    async fn attempt(&self, d: &Claimed) -> Attempt {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature =
            match signature::sign(self.secret.as_bytes(), &timestamp, d.payload.as_bytes()) {
                Ok(s) => s,
                Err(e) => {
                    return Attempt {
                        status: None,
                        error: Some(format!("signing failed: {e}")),
                        retry_after: None,
                    }
                }
            };
        let sent = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Tafel-Event", &d.event)
            .header("X-Tafel-Delivery", &d.id)
            .header("X-Tafel-Timestamp", &timestamp)
            .header("X-Tafel-Signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let mut res = match sent {
            Ok(res) => res,
            Err(e) => {
                return Attempt {
                    status: None,
                    error: Some(describe(&e)),
                    retry_after: None,
                }
            }
        };
        let status = res.status().as_u16();
        if res.status().is_success() {
            return Attempt {
                status: Some(status),
                error: None,
                retry_after: None,
            };
        }
        let retry_after = if status == 429 || status == 503 {
            retry_after(res.headers())
        } else {
            None
        };
        let mut body = Vec::new();
        while body.len() < ERROR_BODY {
            match res.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(ERROR_BODY);
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        Attempt {
            status: Some(status),
            error: Some(if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }),
            retry_after,
        }
    }

    /// Deletes finished deliveries past the retention.
    async fn prune(&self) {
        let before = now() - chrono::Duration::days(self.settings.retention_days);
        match self
            .db
            .run(move |conn| store::prune(conn, before).map_err(DbError::from))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned old webhook deliveries"),
            Err(e) => tracing::error!(error = %e, "pruning webhook deliveries failed"),
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, chrono::Utc::now())
}

/// A transport error in a few words, without the URL (it is on the row already).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// The background task: a pass whenever woken or due, until the notifier is dropped.
async fn run(sender: Weak<Sender>, wake: Arc<Notify>) {
    let mut next_prune = tokio::time::Instant::now();
    loop {
        let pause = {
            let Some(s) = sender.upgrade() else { return };
            let _pass = s.passing.lock().await;
            if s.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
                let job = crate::jobs::Job::new(crate::jobs::names::WEBHOOK_PRUNE, PRUNE_EVERY);
                crate::jobs::once(&s.db, job, || s.prune()).await;
            }
            match s.pass().await {
                Ok(pause) => pause,
                Err(e) => {
                    tracing::error!(error = %e, "webhook sender failed; trying again");
                    TICK
                }
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_configured_delays_and_the_last_repeats() {
        let delays = [10, 60, 300];
        let secs: Vec<u64> = (1..=5).map(|n| retry_delay(&delays, n).as_secs()).collect();
        assert_eq!(secs, vec![10, 60, 300, 300, 300]);
        assert_eq!(retry_delay(&[], 1), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T08:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after(" 120 ", at),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 08:01:30 GMT", at),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 07:00:00 GMT", at),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999999", at), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", at), None);
    }

    #[test]
    fn only_whole_receiver_failures_hold_back_other_deliveries() {
        let a = |status| Attempt {
            status,
            error: None,
            retry_after: None,
        };
        assert!(a(Some(204)).delivered());
        assert!(!a(Some(302)).delivered());
        assert!(a(None).receiver_failing());
        assert!(a(Some(503)).receiver_failing());
        assert!(a(Some(429)).receiver_failing());
        assert!(!a(Some(400)).receiver_failing());
        assert!(!a(Some(302)).receiver_failing());
    }
}

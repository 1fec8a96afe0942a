//! The push service: wakes devices that have commands waiting.
//!
//! Callers hand it device ids *after* their enqueueing transaction committed
//! ([`PushService::notify`]); a background task coalesces them per device, loads push
//! tokens in bulk, pushes in parallel over one HTTP/2 connection per authority, and
//! records each result on the device. Retries (429, 5xx, timeouts) are scheduled on the
//! device row (`next_push_at`) with growing delays; a periodic sweep re-pushes devices
//! that have commands waiting but have stayed silent. The sweep and the retry pass run
//! once per tick across nodes ([`crate::jobs`]), so several nodes never do them twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::{
    ApnsClient, ApnsConfig, Coalescer, PushCertificate, PushError, PushOutcome, PushTrust,
};
use crate::config::PushSettings;
use crate::db::schema::{command_queue, devices, push_certificates};
use crate::db::{now, Db, DbConn, DbError};
use crate::enrollment::EnrollmentStatus;
use crate::queue;
use crate::secrets::SecretBox;

/// How often due retries are looked for.
const RETRY_TICK: Duration = Duration::from_secs(2);
/// Rows per bulk query.
const CHUNK: usize = 1000;

/// What happened to one device's push, as stored and shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushResult {
    /// Device id.
    pub device_id: String,
    /// `delivered`, `invalid_token`, `retry`, `failed`, `no_push_certificate`, `no_token`.
    pub result: String,
    /// Details from APNs.
    pub reason: Option<String>,
}

/// An authority's stored certificate: tenant id, certificate PEM, sealed key.
type StoredCert = (String, String, Vec<u8>);

/// A device ready to be pushed.
#[derive(Debug, Clone, Queryable)]
struct Target {
    id: String,
    tenant_id: Option<String>,
    push_token: Option<String>,
    push_magic: Option<String>,
    push_failures: i32,
}

/// Sends MDM pushes for the whole server.
pub struct PushService {
    db: Db,
    secrets: Arc<SecretBox>,
    settings: PushSettings,
    extra_root: Option<Vec<u8>>,
    trust: PushTrust,
    clients: Mutex<HashMap<String, ApnsClient>>,
    tx: mpsc::UnboundedSender<Vec<String>>,
}

impl PushService {
    /// Creates the service and starts its background task on the current runtime.
    pub fn start(
        db: Db,
        secrets: Arc<SecretBox>,
        settings: PushSettings,
    ) -> Result<Arc<PushService>, PushError> {
        let extra_root = match &settings.extra_root_ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                PushError::Malformed(format!("push.extra_root_ca {}: {e}", path.display()))
            })?),
            None => None,
        };
        let trust = if settings.certificate_anchors.is_empty() {
            PushTrust::apple()?
        } else {
            let mut pems = Vec::new();
            for path in &settings.certificate_anchors {
                pems.push(std::fs::read(path).map_err(|e| {
                    PushError::Malformed(format!(
                        "push.certificate_anchors {}: {e}",
                        path.display()
                    ))
                })?);
            }
            PushTrust::with_anchors(&pems)?
        };
        if settings.allow_untrusted_certificates {
            tracing::warn!("push.allow_untrusted_certificates is on: push certificates that do not come from Apple are accepted (tests and simulation only)");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(PushService {
            db,
            secrets,
            settings,
            extra_root,
            trust,
            clients: Mutex::new(HashMap::new()),
            tx,
        });
        tokio::spawn(run(Arc::downgrade(&service), rx));
        Ok(service)
    }

    /// Asks for pushes to these devices (coalesced). Call after the commit.
    pub fn notify(&self, device_ids: Vec<String>) {
        if !device_ids.is_empty() {
            // The receiver lives as long as the service; a send error means shutdown.
            let _ = self.tx.send(device_ids);
        }
    }

    /// Forgets the cached client of an authority (its certificate changed).
    pub fn forget_client(&self, tenant_id: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant_id);
    }

    /// Pushes these devices now, bypassing coalescing; returns each result.
    pub async fn push_now(&self, device_ids: Vec<String>) -> Result<Vec<PushResult>, DbError> {
        self.push_devices(device_ids).await
    }

    fn delays(&self) -> Vec<Duration> {
        self.settings
            .retry_delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect()
    }

    /// Builds (and caches) the APNs client of an authority from its stored certificate.
    fn build_client(
        &self,
        tenant_id: &str,
        cert_pem: &str,
        sealed: &[u8],
    ) -> Result<ApnsClient, String> {
        let key_pem = self
            .secrets
            .open_for(
                &crate::secrets::binding(crate::secrets::places::PUSH_KEY, tenant_id),
                sealed,
            )
            .map_err(|e| e.to_string())?;
        let cert =
            PushCertificate::from_pem(cert_pem.as_bytes(), &key_pem).map_err(|e| e.to_string())?;
        let config = ApnsConfig {
            base_url: self.settings.base_url.trim_end_matches('/').to_owned(),
            extra_root_ca_pem: self.extra_root.clone(),
            timeout: Duration::from_secs(30),
        };
        let client = ApnsClient::new(&cert, &config).map_err(|e| e.to_string())?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant_id.to_owned(), client.clone());
        Ok(client)
    }

    fn cached_client(&self, tenant_id: &str) -> Option<ApnsClient> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant_id)
            .cloned()
    }

    /// Loads targets, pushes them in parallel, stores the results.
    async fn push_devices(&self, device_ids: Vec<String>) -> Result<Vec<PushResult>, DbError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.clone();
        let ids = device_ids.clone();
        let cached: Vec<String> = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let (targets, certs): (Vec<Target>, Vec<StoredCert>) = db
            .run(move |conn| -> Result<_, DbError> {
                let mut out: Vec<Target> = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let rows: Vec<Target> = devices::table
                        .filter(devices::id.eq_any(chunk))
                        .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
                        .filter(devices::push_invalid_at.is_null())
                        .select((
                            devices::id,
                            devices::tenant_id,
                            devices::push_token,
                            devices::push_magic,
                            devices::push_failures,
                        ))
                        .load(conn)?;
                    out.extend(rows);
                }
                // Certificates of the authorities whose client is not built yet.
                let mut missing: Vec<String> = out
                    .iter()
                    .filter_map(|t| t.tenant_id.clone())
                    .filter(|t| !cached.contains(t))
                    .collect();
                missing.sort();
                missing.dedup();
                let certs = push_certificates::table
                    .filter(push_certificates::tenant_id.eq_any(&missing))
                    .select((
                        push_certificates::tenant_id,
                        push_certificates::cert_pem,
                        push_certificates::key_sealed,
                    ))
                    .load(conn)?;
                Ok((out, certs))
            })
            .await?;
        for (tenant, cert_pem, sealed) in certs {
            if let Err(e) = self.build_client(&tenant, &cert_pem, &sealed) {
                tracing::error!(tenant = %tenant, error = %e, "cannot build the APNs client");
            }
        }

        // One client per authority (built once, cached).
        let mut by_tenant: HashMap<String, Option<ApnsClient>> = HashMap::new();
        let mut results = Vec::with_capacity(targets.len());
        let mut jobs = Vec::with_capacity(targets.len());
        for t in targets {
            let (Some(token), Some(magic)) = (t.push_token.clone(), t.push_magic.clone()) else {
                results.push((t, PushOutcomeOrSkip::Skip("no_token")));
                continue;
            };
            let tenant = t.tenant_id.clone().unwrap_or_default();
            let client = by_tenant
                .entry(tenant.clone())
                .or_insert_with(|| self.cached_client(&tenant))
                .clone();
            match client {
                Some(client) => jobs.push((t, client, token, magic)),
                None => results.push((t, PushOutcomeOrSkip::Skip("no_push_certificate"))),
            }
        }
        let expiration =
            chrono::Utc::now() + chrono::Duration::hours(self.settings.expiration_hours);
        let pushed: Vec<(Target, PushOutcomeOrSkip)> = stream::iter(jobs)
            .map(|(t, client, token, magic)| async move {
                let outcome = client.push(&token, &magic, expiration).await;
                (t, PushOutcomeOrSkip::Pushed(outcome))
            })
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        results.extend(pushed);
        self.record(results).await
    }

    /// Stores results: bulk for deliveries, one row each for the rest.
    async fn record(
        &self,
        results: Vec<(Target, PushOutcomeOrSkip)>,
    ) -> Result<Vec<PushResult>, DbError> {
        let at = now();
        let mut delivered = Vec::new();
        let mut others = Vec::new();
        let mut shown = Vec::with_capacity(results.len());
        for (t, o) in results {
            let (result, reason) = match &o {
                PushOutcomeOrSkip::Skip(why) => ((*why).to_owned(), None),
                PushOutcomeOrSkip::Pushed(PushOutcome::Delivered { apns_id }) => {
                    ("delivered".to_owned(), apns_id.clone())
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::InvalidToken { reason }) => {
                    ("invalid_token".to_owned(), Some(reason.clone()))
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::Retry { reason, .. }) => {
                    ("retry".to_owned(), Some(reason.clone()))
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::Failed { status, reason }) => {
                    ("failed".to_owned(), Some(format!("{status} {reason}")))
                }
            };
            shown.push(PushResult {
                device_id: t.id.clone(),
                result: result.clone(),
                reason: reason.clone(),
            });
            match o {
                PushOutcomeOrSkip::Pushed(PushOutcome::Delivered { .. }) => delivered.push(t.id),
                PushOutcomeOrSkip::Pushed(retry @ PushOutcome::Retry { .. }) => {
                    let attempt = u32::try_from(t.push_failures.max(0)).unwrap_or(0);
                    let wait = retry
                        .retry_delay(&self.delays(), attempt)
                        .unwrap_or(Duration::from_secs(30));
                    let next = at
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(30));
                    tracing::warn!(device = %t.id, reason = reason.as_deref().unwrap_or(""), retry_in_ms = wait.as_millis() as u64, "push will be retried");
                    others.push((t.id, result, reason, Some(next), t.push_failures + 1, false));
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::InvalidToken { .. }) => {
                    tracing::info!(device = %t.id, reason = reason.as_deref().unwrap_or(""), "push token invalid until the next TokenUpdate");
                    others.push((t.id, result, reason, None, 0, true));
                }
                _ => {
                    if result == "failed" {
                        tracing::error!(device = %t.id, reason = reason.as_deref().unwrap_or(""), "push refused");
                    }
                    others.push((t.id, result, reason, None, t.push_failures, false));
                }
            }
        }
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| -> Result<(), DbError> {
                    for chunk in delivered.chunks(CHUNK) {
                        diesel::update(devices::table.filter(devices::id.eq_any(chunk)))
                            .set((
                                devices::last_push_at.eq(at),
                                devices::last_push_result.eq("delivered"),
                                devices::push_failures.eq(0),
                                devices::next_push_at.eq(None::<chrono::NaiveDateTime>),
                            ))
                            .execute(conn)?;
                    }
                    for (id, result, reason, next, failures, invalid) in others {
                        let text = match reason {
                            Some(r) => format!("{result}: {r}"),
                            None => result,
                        };
                        diesel::update(devices::table.find(&id))
                            .set((
                                devices::last_push_at.eq(at),
                                devices::last_push_result.eq(text),
                                devices::push_failures.eq(failures),
                                devices::next_push_at.eq(next),
                            ))
                            .execute(conn)?;
                        if invalid {
                            diesel::update(devices::table.find(&id))
                                .set(devices::push_invalid_at.eq(at))
                                .execute(conn)?;
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(shown)
    }

    /// Devices whose retry is due, and silent devices with waiting commands.
    async fn due_devices(&self, sweep: bool) -> Result<Vec<String>, DbError> {
        let sweep_after = chrono::Duration::seconds(
            i64::try_from(self.settings.sweep_after_secs).unwrap_or(i64::MAX / 4),
        );
        let batch = self.settings.sweep_batch;
        let sweep_job = crate::jobs::Job::new(
            crate::jobs::names::PUSH_SWEEP,
            Duration::from_secs(self.settings.sweep_interval_secs),
        );
        let retry_job = crate::jobs::Job::new(crate::jobs::names::PUSH_RETRY, RETRY_TICK)
            .holding(RETRY_TICK * 15);
        self.db
            .run(move |conn| -> Result<Vec<String>, DbError> {
                let job = if sweep { sweep_job } else { retry_job };
                with_sweep_lock(conn, &job, |conn| {
                    let at = now();
                    let mut ids: Vec<String> = devices::table
                        .filter(devices::next_push_at.le(at))
                        .filter(devices::push_invalid_at.is_null())
                        .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
                        .select(devices::id)
                        .limit(batch)
                        .load(conn)?;
                    if sweep {
                        let before = at - sweep_after;
                        let waiting = command_queue::table
                            .filter(command_queue::status.eq_any(queue::QueueState::OPEN))
                            .select(command_queue::device_id)
                            .distinct();
                        let silent: Vec<String> = devices::table
                            .filter(devices::id.eq_any(waiting))
                            .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
                            .filter(devices::push_invalid_at.is_null())
                            .filter(devices::next_push_at.is_null())
                            .filter(
                                devices::last_seen_at
                                    .is_null()
                                    .or(devices::last_seen_at.lt(before)),
                            )
                            .filter(
                                devices::last_push_at
                                    .is_null()
                                    .or(devices::last_push_at.lt(before)),
                            )
                            .select(devices::id)
                            .limit(batch)
                            .load(conn)?;
                        ids.extend(silent);
                    }
                    Ok(ids)
                })
            })
            .await
    }

    /// Logs certificates that expire soon; returns (tenant, topic, days left) for each.
    pub fn expiring_certificates(
        &self,
        conn: &mut DbConn,
    ) -> QueryResult<Vec<(String, String, i64)>> {
        let limit = now() + chrono::Duration::days(i64::from(self.settings.expiry_warning_days));
        let rows: Vec<(String, String, chrono::NaiveDateTime)> = push_certificates::table
            .filter(push_certificates::not_after.lt(limit))
            .select((
                push_certificates::tenant_id,
                push_certificates::topic,
                push_certificates::not_after,
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(t, topic, end)| (t, topic, (end - now()).num_days()))
            .collect())
    }

    /// Whether an uploaded push certificate may be stored: it chains to Apple's push CA
    /// (or the configured anchors), with `extra` certificates from the upload offered as
    /// intermediates. An untrusted one passes only when the operator allowed it; then the
    /// answer is the warning to log.
    pub fn check_trust(
        &self,
        cert: &openssl::x509::X509Ref,
        extra: &[openssl::x509::X509],
    ) -> Result<Option<String>, PushError> {
        match self.trust.verify(cert, extra) {
            Ok(()) => Ok(None),
            Err(e @ PushError::Untrusted { .. }) if self.settings.allow_untrusted_certificates => {
                Ok(Some(format!(
                    "accepted although push.allow_untrusted_certificates should be off in production: {e}"
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// The warning window in days.
    pub fn warning_days(&self) -> u32 {
        self.settings.expiry_warning_days
    }
}

/// Runs `f` when `job` (the sweep or the retry pass) is this node's to run now
/// ([`crate::jobs`]: once per tick across nodes); returns nothing otherwise.
fn with_sweep_lock(
    conn: &mut DbConn,
    job: &crate::jobs::Job,
    f: impl FnOnce(&mut DbConn) -> Result<Vec<String>, DbError>,
) -> Result<Vec<String>, DbError> {
    Ok(crate::jobs::once_blocking(conn, job, f)?.unwrap_or_default())
}

/// A push that went out, or why it did not.
enum PushOutcomeOrSkip {
    Pushed(PushOutcome),
    Skip(&'static str),
}

/// The background task: coalesce notifications, push what is due, retry, sweep.
async fn run(service: std::sync::Weak<PushService>, mut rx: mpsc::UnboundedReceiver<Vec<String>>) {
    let (delay, window, sweep_every) = match service.upgrade() {
        Some(s) => (
            Duration::from_millis(s.settings.coalesce_ms),
            Duration::from_millis(s.settings.min_interval_ms),
            Duration::from_secs(s.settings.sweep_interval_secs),
        ),
        None => return,
    };
    let mut coalescer = Coalescer::new(delay, window);
    let mut next_retry = Instant::now() + RETRY_TICK;
    let mut next_sweep = Instant::now() + sweep_every;
    let mut last_warning: Option<Instant> = None;
    loop {
        let wake = [
            Some(next_retry),
            Some(next_sweep),
            coalescer.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_retry);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(ids) => {
                    let t = Instant::now();
                    for id in ids {
                        coalescer.add(id, t);
                    }
                }
                None => return,
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let Some(svc) = service.upgrade() else { return };
        let t = Instant::now();
        let due = coalescer.due(t);
        if !due.is_empty() {
            let svc = svc.clone();
            tokio::spawn(async move {
                if let Err(e) = svc.push_devices(due).await {
                    tracing::error!(error = %e, "pushing failed");
                }
            });
        }
        let sweep = t >= next_sweep;
        if t >= next_retry || sweep {
            next_retry = t + RETRY_TICK;
            if sweep {
                next_sweep = t + sweep_every;
            }
            let svc = svc.clone();
            let warn = sweep
                && last_warning.is_none_or(|w| t.duration_since(w) > Duration::from_secs(86_400));
            if warn {
                last_warning = Some(t);
            }
            tokio::spawn(async move {
                match svc.due_devices(sweep).await {
                    Ok(ids) if !ids.is_empty() => {
                        if let Err(e) = svc.push_devices(ids).await {
                            tracing::error!(error = %e, "retrying pushes failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "looking for due pushes failed"),
                }
                if warn {
                    warn_expiring(&svc).await;
                }
            });
        }
    }
}

async fn warn_expiring(svc: &Arc<PushService>) {
    let s = svc.clone();
    let rows = svc
        .db
        .run(move |conn| s.expiring_certificates(conn).map_err(DbError::from))
        .await;
    if let Ok(rows) = rows {
        for (tenant, topic, days) in rows {
            tracing::warn!(tenant = %tenant, topic = %topic, days_left = days, "push certificate expires soon: renew it in Apple's Push Certificates Portal and upload it");
        }
    }
}

//! The push service: wakes devices that have commands waiting.
//!
//! Callers hand it device ids *after* their enqueueing transaction committed
//! ([`PushService::notify`]); a background task coalesces them per device, loads push
//! tokens in bulk, pushes in parallel over one HTTP/2 connection per authority, and
//! records each result on the device as soon as APNs answers it (a push that hangs
//! delays no other result). Retries (429, 5xx, timeouts) are scheduled on the device
//! row (`next_push_at`) with growing delays; the server's `Retry-After` is kept within
//! a floor and a ceiling; a device in backoff is pushed when its backoff ends, not when
//! something new is queued for it. A periodic sweep re-pushes devices that have commands
//! waiting but have stayed silent.
//!
//! A device is never pushed while a push to it is in flight: in this node, a set of
//! devices in flight; across nodes, a lease on the device row (`next_push_at` moves past
//! the push's timeout before the push goes out, so no retry pass anywhere picks it up,
//! and a node that dies mid-push leaves a device that is pushed again when the lease
//! ends). A result applies only to the token it was sent to: a `TokenUpdate` that raced
//! a failing push keeps its new token. On PostgreSQL the sweep and the retry pass run
//! under an advisory lock, so several nodes never do them twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{mpsc, Semaphore};

use super::{
    ApnsClient, ApnsConfig, Coalescer, PushCertificate, PushError, PushOutcome, PushTrust,
};
use crate::config::PushSettings;
use crate::db::schema::{command_queue, devices, push_certificates};
use crate::db::{now, Db, DbConn, DbError};
use crate::enrollment::EnrollmentStatus;
use crate::queue;
use crate::secrets::SecretBox;

/// Advisory-lock key for the sweep and retry passes ("tafelpsh").
const SWEEP_LOCK_KEY: i64 = 0x7461_6665_6c70_7368;
/// How often due retries are looked for.
const RETRY_TICK: Duration = Duration::from_secs(2);
/// Rows per bulk query.
const CHUNK: usize = 1000;
/// Results recorded together at most (those that arrived while the last were stored).
const RECORD_BATCH: usize = 256;
/// How long past the push timeout a device's lease lasts.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// What became of one device's push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// APNs accepted it.
    Delivered,
    /// APNs refused the device's token (now or earlier): pushed again only after the
    /// iPad's next `TokenUpdate`.
    InvalidToken,
    /// APNs asked to try later (429, 5xx) or did not answer: retried at `next_push_at`.
    Retry,
    /// APNs refused it for a reason retrying cannot fix (certificate, request).
    Failed,
    /// The device's authority has no usable push certificate.
    NoPushCertificate,
    /// The device sent no push token yet.
    NoToken,
    /// The device is not enrolled (anymore).
    NotEnrolled,
    /// A push to it is still waiting for APNs's answer; it is not pushed twice.
    InFlight,
}

impl PushState {
    /// The stored word (`devices.last_push_result` starts with it).
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Delivered => "delivered",
            PushState::InvalidToken => "invalid_token",
            PushState::Retry => "retry",
            PushState::Failed => "failed",
            PushState::NoPushCertificate => "no_push_certificate",
            PushState::NoToken => "no_token",
            PushState::NotEnrolled => "not_enrolled",
            PushState::InFlight => "in_flight",
        }
    }
}

/// What happened to one device's push, as stored and shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushResult {
    /// Device id.
    pub device_id: String,
    /// What became of it.
    pub result: PushState,
    /// Details from APNs, in words.
    pub reason: Option<String>,
}

/// Who asked for a push: decides what a device's backoff and a push in flight mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Something was queued: a device in backoff waits for its retry, one in flight is
    /// pushed again once its push has been answered.
    Notify,
    /// The retry pass or the sweep, which leased the devices it found due.
    Due,
    /// An admin's "push now": backoff does not hold it back; every device gets a
    /// result, the ones not pushed with the reason.
    Now,
}

/// An authority's stored certificate: tenant id, certificate PEM, sealed key.
type StoredCert = (String, String, Vec<u8>);

/// A device ready to be pushed.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    tenant_id: Option<String>,
    push_token: Option<String>,
    push_magic: Option<String>,
    push_failures: i32,
}

/// A device as loaded for pushing.
type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    EnrollmentStatus,
    Option<chrono::NaiveDateTime>,
    Option<chrono::NaiveDateTime>,
);

/// Sends MDM pushes for the whole server.
pub struct PushService {
    db: Db,
    secrets: Arc<SecretBox>,
    settings: PushSettings,
    extra_root: Option<Vec<u8>>,
    trust: PushTrust,
    clients: Mutex<HashMap<String, ApnsClient>>,
    tx: mpsc::UnboundedSender<Vec<String>>,
    /// Devices with a push in flight from this node; `true` when something was queued
    /// for one meanwhile (it is pushed again once the answer is recorded).
    in_flight: Mutex<HashMap<String, bool>>,
    /// Pushes in flight at once, across all batches.
    permits: Arc<Semaphore>,
    /// A retry pass is looking for due devices.
    retrying: AtomicBool,
}

/// This node's claim on devices it pushes; what is still held at drop is released.
struct Flight<'a> {
    service: &'a PushService,
    ids: HashSet<String>,
}

impl Flight<'_> {
    /// Releases `ids` (their answers are recorded); those asked for meanwhile are
    /// notified again, which respects the backoff their answer may have set.
    fn land(&mut self, ids: &[String]) {
        let mut again = Vec::new();
        {
            let mut map = self
                .service
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for id in ids {
                if self.ids.remove(id) && map.remove(id) == Some(true) {
                    again.push(id.clone());
                }
            }
        }
        self.service.notify(again);
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let rest: Vec<String> = self.ids.iter().cloned().collect();
        self.land(&rest);
    }
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
        let settings_concurrency = settings.concurrency.max(1);
        let service = Arc::new(PushService {
            db,
            secrets,
            settings,
            extra_root,
            trust,
            clients: Mutex::new(HashMap::new()),
            tx,
            in_flight: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(settings_concurrency)),
            retrying: AtomicBool::new(false),
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

    /// Pushes these devices now, bypassing coalescing and backoff; returns a result for
    /// each (not pushed: why).
    pub async fn push_now(&self, device_ids: Vec<String>) -> Result<Vec<PushResult>, DbError> {
        self.push_devices(device_ids, Ask::Now).await
    }

    /// The floor and ceiling for APNs's `Retry-After`, and for any retry delay.
    fn retry_wait(&self, outcome: &PushOutcome, attempt: u32) -> Duration {
        let floor = Duration::from_secs(self.settings.retry_after_min_secs);
        let ceiling = Duration::from_secs(self.settings.retry_after_max_secs).max(floor);
        let told = matches!(outcome, PushOutcome::Retry { after: Some(_), .. });
        let wait = outcome
            .retry_delay(&self.delays(), attempt)
            .unwrap_or(Duration::from_secs(60));
        if told {
            wait.clamp(floor, ceiling)
        } else {
            wait.min(ceiling)
        }
    }

    /// The lease a device's row gets while a push to it is in flight.
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.timeout() + LEASE_MARGIN)
            .unwrap_or(chrono::Duration::seconds(90))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs.max(1))
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
            timeout: self.timeout(),
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

    /// Claims `ids` in this node: those already in flight are left out (and, when
    /// something was queued for them, pushed again after their answer).
    fn take_off(&self, ids: Vec<String>, ask: Ask) -> (Flight<'_>, Vec<String>) {
        let mut busy = Vec::new();
        let mut mine = HashSet::with_capacity(ids.len());
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            match map.get_mut(&id) {
                Some(again) => {
                    if ask == Ask::Notify {
                        *again = true;
                    }
                    busy.push(id);
                }
                None => {
                    map.insert(id.clone(), false);
                    mine.insert(id);
                }
            }
        }
        drop(map);
        (
            Flight {
                service: self,
                ids: mine,
            },
            busy,
        )
    }

    /// Loads targets, leases them, pushes them in parallel and records each result as
    /// it arrives.
    async fn push_devices(
        &self,
        device_ids: Vec<String>,
        ask: Ask,
    ) -> Result<Vec<PushResult>, DbError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (mut flight, busy) = self.take_off(device_ids, ask);
        let mut shown: Vec<PushResult> = Vec::new();
        if ask == Ask::Now {
            shown.extend(busy.into_iter().map(|id| PushResult {
                device_id: id,
                result: PushState::InFlight,
                reason: Some("a push to this iPad is still waiting for APNs's answer".into()),
            }));
        }
        let ids: Vec<String> = flight.ids.iter().cloned().collect();
        if ids.is_empty() {
            return Ok(shown);
        }
        let cached: Vec<String> = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let lease = self.lease();
        let (rows, certs): (Vec<Row>, Vec<StoredCert>) = self
            .db
            .run(move |conn| -> Result<_, DbError> {
                conn.write_tx(|conn| {
                    let at = now();
                    let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
                    for chunk in ids.chunks(CHUNK) {
                        let loaded: Vec<Row> = devices::table
                            .filter(devices::id.eq_any(chunk))
                            .select((
                                devices::id,
                                devices::tenant_id,
                                devices::push_token,
                                devices::push_magic,
                                devices::push_failures,
                                devices::enrollment_status,
                                devices::push_invalid_at,
                                devices::next_push_at,
                            ))
                            .load(conn)?;
                        rows.extend(loaded);
                    }
                    // The lease: no retry pass on any node picks these up while
                    // their push is in flight.
                    let pushable: Vec<&str> = rows
                        .iter()
                        .filter(|r| pushable(r, ask, at) && r.2.is_some() && r.3.is_some())
                        .map(|r| r.0.as_str())
                        .collect();
                    for chunk in pushable.chunks(CHUNK) {
                        diesel::update(devices::table.filter(devices::id.eq_any(chunk)))
                            .set(devices::next_push_at.eq(at + lease))
                            .execute(conn)?;
                    }
                    // Certificates of the authorities whose client is not built yet.
                    let mut missing: Vec<String> = rows
                        .iter()
                        .filter_map(|r| r.1.clone())
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
                    Ok((rows, certs))
                })
            })
            .await?;
        for (tenant, cert_pem, sealed) in certs {
            if let Err(e) = self.build_client(&tenant, &cert_pem, &sealed) {
                tracing::error!(tenant = %tenant, error = %e, "cannot build the APNs client");
            }
        }

        // One client per authority (built once, cached).
        let at = now();
        let mut by_tenant: HashMap<String, Option<ApnsClient>> = HashMap::new();
        let mut skipped = Vec::new();
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            if !pushable(&row, ask, at) {
                // Not enrolled, a dead token, or in backoff: say why only when asked now.
                if ask == Ask::Now {
                    let (state, reason) = if row.5 != EnrollmentStatus::Active {
                        (PushState::NotEnrolled, None)
                    } else {
                        (
                            PushState::InvalidToken,
                            row.6.map(|t| {
                                format!(
                                    "APNs refused this iPad's push token on {}; it is pushed again after its next TokenUpdate",
                                    t.format("%Y-%m-%d %H:%M UTC")
                                )
                            }),
                        )
                    };
                    shown.push(PushResult {
                        device_id: row.0.clone(),
                        result: state,
                        reason,
                    });
                }
                flight.land(std::slice::from_ref(&row.0));
                continue;
            }
            let (id, tenant_id, push_token, push_magic, push_failures) =
                (row.0, row.1, row.2, row.3, row.4);
            let t = Target {
                id,
                tenant_id,
                push_token,
                push_magic,
                push_failures,
            };
            let (Some(token), Some(magic)) = (t.push_token.clone(), t.push_magic.clone()) else {
                skipped.push((
                    t,
                    token_of_none(),
                    PushOutcomeOrSkip::Skip(PushState::NoToken),
                ));
                continue;
            };
            let tenant = t.tenant_id.clone().unwrap_or_default();
            let client = by_tenant
                .entry(tenant.clone())
                .or_insert_with(|| self.cached_client(&tenant))
                .clone();
            match client {
                Some(client) => jobs.push((t, client, token, magic)),
                None => skipped.push((
                    t,
                    Some(token),
                    PushOutcomeOrSkip::Skip(PushState::NoPushCertificate),
                )),
            }
        }
        if !skipped.is_empty() {
            let ids: Vec<String> = skipped.iter().map(|s| s.0.id.clone()).collect();
            shown.extend(self.record(skipped).await?);
            flight.land(&ids);
        }
        let expiration =
            chrono::Utc::now() + chrono::Duration::hours(self.settings.expiration_hours);
        let permits = self.permits.clone();
        let mut answers = jobs
            .into_iter()
            .map(|(t, client, token, magic)| {
                let permits = permits.clone();
                async move {
                    // The semaphore is never closed; without a permit, push anyway.
                    let _permit = permits.acquire_owned().await.ok();
                    let outcome = client.push(&token, &magic, expiration).await;
                    (t, Some(token), PushOutcomeOrSkip::Pushed(outcome))
                }
            })
            .collect::<stream::FuturesUnordered<_>>()
            .ready_chunks(RECORD_BATCH);
        // Each answer is stored as soon as it (and whatever arrived with it) is there.
        while let Some(batch) = answers.next().await {
            let ids: Vec<String> = batch.iter().map(|b| b.0.id.clone()).collect();
            shown.extend(self.record(batch).await?);
            flight.land(&ids);
        }
        Ok(shown)
    }

    /// Stores results, each only on a device that still has the token pushed: bulk
    /// for deliveries, one row each for the rest.
    async fn record(
        &self,
        results: Vec<(Target, Option<String>, PushOutcomeOrSkip)>,
    ) -> Result<Vec<PushResult>, DbError> {
        let at = now();
        let mut delivered: Vec<(String, String)> = Vec::new();
        let mut others = Vec::new();
        let mut shown = Vec::with_capacity(results.len());
        for (t, token, o) in results {
            let (state, reason) = match &o {
                PushOutcomeOrSkip::Skip(state) => (*state, None),
                PushOutcomeOrSkip::Pushed(PushOutcome::Delivered { apns_id }) => {
                    (PushState::Delivered, apns_id.clone())
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::InvalidToken { reason }) => {
                    (PushState::InvalidToken, Some(reason.clone()))
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::Retry { reason, .. }) => {
                    (PushState::Retry, Some(reason.clone()))
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::Failed { status, reason }) => {
                    (PushState::Failed, Some(format!("{status} {reason}")))
                }
            };
            crate::metrics::push(state.as_str());
            shown.push(PushResult {
                device_id: t.id.clone(),
                result: state,
                reason: reason.clone(),
            });
            let text = match &reason {
                Some(r) if state != PushState::Delivered => format!("{}: {r}", state.as_str()),
                _ => state.as_str().to_owned(),
            };
            match o {
                PushOutcomeOrSkip::Pushed(PushOutcome::Delivered { .. }) => {
                    if let Some(token) = token {
                        delivered.push((t.id, token));
                    }
                }
                PushOutcomeOrSkip::Pushed(retry @ PushOutcome::Retry { .. }) => {
                    let attempt = u32::try_from(t.push_failures.max(0)).unwrap_or(0);
                    let wait = self.retry_wait(&retry, attempt);
                    let next = at
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60));
                    tracing::warn!(device = %t.id, reason = reason.as_deref().unwrap_or(""), retry_in_s = wait.as_secs(), "push will be retried");
                    others.push((t.id, token, text, Some(next), t.push_failures + 1, false));
                }
                PushOutcomeOrSkip::Pushed(PushOutcome::InvalidToken { .. }) => {
                    tracing::info!(device = %t.id, reason = reason.as_deref().unwrap_or(""), "push token invalid until the next TokenUpdate");
                    others.push((t.id, token, text, None, 0, true));
                }
                _ => {
                    if state == PushState::Failed {
                        tracing::error!(device = %t.id, reason = reason.as_deref().unwrap_or(""), "push refused");
                    }
                    others.push((t.id, token, text, None, t.push_failures, false));
                }
            }
        }
        self.db
            .run(move |conn| -> Result<(), DbError> {
                conn.write_tx(|conn| -> Result<(), DbError> {
                    for chunk in delivered.chunks(CHUNK) {
                        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
                        let tokens: Vec<&str> = chunk.iter().map(|(_, t)| t.as_str()).collect();
                        // Tokens are per device: matching both sets matches each pair.
                        diesel::update(
                            devices::table
                                .filter(devices::id.eq_any(&ids))
                                .filter(devices::push_token.eq_any(&tokens)),
                        )
                        .set((
                            devices::last_push_at.eq(at),
                            devices::last_push_result.eq(PushState::Delivered.as_str()),
                            devices::push_failures.eq(0),
                            devices::next_push_at.eq(None::<chrono::NaiveDateTime>),
                        ))
                        .execute(conn)?;
                    }
                    for (id, token, text, next, failures, invalid) in others {
                        // A result for a token the device no longer has says nothing
                        // about the device (a TokenUpdate raced the push).
                        let changes = (
                            devices::last_push_at.eq(at),
                            devices::last_push_result.eq(text),
                            devices::push_failures.eq(failures),
                            devices::next_push_at.eq(next),
                            devices::push_invalid_at.eq(if invalid { Some(at) } else { None }),
                        );
                        let row = devices::table.filter(devices::id.eq(&id));
                        match token {
                            Some(token) => {
                                diesel::update(row.filter(devices::push_token.eq(token)))
                                    .set(changes)
                                    .execute(conn)?
                            }
                            None => diesel::update(row.filter(devices::push_token.is_null()))
                                .set(changes)
                                .execute(conn)?,
                        };
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(shown)
    }

    /// Devices whose retry is due, and silent devices with waiting commands; leased
    /// in the same transaction, so the next pass (here or on another node) leaves them
    /// alone while they are pushed.
    async fn due_devices(&self, sweep: bool) -> Result<Vec<String>, DbError> {
        let sweep_after = chrono::Duration::seconds(
            i64::try_from(self.settings.sweep_after_secs).unwrap_or(i64::MAX / 4),
        );
        let batch = self.settings.sweep_batch;
        let lease = self.lease();
        self.db
            .run(move |conn| -> Result<Vec<String>, DbError> {
                with_sweep_lock(conn, |conn| {
                    conn.write_tx(|conn| {
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
                        for chunk in ids.chunks(CHUNK) {
                            diesel::update(devices::table.filter(devices::id.eq_any(chunk)))
                                .set(devices::next_push_at.eq(at + lease))
                                .execute(conn)?;
                        }
                        Ok(ids)
                    })
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

/// Runs `f` under the sweep lock on PostgreSQL (returns nothing when another node
/// holds it); directly on SQLite, which has one node.
fn with_sweep_lock(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<Vec<String>, DbError>,
) -> Result<Vec<String>, DbError> {
    if let DbConn::Pg(_) = conn {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_lock({SWEEP_LOCK_KEY}) AS locked"
        ))
        .get_result(conn)?;
        if !got.locked {
            return Ok(Vec::new());
        }
        let result = f(conn);
        diesel::sql_query(format!("SELECT pg_advisory_unlock({SWEEP_LOCK_KEY})")).execute(conn)?;
        return result;
    }
    f(conn)
}

/// A push that went out, or why it did not.
enum PushOutcomeOrSkip {
    Pushed(PushOutcome),
    Skip(PushState),
}

/// Whether a loaded device is pushed for `ask` at `at`: enrolled, with a token APNs has
/// not refused, and — when only something new was queued — not in backoff.
fn pushable(row: &Row, ask: Ask, at: chrono::NaiveDateTime) -> bool {
    let (_, _, _, _, _, status, invalid_at, next_push_at) = row;
    *status == EnrollmentStatus::Active
        && invalid_at.is_none()
        && (ask != Ask::Notify || next_push_at.is_none_or(|next| next <= at))
}

fn token_of_none() -> Option<String> {
    None
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
                if let Err(e) = svc.push_devices(due, Ask::Notify).await {
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
            // One pass at a time looks for due devices; what it finds is leased, and
            // pushed in a task of its own so that a hanging push holds up no pass.
            if !svc.retrying.swap(true, Ordering::AcqRel) {
                tokio::spawn(async move {
                    // Cleared however the look ends (a panic included).
                    struct Looking<'a>(&'a AtomicBool);
                    impl Drop for Looking<'_> {
                        fn drop(&mut self) {
                            self.0.store(false, Ordering::Release);
                        }
                    }
                    let looking = Looking(&svc.retrying);
                    let found = svc.due_devices(sweep).await;
                    drop(looking);
                    match found {
                        Ok(ids) if !ids.is_empty() => {
                            if let Err(e) = svc.push_devices(ids, Ask::Due).await {
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

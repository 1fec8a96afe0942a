//! The reconciler service: runs passes on change events and at the next schedule
//! boundary (a timer, not a poll), pushes devices that got commands, and does the
//! hourly housekeeping (stale inventory refresh, retention) and the licence sync, each
//! once per tick across nodes ([`crate::jobs`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::reconcile::{self, ReconcileError, Report};
use crate::db::{Db, DbError};
use crate::jobs::{self, names, Job};
use crate::pki::CertificateAuthority;
use crate::push::PushService;
use crate::state::ProfileSigner;

/// Collect change events this long before a pass, so a burst makes one pass.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// A full pass at least this often, whatever the schedules say.
const SAFETY_PASS: Duration = Duration::from_secs(15 * 60);
/// Housekeeping interval.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);

/// What to reconcile.
#[derive(Debug)]
enum Request {
    All,
    Devices(Vec<String>),
}

/// Handle to the background reconciler.
pub struct Reconciler {
    tx: mpsc::UnboundedSender<Request>,
}

/// Everything a pass needs.
struct Ctx {
    db: Db,
    push: Arc<PushService>,
    licences: Arc<crate::licences::Licences>,
    licence_sync: Duration,
    ca: Arc<CertificateAuthority>,
    signer: Arc<ProfileSigner>,
    secrets: Arc<crate::secrets::SecretBox>,
    inventory_stale: chrono::Duration,
    retention: chrono::Duration,
}

impl Reconciler {
    /// Starts the service on the current runtime; a first full pass runs at once.
    #[expect(
        clippy::too_many_arguments,
        reason = "the services a pass needs, and its settings"
    )]
    pub fn start(
        db: Db,
        push: Arc<PushService>,
        licences: Arc<crate::licences::Licences>,
        licence_sync_minutes: u64,
        ca: Arc<CertificateAuthority>,
        signer: Arc<ProfileSigner>,
        secrets: Arc<crate::secrets::SecretBox>,
        inventory_stale_hours: i64,
        retention_days: i64,
        automatic: bool,
    ) -> Arc<Reconciler> {
        let (tx, rx) = mpsc::unbounded_channel();
        if !automatic {
            // Requests go nowhere: passes run only when called explicitly.
            drop(rx);
            return Arc::new(Reconciler { tx });
        }
        let ctx = Arc::new(Ctx {
            db,
            push,
            licences,
            licence_sync: Duration::from_secs(licence_sync_minutes.max(1) * 60),
            ca,
            signer,
            secrets,
            inventory_stale: chrono::Duration::hours(inventory_stale_hours),
            retention: chrono::Duration::days(retention_days),
        });
        tokio::spawn(run(ctx, rx));
        let _ = tx.send(Request::All);
        Arc::new(Reconciler { tx })
    }

    /// Reconcile every device (assignments or calendars changed).
    pub fn all(&self) {
        let _ = self.tx.send(Request::All);
    }

    /// Reconcile these devices (membership, enrollment or inventory changed).
    pub fn devices(&self, ids: Vec<String>) {
        if !ids.is_empty() {
            let _ = self.tx.send(Request::Devices(ids));
        }
    }
}

/// Runs one pass now for all devices or some, then pushes those that got commands.
async fn pass(ctx: &Arc<Ctx>, only: Option<Vec<String>>) -> Result<Report, ReconcileError> {
    let c = ctx.clone();
    let started = std::time::Instant::now();
    let report = ctx
        .db
        .run(move |conn| -> Result<Report, ReconcileError> {
            let sign = |p: &crate::catalog::Profile| c.signer.deliver(p, &c.secrets, &c.ca);
            reconcile::run_with(
                conn,
                chrono::Utc::now(),
                only.as_deref(),
                &sign,
                c.licences.grace(),
            )
        })
        .await?;
    crate::metrics::reconcile(started.elapsed());
    if report.installs + report.removals + report.cancelled > 0 {
        tracing::info!(
            devices = report.devices,
            installs = report.installs,
            removals = report.removals,
            cancelled = report.cancelled,
            "reconciled"
        );
    }
    ctx.push.notify(report.touched.clone());
    // Licences: associate for held-back installs, release what nothing wants, and
    // update the waiting list of the devices a partial pass looked at.
    let waited = report
        .scope
        .as_deref()
        .is_some_and(|devices| ctx.licences.any_blocked(devices));
    if !report.needed_licences.is_empty() || report.full || waited {
        match ctx.licences.after_pass(&report, chrono::Utc::now()).await {
            Ok((licensed, _)) if !licensed.is_empty() => {
                // Licences granted: the installs can go out now.
                let c = ctx.clone();
                let again = ctx
                    .db
                    .run(move |conn| -> Result<Report, ReconcileError> {
                        let sign =
                            |p: &crate::catalog::Profile| c.signer.deliver(p, &c.secrets, &c.ca);
                        reconcile::run_with(
                            conn,
                            chrono::Utc::now(),
                            Some(&licensed),
                            &sign,
                            c.licences.grace(),
                        )
                    })
                    .await?;
                ctx.push.notify(again.touched.clone());
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "licence step failed"),
        }
    }
    Ok(report)
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut next_timer = tokio::time::Instant::now() + SAFETY_PASS;
    let mut next_housekeeping = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut next_licence_sync = tokio::time::Instant::now() + Duration::from_secs(5);
    // Devices to look at again at a time of their own (from the passes' reports).
    let mut rechecks: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        let next_recheck = rechecks.values().min().copied().unwrap_or(next_timer);
        let wake = next_timer
            .min(next_housekeeping)
            .min(next_licence_sync)
            .min(next_recheck);
        let first = tokio::select! {
            r = rx.recv() => match r { Some(r) => Some(r), None => return },
            _ = tokio::time::sleep_until(wake) => None,
        };
        let now = tokio::time::Instant::now();
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING;
            housekeeping(&ctx.db, &ctx.push, ctx.inventory_stale, ctx.retention).await;
        }
        if now >= next_licence_sync {
            next_licence_sync = now + ctx.licence_sync;
            let job = Job::new(names::LICENCE_SYNC, ctx.licence_sync);
            if let Some(Err(e)) = jobs::once(&ctx.db, job, || ctx.licences.sync()).await {
                tracing::error!(error = %e, "licence sync failed");
            }
        }
        let timer_only = first.is_none();
        let mut all = timer_only && now >= next_timer;
        let mut some: HashSet<String> = HashSet::new();
        rechecks.retain(|device, at| {
            let due = *at <= now;
            if due {
                some.insert(device.clone());
            }
            !due
        });
        match first {
            Some(Request::All) => all = true,
            Some(Request::Devices(ids)) => some.extend(ids),
            None => {}
        }
        if timer_only && !all && some.is_empty() {
            continue;
        }
        // Let a burst of events arrive, then make one pass.
        tokio::time::sleep(DEBOUNCE).await;
        while let Ok(r) = rx.try_recv() {
            match r {
                Request::All => all = true,
                Request::Devices(ids) => some.extend(ids),
            }
        }
        let only = (!all).then(|| some.into_iter().collect::<Vec<_>>());
        match pass(&ctx, only).await {
            Ok(report) => {
                let in_ = |t: chrono::DateTime<chrono::Utc>| {
                    // A time already past means "soon", never "never".
                    let d = (t - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .clamp(Duration::from_secs(1), SAFETY_PASS);
                    tokio::time::Instant::now() + d
                };
                if all {
                    // Wake at the next schedule boundary, or the safety pass.
                    next_timer = report
                        .next_boundary
                        .map_or(tokio::time::Instant::now() + SAFETY_PASS, in_);
                }
                for (device, t) in report.recheck {
                    let at = in_(t);
                    rechecks
                        .entry(device)
                        .and_modify(|e| *e = (*e).min(at))
                        .or_insert(at);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile pass failed");
                next_timer = tokio::time::Instant::now() + Duration::from_secs(30);
            }
        }
    }
}

/// What one node's housekeeping did.
#[derive(Debug, Default)]
pub struct Housekeeping {
    /// The devices that got inventory commands; `None` when the refresh was another
    /// node's (or failed, which is logged).
    pub refreshed: Option<Vec<String>>,
    /// Whether this node did the pruning.
    pub pruned: bool,
}

/// The hourly housekeeping, each part once an hour across all nodes: inventory commands
/// for devices whose inventory is older than `inventory_stale` (pushed), and deleting
/// answered commands older than `retention` and SCEP challenges a day after they ended.
pub async fn housekeeping(
    db: &Db,
    push: &PushService,
    inventory_stale: chrono::Duration,
    retention: chrono::Duration,
) -> Housekeeping {
    let refresh = jobs::once(db, Job::new(names::INVENTORY_REFRESH, HOUSEKEEPING), || {
        db.run(move |conn| crate::inventory::refresh_stale(conn, inventory_stale, 5000))
    })
    .await;
    let refreshed = match refresh {
        Some(Ok(ids)) => {
            push.notify(ids.clone());
            Some(ids)
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "inventory refresh failed");
            None
        }
        None => None,
    };
    let pruned = jobs::once(db, Job::new(names::RETENTION, HOUSEKEEPING), || {
        prune(db, retention)
    })
    .await
    .is_some();
    Housekeeping { refreshed, pruned }
}

/// Deletes answered commands older than `keep`, and SCEP challenges a day after they
/// ended.
async fn prune(db: &Db, keep: chrono::Duration) {
    if let Err(e) = db
        .run(move |conn| crate::inventory::prune(conn, keep).map_err(DbError::from))
        .await
    {
        tracing::error!(error = %e, "pruning answered commands failed");
    }
    // Challenges of downloaded profiles that nobody used: a day after they ended.
    let before = crate::db::now() - chrono::Duration::days(1);
    match db
        .run(move |conn| {
            crate::enrollment::tokens::prune_challenges(conn, before).map_err(DbError::from)
        })
        .await
    {
        Ok(n) if n > 0 => tracing::info!(challenges = n, "pruned ended SCEP challenges"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "pruning SCEP challenges failed"),
    }
}

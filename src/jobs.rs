//! Periodic background work runs once per tick across every node that shares the
//! database: each job has a lease row in `job_leases`, and a node runs the job only
//! when it can claim that row.
//!
//! A claim succeeds when nobody holds the row (`held_until` passed) and the job's last
//! run started at least [`Job::every`] ago (less a tenth, so that timers drifting by a
//! little do not skip a tick). It records the holder, the end of the hold and the start
//! of this run in one conditional `UPDATE`: on PostgreSQL a second node's update waits
//! for the first's commit and then matches nothing; on SQLite there is one writer. So if
//! node A refreshed inventory at 10:00, node B's timer at 10:00:05 finds the run done
//! and does nothing, and at 11:00 whichever node comes first does it. The hold ends when
//! the run finishes ([`release`]), or at `held_until` when its node died meanwhile.
//!
//! SQLite serves one node, but the lease costs one short write per tick and keeps one
//! code path for both backends.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::job_leases;
use crate::db::{now, Db, DbConn, DbError};

/// How long a claim is held unless the job says otherwise: a node that dies mid-run
/// keeps others out of that job this long.
const DEFAULT_HOLD: Duration = Duration::from_secs(10 * 60);

/// A periodic job: the name of its lease row, how often it runs, how long a run may hold
/// the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// The lease row's name, e.g. `inventory.refresh`.
    pub name: &'static str,
    /// One run per this interval across all nodes.
    pub every: Duration,
    /// How long a claim keeps other nodes out (the longest a run may take).
    pub hold: Duration,
}

impl Job {
    /// A job named `name` that runs every `every`.
    pub const fn new(name: &'static str, every: Duration) -> Job {
        Job {
            name,
            every,
            hold: DEFAULT_HOLD,
        }
    }

    /// The same job with a hold of its own.
    pub const fn holding(self, hold: Duration) -> Job {
        Job { hold, ..self }
    }
}

/// The jobs, by name (each one's interval may come from the settings).
pub mod names {
    /// Inventory commands for devices whose inventory is stale.
    pub const INVENTORY_REFRESH: &str = "inventory.refresh";
    /// Deleting answered commands and ended SCEP challenges past their retention.
    pub const RETENTION: &str = "retention";
    /// Apps and Books (VPP) licence sync.
    pub const LICENCE_SYNC: &str = "licences.sync";
    /// Apple School Manager (ADE) device sync.
    pub const ADE_SYNC: &str = "ade.sync";
    /// `lesson.ready` / `lesson.not_ready` notices before lessons.
    pub const LESSON_NOTICES: &str = "lessons.notices";
    /// Pushes whose retry is due.
    pub const PUSH_RETRY: &str = "push.retry";
    /// Pushes to silent devices with waiting commands (includes the retries).
    pub const PUSH_SWEEP: &str = "push.sweep";
    /// Device identity renewals.
    pub const IDENTITY_RENEWAL: &str = "identity.renewal";
    /// Deleting finished webhook deliveries past their retention.
    pub const WEBHOOK_PRUNE: &str = "webhooks.prune";
}

/// A claimed run of a job; [`release`] it when the run is over.
#[derive(Debug, Clone)]
pub struct Claim {
    name: &'static str,
    holder: String,
}

/// Who holds a claim: host, process and a random part (two servers in one process,
/// as in the tests, are two holders).
fn holder() -> String {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let node = NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        format!("{host}/{}", std::process::id())
    });
    let run = uuid::Uuid::new_v4().simple().to_string();
    format!("{node}/{}", &run[..8])
}

/// The start of the last run before which a run at `at` is due: a whole interval,
/// less a tenth for timers that fire a little early.
fn due_before(at: NaiveDateTime, every: Duration) -> NaiveDateTime {
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX / 4);
    at - (every - every / 10)
}

/// Claims `job` for a run starting at `at`, in a transaction of its own: `None` when
/// another node holds it or its last run is less than an interval ago.
pub fn claim(conn: &mut DbConn, job: &Job, at: NaiveDateTime) -> QueryResult<Option<Claim>> {
    let hold = chrono::Duration::from_std(job.hold).unwrap_or(chrono::Duration::hours(1));
    let before = due_before(at, job.every);
    let holder = holder();
    conn.write_tx(|conn| {
        let row = diesel::insert_into(job_leases::table)
            .values((
                job_leases::name.eq(job.name),
                job_leases::holder.eq(None::<String>),
                job_leases::held_until.eq(chrono::DateTime::UNIX_EPOCH.naive_utc()),
                job_leases::last_run.eq(None::<NaiveDateTime>),
            ))
            .on_conflict_do_nothing();
        crate::with_backend!(conn, |c| row.execute(c))?;
        let claimed = diesel::update(
            job_leases::table
                .find(job.name)
                .filter(job_leases::held_until.le(at))
                .filter(
                    job_leases::last_run
                        .is_null()
                        .or(job_leases::last_run.le(before)),
                ),
        )
        .set((
            job_leases::holder.eq(&holder),
            job_leases::held_until.eq(at + hold),
            job_leases::last_run.eq(at),
        ))
        .execute(conn)?;
        Ok((claimed == 1).then(|| Claim {
            name: job.name,
            holder: holder.clone(),
        }))
    })
}

/// Ends the hold of `claim` (the run is over); the last run's time stays.
pub fn release(conn: &mut DbConn, claim: &Claim) -> QueryResult<()> {
    diesel::update(
        job_leases::table
            .find(claim.name)
            .filter(job_leases::holder.eq(&claim.holder)),
    )
    .set((
        job_leases::holder.eq(None::<String>),
        job_leases::held_until.eq(now()),
    ))
    .execute(conn)?;
    Ok(())
}

/// Runs `f` (blocking, with a connection) only when `job` can be claimed now, and
/// releases the claim afterwards whatever `f` returned; `Ok(None)` when the run was not
/// this node's. For jobs that are one database step.
pub fn once_blocking<T, E>(
    conn: &mut DbConn,
    job: &Job,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<Option<T>, E>
where
    E: From<DbError>,
{
    let Some(claim) = claim(conn, job, now()).map_err(|e| E::from(DbError::from(e)))? else {
        return Ok(None);
    };
    let result = f(conn);
    if let Err(e) = release(conn, &claim) {
        tracing::warn!(job = job.name, error = %e, "releasing a job's lease failed; it ends by itself");
    }
    result.map(Some)
}

/// Runs the future `f` makes only when `job` can be claimed now, and releases the claim
/// afterwards; `Ok(None)` when the run was not this node's (or the claim failed, which is
/// logged: the next tick tries again).
pub async fn once<T, Fut>(db: &Db, job: Job, f: impl FnOnce() -> Fut) -> Option<T>
where
    Fut: std::future::Future<Output = T>,
{
    let claimed = db
        .run(move |conn| claim(conn, &job, now()).map_err(DbError::from))
        .await;
    let claim = match claimed {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(job = job.name, error = %e, "claiming a background job failed");
            return None;
        }
    };
    let out = f().await;
    let c = claim.clone();
    if let Err(e) = db
        .run(move |conn| release(conn, &c).map_err(DbError::from))
        .await
    {
        tracing::warn!(job = job.name, error = %e, "releasing a job's lease failed; it ends by itself");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DatabaseUrl;

    fn db(dir: &tempfile::TempDir) -> Db {
        let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("t.db")), 2).unwrap();
        db.migrate().unwrap();
        db
    }

    fn at(s: &str) -> NaiveDateTime {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_job_runs_once_per_interval_whoever_asks() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        let job = Job::new("t.hourly", Duration::from_secs(3600));
        let a = claim(&mut conn, &job, at("2026-12-08 10:00:00")).unwrap();
        assert!(a.is_some(), "the first node runs it");
        // While A runs, nobody else; after it finished, not again within the hour.
        assert!(claim(&mut conn, &job, at("2026-12-08 10:00:05"))
            .unwrap()
            .is_none());
        release(&mut conn, &a.unwrap()).unwrap();
        assert!(claim(&mut conn, &job, at("2026-12-08 10:00:05"))
            .unwrap()
            .is_none());
        // A timer that fires a little early still gets the next tick.
        assert!(claim(&mut conn, &job, at("2026-12-08 10:59:30"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_node_that_died_mid_run_holds_the_job_only_until_its_hold_ends() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        let job = Job::new("t.minute", Duration::from_secs(60)).holding(Duration::from_secs(300));
        assert!(claim(&mut conn, &job, at("2026-12-08 10:00:00"))
            .unwrap()
            .is_some());
        // Never released: the next ticks find it held.
        assert!(claim(&mut conn, &job, at("2026-12-08 10:01:00"))
            .unwrap()
            .is_none());
        assert!(claim(&mut conn, &job, at("2026-12-08 10:05:00"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn jobs_have_leases_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir);
        let mut conn = db.get().unwrap();
        let t = at("2026-12-08 10:00:00");
        let a = Job::new("t.a", Duration::from_secs(60));
        let b = Job::new("t.b", Duration::from_secs(60));
        assert!(claim(&mut conn, &a, t).unwrap().is_some());
        assert!(claim(&mut conn, &b, t).unwrap().is_some());
        let ran = once_blocking(&mut conn, &a, |_| Ok::<_, DbError>(1)).unwrap();
        assert_eq!(ran, None, "still held");
    }
}

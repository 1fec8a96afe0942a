//! Is class 7b ready for the lesson? Per device: every requested app installed, or
//! pending, or failed (with Apple's error), and whether the iPad has been offline; a
//! summary such as "28 of 30 ready". Also the watcher that sends "ready" / "not ready"
//! notifications shortly before each lesson.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::{LessonRequest, RequestStatus};
use crate::assign::views::{self, state_of, ItemProgress};
use crate::assign::Assignment;
use crate::db::schema::{assignments, devices, lesson_requests, schools};
use crate::db::{Db, DbConn, DbError};
use crate::notify::Notifier;

/// A device counts as offline when not seen for this long.
const OFFLINE_AFTER: chrono::Duration = chrono::Duration::minutes(60);

crate::text_enum! {
    /// Whether one device is ready for the lesson.
    pub enum DeviceState("device readiness") {
        /// Every app installed.
        Ready = "ready",
        /// Something is still on its way.
        Pending = "pending",
        /// The iPad accepted every install; an app is still downloading.
        Installing = "installing",
        /// An install failed.
        Failed = "failed",
        /// A licensed app has no licence for this device.
        NoLicence = "no licence",
    }
}

/// One device's readiness.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceReadiness {
    /// UDID.
    pub udid: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Ready or not, and why.
    pub state: DeviceState,
    /// Per app: item key → where it stands.
    pub apps: std::collections::BTreeMap<String, ItemProgress>,
    /// Apple's error chain of a failed install.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    /// Last contact, when longer ago than an hour.
    #[serde(with = "crate::time::utc_opt")]
    pub offline_since: Option<chrono::NaiveDateTime>,
}

/// Readiness of a request's target.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Devices ready.
    pub ready: usize,
    /// Devices in the class or cart.
    pub devices: usize,
    /// Devices whose apps are still downloading.
    pub installing: usize,
    /// Devices waiting for an install to go out (scheduled or queued).
    pub pending: usize,
    /// Devices that will get no licence for an app.
    pub no_licence: usize,
    /// Devices where an install failed.
    pub failed: usize,
    /// "3 of 30 ready, 27 installing"; "0 of 30 ready, no licence for 30 of 30".
    pub summary: String,
    /// Per device.
    pub items: Vec<DeviceReadiness>,
}

/// Readiness of a request at `at`; `blocked` are the devices the licence service held
/// back (their apps show as `no licence`).
pub fn readiness(
    conn: &mut DbConn,
    r: &LessonRequest,
    at: DateTime<Utc>,
    blocked: &[crate::licences::Blocked],
) -> QueryResult<Readiness> {
    let linked: Vec<Assignment> = assignments::table
        .filter(assignments::lesson_request_id.eq(&r.id))
        .filter(assignments::deleted_at.is_null())
        .select(Assignment::as_select())
        .load(conn)?;
    let targets = match linked.first() {
        Some(a) => views::target_devices(conn, a)?,
        None => Vec::new(),
    };
    // The apps asked for, and for licensed ones the devices that will get no licence.
    let serials = crate::licences::serials_of(conn, &targets)?;
    let mut keys = Vec::new();
    for a in &linked {
        if let Some((bundle, adam, licensed)) = crate::db::schema::apps::table
            .find(&a.item_id)
            .select((
                crate::db::schema::apps::bundle_id,
                crate::db::schema::apps::adam_id,
                crate::db::schema::apps::licensed,
            ))
            .first::<(String, Option<String>, bool)>(conn)
            .optional()?
        {
            let short = match (&adam, licensed) {
                (Some(adam), true) => {
                    crate::licences::licence_gap(conn, &r.tenant_id, adam, &serials)?.short
                }
                _ => Default::default(),
            };
            keys.push((crate::queue::ItemKey::app(&bundle), adam, short));
        }
    }
    let mut items = Vec::new();
    for (id, udid) in &targets {
        let (name, seen): (Option<String>, Option<chrono::NaiveDateTime>) = devices::table
            .find(id)
            .select((devices::name, devices::last_seen_at))
            .first(conn)?;
        let mut apps = std::collections::BTreeMap::new();
        let mut error = None;
        for (k, adam, short) in &keys {
            let (mut s, chain) = state_of(conn, id, k, None, true)?;
            if chain.is_some() {
                error = chain;
            }
            let held_back = blocked
                .iter()
                .any(|b| &b.device_id == id && Some(&b.adam_id) == adam.as_ref());
            if s != ItemProgress::Installed
                && s != ItemProgress::Installing
                && (held_back || short.contains(id))
            {
                s = ItemProgress::NoLicence;
            }
            apps.insert(k.to_string(), s);
        }
        let offline_since =
            seen.filter(|t| at.naive_utc() - *t > OFFLINE_AFTER)
                .or(if seen.is_none() {
                    Some(chrono::NaiveDateTime::MIN)
                } else {
                    None
                });
        items.push(DeviceReadiness {
            udid: udid.clone(),
            name,
            state: device_state(apps.values()),
            apps,
            error,
            offline_since: offline_since.filter(|t| *t != chrono::NaiveDateTime::MIN),
        });
    }
    Ok(summarise(items))
}

/// One device's readiness from its apps' states: failed before no licence before
/// pending before installing; ready when every app is installed.
fn device_state<'a>(apps: impl Iterator<Item = &'a ItemProgress> + Clone) -> DeviceState {
    let any = |p: ItemProgress| apps.clone().any(|s| *s == p);
    if apps.clone().next().is_some() && apps.clone().all(|s| *s == ItemProgress::Installed) {
        DeviceState::Ready
    } else if any(ItemProgress::Failed) {
        DeviceState::Failed
    } else if any(ItemProgress::NoLicence) {
        DeviceState::NoLicence
    } else if apps
        .clone()
        .all(|s| matches!(s, ItemProgress::Installed | ItemProgress::Installing))
        && any(ItemProgress::Installing)
    {
        DeviceState::Installing
    } else {
        DeviceState::Pending
    }
}

/// Counts per state and the sentence a teacher reads.
fn summarise(items: Vec<DeviceReadiness>) -> Readiness {
    let count = |state: DeviceState| items.iter().filter(|i| i.state == state).count();
    let n = items.len();
    let (ready, installing, pending, no_licence, failed) = (
        count(DeviceState::Ready),
        count(DeviceState::Installing),
        count(DeviceState::Pending),
        count(DeviceState::NoLicence),
        count(DeviceState::Failed),
    );
    let mut summary = format!("{ready} of {n} ready");
    for (k, words) in [
        (installing, "installing"),
        (pending, "waiting"),
        (failed, "failed"),
    ] {
        if k > 0 {
            summary.push_str(&format!(", {k} {words}"));
        }
    }
    if no_licence > 0 {
        summary.push_str(&format!(", no licence for {no_licence} of {n}"));
    }
    Readiness {
        ready,
        devices: n,
        installing,
        pending,
        no_licence,
        failed,
        summary,
        items,
    }
}

/// Sends "lesson.ready" / "lesson.not_ready" for lessons starting within `before`
/// (once per occurrence, also when two nodes look at once: the notice goes with the
/// update that marks the occurrence notified, and its delivery id is derived from the
/// request and the lesson's start). Returns how many notices were queued.
pub fn notify_due(
    conn: &mut DbConn,
    at: DateTime<Utc>,
    before: chrono::Duration,
    notifier: &Notifier,
    blocked: &[crate::licences::Blocked],
) -> QueryResult<usize> {
    let approved: Vec<LessonRequest> = lesson_requests::table
        .filter(lesson_requests::status.eq(RequestStatus::Approved))
        .select(LessonRequest::as_select())
        .load(conn)?;
    let mut sent = 0;
    for r in approved {
        let (tz, lead) = {
            let tz: String = schools::table
                .find(&r.school_id)
                .select(schools::timezone)
                .first(conn)?;
            (tz, super::settings(conn, &r.school_id)?.lead_minutes)
        };
        let Ok(schedule) = r.schedule(&tz, lead) else {
            continue;
        };
        let calendars = crate::assign::calendars(conn)?;
        let cal = calendars.for_place(Some(&r.tenant_id), Some(&r.school_id));
        let Some(start) = schedule.next_window_start_after(at, &cal) else {
            continue;
        };
        if start - at > before || r.notified_start == Some(start.naive_utc()) {
            continue;
        }
        let ready = readiness(conn, &r, at, blocked)?;
        let event = if ready.ready == ready.devices && ready.devices > 0 {
            "lesson.ready"
        } else {
            "lesson.not_ready"
        };
        let occurrence = start.naive_utc();
        sent += conn.write_tx(|conn| -> QueryResult<usize> {
            // Another node may have sent this notice since this one looked: only the
            // update that finds the occurrence not yet notified sends it.
            let unsent = diesel::update(
                lesson_requests::table.find(&r.id).filter(
                    lesson_requests::notified_start
                        .is_null()
                        .or(lesson_requests::notified_start.ne(occurrence)),
                ),
            )
            .set(lesson_requests::notified_start.eq(occurrence))
            .execute(conn)?;
            if unsent == 0 {
                return Ok(0);
            }
            notifier.enqueue(
                conn,
                event,
                &format!("{} {}", r.id, start.to_rfc3339()),
                Some(&r.tenant_id),
                Some(&r.school_id),
                serde_json::json!({"request_id": r.id, "teacher_id": r.teacher_id, "starts_at": start, "ready": ready.ready, "devices": ready.devices, "summary": ready.summary,
                    "not_ready": ready.items.iter().filter(|i| i.state != DeviceState::Ready).map(|i| serde_json::json!({"udid": i.udid, "state": i.state, "offline_since": i.offline_since})).collect::<Vec<_>>()}),
            )?;
            Ok(1)
        })?;
    }
    Ok(sent)
}

/// How often the watcher looks for lessons about to start.
const WATCH_EVERY: Duration = Duration::from_secs(60);

/// One look at `at` for lessons starting within `before_minutes`, once a minute across
/// all nodes ([`crate::jobs`]): `None` when it was another node's turn, else the notices
/// queued (errors are logged).
pub async fn notice_tick(
    db: &Db,
    notifier: &Arc<Notifier>,
    licences: &crate::licences::Licences,
    at: DateTime<Utc>,
    before_minutes: i64,
) -> Option<usize> {
    let job = crate::jobs::Job::new(crate::jobs::names::LESSON_NOTICES, WATCH_EVERY)
        .holding(Duration::from_secs(5 * 60));
    crate::jobs::once(db, job, || async {
        let n = notifier.clone();
        let blocked = licences.blocked();
        let result = db
            .run(move |conn| {
                notify_due(
                    conn,
                    at,
                    chrono::Duration::minutes(before_minutes),
                    &n,
                    &blocked,
                )
                .map_err(DbError::from)
            })
            .await;
        match result {
            Ok(k) => {
                if k > 0 {
                    notifier.wake();
                }
                k
            }
            Err(e) => {
                tracing::error!(error = %e, "lesson readiness check failed");
                0
            }
        }
    })
    .await
}

/// Checks once a minute for lessons about to start.
pub fn start_watcher(
    db: Db,
    notifier: Arc<Notifier>,
    licences: Arc<crate::licences::Licences>,
    before_minutes: i64,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            notice_tick(&db, &notifier, &licences, Utc::now(), before_minutes).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(state: DeviceState) -> DeviceReadiness {
        DeviceReadiness {
            udid: None,
            name: None,
            state,
            apps: Default::default(),
            error: None,
            offline_since: None,
        }
    }

    #[test]
    fn a_device_is_ready_only_when_every_app_is_installed() {
        use ItemProgress::*;
        assert_eq!(
            device_state([Installed, Installed].iter()),
            DeviceState::Ready
        );
        assert_eq!(
            device_state([Installed, Installing].iter()),
            DeviceState::Installing
        );
        assert_eq!(
            device_state([Installing, PendingInstall].iter()),
            DeviceState::Pending
        );
        assert_eq!(device_state([Scheduled].iter()), DeviceState::Pending);
        assert_eq!(
            device_state([Installing, NoLicence].iter()),
            DeviceState::NoLicence
        );
        assert_eq!(
            device_state([NoLicence, Failed].iter()),
            DeviceState::Failed
        );
        assert_eq!(
            device_state([].iter()),
            DeviceState::Pending,
            "nothing asked for: not ready"
        );
    }

    #[test]
    fn the_summary_names_what_is_not_ready() {
        let mut items: Vec<DeviceReadiness> =
            (0..27).map(|_| device(DeviceState::Installing)).collect();
        items.extend((0..3).map(|_| device(DeviceState::Ready)));
        let r = summarise(items);
        assert_eq!(r.summary, "3 of 30 ready, 27 installing");
        assert_eq!((r.ready, r.installing, r.devices), (3, 27, 30));

        let r = summarise((0..30).map(|_| device(DeviceState::NoLicence)).collect());
        assert_eq!(r.summary, "0 of 30 ready, no licence for 30 of 30");
        assert_eq!(r.no_licence, 30);

        let r = summarise(vec![
            device(DeviceState::Ready),
            device(DeviceState::Pending),
            device(DeviceState::Failed),
        ]);
        assert_eq!(r.summary, "1 of 3 ready, 1 waiting, 1 failed");
        assert_eq!(summarise(Vec::new()).summary, "0 of 0 ready");
    }
}

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
    /// "28 of 30 ready".
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
    let mut keys = Vec::new();
    for a in &linked {
        if let Some((k, adam)) = crate::db::schema::apps::table
            .find(&a.item_id)
            .select((
                crate::db::schema::apps::bundle_id,
                crate::db::schema::apps::adam_id,
            ))
            .first::<(String, Option<String>)>(conn)
            .optional()?
        {
            keys.push((crate::queue::ItemKey::app(&k), adam));
        }
    }
    let mut items = Vec::new();
    let mut ready = 0;
    for (id, udid) in &targets {
        let (name, seen): (Option<String>, Option<chrono::NaiveDateTime>) = devices::table
            .find(id)
            .select((devices::name, devices::last_seen_at))
            .first(conn)?;
        let mut apps = std::collections::BTreeMap::new();
        let mut error = None;
        for (k, adam) in &keys {
            let (mut s, chain) = state_of(conn, id, k, None, true)?;
            if chain.is_some() {
                error = chain;
            }
            if s != ItemProgress::Installed
                && blocked
                    .iter()
                    .any(|b| &b.device_id == id && Some(&b.adam_id) == adam.as_ref())
            {
                s = ItemProgress::NoLicence;
            }
            apps.insert(k.to_string(), s);
        }
        let state = if !apps.is_empty() && apps.values().all(|s| *s == ItemProgress::Installed) {
            ready += 1;
            DeviceState::Ready
        } else if apps.values().any(|s| *s == ItemProgress::Failed) {
            DeviceState::Failed
        } else if apps.values().any(|s| *s == ItemProgress::NoLicence) {
            DeviceState::NoLicence
        } else {
            DeviceState::Pending
        };
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
            state,
            apps,
            error,
            offline_since: offline_since.filter(|t| *t != chrono::NaiveDateTime::MIN),
        });
    }
    Ok(Readiness {
        ready,
        devices: targets.len(),
        summary: format!("{ready} of {} ready", targets.len()),
        items,
    })
}

/// Sends "lesson.ready" / "lesson.not_ready" for lessons starting within `before`
/// (once per occurrence). Returns how many notices were queued.
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
        conn.write_tx(|conn| {
            notifier.enqueue(
                conn,
                event,
                Some(&r.tenant_id),
                Some(&r.school_id),
                serde_json::json!({"request_id": r.id, "teacher_id": r.teacher_id, "starts_at": start, "ready": ready.ready, "devices": ready.devices, "summary": ready.summary,
                    "not_ready": ready.items.iter().filter(|i| i.state != DeviceState::Ready).map(|i| serde_json::json!({"udid": i.udid, "state": i.state, "offline_since": i.offline_since})).collect::<Vec<_>>()}),
            )?;
            diesel::update(lesson_requests::table.find(&r.id))
                .set(lesson_requests::notified_start.eq(start.naive_utc()))
                .execute(conn)
        })?;
        sent += 1;
    }
    Ok(sent)
}

/// Checks once a minute for lessons about to start.
pub fn start_watcher(
    db: Db,
    notifier: Arc<Notifier>,
    licences: Arc<crate::licences::Licences>,
    before_minutes: i64,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let n = notifier.clone();
            let blocked = licences.blocked();
            let result = db
                .run(move |conn| {
                    notify_due(
                        conn,
                        Utc::now(),
                        chrono::Duration::minutes(before_minutes),
                        &n,
                        &blocked,
                    )
                    .map_err(DbError::from)
                })
                .await;
            match result {
                Ok(k) if k > 0 => notifier.wake(),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "lesson readiness check failed"),
            }
        }
    });
}

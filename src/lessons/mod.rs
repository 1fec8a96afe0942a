//! Teachers' lesson requests: "apps A, B for 7b on Tuesday, 2nd–3rd period".
//!
//! A request names a class or cart of the teacher's school, catalog apps, a date with
//! a time range or the school's named periods, optionally weekly until a date, and
//! whether the apps stay afterwards. Rules per school decide: apps on the school's
//! approved list are approved at once, others wait for a school (or authority) admin;
//! a request must arrive `min_notice_minutes` before the lesson and may last at most
//! `max_duration_minutes`. An approved request becomes one scheduled assignment per
//! app, with the school's lead time, so the apps are on the iPads before the lesson.

pub mod readiness;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::assign::schedule::{PeriodTable, Schedule};
use crate::assign::{self, ItemKind, NewAssignment, TargetKind};
use crate::audit;
use crate::db::schema::{approved_apps, apps, assignments, lesson_requests, lesson_settings};
use crate::db::{new_id, now, DbConn};
use crate::notify::Notifier;

crate::text_enum! {
    /// A lesson request's state, as stored.
    pub enum RequestStatus("lesson request status") {
        /// Waiting for an admin.
        Pending = "pending",
        /// Approved: assignments exist.
        Approved = "approved",
        /// Rejected with a reason.
        Rejected = "rejected",
        /// Withdrawn by the teacher or an admin.
        Cancelled = "cancelled",
    }
}

/// A school's lesson rules.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LessonSettings {
    /// Named periods, e.g. `{"1": {"start": "08:00", "end": "08:45"}, …}`. Lesson
    /// requests and assignment schedules name them ("2-3", "Di 2-3"); assignments follow
    /// changed times at once, and a period an assignment names cannot be removed.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub periods: serde_json::Value,
    /// A request must arrive this many minutes before the lesson (default 30).
    #[serde(default = "default_notice")]
    pub min_notice_minutes: i32,
    /// Longest lesson in minutes (default 240).
    #[serde(default = "default_duration")]
    pub max_duration_minutes: i32,
    /// Apps are installed this many minutes before the lesson (default 60).
    #[serde(default = "default_lead")]
    pub lead_minutes: i32,
    /// Apps approved for requests without an admin (catalog ids).
    #[serde(default)]
    pub approved_app_ids: Vec<String>,
}

fn default_notice() -> i32 {
    30
}
fn default_duration() -> i32 {
    240
}
fn default_lead() -> i32 {
    60
}

impl Default for LessonSettings {
    fn default() -> Self {
        LessonSettings {
            periods: serde_json::json!({}),
            min_notice_minutes: default_notice(),
            max_duration_minutes: default_duration(),
            lead_minutes: default_lead(),
            approved_app_ids: Vec::new(),
        }
    }
}

/// A lesson request as stored and shown.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, Insertable, utoipa::ToSchema)]
#[diesel(table_name = lesson_requests)]
pub struct LessonRequest {
    /// Id.
    pub id: String,
    /// Authority.
    pub tenant_id: String,
    /// School.
    pub school_id: String,
    /// The requesting teacher.
    pub teacher_id: String,
    /// `class` or `group`.
    pub target_kind: String,
    /// Class or group id.
    pub target_id: String,
    /// Catalog app ids, JSON array.
    #[serde(skip)]
    pub app_ids: String,
    /// First (or only) lesson date.
    pub lesson_date: String,
    /// Local start.
    pub start_time: String,
    /// Local end.
    pub end_time: String,
    /// Weekly until this date.
    pub repeat_until: Option<String>,
    /// `remove` or `keep`.
    pub after_lesson: String,
    /// The teacher's note.
    pub note: Option<String>,
    /// Its state.
    pub status: RequestStatus,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "crate::time::utc_opt")]
    pub decided_at: Option<chrono::NaiveDateTime>,
    /// Why (rejections).
    pub reason: Option<String>,
    /// Start of the occurrence the readiness notice was sent for.
    #[serde(skip)]
    pub notified_start: Option<chrono::NaiveDateTime>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Changed.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// An app of a request, by name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestedApp {
    /// Catalog id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Bundle id.
    pub bundle_id: String,
}

/// A lesson request as people read it: names beside the ids.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// The request.
    #[serde(flatten)]
    pub request: LessonRequest,
    /// Catalog app ids.
    pub app_ids: Vec<String>,
    /// The apps, by name (in the order requested; apps deleted since are left out).
    pub apps: Vec<RequestedApp>,
    /// The teacher's name.
    pub teacher_name: Option<String>,
    /// The class's or cart's name.
    pub target_name: Option<String>,
    /// Apps of an open request that not every iPad will get a licence for.
    pub licence_shortfalls: Vec<LicenceShortfall>,
}

/// A requested app without enough licences for the class or cart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenceShortfall {
    /// Catalog id.
    pub app_id: String,
    /// Name.
    pub app_name: String,
    /// iPads that will get no licence.
    pub without_licence: usize,
    /// iPads in the class or cart.
    pub devices: usize,
    /// Licences the authority has free.
    pub available: i64,
    /// "Pages: no licence for 30 of 30 iPads (0 free)".
    pub message: String,
}

/// The devices (id, UDID) of a request's class or cart.
pub fn target_devices(
    conn: &mut DbConn,
    r: &LessonRequest,
) -> QueryResult<Vec<(String, Option<String>)>> {
    let kind = if r.target_kind == TargetKind::Class.as_str() {
        "class"
    } else {
        "group"
    };
    crate::assign::views::devices_of_target(conn, kind, &r.target_id)
}

/// Licence gaps already computed for a page: (class or cart, App Store id) → gap, and
/// the devices with serials of each class or cart.
#[derive(Default)]
struct GapCache {
    devices: std::collections::HashMap<String, Vec<(String, Option<String>)>>,
    gaps: std::collections::HashMap<(String, String), crate::licences::LicenceGap>,
}

/// The licensed apps of an open request, whose lesson is still to come, that its class
/// or cart will run short of. Requests of one page share their classes' gaps.
fn licence_shortfalls(
    conn: &mut DbConn,
    r: &LessonRequest,
    apps: &[&LicensedApp],
    cache: &mut GapCache,
) -> QueryResult<Vec<LicenceShortfall>> {
    let last_day = r.repeat_until.as_deref().unwrap_or(&r.lesson_date);
    let today = chrono::Utc::now().date_naive().to_string();
    if apps.is_empty()
        || !matches!(r.status, RequestStatus::Pending | RequestStatus::Approved)
        || last_day < today.as_str()
    {
        return Ok(Vec::new());
    }
    if !cache.devices.contains_key(&r.target_id) {
        let targets = target_devices(conn, r)?;
        let serials = crate::licences::serials_of(conn, &targets)?;
        cache.devices.insert(r.target_id.clone(), serials);
    }
    let serials = cache.devices.get(&r.target_id).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for app in apps {
        let key = (r.target_id.clone(), app.adam_id.clone());
        let gap = match cache.gaps.get(&key) {
            Some(gap) => gap.clone(),
            None => {
                let gap = crate::licences::licence_gap(conn, &r.tenant_id, &app.adam_id, &serials)?;
                cache.gaps.insert(key, gap.clone());
                gap
            }
        };
        if !gap.short.is_empty() {
            out.push(LicenceShortfall {
                app_id: app.id.clone(),
                app_name: app.name.clone(),
                without_licence: gap.short.len(),
                devices: serials.len(),
                available: gap.available,
                message: format!(
                    "{}: no licence for {} of {} iPads ({} free)",
                    app.name,
                    gap.short.len(),
                    serials.len(),
                    gap.available.max(0)
                ),
            });
        }
    }
    Ok(out)
}

/// An app that needs a licence from Apps and Books.
struct LicensedApp {
    id: String,
    name: String,
    adam_id: String,
}

/// Requests with the names of their teacher, class or cart and apps (one query per kind,
/// whatever the number of requests).
pub fn views(conn: &mut DbConn, requests: Vec<LessonRequest>) -> QueryResult<Vec<RequestView>> {
    use crate::db::schema::{classes, device_groups, users};
    use std::collections::HashMap;
    let ids = |f: &dyn Fn(&LessonRequest) -> Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = requests.iter().filter_map(f).map(str::to_owned).collect();
        v.sort();
        v.dedup();
        v
    };
    let teacher_ids = ids(&|r| Some(r.teacher_id.as_str()));
    let class_ids =
        ids(&|r| (r.target_kind == TargetKind::Class.as_str()).then_some(r.target_id.as_str()));
    let group_ids =
        ids(&|r| (r.target_kind != TargetKind::Class.as_str()).then_some(r.target_id.as_str()));
    let app_ids: Vec<String> = {
        let mut v: Vec<String> = requests.iter().flat_map(LessonRequest::apps).collect();
        v.sort();
        v.dedup();
        v
    };
    let teachers: HashMap<String, String> = users::table
        .filter(users::id.eq_any(&teacher_ids))
        .select((users::id, users::name))
        .load(conn)?
        .into_iter()
        .collect();
    let mut targets: HashMap<String, String> = classes::table
        .filter(classes::id.eq_any(&class_ids))
        .select((classes::id, classes::name))
        .load(conn)?
        .into_iter()
        .collect();
    targets.extend(
        device_groups::table
            .filter(device_groups::id.eq_any(&group_ids))
            .select((device_groups::id, device_groups::name))
            .load::<(String, String)>(conn)?,
    );
    let mut licensed: HashMap<String, LicensedApp> = HashMap::new();
    let mut apps_by_id: HashMap<String, RequestedApp> = HashMap::new();
    for (id, name, bundle_id, adam, needs) in apps::table
        .filter(apps::id.eq_any(&app_ids))
        .select((
            apps::id,
            apps::name,
            apps::bundle_id,
            apps::adam_id,
            apps::licensed,
        ))
        .load::<(String, String, String, Option<String>, bool)>(conn)?
    {
        if let (Some(adam_id), true) = (adam, needs) {
            licensed.insert(
                id.clone(),
                LicensedApp {
                    id: id.clone(),
                    name: name.clone(),
                    adam_id,
                },
            );
        }
        apps_by_id.insert(
            id.clone(),
            RequestedApp {
                id,
                name,
                bundle_id,
            },
        );
    }
    let mut out = Vec::with_capacity(requests.len());
    let mut cache = GapCache::default();
    for request in requests {
        let app_ids = request.apps();
        let needing: Vec<&LicensedApp> = app_ids.iter().filter_map(|id| licensed.get(id)).collect();
        out.push(RequestView {
            apps: app_ids
                .iter()
                .filter_map(|id| apps_by_id.get(id).cloned())
                .collect(),
            licence_shortfalls: licence_shortfalls(conn, &request, &needing, &mut cache)?,
            app_ids,
            teacher_name: teachers.get(&request.teacher_id).cloned(),
            target_name: targets.get(&request.target_id).cloned(),
            request,
        });
    }
    Ok(out)
}

impl LessonRequest {
    /// The requested app ids.
    pub fn apps(&self) -> Vec<String> {
        serde_json::from_str(&self.app_ids).unwrap_or_default()
    }

    /// The schedule this request stands for.
    pub fn schedule(&self, timezone: &str, lead_minutes: i32) -> Result<Schedule, LessonError> {
        let mut s = serde_json::json!({
            "kind": "windows",
            "timezone": timezone,
            "lead_minutes": lead_minutes,
            "after": self.after_lesson,
            "exclude_holidays": true,
        });
        match &self.repeat_until {
            Some(until) => {
                let date: NaiveDate = self
                    .lesson_date
                    .parse()
                    .map_err(|_| invalid("date", "YYYY-MM-DD"))?;
                let weekday = format!("{:?}", chrono::Datelike::weekday(&date)).to_lowercase();
                s["weekly"] = serde_json::json!([{"weekday": weekday, "start": self.start_time, "end": self.end_time}]);
                s["valid_from"] = serde_json::json!(self.lesson_date);
                s["valid_until"] = serde_json::json!(until);
            }
            None => {
                s["dates"] = serde_json::json!([{"date": self.lesson_date, "start": self.start_time, "end": self.end_time}]);
            }
        }
        Schedule::parse_json(&s).map_err(|e| invalid("schedule", e.to_string()))
    }
}

/// What a teacher sends.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// `class` or `group`.
    pub target_kind: TargetKind,
    /// Class or cart id.
    pub target_id: String,
    /// Catalog app ids.
    pub app_ids: Vec<String>,
    /// Lesson date, `YYYY-MM-DD`.
    pub date: String,
    /// Local start `HH:MM` (or give `periods`).
    #[serde(default)]
    pub start: Option<String>,
    /// Local end `HH:MM`.
    #[serde(default)]
    pub end: Option<String>,
    /// The school's periods, e.g. `"2-3"` or `"2"`.
    #[serde(default)]
    pub periods: Option<String>,
    /// Weekly until this date.
    #[serde(default)]
    pub repeat_until: Option<String>,
    /// Remove the apps after the lesson (default true).
    #[serde(default)]
    pub remove_after: Option<bool>,
    /// A note for the admin.
    #[serde(default)]
    pub note: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// Bad input.
    #[error("{field}: {message}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Not in a state for this.
    #[error("{0}")]
    Conflict(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> LessonError {
    LessonError::Invalid {
        field,
        message: message.into(),
    }
}

/// A school's settings (defaults when none are stored).
pub fn settings(conn: &mut DbConn, school_id: &str) -> QueryResult<LessonSettings> {
    let row: Option<(String, i32, i32, i32)> = lesson_settings::table
        .find(school_id)
        .select((
            lesson_settings::periods,
            lesson_settings::min_notice_minutes,
            lesson_settings::max_duration_minutes,
            lesson_settings::lead_minutes,
        ))
        .first(conn)
        .optional()?;
    let approved: Vec<String> = approved_apps::table
        .filter(approved_apps::school_id.eq(school_id))
        .select(approved_apps::app_id)
        .order(approved_apps::app_id.asc())
        .load(conn)?;
    Ok(match row {
        Some((periods, notice, duration, lead)) => LessonSettings {
            periods: serde_json::from_str(&periods).unwrap_or_default(),
            min_notice_minutes: notice,
            max_duration_minutes: duration,
            lead_minutes: lead,
            approved_app_ids: approved,
        },
        None => LessonSettings {
            approved_app_ids: approved,
            ..LessonSettings::default()
        },
    })
}

/// Stores a school's settings (replacing them); audited.
pub fn save_settings(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    s: &LessonSettings,
    actor: &str,
) -> Result<(), LessonError> {
    let table =
        PeriodTable::parse_json(&s.periods).map_err(|e| invalid("periods", e.to_string()))?;
    if let Some((id, e)) = assign::broken_by_periods(conn, school_id, &table)? {
        return Err(invalid(
            "periods",
            format!("assignment {id} names a period these lack ({e}); change or delete it first"),
        ));
    }
    if !(0..=10_080).contains(&s.min_notice_minutes) {
        return Err(invalid("min_notice_minutes", "0 to 10080"));
    }
    if !(15..=720).contains(&s.max_duration_minutes) {
        return Err(invalid("max_duration_minutes", "15 to 720"));
    }
    if !(0..=1440).contains(&s.lead_minutes) {
        return Err(invalid("lead_minutes", "0 to 1440"));
    }
    let known: i64 = apps::table
        .filter(apps::id.eq_any(&s.approved_app_ids))
        .filter(apps::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    if known != s.approved_app_ids.len() as i64 {
        return Err(invalid(
            "approved_app_ids",
            "every id must be a catalog app",
        ));
    }
    let before = settings(conn, school_id)?;
    diesel::delete(lesson_settings::table.find(school_id)).execute(conn)?;
    diesel::insert_into(lesson_settings::table)
        .values((
            lesson_settings::school_id.eq(school_id),
            lesson_settings::periods.eq(s.periods.to_string()),
            lesson_settings::min_notice_minutes.eq(s.min_notice_minutes),
            lesson_settings::max_duration_minutes.eq(s.max_duration_minutes),
            lesson_settings::lead_minutes.eq(s.lead_minutes),
            lesson_settings::updated_at.eq(now()),
        ))
        .execute(conn)?;
    diesel::delete(approved_apps::table.filter(approved_apps::school_id.eq(school_id)))
        .execute(conn)?;
    for a in &s.approved_app_ids {
        diesel::insert_into(approved_apps::table)
            .values((
                approved_apps::school_id.eq(school_id),
                approved_apps::app_id.eq(a),
            ))
            .execute(conn)?;
    }
    audit::record(
        conn,
        &audit::Entry::new(actor, "update", "lesson_settings")
            .object(school_id)
            .scope(Some(tenant_id), Some(school_id))
            .summary(serde_json::json!({"before": before, "after": s})),
    )?;
    Ok(())
}

fn parse_time(field: &'static str, t: &str) -> Result<NaiveTime, LessonError> {
    NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| invalid(field, "HH:MM"))
}

/// Creates a request (the caller checked the teacher may use the target), approving it
/// at once when every app is on the school's approved list. Returns the request.
/// Loads the school's rules and the apps, decides in [`draft`] (pure), then writes.
#[expect(
    clippy::too_many_arguments,
    reason = "one request, its context and the notifier"
)]
pub fn create(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    timezone: &str,
    teacher_id: &str,
    input: &NewRequest,
    at: chrono::DateTime<Utc>,
    notifier: &Notifier,
) -> Result<LessonRequest, LessonError> {
    let rules = settings(conn, school_id)?;
    // Look up at most the 20 apps a request may name (`draft` refuses more).
    let mut ids = input.app_ids.clone();
    ids.sort();
    ids.dedup();
    let found: Vec<(String, Option<String>)> = if (1..=MAX_APPS).contains(&ids.len()) {
        apps::table
            .filter(apps::id.eq_any(&ids))
            .filter(apps::deleted_at.is_null())
            .select((apps::id, apps::tenant_id))
            .load(conn)?
    } else {
        Vec::new()
    };
    let place = Place {
        tenant_id,
        school_id,
        timezone,
        teacher_id,
    };
    let req = draft(&place, input, &rules, &found, at, now())?;
    let approved_now = req
        .apps()
        .iter()
        .all(|a| rules.approved_app_ids.contains(a));
    conn.write_tx(|conn| -> Result<(), LessonError> {
        diesel::insert_into(lesson_requests::table)
            .values(&req)
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(teacher_id, "create", "lesson_request")
                .object(&req.id)
                .scope(Some(tenant_id), Some(school_id))
                .summary(serde_json::json!({"after": {"apps": req.apps(), "target": [req.target_kind, req.target_id], "date": req.lesson_date, "start": req.start_time, "end": req.end_time, "repeat_until": req.repeat_until}})),
        )?;
        notifier.enqueue(conn, "lesson.request.created", &req.id, Some(tenant_id), Some(school_id), event_data(&req))?;
        if approved_now {
            approve_in_tx(conn, &req, timezone, rules.lead_minutes, "system", notifier)?;
        }
        Ok(())
    })?;
    Ok(get(conn, &req.id)?.unwrap_or(req))
}

/// Most apps one request may name.
const MAX_APPS: usize = 20;

/// Where a request is made and by whom.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The school's authority.
    pub tenant_id: &'a str,
    /// The school.
    pub school_id: &'a str,
    /// The school's time zone (IANA name).
    pub timezone: &'a str,
    /// The teacher asking.
    pub teacher_id: &'a str,
}

/// The request `input` becomes under the school's `rules`, or the first field that does
/// not fit (named). `found` holds the catalog apps of `input.app_ids` that exist, with
/// their authority; `at` is when the request arrives, `stored` its timestamp.
pub fn draft(
    place: &Place<'_>,
    input: &NewRequest,
    rules: &LessonSettings,
    found: &[(String, Option<String>)],
    at: chrono::DateTime<Utc>,
    stored: chrono::NaiveDateTime,
) -> Result<LessonRequest, LessonError> {
    if !matches!(input.target_kind, TargetKind::Class | TargetKind::Group) {
        return Err(invalid("target_kind", "class or group"));
    }
    let mut app_ids = input.app_ids.clone();
    app_ids.sort();
    app_ids.dedup();
    if !(1..=MAX_APPS).contains(&app_ids.len()) {
        return Err(invalid("app_ids", "1 to 20 apps"));
    }
    // The apps must be in the school's catalog (the district's or its authority's).
    let in_catalog = |id: &String| {
        found
            .iter()
            .any(|(f, t)| f == id && t.as_deref().is_none_or(|t| t == place.tenant_id))
    };
    if !app_ids.iter().all(in_catalog) {
        return Err(invalid(
            "app_ids",
            "every app must be in the school's catalog",
        ));
    }
    let date: NaiveDate = input
        .date
        .parse()
        .map_err(|_| invalid("date", "YYYY-MM-DD"))?;
    let (start, end) = match (&input.periods, &input.start, &input.end) {
        (Some(p), None, None) => PeriodTable::parse_json(&rules.periods)
            .map_err(|e| invalid("periods", e.to_string()))?
            .resolve_text(p)
            .map_err(|e| invalid("periods", e.to_string()))?,
        (None, Some(s), Some(e)) => (parse_time("start", s)?, parse_time("end", e)?),
        _ => return Err(invalid("start", "give start and end, or periods")),
    };
    if end <= start {
        return Err(invalid("end", "must be after start"));
    }
    let minutes = (end - start).num_minutes();
    if minutes > i64::from(rules.max_duration_minutes) {
        return Err(invalid(
            "end",
            format!(
                "a lesson may last at most {} minutes at this school",
                rules.max_duration_minutes
            ),
        ));
    }
    let tz: chrono_tz::Tz = place
        .timezone
        .parse()
        .map_err(|_| invalid("timezone", "the school's time zone is invalid"))?;
    let starts = tz
        .from_local_datetime(&date.and_time(start))
        .earliest()
        .ok_or_else(|| invalid("start", "does not exist on that day (clock change)"))?
        .with_timezone(&Utc);
    if starts - at < chrono::Duration::minutes(i64::from(rules.min_notice_minutes)) {
        return Err(invalid(
            "start",
            format!(
                "requests must arrive at least {} minutes before the lesson",
                rules.min_notice_minutes
            ),
        ));
    }
    if let Some(u) = &input.repeat_until {
        let until: NaiveDate = u
            .parse()
            .map_err(|_| invalid("repeat_until", "YYYY-MM-DD"))?;
        if until < date || until > date + chrono::Duration::days(366) {
            return Err(invalid(
                "repeat_until",
                "on or after the date, within a year",
            ));
        }
    }
    if input
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > 1000)
    {
        return Err(invalid("note", "at most 1000 characters"));
    }
    let req = LessonRequest {
        id: new_id(),
        tenant_id: place.tenant_id.to_owned(),
        school_id: place.school_id.to_owned(),
        teacher_id: place.teacher_id.to_owned(),
        target_kind: input.target_kind.as_str().to_owned(),
        target_id: input.target_id.clone(),
        app_ids: serde_json::to_string(&app_ids).unwrap_or_default(),
        lesson_date: date.to_string(),
        start_time: start.format("%H:%M").to_string(),
        end_time: end.format("%H:%M").to_string(),
        repeat_until: input.repeat_until.clone(),
        after_lesson: if input.remove_after.unwrap_or(true) {
            "remove"
        } else {
            "keep"
        }
        .to_owned(),
        note: input.note.clone(),
        status: RequestStatus::Pending.to_owned(),
        decided_by: None,
        decided_at: None,
        reason: None,
        notified_start: None,
        created_at: stored,
        updated_at: stored,
    };
    // The schedule it will be assigned with must be valid too.
    req.schedule(place.timezone, rules.lead_minutes)?;
    Ok(req)
}

fn event_data(r: &LessonRequest) -> serde_json::Value {
    serde_json::json!({
        "request_id": r.id, "school_id": r.school_id, "teacher_id": r.teacher_id,
        "target": {"kind": r.target_kind, "id": r.target_id}, "apps": r.apps(),
        "date": r.lesson_date, "start": r.start_time, "end": r.end_time, "repeat_until": r.repeat_until,
    })
}

/// Approves inside a transaction: one assignment per app.
fn approve_in_tx(
    conn: &mut DbConn,
    r: &LessonRequest,
    timezone: &str,
    lead: i32,
    actor: &str,
    notifier: &Notifier,
) -> Result<(), LessonError> {
    let schedule = r.schedule(timezone, lead)?;
    let target_kind = if r.target_kind == "group" {
        TargetKind::Group
    } else {
        TargetKind::Class
    };
    // An app deleted from the catalog since the request was made is not installed.
    let live: std::collections::HashSet<String> = apps::table
        .filter(apps::id.eq_any(r.apps()))
        .filter(apps::deleted_at.is_null())
        .select(apps::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    for app in r.apps().into_iter().filter(|a| live.contains(a)) {
        let a = NewAssignment {
            tenant_id: r.tenant_id.clone(),
            school_id: Some(r.school_id.clone()),
            item_kind: ItemKind::App,
            item_id: app,
            target_kind,
            target_id: r.target_id.clone(),
            schedule: schedule.clone().into(),
            source: "lesson".into(),
            lesson_request_id: Some(r.id.clone()),
        };
        assign::create(conn, &a, actor)?;
    }
    diesel::update(lesson_requests::table.find(&r.id))
        .set((
            lesson_requests::status.eq(RequestStatus::Approved),
            lesson_requests::decided_by.eq(actor),
            lesson_requests::decided_at.eq(now()),
            lesson_requests::updated_at.eq(now()),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        &audit::Entry::new(actor, "approve", "lesson_request")
            .object(&r.id)
            .scope(Some(&r.tenant_id), Some(&r.school_id))
            .summary(serde_json::json!({"before": {"status": r.status}, "after": {"status": RequestStatus::Approved}, "automatic": actor == "system"})),
    )?;
    notifier.enqueue(
        conn,
        "lesson.request.approved",
        &r.id,
        Some(&r.tenant_id),
        Some(&r.school_id),
        event_data(r),
    )?;
    Ok(())
}

/// An admin approves a pending request.
pub fn approve(
    conn: &mut DbConn,
    r: &LessonRequest,
    timezone: &str,
    actor: &str,
    notifier: &Notifier,
) -> Result<(), LessonError> {
    if r.status != RequestStatus::Pending {
        return Err(LessonError::Conflict(format!(
            "the request is {}, not pending",
            r.status
        )));
    }
    let lead = settings(conn, &r.school_id)?.lead_minutes;
    conn.write_tx(|conn| approve_in_tx(conn, r, timezone, lead, actor, notifier))
}

/// An admin rejects a pending request with a reason.
pub fn reject(
    conn: &mut DbConn,
    r: &LessonRequest,
    reason: &str,
    actor: &str,
    notifier: &Notifier,
) -> Result<(), LessonError> {
    if r.status != RequestStatus::Pending {
        return Err(LessonError::Conflict(format!(
            "the request is {}, not pending",
            r.status
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(invalid("reason", "1 to 1000 characters"));
    }
    conn.write_tx(|conn| {
        diesel::update(lesson_requests::table.find(&r.id))
            .set((
                lesson_requests::status.eq(RequestStatus::Rejected),
                lesson_requests::decided_by.eq(actor),
                lesson_requests::decided_at.eq(now()),
                lesson_requests::reason.eq(reason),
                lesson_requests::updated_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "reject", "lesson_request")
                .object(&r.id)
                .scope(Some(&r.tenant_id), Some(&r.school_id))
                .summary(serde_json::json!({"before": {"status": r.status}, "after": {"status": RequestStatus::Rejected, "reason": reason}})),
        )?;
        let mut data = event_data(r);
        data["reason"] = serde_json::json!(reason);
        notifier.enqueue(conn, "lesson.request.rejected", &r.id, Some(&r.tenant_id), Some(&r.school_id), data)?;
        Ok(())
    })
}

/// Withdraws a request; its assignments are deleted (the reconciler removes the apps).
pub fn cancel(conn: &mut DbConn, r: &LessonRequest, actor: &str) -> Result<(), LessonError> {
    if r.status == RequestStatus::Cancelled || r.status == RequestStatus::Rejected {
        return Err(LessonError::Conflict(format!(
            "the request is {}",
            r.status
        )));
    }
    conn.write_tx(|conn| {
        let linked: Vec<assign::Assignment> = assignments::table
            .filter(assignments::lesson_request_id.eq(&r.id))
            .filter(assignments::deleted_at.is_null())
            .select(assign::Assignment::as_select())
            .load(conn)?;
        for a in &linked {
            assign::delete(conn, a, actor)?;
        }
        diesel::update(lesson_requests::table.find(&r.id))
            .set((lesson_requests::status.eq(RequestStatus::Cancelled), lesson_requests::updated_at.eq(now())))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "cancel", "lesson_request")
                .object(&r.id)
                .scope(Some(&r.tenant_id), Some(&r.school_id))
                .summary(serde_json::json!({"before": {"status": r.status}, "after": {"status": RequestStatus::Cancelled}})),
        )?;
        Ok(())
    })
}

/// One request.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<LessonRequest>> {
    lesson_requests::table
        .find(id)
        .select(LessonRequest::as_select())
        .first(conn)
        .optional()
}

/// Where and which lesson requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestScope<'a> {
    /// Only this teacher's.
    pub teacher: Option<&'a str>,
    /// Only this school's.
    pub school: Option<&'a str>,
    /// Only this authority's.
    pub tenant: Option<&'a str>,
    /// Only in this state.
    pub status: Option<&'a str>,
}

/// One page of lesson requests, oldest first (`after`: the last id of the previous page).
pub fn list(
    conn: &mut DbConn,
    scope: &RequestScope<'_>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<crate::paging::Page<LessonRequest>> {
    let mut q = scoped(scope)
        .select(LessonRequest::as_select())
        .order(lesson_requests::id.asc())
        .limit(limit + 1);
    if let Some(a) = after {
        q = q.filter(lesson_requests::id.gt(a.to_owned()));
    }
    Ok(crate::paging::Page::from_rows(q.load(conn)?, limit, |r| {
        r.id.clone()
    }))
}

/// How many requests `scope` holds (the overview's open requests), counted.
pub fn count(conn: &mut DbConn, scope: &RequestScope<'_>) -> QueryResult<i64> {
    scoped(scope).count().get_result(conn)
}

/// The requests of `scope`, as a query to narrow further.
fn scoped<'a>(scope: &RequestScope<'_>) -> lesson_requests::BoxedQuery<'a, crate::db::DbBackend> {
    let mut q = lesson_requests::table.into_boxed();
    if let Some(t) = scope.teacher {
        q = q.filter(lesson_requests::teacher_id.eq(t.to_owned()));
    }
    if let Some(s) = scope.school {
        q = q.filter(lesson_requests::school_id.eq(s.to_owned()));
    }
    if let Some(t) = scope.tenant {
        q = q.filter(lesson_requests::tenant_id.eq(t.to_owned()));
    }
    if let Some(s) = scope.status {
        q = q.filter(lesson_requests::status.eq(s.to_owned()));
    }
    q
}

#[cfg(test)]
mod tests {
    //! The decision on a new request, without a database.

    use super::*;

    const PLACE: Place<'static> = Place {
        tenant_id: "t1",
        school_id: "s1",
        timezone: "Europe/Berlin",
        teacher_id: "u1",
    };

    fn rules() -> LessonSettings {
        LessonSettings {
            periods: serde_json::json!({"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}}),
            min_notice_minutes: 30,
            max_duration_minutes: 240,
            lead_minutes: 60,
            approved_app_ids: Vec::new(),
        }
    }

    fn request(body: serde_json::Value) -> NewRequest {
        serde_json::from_value(body).unwrap_or_else(|e| panic!("test body: {e}"))
    }

    /// Monday 7 December 2026, 07:00 in Berlin.
    fn monday_morning() -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-07T06:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn decide(
        body: serde_json::Value,
        found: &[(&str, Option<&str>)],
    ) -> Result<LessonRequest, LessonError> {
        let found: Vec<(String, Option<String>)> = found
            .iter()
            .map(|(id, t)| ((*id).to_owned(), t.map(str::to_owned)))
            .collect();
        draft(
            &PLACE,
            &request(body),
            &rules(),
            &found,
            monday_morning(),
            monday_morning().naive_utc(),
        )
    }

    fn field_of(r: Result<LessonRequest, LessonError>) -> String {
        match r {
            Err(LessonError::Invalid { field, .. }) => field.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn periods_become_the_lesson_time_and_the_apps_are_kept_once() {
        let r = decide(
            serde_json::json!({"target_kind": "class", "target_id": "c1", "app_ids": ["a2", "a1", "a2"], "date": "2026-12-08", "periods": "1-2"}),
            &[("a1", None), ("a2", Some("t1"))],
        );
        let r = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.start_time.as_str(), r.end_time.as_str()),
            ("08:00", "09:35")
        );
        assert_eq!(r.apps(), vec!["a1".to_string(), "a2".to_string()]);
        assert_eq!(r.status, RequestStatus::Pending);
        assert_eq!(r.after_lesson, "remove");
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = serde_json::json!({"target_kind": "class", "target_id": "c1", "app_ids": ["a1"], "date": "2026-12-08", "start": "10:00", "end": "10:45"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        let ok = [("a1", None)];
        assert!(decide(base.clone(), &ok).is_ok());
        // An app of another authority, or none at all, is not in the school's catalog.
        assert_eq!(
            field_of(decide(base.clone(), &[("a1", Some("t2"))])),
            "app_ids"
        );
        assert_eq!(field_of(decide(base.clone(), &[])), "app_ids");
        assert_eq!(
            field_of(decide(with("target_kind", "school".into()), &ok)),
            "target_kind"
        );
        assert_eq!(
            field_of(decide(with("app_ids", serde_json::json!([])), &ok)),
            "app_ids"
        );
        let many: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
        assert_eq!(
            field_of(decide(with("app_ids", serde_json::json!(many)), &ok)),
            "app_ids"
        );
        assert_eq!(
            field_of(decide(with("date", "8.12.2026".into()), &ok)),
            "date"
        );
        assert_eq!(field_of(decide(with("end", "09:00".into()), &ok)), "end");
        assert_eq!(field_of(decide(with("end", "23:00".into()), &ok)), "end");
        assert_eq!(
            field_of(decide(with("repeat_until", "2026-12-01".into()), &ok)),
            "repeat_until"
        );
        // Today at 07:20 is less than 30 minutes ahead of 07:00.
        let soon = with("date", "2026-12-07".into());
        let mut soon = soon;
        soon["start"] = "07:20".into();
        soon["end"] = "08:00".into();
        assert_eq!(field_of(decide(soon, &ok)), "start");
    }
}

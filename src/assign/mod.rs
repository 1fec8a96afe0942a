//! Assignments: app or profile → target (authority, school, class, device group, device)
//! → schedule; school calendars; and the reconciler that turns desired state into
//! commands.

pub mod reconcile;
pub use tafel_schedule as schedule;
pub mod service;
pub mod views;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::schema::{assignments, closures, lesson_settings};
use crate::db::{new_id, now, DbConn};
use schedule::{Calendar, Closure, PeriodTable, Schedule, ScheduleError, ScheduleSpec};

/// What an assignment installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// An app from the catalog.
    App,
    /// A profile from the catalog.
    Profile,
}

impl ItemKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::App => "app",
            ItemKind::Profile => "profile",
        }
    }
}

/// Whom an assignment targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Every device of a school authority.
    Tenant,
    /// Every device of a school.
    School,
    /// The devices of a class.
    Class,
    /// The devices of a device group (tablet cart).
    Group,
    /// One device.
    Device,
}

impl TargetKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Tenant => "tenant",
            TargetKind::School => "school",
            TargetKind::Class => "class",
            TargetKind::Group => "group",
            TargetKind::Device => "device",
        }
    }
}

/// An assignment as stored.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, Insertable, utoipa::ToSchema)]
#[diesel(table_name = assignments)]
pub struct Assignment {
    /// Id.
    pub id: String,
    /// Authority.
    pub tenant_id: String,
    /// School (none for authority-wide assignments).
    pub school_id: Option<String>,
    /// `app` or `profile`.
    pub item_kind: String,
    /// Catalog id.
    pub item_id: String,
    /// `tenant`, `school`, `class`, `group`, `device`.
    pub target_kind: String,
    /// Target id.
    pub target_id: String,
    /// The schedule as it was given (periods stay periods).
    #[serde(serialize_with = "stored_json")]
    #[schema(value_type = schedule::ScheduleJson)]
    pub schedule: String,
    /// `admin` or `lesson`.
    pub source: String,
    /// Creator.
    pub created_by: Option<String>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Changed.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
    /// Deleted (its items are removed where nothing else wants them).
    #[serde(with = "crate::time::utc_opt")]
    pub deleted_at: Option<chrono::NaiveDateTime>,
    /// The lesson request it serves.
    pub lesson_request_id: Option<String>,
}

/// An assignment with the names of what its ids refer to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    /// The assignment.
    #[serde(flatten)]
    pub assignment: Assignment,
    /// The app's or profile's name.
    pub item_name: Option<String>,
    /// The target's name: the authority's, school's, class's, cart's or device's (its
    /// serial number when it reports no name).
    pub target_name: Option<String>,
    /// The authority's name.
    pub tenant_name: Option<String>,
    /// The school's name.
    pub school_name: Option<String>,
    /// The creator's name.
    pub created_by_name: Option<String>,
}

/// Assignments with the names of their items, targets, places and creators (one query
/// per kind, whatever the number of assignments).
pub fn with_names(conn: &mut DbConn, list: Vec<Assignment>) -> QueryResult<Vec<AssignmentView>> {
    use crate::names::{self, ids};
    let item = |kind: ItemKind| {
        ids(&list, |a| {
            (a.item_kind == kind.as_str()).then_some(a.item_id.as_str())
        })
    };
    let target = |kind: TargetKind| {
        ids(&list, |a| {
            (a.target_kind == kind.as_str()).then_some(a.target_id.as_str())
        })
    };
    let apps = names::apps_named(conn, &item(ItemKind::App))?;
    let profiles = names::profiles_named(conn, &item(ItemKind::Profile))?;
    let mut tenant_ids = ids(&list, |a| Some(a.tenant_id.as_str()));
    tenant_ids.extend(target(TargetKind::Tenant));
    let tenants = names::tenants_named(conn, &tenant_ids)?;
    let mut school_ids = ids(&list, |a| a.school_id.as_deref());
    school_ids.extend(target(TargetKind::School));
    let schools = names::schools_named(conn, &school_ids)?;
    let classes = names::classes_named(conn, &target(TargetKind::Class))?;
    let groups = names::groups_named(conn, &target(TargetKind::Group))?;
    let devices = names::devices_named(conn, &target(TargetKind::Device))?;
    let users = names::users_named(conn, &ids(&list, |a| a.created_by.as_deref()))?;
    Ok(list
        .into_iter()
        .map(|a| {
            let items = if a.item_kind == ItemKind::App.as_str() {
                &apps
            } else {
                &profiles
            };
            let targets = match a.target_kind.as_str() {
                "tenant" => &tenants,
                "school" => &schools,
                "class" => &classes,
                "group" => &groups,
                _ => &devices,
            };
            AssignmentView {
                item_name: names::name(items, Some(&a.item_id)),
                target_name: names::name(targets, Some(&a.target_id)),
                tenant_name: names::name(&tenants, Some(&a.tenant_id)),
                school_name: names::name(&schools, a.school_id.as_deref()),
                created_by_name: names::name(&users, a.created_by.as_deref()),
                assignment: a,
            }
        })
        .collect())
}

/// A new assignment, validated by the caller's layer (target exists, in scope).
#[derive(Debug, Clone)]
pub struct NewAssignment {
    /// Authority.
    pub tenant_id: String,
    /// School, when the target is in one.
    pub school_id: Option<String>,
    /// Item.
    pub item_kind: ItemKind,
    /// Item id.
    pub item_id: String,
    /// Target kind.
    pub target_kind: TargetKind,
    /// Target id.
    pub target_id: String,
    /// Validated schedule, as given (see [`resolve_schedule`] for its periods).
    pub schedule: ScheduleSpec,
    /// `admin` or `lesson`.
    pub source: String,
    /// The lesson request it serves.
    pub lesson_request_id: Option<String>,
}

/// Stored JSON text written as JSON (text that is not JSON, which tafel never stores, as a string).
fn stored_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

/// Every school's lesson periods, read once for a pass over many assignments.
#[derive(Debug, Default)]
pub struct PeriodTables(std::collections::HashMap<String, PeriodTable>);

impl PeriodTables {
    /// The periods of `school`, if it has set any.
    pub fn of(&self, school: &str) -> Option<&PeriodTable> {
        self.0.get(school)
    }

    /// The assignment's schedule in clock times under its school's current periods;
    /// `None` when the stored schedule no longer resolves (a period it names was
    /// removed from the school's settings): the assignment then wants nothing.
    pub fn schedule_of(&self, a: &Assignment) -> Option<Schedule> {
        let spec = stored_spec(a)?;
        let empty = PeriodTable::default();
        let table = a.school_id.as_deref().map(|s| self.of(s).unwrap_or(&empty));
        match spec.resolve(table) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(assignment = %a.id, error = %e, "schedule does not resolve; the assignment wants nothing");
                None
            }
        }
    }
}

/// The stored schedule as given (validated when it was stored).
fn stored_spec(a: &Assignment) -> Option<ScheduleSpec> {
    serde_json::from_str::<serde_json::Value>(&a.schedule)
        .ok()
        .and_then(|v| ScheduleSpec::parse_json(&v).ok())
}

/// Every school's periods (one query); a table that no longer parses counts as none.
pub fn period_tables(conn: &mut DbConn) -> QueryResult<PeriodTables> {
    let rows: Vec<(String, String)> = lesson_settings::table
        .select((lesson_settings::school_id, lesson_settings::periods))
        .load(conn)?;
    Ok(PeriodTables(
        rows.into_iter()
            .filter_map(|(school, periods)| {
                let v = serde_json::from_str(&periods).ok()?;
                Some((school, PeriodTable::parse_json(&v).ok()?))
            })
            .collect(),
    ))
}

/// The first live assignment of `school_id` whose schedule names a period `table`
/// lacks, with why: a school may not drop periods its assignments use.
pub fn broken_by_periods(
    conn: &mut DbConn,
    school_id: &str,
    table: &PeriodTable,
) -> QueryResult<Option<(String, ScheduleError)>> {
    let live: Vec<Assignment> = assignments::table
        .filter(assignments::deleted_at.is_null())
        .filter(assignments::school_id.eq(school_id))
        .select(Assignment::as_select())
        .load(conn)?;
    Ok(live.iter().find_map(|a| {
        let spec = stored_spec(a).filter(ScheduleSpec::uses_periods)?;
        spec.resolve(Some(table)).err().map(|e| (a.id.clone(), e))
    }))
}

/// One school's periods (an empty table when none are set).
pub fn period_table(conn: &mut DbConn, school_id: &str) -> QueryResult<PeriodTable> {
    let periods: Option<String> = lesson_settings::table
        .find(school_id)
        .select(lesson_settings::periods)
        .first(conn)
        .optional()?;
    Ok(periods
        .and_then(|p| serde_json::from_str(&p).ok())
        .and_then(|v| PeriodTable::parse_json(&v).ok())
        .unwrap_or_default())
}

/// Checks a new assignment's schedule against its place: a schedule naming periods
/// needs a school (`school_id`) whose periods include every one it names. The error
/// names the window and the periods that exist.
pub fn resolve_schedule(
    conn: &mut DbConn,
    spec: &ScheduleSpec,
    school_id: Option<&str>,
) -> QueryResult<Result<Schedule, ScheduleError>> {
    let table = match school_id {
        Some(s) if spec.uses_periods() => Some(period_table(conn, s)?),
        Some(_) => Some(PeriodTable::default()),
        None => None,
    };
    Ok(spec.resolve(table.as_ref()))
}

/// Stores an assignment; returns it.
pub fn create(conn: &mut DbConn, a: &NewAssignment, actor: &str) -> QueryResult<Assignment> {
    let at = now();
    let row = Assignment {
        id: new_id(),
        tenant_id: a.tenant_id.clone(),
        school_id: a.school_id.clone(),
        item_kind: a.item_kind.as_str().into(),
        item_id: a.item_id.clone(),
        target_kind: a.target_kind.as_str().into(),
        target_id: a.target_id.clone(),
        schedule: a.schedule.to_json().to_string(),
        source: a.source.clone(),
        created_by: Some(actor.to_owned()),
        created_at: at,
        updated_at: at,
        deleted_at: None,
        lesson_request_id: a.lesson_request_id.clone(),
    };
    diesel::insert_into(assignments::table)
        .values(&row)
        .execute(conn)?;
    audit::record(
        conn,
        &audit::Entry::new(actor, "create", "assignment")
            .object(&row.id)
            .scope(Some(&row.tenant_id), row.school_id.as_deref())
            .summary(serde_json::json!({"after": {"item": [row.item_kind, row.item_id], "target": [row.target_kind, row.target_id], "schedule": a.schedule.to_json(), "source": row.source}})),
    )?;
    Ok(row)
}

/// One assignment (deleted ones too).
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Assignment>> {
    assignments::table
        .find(id)
        .select(Assignment::as_select())
        .first(conn)
        .optional()
}

/// Every live assignment (of one authority, or all): for the server's own passes.
pub fn live(conn: &mut DbConn, tenant_id: Option<&str>) -> QueryResult<Vec<Assignment>> {
    let mut q = assignments::table
        .filter(assignments::deleted_at.is_null())
        .select(Assignment::as_select())
        .order(assignments::created_at.desc())
        .into_boxed();
    if let Some(t) = tenant_id {
        q = q.filter(assignments::tenant_id.eq(t.to_owned()));
    }
    q.load(conn)
}

/// Filters of the assignment list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssignmentFilter {
    /// Only this school's assignments.
    pub school_id: Option<String>,
    /// Only assignments of this item (catalog id).
    pub item_id: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of live assignments; `scope` limits them to an authority and (for a
/// school's people) to that school and the authority-wide ones.
pub fn list(
    conn: &mut DbConn,
    scope: Option<&(String, Option<String>)>,
    f: &AssignmentFilter,
    limit: i64,
) -> QueryResult<crate::paging::Page<Assignment>> {
    let mut q = assignments::table
        .filter(assignments::deleted_at.is_null())
        .select(Assignment::as_select())
        .order(assignments::id.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some((t, school)) = scope {
        q = q.filter(assignments::tenant_id.eq(t.clone()));
        if let Some(s) = school {
            q = q.filter(
                assignments::school_id
                    .eq(s.clone())
                    .or(assignments::school_id.is_null()),
            );
        }
    }
    if let Some(s) = &f.school_id {
        q = q.filter(assignments::school_id.eq(s.clone()));
    }
    if let Some(i) = &f.item_id {
        q = q.filter(assignments::item_id.eq(i.clone()));
    }
    if let Some(after) = &f.cursor {
        q = q.filter(assignments::id.gt(after.clone()));
    }
    Ok(crate::paging::Page::from_rows(q.load(conn)?, limit, |a| {
        a.id.clone()
    }))
}

/// Gives an assignment another schedule (validated by the caller in the same
/// transaction: call it inside one); the audit entry holds the schedule before and after.
pub fn update_schedule(
    conn: &mut DbConn,
    a: &Assignment,
    schedule: &ScheduleSpec,
    actor: &str,
) -> QueryResult<Assignment> {
    let at = now();
    let after = schedule.to_json().to_string();
    let changed = diesel::update(
        assignments::table
            .find(&a.id)
            .filter(assignments::deleted_at.is_null()),
    )
    .set((
        assignments::schedule.eq(&after),
        assignments::updated_at.eq(at),
    ))
    .execute(conn)?;
    if changed == 0 {
        // Deleted meanwhile.
        return Err(diesel::result::Error::NotFound);
    }
    let as_json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    audit::record(
        conn,
        &audit::Entry::new(actor, "update", "assignment")
            .object(&a.id)
            .scope(Some(&a.tenant_id), a.school_id.as_deref())
            .summary(serde_json::json!({
                "before": {"schedule": as_json(&a.schedule)},
                "after": {"schedule": as_json(&after)},
            })),
    )?;
    Ok(Assignment {
        schedule: after,
        updated_at: at,
        ..a.clone()
    })
}

/// Deletes an assignment (soft: the reconciler then removes what it brought).
pub fn delete(conn: &mut DbConn, a: &Assignment, actor: &str) -> QueryResult<()> {
    diesel::update(assignments::table.find(&a.id))
        .set((
            assignments::deleted_at.eq(now()),
            assignments::updated_at.eq(now()),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        &audit::Entry::new(actor, "delete", "assignment")
            .object(&a.id)
            .scope(Some(&a.tenant_id), a.school_id.as_deref())
            .summary(serde_json::json!({"before": {"item": [a.item_kind, a.item_id], "target": [a.target_kind, a.target_id]}})),
    )
}

/// Stores closures (holidays) for an authority or one school; replaces the named
/// calendar's earlier entries when `replace`.
pub fn add_closures(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: Option<&str>,
    cal: &Calendar,
    replace: bool,
    actor: &str,
) -> QueryResult<usize> {
    if replace {
        let base = closures::table.filter(closures::tenant_id.eq(tenant_id));
        match school_id {
            Some(s) => diesel::delete(base.filter(closures::school_id.eq(s))).execute(conn)?,
            None => diesel::delete(base.filter(closures::school_id.is_null())).execute(conn)?,
        };
    }
    let at = now();
    let mut n = 0;
    for c in cal.closures() {
        n += diesel::insert_into(closures::table)
            .values((
                closures::id.eq(new_id()),
                closures::tenant_id.eq(tenant_id),
                closures::school_id.eq(school_id),
                closures::name.eq(c.name()),
                closures::from_date.eq(c.from().to_string()),
                closures::to_date.eq(c.to().to_string()),
                closures::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    audit::record(
        conn,
        &audit::Entry::new(actor, "import", "calendar")
            .object(school_id.unwrap_or(tenant_id))
            .scope(Some(tenant_id), school_id)
            .summary(serde_json::json!({"closures": n, "replaced": replace})),
    )?;
    Ok(n)
}

/// All closures, grouped into calendars: per school (its own plus its authority's).
pub fn calendars(conn: &mut DbConn) -> QueryResult<Calendars> {
    let rows: Vec<(String, Option<String>, String, String, String)> = closures::table
        .select((
            closures::tenant_id,
            closures::school_id,
            closures::name,
            closures::from_date,
            closures::to_date,
        ))
        .load(conn)?;
    let mut by_tenant: std::collections::HashMap<String, Vec<Closure>> = Default::default();
    let mut by_school: std::collections::HashMap<String, Vec<Closure>> = Default::default();
    for (tenant, school, name, from, to) in rows {
        let (Ok(from), Ok(to)) = (from.parse(), to.parse()) else {
            continue;
        };
        let Ok(c) = Closure::new(name, from, to) else {
            continue;
        };
        match school {
            Some(s) => by_school.entry(s).or_default().push(c),
            None => by_tenant.entry(tenant).or_default().push(c),
        }
    }
    Ok(Calendars {
        by_tenant,
        by_school,
    })
}

/// Closures by authority and by school.
#[derive(Debug, Default)]
pub struct Calendars {
    by_tenant: std::collections::HashMap<String, Vec<Closure>>,
    by_school: std::collections::HashMap<String, Vec<Closure>>,
}

impl Calendars {
    /// The calendar of a school in an authority.
    pub fn for_place(&self, tenant_id: Option<&str>, school_id: Option<&str>) -> Calendar {
        let mut all = Vec::new();
        if let Some(t) = tenant_id.and_then(|t| self.by_tenant.get(t)) {
            all.extend(t.iter().cloned());
        }
        if let Some(s) = school_id.and_then(|s| self.by_school.get(s)) {
            all.extend(s.iter().cloned());
        }
        Calendar::new(all)
    }
}

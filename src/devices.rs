//! Device queries for people: one device, and the filtered, cursor-paged list that must
//! stay fast at 100,000 devices (keyset paging on the time-ordered id, indexed filters,
//! no per-row queries). Visibility follows the caller's role:
//! district admins see all, authority admins their authority, school admins their
//! school, teachers the devices of their classes and the carts of their school.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accounts::ListScope;
use crate::db::schema::{class_devices, class_teachers, device_groups, devices, group_devices};
use crate::db::DbConn;

/// A device as the API shows it.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    /// Internal id (also the paging key).
    pub id: String,
    /// UDID (absent until enrolled).
    pub udid: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Authority.
    pub tenant_id: Option<String>,
    /// School.
    pub school_id: Option<String>,
    /// Device name.
    pub name: Option<String>,
    /// Model number as the iPad reports it (`Model`, e.g. MK2K3FD).
    pub model: Option<String>,
    /// Model name (`ModelName`, e.g. iPad).
    pub model_name: Option<String>,
    /// Product name (`ProductName`, e.g. iPad13,18).
    pub product_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// Enrollment state.
    pub enrollment_status: crate::enrollment::EnrollmentStatus,
    /// APNs topic.
    pub topic: Option<String>,
    /// Waiting in Setup Assistant for DeviceConfigured.
    pub awaiting_configuration: bool,
    /// First enrollment.
    #[serde(with = "crate::time::utc_opt")]
    pub enrolled_at: Option<chrono::NaiveDateTime>,
    /// Last contact.
    #[serde(with = "crate::time::utc_opt")]
    pub last_seen_at: Option<chrono::NaiveDateTime>,
    /// Last push.
    #[serde(with = "crate::time::utc_opt")]
    pub last_push_at: Option<chrono::NaiveDateTime>,
    /// Its result.
    pub last_push_result: Option<String>,
    /// Push token known dead since.
    #[serde(with = "crate::time::utc_opt")]
    pub push_invalid_at: Option<chrono::NaiveDateTime>,
    /// Next push retry.
    #[serde(with = "crate::time::utc_opt")]
    pub next_push_at: Option<chrono::NaiveDateTime>,
    /// End of the identity certificate the device is bound to (renewed ahead of it).
    #[serde(with = "crate::time::utc_opt")]
    pub identity_cert_not_after: Option<chrono::NaiveDateTime>,
}

/// A device with the names of its authority, school, classes and carts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    /// The device.
    #[serde(flatten)]
    pub device: DeviceRow,
    /// The authority's name.
    pub tenant_name: Option<String>,
    /// The school's name.
    pub school_name: Option<String>,
    /// The classes it is in, by name (sorted).
    pub class_names: Vec<String>,
    /// The carts (device groups) it is in, by name (sorted).
    pub group_names: Vec<String>,
}

/// Devices with the names of their places, classes and carts: four queries for a whole
/// page, whatever its size.
pub fn with_names(conn: &mut DbConn, rows: Vec<DeviceRow>) -> QueryResult<Vec<DeviceView>> {
    use crate::db::schema::classes;
    use crate::names::{self, ids};
    use std::collections::HashMap;
    let tenants = names::tenants_named(conn, &ids(&rows, |d| d.tenant_id.as_deref()))?;
    let schools = names::schools_named(conn, &ids(&rows, |d| d.school_id.as_deref()))?;
    let device_ids = ids(&rows, |d| Some(d.id.as_str()));
    let mut in_class: HashMap<String, Vec<String>> = HashMap::new();
    let mut in_group: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in device_ids.chunks(500) {
        let c: Vec<(String, String)> = class_devices::table
            .inner_join(classes::table)
            .filter(class_devices::device_id.eq_any(chunk))
            .select((class_devices::device_id, classes::name))
            .load(conn)?;
        for (device, name) in c {
            in_class.entry(device).or_default().push(name);
        }
        let g: Vec<(String, String)> = group_devices::table
            .inner_join(device_groups::table)
            .filter(group_devices::device_id.eq_any(chunk))
            .select((group_devices::device_id, device_groups::name))
            .load(conn)?;
        for (device, name) in g {
            in_group.entry(device).or_default().push(name);
        }
    }
    Ok(rows
        .into_iter()
        .map(|device| {
            let sorted = |m: &mut HashMap<String, Vec<String>>| {
                let mut v = m.remove(&device.id).unwrap_or_default();
                v.sort();
                v
            };
            DeviceView {
                tenant_name: names::name(&tenants, device.tenant_id.as_deref()),
                school_name: names::name(&schools, device.school_id.as_deref()),
                class_names: sorted(&mut in_class),
                group_names: sorted(&mut in_group),
                device,
            }
        })
        .collect())
}

/// Filters of the device list (all optional, combined with AND).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilter {
    /// Authority.
    pub tenant_id: Option<String>,
    /// School.
    pub school_id: Option<String>,
    /// Member of this class.
    pub class_id: Option<String>,
    /// Member of this device group / cart.
    pub group_id: Option<String>,
    /// Product name (e.g. `iPad13,18`) or model.
    pub model: Option<String>,
    /// OS version, exact (`18.1`) or prefix with a trailing `*` (`18.*`).
    pub os_version: Option<String>,
    /// Enrollment status; without it, retired devices are left out.
    pub status: Option<String>,
    /// Only active (true) or not active (false) enrollments.
    pub enrolled: Option<bool>,
    /// Last seen before this instant (RFC 3339).
    pub last_seen_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Last seen after this instant (RFC 3339).
    pub last_seen_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Identity certificate ends before this instant (RFC 3339): who has not renewed.
    pub identity_expires_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only devices with a command that failed (the iPad answered `Error`) at or after
    /// this instant (RFC 3339): failing installs and settings.
    pub failed_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Free text in name or serial number.
    pub q: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `csv`: every matching device (not a page) as a spreadsheet German Excel opens
    /// (`;`, UTF-8 with BOM); also chosen by `Accept: text/csv`. Default `json`.
    pub format: Option<String>,
}

/// A boxed query of the devices table.
pub type Boxed<'a> = devices::BoxedQuery<'a, crate::db::DbBackend>;

/// A device row as first stored: known by UDID (a device that enrolled by link), by
/// serial (an import, Apple School Manager), or both; pending until it authenticates.
#[derive(Debug, Insertable)]
#[diesel(table_name = devices)]
pub struct NewDevice<'a> {
    /// Id.
    pub id: &'a str,
    /// UDID, when the device itself is talking.
    pub udid: Option<&'a str>,
    /// Serial number, when an import or Apple names it.
    pub serial_number: Option<&'a str>,
    /// Authority.
    pub tenant_id: Option<&'a str>,
    /// School.
    pub school_id: Option<&'a str>,
    /// Name from an import.
    pub name: Option<&'a str>,
    /// Always pending at first.
    pub enrollment_status: crate::enrollment::EnrollmentStatus,
    /// Not waiting in Setup Assistant until its enrollment says so.
    pub awaiting_configuration: bool,
    /// Stored at.
    pub created_at: chrono::NaiveDateTime,
    /// Changed at.
    pub updated_at: chrono::NaiveDateTime,
}

impl<'a> NewDevice<'a> {
    /// A pending device with id `id`, stored at `at`, nothing else known yet.
    pub fn pending(id: &'a str, at: chrono::NaiveDateTime) -> Self {
        NewDevice {
            id,
            udid: None,
            serial_number: None,
            tenant_id: None,
            school_id: None,
            name: None,
            enrollment_status: crate::enrollment::EnrollmentStatus::Pending,
            awaiting_configuration: false,
            created_at: at,
            updated_at: at,
        }
    }
}

/// Limits a device query to a caller's scope (teachers: the devices of their classes and
/// of their school's carts).
pub fn scoped<'a>(q: Boxed<'a>, scope: ListScope<'_>) -> Boxed<'a> {
    match scope {
        ListScope::Everything => q,
        ListScope::Authority(t) => q.filter(devices::tenant_id.eq(t.to_owned())),
        ListScope::School(s) => q.filter(devices::school_id.eq(s.to_owned())),
        ListScope::Teacher { school, user } => {
            let in_my_classes = class_devices::table
                .inner_join(
                    class_teachers::table.on(class_teachers::class_id.eq(class_devices::class_id)),
                )
                .filter(class_teachers::user_id.eq(user.to_owned()))
                .select(class_devices::device_id);
            let in_my_school_carts = group_devices::table
                .inner_join(device_groups::table)
                .filter(device_groups::school_id.eq(school.to_owned()))
                .select(group_devices::device_id);
            q.filter(devices::school_id.eq(school.to_owned())).filter(
                devices::id
                    .eq_any(in_my_classes)
                    .or(devices::id.eq_any(in_my_school_carts)),
            )
        }
    }
}

/// One page of the devices in `scope`, filtered; returns the page and the next cursor.
pub fn list(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    f: &DeviceFilter,
    limit: i64,
) -> QueryResult<(Vec<DeviceRow>, Option<String>)> {
    let mut q = filtered(scope, f);
    if let Some(after) = &f.cursor {
        q = q.filter(devices::id.gt(after.clone()));
    }
    let mut rows: Vec<DeviceRow> = q
        .order(devices::id.asc())
        .limit(limit + 1)
        .select(DeviceRow::as_select())
        .load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok((rows, next))
}

/// How many devices in `scope` match `f` (all pages; the cursor is ignored).
pub fn count(conn: &mut DbConn, scope: ListScope<'_>, f: &DeviceFilter) -> QueryResult<i64> {
    filtered(scope, f).count().get_result(conn)
}

/// What the admins' overview counts, in one pass over the devices of a scope (retired
/// ones left out, as in the list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Devices.
    pub total: i64,
    /// Seen after `online_after`.
    pub online: i64,
    /// Last seen before `week_ago` (as the list's `last_seen_before` counts).
    pub unseen_week: i64,
    /// Last seen before `month_ago`.
    pub unseen_month: i64,
    /// With a command that failed at or after `week_ago` (the list's `failed_since`).
    pub failing: i64,
}

/// The overview's [`Figures`] for `scope` at `now`: online means seen in the last 24
/// hours; the week and month are 7 and 30 days back. Each figure is the number the
/// device list shows with the same filter. Each is counted over every device of the
/// scope (an index on place and last contact answers it alone) less the retired ones
/// (few, found by their status), which is faster than one pass over the rows.
pub fn figures(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Figures> {
    let day = (now - chrono::Duration::hours(24)).naive_utc();
    let week = now - chrono::Duration::days(7);
    let month = (now - chrono::Duration::days(30)).naive_utc();
    let retired = crate::enrollment::EnrollmentStatus::Retired;
    // Every device of the scope, and the retired ones among them, under one condition.
    let mut count = |seen: Option<(bool, chrono::NaiveDateTime)>| -> QueryResult<i64> {
        let narrow = |q: Boxed<'static>| match seen {
            None => q,
            Some((true, t)) => q.filter(devices::last_seen_at.gt(t)),
            Some((false, t)) => q.filter(devices::last_seen_at.lt(t)),
        };
        let all: i64 = narrow(scoped(devices::table.into_boxed(), scope))
            .count()
            .get_result(conn)?;
        let gone: i64 = narrow(scoped(devices::table.into_boxed(), scope))
            .filter(devices::enrollment_status.eq(retired))
            .count()
            .get_result(conn)?;
        Ok(all - gone)
    };
    Ok(Figures {
        total: count(None)?,
        online: count(Some((true, day)))?,
        unseen_week: count(Some((false, week.naive_utc())))?,
        unseen_month: count(Some((false, month)))?,
        failing: self::count(
            conn,
            scope,
            &DeviceFilter {
                failed_since: Some(week),
                ..Default::default()
            },
        )?,
    })
}

/// The devices of `scope` that match the filters of `f` (not its cursor).
fn filtered<'a>(scope: ListScope<'_>, f: &DeviceFilter) -> Boxed<'a> {
    let mut q = scoped(devices::table.into_boxed(), scope);
    if let Some(t) = &f.tenant_id {
        q = q.filter(devices::tenant_id.eq(t.clone()));
    }
    if let Some(s) = &f.school_id {
        q = q.filter(devices::school_id.eq(s.clone()));
    }
    if let Some(c) = &f.class_id {
        q = q.filter(
            devices::id.eq_any(
                class_devices::table
                    .filter(class_devices::class_id.eq(c.clone()))
                    .select(class_devices::device_id),
            ),
        );
    }
    if let Some(g) = &f.group_id {
        q = q.filter(
            devices::id.eq_any(
                group_devices::table
                    .filter(group_devices::group_id.eq(g.clone()))
                    .select(group_devices::device_id),
            ),
        );
    }
    if let Some(m) = &f.model {
        q = q.filter(
            devices::product_name
                .eq(m.clone())
                .or(devices::model.eq(m.clone())),
        );
    }
    if let Some(v) = &f.os_version {
        q = match v.strip_suffix('*') {
            Some(prefix) => q.filter(
                devices::os_version
                    .like(format!("{}%", crate::paging::like_escape(prefix)))
                    .escape('\\'),
            ),
            None => q.filter(devices::os_version.eq(v.clone())),
        };
    }
    match &f.status {
        Some(s) => q = q.filter(devices::enrollment_status.eq(s.clone())),
        // Retired devices keep their history but leave the list unless asked for.
        None => {
            q = q
                .filter(devices::enrollment_status.ne(crate::enrollment::EnrollmentStatus::Retired))
        }
    }
    match f.enrolled {
        Some(true) => {
            q = q.filter(devices::enrollment_status.eq(crate::enrollment::EnrollmentStatus::Active))
        }
        Some(false) => {
            q = q.filter(devices::enrollment_status.ne(crate::enrollment::EnrollmentStatus::Active))
        }
        None => {}
    }
    if let Some(t) = f.last_seen_before {
        q = q.filter(devices::last_seen_at.lt(t.naive_utc()));
    }
    if let Some(t) = f.last_seen_after {
        q = q.filter(devices::last_seen_at.gt(t.naive_utc()));
    }
    if let Some(t) = f.identity_expires_before {
        q = q.filter(devices::identity_cert_not_after.lt(t.naive_utc()));
    }
    if let Some(t) = f.failed_since {
        use crate::db::schema::command_queue;
        q = q.filter(
            devices::id.eq_any(
                command_queue::table
                    .filter(command_queue::status.eq(crate::queue::QueueState::Error))
                    .filter(command_queue::answered_at.ge(t.naive_utc()))
                    .select(command_queue::device_id),
            ),
        );
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", crate::paging::like_escape(&text.to_lowercase()));
        let serial = format!("%{}%", crate::paging::like_escape(&text.to_uppercase()));
        q = q.filter(
            crate::db::lower(devices::name)
                .like(pattern)
                .escape('\\')
                .or(devices::serial_number.like(serial).escape('\\')),
        );
    }
    q
}

/// Most devices one export holds; narrow the filters beyond it.
pub const MAX_EXPORT: usize = 100_000;

/// Every device matching `f` in `scope` (from `f.cursor` on), with names, page by page;
/// `None` when more than [`MAX_EXPORT`] match.
pub fn export(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    f: &DeviceFilter,
) -> QueryResult<Option<Vec<DeviceView>>> {
    let mut f = f.clone();
    let mut out = Vec::new();
    loop {
        let (rows, next) = list(conn, scope, &f, 1000)?;
        out.extend(with_names(conn, rows)?);
        if out.len() > MAX_EXPORT {
            return Ok(None);
        }
        match next {
            Some(cursor) => f.cursor = Some(cursor),
            None => return Ok(Some(out)),
        }
    }
}

/// The export's columns, in German (it is read by school boards in German Excel).
pub const EXPORT_HEADER: &[&str] = &[
    "Seriennummer",
    "Name",
    "Schulträger",
    "Schule",
    "Klassen",
    "Geräte-Wagen",
    "Modell",
    "Gerätetyp",
    "iOS",
    "Status",
    "Zuletzt gesehen",
    "Eingeschrieben",
    "UDID",
];

/// One device as a row of the export (times in Europe/Berlin).
pub fn export_row(d: &DeviceView) -> Vec<String> {
    let tz = chrono_tz::Europe::Berlin;
    let row = &d.device;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        text(&row.serial_number),
        text(&row.name),
        text(&d.tenant_name),
        text(&d.school_name),
        d.class_names.join(", "),
        d.group_names.join(", "),
        text(&row.model_name),
        text(&row.product_name),
        text(&row.os_version),
        row.enrollment_status.as_str().to_owned(),
        crate::export::local_time(row.last_seen_at, tz),
        crate::export::local_time(row.enrolled_at, tz),
        text(&row.udid),
    ]
}

/// A device by UDID or serial number, if it is in `scope`.
pub fn find(conn: &mut DbConn, scope: ListScope<'_>, key: &str) -> QueryResult<Option<DeviceRow>> {
    scoped(devices::table.into_boxed(), scope)
        .filter(
            devices::udid
                .eq(key.to_owned())
                .or(devices::serial_number.eq(key.to_uppercase())),
        )
        .select(DeviceRow::as_select())
        .first(conn)
        .optional()
}

crate::text_enum! {
    /// How a device's Setup Assistant wait ended, as stored.
    pub enum SetupOutcome("setup outcome") {
        /// Everything required was installed.
        Configured = "configured",
        /// Released with failed items (they are retried later).
        Incomplete = "incomplete",
        /// Released by the school's timeout with items still pending.
        Timeout = "timeout",
    }
}

/// Records the start of a device's Setup Assistant wait (replacing an earlier one).
pub fn start_setup(
    conn: &mut DbConn,
    device_id: &str,
    serial: Option<&str>,
    first_contact: chrono::NaiveDateTime,
) -> QueryResult<()> {
    use crate::db::schema::device_setup;
    diesel::delete(device_setup::table.find(device_id)).execute(conn)?;
    diesel::insert_into(device_setup::table)
        .values((
            device_setup::device_id.eq(device_id),
            device_setup::serial_number.eq(serial),
            device_setup::first_contact_at.eq(first_contact),
        ))
        .execute(conn)
        .map(drop)
}

/// Records how a device's wait ended; a wait without a recorded start (awaiting
/// configuration without ADE's machine info) starts at its enrollment.
pub fn finish_setup(
    conn: &mut DbConn,
    device_id: &str,
    outcome: SetupOutcome,
    missing: &[&str],
) -> QueryResult<()> {
    use crate::db::schema::device_setup;
    let at = crate::db::now();
    let gap = (!missing.is_empty()).then(|| serde_json::json!(missing).to_string());
    let ended = (
        device_setup::released_at.eq(Some(at)),
        device_setup::outcome.eq(Some(outcome)),
        device_setup::missing.eq(&gap),
    );
    let n = diesel::update(device_setup::table.find(device_id))
        .set(ended)
        .execute(conn)?;
    if n == 0 {
        let start: Option<chrono::NaiveDateTime> = devices::table
            .find(device_id)
            .select(devices::enrolled_at)
            .first(conn)?;
        diesel::insert_into(device_setup::table)
            .values((
                device_setup::device_id.eq(device_id),
                device_setup::first_contact_at.eq(start.unwrap_or(at)),
                ended,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// One device as its page shows it: the row, what the iPad last reported about itself,
/// its apps and profiles, and its last Setup Assistant wait.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceDetail {
    /// The device, with the names of its authority, school, classes and carts.
    #[serde(flatten)]
    pub device: DeviceView,
    /// What the iPad last reported (DeviceInformation, SecurityInfo); absent until its
    /// first inventory answered.
    pub inventory: Option<Inventory>,
    /// Apps on the iPad (InstalledApplicationList, ManagedApplicationList and
    /// acknowledged installs), by name.
    pub apps: Vec<InstalledApp>,
    /// Profiles on the iPad (ProfileList and acknowledged installs), by name.
    pub profiles: Vec<InstalledProfile>,
    /// Its last Setup Assistant wait (Automated Device Enrollment).
    pub setup: Option<Setup>,
}

/// What an iPad last reported about itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inventory {
    /// Battery level, 0.0 to 1.0.
    pub battery_level: Option<f64>,
    /// Storage capacity in GB.
    pub capacity_gb: Option<f64>,
    /// Free storage in GB.
    pub available_gb: Option<f64>,
    /// Supervised (Apple School Manager or Apple Configurator).
    pub supervised: Option<bool>,
    /// Wi-Fi MAC address.
    pub wifi_mac: Option<String>,
    /// A passcode is set.
    pub passcode_present: Option<bool>,
    /// When it was reported.
    #[serde(with = "crate::time::utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// An app on an iPad.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct InstalledApp {
    /// Bundle identifier.
    pub bundle_id: String,
    /// Name (as the iPad reports it).
    pub name: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Status as the iPad reports it (lowercase: `managed`, `installing`, `failed` …;
    /// `installed` for apps outside management).
    pub status: String,
    /// Installed by tafel (removed by tafel when no longer wanted).
    pub by_tafel: bool,
}

/// A profile on an iPad.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct InstalledProfile {
    /// PayloadIdentifier.
    pub identifier: String,
    /// PayloadDisplayName.
    pub name: Option<String>,
    /// The version held (PayloadUUID).
    pub uuid: Option<String>,
    /// Installed by tafel.
    pub by_tafel: bool,
}

/// A device's page: row, inventory, apps, profiles and Setup Assistant wait.
pub fn detail(conn: &mut DbConn, device: DeviceRow) -> QueryResult<DeviceDetail> {
    use crate::db::schema::{device_apps, device_inventory, device_profiles};
    let inventory = device_inventory::table
        .find(&device.id)
        .select((
            device_inventory::battery_level,
            device_inventory::capacity_gb,
            device_inventory::available_gb,
            device_inventory::supervised,
            device_inventory::wifi_mac,
            device_inventory::passcode_present,
            device_inventory::updated_at,
        ))
        .first::<(
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<bool>,
            Option<String>,
            Option<bool>,
            chrono::NaiveDateTime,
        )>(conn)
        .optional()?
        .map(
            |(
                battery_level,
                capacity_gb,
                available_gb,
                supervised,
                wifi_mac,
                passcode_present,
                updated_at,
            )| {
                Inventory {
                    battery_level,
                    capacity_gb,
                    available_gb,
                    supervised,
                    wifi_mac,
                    passcode_present,
                    updated_at,
                }
            },
        );
    let apps = device_apps::table
        .filter(device_apps::device_id.eq(&device.id))
        .select((
            device_apps::bundle_id,
            device_apps::name,
            device_apps::version,
            device_apps::status,
            device_apps::by_tafel,
        ))
        .order(device_apps::bundle_id.asc())
        .load::<InstalledApp>(conn)?;
    let profiles = device_profiles::table
        .filter(device_profiles::device_id.eq(&device.id))
        .select((
            device_profiles::identifier,
            device_profiles::name,
            device_profiles::uuid,
            device_profiles::by_tafel,
        ))
        .order(device_profiles::identifier.asc())
        .load::<InstalledProfile>(conn)?;
    let setup = setup_of(conn, &device.id)?;
    let Some(device) = with_names(conn, vec![device])?.pop() else {
        return Err(diesel::result::Error::NotFound);
    };
    Ok(DeviceDetail {
        device,
        inventory,
        apps,
        profiles,
        setup,
    })
}

/// How a device's last Setup Assistant wait went (Automated Device Enrollment).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Setup {
    /// First contact from Setup Assistant (machine info) or enrollment.
    #[serde(with = "crate::time::utc")]
    pub first_contact_at: chrono::NaiveDateTime,
    /// When `DeviceConfigured` was sent; absent while it waits.
    #[serde(with = "crate::time::utc_opt")]
    pub released_at: Option<chrono::NaiveDateTime>,
    /// `configured`, `incomplete` (failed items) or `timeout` (school's release timeout).
    pub outcome: Option<String>,
    /// What the initial configuration lacked at release (item keys such as `app:…`).
    pub missing: Vec<String>,
}

/// The device's last Setup Assistant wait, if any.
pub fn setup_of(conn: &mut DbConn, device_id: &str) -> QueryResult<Option<Setup>> {
    use crate::db::schema::device_setup;
    type Row = (
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = device_setup::table
        .find(device_id)
        .select((
            device_setup::first_contact_at,
            device_setup::released_at,
            device_setup::outcome,
            device_setup::missing,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map(|(first_contact_at, released_at, outcome, missing)| Setup {
            first_contact_at,
            released_at,
            outcome,
            missing: missing
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
        }),
    )
}

/// Active device identities in `scope`: how many end before `soon`, and how many have
/// ended already.
pub fn identity_expiry(
    conn: &mut DbConn,
    scope: ListScope<'_>,
    now: chrono::NaiveDateTime,
    soon: chrono::NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let active = || {
        scoped(devices::table.into_boxed(), scope)
            .filter(devices::enrollment_status.eq(crate::enrollment::EnrollmentStatus::Active))
    };
    let expiring = active()
        .filter(devices::identity_cert_not_after.lt(soon))
        .filter(devices::identity_cert_not_after.ge(now))
        .count()
        .get_result(conn)?;
    let expired = active()
        .filter(devices::identity_cert_not_after.lt(now))
        .count()
        .get_result(conn)?;
    Ok((expiring, expired))
}

/// Changes to a device; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// Its name, as the iPad shows it. An enrolled iPad is told with a `Settings`
    /// command (`DeviceName`, supervised iPads only); its inventory then reports the
    /// name back, so an iPad that refuses keeps showing its own.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
}

/// Why a device change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Queueing the command failed.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

/// Checks a device name (1 to 100 characters, trimmed).
pub(crate) fn check_device_name(name: &str) -> Result<String, DeviceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DeviceError::Invalid {
            field: "name",
            message: "1 to 100 characters".into(),
        });
    }
    Ok(name.to_owned())
}

/// The `Settings` command that names an iPad (`mdm/commands/settings.yaml`, item
/// `DeviceName`).
pub(crate) fn device_name_command(name: &str) -> Result<crate::protocol::Command, DeviceError> {
    crate::protocol::Command::from_json(
        "Settings",
        &serde_json::json!({"Settings": [{"Item": "DeviceName", "DeviceName": name}]}),
    )
    .map_err(|e| DeviceError::Invalid {
        field: "name",
        message: e.to_string(),
    })
}

/// Renames a device; an active one is sent the new name. Returns whether a command was
/// queued (the caller pushes the device).
pub fn update(
    conn: &mut DbConn,
    device_id: &str,
    patch: &DevicePatch,
    actor: &str,
) -> Result<bool, DeviceError> {
    use crate::enrollment::EnrollmentStatus;
    let name = patch.name.as_deref().map(check_device_name).transpose()?;
    conn.write_tx(|conn| {
        let (before, status, tenant, school): (
            Option<String>,
            EnrollmentStatus,
            Option<String>,
            Option<String>,
        ) = devices::table
            .find(device_id)
            .select((
                devices::name,
                devices::enrollment_status,
                devices::tenant_id,
                devices::school_id,
            ))
            .first(conn)?;
        let mut changes = crate::audit::Changes::new();
        changes.field("name", &before, name.clone().map(Some).as_ref());
        let Some(name) = name.filter(|_| !changes.is_empty()) else {
            return Ok(false);
        };
        diesel::update(devices::table.find(device_id))
            .set((
                devices::name.eq(&name),
                devices::updated_at.eq(crate::db::now()),
            ))
            .execute(conn)?;
        let mut summary = changes.summary();
        let queued = status == EnrollmentStatus::Active;
        if queued {
            let command = device_name_command(&name)?;
            summary["command_uuid"] = serde_json::json!(command.command_uuid.to_string());
            let opts = crate::queue::EnqueueOptions {
                source: "api".into(),
                created_by: Some(actor.to_owned()),
                ..Default::default()
            };
            crate::queue::enqueue_in_tx(conn, &command, &[device_id.to_owned()], &opts)?;
        }
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "update", "device")
                .object(device_id)
                .scope(tenant.as_deref(), school.as_deref())
                .summary(summary),
        )?;
        Ok(queued)
    })
}

#[cfg(test)]
mod rename_tests {
    use super::*;

    #[test]
    fn a_device_name_is_sent_as_a_settings_command() {
        let c = device_name_command("iPad 7b-14").unwrap();
        assert_eq!(c.request_type, "Settings");
        let xml = String::from_utf8(c.to_xml()).unwrap();
        assert!(
            xml.contains("<string>DeviceName</string>")
                && xml.contains("<string>iPad 7b-14</string>"),
            "{xml}"
        );
        assert!(matches!(
            check_device_name(" "),
            Err(DeviceError::Invalid { field: "name", .. })
        ));
    }
}

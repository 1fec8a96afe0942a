//! The reconciler: desired state per device at time *t* (from assignments), minus
//! observed state (inventory and acknowledged commands) and commands in flight, gives
//! exactly the commands needed.
//!
//! Rules:
//! - An item (app or profile) is *desired* on a device when any live assignment that
//!   targets the device (its authority, school, classes, groups, or the device itself)
//!   is desired at *t* (inside a window or its lead time, or `always`).
//! - Overlapping assignments: install wins. An item is removed only when no assignment
//!   wants it now, no assignment that targets the device wants to keep it (a window
//!   with `after: keep`, or a window still to come with `keep`), and tafel installed it
//!   (items installed by hand or by another MDM are never removed).
//! - A pending install of an item that is no longer desired is cancelled instead (an
//!   offline device that missed its lesson is cleaned up, not served late).
//! - A failed install is not retried for [`RETRY_FAILED_AFTER`]; it shows as failed.
//! - Idempotent: what is installed, or in flight, produces nothing new.
//!
//! The pass reads in bulk (a few queries regardless of the number of devices), plans
//! in memory, and writes in one transaction: one stored command per (item, action,
//! assignment), fanned out to every device that needs it. On PostgreSQL the pass holds
//! an advisory lock, so only one node reconciles at a time.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use plist::{Dictionary, Value};

use super::schedule::{AfterWindow, Evaluation, Schedule};
use super::{Assignment, Calendars};
use crate::catalog::{App, Profile};
use crate::db::schema::{
    apps, assignments, class_devices, command_queue, commands, device_apps, device_profiles,
    devices, group_devices, profiles,
};
use crate::db::{now, DbConn};
use crate::enrollment::EnrollmentStatus;
use crate::protocol::{self, AppSource, Command, InstallApplication, PurchaseMethod};
use crate::queue::{self, Action, DeviceItem, EnqueueOptions, ItemKey};

/// A failed install is retried after this long.
pub const RETRY_FAILED_AFTER: chrono::Duration = chrono::Duration::hours(6);
/// Item key of the DeviceConfigured command (one open per device at most).
static CONFIGURED_KEY: LazyLock<ItemKey> =
    LazyLock::new(|| ItemKey::device(DeviceItem::Configured));
/// Item key of the ManagedApplicationList that follows installs of a device awaiting
/// configuration (one open per device at most).
static APP_STATUS_KEY: LazyLock<ItemKey> = LazyLock::new(|| ItemKey::device(DeviceItem::AppStatus));
/// How long after one app-status question the next may go to a device in Setup
/// Assistant (it waits for its apps; the pupil watches the screen).
const APP_STATUS_EVERY: chrono::Duration = chrono::Duration::seconds(5);
/// How long after one app-status question the next may go to an iPad in use whose apps
/// are still downloading.
const DOWNLOAD_ASK_EVERY: chrono::Duration = chrono::Duration::seconds(30);
/// How long after an install was accepted tafel keeps asking how the download goes;
/// after that the hourly inventory tells.
const WATCH_DOWNLOADS_FOR: chrono::Duration = chrono::Duration::hours(2);

/// Advisory-lock key of the reconciler ("tafelrec").
const LOCK_KEY: i64 = 0x7461_6665_6c72_6563;
/// Rows per bulk query.
const CHUNK: usize = 1000;

/// What one pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Devices looked at.
    pub devices: usize,
    /// Live assignments.
    pub assignments: usize,
    /// Install queue rows created.
    pub installs: usize,
    /// Removal queue rows created.
    pub removals: usize,
    /// Pending installs cancelled.
    pub cancelled: usize,
    /// Devices awaiting configuration asked how their app installs are going.
    pub status_checks: usize,
    /// Devices to look at again at a time of their own (release deadlines, app
    /// installs in progress): the service runs a pass for just them then.
    pub recheck: Vec<(String, DateTime<Utc>)>,
    /// Devices awaiting configuration that got DeviceConfigured.
    pub released: usize,
    /// Commands stored (each fanned out to many devices).
    pub commands: usize,
    /// Devices that got new commands (to push).
    #[serde(skip)]
    pub touched: Vec<String>,
    /// The next instant at which the desired state can change.
    pub next_boundary: Option<DateTime<Utc>>,
    /// Installs held back because the device has no licence for the app yet.
    #[serde(skip)]
    pub needed_licences: Vec<LicenceNeed>,
    /// Every (adam id, serial) a licensed app is desired for now or has a window
    /// within the grace period: licences to keep. Complete only for full passes.
    #[serde(skip)]
    pub wanted_licences: HashSet<(String, String)>,
    /// Whether this pass looked at every device (release decisions need that).
    #[serde(skip)]
    pub full: bool,
    /// The devices a partial pass was asked to look at (`None` for a full pass): the
    /// licence service keeps what it knows of every other device.
    #[serde(skip)]
    pub scope: Option<Vec<String>>,
}

/// A device that needs a licence before an install can go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceNeed {
    /// App Store id.
    pub adam_id: String,
    /// Device serial number.
    pub serial: String,
    /// Device id.
    pub device_id: String,
    /// Its authority (whose tokens may serve it).
    pub tenant_id: String,
    /// When the app is needed (window start; `at` for "always"): earliest served first.
    pub needed_from: DateTime<Utc>,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// A command could not be built (e.g. signing a profile).
    #[error("cannot build a command: {0}")]
    Build(String),
    /// No connection to run the pass on.
    #[error(transparent)]
    Unavailable(#[from] crate::db::DbError),
}

impl From<queue::QueueError> for ReconcileError {
    fn from(e: queue::QueueError) -> Self {
        match e {
            queue::QueueError::Db(e) => ReconcileError::Db(e),
            other => ReconcileError::Build(other.to_string()),
        }
    }
}

/// A catalog item as the reconciler sees it.
enum Item {
    App(App),
    Profile(Profile),
}

impl Item {
    fn key(&self) -> ItemKey {
        match self {
            Item::App(a) => ItemKey::app(&a.bundle_id),
            Item::Profile(p) => ItemKey::profile(&p.identifier),
        }
    }
}

/// What to do, grouped for fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Plan {
    item_key: ItemKey,
    /// The catalog item to install (several may share a key: versions of a profile).
    item_id: String,
    install: bool,
    assignment_id: String,
}

/// Where a device waiting in Setup Assistant stands in one pass.
#[derive(Debug, Default)]
struct SetupState {
    /// Required items not installed yet (failed ones included).
    missing: Vec<ItemKey>,
    /// Something missing is still on its way: the device is held back.
    blocking: bool,
    school: Option<String>,
    tenant: Option<String>,
    /// An app is downloading and nobody asked for its progress yet.
    downloading: bool,
}

/// Device id, authority, school, serial number.
type DeviceRow = (String, Option<String>, Option<String>, Option<String>);

/// Prepares a catalog profile for InstallProfile: opens its sealed payload and signs it.
pub type Signer<'a> = &'a dyn Fn(&Profile) -> Result<Vec<u8>, String>;

/// How long a licence is kept after its app is no longer needed (default of [`run`]).
pub const DEFAULT_LICENCE_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Runs one pass at `at` over all active devices, or only `only`.
pub fn run(
    conn: &mut DbConn,
    at: DateTime<Utc>,
    only: Option<&[String]>,
    sign: Signer<'_>,
) -> Result<Report, ReconcileError> {
    run_with(conn, at, only, sign, DEFAULT_LICENCE_GRACE)
}

/// As [`run`], with the licence grace period.
pub fn run_with(
    conn: &mut DbConn,
    at: DateTime<Utc>,
    only: Option<&[String]>,
    sign: Signer<'_>,
    grace: chrono::Duration,
) -> Result<Report, ReconcileError> {
    let locked = matches!(conn, DbConn::Pg(_));
    if locked {
        diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})")).execute(conn)?;
    }
    let result = pass(conn, at, only, sign, grace);
    if locked {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_KEY})")).execute(conn)?;
    }
    result
}

/// Everything a pass decides from, read in one snapshot: an answer and the inventory
/// it carries land in one transaction, so an item here is installed, in flight or
/// missing, never absent in between.
#[derive(Default)]
struct Snapshot {
    policies: HashMap<String, crate::ade::school::ReleasePolicy>,
    live: Vec<Assignment>,
    items: HashMap<String, Item>,
    /// Every catalog key → item id (only catalog items are ever removed).
    catalog_keys: HashMap<ItemKey, String>,
    /// Catalog items deleted (kept to remove them; never wanted).
    deleted: HashSet<String>,
    schedules: Vec<Option<Schedule>>,
    calendars: Calendars,
    device_rows: Vec<DeviceRow>,
    /// Devices waiting in Setup Assistant, with their enrollment time.
    awaiting: HashMap<String, Option<chrono::NaiveDateTime>>,
    /// Licences Apple holds: (adam id, serial).
    licences: HashSet<(String, String)>,
    classes_of: HashMap<String, Vec<String>>,
    groups_of: HashMap<String, Vec<String>>,
    /// device → key → by tafel.
    observed: HashMap<String, HashMap<ItemKey, bool>>,
    /// device → profile key → the version (PayloadUUID) it holds, where known.
    versions: HashMap<String, HashMap<ItemKey, String>>,
    /// Apps acknowledged, not yet installed, since when they are on their way.
    installing: HashMap<(String, ItemKey), chrono::NaiveDateTime>,
    /// Apps the device reports failed.
    failed_apps: HashSet<(String, ItemKey)>,
    /// Installs the device accepted within [`WATCH_DOWNLOADS_FOR`], and when.
    accepted: HashMap<(String, ItemKey), chrono::NaiveDateTime>,
    /// device → key → install?
    in_flight: HashMap<String, HashMap<ItemKey, bool>>,
    /// Installs that failed recently (not retried yet).
    failed: HashSet<(String, ItemKey)>,
    /// Devices waiting or downloading that answered an app-status question within
    /// [`DOWNLOAD_ASK_EVERY`], with the time of the answer.
    answered_app_status: HashMap<String, chrono::NaiveDateTime>,
}

fn load_snapshot(
    conn: &mut DbConn,
    naive_at: chrono::NaiveDateTime,
    only: Option<&[String]>,
) -> QueryResult<Snapshot> {
    let policies = crate::ade::school::release_policies(conn)?;
    let live: Vec<Assignment> = assignments::table
        .filter(assignments::deleted_at.is_null())
        .select(Assignment::as_select())
        .order(assignments::created_at.asc())
        .load(conn)?;

    // The catalog items the assignments name, by id, and every catalog key (only
    // catalog items are ever removed).
    let app_rows: Vec<App> = apps::table.select(App::as_select()).load(conn)?;
    let profile_rows: Vec<Profile> = profiles::table.select(Profile::as_select()).load(conn)?;
    let mut deleted: HashSet<String> = apps::table
        .filter(apps::deleted_at.is_not_null())
        .select(apps::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    deleted.extend(
        profiles::table
            .filter(profiles::deleted_at.is_not_null())
            .select(profiles::id)
            .load::<String>(conn)?,
    );
    let mut items: HashMap<String, Item> = HashMap::new();
    let mut catalog_keys: HashMap<ItemKey, String> = HashMap::new(); // key -> item id (for removal commands)
    for item in app_rows
        .into_iter()
        .map(Item::App)
        .chain(profile_rows.into_iter().map(Item::Profile))
    {
        let id = match &item {
            Item::App(a) => a.id.clone(),
            Item::Profile(p) => p.id.clone(),
        };
        catalog_keys.insert(item.key(), id.clone());
        items.insert(id, item);
    }

    // Schedules in clock times under each school's current periods; one that does not
    // resolve (a period it names was removed since) is skipped.
    let periods = super::period_tables(conn)?;
    let schedules: Vec<Option<Schedule>> = live.iter().map(|a| periods.schedule_of(a)).collect();
    let calendars: Calendars = super::calendars(conn)?;

    // Devices in scope and their memberships.
    let mut dq = devices::table
        .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
        .filter(devices::udid.is_not_null())
        .select((
            devices::id,
            devices::tenant_id,
            devices::school_id,
            devices::serial_number,
        ))
        .into_boxed();
    if let Some(ids) = only {
        dq = dq.filter(devices::id.eq_any(ids.to_vec()));
    }
    let device_rows: Vec<DeviceRow> = dq.load(conn)?;
    // Devices waiting in Setup Assistant for their initial configuration.
    let awaiting: HashMap<String, Option<chrono::NaiveDateTime>> = {
        let mut aq = devices::table
            .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
            .filter(devices::awaiting_configuration.eq(true))
            .select((devices::id, devices::enrolled_at))
            .into_boxed();
        if let Some(ids) = only {
            aq = aq.filter(devices::id.eq_any(ids.to_vec()));
        }
        aq.load::<(String, Option<chrono::NaiveDateTime>)>(conn)?
            .into_iter()
            .collect()
    };
    // Licences Apple holds: (adam id, serial).
    let licences: HashSet<(String, String)> = crate::db::schema::vpp_licences::table
        .select((
            crate::db::schema::vpp_licences::adam_id,
            crate::db::schema::vpp_licences::serial_number,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let device_ids: Vec<String> = device_rows.iter().map(|d| d.0.clone()).collect();
    let mut classes_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut observed: HashMap<String, HashMap<ItemKey, bool>> = HashMap::new(); // device -> key -> by_tafel
    let mut versions: HashMap<String, HashMap<ItemKey, String>> = HashMap::new();
    let mut installing: HashMap<(String, ItemKey), chrono::NaiveDateTime> = HashMap::new(); // apps acknowledged, not yet installed
    let mut failed_apps: HashSet<(String, ItemKey)> = HashSet::new(); // apps the device reports failed
    let mut in_flight: HashMap<String, HashMap<ItemKey, bool>> = HashMap::new(); // device -> key -> install?
    let mut failed: HashSet<(String, ItemKey)> = HashSet::new();
    let mut accepted: HashMap<(String, ItemKey), chrono::NaiveDateTime> = HashMap::new();
    let open = queue::QueueState::OPEN;
    for chunk in device_ids.chunks(CHUNK) {
        for (c, d) in class_devices::table
            .filter(class_devices::device_id.eq_any(chunk))
            .select((class_devices::class_id, class_devices::device_id))
            .load::<(String, String)>(conn)?
        {
            classes_of.entry(d).or_default().push(c);
        }
        for (g, d) in group_devices::table
            .filter(group_devices::device_id.eq_any(chunk))
            .select((group_devices::group_id, group_devices::device_id))
            .load::<(String, String)>(conn)?
        {
            groups_of.entry(d).or_default().push(g);
        }
        for (d, b, mine, st, since) in device_apps::table
            .filter(device_apps::device_id.eq_any(chunk))
            .select((
                device_apps::device_id,
                device_apps::bundle_id,
                device_apps::by_tafel,
                device_apps::status,
                device_apps::updated_at,
            ))
            .load::<(String, String, bool, String, chrono::NaiveDateTime)>(conn)?
        {
            let key = ItemKey::app(&b);
            match crate::inventory::app_state(&st) {
                crate::inventory::AppState::OnItsWay => {
                    installing.insert((d.clone(), key.clone()), since);
                }
                crate::inventory::AppState::Failed => {
                    failed_apps.insert((d.clone(), key.clone()));
                }
                crate::inventory::AppState::Installed => {}
            }
            observed.entry(d).or_default().insert(key, mine);
        }
        for (d, i, mine, uuid) in device_profiles::table
            .filter(device_profiles::device_id.eq_any(chunk))
            .select((
                device_profiles::device_id,
                device_profiles::identifier,
                device_profiles::by_tafel,
                device_profiles::uuid,
            ))
            .load::<(String, String, bool, Option<String>)>(conn)?
        {
            let key = ItemKey::profile(&i);
            if let Some(uuid) = uuid {
                versions
                    .entry(d.clone())
                    .or_default()
                    .insert(key.clone(), uuid);
            }
            observed.entry(d).or_default().insert(key, mine);
        }
        for (d, key, action) in command_queue::table
            .inner_join(commands::table)
            .filter(command_queue::device_id.eq_any(chunk))
            .filter(command_queue::status.eq_any(&open))
            .filter(commands::item_key.is_not_null())
            .select((
                command_queue::device_id,
                commands::item_key,
                commands::action,
            ))
            .load::<(String, Option<ItemKey>, Option<Action>)>(conn)?
        {
            if let Some(k) = key {
                in_flight
                    .entry(d)
                    .or_default()
                    .insert(k, action == Some(Action::Install));
            }
        }
        for (d, key, t) in command_queue::table
            .inner_join(commands::table)
            .filter(command_queue::device_id.eq_any(chunk))
            .filter(command_queue::status.eq(queue::QueueState::Acknowledged))
            .filter(commands::action.eq(Action::Install))
            .filter(command_queue::answered_at.gt(naive_at - WATCH_DOWNLOADS_FOR))
            .select((
                command_queue::device_id,
                commands::item_key,
                command_queue::answered_at,
            ))
            .load::<(String, Option<ItemKey>, Option<chrono::NaiveDateTime>)>(conn)?
        {
            if let (Some(k), Some(t)) = (key, t) {
                let e = accepted.entry((d, k)).or_insert(t);
                *e = (*e).max(t);
            }
        }
        for (d, key) in command_queue::table
            .inner_join(commands::table)
            .filter(command_queue::device_id.eq_any(chunk))
            .filter(command_queue::status.eq_any([
                queue::QueueState::Error,
                queue::QueueState::CommandFormatError,
            ]))
            .filter(commands::action.eq(Action::Install))
            .filter(command_queue::answered_at.gt(naive_at - RETRY_FAILED_AFTER))
            .select((command_queue::device_id, commands::item_key))
            .load::<(String, Option<ItemKey>)>(conn)?
        {
            if let Some(k) = key {
                failed.insert((d, k));
            }
        }
    }

    // At most one app-status question per device every few seconds (a device answers
    // at once and would otherwise be asked again and again while an app downloads).
    let asked: HashSet<&String> = awaiting
        .keys()
        .chain(installing.keys().map(|(d, _)| d))
        .collect();
    let asked: Vec<String> = asked.into_iter().cloned().collect();
    let mut answered_app_status: HashMap<String, chrono::NaiveDateTime> = HashMap::new();
    for chunk in asked.chunks(CHUNK) {
        for (d, t) in command_queue::table
            .inner_join(commands::table)
            .filter(commands::item_key.eq(&*APP_STATUS_KEY))
            .filter(command_queue::device_id.eq_any(chunk))
            .filter(command_queue::answered_at.gt(naive_at - DOWNLOAD_ASK_EVERY))
            .select((command_queue::device_id, command_queue::answered_at))
            .load::<(String, Option<chrono::NaiveDateTime>)>(conn)?
        {
            if let Some(t) = t {
                let e = answered_app_status.entry(d).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    Ok(Snapshot {
        policies,
        live,
        items,
        catalog_keys,
        deleted,
        schedules,
        calendars,
        device_rows,
        awaiting,
        licences,
        classes_of,
        groups_of,
        observed,
        versions,
        installing,
        failed_apps,
        accepted,
        in_flight,
        failed,
        answered_app_status,
    })
}

/// Load → decide → build → write: the decision is [`plan`], a pure function of the
/// snapshot and the instant.
fn pass(
    conn: &mut DbConn,
    at: DateTime<Utc>,
    only: Option<&[String]>,
    sign: Signer<'_>,
    grace: chrono::Duration,
) -> Result<Report, ReconcileError> {
    let snapshot = conn.read_snapshot(|conn| load_snapshot(conn, at.naive_utc(), only))?;
    let decisions = plan(&snapshot, at, grace, only.is_none());
    // Build commands first (signing may fail), then write everything at once.
    let built = build_commands(&snapshot.items, &decisions, sign)?;
    let mut report = write(conn, decisions, built)?;
    report.scope = only.map(<[String]>::to_vec);
    Ok(report)
}

/// What one pass decided, before anything is built or written.
#[derive(Debug, Default)]
struct Decisions {
    /// The report so far (counts of writes are added when they happen).
    report: Report,
    /// Installs and removals, each fanned out to its devices.
    plans: HashMap<Plan, Vec<String>>,
    /// Pending installs of items nobody wants any more: (device, key).
    cancels: Vec<(String, ItemKey)>,
    /// Devices awaiting configuration released now.
    released: Vec<Release>,
    /// Devices awaiting configuration, or with apps downloading, asked now how their app
    /// installs are going.
    ask_app_status: Vec<String>,
    /// Devices with a wanted app of tafel's still on its way, and since when.
    downloading: Vec<(String, chrono::NaiveDateTime)>,
}

/// A device released from Setup Assistant, and how its wait ended.
#[derive(Debug)]
struct Release {
    device: String,
    state: SetupState,
    /// Released because its school's timeout passed, not because it was done.
    by_timeout: bool,
}

/// What the assignments say about one item on one device.
#[derive(Debug, Default)]
struct Wants<'s> {
    /// Desired items → (assignment id, item id); the first assignment wins the link.
    desired: HashMap<ItemKey, (&'s str, &'s str)>,
    /// Items kept between windows.
    keep: HashSet<ItemKey>,
    /// When each desired item is needed (window start, or now).
    needed_from: HashMap<ItemKey, DateTime<Utc>>,
    /// Items the device's school requires before release (devices awaiting configuration).
    required: HashSet<ItemKey>,
}

/// Schedules evaluated once per (assignment, school), and the earliest boundary seen.
struct Evaluator<'s> {
    snapshot: &'s Snapshot,
    at: DateTime<Utc>,
    grace: chrono::Duration,
    cache: HashMap<(usize, Option<&'s str>), (Evaluation, bool)>,
    next_boundary: Option<DateTime<Utc>>,
}

impl<'s> Evaluator<'s> {
    /// The evaluation of assignment `i` at a place, and whether it has a window within
    /// the licence grace period.
    fn eval(
        &mut self,
        i: usize,
        schedule: &Schedule,
        tenant: Option<&'s str>,
        school: Option<&'s str>,
    ) -> (Evaluation, bool) {
        let (at, grace, snapshot) = (self.at, self.grace, self.snapshot);
        let next_boundary = &mut self.next_boundary;
        *self.cache.entry((i, school)).or_insert_with(|| {
            let cal = snapshot.calendars.for_place(tenant, school);
            let e = schedule.evaluate(at, &cal);
            if let Some(b) = e.next_boundary {
                *next_boundary = Some(next_boundary.map_or(b, |n| n.min(b)));
            }
            (e, schedule.has_window_within(at, grace, &cal))
        })
    }
}

/// The pure decision of a pass: what to install, remove, cancel, ask and release.
fn plan(snapshot: &Snapshot, at: DateTime<Utc>, grace: chrono::Duration, full: bool) -> Decisions {
    let mut d = Decisions {
        report: Report {
            assignments: snapshot.live.len(),
            devices: snapshot.device_rows.len(),
            full,
            ..Report::default()
        },
        ..Decisions::default()
    };
    // Which assignments target what.
    let mut by_target: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, a) in snapshot.live.iter().enumerate() {
        by_target
            .entry((a.target_kind.as_str(), a.target_id.as_str()))
            .or_default()
            .push(i);
    }
    let mut evaluator = Evaluator {
        snapshot,
        at,
        grace,
        cache: HashMap::new(),
        next_boundary: None,
    };
    let mut setup: HashMap<String, SetupState> = HashMap::new();
    for row in &snapshot.device_rows {
        let relevant = relevant(snapshot, &by_target, row);
        let wants = wants(snapshot, &mut evaluator, row, &relevant, &mut d.report);
        if snapshot.awaiting.contains_key(&row.0) {
            setup.insert(row.0.clone(), setup_state(snapshot, row, &wants));
        }
        plan_device(snapshot, row, &relevant, &wants, at, &mut d);
    }
    d.report.next_boundary = evaluator.next_boundary;
    plan_releases(snapshot, at, setup, &mut d);
    plan_download_questions(snapshot, at, &mut d);
    d
}

/// The assignments that target a device: its authority, school, classes, groups, itself.
fn relevant(
    snapshot: &Snapshot,
    by_target: &HashMap<(&str, &str), Vec<usize>>,
    (device, tenant, school, _): &DeviceRow,
) -> Vec<usize> {
    let mut relevant = Vec::new();
    let mut add = |kind: &str, id: &str| {
        if let Some(v) = by_target.get(&(kind, id)) {
            relevant.extend_from_slice(v);
        }
    };
    if let Some(t) = tenant {
        add("tenant", t);
    }
    if let Some(s) = school {
        add("school", s);
    }
    for c in snapshot.classes_of.get(device).into_iter().flatten() {
        add("class", c);
    }
    for g in snapshot.groups_of.get(device).into_iter().flatten() {
        add("group", g);
    }
    add("device", device);
    relevant
}

/// What a device's assignments want of it now; licences to keep go into the report.
fn wants<'s>(
    snapshot: &'s Snapshot,
    evaluator: &mut Evaluator<'s>,
    (device, tenant, school, serial): &'s DeviceRow,
    relevant: &[usize],
    report: &mut Report,
) -> Wants<'s> {
    let mut w = Wants::default();
    let waiting = snapshot.awaiting.contains_key(device);
    let requires = school
        .as_ref()
        .and_then(|s| snapshot.policies.get(s))
        .and_then(|p| p.requires.as_ref());
    for &i in relevant {
        let a = &snapshot.live[i];
        let (Some(item), Some(schedule)) = (
            snapshot.items.get(&a.item_id),
            snapshot.schedules[i].as_ref(),
        ) else {
            continue;
        };
        if snapshot.deleted.contains(&a.item_id) {
            continue;
        }
        let key = item.key();
        let (eval, soon) = evaluator.eval(i, schedule, tenant.as_deref(), school.as_deref());
        // Licences stay while the app is wanted now or within the grace period.
        if let (Item::App(app), Some(serial)) = (item, serial) {
            if let (true, Some(adam)) = (app.licensed, &app.adam_id) {
                if eval.desired || soon {
                    report
                        .wanted_licences
                        .insert((adam.clone(), serial.clone()));
                }
            }
        }
        if eval.desired {
            if waiting && requires.is_none_or(|r| r.contains(&a.id)) {
                w.required.insert(key.clone());
            }
            w.desired
                .entry(key.clone())
                .or_insert((a.id.as_str(), a.item_id.as_str()));
            let from = eval.active_window.map(|w| w.0).unwrap_or(evaluator.at);
            let e = w.needed_from.entry(key).or_insert(from);
            *e = (*e).min(from);
        } else if !eval.remove_now && keeps(schedule) {
            w.keep.insert(key);
        }
    }
    w
}

/// What the initial configuration of a device in Setup Assistant still lacks. An app
/// counts once the device reports it installed, not when it accepted the install
/// command. Failed installs (and apps the device reports failed) do not hold the device
/// back (they are retried later) but count as missing.
fn setup_state(
    snapshot: &Snapshot,
    (device, tenant, school, _): &DeviceRow,
    wants: &Wants<'_>,
) -> SetupState {
    let seen = snapshot.observed.get(device);
    let here = |k: &ItemKey| (device.clone(), k.clone());
    let mut missing: Vec<ItemKey> = wants
        .required
        .iter()
        .filter(|k| {
            !seen.is_some_and(|s| s.contains_key(*k))
                || snapshot.installing.contains_key(&here(k))
                || snapshot.failed_apps.contains(&here(k))
        })
        .cloned()
        .collect();
    missing.sort();
    let downloading = missing
        .iter()
        .any(|k| snapshot.installing.contains_key(&here(k)))
        && !snapshot
            .in_flight
            .get(device)
            .is_some_and(|f| f.contains_key(&*APP_STATUS_KEY));
    let blocking = missing
        .iter()
        .any(|k| !snapshot.failed.contains(&here(k)) && !snapshot.failed_apps.contains(&here(k)));
    SetupState {
        missing,
        blocking,
        school: school.clone(),
        tenant: tenant.clone(),
        downloading,
    }
}

/// Installs, cancels and removals for one device.
fn plan_device(
    snapshot: &Snapshot,
    (device, tenant, _, serial): &DeviceRow,
    relevant: &[usize],
    wants: &Wants<'_>,
    at: DateTime<Utc>,
    d: &mut Decisions,
) {
    let seen = snapshot.observed.get(device);
    let flying_here = snapshot.in_flight.get(device);
    let held = snapshot.versions.get(device);
    for (key, (assignment, item_id)) in &wants.desired {
        let item = snapshot.items.get(*item_id);
        // A profile counts as installed in the wanted version only (unknown versions,
        // of rows stored before versions were kept, match).
        let wanted = match item {
            Some(Item::Profile(p)) => p.payload_uuid.as_deref(),
            _ => None,
        };
        let current =
            crate::catalog::same_version(wanted, held.and_then(|h| h.get(key)).map(String::as_str));
        let installed = current && seen.is_some_and(|s| s.contains_key(key));
        let flying = flying_here.and_then(|f| f.get(key));
        if snapshot.failed.contains(&(device.clone(), key.clone())) {
            continue;
        }
        let on_device = installed || flying == Some(&true);
        // A licensed app goes out only to a serial that holds a licence; and one the
        // iPad already has (or is getting) needs its licence too: Apple may revoke it
        // (a content manager moved it), and the app stops opening without one.
        if let Some(Item::App(app)) = item {
            if let (true, Some(adam)) = (app.licensed, &app.adam_id) {
                let licensed = serial
                    .as_ref()
                    .is_some_and(|s| snapshot.licences.contains(&(adam.clone(), s.clone())));
                if !licensed {
                    if let (Some(s), Some(t)) = (serial, tenant) {
                        d.report.needed_licences.push(LicenceNeed {
                            adam_id: adam.clone(),
                            serial: s.clone(),
                            device_id: device.clone(),
                            tenant_id: t.clone(),
                            needed_from: wants.needed_from.get(key).copied().unwrap_or(at),
                        });
                    }
                    continue;
                }
            }
        }
        if on_device {
            continue;
        }
        d.plans
            .entry(Plan {
                item_key: key.clone(),
                item_id: (*item_id).to_owned(),
                install: true,
                assignment_id: (*assignment).to_owned(),
            })
            .or_default()
            .push(device.clone());
    }
    // A wanted app of tafel's still on its way, whose install the iPad accepted lately:
    // the iPad will be asked how it goes.
    let since = wants
        .desired
        .keys()
        .filter(|k| seen.and_then(|s| s.get(*k)) == Some(&true))
        .map(|k| (device.clone(), k.clone()))
        .filter(|here| snapshot.installing.contains_key(here))
        .filter_map(|here| snapshot.accepted.get(&here))
        .max();
    if let Some(since) = since {
        d.downloading.push((device.clone(), *since));
    }
    // Pending installs of items nobody wants any more.
    for (key, install) in flying_here.into_iter().flatten() {
        if *install && !wants.desired.contains_key(key) && !wants.keep.contains(key) {
            d.cancels.push((device.clone(), key.clone()));
        }
    }
    // Removals: tafel's items that nothing wants or keeps (and not already on their way).
    for (key, by_tafel) in seen.into_iter().flatten() {
        if !by_tafel
            || wants.desired.contains_key(key)
            || wants.keep.contains(key)
            || flying_here.is_some_and(|f| f.contains_key(key))
        {
            continue;
        }
        let Some(item_id) = snapshot.catalog_keys.get(key) else {
            continue;
        };
        let assignment = relevant
            .iter()
            .map(|&i| &snapshot.live[i])
            .find(|a| snapshot.items.get(&a.item_id).map(Item::key).as_ref() == Some(key))
            .map(|a| a.id.clone())
            .unwrap_or_default();
        d.plans
            .entry(Plan {
                item_key: key.clone(),
                item_id: item_id.clone(),
                install: false,
                assignment_id: assignment,
            })
            .or_default()
            .push(device.clone());
    }
}

/// Releases devices awaiting configuration once what their school requires is done (or
/// its release timeout passed): DeviceConfigured (`mdm/commands/device.configured.yaml`).
/// The others are looked at again at their deadline and, while apps download, asked how
/// it goes (at most once every [`APP_STATUS_EVERY`]).
fn plan_releases(
    snapshot: &Snapshot,
    at: DateTime<Utc>,
    mut setup: HashMap<String, SetupState>,
    d: &mut Decisions,
) {
    let default_policy = crate::ade::school::ReleasePolicy::default();
    for (device, enrolled_at) in &snapshot.awaiting {
        if snapshot
            .in_flight
            .get(device)
            .is_some_and(|f| f.contains_key(&*CONFIGURED_KEY))
        {
            continue;
        }
        let state = setup.remove(device).unwrap_or_default();
        let policy = state
            .school
            .as_ref()
            .and_then(|s| snapshot.policies.get(s))
            .unwrap_or(&default_policy);
        let deadline = enrolled_at.map(|e| e + policy.timeout);
        let overdue = deadline.is_some_and(|d| at.naive_utc() >= d);
        if state.blocking && !overdue {
            if let Some(deadline) = deadline.map(|d| d.and_utc()) {
                d.report.recheck.push((device.clone(), deadline));
            }
            if state.downloading {
                // Either way, look again shortly: an answer that still says
                // "installing" changes nothing and wakes no one.
                d.report
                    .recheck
                    .push((device.clone(), at + APP_STATUS_EVERY));
                if !answered_within(snapshot, device, at, APP_STATUS_EVERY) {
                    d.ask_app_status.push(device.clone());
                }
            }
            continue;
        }
        if !state.missing.is_empty() {
            tracing::warn!(device = %device, missing = ?state.missing, "releasing a device before its initial configuration finished");
        }
        let by_timeout = state.blocking;
        d.released.push(Release {
            device: device.clone(),
            state,
            by_timeout,
        });
    }
}

/// Did the device answer an app-status question within `every` before `at`?
fn answered_within(
    snapshot: &Snapshot,
    device: &str,
    at: DateTime<Utc>,
    every: chrono::Duration,
) -> bool {
    snapshot
        .answered_app_status
        .get(device)
        .is_some_and(|t| *t > at.naive_utc() - every)
}

/// iPads in use whose apps are still downloading are asked how it goes (at most once
/// every [`DOWNLOAD_ASK_EVERY`], for [`WATCH_DOWNLOADS_FOR`] after an install was
/// accepted), so an app counts as installed when the iPad says so, not an hour later.
/// Devices in Setup Assistant are asked by [`plan_releases`].
fn plan_download_questions(snapshot: &Snapshot, at: DateTime<Utc>, d: &mut Decisions) {
    let devices = std::mem::take(&mut d.downloading);
    for (device, since) in devices {
        if snapshot.awaiting.contains_key(&device)
            || at.naive_utc() - since > WATCH_DOWNLOADS_FOR
            || snapshot
                .in_flight
                .get(&device)
                .is_some_and(|f| f.contains_key(&*APP_STATUS_KEY))
        {
            continue;
        }
        d.report
            .recheck
            .push((device.clone(), at + DOWNLOAD_ASK_EVERY));
        if !answered_within(snapshot, &device, at, DOWNLOAD_ASK_EVERY) {
            d.ask_app_status.push(device);
        }
    }
}

/// A command ready to store, with its queue options and devices.
struct Built {
    command: Command,
    opts: EnqueueOptions,
    targets: Vec<String>,
}

/// The commands the decisions need; signing a profile may fail.
fn build_commands(
    items: &HashMap<String, Item>,
    d: &Decisions,
    sign: Signer<'_>,
) -> Result<Vec<Built>, ReconcileError> {
    let mut built = Vec::new();
    for (plan, targets) in &d.plans {
        let Some(item) = items.get(&plan.item_id) else {
            continue;
        };
        let item_version = match item {
            Item::Profile(p) if plan.install => p.payload_uuid.clone(),
            _ => None,
        };
        built.push(Built {
            command: build(item, plan.install, sign)?,
            opts: EnqueueOptions {
                priority: 0,
                expires_at: None,
                source: "reconciler".into(),
                created_by: None,
                assignment_id: (!plan.assignment_id.is_empty()).then(|| plan.assignment_id.clone()),
                item_key: Some(plan.item_key.clone()),
                action: Some(if plan.install {
                    Action::Install
                } else {
                    Action::Remove
                }),
                item_version,
            },
            targets: targets.clone(),
        });
    }
    let device_command =
        |command: Command, key: &ItemKey, action: Action, targets: Vec<String>| Built {
            command,
            opts: EnqueueOptions {
                priority: -1,
                source: "reconciler".into(),
                item_key: Some(key.clone()),
                action: Some(action),
                ..EnqueueOptions::default()
            },
            targets,
        };
    if !d.ask_app_status.is_empty() {
        built.push(device_command(
            Command::managed_application_list(),
            &APP_STATUS_KEY,
            Action::Inventory,
            d.ask_app_status.clone(),
        ));
    }
    if !d.released.is_empty() {
        built.push(device_command(
            Command::device_configured(),
            &CONFIGURED_KEY,
            Action::Configure,
            d.released.iter().map(|r| r.device.clone()).collect(),
        ));
    }
    Ok(built)
}

/// Stores the commands, the releases and the cancels in one transaction.
fn write(conn: &mut DbConn, d: Decisions, built: Vec<Built>) -> Result<Report, ReconcileError> {
    let Decisions {
        mut report,
        cancels,
        released,
        ..
    } = d;
    let mut touched: HashSet<String> = HashSet::new();
    conn.write_tx(|conn| -> Result<(), ReconcileError> {
        for b in &built {
            let n = queue::enqueue_in_tx(conn, &b.command, &b.targets, &b.opts)?;
            match b.opts.action {
                Some(Action::Configure) => report.released += n,
                Some(Action::Inventory) => report.status_checks += n,
                Some(Action::Install) => report.installs += n,
                _ => report.removals += n,
            }
            report.commands += 1;
            touched.extend(b.targets.iter().cloned());
        }
        for r in &released {
            record_release(
                conn,
                &r.device,
                &r.state.missing,
                r.by_timeout,
                r.state.school.as_deref(),
                r.state.tenant.as_deref(),
            )?;
        }
        for (device, key) in &cancels {
            let flying: Vec<String> = commands::table
                .filter(commands::item_key.eq(key))
                .filter(commands::action.eq(Action::Install))
                .select(commands::command_uuid)
                .load(conn)?;
            report.cancelled += diesel::update(
                command_queue::table
                    .filter(command_queue::device_id.eq(device))
                    .filter(command_queue::command_uuid.eq_any(&flying))
                    .filter(
                        command_queue::status
                            .eq_any([queue::QueueState::Pending, queue::QueueState::NotNow]),
                    ),
            )
            .set((
                command_queue::status.eq(queue::QueueState::Cancelled),
                command_queue::updated_at.eq(now()),
            ))
            .execute(conn)?;
        }
        Ok(())
    })?;
    report.touched = touched.into_iter().collect();
    Ok(report)
}

/// Records how a device's wait ended (the gap, if any, also in the audit log).
fn record_release(
    conn: &mut DbConn,
    device: &str,
    missing: &[ItemKey],
    by_timeout: bool,
    school: Option<&str>,
    tenant: Option<&str>,
) -> QueryResult<()> {
    use crate::devices::SetupOutcome;
    let result = if by_timeout {
        SetupOutcome::Timeout
    } else if missing.is_empty() {
        SetupOutcome::Configured
    } else {
        SetupOutcome::Incomplete
    };
    let missing: Vec<&str> = missing.iter().map(ItemKey::as_str).collect();
    crate::devices::finish_setup(conn, device, result, &missing)?;
    if !missing.is_empty() {
        crate::audit::record(
            conn,
            &crate::audit::Entry::new("system:reconciler", "release_incomplete", "device")
                .object(device)
                .scope(tenant, school)
                .summary(serde_json::json!({"outcome": result, "missing": missing})),
        )?;
    }
    Ok(())
}

/// Does this schedule keep its items between windows?
fn keeps(schedule: &Schedule) -> bool {
    match schedule {
        Schedule::Always => true,
        Schedule::Windows(w) => w.after() == AfterWindow::Keep,
    }
}

/// The command for installing or removing an item.
fn build(item: &Item, install: bool, sign: Signer<'_>) -> Result<Command, ReconcileError> {
    match (item, install) {
        (Item::App(a), true) => {
            let source = match (&a.adam_id, &a.manifest_url) {
                (Some(id), _) => AppSource::ITunesStoreId(
                    id.parse()
                        .map_err(|_| ReconcileError::Build(format!("adam id {id:?}")))?,
                ),
                (None, Some(url)) => AppSource::ManifestUrl(url.clone()),
                (None, None) => AppSource::Identifier(a.bundle_id.clone()),
            };
            let configuration = a
                .configuration
                .as_deref()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                .and_then(|v| protocol::json_to_plist(&v, "Configuration").ok())
                .and_then(|v| v.into_dictionary());
            let mut attributes = Dictionary::new();
            attributes.insert("Removable".into(), Value::Boolean(a.removable));
            let spec = InstallApplication {
                source,
                management_flags: Some(i64::from(a.management_flags)),
                // Device-assigned licences: no Apple Account is asked for.
                purchase_method: a.licensed.then_some(PurchaseMethod::VppAssignment),
                configuration,
                attributes: Some(attributes),
                take_management: true,
                install_as_managed: None,
            };
            Command::install_application(&spec).map_err(|e| ReconcileError::Build(e.to_string()))
        }
        (Item::App(a), false) => Ok(Command::remove_application(&a.bundle_id)),
        (Item::Profile(p), true) => Ok(Command::install_profile(
            sign(p).map_err(ReconcileError::Build)?,
        )),
        (Item::Profile(p), false) => Ok(Command::remove_profile(&p.identifier)),
    }
}

#[cfg(test)]
mod tests {
    //! The decision without a database: a hand-made snapshot in, decisions out.

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-08T07:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn app(id: &str, bundle: &str) -> App {
        App {
            id: id.into(),
            tenant_id: None,
            name: bundle.into(),
            bundle_id: bundle.into(),
            adam_id: None,
            manifest_url: None,
            management_flags: 1,
            removable: true,
            configuration: None,
            licensed: false,
            created_at: at().naive_utc(),
            updated_at: at().naive_utc(),
        }
    }

    fn profile(id: &str, identifier: &str, uuid: &str) -> Profile {
        Profile {
            id: id.into(),
            tenant_id: None,
            school_id: None,
            name: identifier.into(),
            identifier: identifier.into(),
            payload: Vec::new(),
            template: None,
            payload_types: String::new(),
            created_at: at().naive_utc(),
            updated_at: at().naive_utc(),
            payload_uuid: Some(uuid.into()),
        }
    }

    /// A snapshot with device `d1` (serial `S1`) of school `s1` in authority `t1`.
    fn snapshot(items: Vec<Item>, assigned: &[(&str, &str)]) -> Snapshot {
        let mut s = Snapshot {
            device_rows: vec![(
                "d1".into(),
                Some("t1".into()),
                Some("s1".into()),
                Some("S1".into()),
            )],
            ..Snapshot::default()
        };
        for item in items {
            let id = match &item {
                Item::App(a) => a.id.clone(),
                Item::Profile(p) => p.id.clone(),
            };
            s.catalog_keys.insert(item.key(), id.clone());
            s.items.insert(id, item);
        }
        for (id, item_id) in assigned {
            s.live.push(Assignment {
                id: (*id).into(),
                tenant_id: "t1".into(),
                school_id: Some("s1".into()),
                item_kind: "app".into(),
                item_id: (*item_id).into(),
                target_kind: "school".into(),
                target_id: "s1".into(),
                schedule: r#"{"type":"always"}"#.into(),
                source: "admin".into(),
                created_by: None,
                created_at: at().naive_utc(),
                updated_at: at().naive_utc(),
                deleted_at: None,
                lesson_request_id: None,
            });
            s.schedules.push(Some(Schedule::Always));
        }
        s
    }

    fn decide(s: &Snapshot) -> Decisions {
        plan(s, at(), DEFAULT_LICENCE_GRACE, true)
    }

    fn installs(d: &Decisions) -> Vec<(String, Vec<String>)> {
        let mut v: Vec<_> = d
            .plans
            .iter()
            .filter(|(p, _)| p.install)
            .map(|(p, t)| (p.item_key.to_string(), t.clone()))
            .collect();
        v.sort();
        v
    }

    fn removals(d: &Decisions) -> Vec<String> {
        d.plans
            .iter()
            .filter(|(p, _)| !p.install)
            .map(|(p, _)| p.item_key.to_string())
            .collect()
    }

    fn observe(s: &mut Snapshot, key: ItemKey, by_tafel: bool) {
        s.observed
            .entry("d1".into())
            .or_default()
            .insert(key, by_tafel);
    }

    #[test]
    fn an_assigned_app_goes_out_once_and_not_again_while_installed_or_on_its_way() {
        let mut s = snapshot(
            vec![Item::App(app("a1", "com.apple.Keynote"))],
            &[("as1", "a1")],
        );
        let d = decide(&s);
        assert_eq!(
            installs(&d),
            vec![("app:com.apple.Keynote".to_string(), vec!["d1".to_string()])]
        );
        assert!(removals(&d).is_empty() && d.cancels.is_empty());

        s.in_flight
            .entry("d1".into())
            .or_default()
            .insert(ItemKey::app("com.apple.Keynote"), true);
        assert!(decide(&s).plans.is_empty(), "in flight: nothing new");

        s.in_flight.clear();
        observe(&mut s, ItemKey::app("com.apple.Keynote"), true);
        assert!(decide(&s).plans.is_empty(), "installed: nothing new");
    }

    #[test]
    fn what_tafel_installed_and_nothing_wants_is_removed_what_others_installed_stays() {
        let mut s = snapshot(
            vec![
                Item::App(app("a1", "com.apple.Keynote")),
                Item::App(app("a2", "com.apple.Pages")),
            ],
            &[],
        );
        observe(&mut s, ItemKey::app("com.apple.Keynote"), true);
        observe(&mut s, ItemKey::app("com.apple.Pages"), false);
        observe(&mut s, ItemKey::app("org.example.notincatalog"), true);
        assert_eq!(removals(&decide(&s)), vec!["app:com.apple.Keynote"]);
    }

    #[test]
    fn a_pending_install_nobody_wants_any_more_is_cancelled() {
        let mut s = snapshot(vec![Item::App(app("a1", "com.apple.Keynote"))], &[]);
        s.in_flight
            .entry("d1".into())
            .or_default()
            .insert(ItemKey::app("com.apple.Keynote"), true);
        let d = decide(&s);
        assert_eq!(
            d.cancels,
            vec![("d1".to_string(), ItemKey::app("com.apple.Keynote"))]
        );
        assert!(d.plans.is_empty());
    }

    #[test]
    fn a_profile_held_in_another_version_is_installed_again() {
        let mut s = snapshot(
            vec![Item::Profile(profile("p2", "de.schule.wifi", "NEW"))],
            &[("as1", "p2")],
        );
        observe(&mut s, ItemKey::profile("de.schule.wifi"), true);
        s.versions
            .entry("d1".into())
            .or_default()
            .insert(ItemKey::profile("de.schule.wifi"), "OLD".into());
        assert_eq!(installs(&decide(&s)).len(), 1, "old version: reinstall");
        s.versions
            .entry("d1".into())
            .or_default()
            .insert(ItemKey::profile("de.schule.wifi"), "NEW".into());
        assert!(decide(&s).plans.is_empty(), "wanted version: nothing");
    }

    #[test]
    fn a_licensed_app_waits_for_its_licence_and_says_so() {
        let mut a = app("a1", "com.apple.Pages");
        a.licensed = true;
        a.adam_id = Some("361309726".into());
        let mut s = snapshot(vec![Item::App(a)], &[("as1", "a1")]);
        let d = decide(&s);
        assert!(d.plans.is_empty());
        assert_eq!(d.report.needed_licences.len(), 1);
        assert_eq!(d.report.needed_licences[0].serial, "S1");
        assert!(d
            .report
            .wanted_licences
            .contains(&("361309726".to_string(), "S1".to_string())));

        s.licences.insert(("361309726".into(), "S1".into()));
        let d = decide(&s);
        assert_eq!(installs(&d).len(), 1);
        assert!(d.report.needed_licences.is_empty());
    }

    #[test]
    fn a_device_in_setup_assistant_waits_for_its_apps_then_is_released() {
        let mut s = snapshot(
            vec![Item::App(app("a1", "com.apple.Keynote"))],
            &[("as1", "a1")],
        );
        let enrolled = at().naive_utc() - chrono::Duration::minutes(1);
        s.awaiting.insert("d1".into(), Some(enrolled));
        let key = ItemKey::app("com.apple.Keynote");

        // Accepted and downloading: held back, asked how it goes, looked at again.
        observe(&mut s, key.clone(), true);
        s.installing
            .insert(("d1".into(), key.clone()), at().naive_utc());
        let d = decide(&s);
        assert!(d.released.is_empty());
        assert_eq!(d.ask_app_status, vec!["d1".to_string()]);
        assert!(d
            .report
            .recheck
            .iter()
            .any(|(dev, t)| dev == "d1" && *t == at() + APP_STATUS_EVERY));

        // Asked a moment ago: not asked again yet.
        s.answered_app_status
            .insert("d1".into(), at().naive_utc() - chrono::Duration::seconds(1));
        assert!(decide(&s).ask_app_status.is_empty());

        // Installed: released as configured.
        s.installing.clear();
        let d = decide(&s);
        assert_eq!(d.released.len(), 1);
        assert!(d.released[0].state.missing.is_empty() && !d.released[0].by_timeout);

        // Still downloading past the school's timeout: released anyway, by timeout.
        s.installing
            .insert(("d1".into(), key.clone()), at().naive_utc());
        s.awaiting
            .insert("d1".into(), Some(enrolled - chrono::Duration::days(1)));
        let d = decide(&s);
        assert_eq!(d.released.len(), 1);
        assert!(d.released[0].by_timeout);
        assert_eq!(d.released[0].state.missing, vec![key]);
    }

    #[test]
    fn an_ipad_in_use_is_asked_how_its_downloads_go_within_bounds() {
        let mut s = snapshot(
            vec![Item::App(app("a1", "com.apple.Keynote"))],
            &[("as1", "a1")],
        );
        let key = ItemKey::app("com.apple.Keynote");
        observe(&mut s, key.clone(), true);
        assert!(
            decide(&s).ask_app_status.is_empty(),
            "installed: no question"
        );

        // Accepted a minute ago and downloading: asked, and looked at again.
        let accepted = at().naive_utc() - chrono::Duration::minutes(1);
        s.installing.insert(("d1".into(), key.clone()), accepted);
        s.accepted.insert(("d1".into(), key.clone()), accepted);
        let d = decide(&s);
        assert_eq!(d.ask_app_status, vec!["d1".to_string()]);
        assert!(d.plans.is_empty(), "on its way: not installed again");
        assert!(d
            .report
            .recheck
            .iter()
            .any(|(dev, t)| dev == "d1" && *t == at() + DOWNLOAD_ASK_EVERY));

        // An app the pupil installs from the App Store is not tafel's to ask about.
        observe(&mut s, key.clone(), false);
        assert!(decide(&s).ask_app_status.is_empty());
        observe(&mut s, key.clone(), true);

        // Answered 10 s ago: not asked again yet (an iPad in Setup Assistant would be).
        s.answered_app_status.insert(
            "d1".into(),
            at().naive_utc() - chrono::Duration::seconds(10),
        );
        assert!(decide(&s).ask_app_status.is_empty());
        s.answered_app_status.insert(
            "d1".into(),
            at().naive_utc() - chrono::Duration::seconds(31),
        );
        assert_eq!(decide(&s).ask_app_status.len(), 1);

        // A question already queued: none more.
        s.in_flight
            .entry("d1".into())
            .or_default()
            .insert(APP_STATUS_KEY.clone(), false);
        assert!(decide(&s).ask_app_status.is_empty());
        s.in_flight.clear();

        // Accepted three hours ago and still "installing" (an hourly inventory rewrote
        // the row a minute ago): the hourly inventory tells, no more questions.
        s.accepted.insert(
            ("d1".into(), key.clone()),
            at().naive_utc() - chrono::Duration::hours(3),
        );
        let d = decide(&s);
        assert!(d.ask_app_status.is_empty() && d.report.recheck.is_empty());
        // Not accepted lately at all (installed by hand, reported installing): none.
        s.accepted.clear();
        assert!(decide(&s).ask_app_status.is_empty());
    }

    #[test]
    fn a_deleted_item_is_never_wanted_and_leaves_the_ipads() {
        let mut s = snapshot(
            vec![Item::App(app("a1", "com.apple.Keynote"))],
            &[("as1", "a1")],
        );
        s.deleted.insert("a1".into());
        assert!(
            installs(&decide(&s)).is_empty(),
            "a live assignment of a deleted app"
        );
        observe(&mut s, ItemKey::app("com.apple.Keynote"), true);
        let d = decide(&s);
        assert_eq!(d.plans.len(), 1);
        assert!(d.plans.keys().all(|p| !p.install), "removed, not installed");
    }
}

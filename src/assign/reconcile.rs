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
/// How long after one app-status question the next may go to the same device.
const APP_STATUS_EVERY: chrono::Duration = chrono::Duration::seconds(5);

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
struct Snapshot {
    policies: HashMap<String, crate::ade::school::ReleasePolicy>,
    live: Vec<Assignment>,
    items: HashMap<String, Item>,
    /// Every catalog key → item id (only catalog items are ever removed).
    catalog_keys: HashMap<ItemKey, String>,
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
    /// Apps acknowledged, not yet installed.
    installing: HashSet<(String, ItemKey)>,
    /// Apps the device reports failed.
    failed_apps: HashSet<(String, ItemKey)>,
    /// device → key → install?
    in_flight: HashMap<String, HashMap<ItemKey, bool>>,
    /// Installs that failed recently (not retried yet).
    failed: HashSet<(String, ItemKey)>,
    /// Waiting devices that answered an app-status question within [`APP_STATUS_EVERY`].
    answered_app_status: HashSet<String>,
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

    // Parsed schedules; an unreadable one (should not happen: validated on input) is skipped.
    let schedules: Vec<Option<Schedule>> = live
        .iter()
        .map(|a| {
            serde_json::from_str::<serde_json::Value>(&a.schedule)
                .ok()
                .and_then(|v| Schedule::parse_json(&v).ok())
        })
        .collect();
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
    let mut installing: HashSet<(String, ItemKey)> = HashSet::new(); // apps acknowledged, not yet installed
    let mut failed_apps: HashSet<(String, ItemKey)> = HashSet::new(); // apps the device reports failed
    let mut in_flight: HashMap<String, HashMap<ItemKey, bool>> = HashMap::new(); // device -> key -> install?
    let mut failed: HashSet<(String, ItemKey)> = HashSet::new();
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
        for (d, b, mine, st) in device_apps::table
            .filter(device_apps::device_id.eq_any(chunk))
            .select((
                device_apps::device_id,
                device_apps::bundle_id,
                device_apps::by_tafel,
                device_apps::status,
            ))
            .load::<(String, String, bool, String)>(conn)?
        {
            let key = ItemKey::app(&b);
            match crate::inventory::app_state(&st) {
                crate::inventory::AppState::OnItsWay => {
                    installing.insert((d.clone(), key.clone()));
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
    let waiting: Vec<String> = awaiting.keys().cloned().collect();
    let mut answered_app_status = HashSet::new();
    for chunk in waiting.chunks(CHUNK) {
        answered_app_status.extend(
            command_queue::table
                .inner_join(commands::table)
                .filter(commands::item_key.eq(&*APP_STATUS_KEY))
                .filter(command_queue::device_id.eq_any(chunk))
                .filter(command_queue::answered_at.gt(naive_at - APP_STATUS_EVERY))
                .select(command_queue::device_id)
                .load::<String>(conn)?,
        );
    }
    Ok(Snapshot {
        policies,
        live,
        items,
        catalog_keys,
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
        in_flight,
        failed,
        answered_app_status,
    })
}

fn pass(
    conn: &mut DbConn,
    at: DateTime<Utc>,
    only: Option<&[String]>,
    sign: Signer<'_>,
    grace: chrono::Duration,
) -> Result<Report, ReconcileError> {
    let naive_at = at.naive_utc();
    let Snapshot {
        policies,
        live,
        items,
        catalog_keys,
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
        in_flight,
        failed,
        answered_app_status,
    } = conn.read_snapshot(|conn| load_snapshot(conn, naive_at, only))?;
    let mut report = Report {
        assignments: live.len(),
        devices: device_rows.len(),
        full: only.is_none(),
        ..Report::default()
    };
    let item_key_of = |a: &Assignment| items.get(&a.item_id).map(Item::key);

    // Which assignments target what.
    let mut by_target: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, a) in live.iter().enumerate() {
        by_target
            .entry((a.target_kind.as_str(), a.target_id.as_str()))
            .or_default()
            .push(i);
    }
    let mut evals: HashMap<(usize, Option<String>), (Evaluation, bool)> = HashMap::new();
    let mut next_boundary: Option<DateTime<Utc>> = None;
    let mut plans: HashMap<Plan, Vec<String>> = HashMap::new();
    let mut cancels: Vec<(String, ItemKey)> = Vec::new();
    // (missing items, still worth waiting, school, authority, apps downloading)
    let mut setup: HashMap<String, SetupState> = HashMap::new();
    // Devices awaiting configuration whose apps are still installing: asked again.
    let mut ask_app_status: Vec<String> = Vec::new();

    for (device, tenant, school, serial) in &device_rows {
        let mut relevant: Vec<usize> = Vec::new();
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
        for c in classes_of.get(device).into_iter().flatten() {
            add("class", c);
        }
        for g in groups_of.get(device).into_iter().flatten() {
            add("group", g);
        }
        add("device", device);

        // Desired items (first assignment wins the link) and items to keep.
        let mut desired: HashMap<ItemKey, (&str, &str)> = HashMap::new(); // key -> (assignment, item)
        let mut keep: HashSet<ItemKey> = HashSet::new();
        let mut needed_from: HashMap<ItemKey, DateTime<Utc>> = HashMap::new();
        let waiting = awaiting.contains_key(device);
        let requires = school
            .as_ref()
            .and_then(|s| policies.get(s))
            .and_then(|p| p.requires.as_ref());
        let mut required: HashSet<ItemKey> = HashSet::new();
        for &i in &relevant {
            let a = &live[i];
            let (Some(key), Some(schedule)) = (item_key_of(a), schedules[i].as_ref()) else {
                continue;
            };
            let (eval, soon) = *evals.entry((i, school.clone())).or_insert_with(|| {
                let cal = calendars.for_place(tenant.as_deref(), school.as_deref());
                let e = schedule.evaluate(at, &cal);
                if let Some(b) = e.next_boundary {
                    next_boundary = Some(next_boundary.map_or(b, |n: DateTime<Utc>| n.min(b)));
                }
                (e, schedule.has_window_within(at, grace, &cal))
            });
            // Licences stay while the app is wanted now or within the grace period.
            if let (Some(Item::App(app)), Some(serial)) = (items.get(&a.item_id), serial) {
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
                    required.insert(key.clone());
                }
                desired
                    .entry(key.clone())
                    .or_insert((a.id.as_str(), a.item_id.as_str()));
                let from = eval.active_window.map(|w| w.0).unwrap_or(at);
                let e = needed_from.entry(key).or_insert(from);
                *e = (*e).min(from);
            } else if !eval.remove_now && keeps(schedule) {
                keep.insert(key);
            }
        }
        let seen = observed.get(device);
        let flying_here = in_flight.get(device);
        if waiting {
            // What the initial configuration still lacks. An app counts once the device
            // reports it installed, not when it accepted the install command. Failed
            // installs (and apps the device reports failed) do not hold the device
            // back (they are retried later) but count as missing.
            let here = |k: &ItemKey| (device.clone(), k.clone());
            let mut missing: Vec<ItemKey> = required
                .into_iter()
                .filter(|k| {
                    !seen.is_some_and(|s| s.contains_key(k))
                        || installing.contains(&here(k))
                        || failed_apps.contains(&here(k))
                })
                .collect();
            missing.sort();
            let downloading = missing.iter().any(|k| installing.contains(&here(k)))
                && !flying_here.is_some_and(|f| f.contains_key(&*APP_STATUS_KEY));
            let blocking = missing
                .iter()
                .any(|k| !failed.contains(&here(k)) && !failed_apps.contains(&here(k)));
            setup.insert(
                device.clone(),
                SetupState {
                    missing,
                    blocking,
                    school: school.clone(),
                    tenant: tenant.clone(),
                    downloading,
                },
            );
        }
        let held = versions.get(device);
        for (key, (assignment, item_id)) in &desired {
            // A profile counts as installed in the wanted version only (unknown versions,
            // of rows stored before versions were kept, match).
            let wanted = match items.get(*item_id) {
                Some(Item::Profile(p)) => p.payload_uuid.as_deref(),
                _ => None,
            };
            let current = crate::catalog::same_version(
                wanted,
                held.and_then(|h| h.get(key)).map(String::as_str),
            );
            let installed = current && seen.is_some_and(|s| s.contains_key(key));
            let flying = flying_here.and_then(|f| f.get(key));
            if installed || flying == Some(&true) || failed.contains(&(device.clone(), key.clone()))
            {
                continue;
            }
            // A licensed app goes out only to a serial that holds a licence.
            if let Some(Item::App(app)) = items.get(*item_id) {
                if let (true, Some(adam)) = (app.licensed, &app.adam_id) {
                    let licensed = serial
                        .as_ref()
                        .is_some_and(|s| licences.contains(&(adam.clone(), s.clone())));
                    if !licensed {
                        if let (Some(s), Some(t)) = (serial, tenant) {
                            report.needed_licences.push(LicenceNeed {
                                adam_id: adam.clone(),
                                serial: s.clone(),
                                device_id: device.clone(),
                                tenant_id: t.clone(),
                                needed_from: needed_from.get(key).copied().unwrap_or(at),
                            });
                        }
                        continue;
                    }
                }
            }
            plans
                .entry(Plan {
                    item_key: key.clone(),
                    item_id: (*item_id).to_owned(),
                    install: true,
                    assignment_id: (*assignment).to_owned(),
                })
                .or_default()
                .push(device.clone());
        }
        // Pending installs of items nobody wants any more.
        for (key, install) in flying_here.into_iter().flatten() {
            if *install && !desired.contains_key(key) && !keep.contains(key) {
                cancels.push((device.clone(), key.clone()));
            }
        }
        // Removals: tafel's items that nothing wants or keeps.
        for (key, by_tafel) in seen.into_iter().flatten() {
            if !by_tafel
                || desired.contains_key(key)
                || keep.contains(key)
                || !catalog_keys.contains_key(key)
            {
                continue;
            }
            if flying_here.is_some_and(|f| f.contains_key(key)) {
                continue;
            }
            let assignment = relevant
                .iter()
                .map(|&i| &live[i])
                .find(|a| item_key_of(a).as_ref() == Some(key))
                .map(|a| a.id.clone())
                .unwrap_or_default();
            let Some(item_id) = catalog_keys.get(key) else {
                continue;
            };
            plans
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
    report.next_boundary = next_boundary;

    // Release devices awaiting configuration once what their school requires is done
    // (or its release timeout passed): DeviceConfigured (`mdm/commands/device.configured.yaml`).
    let default_policy = crate::ade::school::ReleasePolicy::default();
    let mut release = Vec::new();
    let mut released: Vec<(String, SetupState, bool)> = Vec::new(); // device, state, by timeout
    for (device, enrolled_at) in &awaiting {
        if in_flight
            .get(device)
            .is_some_and(|f| f.contains_key(&*CONFIGURED_KEY))
        {
            continue;
        }
        let state = setup.remove(device).unwrap_or_default();
        let policy = state
            .school
            .as_ref()
            .and_then(|s| policies.get(s))
            .unwrap_or(&default_policy);
        let deadline = enrolled_at.map(|e| e + policy.timeout);
        let overdue = deadline.is_some_and(|d| naive_at >= d);
        if state.blocking && !overdue {
            // Look again at the deadline, not at the next safety pass; ask how its
            // downloads are going meanwhile.
            if let Some(d) = deadline.map(|d| d.and_utc()) {
                report.recheck.push((device.clone(), d));
            }
            if state.downloading {
                ask_app_status.push(device.clone());
            }
            continue;
        }
        if !state.missing.is_empty() {
            tracing::warn!(device = %device, missing = ?state.missing, "releasing a device before its initial configuration finished");
        }
        release.push(device.clone());
        let by_timeout = state.blocking;
        released.push((device.clone(), state, by_timeout));
    }

    // Build commands first (signing may fail), then write everything at once.
    let mut built: Vec<(Command, EnqueueOptions, Vec<String>, bool)> = Vec::new();
    for (plan, targets) in plans {
        let Some(item) = items.get(&plan.item_id) else {
            continue;
        };
        let command = build(item, plan.install, sign)?;
        let item_version = match item {
            Item::Profile(p) if plan.install => p.payload_uuid.clone(),
            _ => None,
        };
        let opts = EnqueueOptions {
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
        };
        built.push((command, opts, targets, plan.install));
    }
    if !ask_app_status.is_empty() {
        let (later, now_ask): (Vec<String>, Vec<String>) = ask_app_status
            .into_iter()
            .partition(|d| answered_app_status.contains(d));
        // Either way, look at these devices again shortly: an answer that still says
        // "installing" changes nothing and wakes no one.
        for d in later.iter().chain(&now_ask) {
            report.recheck.push((d.clone(), at + APP_STATUS_EVERY));
        }
        if !now_ask.is_empty() {
            let opts = EnqueueOptions {
                priority: -1,
                source: "reconciler".into(),
                item_key: Some(APP_STATUS_KEY.clone()),
                action: Some(Action::Inventory),
                ..EnqueueOptions::default()
            };
            built.push((Command::managed_application_list(), opts, now_ask, false));
        }
    }
    if !release.is_empty() {
        let opts = EnqueueOptions {
            priority: -1,
            source: "reconciler".into(),
            item_key: Some(CONFIGURED_KEY.clone()),
            action: Some(Action::Configure),
            ..EnqueueOptions::default()
        };
        built.push((Command::device_configured(), opts, release, false));
    }
    let mut touched: HashSet<String> = HashSet::new();
    conn.write_tx(|conn| -> Result<(), ReconcileError> {
        for (command, opts, targets, install) in &built {
            let n = queue::enqueue_in_tx(conn, command, targets, opts)?;
            if opts.action == Some(Action::Configure) {
                report.released += n;
            } else if opts.action == Some(Action::Inventory) {
                report.status_checks += n;
            } else if *install {
                report.installs += n;
            } else {
                report.removals += n;
            }
            report.commands += 1;
            touched.extend(targets.iter().cloned());
        }
        for (device, state, by_timeout) in &released {
            record_release(
                conn,
                device,
                &state.missing,
                *by_timeout,
                state.school.as_deref(),
                state.tenant.as_deref(),
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

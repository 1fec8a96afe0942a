//! Observed device state: what answers to inventory commands and acknowledged
//! install/remove commands say is on a device; stale-device refresh; retention.
//!
//! An acknowledged InstallApplication/InstallProfile marks the item as present (and as
//! installed by tafel, which is what makes it removable later); an acknowledged removal
//! deletes it. Inventory answers replace the lists, keeping the "by tafel" marks.

use diesel::prelude::*;

use crate::db::schema::{
    command_queue, commands, device_apps, device_inventory, device_profiles, devices,
};
use crate::db::{now, DbConn};
use crate::protocol::{
    Command, ConnectReport, DeviceInformationResult, InstalledApplicationListResult,
    ManagedApplicationListResult, ProfileListResult, SecurityInfoResult, Status, INVENTORY_QUERIES,
};
use crate::queue::{self, EnqueueOptions};

/// Where an app stands by its status (lowercase, as stored from
/// `ManagedApplicationList`; "installing" from an accepted install until the device
/// reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// Usable on the device.
    Installed,
    /// Accepted, still downloading, waiting for a licence or a prompt.
    OnItsWay,
    /// Refused or failed; needs attention or a later retry.
    Failed,
}

/// The state of an app with this status.
pub fn app_state(status: &str) -> AppState {
    match status {
        "installing"
        | "needsredemption"
        | "redeeming"
        | "prompting"
        | "promptingforlogin"
        | "validatingpurchase"
        | "updating"
        | "validatingupdate"
        | "promptingforupdate"
        | "promptingforupdatelogin"
        | "promptingformanagement" => AppState::OnItsWay,
        "failed"
        | "userrejected"
        | "updaterejected"
        | "managementrejected"
        | "managedbutuninstalled"
        | "unknown" => AppState::Failed,
        _ => AppState::Installed,
    }
}

/// A row of `device_apps`: one app as observed on a device.
#[derive(Insertable)]
#[diesel(table_name = device_apps)]
struct AppRow<'a> {
    device_id: &'a str,
    bundle_id: &'a str,
    name: Option<&'a str>,
    version: Option<&'a str>,
    status: &'a str,
    managed: bool,
    by_tafel: bool,
    updated_at: chrono::NaiveDateTime,
}

/// A row of `device_profiles`: one profile as observed on a device.
#[derive(Insertable)]
#[diesel(table_name = device_profiles)]
struct ProfileRow<'a> {
    device_id: &'a str,
    identifier: &'a str,
    uuid: Option<&'a str>,
    name: Option<&'a str>,
    managed: bool,
    by_tafel: bool,
    updated_at: chrono::NaiveDateTime,
}

/// Applies an answered command to the observed state; returns true when the observed
/// state of the device changed (the reconciler should look at it again).
pub fn apply(conn: &mut DbConn, device_id: &str, report: &ConnectReport) -> QueryResult<bool> {
    if report.status != Status::Acknowledged {
        return Ok(false);
    }
    let Some(uuid) = report.command_uuid.as_ref() else {
        return Ok(false);
    };
    type Row = (
        String,
        Option<queue::ItemKey>,
        Option<queue::Action>,
        Option<String>,
    );
    let row: Option<Row> = commands::table
        .find(uuid.as_str())
        .select((
            commands::request_type,
            commands::item_key,
            commands::action,
            commands::item_version,
        ))
        .first(conn)
        .optional()?;
    let Some((request_type, item_key, action, version)) = row else {
        return Ok(false);
    };
    if let (Some(action), Some(key)) = (action, &item_key) {
        if let Some(changed) = item_done(conn, device_id, action, key, version.as_deref())? {
            return Ok(changed);
        }
    }
    let raw = &report.raw;
    match request_type.as_str() {
        "EraseDevice" => {
            // The iPad wipes itself: it is out of every count until it enrolls again.
            crate::enrollment::mark_erased(conn, device_id)?;
            Ok(false)
        }
        // device.lostmode.enable.yaml / disable: the iPad is locked until tafel lets it go.
        "EnableLostMode" => set_lost_mode(conn, device_id, true).map(|()| false),
        "DisableLostMode" => set_lost_mode(conn, device_id, false).map(|()| false),
        "DeviceConfigured" => {
            // Setup Assistant continues: the device is released.
            diesel::update(devices::table.find(device_id))
                .set((
                    devices::awaiting_configuration.eq(false),
                    devices::updated_at.eq(now()),
                ))
                .execute(conn)?;
            Ok(false)
        }
        "DeviceInformation" => match DeviceInformationResult::from_report(raw) {
            Ok(info) => device_information(conn, device_id, &info).map(|()| false),
            Err(_) => Ok(false),
        },
        "SecurityInfo" => match SecurityInfoResult::from_report(raw) {
            Ok(info) => security_info(conn, device_id, &info).map(|()| false),
            Err(_) => Ok(false),
        },
        "InstalledApplicationList" => match InstalledApplicationListResult::from_report(raw) {
            Ok(list) => installed_apps(conn, device_id, list).map(|()| true),
            Err(_) => Ok(false),
        },
        "ManagedApplicationList" => match ManagedApplicationListResult::from_report(raw) {
            // A finished install may release a device awaiting configuration.
            Ok(list) => managed_apps(conn, device_id, list).map(|n| n > 0),
            Err(_) => Ok(false),
        },
        "ProfileList" => match ProfileListResult::from_report(raw) {
            Ok(list) => profile_list(conn, device_id, list).map(|()| true),
            Err(_) => Ok(false),
        },
        _ => Ok(false),
    }
}

/// An acknowledged install or removal of a catalog item; `None` when the command was
/// none of those.
fn item_done(
    conn: &mut DbConn,
    device_id: &str,
    action: queue::Action,
    key: &queue::ItemKey,
    version: Option<&str>,
) -> QueryResult<Option<bool>> {
    match (action, key.item()) {
        (queue::Action::Install, queue::Item::App(bundle)) => {
            upsert_app(conn, device_id, bundle, None, None, "installing", true)?;
        }
        (queue::Action::Install, queue::Item::Profile(identifier)) => {
            diesel::delete(device_profiles::table.find((device_id, identifier))).execute(conn)?;
            diesel::insert_into(device_profiles::table)
                .values(ProfileRow {
                    device_id,
                    identifier,
                    uuid: version,
                    name: None,
                    managed: true,
                    by_tafel: true,
                    updated_at: now(),
                })
                .execute(conn)?;
        }
        (queue::Action::Remove, queue::Item::App(bundle)) => {
            diesel::delete(device_apps::table.find((device_id, bundle))).execute(conn)?;
        }
        (queue::Action::Remove, queue::Item::Profile(identifier)) => {
            diesel::delete(device_profiles::table.find((device_id, identifier))).execute(conn)?;
        }
        _ => return Ok(None),
    }
    Ok(Some(true))
}

/// The device's inventory row exists afterwards (answers fill it column by column).
fn inventory_row(conn: &mut DbConn, device_id: &str) -> QueryResult<()> {
    let insert = diesel::insert_into(device_inventory::table)
        .values((
            device_inventory::device_id.eq(device_id),
            device_inventory::updated_at.eq(now()),
        ))
        .on_conflict_do_nothing();
    crate::with_backend!(conn, |c| insert.execute(c))?;
    Ok(())
}

/// `DeviceInformation`: name, OS, model on the device; battery, storage, supervision.
fn device_information(
    conn: &mut DbConn,
    device_id: &str,
    info: &DeviceInformationResult,
) -> QueryResult<()> {
    let at = now();
    diesel::update(devices::table.find(device_id))
        .set((
            devices::name.eq(info.device_name.as_deref()),
            devices::os_version.eq(info.os_version.as_deref()),
            devices::build_version.eq(info.build_version.as_deref()),
            devices::model_name.eq(info.model_name.as_deref()),
            devices::model.eq(info.model.as_deref()),
            devices::product_name.eq(info.product_name.as_deref()),
            devices::updated_at.eq(at),
        ))
        .execute(conn)?;
    if let Some(serial) = info.serial_number.as_deref() {
        diesel::update(devices::table.find(device_id))
            .set(devices::serial_number.eq(serial))
            .execute(conn)?;
    }
    inventory_row(conn, device_id)?;
    diesel::update(device_inventory::table.find(device_id))
        .set((
            device_inventory::battery_level.eq(info.battery_level),
            device_inventory::capacity_gb.eq(info.device_capacity),
            device_inventory::available_gb.eq(info.available_device_capacity),
            device_inventory::supervised.eq(info.is_supervised),
            device_inventory::wifi_mac.eq(info.wifi_mac.as_deref()),
            device_inventory::updated_at.eq(at),
        ))
        .execute(conn)?;
    if let Some(lost) = info.is_mdm_lost_mode_enabled {
        set_lost_mode(conn, device_id, lost)?;
    }
    Ok(())
}

/// The key of `device_inventory.details` (a JSON object of what the device reported
/// beyond the columns) that says whether the iPad is in MDM Lost Mode.
const LOST_MODE: &str = "lost_mode";

/// Records whether the device is in Lost Mode (from `IsMDMLostModeEnabled` or an
/// acknowledged Enable/DisableLostMode).
fn set_lost_mode(conn: &mut DbConn, device_id: &str, lost: bool) -> QueryResult<()> {
    inventory_row(conn, device_id)?;
    let details: Option<String> = device_inventory::table
        .find(device_id)
        .select(device_inventory::details)
        .first(conn)?;
    let mut object = details
        .and_then(|d| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&d).ok())
        .unwrap_or_default();
    // Most answers say what tafel knows already: no write then.
    if object.get(LOST_MODE) == Some(&serde_json::Value::Bool(lost)) {
        return Ok(());
    }
    object.insert(LOST_MODE.into(), serde_json::Value::Bool(lost));
    diesel::update(device_inventory::table.find(device_id))
        .set(device_inventory::details.eq(serde_json::Value::Object(object).to_string()))
        .execute(conn)?;
    Ok(())
}

/// The devices of `device_ids` known to be in Lost Mode.
pub fn in_lost_mode(
    conn: &mut DbConn,
    device_ids: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    let mut lost = std::collections::HashSet::new();
    for chunk in device_ids.chunks(1000) {
        let rows: Vec<(String, Option<String>)> = device_inventory::table
            .filter(device_inventory::device_id.eq_any(chunk))
            .filter(device_inventory::details.is_not_null())
            .select((device_inventory::device_id, device_inventory::details))
            .load(conn)?;
        for (id, details) in rows {
            let on = details
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .and_then(|v| v.get(LOST_MODE).and_then(serde_json::Value::as_bool))
                .unwrap_or(false);
            if on {
                lost.insert(id);
            }
        }
    }
    Ok(lost)
}

/// `SecurityInfo`: whether a passcode is set.
fn security_info(conn: &mut DbConn, device_id: &str, info: &SecurityInfoResult) -> QueryResult<()> {
    inventory_row(conn, device_id)?;
    diesel::update(device_inventory::table.find(device_id))
        .set((
            device_inventory::passcode_present.eq(info.passcode_present),
            device_inventory::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// `InstalledApplicationList`: the device's apps replace the list; tafel's marks stay.
fn installed_apps(
    conn: &mut DbConn,
    device_id: &str,
    list: InstalledApplicationListResult,
) -> QueryResult<()> {
    let mine: Vec<String> = device_apps::table
        .filter(device_apps::device_id.eq(device_id))
        .filter(device_apps::by_tafel.eq(true))
        .select(device_apps::bundle_id)
        .load(conn)?;
    diesel::delete(device_apps::table.filter(device_apps::device_id.eq(device_id)))
        .execute(conn)?;
    for app in list.apps {
        let Some(bundle) = app.identifier.as_deref() else {
            continue;
        };
        let status = if app.installing == Some(true) {
            "installing"
        } else {
            "installed"
        };
        let version = app.short_version.as_deref().or(app.version.as_deref());
        upsert_app(
            conn,
            device_id,
            bundle,
            app.name.as_deref(),
            version,
            status,
            mine.iter().any(|m| m == bundle),
        )?;
    }
    Ok(())
}

/// `ManagedApplicationList`: each managed app's status; returns how many changed.
fn managed_apps(
    conn: &mut DbConn,
    device_id: &str,
    list: ManagedApplicationListResult,
) -> QueryResult<usize> {
    let at = now();
    let mut changed = 0;
    for (bundle, st) in list.apps {
        let status = st.status.as_deref().unwrap_or("Managed").to_lowercase();
        changed += diesel::update(
            device_apps::table
                .find((device_id, bundle.as_str()))
                .filter(device_apps::status.ne(&status)),
        )
        .set((
            device_apps::managed.eq(true),
            device_apps::status.eq(&status),
            device_apps::updated_at.eq(at),
        ))
        .execute(conn)?;
    }
    Ok(changed)
}

/// `ProfileList`: the device's profiles replace the list; tafel's marks stay.
fn profile_list(conn: &mut DbConn, device_id: &str, list: ProfileListResult) -> QueryResult<()> {
    let mine: Vec<String> = device_profiles::table
        .filter(device_profiles::device_id.eq(device_id))
        .filter(device_profiles::by_tafel.eq(true))
        .select(device_profiles::identifier)
        .load(conn)?;
    diesel::delete(device_profiles::table.filter(device_profiles::device_id.eq(device_id)))
        .execute(conn)?;
    let at = now();
    for p in &list.profiles {
        diesel::insert_into(device_profiles::table)
            .values(ProfileRow {
                device_id,
                identifier: &p.payload_identifier,
                uuid: Some(&p.payload_uuid),
                name: p.payload_display_name.as_deref(),
                managed: p.is_managed,
                by_tafel: mine.contains(&p.payload_identifier),
                updated_at: at,
            })
            .execute(conn)?;
    }
    Ok(())
}

fn upsert_app(
    conn: &mut DbConn,
    device_id: &str,
    bundle: &str,
    name: Option<&str>,
    version: Option<&str>,
    status: &str,
    by_tafel: bool,
) -> QueryResult<()> {
    diesel::delete(device_apps::table.find((device_id, bundle))).execute(conn)?;
    diesel::insert_into(device_apps::table)
        .values(AppRow {
            device_id,
            bundle_id: bundle,
            name,
            version,
            status,
            managed: by_tafel,
            by_tafel,
            updated_at: now(),
        })
        .execute(conn)?;
    Ok(())
}

/// The inventory commands, and how each is built.
fn inventory_commands() -> [Command; 4] {
    [
        Command::device_information(INVENTORY_QUERIES),
        Command::installed_application_list(),
        Command::profile_list(),
        Command::security_info(),
    ]
}

fn inventory_options(priority: i32) -> EnqueueOptions {
    EnqueueOptions {
        source: "inventory".into(),
        action: Some(queue::Action::Inventory),
        priority,
        ..EnqueueOptions::default()
    }
}

/// Queues every inventory command for `device_ids`, inside the caller's transaction
/// (a device that starts over is asked what it has).
/// Returns the commands' UUIDs.
pub fn ask(
    conn: &mut DbConn,
    device_ids: &[String],
    priority: i32,
) -> Result<Vec<crate::protocol::CommandUuid>, queue::QueueError> {
    let mut uuids = Vec::new();
    for cmd in inventory_commands() {
        queue::enqueue_in_tx(conn, &cmd, device_ids, &inventory_options(priority))?;
        uuids.push(cmd.command_uuid);
    }
    Ok(uuids)
}

/// Queues inventory commands for active devices not refreshed for `stale`, at most
/// `limit` devices, never a second open inventory command of a kind for a device.
/// Returns the devices that got a new command: only they need a push (an iPad still
/// holding last hour's open commands is not woken again for them).
pub fn refresh_stale(
    conn: &mut DbConn,
    stale: chrono::Duration,
    limit: i64,
) -> Result<Vec<String>, queue::QueueError> {
    let before = now() - stale;
    let refreshed = device_inventory::table
        .filter(device_inventory::updated_at.ge(before))
        .select(device_inventory::device_id);
    let candidates: Vec<String> = devices::table
        .filter(devices::enrollment_status.eq(crate::enrollment::EnrollmentStatus::Active))
        .filter(devices::id.ne_all(refreshed))
        .select(devices::id)
        .limit(limit)
        .load(conn)?;
    if candidates.is_empty() {
        return Ok(candidates);
    }
    conn.write_tx(|conn| ask_where_missing(conn, &candidates, -1))
}

/// Queues each inventory command for those of `device_ids` that have none of its kind
/// open, inside the caller's transaction. Returns the devices that got at least one.
pub fn ask_where_missing(
    conn: &mut DbConn,
    device_ids: &[String],
    priority: i32,
) -> Result<Vec<String>, queue::QueueError> {
    let mut asked = std::collections::BTreeSet::new();
    for cmd in inventory_commands() {
        let open: Vec<String> = command_queue::table
            .inner_join(commands::table)
            .filter(commands::request_type.eq(&cmd.request_type))
            .filter(commands::action.eq(queue::Action::Inventory))
            .filter(command_queue::status.eq_any(queue::QueueState::OPEN))
            .filter(command_queue::device_id.eq_any(device_ids))
            .select(command_queue::device_id)
            .load(conn)?;
        let targets: Vec<String> = device_ids
            .iter()
            .filter(|d| !open.contains(d))
            .cloned()
            .collect();
        if !targets.is_empty() {
            queue::enqueue_in_tx(conn, &cmd, &targets, &inventory_options(priority))?;
            asked.extend(targets);
        }
    }
    Ok(asked.into_iter().collect())
}

/// Deletes answered, cancelled and expired queue rows older than `keep`, and commands
/// left without queue rows. Returns (queue rows, commands) deleted.
pub fn prune(conn: &mut DbConn, keep: chrono::Duration) -> QueryResult<(usize, usize)> {
    let before = now() - keep;
    let done = [
        queue::QueueState::Acknowledged,
        queue::QueueState::Error,
        queue::QueueState::CommandFormatError,
        queue::QueueState::Cancelled,
        queue::QueueState::Expired,
    ];
    conn.write_tx(|conn| {
        let rows = diesel::delete(
            command_queue::table
                .filter(command_queue::status.eq_any(done))
                .filter(command_queue::updated_at.lt(before)),
        )
        .execute(conn)?;
        let used = command_queue::table
            .select(command_queue::command_uuid)
            .distinct();
        let cmds = diesel::delete(
            commands::table
                .filter(commands::created_at.lt(before))
                .filter(commands::command_uuid.ne_all(used)),
        )
        .execute(conn)?;
        Ok((rows, cmds))
    })
}

//! Read models: a device's desired vs actual state, and an assignment's rollout.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::Assignment;
use crate::db::schema::{
    apps, assignments, class_devices, command_queue, commands, device_apps, device_profiles,
    devices, group_devices, profiles,
};
use crate::db::DbConn;
use crate::queue::{Action, Item, ItemKey, QueueState};

crate::text_enum! {
    /// Where an item stands on one device, as admins and teachers see it.
    pub enum ItemProgress("item state") {
        /// The device reports it.
        Installed = "installed",
        /// An install is queued or on its way.
        PendingInstall = "pending_install",
        /// A removal is queued or on its way.
        PendingRemoval = "pending_removal",
        /// Wanted in a later window.
        Scheduled = "scheduled",
        /// The last install failed (its error chain says why).
        Failed = "failed",
        /// Not wanted now and not on the device.
        NotInstalled = "not_installed",
        /// A licensed app without a licence for this device.
        NoLicence = "no licence",
    }
}

/// One item on one device.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemState {
    /// `app:<bundle id>` or `profile:<identifier>`.
    pub item: ItemKey,
    /// Display name.
    pub name: String,
    /// The assignment.
    pub assignment_id: String,
    /// Where it stands.
    pub state: ItemProgress,
    /// Next window start, when scheduled.
    pub next_window: Option<DateTime<Utc>>,
    /// Apple's error chain of the last failed command.
    pub error_chain: Option<serde_json::Value>,
}

/// An assignment's item: its key, name and the version wanted (profiles).
struct AssignedItem {
    key: ItemKey,
    name: String,
    version: Option<String>,
}

fn item_of(conn: &mut DbConn, a: &Assignment) -> QueryResult<Option<AssignedItem>> {
    Ok(match a.item_kind.as_str() {
        "app" => apps::table
            .find(&a.item_id)
            .select((apps::bundle_id, apps::name))
            .first::<(String, String)>(conn)
            .optional()?
            .map(|(b, name)| AssignedItem {
                key: ItemKey::app(&b),
                name,
                version: None,
            }),
        _ => profiles::table
            .find(&a.item_id)
            .select((profiles::identifier, profiles::name, profiles::payload_uuid))
            .first::<(String, String, Option<String>)>(conn)
            .optional()?
            .map(|(i, name, version)| AssignedItem {
                key: ItemKey::profile(&i),
                name,
                version,
            }),
    })
}

/// Action, queue status and error chain of a command.
type LastCommand = (Option<Action>, QueueState, Option<String>);

/// The last command for (device, item): its action, queue status and error chain.
fn last_command(
    conn: &mut DbConn,
    device_id: &str,
    key: &ItemKey,
) -> QueryResult<Option<LastCommand>> {
    command_queue::table
        .inner_join(commands::table)
        .filter(command_queue::device_id.eq(device_id))
        .filter(commands::item_key.eq(key))
        .order(command_queue::created_at.desc())
        .select((
            commands::action,
            command_queue::status,
            command_queue::error_chain,
        ))
        .first(conn)
        .optional()
}

/// Does the device hold the item (a profile in the `version` wanted)?
fn observed(
    conn: &mut DbConn,
    device_id: &str,
    key: &ItemKey,
    version: Option<&str>,
) -> QueryResult<bool> {
    Ok(match key.item() {
        Item::App(b) => {
            device_apps::table
                .find((device_id, b))
                .count()
                .get_result::<i64>(conn)?
                > 0
        }
        Item::Profile(i) => device_profiles::table
            .find((device_id, i))
            .select(device_profiles::uuid)
            .first::<Option<String>>(conn)
            .optional()?
            .is_some_and(|held| crate::catalog::same_version(version, held.as_deref())),
        Item::Device(_) => false,
    })
}

pub(crate) fn state_of(
    conn: &mut DbConn,
    device_id: &str,
    key: &ItemKey,
    version: Option<&str>,
    desired_or_scheduled: bool,
) -> QueryResult<(ItemProgress, Option<serde_json::Value>)> {
    let present = observed(conn, device_id, key, version)?;
    let last = last_command(conn, device_id, key)?;
    Ok(match last {
        Some((Some(Action::Install), s, _)) if s.is_open() => (ItemProgress::PendingInstall, None),
        Some((Some(Action::Remove), s, _)) if s.is_open() => (ItemProgress::PendingRemoval, None),
        _ if present => (ItemProgress::Installed, None),
        Some((Some(Action::Install), s, chain)) if s.is_failure() => (
            ItemProgress::Failed,
            chain.and_then(|c| serde_json::from_str(&c).ok()),
        ),
        _ if desired_or_scheduled => (ItemProgress::Scheduled, None),
        _ => (ItemProgress::NotInstalled, None),
    })
}

/// The assignments that target a device now.
pub fn assignments_of_device(conn: &mut DbConn, device_id: &str) -> QueryResult<Vec<Assignment>> {
    let (tenant, school): (Option<String>, Option<String>) = devices::table
        .find(device_id)
        .select((devices::tenant_id, devices::school_id))
        .first(conn)?;
    let classes: Vec<String> = class_devices::table
        .filter(class_devices::device_id.eq(device_id))
        .select(class_devices::class_id)
        .load(conn)?;
    let groups: Vec<String> = group_devices::table
        .filter(group_devices::device_id.eq(device_id))
        .select(group_devices::group_id)
        .load(conn)?;
    let mut targets: Vec<(&str, String)> = vec![("device", device_id.to_owned())];
    if let Some(t) = tenant {
        targets.push(("tenant", t));
    }
    if let Some(s) = school {
        targets.push(("school", s));
    }
    targets.extend(classes.into_iter().map(|c| ("class", c)));
    targets.extend(groups.into_iter().map(|g| ("group", g)));
    let mut out = Vec::new();
    for (kind, id) in targets {
        out.extend(
            assignments::table
                .filter(assignments::deleted_at.is_null())
                .filter(assignments::target_kind.eq(kind))
                .filter(assignments::target_id.eq(id))
                .select(Assignment::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}

/// Desired vs actual for one device at `at`.
pub fn device_state(
    conn: &mut DbConn,
    device_id: &str,
    at: DateTime<Utc>,
) -> QueryResult<Vec<ItemState>> {
    let calendars = super::calendars(conn)?;
    let (tenant, school): (Option<String>, Option<String>) = devices::table
        .find(device_id)
        .select((devices::tenant_id, devices::school_id))
        .first(conn)?;
    let cal = calendars.for_place(tenant.as_deref(), school.as_deref());
    let periods = super::period_tables(conn)?;
    let mut out = Vec::new();
    for a in assignments_of_device(conn, device_id)? {
        let Some(item) = item_of(conn, &a)? else {
            continue;
        };
        let eval = periods.schedule_of(&a).map(|s| s.evaluate(at, &cal));
        let wanted = eval.is_some_and(|e| e.desired || e.scheduled_next.is_some());
        let (state, error_chain) =
            state_of(conn, device_id, &item.key, item.version.as_deref(), wanted)?;
        out.push(ItemState {
            item: item.key,
            name: item.name,
            assignment_id: a.id.clone(),
            state,
            next_window: eval.and_then(|e| e.scheduled_next),
            error_chain,
        });
    }
    Ok(out)
}

/// An assignment's rollout: how many target devices are in which state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    /// Target devices (active).
    pub devices: usize,
    /// Count per state.
    pub states: HashMap<ItemProgress, usize>,
    /// Devices that failed, with Apple's error chain.
    pub failures: Vec<serde_json::Value>,
}

/// The active devices an assignment targets.
pub fn target_devices(
    conn: &mut DbConn,
    a: &Assignment,
) -> QueryResult<Vec<(String, Option<String>)>> {
    let active = crate::enrollment::EnrollmentStatus::Active;
    let q = devices::table
        .filter(devices::enrollment_status.eq(active))
        .select((devices::id, devices::udid));
    match a.target_kind.as_str() {
        "tenant" => q.filter(devices::tenant_id.eq(&a.target_id)).load(conn),
        "school" => q.filter(devices::school_id.eq(&a.target_id)).load(conn),
        "class" => q
            .filter(
                devices::id.eq_any(
                    class_devices::table
                        .filter(class_devices::class_id.eq(&a.target_id))
                        .select(class_devices::device_id),
                ),
            )
            .load(conn),
        "group" => q
            .filter(
                devices::id.eq_any(
                    group_devices::table
                        .filter(group_devices::group_id.eq(&a.target_id))
                        .select(group_devices::device_id),
                ),
            )
            .load(conn),
        _ => q.filter(devices::id.eq(&a.target_id)).load(conn),
    }
}

/// Rollout status of an assignment at `at`, over the target devices in `scope` (a
/// teacher looking at an authority-wide assignment sees their classes' iPads only).
pub fn rollout(
    conn: &mut DbConn,
    a: &Assignment,
    at: DateTime<Utc>,
    scope: crate::accounts::ListScope<'_>,
) -> QueryResult<Rollout> {
    let mut targets = target_devices(conn, a)?;
    if !matches!(scope, crate::accounts::ListScope::Everything) {
        let mut visible = std::collections::HashSet::new();
        let ids: Vec<String> = targets.iter().map(|(id, _)| id.clone()).collect();
        for chunk in ids.chunks(1000) {
            visible.extend(
                crate::devices::scoped(devices::table.into_boxed(), scope)
                    .filter(devices::id.eq_any(chunk.to_vec()))
                    .select(devices::id)
                    .load::<String>(conn)?,
            );
        }
        targets.retain(|(id, _)| visible.contains(id));
    }
    let Some(item) = item_of(conn, a)? else {
        return Ok(Rollout {
            devices: targets.len(),
            states: HashMap::new(),
            failures: Vec::new(),
        });
    };
    let calendars = super::calendars(conn)?;
    let cal = calendars.for_place(Some(&a.tenant_id), a.school_id.as_deref());
    let wanted = super::period_tables(conn)?.schedule_of(a).is_some_and(|s| {
        let e = s.evaluate(at, &cal);
        e.desired || e.scheduled_next.is_some()
    });
    let mut states: HashMap<ItemProgress, usize> = HashMap::new();
    let mut failures = Vec::new();
    for (id, udid) in &targets {
        let (state, chain) = state_of(conn, id, &item.key, item.version.as_deref(), wanted)?;
        if state == ItemProgress::Failed {
            failures.push(serde_json::json!({"udid": udid, "error_chain": chain}));
        }
        *states.entry(state).or_default() += 1;
    }
    Ok(Rollout {
        devices: targets.len(),
        states,
        failures,
    })
}

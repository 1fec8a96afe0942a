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
        /// The iPad accepted the install and reports the app still on its way
        /// (downloading, waiting for a licence or a prompt).
        Installing = "installing",
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
    /// Why it is not installed, in words (no licence, waiting for one, downloading).
    pub reason: Option<String>,
}

/// An assignment's item: its key, name, the version wanted (profiles) and the App
/// Store id of an app that needs a licence.
struct AssignedItem {
    key: ItemKey,
    name: String,
    version: Option<String>,
    licensed_adam_id: Option<String>,
}

fn item_of(conn: &mut DbConn, a: &Assignment) -> QueryResult<Option<AssignedItem>> {
    Ok(match a.item_kind.as_str() {
        "app" => apps::table
            .find(&a.item_id)
            .select((apps::bundle_id, apps::name, apps::licensed, apps::adam_id))
            .first::<(String, String, bool, Option<String>)>(conn)
            .optional()?
            .map(|(b, name, licensed, adam)| AssignedItem {
                key: ItemKey::app(&b),
                name,
                version: None,
                licensed_adam_id: adam.filter(|_| licensed),
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
                licensed_adam_id: None,
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

/// What the device reports of an item.
enum Held {
    /// Nothing (or a profile in another version than the wanted one).
    No,
    /// Installed (a profile in the wanted version).
    Yes,
    /// An app still on its way.
    OnItsWay,
    /// An app the device reports failed, with its status word.
    Failed(String),
}

/// Does the device hold the item (a profile in the `version` wanted, an app installed
/// by the device's own word)?
fn observed(
    conn: &mut DbConn,
    device_id: &str,
    key: &ItemKey,
    version: Option<&str>,
) -> QueryResult<Held> {
    use crate::inventory::{app_state, AppState};
    Ok(match key.item() {
        Item::App(b) => match device_apps::table
            .find((device_id, b))
            .select(device_apps::status)
            .first::<String>(conn)
            .optional()?
        {
            None => Held::No,
            Some(status) => match app_state(&status) {
                AppState::Installed => Held::Yes,
                AppState::OnItsWay => Held::OnItsWay,
                AppState::Failed => Held::Failed(status),
            },
        },
        Item::Profile(i) => {
            let current = device_profiles::table
                .find((device_id, i))
                .select(device_profiles::uuid)
                .first::<Option<String>>(conn)
                .optional()?
                .is_some_and(|held| crate::catalog::same_version(version, held.as_deref()));
            if current {
                Held::Yes
            } else {
                Held::No
            }
        }
        Item::Device(_) => Held::No,
    })
}

pub(crate) fn state_of(
    conn: &mut DbConn,
    device_id: &str,
    key: &ItemKey,
    version: Option<&str>,
    desired_or_scheduled: bool,
) -> QueryResult<(ItemProgress, Option<serde_json::Value>)> {
    let held = observed(conn, device_id, key, version)?;
    let last = last_command(conn, device_id, key)?;
    Ok(match (last, held) {
        (Some((Some(Action::Install), s, _)), _) if s.is_open() => {
            (ItemProgress::PendingInstall, None)
        }
        (Some((Some(Action::Remove), s, _)), _) if s.is_open() => {
            (ItemProgress::PendingRemoval, None)
        }
        (_, Held::Yes) => (ItemProgress::Installed, None),
        (_, Held::OnItsWay) => (ItemProgress::Installing, None),
        (_, Held::Failed(status)) => (
            ItemProgress::Failed,
            Some(
                serde_json::json!({"app_status": status, "reason": format!("the iPad reports the app as {status}")}),
            ),
        ),
        (Some((Some(Action::Install), s, chain)), _) if s.is_failure() => (
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
        let (mut state, error_chain) =
            state_of(conn, device_id, &item.key, item.version.as_deref(), wanted)?;
        let mut reason = match state {
            ItemProgress::Installing => Some("the iPad is downloading it".to_owned()),
            ItemProgress::Failed => error_chain
                .as_ref()
                .and_then(|c| c.get("reason"))
                .and_then(|r| r.as_str())
                .map(str::to_owned),
            _ => None,
        };
        // A licensed app wanted now or later that this iPad holds no licence for.
        if let (Some(adam), ItemProgress::Scheduled) = (&item.licensed_adam_id, state) {
            let me = crate::licences::serials_of(conn, &[(device_id.to_owned(), None)])?;
            if me.first().is_some_and(|(_, serial)| serial.is_some()) {
                let gap = crate::licences::licence_gap(conn, &a.tenant_id, adam, &me)?;
                if !gap.short.is_empty() {
                    state = ItemProgress::NoLicence;
                    reason = Some(format!(
                        "no licence: this iPad holds none and its authority has {} free (Apps and Books)",
                        gap.available.max(0)
                    ));
                } else if gap.needed > 0 {
                    reason =
                        Some("waiting for a licence from Apps and Books (one is free)".to_owned());
                }
            }
        }
        out.push(ItemState {
            item: item.key,
            name: item.name,
            assignment_id: a.id.clone(),
            state,
            next_window: eval.and_then(|e| e.scheduled_next),
            error_chain,
            reason,
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
    devices_of_target(conn, &a.target_kind, &a.target_id)
}

/// The active devices (id, UDID) of a target: an authority, school, class, group
/// (cart) or one device.
pub fn devices_of_target(
    conn: &mut DbConn,
    kind: &str,
    id: &str,
) -> QueryResult<Vec<(String, Option<String>)>> {
    let active = crate::enrollment::EnrollmentStatus::Active;
    let q = devices::table
        .filter(devices::enrollment_status.eq(active))
        .select((devices::id, devices::udid));
    match kind {
        "tenant" => q.filter(devices::tenant_id.eq(id)).load(conn),
        "school" => q.filter(devices::school_id.eq(id)).load(conn),
        "class" => q
            .filter(
                devices::id.eq_any(
                    class_devices::table
                        .filter(class_devices::class_id.eq(id))
                        .select(class_devices::device_id),
                ),
            )
            .load(conn),
        "group" => q
            .filter(
                devices::id.eq_any(
                    group_devices::table
                        .filter(group_devices::group_id.eq(id))
                        .select(group_devices::device_id),
                ),
            )
            .load(conn),
        _ => q.filter(devices::id.eq(id)).load(conn),
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

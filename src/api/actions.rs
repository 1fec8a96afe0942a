//! Typed device actions for the service desk: `POST /api/v1/devices/actions` (iPads by
//! UDID or serial number, or a class, cart, school or authority) and
//! `POST /api/v1/devices/{key}/actions` (one iPad).
//!
//! Every iPad is checked against what the action needs (`crate::actions`) before
//! anything is stored. All or nothing by default: one unsuitable iPad refuses the request
//! (409, naming each iPad and the reason) and nothing is queued. With
//! `skip_unsuitable: true` the suitable iPads get the command and the answer lists the
//! others with their reasons. Each command is audited naming its iPads; the iPads are
//! pushed once the transaction is committed.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::authz::{self, Action, Place};
use super::commands::{self, Target};
use crate::actions::{self, DeviceAction, DeviceFacts, Unsuitable};
use crate::db::schema::{
    class_devices, classes, device_groups, device_inventory, devices, group_devices, schools,
};
use crate::db::DbConn;
use crate::enrollment::EnrollmentStatus;
use crate::error::{ApiError, ApiResult};
use crate::queue::EnqueueOptions;
use crate::state::AppState;

/// Most iPads named in one request.
const MAX_DEVICES: usize = 100_000;
/// How many unsuitable iPads a refusal names (and how many more there are).
const NAMED: usize = 50;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices/actions", web::post().to(act))
        .route("/devices/{key}/actions", web::post().to(act_on_one));
}

/// Which iPads an action goes to: exactly one of these keys.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionTarget {
    /// UDIDs or serial numbers (as printed on the iPad).
    Devices(Vec<String>),
    /// The enrolled iPads of a class.
    ClassId(String),
    /// The enrolled iPads of a cart or other device group.
    GroupId(String),
    /// The enrolled iPads of a school.
    SchoolId(String),
    /// The enrolled iPads of a school authority (authority and district admins).
    TenantId(String),
}

/// `POST /api/v1/devices/actions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The iPads.
    pub target: ActionTarget,
    /// What to do.
    pub action: DeviceAction,
    /// `false` (default): one unsuitable iPad refuses the whole request and nothing is
    /// queued. `true`: the suitable iPads get the command, the others are listed in
    /// `skipped` with their reasons (409 when none is suitable).
    #[serde(default)]
    pub skip_unsuitable: bool,
}

/// `POST /api/v1/devices/{key}/actions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneDeviceAction {
    /// What to do.
    pub action: DeviceAction,
}

/// An iPad an action went to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActedDevice {
    /// tafel's id.
    pub id: String,
    /// UDID.
    pub udid: String,
    /// Serial number.
    pub serial_number: Option<String>,
}

/// An iPad left out, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SkippedDevice {
    /// UDID.
    pub udid: String,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Why, as a code and its values.
    #[serde(flatten)]
    pub why: Unsuitable,
    /// Why, in words.
    pub message: String,
}

/// What an accepted action queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionAccepted {
    /// The action (`lost_mode_on`, …).
    pub action: String,
    /// Apple's RequestType sent (`EnableLostMode`, …; `DeviceInformation` and three more
    /// for `refresh_inventory`).
    pub request_type: String,
    /// Every command queued: one for all iPads, one per iPad for `clear_passcode` (each
    /// with its own unlock token), four for `refresh_inventory`.
    pub command_uuids: Vec<String>,
    /// The iPads that got it.
    pub devices: Vec<ActedDevice>,
    /// How many.
    pub count: usize,
    /// iPads left out with `skip_unsuitable` (empty otherwise).
    pub skipped: Vec<SkippedDevice>,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/actions",
    tag = "devices",
    operation_id = "device_actions",
    summary = "Lock, clear the passcode, Lost Mode, locate, restart, rename, update or erase iPads",
    description = "The iPads are named by UDID or serial number, or as a class, cart, school \
or authority (its enrolled iPads). Each iPad is checked before anything is stored: supervision \
and iPadOS version (as Apple's schema asks for the command), the unlock token for \
`clear_passcode`, Lost Mode for `locate` and `play_sound`. By default one unsuitable iPad \
refuses the request (409 naming each and why; nothing is queued); with `skip_unsuitable` the \
others go ahead and the answer lists the skipped. An erase is confirmed with the serial number \
of the one iPad or the number of iPads. Admins act within their scope; teachers cannot.",
    request_body = ActionRequest,
    responses(
        (status = 202, description = "Queued; the iPads are pushed", body = ActionAccepted),
        (status = 400, description = "An invalid action value, a missing or wrong erase confirmation, or a class, cart or school without enrolled iPads", body = ApiError),
        (status = 403, description = "Teachers cannot act on devices; school admins cannot act on a whole authority", body = ApiError),
        (status = 404, description = "An iPad, class, cart, school or authority unknown in the caller's scope", body = ApiError),
        (status = 409, description = "iPads that cannot do the action (named, with the reason); nothing was queued", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn act(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let req: ActionRequest = crate::error::parse_json(body.into_inner())?;
    let done = act_as(&state, caller, req).await?;
    Ok(HttpResponse::Accepted().json(done))
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{key}/actions",
    tag = "devices",
    operation_id = "device_action",
    summary = "An action on one iPad (as POST /api/v1/devices/actions)",
    params(("key" = String, Path, description = "UDID or serial number")),
    request_body = OneDeviceAction,
    responses(
        (status = 202, description = "Queued; the iPad is pushed", body = ActionAccepted),
        (status = 400, description = "An invalid action value, or a missing or wrong erase confirmation (the serial number)", body = ApiError),
        (status = 403, description = "Teachers cannot act on devices", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
        (status = 409, description = "The iPad cannot do the action (the reason is given); nothing was queued", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn act_on_one(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let one: OneDeviceAction = crate::error::parse_json(body.into_inner())?;
    let req = ActionRequest {
        target: ActionTarget::Devices(vec![path.into_inner()]),
        action: one.action,
        skip_unsuitable: false,
    };
    let done = act_as(&state, caller, req).await?;
    Ok(HttpResponse::Accepted().json(done))
}

/// Checks and queues an action under the API's rules (the API and the console); the
/// iPads are pushed once it is committed.
pub(crate) async fn act_as(
    state: &AppState,
    caller: Caller,
    req: ActionRequest,
) -> ApiResult<ActionAccepted> {
    authz::require_admin(&caller.0, "cannot act on devices")?;
    let action = req.action;
    action
        .validate()
        .map_err(|e| ApiError::invalid_field(&format!("action.{}", e.field), e.message))?;
    let command = action
        .command()
        .map_err(|e| ApiError::invalid_field(&format!("action.{}", e.field), e.message))?;
    if let ActionTarget::Devices(keys) = &req.target {
        if keys.is_empty() {
            return Err(ApiError::invalid_field(
                "target.devices",
                "name at least one iPad",
            ));
        }
        if keys.len() > MAX_DEVICES {
            return Err(ApiError::invalid_field(
                "target.devices",
                format!("at most {MAX_DEVICES} iPads per request"),
            ));
        }
    }
    let secrets = state.secrets.clone();
    let skip = req.skip_unsuitable;
    let target = req.target;
    let done = state
        .db
        .run(move |conn| -> ApiResult<ActionAccepted> {
            conn.write_tx(|conn| {
                let found = resolve(conn, &caller, &target)?;
                let facts = facts(conn, &found)?;
                let needs = action.needs();
                let mut suitable = Vec::with_capacity(found.len());
                let mut skipped = Vec::new();
                for t in found {
                    let f = facts.get(&t.id).cloned().unwrap_or_default();
                    match actions::check(&needs, &f) {
                        Ok(()) => suitable.push(t),
                        Err(why) => skipped.push(SkippedDevice {
                            udid: t.udid,
                            serial_number: t.serial_number,
                            message: why.to_string(),
                            why,
                        }),
                    }
                }
                refuse_unsuitable(&action, &suitable, &skipped, skip)?;
                let uuids = queue(conn, &secrets, &caller, &action, command, &suitable)?;
                Ok(ActionAccepted {
                    action: action.name().into(),
                    request_type: action.request_type().into(),
                    command_uuids: uuids,
                    count: suitable.len(),
                    devices: suitable
                        .into_iter()
                        .map(|t| ActedDevice {
                            id: t.id,
                            udid: t.udid,
                            serial_number: t.serial_number,
                        })
                        .collect(),
                    skipped,
                })
            })
        })
        .await?;
    // Committed: now wake the iPads.
    state
        .push
        .notify(done.devices.iter().map(|d| d.id.clone()).collect());
    Ok(done)
}

/// 409 naming the unsuitable iPads and why, unless they are to be skipped (and some are
/// left).
fn refuse_unsuitable(
    action: &DeviceAction,
    suitable: &[Target],
    skipped: &[SkippedDevice],
    skip: bool,
) -> ApiResult<()> {
    if skipped.is_empty() || (skip && !suitable.is_empty()) {
        return Ok(());
    }
    let named: Vec<String> = skipped
        .iter()
        .take(NAMED)
        .map(|s| {
            format!(
                "{} ({})",
                s.serial_number.as_deref().unwrap_or(&s.udid),
                s.message
            )
        })
        .collect();
    let more = skipped.len().saturating_sub(NAMED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let advice = if suitable.is_empty() {
        "nothing was queued"
    } else {
        "nothing was queued; send skip_unsuitable: true to act on the others"
    };
    Err(ApiError::conflict(format!(
        "{} is not possible on {} of {} iPads: {}{more}; {advice}",
        action.name(),
        skipped.len(),
        skipped.len() + suitable.len(),
        named.join(", "),
    )))
}

/// Queues the action for `targets` (checked) inside the transaction; returns the
/// command UUIDs.
fn queue(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    caller: &Caller,
    action: &DeviceAction,
    command: Option<crate::protocol::Command>,
    targets: &[Target],
) -> ApiResult<Vec<String>> {
    let actor = caller.0.user_id.as_str();
    let opts = EnqueueOptions {
        source: "api".into(),
        created_by: Some(actor.to_owned()),
        ..EnqueueOptions::default()
    };
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let typed = Some(action.name());
    match (action, command) {
        (DeviceAction::ClearPasscode {}, _) => {
            commands::clear_passcode_in_tx(conn, secrets, (actor, typed), targets, &opts)
        }
        (DeviceAction::RefreshInventory {}, _) => {
            let uuids = crate::inventory::ask(conn, &ids, 5)?;
            let mut out = Vec::with_capacity(uuids.len());
            for uuid in uuids {
                let request_type: String = crate::db::schema::commands::table
                    .find(uuid.as_str())
                    .select(crate::db::schema::commands::request_type)
                    .first(conn)?;
                commands::audit_request(conn, actor, typed, uuid.as_str(), &request_type, targets)?;
                out.push(uuid.to_string());
            }
            Ok(out)
        }
        (DeviceAction::Rename { name }, _) => {
            let [one] = targets else {
                return Err(ApiError::invalid_field(
                    "target",
                    format!("a name is for one iPad; {} were named", targets.len()),
                ));
            };
            let name = crate::devices::check_device_name(name)?;
            let command = crate::devices::device_name_command(&name)?;
            // The name changes in tafel at once, audited as a device edit is.
            let before: Option<String> = devices::table
                .find(&one.id)
                .select(devices::name)
                .first(conn)?;
            let mut changes = crate::audit::Changes::new();
            changes.field("name", &before, Some(&Some(name.clone())));
            let mut summary = changes.summary();
            summary["command_uuid"] = serde_json::json!(command.command_uuid.to_string());
            crate::audit::record(
                conn,
                &crate::audit::Entry::new(actor, "update", "device")
                    .object(&one.id)
                    .scope(one.tenant_id.as_deref(), one.school_id.as_deref())
                    .summary(summary),
            )?;
            diesel::update(devices::table.find(&one.id))
                .set((
                    devices::name.eq(&name),
                    devices::updated_at.eq(crate::db::now()),
                ))
                .execute(conn)?;
            crate::queue::enqueue_in_tx(conn, &command, &ids, &opts)?;
            commands::audit_command(conn, actor, typed, &command, targets)?;
            Ok(vec![command.command_uuid.to_string()])
        }
        (DeviceAction::Erase { confirm, .. }, Some(command)) => {
            commands::confirmed_erase(conn, &ids, Some(confirm))?;
            crate::queue::enqueue_in_tx(conn, &command, &ids, &opts)?;
            commands::audit_command(conn, actor, typed, &command, targets)?;
            Ok(vec![command.command_uuid.to_string()])
        }
        (_, Some(command)) => {
            crate::queue::enqueue_in_tx(conn, &command, &ids, &opts)?;
            commands::audit_command(conn, actor, typed, &command, targets)?;
            Ok(vec![command.command_uuid.to_string()])
        }
        (_, None) => Err(ApiError::internal(format!(
            "action {} built no command",
            action.name()
        ))),
    }
}

/// The iPads of the target within the caller's scope: named ones must all be known
/// (404 otherwise, foreign ones included); a class, cart, school or authority must be
/// visible (404) and manageable (403), and gives its enrolled iPads.
fn resolve(conn: &mut DbConn, caller: &Caller, target: &ActionTarget) -> ApiResult<Vec<Target>> {
    let p = &caller.0;
    let (ids, what): (Vec<String>, String) = match target {
        ActionTarget::Devices(keys) => {
            return commands::scoped_devices(conn, caller, keys).map_err(|e| {
                if e.field.as_deref() == Some("udids") {
                    ApiError::not_found(e.message)
                } else {
                    e
                }
            });
        }
        ActionTarget::ClassId(id) => {
            let (school, tenant): (String, String) = classes::table
                .inner_join(schools::table)
                .filter(classes::id.eq(id))
                .select((classes::school_id, schools::tenant_id))
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no class {id}")))?;
            authz::require(p, Action::ManageSchool, Place::school(&tenant, &school))?;
            let ids = class_devices::table
                .filter(class_devices::class_id.eq(id))
                .select(class_devices::device_id)
                .load(conn)?;
            (ids, "the class".into())
        }
        ActionTarget::GroupId(id) => {
            let (school, tenant): (String, String) = device_groups::table
                .inner_join(schools::table)
                .filter(device_groups::id.eq(id))
                .select((device_groups::school_id, schools::tenant_id))
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no device group {id}")))?;
            authz::require(p, Action::ManageSchool, Place::school(&tenant, &school))?;
            let ids = group_devices::table
                .filter(group_devices::group_id.eq(id))
                .select(group_devices::device_id)
                .load(conn)?;
            (ids, "the cart".into())
        }
        ActionTarget::SchoolId(id) => {
            let tenant: String = schools::table
                .find(id)
                .select(schools::tenant_id)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no school {id}")))?;
            authz::require(p, Action::ManageSchool, Place::school(&tenant, id))?;
            let ids = devices::table
                .filter(devices::school_id.eq(id))
                .select(devices::id)
                .load(conn)?;
            (ids, "the school".into())
        }
        ActionTarget::TenantId(id) => {
            let known: i64 = crate::db::schema::tenants::table
                .find(id)
                .count()
                .get_result(conn)?;
            if known == 0 {
                return Err(ApiError::not_found(format!("no authority {id}")));
            }
            authz::require(p, Action::ManageTenant, Place::tenant(id))?;
            let ids = devices::table
                .filter(devices::tenant_id.eq(id))
                .select(devices::id)
                .load(conn)?;
            (ids, "the authority".into())
        }
    };
    // A group's iPads: the enrolled ones the caller manages.
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = devices::table
            .filter(devices::id.eq_any(chunk))
            .filter(devices::enrollment_status.eq(EnrollmentStatus::Active))
            .filter(devices::udid.is_not_null())
            .order(devices::id)
            .select((
                devices::id,
                devices::udid,
                devices::serial_number,
                devices::tenant_id,
                devices::school_id,
            ))
            .load(conn)?;
        for (id, udid, serial, tenant, school) in rows {
            let Some(udid) = udid else { continue };
            if authz::device_in_scope(p, tenant.as_deref(), school.as_deref()) {
                found.push(Target {
                    id,
                    udid,
                    serial_number: serial,
                    tenant_id: tenant,
                    school_id: school,
                });
            }
        }
    }
    if found.is_empty() {
        return Err(ApiError::invalid_field(
            "target",
            format!("{what} has no enrolled iPads"),
        ));
    }
    Ok(found)
}

/// What tafel knows of each target, by device id.
fn facts(
    conn: &mut DbConn,
    targets: &[Target],
) -> ApiResult<std::collections::HashMap<String, DeviceFacts>> {
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let lost = crate::inventory::in_lost_mode(conn, &ids)?;
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let supervised: std::collections::HashMap<String, Option<bool>> = device_inventory::table
            .filter(device_inventory::device_id.eq_any(chunk))
            .select((device_inventory::device_id, device_inventory::supervised))
            .load::<(String, Option<bool>)>(conn)?
            .into_iter()
            .collect();
        type Row = (String, EnrollmentStatus, Option<String>, bool);
        let rows: Vec<Row> = devices::table
            .filter(devices::id.eq_any(chunk))
            .select((
                devices::id,
                devices::enrollment_status,
                devices::os_version,
                devices::unlock_token.is_not_null(),
            ))
            .load(conn)?;
        for (id, status, os_version, unlock_token) in rows {
            let facts = DeviceFacts {
                enrolled: status == EnrollmentStatus::Active,
                os_version,
                supervised: supervised.get(&id).copied().flatten(),
                unlock_token,
                lost_mode: lost.contains(&id),
            };
            out.insert(id, facts);
        }
    }
    Ok(out)
}

//! Admin API for the raw command queue: enqueue for a list of UDIDs, list a device's
//! queue with results, cancel open commands.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::authz;
use crate::audit;
use crate::db::schema::devices;
use crate::db::DbConn;
use crate::devices::DeviceRow;
use crate::error::{ApiError, ApiResult};
use crate::protocol::{self, Command};
use crate::queue::{self, EnqueueOptions, QueueEntry};
use crate::state::AppState;

/// Most UDIDs in one enqueue request.
const MAX_TARGETS: usize = 100_000;
/// Default and largest page size.
const PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/commands", web::post().to(enqueue))
        .route("/devices/{udid}/commands", web::get().to(list))
        .route("/devices/{udid}/commands/cancel", web::post().to(cancel));
}

/// `POST /api/v1/commands`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// Target devices: UDIDs or serial numbers.
    pub udids: Vec<String>,
    /// Apple's RequestType, e.g. `DeviceInformation`.
    pub request_type: String,
    /// The command's keys as JSON (`{"$data": base64}` for `<data>`); optional for
    /// commands with sensible defaults (DeviceInformation, ProfileList, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
    /// Higher is delivered first (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Seconds after which an undelivered command expires.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// `EraseDevice` wipes the iPads: confirm with the serial number of the one iPad, or
    /// with the number of iPads when there are several.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// Answer to an enqueue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnqueueResponse {
    /// The new command's UUID (the first one where each device gets its own).
    pub command_uuid: String,
    /// Every command created: one for all devices, or one per device where the command
    /// carries that device's own secret (ClearPasscode's unlock token).
    pub command_uuids: Vec<String>,
    /// Queue rows created.
    pub queued: usize,
}

/// Only admins send raw commands; scoped admins only to devices in their scope.
fn may_command(caller: &Caller) -> ApiResult<()> {
    authz::require_admin(&caller.0, "cannot send device commands")
}

/// Devices outside the caller's scope are reported as not found.
fn in_scope(caller: &Caller, tenant_id: Option<&str>, school_id: Option<&str>) -> bool {
    authz::device_in_scope(&caller.0, tenant_id, school_id)
}

#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "commands",
    operation_id = "enqueue_command",
    summary = "Queue a raw MDM command for devices and push them",
    request_body = EnqueueRequest,
    responses(
        (status = 202, description = "Queued; the devices are pushed", body = EnqueueResponse),
        (status = 400, description = "Unknown devices, an invalid command or field, or an EraseDevice without the confirmation (`confirm`)", body = ApiError),
        (status = 403, description = "Teachers cannot send device commands", body = ApiError),
        (status = 409, description = "ClearPasscode for an iPad of which tafel holds no unlock token (named); nothing is queued", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn enqueue(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<EnqueueRequest>,
) -> ApiResult<HttpResponse> {
    let queued = enqueue_as(&state, caller, body.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// Queues a command for devices under the API's rules (the API's POST and the console's
/// device actions); the devices are pushed once it is committed.
pub(crate) async fn enqueue_as(
    state: &AppState,
    caller: Caller,
    req: EnqueueRequest,
) -> ApiResult<EnqueueResponse> {
    may_command(&caller)?;
    if req.udids.is_empty() {
        return Err(ApiError::invalid_field("udids", "name at least one device"));
    }
    if req.udids.len() > MAX_TARGETS {
        return Err(ApiError::invalid_field(
            "udids",
            format!("at most {MAX_TARGETS} devices per request"),
        ));
    }
    let expires_at = match req.expires_in {
        Some(s) if s <= 0 => {
            return Err(ApiError::invalid_field(
                "expires_in",
                "must be positive seconds",
            ))
        }
        Some(s) => Some(crate::db::now() + chrono::Duration::seconds(s)),
        None => None,
    };
    let opts = EnqueueOptions {
        priority: req.priority,
        expires_at,
        source: "api".into(),
        created_by: Some(caller.0.user_id.clone()),
        ..EnqueueOptions::default()
    };
    let udids = req.udids;
    // ClearPasscode needs each iPad's own unlock token, which tafel keeps sealed.
    if req.request_type == "ClearPasscode" && req.fields.is_none() {
        return clear_passcode(state, caller, udids, opts).await;
    }
    let command = build_command(&req.request_type, req.fields.as_ref())?;
    let uuid = command.command_uuid.to_string();
    let confirm = req.confirm;
    let (queued, targets) = state
        .db
        .run(move |conn| -> ApiResult<(usize, Vec<String>)> {
            conn.write_tx(|conn| {
                let found = scoped_devices(conn, &caller, &udids)?;
                let targets: Vec<String> = found.iter().map(|t| t.id.clone()).collect();
                if command.request_type == "EraseDevice" {
                    confirmed_erase(conn, &targets, confirm.as_deref())?;
                }
                let n = queue::enqueue_in_tx(conn, &command, &targets, &opts)
                    .map_err(ApiError::internal)?;
                audit_command(conn, &caller.0.user_id, None, &command, &found)?;
                Ok((n, targets))
            })
        })
        .await?;
    // Committed: now wake the devices.
    state.push.notify(targets);
    Ok(EnqueueResponse {
        command_uuids: vec![uuid.clone()],
        command_uuid: uuid,
        queued,
    })
}

/// ClearPasscode for each device with the unlock token it sent in its TokenUpdate
/// (`mdm/commands/passcode.clear.yaml`: required). The token stays sealed at rest: each
/// device's command body is sealed to it and opened only when it is delivered. All or
/// nothing: a device of which tafel holds no token is named, and nothing is queued.
async fn clear_passcode(
    state: &AppState,
    caller: Caller,
    udids: Vec<String>,
    opts: EnqueueOptions,
) -> ApiResult<EnqueueResponse> {
    let secrets = state.secrets.clone();
    let (uuids, targets) = state
        .db
        .run(move |conn| -> ApiResult<(Vec<String>, Vec<String>)> {
            conn.write_tx(|conn| {
                let found = scoped_devices(conn, &caller, &udids)?;
                let uuids =
                    clear_passcode_in_tx(conn, &secrets, (&caller.0.user_id, None), &found, &opts)?;
                Ok((uuids, found.into_iter().map(|t| t.id).collect()))
            })
        })
        .await?;
    state.push.notify(targets);
    Ok(EnqueueResponse {
        command_uuid: uuids.first().cloned().unwrap_or_default(),
        queued: uuids.len(),
        command_uuids: uuids,
    })
}

/// Queues ClearPasscode for each of `found` with its own unlock token, sealed, inside the
/// caller's transaction; audited per device. All or nothing: devices without a token
/// are named (409). Returns the command UUIDs in the order of `found`. The audit
/// entries name `actor` and, for a typed device action, its name.
pub(crate) fn clear_passcode_in_tx(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    (actor, typed): (&str, Option<&str>),
    found: &[Target],
    opts: &EnqueueOptions,
) -> ApiResult<Vec<String>> {
    use crate::secrets::{binding, places};
    let mut commands = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    for t in found {
        let sealed: Option<Vec<u8>> = devices::table
            .find(&t.id)
            .select(devices::unlock_token)
            .first(conn)?;
        let Some(sealed) = sealed else {
            missing.push(t.udid.clone());
            continue;
        };
        let token = secrets
            .open_for(&binding(places::UNLOCK_TOKEN, &t.id), &sealed)
            .map_err(|e| ApiError::internal(format!("unlock token of {}: {e}", t.udid)))?;
        let token = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, token);
        let fields = serde_json::json!({"UnlockToken": {"$data": token}});
        commands.push((t.clone(), build_command("ClearPasscode", Some(&fields))?));
    }
    if !missing.is_empty() {
        return Err(ApiError::conflict(format!(
            "tafel holds no unlock token for {}: an iPad sends one when it enrolls, if its enrollment allows clearing the passcode; clear it on the iPad, or erase it",
            missing.join(", ")
        )));
    }
    let mut uuids = Vec::with_capacity(commands.len());
    for (t, command) in &commands {
        queue::enqueue_sealed_in_tx(conn, secrets, command, &t.id, opts)?;
        audit_command(conn, actor, typed, command, std::slice::from_ref(t))?;
        uuids.push(command.command_uuid.to_string());
    }
    Ok(uuids)
}

/// An erase goes out only when the caller confirmed it: with the serial number of the one
/// iPad, or with the number of iPads (nothing is stored otherwise).
pub(crate) fn confirmed_erase(
    conn: &mut DbConn,
    targets: &[String],
    confirm: Option<&str>,
) -> ApiResult<()> {
    let given = confirm.map(str::trim).unwrap_or("");
    let (ok, ask) = match targets {
        [one] => {
            let serial: Option<String> = devices::table
                .find(one)
                .select(devices::serial_number)
                .first(conn)?;
            let serial = serial.unwrap_or_default();
            (
                !serial.is_empty() && given.eq_ignore_ascii_case(&serial),
                format!("the iPad's serial number ({serial})"),
            )
        }
        many => (
            given == many.len().to_string(),
            format!("the number of iPads ({})", many.len()),
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "confirm",
            format!("EraseDevice wipes everything on the iPads: confirm with {ask}"),
        ))
    }
}

/// Device id, UDID, serial number, tenant, school.
type ScopeRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A device a command goes to, with where it lives (for the audit log).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub id: String,
    pub udid: String,
    pub serial_number: Option<String>,
    pub tenant_id: Option<String>,
    pub school_id: Option<String>,
}

/// Audits a command for its devices: one entry per school (so each school's and
/// authority's admins see theirs), naming the devices by UDID and serial number (the
/// first thousand, and how many). The entries' action is `enqueue` (one filter finds
/// every command a person queued); a typed device action (`lost_mode_on`, …) is named
/// in the summary as `action`.
pub(crate) fn audit_command(
    conn: &mut DbConn,
    actor: &str,
    typed: Option<&str>,
    command: &Command,
    targets: &[Target],
) -> ApiResult<()> {
    audit_request(
        conn,
        actor,
        typed,
        command.command_uuid.as_str(),
        &command.request_type,
        targets,
    )
}

/// As [`audit_command`], for a stored command known by its UUID and RequestType.
pub(crate) fn audit_request(
    conn: &mut DbConn,
    actor: &str,
    typed: Option<&str>,
    command_uuid: &str,
    request_type: &str,
    targets: &[Target],
) -> ApiResult<()> {
    type Named<'a> = (Vec<&'a str>, Vec<&'a str>);
    let mut by_place: std::collections::BTreeMap<(Option<&str>, Option<&str>), Named<'_>> =
        std::collections::BTreeMap::new();
    for t in targets {
        let (udids, serials) = by_place
            .entry((t.tenant_id.as_deref(), t.school_id.as_deref()))
            .or_default();
        udids.push(&t.udid);
        if let Some(serial) = t.serial_number.as_deref() {
            serials.push(serial);
        }
    }
    for ((tenant, school), (udids, serials)) in by_place {
        audit::record(
            conn,
            &audit::Entry::new(actor, "enqueue", "command")
                .object(command_uuid)
                .scope(tenant, school)
                .summary(serde_json::json!({
                    "request_type": request_type,
                    "action": typed,
                    "devices": udids.len(),
                    "udids": &udids[..udids.len().min(1000)],
                    "serial_numbers": &serials[..serials.len().min(1000)],
                })),
        )?;
    }
    Ok(())
}

/// Resolves UDIDs or serial numbers to enrolled devices within the caller's scope;
/// any unknown (or foreign, or never enrolled) key rejects the whole request.
pub(crate) fn scoped_devices(
    conn: &mut DbConn,
    caller: &Caller,
    keys: &[String],
) -> ApiResult<Vec<Target>> {
    let mut found = Vec::with_capacity(keys.len());
    let mut ids = std::collections::HashSet::new();
    // Each key that matched, as given (UDIDs exactly, serials in any case).
    let mut matched = std::collections::HashSet::new();
    for chunk in keys.chunks(1000) {
        let serials: Vec<String> = chunk.iter().map(|k| k.to_uppercase()).collect();
        let rows: Vec<ScopeRow> = devices::table
            .filter(
                devices::udid
                    .eq_any(chunk)
                    .or(devices::serial_number.eq_any(&serials)),
            )
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
            if !in_scope(caller, tenant.as_deref(), school.as_deref()) {
                continue;
            }
            matched.insert(udid.clone());
            if let Some(s) = &serial {
                matched.insert(s.clone());
            }
            if ids.insert(id.clone()) {
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
    let mut unknown: Vec<String> = keys
        .iter()
        .filter(|k| !matched.contains(*k) && !matched.contains(&k.to_uppercase()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        unknown.truncate(20);
        return Err(ApiError::invalid_field(
            "udids",
            format!("unknown devices: {}", unknown.join(", ")),
        ));
    }
    // In the order the caller named them (answers and refusals read in that order).
    let mut position = std::collections::HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        position.entry(k.to_uppercase()).or_insert(i);
    }
    let rank = |t: &Target| {
        let by_udid = position.get(&t.udid.to_uppercase()).copied();
        let by_serial = t
            .serial_number
            .as_ref()
            .and_then(|s| position.get(&s.to_uppercase()).copied());
        by_udid
            .into_iter()
            .chain(by_serial)
            .min()
            .unwrap_or(usize::MAX)
    };
    found.sort_by_key(rank);
    Ok(found)
}

/// A typed command for `request_type` from JSON fields; well-known read-only commands
/// get Apple's usual defaults when no fields are given.
fn build_command(request_type: &str, fields: Option<&serde_json::Value>) -> ApiResult<Command> {
    let bad = |e: protocol::ProtocolError| ApiError::invalid_field("fields", e.to_string());
    match fields {
        Some(f) => Command::from_json(request_type, f).map_err(bad),
        None => match request_type {
            "DeviceInformation" => Ok(Command::device_information(protocol::INVENTORY_QUERIES)),
            _ => Command::from_json(request_type, &serde_json::json!({}))
                .map_err(|e| ApiError::invalid_field("request_type", e.to_string())),
        },
    }
}

/// Loads a device the caller may see, by UDID (404 otherwise).
fn find_device(conn: &mut DbConn, caller: &Caller, udid: &str) -> ApiResult<DeviceRow> {
    crate::devices::find(conn, authz::list_scope(&caller.0), udid)?
        .ok_or_else(|| ApiError::not_found(format!("no device {udid}")))
}

/// Query of `GET /devices/{udid}/commands`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this queue state.
    pub status: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One entry with its decoded result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = QueueEntryView)]
pub(crate) struct EntryView {
    #[serde(flatten)]
    entry: QueueEntry,
    /// The device's answer, as JSON (`{"$data": base64}` for `<data>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    result: Option<serde_json::Value>,
    /// Apple's ErrorChain, when the command failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_chain: Option<serde_json::Value>,
}

fn parse_cursor(c: &str) -> ApiResult<(chrono::NaiveDateTime, String)> {
    let bad = || ApiError::invalid_field("cursor", "not a cursor from this API");
    let (t, id) = c.split_once('~').ok_or_else(bad)?;
    let micros: i64 = t.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(bad)?
        .naive_utc();
    Ok((at, id.to_owned()))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{udid}/commands",
    tag = "commands",
    operation_id = "list_device_commands",
    summary = "A device's command queue with results, newest first",
    params(("udid" = String, Path, description = "The device's UDID"), ListQuery),
    responses(
        (status = 200, description = "One page of queue entries", body = super::answer::CommandPage),
        (status = 400, description = "`status`, `limit` or `cursor` is invalid", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: crate::error::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let udid = path.into_inner();
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("between 1 and {MAX_PAGE}"),
        ));
    }
    let status = q
        .status
        .as_deref()
        .map(|s| super::errors::parse_word::<queue::QueueState>("status", s))
        .transpose()?;
    let before = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let entries = state
        .db
        .run(move |conn| -> ApiResult<Vec<QueueEntry>> {
            let device = find_device(conn, &caller, &udid)?;
            Ok(queue::list(conn, &device.id, status, before, limit)?)
        })
        .await?;
    let next_cursor = (entries.len() as i64 == limit)
        .then(|| {
            entries.last().map(|e| {
                format!(
                    "{}~{}",
                    e.created_at.and_utc().timestamp_micros(),
                    e.command_uuid
                )
            })
        })
        .flatten();
    let items: Vec<EntryView> = entries
        .into_iter()
        .map(|mut entry| {
            let result = entry
                .result
                .take()
                .and_then(|raw| {
                    protocol::bounded::parse(&raw, protocol::bounded::Limits::DEVICE).ok()
                })
                .map(|v| protocol::plist_to_json(&v));
            let error_chain = entry
                .error_chain
                .take()
                .and_then(|c| serde_json::from_str(&c).ok());
            EntryView {
                entry,
                result,
                error_chain,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(super::answer::CommandPage { items, next_cursor }))
}

/// Body of a cancel request.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Only these commands; all open ones when absent.
    pub command_uuids: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{udid}/commands/cancel",
    tag = "commands",
    operation_id = "cancel_device_commands",
    summary = "Cancel a device's open commands (all, or the ones named)",
    params(("udid" = String, Path, description = "The device's UDID")),
    request_body(content = Option<CancelRequest>, description = "Optional: without a body every open command is cancelled"),
    responses(
        (status = 200, description = "How many were cancelled", body = super::answer::Cancelled),
        (status = 403, description = "Teachers cannot cancel device commands", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn cancel(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Option<web::Json<CancelRequest>>,
) -> ApiResult<HttpResponse> {
    may_command(&caller)?;
    let udid = path.into_inner();
    let only = body
        .map(|b| b.into_inner())
        .unwrap_or_default()
        .command_uuids;
    let cancelled = state
        .db
        .run(move |conn| -> ApiResult<usize> {
            conn.write_tx(|conn| {
                let device = find_device(conn, &caller, &udid)?;
                let n =
                    queue::cancel(conn, &device.id, only.as_deref()).map_err(ApiError::internal)?;
                audit::record(
                    conn,
                    &audit::Entry::new(&caller.0.user_id, "cancel", "command_queue")
                        .object(&device.id)
                        .scope(device.tenant_id.as_deref(), device.school_id.as_deref())
                        .summary(serde_json::json!({"udid": udid, "cancelled": n, "only": only})),
                )?;
                Ok(n)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::Cancelled { cancelled }))
}

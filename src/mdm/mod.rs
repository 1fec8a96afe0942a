//! The device door: check-in and connect endpoints, as iPads call them.
//!
//! Both endpoints accept `PUT` (what iOS sends) and `POST`. Either path takes either
//! kind of message, since real enrollment profiles may point `CheckInURL` and
//! `ServerURL` at one path: a body with `MessageType` is a check-in, one with `Status`
//! a command report. Errors are 4xx with a reason and store nothing; never 401.

pub mod ade;
pub mod enroll;
pub mod identity;
pub mod renewal;
pub mod scep;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config::Settings;
use crate::enrollment::{self, EnrollError};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::protocol::{self, CheckinMessage, ConnectReport};
use crate::queue::{self, QueueError};
use crate::state::AppState;

/// Content type of command plists sent to devices.
const PLIST: &str = "application/xml; charset=utf-8";

/// Which limit applies to a path.
#[derive(Clone, Copy)]
struct BodyLimit(usize);

/// Registers the device endpoints at the configured paths.
pub fn config(settings: &Settings) -> impl FnOnce(&mut web::ServiceConfig) {
    let checkin = settings.mdm.checkin_path.clone();
    let connect = settings.mdm.connect_path.clone();
    let (checkin_limit, connect_limit) =
        (settings.mdm.max_checkin_body, settings.mdm.max_connect_body);
    move |cfg| {
        ade::config(cfg);
        enroll::config(cfg);
        scep::config(cfg);
        if checkin == connect {
            let limit = checkin_limit.max(connect_limit);
            cfg.service(device_resource(&checkin, limit));
        } else {
            cfg.service(device_resource(&checkin, checkin_limit));
            cfg.service(device_resource(&connect, connect_limit));
        }
    }
}

fn device_resource(path: &str, limit: usize) -> actix_web::Resource {
    web::resource(path)
        .app_data(BodyLimit(limit))
        .route(web::put().to(device_request))
        .route(web::post().to(device_request))
}

fn device_error(e: EnrollError) -> ApiError {
    match e {
        EnrollError::Db(e) => e.into(),
        EnrollError::Queue(QueueError::Db(e)) => e.into(),
        EnrollError::Queue(e) => ApiError::internal(e),
        EnrollError::Secret(e) => ApiError::internal(e),
        EnrollError::NoUdid => {
            ApiError::bad_request("message has no UDID; user enrollment is not supported")
        }
        other => ApiError::forbidden(other.to_string()),
    }
}

fn protocol_error(e: protocol::ProtocolError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

async fn device_request(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let result = handle_device_request(&req, payload, state).await;
    if let Err(e) = &result {
        if e.code == ErrorCode::Forbidden {
            // A device that is refused cannot tell anyone why; the operator's log can.
            tracing::warn!(path = req.path(), reason = %e.message, "device request refused");
        }
    }
    result
}

async fn handle_device_request(
    req: &HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let limit = req.app_data::<BodyLimit>().map_or(1024 * 1024, |l| l.0);
    let body = crate::error::read_body(payload, limit).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: expected a plist"));
    }
    // The signature (or TLS identity) is checked before the body is read: nothing from
    // a sender without one of our identities reaches the plist parser.
    let identity = identity::verify(req, &body, &state)?;
    let dict = protocol::parse_dict(&body).map_err(protocol_error)?;
    let is_checkin = dict.contains_key("MessageType")
        || req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-apple-aspen-mdm-checkin"));
    if is_checkin {
        let msg = CheckinMessage::from_dict(&dict).map_err(protocol_error)?;
        let kind = msg.message_type();
        let state = state.into_inner();
        let reply = checkin(state.clone(), msg, identity).await;
        crate::metrics::device_message(kind, answered(&reply));
        let reply = reply?;
        // A (re-)enrolled device gets its assignments.
        if let Reply::Enrolled { device, asked } = &reply {
            state.reconciler.devices(vec![device.clone()]);
            if *asked {
                // Its first inventory waits: the iPad is told to connect.
                state.push.notify(vec![device.clone()]);
            }
        }
        Ok(reply.into_response())
    } else {
        let report = ConnectReport::from_dict(dict).map_err(protocol_error)?;
        let kind = report.status.as_str();
        let reply = connect(state.into_inner(), report, identity, body).await;
        crate::metrics::device_message(kind, answered(&reply));
        reply.map(Reply::into_response)
    }
}

/// The HTTP status a device message is answered with (for the metrics).
fn answered(reply: &ApiResult<Reply>) -> u16 {
    match reply {
        Ok(Reply::Gone) => 410,
        Ok(_) => 200,
        Err(e) => actix_web::ResponseError::status_code(e).as_u16(),
    }
}

/// What a device endpoint answers; built on the blocking pool (where `HttpResponse`,
/// which is not `Send`, cannot be), turned into a response on the worker.
enum Reply {
    /// 200 with an empty body.
    Empty,
    /// 200 with a plist.
    Plist(Vec<u8>),
    /// 200 with JSON (declarative management).
    Json(serde_json::Value),
    /// 410: this channel is not managed.
    Gone,
    /// 200, and the device (just enrolled or re-registered) needs reconciling; `asked`:
    /// its first inventory was queued.
    Enrolled {
        /// The device.
        device: String,
        /// Its first inventory was queued.
        asked: bool,
    },
}

impl Reply {
    fn into_response(self) -> HttpResponse {
        match self {
            Reply::Empty | Reply::Enrolled { .. } => HttpResponse::Ok().finish(),
            Reply::Plist(body) => HttpResponse::Ok().content_type(PLIST).body(body),
            Reply::Json(v) => HttpResponse::Ok().json(v),
            Reply::Gone => HttpResponse::Gone().finish(),
        }
    }
}

fn device_udid(msg: &CheckinMessage) -> ApiResult<String> {
    let ids = msg.enrollment();
    if ids.is_user_channel() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "user channel is not supported",
        ));
    }
    ids.udid
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .ok_or_else(|| {
            ApiError::bad_request("message has no UDID; user enrollment is not supported")
        })
}

async fn checkin(
    state: std::sync::Arc<AppState>,
    msg: CheckinMessage,
    identity: enrollment::Identity,
) -> ApiResult<Reply> {
    // The user channel (macOS users, Shared iPad) is declined as Apple documents: 410.
    if matches!(msg, CheckinMessage::UserAuthenticate(_)) || msg.enrollment().is_user_channel() {
        return Ok(Reply::Gone);
    }
    let udid = device_udid(&msg)?;
    let kind = msg.message_type();
    tracing::info!(udid = %udid, message = kind, "check-in");
    let db = state.db.clone();
    db.run(move |conn| -> ApiResult<Reply> {
        if let CheckinMessage::Authenticate(auth) = &msg {
            enrollment::authenticate(conn, &udid, auth, &identity).map_err(device_error)?;
            return Ok(Reply::Empty);
        }
        let device = enrollment::verify_bound(conn, &udid, &identity).map_err(device_error)?;
        match &msg {
            CheckinMessage::TokenUpdate(m) => {
                let asked = enrollment::token_update(conn, &state.secrets, &device, m)
                    .map_err(device_error)?;
                Ok(Reply::Enrolled {
                    device: device.id.clone(),
                    asked,
                })
            }
            CheckinMessage::CheckOut(m) => {
                let stopped = enrollment::check_out(conn, &device, m).map_err(device_error)?;
                tracing::info!(udid = %udid, stopped, "checked out");
                Ok(Reply::Empty)
            }
            CheckinMessage::SetBootstrapToken(m) => {
                enrollment::set_bootstrap_token(
                    conn,
                    &state.secrets,
                    &device,
                    m.bootstrap_token.as_deref(),
                )
                .map_err(device_error)?;
                Ok(Reply::Empty)
            }
            CheckinMessage::GetBootstrapToken(_) => {
                let token = enrollment::bootstrap_token(conn, &state.secrets, &device)
                    .map_err(device_error)?;
                Ok(Reply::Plist(
                    protocol::GetBootstrapTokenResponse {
                        bootstrap_token: token,
                    }
                    .to_xml(),
                ))
            }
            CheckinMessage::DeclarativeManagement(m) => declarative(m),
            CheckinMessage::GetToken(m) => Err(ApiError::bad_request(format!(
                "token service {:?} is not supported",
                m.token_service_type
            ))),
            CheckinMessage::Authenticate(_) | CheckinMessage::UserAuthenticate(_) => {
                Ok(Reply::Empty)
            }
        }
    })
    .await
}

/// Declarative management without declarations: empty token and manifest, status
/// reports accepted. (Apple: `mdm/checkin/declarativemanagement.yaml`.)
fn declarative(m: &protocol::DeclarativeManagementRequest) -> ApiResult<Reply> {
    use protocol::DeclarativeEndpoint as E;
    match m.endpoint_kind() {
        E::Tokens => Ok(Reply::Json(serde_json::json!({
            "SyncTokens": {"DeclarationsToken": "tafel-empty", "Timestamp": "2026-01-01T00:00:00Z"}
        }))),
        E::DeclarationItems => Ok(Reply::Json(serde_json::json!({
            "Declarations": {"Activations": [], "Assets": [], "Configurations": [], "Management": []},
            "DeclarationsToken": "tafel-empty"
        }))),
        E::Status => Ok(Reply::Empty),
        _ => Err(ApiError::not_found(format!(
            "no declaration at {}",
            m.endpoint
        ))),
    }
}

async fn connect(
    state: std::sync::Arc<AppState>,
    report: ConnectReport,
    identity: enrollment::Identity,
    raw: web::Bytes,
) -> ApiResult<Reply> {
    let udid = report
        .udid
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .ok_or_else(|| {
            ApiError::bad_request("report has no UDID; user enrollment is not supported")
        })?;
    let secrets = state.secrets.clone();
    let (reply, changed) = state
        .db
        .run(move |conn| -> ApiResult<(Reply, Option<String>)> {
            // The device and whether anything is open for it: one read.
            let (device, open) = enrollment::find_with_open(conn, &udid)?
                .ok_or_else(|| device_error(enrollment::EnrollError::NotEnrolled(udid.clone())))?;
            let device =
                enrollment::check_bound(conn, device, &udid, &identity).map_err(device_error)?;
            let answered = report.status != protocol::Status::Idle;
            let mut changed = None;
            let next = if answered {
                // One observed fact, one transaction: the queue row's state, the
                // inventory the answer carries and the claim of the next command
                // change together.
                let (observed, next) =
                    conn.write_tx(|conn| -> ApiResult<(bool, Option<Vec<u8>>)> {
                        queue::record_answer(conn, &device.id, &report, &raw)
                            .map_err(ApiError::from)?;
                        let observed = crate::inventory::apply(conn, &device.id, &report)?;
                        let next =
                            queue::next_command(conn, &device.id, true).map_err(ApiError::from)?;
                        Ok((observed, next))
                    })?;
                if observed {
                    changed = Some(device.id.clone());
                }
                tracing::info!(
                    udid = %udid,
                    command = %report.command_uuid.as_ref().map(|c| c.as_str()).unwrap_or(""),
                    status = report.status.as_str(),
                    "command answered"
                );
                next
            } else {
                queue::next_after_idle(conn, &device.id, open).map_err(ApiError::from)?
            };
            let reply = match next {
                Some(body) => Reply::Plist(
                    crate::secrets::command_body(&secrets, &device.id, body)
                        .map_err(|e| ApiError::internal(format!("a sealed command: {e}")))?,
                ),
                None => Reply::Empty,
            };
            Ok((reply, changed))
        })
        .await?;
    // The observed state changed: the reconciler looks at this device again.
    if let Some(id) = changed {
        state.reconciler.devices(vec![id]);
    }
    Ok(reply)
}

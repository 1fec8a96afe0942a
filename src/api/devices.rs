//! Admin API for devices: the filtered, paged list and single devices.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::devices::{self, DeviceFilter};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Default and largest page.
const PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", web::get().to(list))
        .route("/devices/{key}", web::get().to(get))
        .route("/devices/{key}", web::patch().to(patch))
        .route("/devices/{key}", web::delete().to(retire))
        .route("/devices/{key}/release", web::post().to(release));
}

/// What releasing a device did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Released {
    /// The device.
    pub id: String,
    /// Its state now: `retired`.
    pub enrollment_status: crate::enrollment::EnrollmentStatus,
    /// Open commands that were closed.
    pub commands_closed: usize,
}

/// `POST /devices/{key}/release`.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{key}/release",
    tag = "devices",
    operation_id = "release_device",
    summary = "Release (retire) a device: no longer managed, free to enroll again",
    description = "Its identity no longer speaks for it, its open commands close, it leaves \
its classes and carts. It may enroll again through any school's enrollment link or ADE; \
where the authority requires a release before a known iPad enrolls again, this is it.",
    params(("key" = String, Path, description = "UDID, serial number or id")),
    responses(
        (status = 200, description = "The device was released", body = Released),
        (status = 403, description = "Teachers cannot release devices", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn release(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = path.into_inner();
    let released = state
        .db
        .run(move |conn| -> ApiResult<Released> {
            let d = devices::find(conn, authz::list_scope(&caller.0), &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            authz::require(
                &caller.0,
                Action::ManageSchool,
                Place {
                    tenant_id: d.tenant_id.as_deref(),
                    school_id: d.school_id.as_deref(),
                },
            )?;
            let commands_closed = crate::enrollment::release(conn, &d.id, &caller.0.user_id)?;
            Ok(Released {
                id: d.id,
                enrollment_status: crate::enrollment::EnrollmentStatus::Retired,
                commands_closed,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(released))
}

/// `DELETE /devices/{key}`: what releasing does, answered like a delete.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{key}",
    tag = "devices",
    operation_id = "retire_device",
    summary = "Retire a device: no longer managed, out of the device list",
    description = "The same as `POST /api/v1/devices/{key}/release`: its identity certificate \
no longer speaks for it, its open commands are cancelled, it leaves its classes and carts. It \
leaves the device list (`?status=retired` shows it); its audit trail and command history stay, \
and `GET /api/v1/devices/{key}` still finds it. Retiring a retired device changes nothing.",
    params(("key" = String, Path, description = "UDID or serial number")),
    responses(
        (status = 204, description = "Retired"),
        (status = 403, description = "Teachers cannot retire devices", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn retire(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = path.into_inner();
    state
        .db
        .run(move |conn| -> ApiResult<()> {
            let d = devices::find(conn, authz::list_scope(&caller.0), &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            authz::require(
                &caller.0,
                Action::ManageSchool,
                Place {
                    tenant_id: d.tenant_id.as_deref(),
                    school_id: d.school_id.as_deref(),
                },
            )?;
            if d.enrollment_status != crate::enrollment::EnrollmentStatus::Retired {
                crate::enrollment::release(conn, &d.id, &caller.0.user_id)?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /devices?school_id=&class_id=&group_id=&model=&os_version=&status=&enrolled=&last_seen_before=&last_seen_after=&q=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    operation_id = "list_devices",
    summary = "List the devices the caller may see, filtered and paged",
    params(DeviceFilter),
    responses(
        (status = 200, description = "One page of devices; with `format=csv` or `Accept: text/csv` every matching device as a spreadsheet (`;`, UTF-8 with BOM, German column names, times in Europe/Berlin)", content(
            (super::answer::DevicePage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A filter, `limit`, `cursor` or `format` is invalid, or more than 100,000 devices match an export", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: crate::error::Query<DeviceFilter>,
) -> ApiResult<HttpResponse> {
    list_as(&state, &caller, &req, q.into_inner(), "geraete").await
}

/// The device list (a page as JSON, or every matching device as CSV named
/// `<file>-<date>.csv`) under the API's rules: the list and the reports built on it.
pub(crate) async fn list_as(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    f: DeviceFilter,
    file: &str,
) -> ApiResult<HttpResponse> {
    let csv = super::reports::wants_csv(req, f.format.as_deref())?;
    let limit = f.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("between 1 and {MAX_PAGE}"),
        ));
    }
    if let Some(s) = &f.status {
        super::errors::parse_word::<crate::enrollment::EnrollmentStatus>("status", s)?;
    }
    if f.q.as_ref().is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::invalid_field("q", "at most 100 characters"));
    }
    if csv {
        return export(state, caller, f, file).await;
    }
    let p = caller.0.clone();
    let (items, next) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let (rows, next) = devices::list(conn, authz::list_scope(&p), &f, limit)?;
            Ok((devices::with_names(conn, rows)?, next))
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::DevicePage {
        items,
        next_cursor: next,
    }))
}

/// Every device matching the filters, as a CSV file German Excel opens.
async fn export(
    state: &AppState,
    caller: &Caller,
    f: DeviceFilter,
    file: &str,
) -> ApiResult<HttpResponse> {
    let p = caller.0.clone();
    let rows = state
        .db
        .run(move |conn| -> ApiResult<_> {
            devices::export(conn, authz::list_scope(&p), &f)?.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "more than {} devices match: narrow the filters (school_id, class_id, status …)",
                    devices::MAX_EXPORT
                ))
            })
        })
        .await?;
    let csv = crate::export::csv(devices::EXPORT_HEADER, rows.iter().map(devices::export_row))
        .map_err(ApiError::internal)?;
    Ok(super::reports::csv_download(file, csv))
}

/// `GET /devices/{udid or serial}`.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{key}",
    tag = "devices",
    operation_id = "get_device",
    summary = "One device",
    params(("key" = String, Path, description = "UDID or serial number")),
    responses(
        (status = 200, description = "The device with what it last reported: model, OS, serial, battery, storage, supervision, apps and profiles", body = devices::DeviceDetail),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = path.into_inner();
    let d = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let d = devices::find(conn, authz::list_scope(&caller.0), &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            Ok(devices::detail(conn, d)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(d))
}

/// `PATCH /devices/{udid or serial}`.
#[utoipa::path(
    patch,
    path = "/api/v1/devices/{key}",
    tag = "devices",
    operation_id = "update_device",
    summary = "Rename a device",
    description = "An enrolled iPad is sent a `Settings` command with the new `DeviceName` and \
pushed (supervised iPads only); its inventory reports the name back.",
    params(("key" = String, Path, description = "UDID or serial number")),
    request_body = devices::DevicePatch,
    responses(
        (status = 200, description = "The device now", body = devices::DeviceDetail),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Teachers cannot rename devices", body = ApiError),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let key = path.into_inner();
    let body = body.into_inner();
    let (v, pushed) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let scope = authz::list_scope(&caller.0);
            let d = devices::find(conn, scope, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            authz::require(
                &caller.0,
                Action::ManageSchool,
                Place {
                    tenant_id: d.tenant_id.as_deref(),
                    school_id: d.school_id.as_deref(),
                },
            )?;
            let patch: devices::DevicePatch = crate::error::parse_json(body)?;
            let queued = devices::update(conn, &d.id, &patch, &caller.0.user_id)?;
            let now = devices::find(conn, scope, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            Ok((devices::detail(conn, now)?, queued.then_some(d.id)))
        })
        .await?;
    // Committed: wake the iPad for its new name.
    if let Some(id) = pushed {
        state.push.notify(vec![id]);
    }
    Ok(HttpResponse::Ok().json(v))
}

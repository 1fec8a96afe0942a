//! Admin and teacher API for classes, device groups (carts), memberships and imports.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::accounts::Role;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org::classes::{self, Class, DeviceGroup, Membership, NewClass, NewGroup};
use crate::org::import::{self, ImportError};
use crate::org::{self as orgmod, OrgError, School};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/schools/{id}/classes", web::post().to(create_class))
        .route("/schools/{id}/classes", web::get().to(list_classes))
        .route("/schools/{id}/groups", web::post().to(create_group))
        .route("/schools/{id}/groups", web::get().to(list_groups))
        .route(
            "/schools/{id}/import/classes",
            web::post().to(import_classes),
        )
        .route(
            "/schools/{id}/import/devices",
            web::post().to(import_devices),
        )
        .route("/me/classes", web::get().to(my_classes))
        .route("/classes/{id}", web::get().to(get_class))
        .route("/classes/{id}/teachers", web::put().to(set_teachers))
        .route("/classes/{id}/devices", web::post().to(add_class_devices))
        .route(
            "/classes/{id}/devices/remove",
            web::post().to(remove_class_devices),
        )
        .route("/groups/{id}", web::get().to(get_group))
        .route("/groups/{id}/devices", web::post().to(add_group_devices))
        .route(
            "/groups/{id}/devices/remove",
            web::post().to(remove_group_devices),
        );
}

fn org_error(e: OrgError) -> ApiError {
    match e {
        OrgError::Db(e) => e.into(),
        OrgError::Invalid { field, message } => ApiError::invalid_field(field, message),
        OrgError::Duplicate(_) => ApiError::conflict(e.to_string()),
    }
}

async fn school(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<School> {
    let school = state
        .db
        .run(move |conn| orgmod::school(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such school"))?;
    authz::require(
        &caller.0,
        action,
        Place::school(&school.tenant_id, &school.id),
    )?;
    Ok(school)
}

/// A class the caller may see (teachers: only their own), with its school.
async fn class(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<(Class, School)> {
    let p = caller.0.clone();
    let (class, school) = state
        .db
        .run(move |conn| -> ApiResult<(Class, School)> {
            let class =
                classes::class(conn, &id)?.ok_or_else(|| ApiError::not_found("no such class"))?;
            if p.role == Role::Teacher && !classes::teaches(conn, &p.user_id, &class.id)? {
                return Err(ApiError::not_found("no such class"));
            }
            let school = orgmod::school(conn, &class.school_id)?
                .ok_or_else(|| ApiError::not_found("no such class"))?;
            Ok((class, school))
        })
        .await?;
    authz::require(
        &caller.0,
        action,
        Place::school(&school.tenant_id, &school.id),
    )?;
    Ok((class, school))
}

async fn group(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<(DeviceGroup, School)> {
    let (group, school) = state
        .db
        .run(move |conn| -> ApiResult<(DeviceGroup, School)> {
            let g = classes::group(conn, &id)?
                .ok_or_else(|| ApiError::not_found("no such device group"))?;
            let s = orgmod::school(conn, &g.school_id)?
                .ok_or_else(|| ApiError::not_found("no such device group"))?;
            Ok((g, s))
        })
        .await?;
    authz::require(
        &caller.0,
        action,
        Place::school(&school.tenant_id, &school.id),
    )?;
    Ok((group, school))
}

async fn create_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewClass>,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let input = body.into_inner();
    let class = state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| {
                classes::create_class(conn, &s.tenant_id, &s.id, &input, &caller.0.user_id)
            })
            .map_err(org_error)
        })
        .await?;
    Ok(HttpResponse::Created().json(class))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearQuery {
    school_year: Option<String>,
}

async fn list_classes(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<YearQuery>,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::View).await?;
    let p = caller.0.clone();
    let year = q.into_inner().school_year;
    let items = state
        .db
        .run(move |conn| -> ApiResult<Vec<Class>> {
            let all = classes::classes_of_school(conn, &s.id, year.as_deref())?;
            if p.role == Role::Teacher {
                let mine: Vec<String> = classes::classes_of_teacher(conn, &p.user_id)?
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                return Ok(all.into_iter().filter(|c| mine.contains(&c.id)).collect());
            }
            Ok(all)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn my_classes(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let p = caller.0.clone();
    let (classes, groups) = state
        .db
        .run(move |conn| -> ApiResult<(Vec<Class>, Vec<DeviceGroup>)> {
            let classes = classes::classes_of_teacher(conn, &p.user_id)?;
            let groups = match &p.school_id {
                Some(s) => classes::groups_of_school(conn, s)?,
                None => Vec::new(),
            };
            Ok((classes, groups))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"classes": classes, "groups": groups})))
}

async fn get_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (c, _) = class(&state, &caller, path.into_inner(), Action::View).await?;
    let id = c.id.clone();
    let (teachers, devices) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok((
                classes::teachers_of(conn, &id)?,
                classes::device_count(conn, Membership::Class(&id))?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"class": c, "teacher_ids": teachers, "devices": devices})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Teachers {
    teacher_ids: Vec<String>,
}

async fn set_teachers(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Teachers>,
) -> ApiResult<HttpResponse> {
    let (c, s) = class(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let ids = body.into_inner().teacher_ids;
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| {
                classes::set_teachers(conn, &s.tenant_id, &c, &ids, &caller.0.user_id)
            })
            .map_err(org_error)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Devices to add or remove, by UDID or serial number.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceList {
    devices: Vec<String>,
}

/// Resolves UDIDs/serials to ids of devices in `school_id`.
fn resolve(
    conn: &mut crate::db::DbConn,
    school_id: &str,
    keys: &[String],
) -> ApiResult<Vec<String>> {
    use crate::db::schema::devices;
    use diesel::prelude::*;
    if keys.is_empty() || keys.len() > 10_000 {
        return Err(ApiError::invalid_field("devices", "1 to 10000 devices"));
    }
    let upper: Vec<String> = keys.iter().map(|k| k.to_uppercase()).collect();
    let rows: Vec<(String, Option<String>, Option<String>)> = devices::table
        .filter(devices::school_id.eq(school_id))
        .filter(
            devices::udid
                .eq_any(keys)
                .or(devices::serial_number.eq_any(&upper)),
        )
        .select((devices::id, devices::udid, devices::serial_number))
        .load(conn)?;
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            !rows.iter().any(|(_, u, s)| {
                u.as_deref() == Some(k.as_str()) || s.as_deref() == Some(k.to_uppercase().as_str())
            })
        })
        .take(20)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid_field(
            "devices",
            format!("not devices of this school: {missing:?}"),
        ));
    }
    Ok(rows.into_iter().map(|(id, _, _)| id).collect())
}

async fn change_members(
    state: &AppState,
    caller: &Caller,
    school: School,
    m: MemberTarget,
    keys: Vec<String>,
    add: bool,
) -> ApiResult<HttpResponse> {
    let actor = caller.0.user_id.clone();
    let n = state
        .db
        .run(move |conn| -> ApiResult<usize> {
            conn.write_tx(|conn| {
                let ids = resolve(conn, &school.id, &keys)?;
                let membership = match &m {
                    MemberTarget::Class(c) => Membership::Class(c),
                    MemberTarget::Group(g) => Membership::Group(g),
                };
                let n = if add {
                    classes::add_devices(conn, &school.id, membership, &ids).map_err(org_error)?
                } else {
                    classes::remove_devices(conn, membership, &ids)?
                };
                let (kind, id) = match &m {
                    MemberTarget::Class(c) => ("class", c),
                    MemberTarget::Group(g) => ("device_group", g),
                };
                crate::audit::record(
                    conn,
                    &crate::audit::Entry::new(
                        &actor,
                        if add { "add_devices" } else { "remove_devices" },
                        kind,
                    )
                    .object(id)
                    .scope(Some(&school.tenant_id), Some(&school.id))
                    .summary(serde_json::json!({"devices": ids, "changed": n})),
                )?;
                Ok(n)
            })
        })
        .await?;
    // Memberships decide which assignments reach a device.
    state.reconciler.all();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "changed": n })))
}

enum MemberTarget {
    Class(String),
    Group(String),
}

async fn add_class_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DeviceList>,
) -> ApiResult<HttpResponse> {
    let (c, s) = class(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    change_members(
        &state,
        &caller,
        s,
        MemberTarget::Class(c.id),
        body.into_inner().devices,
        true,
    )
    .await
}

async fn remove_class_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DeviceList>,
) -> ApiResult<HttpResponse> {
    let (c, s) = class(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    change_members(
        &state,
        &caller,
        s,
        MemberTarget::Class(c.id),
        body.into_inner().devices,
        false,
    )
    .await
}

async fn create_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewGroup>,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let input = body.into_inner();
    let g = state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| {
                classes::create_group(conn, &s.tenant_id, &s.id, &input, &caller.0.user_id)
            })
            .map_err(org_error)
        })
        .await?;
    Ok(HttpResponse::Created().json(g))
}

async fn list_groups(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::View).await?;
    let items = state
        .db
        .run(move |conn| classes::groups_of_school(conn, &s.id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

async fn get_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (g, _) = group(&state, &caller, path.into_inner(), Action::View).await?;
    let id = g.id.clone();
    let n = state
        .db
        .run(move |conn| {
            classes::device_count(conn, Membership::Group(&id)).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"group": g, "devices": n})))
}

async fn add_group_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DeviceList>,
) -> ApiResult<HttpResponse> {
    let (g, s) = group(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    change_members(
        &state,
        &caller,
        s,
        MemberTarget::Group(g.id),
        body.into_inner().devices,
        true,
    )
    .await
}

async fn remove_group_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DeviceList>,
) -> ApiResult<HttpResponse> {
    let (g, s) = group(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    change_members(
        &state,
        &caller,
        s,
        MemberTarget::Group(g.id),
        body.into_inner().devices,
        false,
    )
    .await
}

fn import_error(e: ImportError) -> actix_web::Either<ApiError, HttpResponse> {
    match e {
        ImportError::Db(e) => actix_web::Either::Left(e.into()),
        ImportError::Format(m) => actix_web::Either::Left(ApiError::bad_request(m)),
        ImportError::Rejected(report) => actix_web::Either::Right(
            HttpResponse::UnprocessableEntity().json(serde_json::json!({
                "error": "rows_rejected",
                "message": format!("{} of {} rows rejected; nothing was imported", report.errors.len(), report.rows),
                "report": report,
            })),
        ),
    }
}

fn csv_body(req: &HttpRequest, body: &web::Bytes) -> ApiResult<String> {
    if body.len() > import::MAX_CSV {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("CSV larger than {} bytes", import::MAX_CSV),
        ));
    }
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/csv");
    if !(ct.starts_with("text/csv")
        || ct.starts_with("text/plain")
        || ct.starts_with("application/octet-stream"))
    {
        return Err(ApiError::bad_request("send the CSV as text/csv"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the CSV must be UTF-8"))
}

async fn run_import(
    state: web::Data<AppState>,
    caller: Caller,
    s: School,
    text: String,
    devices: bool,
) -> ApiResult<HttpResponse> {
    let result = state
        .db
        .run(
            move |conn| -> ApiResult<Result<import::ImportReport, ImportError>> {
                Ok(if devices {
                    import::import_devices(conn, &s.tenant_id, &s.id, &text, &caller.0.user_id)
                } else {
                    import::import_classes(conn, &s.tenant_id, &s.id, &text, &caller.0.user_id)
                })
            },
        )
        .await?;
    match result {
        Ok(report) => {
            state.reconciler.all();
            Ok(HttpResponse::Ok().json(report))
        }
        Err(e) => match import_error(e) {
            actix_web::Either::Left(err) => Err(err),
            actix_web::Either::Right(resp) => Ok(resp),
        },
    }
}

async fn import_classes(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let text = csv_body(&req, &body)?;
    run_import(state, caller, s, text, false).await
}

async fn import_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let s = school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let text = csv_body(&req, &body)?;
    run_import(state, caller, s, text, true).await
}

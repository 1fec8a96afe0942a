//! Admin and teacher API for classes, device groups (carts), memberships and imports.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org::classes::{self, Class, DeviceGroup, Membership, NewClass, NewGroup};
use crate::org::edit::{self, ClassPatch, GroupPatch};
use crate::org::import::{self, ImportError, ImportReport};
use crate::org::{self as orgmod, School};
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
        .route("/classes/{id}", web::patch().to(patch_class))
        .route("/classes/{id}", web::delete().to(delete_class))
        .route("/classes/{id}/teachers", web::put().to(set_teachers))
        .route("/classes/{id}/devices", web::post().to(add_class_devices))
        .route(
            "/classes/{id}/devices/remove",
            web::post().to(remove_class_devices),
        )
        .route("/groups/{id}", web::get().to(get_group))
        .route("/groups/{id}", web::patch().to(patch_group))
        .route("/groups/{id}", web::delete().to(delete_group))
        .route("/groups/{id}/devices", web::post().to(add_group_devices))
        .route(
            "/groups/{id}/devices/remove",
            web::post().to(remove_group_devices),
        );
}

/// A class the caller may see (teachers: only their own), with its school.
pub(crate) async fn class(
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
            if authz::is_teacher(&p) && !classes::teaches(conn, &p.user_id, &class.id)? {
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

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/classes",
    tag = "classes",
    operation_id = "create_class",
    summary = "Create a class in a school",
    params(("id" = String, Path, description = "School id")),
    request_body = NewClass,
    responses(
        (status = 201, description = "The new class", body = Class),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 409, description = "One of that name exists", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewClass>,
) -> ApiResult<HttpResponse> {
    let class = create_class_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(class))
}

/// A new class of a school, for `caller` under the API's rules.
pub(crate) async fn create_class_as(
    state: &AppState,
    caller: &Caller,
    school_id: String,
    input: NewClass,
) -> ApiResult<Class> {
    let s = super::org::load_school(state, caller, school_id, Action::ManageSchool).await?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| classes::create_class(conn, &s.tenant_id, &s.id, &input, &actor))
                .map_err(ApiError::from)
        })
        .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct YearQuery {
    /// Only classes of this school year, e.g. `2026/27`.
    school_year: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/schools/{id}/classes",
    tag = "classes",
    operation_id = "list_classes",
    summary = "A school's classes (teachers: their own)",
    params(("id" = String, Path, description = "School id"), YearQuery),
    responses(
        (status = 200, description = "Classes", body = super::answer::ClassList),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_classes(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: crate::error::Query<YearQuery>,
) -> ApiResult<HttpResponse> {
    let s = super::org::load_school(&state, &caller, path.into_inner(), Action::View).await?;
    let p = caller.0.clone();
    let year = q.into_inner().school_year;
    let items = state
        .db
        .run(move |conn| -> ApiResult<Vec<Class>> {
            let all = classes::classes_of_school(conn, &s.id, year.as_deref())?;
            if authz::is_teacher(&p) {
                let mine: Vec<String> = classes::classes_of_teacher(conn, &p.user_id)?
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                return Ok(all.into_iter().filter(|c| mine.contains(&c.id)).collect());
            }
            Ok(all)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::ClassList::from(items)))
}

#[utoipa::path(
    get,
    path = "/api/v1/me/classes",
    tag = "classes",
    operation_id = "my_classes",
    summary = "The caller's classes and their school's device groups",
    responses(
        (status = 200, description = "Classes and device groups", body = super::answer::MyClasses),
    ),
    security(("bearer" = []))
)]
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
    Ok(HttpResponse::Ok().json(super::answer::MyClasses { classes, groups }))
}

#[utoipa::path(
    get,
    path = "/api/v1/classes/{id}",
    tag = "classes",
    operation_id = "get_class",
    summary = "One class with its teachers and device count",
    params(("id" = String, Path, description = "Class id")),
    responses(
        (status = 200, description = "The class", body = super::answer::ClassDetail),
        (status = 404, description = "No such class in the caller's scope (teachers: not theirs)", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (c, _) = class(&state, &caller, path.into_inner(), Action::View).await?;
    Ok(HttpResponse::Ok().json(class_detail(&state, c).await?))
}

/// A class with its teachers and device count, as `GET /classes/{id}` shows it.
pub(crate) async fn class_detail(
    state: &AppState,
    c: Class,
) -> ApiResult<super::answer::ClassDetail> {
    let id = c.id.clone();
    let (teacher_ids, teachers, devices) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let ids = classes::teachers_of(conn, &id)?;
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let names = crate::names::users_named(conn, &refs)?;
            let teachers = crate::names::named(&ids, &names);
            Ok((
                ids,
                teachers,
                classes::device_count(conn, Membership::Class(&id))?,
            ))
        })
        .await?;
    Ok(super::answer::ClassDetail {
        class: c,
        teacher_ids,
        teachers,
        devices,
    })
}

#[utoipa::path(
    patch,
    path = "/api/v1/classes/{id}",
    tag = "classes",
    operation_id = "update_class",
    summary = "Rename a class or move it to another school year",
    params(("id" = String, Path, description = "Class id")),
    request_body = ClassPatch,
    responses(
        (status = 200, description = "The class now", body = super::answer::ClassDetail),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such class in the caller's scope", body = ApiError),
        (status = 409, description = "The school has a class of that name in that school year", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let (c, s) = class(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let patch: ClassPatch = crate::error::parse_json(body.into_inner())?;
    let c = state
        .db
        .run(move |conn| {
            edit::update_class(conn, &s.tenant_id, &c.id, &patch, &caller.0.user_id)
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(class_detail(&state, c).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/classes/{id}",
    tag = "classes",
    operation_id = "delete_class",
    summary = "Delete a class; its devices stay in the school",
    description = "Its memberships and teacher links go; assignments to it are deleted and the \
reconciler is started, so what they installed leaves the iPads; open lesson requests for it \
are cancelled; enrollment links and ADE rules stop placing devices in it.",
    params(("id" = String, Path, description = "Class id")),
    responses(
        (status = 204, description = "Deleted; the reconciler is started"),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such class in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_class(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (c, s) = class(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    state
        .db
        .run(move |conn| {
            edit::delete_class(conn, &s.tenant_id, &c.id, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    // Its devices lost the class's assignments.
    state.reconciler.all();
    Ok(HttpResponse::NoContent().finish())
}

/// The teachers of a class.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Teachers {
    /// User ids (teachers of the class's school); replaces the current list.
    teacher_ids: Vec<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/classes/{id}/teachers",
    tag = "classes",
    operation_id = "set_class_teachers",
    summary = "Replace a class's teachers",
    params(("id" = String, Path, description = "Class id")),
    request_body = Teachers,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "A user is not a teacher of this school", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such class in the caller's scope (teachers: not theirs)", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn set_teachers(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Teachers>,
) -> ApiResult<HttpResponse> {
    set_teachers_as(
        &state,
        &caller,
        path.into_inner(),
        body.into_inner().teacher_ids,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces a class's teachers, for `caller` under the API's rules.
pub(crate) async fn set_teachers_as(
    state: &AppState,
    caller: &Caller,
    class_id: String,
    ids: Vec<String>,
) -> ApiResult<()> {
    let (c, s) = class(state, caller, class_id, Action::ManageSchool).await?;
    no_repeats("teacher_ids", &ids)?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| classes::set_teachers(conn, &s.tenant_id, &c, &ids, &actor))
                .map_err(ApiError::from)
        })
        .await
}

/// Devices to add or remove, by UDID or serial number.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DeviceList {
    /// UDIDs or serial numbers of devices of the school (1 to 10000).
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

/// A list that names something twice is a mistake worth saying (400), not a 500.
fn no_repeats(field: &str, ids: &[String]) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    match ids.iter().find(|id| !seen.insert(id.as_str())) {
        Some(twice) => Err(ApiError::invalid_field(
            field,
            format!("{twice} appears twice"),
        )),
        None => Ok(()),
    }
}

async fn change_members(
    state: &AppState,
    caller: &Caller,
    school: School,
    m: MemberTarget,
    keys: Vec<String>,
    add: bool,
) -> ApiResult<HttpResponse> {
    no_repeats("devices", &keys)?;
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
                    classes::add_devices(conn, &school.id, membership, &ids)
                        .map_err(ApiError::from)?
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
    Ok(HttpResponse::Ok().json(super::answer::Changed { changed: n }))
}

enum MemberTarget {
    Class(String),
    Group(String),
}

#[utoipa::path(
    post,
    path = "/api/v1/classes/{id}/devices",
    tag = "classes",
    operation_id = "add_class_devices",
    summary = "Add devices to a class",
    params(("id" = String, Path, description = "Class id")),
    request_body = DeviceList,
    responses(
        (status = 200, description = "Memberships added", body = super::answer::Changed),
        (status = 400, description = "No, too many, or foreign devices", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such class in the caller's scope (teachers: not theirs)", body = ApiError),
    ),
    security(("bearer" = []))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/classes/{id}/devices/remove",
    tag = "classes",
    operation_id = "remove_class_devices",
    summary = "Remove devices from a class",
    params(("id" = String, Path, description = "Class id")),
    request_body = DeviceList,
    responses(
        (status = 200, description = "Memberships removed", body = super::answer::Changed),
        (status = 400, description = "No, too many, or foreign devices", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such class in the caller's scope (teachers: not theirs)", body = ApiError),
    ),
    security(("bearer" = []))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/groups",
    tag = "classes",
    operation_id = "create_group",
    summary = "Create a device group (tablet cart) in a school",
    params(("id" = String, Path, description = "School id")),
    request_body = NewGroup,
    responses(
        (status = 201, description = "The new device group", body = DeviceGroup),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 409, description = "One of that name exists", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewGroup>,
) -> ApiResult<HttpResponse> {
    let g = create_group_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(g))
}

/// A new device group (cart) of a school, for `caller` under the API's rules.
pub(crate) async fn create_group_as(
    state: &AppState,
    caller: &Caller,
    school_id: String,
    input: NewGroup,
) -> ApiResult<DeviceGroup> {
    let s = super::org::load_school(state, caller, school_id, Action::ManageSchool).await?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| classes::create_group(conn, &s.tenant_id, &s.id, &input, &actor))
                .map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/schools/{id}/groups",
    tag = "classes",
    operation_id = "list_groups",
    summary = "A school's device groups",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 200, description = "Device groups", body = super::answer::DeviceGroupList),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_groups(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let s = super::org::load_school(&state, &caller, path.into_inner(), Action::View).await?;
    let items = state
        .db
        .run(move |conn| classes::groups_of_school(conn, &s.id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::DeviceGroupList::from(items)))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "classes",
    operation_id = "get_group",
    summary = "One device group with its device count",
    params(("id" = String, Path, description = "Device group id")),
    responses(
        (status = 200, description = "The device group", body = super::answer::GroupDetail),
        (status = 404, description = "No such device group in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (g, _) = group(&state, &caller, path.into_inner(), Action::View).await?;
    Ok(HttpResponse::Ok().json(group_detail(&state, g).await?))
}

/// A device group with its device count, as `GET /groups/{id}` shows it.
async fn group_detail(state: &AppState, g: DeviceGroup) -> ApiResult<super::answer::GroupDetail> {
    let id = g.id.clone();
    let n = state
        .db
        .run(move |conn| {
            classes::device_count(conn, Membership::Group(&id)).map_err(ApiError::from)
        })
        .await?;
    Ok(super::answer::GroupDetail {
        group: g,
        devices: n,
    })
}

#[utoipa::path(
    patch,
    path = "/api/v1/groups/{id}",
    tag = "classes",
    operation_id = "update_group",
    summary = "Rename a device group (cart) or change its kind",
    params(("id" = String, Path, description = "Device group id")),
    request_body = GroupPatch,
    responses(
        (status = 200, description = "The device group now", body = super::answer::GroupDetail),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such device group in the caller's scope", body = ApiError),
        (status = 409, description = "The school has a device group of that name", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let (g, s) = group(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let patch: GroupPatch = crate::error::parse_json(body.into_inner())?;
    let g = state
        .db
        .run(move |conn| {
            edit::update_group(conn, &s.tenant_id, &g.id, &patch, &caller.0.user_id)
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(group_detail(&state, g).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    tag = "classes",
    operation_id = "delete_group",
    summary = "Delete a device group (cart); its devices stay in the school",
    description = "Its memberships go; assignments to it are deleted and the reconciler is \
started, so what they installed leaves the iPads; open lesson requests for it are cancelled; \
enrollment links and ADE rules stop placing devices in it.",
    params(("id" = String, Path, description = "Device group id")),
    responses(
        (status = 204, description = "Deleted; the reconciler is started"),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such device group in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (g, s) = group(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    state
        .db
        .run(move |conn| {
            edit::delete_group(conn, &s.tenant_id, &g.id, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    // Its devices lost the group's assignments.
    state.reconciler.all();
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/devices",
    tag = "classes",
    operation_id = "add_group_devices",
    summary = "Add devices to a device group",
    params(("id" = String, Path, description = "Device group id")),
    request_body = DeviceList,
    responses(
        (status = 200, description = "Memberships added", body = super::answer::Changed),
        (status = 400, description = "No, too many, or foreign devices", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such device group in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/devices/remove",
    tag = "classes",
    operation_id = "remove_group_devices",
    summary = "Remove devices from a device group",
    params(("id" = String, Path, description = "Device group id")),
    request_body = DeviceList,
    responses(
        (status = 200, description = "Memberships removed", body = super::answer::Changed),
        (status = 400, description = "No, too many, or foreign devices", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such device group in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
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

pub(crate) fn import_error(e: ImportError) -> actix_web::Either<ApiError, HttpResponse> {
    match e {
        ImportError::Db(e) => actix_web::Either::Left(e.into()),
        ImportError::Format(m) => actix_web::Either::Left(ApiError::bad_request(m)),
        ImportError::Rejected(report) => actix_web::Either::Right(
            HttpResponse::UnprocessableEntity().json(super::answer::ImportRejected {
                error: "rows_rejected".into(),
                message: format!(
                    "{} of {} rows rejected; nothing was imported",
                    report.errors.len(),
                    report.rows
                ),
                report,
            }),
        ),
    }
}

pub(crate) fn csv_body(req: &HttpRequest, body: &web::Bytes) -> ApiResult<String> {
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

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/import/classes",
    tag = "classes",
    operation_id = "import_classes",
    summary = "Import classes and their teachers from CSV (all or nothing)",
    params(("id" = String, Path, description = "School id")),
    request_body(content = String, content_type = "text/csv", description = "CSV; columns `class`, `school_year`, optional `teacher_email`, `teacher_name`"),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 400, description = "Not UTF-8 text/csv, or a malformed file", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 413, description = "Larger than 5 MiB", body = ApiError),
        (status = 422, description = "Rows were rejected; nothing was imported", body = super::answer::ImportRejected),
    ),
    security(("bearer" = []))
)]
async fn import_classes(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: crate::error::Upload,
) -> ApiResult<HttpResponse> {
    let s =
        super::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let text = csv_body(&req, &body.0)?;
    run_import(state, caller, s, text, false).await
}

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/import/devices",
    tag = "classes",
    operation_id = "import_devices",
    summary = "Import devices by serial number, with class and cart, from CSV (all or nothing)",
    params(("id" = String, Path, description = "School id")),
    request_body(content = String, content_type = "text/csv", description = "CSV; column `serial`, optional `class`, `school_year`, `cart`, `name`"),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 400, description = "Not UTF-8 text/csv, or a malformed file", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 413, description = "Larger than 5 MiB", body = ApiError),
        (status = 422, description = "Rows were rejected; nothing was imported", body = super::answer::ImportRejected),
    ),
    security(("bearer" = []))
)]
async fn import_devices(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: crate::error::Upload,
) -> ApiResult<HttpResponse> {
    let s =
        super::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let text = csv_body(&req, &body.0)?;
    run_import(state, caller, s, text, true).await
}

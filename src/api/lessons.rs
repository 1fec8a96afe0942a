//! The teacher's side: lesson requests, approval, readiness; and the school's lesson
//! settings (periods, rules, approved apps).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::assign::TargetKind;
use crate::error::{ApiError, ApiResult};
use crate::lessons::readiness::Readiness;
use crate::lessons::{self, readiness, LessonRequest, LessonSettings, NewRequest};
use crate::org::{self, classes};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/lesson-requests", web::post().to(create))
        .route("/lesson-requests", web::get().to(list))
        .route("/lesson-requests/{id}", web::get().to(get))
        .route(
            "/lesson-requests/{id}/readiness",
            web::get().to(get_readiness),
        )
        .route("/lesson-requests/{id}/approve", web::post().to(approve))
        .route("/lesson-requests/{id}/reject", web::post().to(reject))
        .route("/lesson-requests/{id}/cancel", web::post().to(cancel))
        .route("/schools/{id}/lesson-settings", web::get().to(get_settings))
        .route("/schools/{id}/lesson-settings", web::put().to(put_settings));
}

/// The devices a request targets, to reconcile after a change.
fn target_devices(conn: &mut crate::db::DbConn, r: &LessonRequest) -> ApiResult<Vec<String>> {
    Ok(lessons::target_devices(conn, r)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

#[utoipa::path(
    post,
    path = "/api/v1/lesson-requests",
    tag = "lessons",
    operation_id = "create_lesson_request",
    summary = "A teacher asks for apps for a lesson of a class or cart",
    request_body = NewRequest,
    responses(
        (status = 201, description = "The request (approved at once when every app is on the school's list)", body = lessons::RequestView),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewRequest>,
) -> ApiResult<HttpResponse> {
    let view = request_as(&state, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

/// A lesson request by `caller` under the API's rules (the API's POST and the console's
/// form).
pub(crate) async fn request_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    input: NewRequest,
) -> ApiResult<lessons::RequestView> {
    let p = caller.clone();
    let notifier = state.notifier.clone();
    let (request, devices) = state
        .db
        .run(move |conn| -> ApiResult<(LessonRequest, Vec<String>)> {
            // Which school: the class's or the cart's.
            let school_id = match input.target_kind {
                TargetKind::Class => {
                    let c = classes::class(conn, &input.target_id)?
                        .ok_or_else(|| ApiError::not_found("no such class"))?;
                    if authz::is_teacher(&p) && !classes::teaches(conn, &p.user_id, &c.id)? {
                        // The class exists in the teacher's school but is not theirs: 403; elsewhere: 404.
                        return Err(if p.school_id.as_deref() == Some(c.school_id.as_str()) {
                            ApiError::forbidden("you do not teach this class")
                        } else {
                            ApiError::not_found("no such class")
                        });
                    }
                    c.school_id
                }
                TargetKind::Group => {
                    classes::group(conn, &input.target_id)?
                        .ok_or_else(|| ApiError::not_found("no such device group"))?
                        .school_id
                }
                _ => return Err(ApiError::invalid_field("target_kind", "class or group")),
            };
            let s = org::school(conn, &school_id)?
                .ok_or_else(|| ApiError::not_found("no such school"))?;
            authz::require(&p, Action::View, Place::school(&s.tenant_id, &s.id))?;
            let r = lessons::create(
                conn,
                &s.tenant_id,
                &s.id,
                &s.timezone,
                &p.user_id,
                &input,
                chrono::Utc::now(),
                &notifier,
            )
            .map_err(ApiError::from)?;
            let devices = target_devices(conn, &r)?;
            Ok((r, devices))
        })
        .await?;
    state.notifier.wake();
    if request.status == lessons::RequestStatus::Approved {
        state.reconciler.devices(devices);
    }
    present_one(state, request).await
}

/// Requests with the names people read beside their ids.
pub(crate) async fn present(
    state: &AppState,
    requests: Vec<LessonRequest>,
) -> ApiResult<Vec<lessons::RequestView>> {
    state
        .db
        .run(move |conn| -> ApiResult<_> { Ok(lessons::views(conn, requests)?) })
        .await
}

/// One request, presented.
async fn present_one(state: &AppState, request: LessonRequest) -> ApiResult<lessons::RequestView> {
    present(state, vec![request])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a presented request went missing"))
}

/// Loads a request the caller may see: teachers their own, admins in scope.
async fn load(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<LessonRequest> {
    load_as(state, &caller.0, id, action).await
}

/// [`load`] for a principal (the console's pages).
pub(crate) async fn load_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    id: String,
    action: Action,
) -> ApiResult<LessonRequest> {
    let r = state
        .db
        .run(move |conn| lessons::get(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such lesson request"))?;
    if authz::is_teacher(caller) {
        if r.teacher_id != caller.user_id {
            return Err(ApiError::not_found("no such lesson request"));
        }
        if action != Action::View {
            return Err(ApiError::forbidden("a school admin decides on requests"));
        }
        return Ok(r);
    }
    authz::require(caller, action, Place::school(&r.tenant_id, &r.school_id))?;
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    school_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/lesson-requests",
    tag = "lessons",
    operation_id = "list_lesson_requests",
    summary = "Lesson requests: teachers their own, admins those of their scope",
    params(
        ("status" = Option<String>, Query, description = "pending, approved, rejected, cancelled"),
        ("school_id" = Option<String>, Query, description = "School"),
        ("limit" = Option<i64>, Query, description = "Page size (default 50, at most 500)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of requests", body = super::answer::RequestPage),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let limit = crate::paging::limit(q.limit).map_err(|m| ApiError::invalid_field("limit", m))?;
    if let Some(s) = &q.status {
        super::errors::parse_word::<lessons::RequestStatus>("status", s)?;
    }
    let p = caller.0.clone();
    let page = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let scope = request_scope(&p, q.status.as_deref(), q.school_id.as_deref());
            Ok(lessons::list(conn, &scope, q.cursor.as_deref(), limit)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::RequestPage {
        items: present(&state, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// Which requests `p` lists: teachers their own, admins their scope's (optionally one
/// school's).
pub(crate) fn request_scope<'a>(
    p: &'a crate::accounts::Principal,
    status: Option<&'a str>,
    school_id: Option<&'a str>,
) -> lessons::RequestScope<'a> {
    match authz::list_scope(p) {
        authz::ListScope::Teacher { user, .. } => lessons::RequestScope {
            teacher: Some(user),
            status,
            ..Default::default()
        },
        authz::ListScope::School(s) => lessons::RequestScope {
            school: Some(s),
            status,
            ..Default::default()
        },
        authz::ListScope::Authority(t) => lessons::RequestScope {
            school: school_id,
            tenant: Some(t),
            status,
            ..Default::default()
        },
        authz::ListScope::Everything => lessons::RequestScope {
            school: school_id,
            status,
            ..Default::default()
        },
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/lesson-requests/{id}",
    tag = "lessons",
    operation_id = "get_lesson_request",
    summary = "One lesson request",
    params(("id" = String, Path, description = "Lesson request id")),
    responses(
        (status = 200, description = "The request", body = lessons::RequestView),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let r = load(&state, &caller, path.into_inner(), Action::View).await?;
    Ok(HttpResponse::Ok().json(present_one(&state, r).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/lesson-requests/{id}/readiness",
    tag = "lessons",
    operation_id = "lesson_readiness",
    summary = "Per device installed / pending / failed / offline, and N of M ready",
    params(("id" = String, Path, description = "Lesson request id")),
    responses(
        (status = 200, description = "Readiness", body = Readiness),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_readiness(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let ready = readiness_as(&state, &caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ready))
}

/// A request's readiness now, for `caller` under the API's rules.
pub(crate) async fn readiness_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    id: String,
) -> ApiResult<Readiness> {
    let r = load_as(state, caller, id, Action::View).await?;
    let blocked = state.licences.blocked();
    state
        .db
        .run(move |conn| {
            readiness::readiness(conn, &r, chrono::Utc::now(), &blocked).map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    post,
    path = "/api/v1/lesson-requests/{id}/approve",
    tag = "lessons",
    operation_id = "approve_lesson_request",
    summary = "A school (or authority) admin approves a pending request",
    params(("id" = String, Path, description = "Lesson request id")),
    responses(
        (status = 200, description = "The approved request", body = lessons::RequestView),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn approve(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let updated = approve_as(&state, &caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(match updated {
        Some(r) => Some(present_one(&state, r).await?),
        None => None,
    }))
}

/// Approves a pending request for `caller` under the API's rules; its devices are
/// reconciled.
pub(crate) async fn approve_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    id: String,
) -> ApiResult<Option<LessonRequest>> {
    let r = load_as(state, caller, id, Action::ManageSchool).await?;
    let (actor, notifier) = (caller.user_id.clone(), state.notifier.clone());
    let (updated, devices) = state
        .db
        .run(
            move |conn| -> ApiResult<(Option<LessonRequest>, Vec<String>)> {
                let tz = org::school(conn, &r.school_id)?
                    .map(|s| s.timezone)
                    .unwrap_or_else(|| "Europe/Berlin".into());
                lessons::approve(conn, &r, &tz, &actor, &notifier).map_err(ApiError::from)?;
                Ok((lessons::get(conn, &r.id)?, target_devices(conn, &r)?))
            },
        )
        .await?;
    state.notifier.wake();
    state.reconciler.devices(devices);
    Ok(updated)
}

/// Body of a rejection.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/lesson-requests/{id}/reject",
    tag = "lessons",
    operation_id = "reject_lesson_request",
    summary = "A school (or authority) admin rejects a pending request with a reason",
    params(("id" = String, Path, description = "Lesson request id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "The rejected request", body = lessons::RequestView),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn reject(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<RejectBody>,
) -> ApiResult<HttpResponse> {
    let updated = reject_as(
        &state,
        &caller.0,
        path.into_inner(),
        body.into_inner().reason,
    )
    .await?;
    Ok(HttpResponse::Ok().json(match updated {
        Some(r) => Some(present_one(&state, r).await?),
        None => None,
    }))
}

/// Rejects a pending request with a reason, for `caller` under the API's rules.
pub(crate) async fn reject_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    id: String,
    reason: String,
) -> ApiResult<Option<LessonRequest>> {
    let r = load_as(state, caller, id, Action::ManageSchool).await?;
    let (actor, notifier) = (caller.user_id.clone(), state.notifier.clone());
    let updated = state
        .db
        .run(move |conn| -> ApiResult<Option<LessonRequest>> {
            lessons::reject(conn, &r, &reason, &actor, &notifier).map_err(ApiError::from)?;
            Ok(lessons::get(conn, &r.id)?)
        })
        .await?;
    state.notifier.wake();
    Ok(updated)
}

#[utoipa::path(
    post,
    path = "/api/v1/lesson-requests/{id}/cancel",
    tag = "lessons",
    operation_id = "cancel_lesson_request",
    summary = "Withdraw a request; its apps are removed where nothing else wants them",
    params(("id" = String, Path, description = "Lesson request id")),
    responses(
        (status = 200, description = "Cancelled", body = super::answer::RequestCancelled),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn cancel(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    cancel_as(&state, &caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(super::answer::RequestCancelled { cancelled: true }))
}

/// Withdraws a request for `caller` (teachers their own, admins in scope); its devices
/// are reconciled.
pub(crate) async fn cancel_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    id: String,
) -> ApiResult<()> {
    // Teachers may withdraw their own requests.
    let r = match load_as(state, caller, id.clone(), Action::View).await {
        Ok(r) if authz::is_teacher(caller) => r,
        _ => load_as(state, caller, id, Action::ManageSchool).await?,
    };
    let actor = caller.user_id.clone();
    let devices = state
        .db
        .run(move |conn| -> ApiResult<Vec<String>> {
            lessons::cancel(conn, &r, &actor).map_err(ApiError::from)?;
            target_devices(conn, &r)
        })
        .await?;
    state.reconciler.devices(devices);
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/schools/{id}/lesson-settings",
    tag = "lessons",
    operation_id = "get_lesson_settings",
    summary = "A school's periods, rules and approved apps",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 200, description = "Settings", body = LessonSettings),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_settings(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let s = super::org::load_school(&state, &caller, path.into_inner(), Action::View).await?;
    let settings = state
        .db
        .run(move |conn| lessons::settings(conn, &s.id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(settings))
}

#[utoipa::path(
    put,
    path = "/api/v1/schools/{id}/lesson-settings",
    tag = "lessons",
    operation_id = "put_lesson_settings",
    summary = "Set a school's periods, rules and approved apps",
    params(("id" = String, Path, description = "School id")),
    request_body = LessonSettings,
    responses(
        (status = 200, description = "Settings", body = LessonSettings),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Not allowed for this role", body = ApiError),
        (status = 404, description = "Not found or not visible", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn put_settings(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<LessonSettings>,
) -> ApiResult<HttpResponse> {
    let s =
        super::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let input = body.into_inner();
    let actor = caller.0.user_id.clone();
    let saved = state
        .db
        .run(move |conn| -> ApiResult<LessonSettings> {
            conn.write_tx(|conn| lessons::save_settings(conn, &s.tenant_id, &s.id, &input, &actor))
                .map_err(ApiError::from)?;
            Ok(lessons::settings(conn, &s.id)?)
        })
        .await?;
    // Assignments in the school's periods follow moved periods: plan again (and re-arm
    // the timer, which may point at a period's old start).
    state.reconciler.all();
    Ok(HttpResponse::Ok().json(saved))
}

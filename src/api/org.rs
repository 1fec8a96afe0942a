//! Admin API for school authorities, schools and enrollment tokens.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::enrollment::tokens::{self, EnrollmentToken, NewToken};
use crate::enrollment::EnrollmentPolicy;
use crate::error::{ApiError, ApiResult};
use crate::org::edit::{self, SchoolPatch, TenantPatch};
use crate::org::{self, NewSchool, NewTenant, School, Tenant};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants", web::post().to(create_tenant))
        .route("/tenants", web::get().to(list_tenants))
        .route("/tenants/{id}", web::get().to(get_tenant))
        .route("/tenants/{id}", web::patch().to(patch_tenant))
        .route("/tenants/{id}", web::delete().to(delete_tenant))
        .route("/tenants/{id}/schools", web::post().to(create_school))
        .route(
            "/tenants/{id}/enrollment-policy",
            web::get().to(get_enrollment_policy),
        )
        .route(
            "/tenants/{id}/enrollment-policy",
            web::put().to(put_enrollment_policy),
        )
        .route("/schools", web::get().to(list_schools))
        .route("/schools/{id}", web::get().to(get_school))
        .route("/schools/{id}", web::patch().to(patch_school))
        .route("/schools/{id}", web::delete().to(delete_school))
        .route(
            "/schools/{id}/enrollment-tokens",
            web::post().to(create_token),
        )
        .route(
            "/schools/{id}/enrollment-tokens",
            web::get().to(list_tokens),
        )
        .route(
            "/enrollment-tokens/{id}/revoke",
            web::post().to(revoke_token),
        );
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "organisation",
    operation_id = "create_tenant",
    summary = "Create a school authority (district admins)",
    request_body = NewTenant,
    responses(
        (status = 201, description = "The new school authority", body = Tenant),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "Only district admins create school authorities", body = ApiError),
        (status = 409, description = "The slug is taken", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewTenant>,
) -> ApiResult<HttpResponse> {
    let tenant = create_tenant_as(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(tenant))
}

/// A new school authority, for `caller` under the API's rules (district admins).
pub(crate) async fn create_tenant_as(
    state: &AppState,
    caller: &Caller,
    input: NewTenant,
) -> ApiResult<Tenant> {
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| org::create_tenant(conn, &input, &actor).map_err(ApiError::from))
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "organisation",
    operation_id = "list_tenants",
    summary = "The school authorities the caller may see",
    responses(
        (status = 200, description = "School authorities", body = super::answer::TenantList),
    ),
    security(("bearer" = []))
)]
async fn list_tenants(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let items = tenants_as(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(super::answer::TenantList::from(items)))
}

/// The school authorities `caller` may see.
pub(crate) async fn tenants_as(state: &AppState, caller: &Caller) -> ApiResult<Vec<Tenant>> {
    let all = state
        .db
        .run(|conn| org::list_tenants(conn).map_err(ApiError::from))
        .await?;
    Ok(all
        .into_iter()
        .filter(|t| authz::can_see(&caller.0, Place::tenant(&t.id)))
        .collect())
}

/// A school authority the caller may `action` on (404 outside scope, 403 for the role).
pub(crate) async fn load_tenant(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<Tenant> {
    let tenant = state
        .db
        .run(move |conn| org::tenant(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such school authority"))?;
    authz::require(&caller.0, action, Place::tenant(&tenant.id))?;
    Ok(tenant)
}

/// A school the caller may `action` on (404 outside scope, 403 for the role).
pub(crate) async fn load_school(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<School> {
    let school = state
        .db
        .run(move |conn| org::school(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such school"))?;
    authz::require(
        &caller.0,
        action,
        Place::school(&school.tenant_id, &school.id),
    )?;
    Ok(school)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}",
    tag = "organisation",
    operation_id = "get_tenant",
    summary = "One school authority",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    responses(
        (status = 200, description = "The school authority", body = Tenant),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = load_tenant(&state, &caller, path.into_inner(), Action::View).await?;
    Ok(HttpResponse::Ok().json(tenant))
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/schools",
    tag = "organisation",
    operation_id = "create_school",
    summary = "Create a school in a school authority",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    request_body = NewSchool,
    responses(
        (status = 201, description = "The new school", body = School),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
        (status = 409, description = "A school of that name exists", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewSchool>,
) -> ApiResult<HttpResponse> {
    let school = create_school_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(school))
}

/// A new school of an authority, for `caller` under the API's rules (who manages the
/// authority).
pub(crate) async fn create_school_as(
    state: &AppState,
    caller: &Caller,
    tenant_id: String,
    input: NewSchool,
) -> ApiResult<School> {
    let tenant = load_tenant(state, caller, tenant_id, Action::ManageTenant).await?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            org::create_school(conn, &tenant.id, &input, &actor).map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{id}",
    tag = "organisation",
    operation_id = "update_tenant",
    summary = "Change a school authority's name, slug or re-enrollment rule (district and authority admins)",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    request_body = TenantPatch,
    responses(
        (status = 200, description = "The school authority now", body = Tenant),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
        (status = 409, description = "The slug is taken, or the authority has devices (the slug names their enrollment profile)", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let tenant = load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let patch: TenantPatch = crate::error::parse_json(body.into_inner())?;
    let tenant = state
        .db
        .run(move |conn| {
            edit::update_tenant(conn, &tenant.id, &patch, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(tenant))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{id}",
    tag = "organisation",
    operation_id = "delete_tenant",
    summary = "Delete a school authority nothing hangs on any more (district admins)",
    description = "Refused (409, naming what is left) while the authority has schools, devices, \
users or Apple tokens; otherwise it is deleted with its push certificate, calendar, catalog and \
assignments.",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only district admins delete school authorities", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
        (status = 409, description = "Schools, devices, users or Apple tokens still belong to it", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_tenant(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = load_tenant(&state, &caller, path.into_inner(), Action::View).await?;
    // Creating authorities is the district's; so is removing one.
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    state
        .db
        .run(move |conn| {
            edit::delete_tenant(conn, &tenant.id, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    patch,
    path = "/api/v1/schools/{id}",
    tag = "organisation",
    operation_id = "update_school",
    summary = "Change a school's name or time zone (district and authority admins)",
    params(("id" = String, Path, description = "School id")),
    request_body = SchoolPatch,
    responses(
        (status = 200, description = "The school now", body = School),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 409, description = "Another school of the authority has that name", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn patch_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let school = load_school(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let patch: SchoolPatch = crate::error::parse_json(body.into_inner())?;
    let school = state
        .db
        .run(move |conn| {
            edit::update_school(conn, &school.id, &patch, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    // Schedules are evaluated in the school's time zone: timers follow a new one at once.
    state.reconciler.all();
    Ok(HttpResponse::Ok().json(school))
}

#[utoipa::path(
    delete,
    path = "/api/v1/schools/{id}",
    tag = "organisation",
    operation_id = "delete_school",
    summary = "Delete a school nothing hangs on any more (district and authority admins)",
    description = "Refused (409, naming what is left, with counts) while devices, users, \
classes, device groups or lesson requests belong to it; otherwise it is deleted with its \
own settings (enrollment links, ADE profile and rules, lesson rules, approved apps, \
calendar, its catalog profiles and assignments).",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 409, description = "Devices, users, classes, device groups or lesson requests still belong to it", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let school = load_school(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    state
        .db
        .run(move |conn| {
            edit::delete_school(conn, &school.id, &caller.0.user_id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Query of `GET /schools`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SchoolQuery {
    /// Only schools of this authority.
    tenant_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/schools",
    tag = "organisation",
    operation_id = "list_schools",
    summary = "The schools the caller may see",
    params(SchoolQuery),
    responses(
        (status = 200, description = "Schools", body = super::answer::SchoolList),
    ),
    security(("bearer" = []))
)]
async fn list_schools(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<SchoolQuery>,
) -> ApiResult<HttpResponse> {
    let items = schools_as(&state, &caller, q.into_inner().tenant_id).await?;
    Ok(HttpResponse::Ok().json(super::answer::SchoolList::from(items)))
}

/// The schools `caller` may see (optionally of one authority), with names.
pub(crate) async fn schools_as(
    state: &AppState,
    caller: &Caller,
    tenant: Option<String>,
) -> ApiResult<Vec<org::SchoolView>> {
    let all = state
        .db
        .run(move |conn| org::list_schools(conn, tenant.as_deref()).map_err(ApiError::from))
        .await?;
    let items: Vec<School> = all
        .into_iter()
        .filter(|s| authz::can_see(&caller.0, Place::school(&s.tenant_id, &s.id)))
        .collect();
    state
        .db
        .run(move |conn| org::schools_with_names(conn, items).map_err(ApiError::from))
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/schools/{id}",
    tag = "organisation",
    operation_id = "get_school",
    summary = "One school",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 200, description = "The school", body = School),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_school(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let school = load_school(&state, &caller, path.into_inner(), Action::View).await?;
    Ok(HttpResponse::Ok().json(school))
}

/// A token with its enrollment URL.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EnrollmentTokenView)]
pub(crate) struct TokenView {
    #[serde(flatten)]
    pub(crate) token: EnrollmentToken,
    /// The secret part of the URL (kept sealed; shown to the school's admins).
    #[serde(rename = "token")]
    pub(crate) secret: String,
    /// Open this on the iPad (or encode it in a QR code) to enroll.
    pub(crate) url: String,
    /// The name of the class its devices join.
    pub(crate) class_name: Option<String>,
    /// The name of the cart its devices join.
    pub(crate) group_name: Option<String>,
}

/// Names of the classes and carts `tokens` put devices in (one query each).
fn token_names(
    conn: &mut crate::db::DbConn,
    tokens: &[EnrollmentToken],
) -> diesel::QueryResult<(crate::names::Names, crate::names::Names)> {
    use crate::names::{self, ids};
    Ok((
        names::classes_named(conn, &ids(tokens, |t| t.class_id.as_deref()))?,
        names::groups_named(conn, &ids(tokens, |t| t.group_id.as_deref()))?,
    ))
}

fn view(
    state: &AppState,
    token: EnrollmentToken,
    secret: Option<String>,
    (classes, groups): &(crate::names::Names, crate::names::Names),
) -> TokenView {
    let secret = secret
        .or_else(|| tokens::secret_of(&token, &state.secrets))
        .unwrap_or_default();
    TokenView {
        url: format!("{}/enroll/{}", state.settings.base_url(), secret),
        secret,
        class_name: crate::names::name(classes, token.class_id.as_deref()),
        group_name: crate::names::name(groups, token.group_id.as_deref()),
        token,
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/enrollment-tokens",
    tag = "organisation",
    operation_id = "create_enrollment_token",
    summary = "Create an enrollment token (URL) for a school",
    params(("id" = String, Path, description = "School id")),
    request_body(content = Option<NewToken>, description = "Optional: without a body the token has no limits"),
    responses(
        (status = 201, description = "The new token with its enrollment URL", body = TokenView),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
        (status = 409, description = "The school authority has no push certificate yet", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_token(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Option<web::Json<NewToken>>,
) -> ApiResult<HttpResponse> {
    let input = body.map(web::Json::into_inner).unwrap_or_default();
    let v = create_link_as(&state, &caller, path.into_inner(), input).await?;
    Ok(HttpResponse::Created().json(v))
}

/// A new enrollment link of a school, for `caller` under the API's rules.
pub(crate) async fn create_link_as(
    state: &AppState,
    caller: &Caller,
    school_id: String,
    input: NewToken,
) -> ApiResult<TokenView> {
    let school = load_school(state, caller, school_id, Action::ManageSchool).await?;
    let secrets = state.secrets.clone();
    let actor = caller.0.user_id.clone();
    let (token, secret, names) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let tenant = org::tenant(conn, &school.tenant_id)?.ok_or_else(|| ApiError::not_found("no such school authority"))?;
            if tenant.push_topic.is_none() {
                return Err(ApiError::conflict(format!(
                    "school authority {:?} has no push certificate (topic) yet: upload one before enrolling devices",
                    tenant.name
                )));
            }
            // A class or cart the devices should land in must be one of this school's.
            if let Some(c) = &input.class_id {
                if crate::org::classes::class(conn, c)?.is_none_or(|c| c.school_id != school.id) {
                    return Err(ApiError::invalid_field("class_id", "not a class of this school"));
                }
            }
            if let Some(g) = &input.group_id {
                if crate::org::classes::group(conn, g)?.is_none_or(|g| g.school_id != school.id) {
                    return Err(ApiError::invalid_field("group_id", "not a device group of this school"));
                }
            }
            let (token, secret) = tokens::create(conn, &secrets, &school.tenant_id, &school.id, &input, &actor)?;
            let names = token_names(conn, std::slice::from_ref(&token))?;
            Ok((token, secret, names))
        })
        .await?;
    Ok(view(state, token, Some(secret), &names))
}

#[utoipa::path(
    get,
    path = "/api/v1/schools/{id}/enrollment-tokens",
    tag = "organisation",
    operation_id = "list_enrollment_tokens",
    summary = "A school's enrollment tokens",
    params(("id" = String, Path, description = "School id")),
    responses(
        (status = 200, description = "Tokens with their enrollment URLs", body = super::answer::EnrollmentTokenList),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_tokens(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let items = links_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(super::answer::EnrollmentTokenList::from(items)))
}

/// A school's enrollment links with their URLs, for `caller` under the API's rules.
pub(crate) async fn links_as(
    state: &AppState,
    caller: &Caller,
    school_id: String,
) -> ApiResult<Vec<TokenView>> {
    let school = load_school(state, caller, school_id, Action::ManageSchool).await?;
    let (items, names) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let items = tokens::list(conn, &school.id)?;
            let names = token_names(conn, &items)?;
            Ok((items, names))
        })
        .await?;
    Ok(items
        .into_iter()
        .map(|t| view(state, t, None, &names))
        .collect())
}

#[utoipa::path(
    post,
    path = "/api/v1/enrollment-tokens/{id}/revoke",
    tag = "organisation",
    operation_id = "revoke_enrollment_token",
    summary = "Revoke an enrollment token",
    params(("id" = String, Path, description = "Enrollment token id")),
    responses(
        (status = 200, description = "Revoked", body = super::answer::Revoked),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such enrollment token in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn revoke_token(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let token = state
        .db
        .run(move |conn| tokens::get_link(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such enrollment token"))?;
    authz::require(
        &caller.0,
        Action::ManageSchool,
        Place::school(&token.tenant_id, &token.school_id),
    )?;
    let actor = caller.0.user_id.clone();
    let t = token.clone();
    state
        .db
        .run(move |conn| tokens::revoke(conn, &t, &actor).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::Revoked { revoked: token.id }))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/enrollment-policy",
    tag = "organisation",
    operation_id = "get_enrollment_policy",
    summary = "How a school authority lets known iPads enroll again",
    params(("id" = String, Path, description = "School authority id")),
    responses(
        (status = 200, description = "The policy", body = EnrollmentPolicy),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_enrollment_policy(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = load_tenant(&state, &caller, path.into_inner(), Action::View).await?;
    let policy = state
        .db
        .run(move |conn| crate::enrollment::policy(conn, &tenant.id).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(policy))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/enrollment-policy",
    tag = "organisation",
    operation_id = "put_enrollment_policy",
    summary = "Require an admin's release before a known iPad enrolls again (authority admins)",
    params(("id" = String, Path, description = "School authority id")),
    request_body = EnrollmentPolicy,
    responses(
        (status = 200, description = "The policy now", body = EnrollmentPolicy),
        (status = 403, description = "Only district and authority admins set it", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn put_enrollment_policy(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<EnrollmentPolicy>,
) -> ApiResult<HttpResponse> {
    let tenant = load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let policy = body.into_inner();
    let actor = caller.0.user_id.clone();
    let policy = state
        .db
        .run(move |conn| {
            crate::enrollment::set_policy(conn, &tenant.id, policy, &actor).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(policy))
}

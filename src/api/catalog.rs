//! Admin API for the catalog (apps, profiles, templates), assignments, school
//! calendars, and the desired-vs-actual views.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::accounts::Principal;
use crate::assign::schedule::{Calendar, ScheduleSpec};
use crate::assign::{self, views, ItemKind, NewAssignment, TargetKind};
use crate::catalog::{self, profiles as templates, App, NewApp, Profile};
use crate::error::{ApiError, ApiResult};
use crate::org::{self, classes};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/apps", web::post().to(create_app))
        .route("/apps", web::get().to(list_apps))
        .route("/apps/{id}", web::get().to(get_app))
        .route("/apps/{id}", web::patch().to(update_app))
        .route("/apps/{id}", web::delete().to(delete_app))
        .route("/profiles", web::post().to(upload_profile))
        .route("/profiles", web::get().to(list_profiles))
        .route("/profiles/{id}", web::get().to(get_profile))
        .route("/profiles/{id}", web::patch().to(update_profile))
        .route("/profiles/{id}", web::delete().to(delete_profile))
        .route("/profile-templates", web::get().to(list_templates))
        .route("/profiles/from-template", web::post().to(from_template))
        .route("/assignments", web::post().to(create_assignment))
        .route("/assignments", web::get().to(list_assignments))
        .route("/assignments/{id}", web::get().to(get_assignment))
        .route("/assignments/{id}", web::patch().to(update_assignment))
        .route("/assignments/{id}", web::delete().to(delete_assignment))
        .route("/tenants/{id}/calendar", web::post().to(tenant_calendar))
        .route("/schools/{id}/calendar", web::post().to(school_calendar))
        .route("/devices/{key}/state", web::get().to(device_state))
        .route("/reconcile", web::post().to(reconcile_now));
}

/// Catalog items belong to an authority; only district admins make district-wide ones.
fn catalog_place(p: &Principal, tenant_id: Option<&str>) -> ApiResult<()> {
    match tenant_id {
        Some(t) => authz::require(p, Action::ManageTenant, Place::tenant(t)),
        None => authz::require(p, Action::ManageDistrict, Place::default()),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/apps",
    tag = "catalog",
    operation_id = "create_app",
    summary = "Add an App Store or in-house app to the catalog",
    request_body = NewApp,
    responses(
        (status = 201, description = "The new app", body = App),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this authority (district-wide items: district admins only)", body = ApiError),
        (status = 404, description = "The authority is outside the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_app(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewApp>,
) -> ApiResult<HttpResponse> {
    let app = create_app_as(&state, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(app))
}

/// Adds an app for `p` under the API's rules (the API's POST and the console's form).
pub(crate) async fn create_app_as(
    state: &AppState,
    p: &Principal,
    input: NewApp,
) -> ApiResult<App> {
    catalog_place(p, input.tenant_id.as_deref())?;
    let actor = p.user_id.clone();
    state
        .db
        .run(move |conn| catalog::create_app(conn, &input, &actor).map_err(ApiError::from))
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "catalog",
    operation_id = "list_apps",
    summary = "The catalog's apps the caller may use (the district's and their authority's), paged",
    params(catalog::CatalogFilter),
    responses(
        (status = 200, description = "One page of apps", body = super::answer::AppList),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_apps(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<catalog::CatalogFilter>,
) -> ApiResult<HttpResponse> {
    let f = q.into_inner();
    let limit = crate::paging::limit(f.limit).map_err(|m| ApiError::invalid_field("limit", m))?;
    let scope = authz::item_scope(&caller.0);
    let page = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let page = catalog::list_apps(conn, scope.as_ref(), &f, limit)?;
            Ok(page.try_map(|l| catalog::apps_with_names(conn, l))?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::AppList::from(page)))
}

/// Body of a profile upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UploadProfile {
    /// Display name (default: the profile's PayloadDisplayName).
    name: Option<String>,
    /// Authority (none: district-wide, district admins only).
    tenant_id: Option<String>,
    /// The `.mobileconfig` (XML or binary plist), base64.
    payload_base64: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/profiles",
    tag = "catalog",
    operation_id = "upload_profile",
    summary = "Upload a configuration profile (.mobileconfig) to the catalog",
    request_body = UploadProfile,
    responses(
        (status = 201, description = "The new profile", body = Profile),
        (status = 400, description = "Not base64, or the profile is invalid", body = ApiError),
        (status = 403, description = "The caller may not manage this authority (district-wide items: district admins only)", body = ApiError),
        (status = 404, description = "The authority is outside the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn upload_profile(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<UploadProfile>,
) -> ApiResult<HttpResponse> {
    let u = body.into_inner();
    catalog_place(&caller.0, u.tenant_id.as_deref())?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(u.payload_base64.trim())
        .map_err(|_| ApiError::invalid_field("payload_base64", "not base64"))?;
    let secrets = state.secrets.clone();
    let p = state
        .db
        .run(move |conn| {
            catalog::create_profile(
                conn,
                &secrets,
                catalog::NewProfile {
                    tenant_id: u.tenant_id.as_deref(),
                    school_id: None,
                    name: u.name.as_deref().unwrap_or(""),
                    payload: &payload,
                    template: None,
                },
                &caller.0.user_id,
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(p))
}

#[utoipa::path(
    get,
    path = "/api/v1/profiles",
    tag = "catalog",
    operation_id = "list_profiles",
    summary = "The catalog's profiles the caller may use (the district's, their authority's, their school's), paged",
    params(catalog::CatalogFilter),
    responses(
        (status = 200, description = "One page of profiles (without their payloads)", body = super::answer::CatalogProfileList),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_profiles(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<catalog::CatalogFilter>,
) -> ApiResult<HttpResponse> {
    let f = q.into_inner();
    let limit = crate::paging::limit(f.limit).map_err(|m| ApiError::invalid_field("limit", m))?;
    let scope = authz::item_scope(&caller.0);
    let page = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let page = catalog::list_profiles(conn, scope.as_ref(), &f, limit)?;
            Ok(page.try_map(|l| catalog::profiles_with_names(conn, l))?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::CatalogProfileList::from(page)))
}

#[utoipa::path(
    get,
    path = "/api/v1/profile-templates",
    tag = "catalog",
    operation_id = "list_profile_templates",
    summary = "The built-in profile templates and their variables",
    responses(
        (status = 200, description = "Templates", body = super::answer::TemplateList),
    ),
    security(("bearer" = []))
)]
async fn list_templates(_caller: Caller) -> ApiResult<HttpResponse> {
    let items = templates_as()?;
    Ok(HttpResponse::Ok().json(super::answer::TemplateList::from(items)))
}

/// The built-in profile templates with their variables (the same for every caller).
pub(crate) fn templates_as() -> ApiResult<Vec<super::answer::TemplateInfo>> {
    let all = templates::builtin_templates().map_err(ApiError::internal)?;
    Ok(all
        .into_iter()
        .map(|t| super::answer::TemplateInfo {
            name: t.name,
            description: t.description,
            variables: t.variables,
            notes: t.notes,
        })
        .collect())
}

/// Loads a catalog item the caller may see (404 otherwise) and checks they may change
/// it: district-wide items district admins, an authority's items its admins, a school's
/// profiles its admins too.
pub(crate) fn may_change(
    p: &Principal,
    tenant_id: Option<&str>,
    school_id: Option<&str>,
) -> ApiResult<()> {
    match (tenant_id, school_id) {
        (Some(t), Some(s)) => authz::require(p, Action::ManageSchool, Place::school(t, s)),
        _ => catalog_place(p, tenant_id),
    }
}

/// An item is visible to the caller: the district's, or of their authority (and school).
fn visible(p: &Principal, tenant_id: Option<&str>, school_id: Option<&str>) -> bool {
    match authz::item_scope(p) {
        None => true,
        Some((t, s)) => {
            tenant_id.is_none_or(|x| x == t)
                && (school_id.is_none() || s.is_none() || school_id == s.as_deref())
        }
    }
}

/// An app `p` may see (404 otherwise).
pub(crate) async fn load_app(state: &AppState, p: &Principal, id: String) -> ApiResult<App> {
    let app = state
        .db
        .run(move |conn| catalog::app(conn, &id).map_err(ApiError::from))
        .await?
        .filter(|a| visible(p, a.tenant_id.as_deref(), None))
        .ok_or_else(|| ApiError::not_found("no such app"))?;
    Ok(app)
}

/// A profile `p` may see (404 otherwise).
pub(crate) async fn load_profile(
    state: &AppState,
    p: &Principal,
    id: String,
) -> ApiResult<Profile> {
    state
        .db
        .run(move |conn| catalog::profile(conn, &id).map_err(ApiError::from))
        .await?
        .filter(|x| visible(p, x.tenant_id.as_deref(), x.school_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("no such profile"))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{id}",
    tag = "catalog",
    operation_id = "get_app",
    summary = "One app of the catalog",
    params(("id" = String, Path, description = "App id")),
    responses(
        (status = 200, description = "The app", body = App),
        (status = 404, description = "No such app in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_app(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(load_app(&state, &caller.0, path.into_inner()).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/apps/{id}",
    tag = "catalog",
    operation_id = "update_app",
    summary = "Rename an app or change whether it needs a licence",
    description = "Only what does not change what is installed; bundle id, App Store id, \
        ManagementFlags and configuration cannot be changed in place yet.",
    params(("id" = String, Path, description = "App id")),
    request_body = catalog::AppPatch,
    responses(
        (status = 200, description = "The app as changed", body = App),
        (status = 400, description = "A field is invalid", body = ApiError),
        (status = 403, description = "The caller may not change this app", body = ApiError),
        (status = 404, description = "No such app in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn update_app(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<catalog::AppPatch>,
) -> ApiResult<HttpResponse> {
    let app = update_app_as(&state, &caller.0, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(app))
}

/// Renames an app or changes its licence need for `p` under the API's rules.
pub(crate) async fn update_app_as(
    state: &AppState,
    p: &Principal,
    id: String,
    patch: catalog::AppPatch,
) -> ApiResult<App> {
    let before = load_app(state, p, id).await?;
    may_change(p, before.tenant_id.as_deref(), None)?;
    let actor = p.user_id.clone();
    let app = state
        .db
        .run(move |conn| catalog::update_app(conn, &before, &patch, &actor).map_err(ApiError::from))
        .await?;
    state.reconciler.all();
    Ok(app)
}

#[utoipa::path(
    delete,
    path = "/api/v1/apps/{id}",
    tag = "catalog",
    operation_id = "delete_app",
    summary = "Delete an app and its assignments; it is removed from iPads where nothing else wants it",
    params(("id" = String, Path, description = "App id")),
    responses(
        (status = 200, description = "Deleted, with the number of assignments deleted with it", body = catalog::Deleted),
        (status = 403, description = "The caller may not change this app", body = ApiError),
        (status = 404, description = "No such app in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_app(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let done = delete_app_as(&state, &caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// Deletes an app and its assignments for `p` under the API's rules.
pub(crate) async fn delete_app_as(
    state: &AppState,
    p: &Principal,
    id: String,
) -> ApiResult<catalog::Deleted> {
    let app = load_app(state, p, id).await?;
    may_change(p, app.tenant_id.as_deref(), None)?;
    let actor = p.user_id.clone();
    let done = state
        .db
        .run(move |conn| catalog::delete_app(conn, &app, &actor).map_err(ApiError::from))
        .await?;
    state.reconciler.all();
    Ok(done)
}

#[utoipa::path(
    get,
    path = "/api/v1/profiles/{id}",
    tag = "catalog",
    operation_id = "get_profile",
    summary = "One profile of the catalog (without its payload)",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such profile in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_profile(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(load_profile(&state, &caller.0, path.into_inner()).await?))
}

/// Body of a profile change: a new name, and/or new content (a new version).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProfilePatch)]
struct ProfilePatch {
    /// Display name.
    name: Option<String>,
    /// New content: the `.mobileconfig` (XML or binary plist), base64, with the same
    /// PayloadIdentifier.
    payload_base64: Option<String>,
    /// New content of a profile rendered from a template: the template's variables,
    /// all of them again (secrets such as a Wi-Fi password are not kept in the clear).
    values: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/profiles/{id}",
    tag = "catalog",
    operation_id = "update_profile",
    summary = "Rename a profile or give it new content (a new version that reaches every iPad holding the old one)",
    description = "New content (`payload_base64`, or `values` for a profile rendered from a template) \
        keeps the PayloadIdentifier and gets a new PayloadUUID; the reconciler reinstalls it \
        on every iPad that holds another version, at its next connect. The same content \
        again makes no new version.",
    params(("id" = String, Path, description = "Profile id")),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The profile as changed (`payload_uuid` is its version)", body = Profile),
        (status = 400, description = "A field is invalid, the content is not a valid profile, or its identifier differs", body = ApiError),
        (status = 403, description = "The caller may not change this profile", body = ApiError),
        (status = 404, description = "No such profile in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn update_profile(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ProfilePatch>,
) -> ApiResult<HttpResponse> {
    let before = load_profile(&state, &caller.0, path.into_inner()).await?;
    may_change(
        &caller.0,
        before.tenant_id.as_deref(),
        before.school_id.as_deref(),
    )?;
    let b = body.into_inner();
    let payload = match (&b.payload_base64, &b.values) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "values",
                "give payload_base64 or values, not both",
            ))
        }
        (Some(text), None) => {
            // Any content, as at upload: the authority's admins (a school's admins
            // render the built-in templates only).
            catalog_place(&caller.0, before.tenant_id.as_deref())?;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| ApiError::invalid_field("payload_base64", "not base64"))?,
            )
        }
        (None, Some(values)) => {
            let (Some(template), Some(school_id)) = (&before.template, &before.school_id) else {
                return Err(ApiError::invalid_field(
                    "values",
                    "this profile was not rendered from a template: give payload_base64",
                ));
            };
            let school =
                super::org::load_school(&state, &caller, school_id.clone(), Action::ManageSchool)
                    .await?;
            Some(render_for_school(&state, &school, template, values)?)
        }
        (None, None) => None,
    };
    let secrets = state.secrets.clone();
    let p = state
        .db
        .run(move |conn| {
            catalog::update_profile(
                conn,
                &secrets,
                &before,
                catalog::ProfileChange {
                    name: b.name.as_deref(),
                    payload: payload.as_deref(),
                    rendered: b.values.is_some(),
                },
                &caller.0.user_id,
            )
            .map_err(ApiError::from)
        })
        .await?;
    state.reconciler.all();
    Ok(HttpResponse::Ok().json(p))
}

#[utoipa::path(
    delete,
    path = "/api/v1/profiles/{id}",
    tag = "catalog",
    operation_id = "delete_profile",
    summary = "Delete a profile and its assignments; it is removed from iPads where nothing else wants it",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 200, description = "Deleted, with the number of assignments deleted with it", body = catalog::Deleted),
        (status = 403, description = "The caller may not change this profile", body = ApiError),
        (status = 404, description = "No such profile in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_profile(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let done = delete_profile_as(&state, &caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(done))
}

/// Deletes a profile and its assignments for `p` under the API's rules.
pub(crate) async fn delete_profile_as(
    state: &AppState,
    p: &Principal,
    id: String,
) -> ApiResult<catalog::Deleted> {
    let profile = load_profile(state, p, id).await?;
    may_change(
        p,
        profile.tenant_id.as_deref(),
        profile.school_id.as_deref(),
    )?;
    let actor = p.user_id.clone();
    let done = state
        .db
        .run(move |conn| catalog::delete_profile(conn, &profile, &actor).map_err(ApiError::from))
        .await?;
    state.reconciler.all();
    Ok(done)
}

/// Body of a template rendering.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProfileFromTemplate)]
pub(crate) struct FromTemplate {
    /// Template name (see `GET /profile-templates`).
    pub(crate) template: String,
    /// The school the profile is for.
    pub(crate) school_id: String,
    /// Display name (default: template and school name).
    pub(crate) name: Option<String>,
    /// The template's variables; `school_name` and `school_slug` default to the school's.
    pub(crate) values: std::collections::BTreeMap<String, serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/api/v1/profiles/from-template",
    tag = "catalog",
    operation_id = "create_profile_from_template",
    summary = "Render a built-in template for a school into a catalog profile",
    request_body = FromTemplate,
    responses(
        (status = 201, description = "The new profile", body = Profile),
        (status = 400, description = "Unknown template, or invalid values", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn from_template(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<FromTemplate>,
) -> ApiResult<HttpResponse> {
    let p = from_template_as(&state, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(p))
}

/// Renders a built-in template for a school into a catalog profile for `p` under the
/// API's rules (the API's POST and the console's form).
pub(crate) async fn from_template_as(
    state: &AppState,
    p: &Principal,
    b: FromTemplate,
) -> ApiResult<Profile> {
    let caller = Caller(p.clone());
    let school =
        super::org::load_school(state, &caller, b.school_id.clone(), Action::ManageSchool).await?;
    let payload = render_for_school(state, &school, &b.template, &b.values)?;
    let name = b
        .name
        .unwrap_or_else(|| format!("{} – {}", b.template, school.name));
    let secrets = state.secrets.clone();
    state
        .db
        .run(move |conn| {
            catalog::create_profile(
                conn,
                &secrets,
                catalog::NewProfile {
                    tenant_id: Some(&school.tenant_id),
                    school_id: Some(&school.id),
                    name: &name,
                    payload: &payload,
                    template: Some(&b.template),
                },
                &caller.0.user_id,
            )
            .map_err(ApiError::from)
        })
        .await
}

/// Renders a built-in template for a school: the school's name and a slug of it fill
/// the usual variables unless given; secrets feed the PayloadUUIDs through a keyed
/// digest, so new values make a new version.
fn render_for_school(
    state: &AppState,
    school: &org::School,
    template: &str,
    given: &std::collections::BTreeMap<String, serde_json::Value>,
) -> ApiResult<Vec<u8>> {
    let template = templates::builtin_template(template)
        .map_err(|e| ApiError::invalid_field("template", e.to_string()))?;
    let mut values = given.clone();
    let slug: String = school
        .name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    for (var, value) in [("school_name", school.name.clone()), ("school_slug", slug)] {
        if template.variable(var).is_some() {
            values
                .entry(var.to_owned())
                .or_insert(serde_json::Value::String(value));
        }
    }
    let secrets = state.secrets.clone();
    let keyed = |secret: &[u8]| {
        secrets
            .fingerprint("profile template secrets", secret)
            .map_err(|e| e.to_string())
    };
    template
        .render_keyed(&values, &keyed)
        .map_err(|e| ApiError::invalid_field("values", e.to_string()))
}

/// Body of `POST /assignments`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewAssignmentBody)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    /// `app` or `profile`.
    pub item_kind: ItemKind,
    /// Catalog id.
    pub item_id: String,
    /// `tenant`, `school`, `class`, `group` or `device`.
    pub target_kind: TargetKind,
    /// Target id (device: UDID, serial or id).
    pub target_id: String,
    /// When the item applies (default `{"kind": "always"}`). Windows in clock times, or
    /// in the school's periods ("Di 2-3") when the target belongs to one school.
    #[serde(default)]
    #[schema(value_type = Option<crate::assign::schedule::ScheduleJson>)]
    pub schedule: Option<serde_json::Value>,
}

/// Resolves a target to (tenant, school, canonical id), checking it exists.
pub fn resolve_target(
    conn: &mut crate::db::DbConn,
    kind: TargetKind,
    id: &str,
) -> ApiResult<(String, Option<String>, String)> {
    let nf = || ApiError::invalid_field("target_id", "no such target");
    Ok(match kind {
        TargetKind::Tenant => (
            org::tenant(conn, id)?.ok_or_else(nf)?.id,
            None,
            id.to_owned(),
        ),
        TargetKind::School => {
            let s = org::school(conn, id)?.ok_or_else(nf)?;
            (s.tenant_id, Some(s.id.clone()), s.id)
        }
        TargetKind::Class => {
            let c = classes::class(conn, id)?.ok_or_else(nf)?;
            let s = org::school(conn, &c.school_id)?.ok_or_else(nf)?;
            (s.tenant_id, Some(s.id), c.id)
        }
        TargetKind::Group => {
            let g = classes::group(conn, id)?.ok_or_else(nf)?;
            let s = org::school(conn, &g.school_id)?.ok_or_else(nf)?;
            (s.tenant_id, Some(s.id), g.id)
        }
        TargetKind::Device => {
            use crate::db::schema::devices;
            use diesel::prelude::*;
            let (did, t, s): (String, Option<String>, Option<String>) = devices::table
                .filter(
                    devices::id
                        .eq(id)
                        .or(devices::udid.eq(id))
                        .or(devices::serial_number.eq(id.to_uppercase())),
                )
                .select((devices::id, devices::tenant_id, devices::school_id))
                .first(conn)
                .optional()?
                .ok_or_else(nf)?;
            (
                t.ok_or_else(|| {
                    ApiError::invalid_field(
                        "target_id",
                        "the device belongs to no school authority yet",
                    )
                })?,
                s,
                did,
            )
        }
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/assignments",
    tag = "catalog",
    operation_id = "create_assignment",
    summary = "Assign an app or profile to a target, on a schedule",
    request_body = AssignmentBody,
    responses(
        (status = 201, description = "The new assignment; the reconciler is started", body = assign::AssignmentView),
        (status = 400, description = "Invalid schedule, target or item", body = ApiError),
        (status = 403, description = "Teachers ask through lesson requests; or the caller may not manage the target", body = ApiError),
        (status = 404, description = "The target is outside the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_assignment(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<AssignmentBody>,
) -> ApiResult<HttpResponse> {
    let a = assign_as(&state, &caller.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(a))
}

/// Creates an assignment for `caller` under the API's rules (the API's POST and the
/// console's form); the target's devices are reconciled.
pub(crate) async fn assign_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    b: AssignmentBody,
) -> ApiResult<assign::AssignmentView> {
    let bad_schedule = |e: crate::assign::schedule::ScheduleError| {
        ApiError::invalid_field("schedule", e.to_string())
    };
    let schedule = match &b.schedule {
        Some(v) => ScheduleSpec::parse_json(v).map_err(bad_schedule)?,
        None => ScheduleSpec::Always,
    };
    authz::require_admin(caller, "ask for apps through lesson requests")?;
    let p = caller.clone();
    let (a, targets): (assign::AssignmentView, Vec<String>) = state
        .db
        .run(
            move |conn| -> ApiResult<(assign::AssignmentView, Vec<String>)> {
                let (tenant, school, target_id) =
                    resolve_target(conn, b.target_kind, &b.target_id)?;
                let place = Place {
                    tenant_id: Some(&tenant),
                    school_id: school.as_deref(),
                };
                authz::require(
                    &p,
                    if school.is_some() {
                        Action::ManageSchool
                    } else {
                        Action::ManageTenant
                    },
                    place,
                )?;
                // Catalog items are shared downward only (`authz::item_reaches`); one the
                // caller may not see does not exist for them.
                let item = match b.item_kind {
                    ItemKind::App => catalog::app(conn, &b.item_id)?.map(|a| (a.tenant_id, None)),
                    ItemKind::Profile => {
                        catalog::profile(conn, &b.item_id)?.map(|p| (p.tenant_id, p.school_id))
                    }
                };
                let no_such = || ApiError::invalid_field("item_id", "no such catalog item");
                let (item_tenant, item_school) = item.ok_or_else(no_such)?;
                let item_place = Place {
                    tenant_id: item_tenant.as_deref(),
                    school_id: item_school.as_deref(),
                };
                if !authz::can_see_item(&p, item_place) {
                    return Err(no_such());
                }
                if !authz::item_reaches(item_place, place) {
                    return Err(ApiError::invalid_field(
                        "item_id",
                        "the item belongs to another school or authority than the target",
                    ));
                }
                // Periods are the school's: the target must be within one.
                assign::resolve_schedule(conn, &schedule, school.as_deref())?
                    .map_err(bad_schedule)?;
                let new = NewAssignment {
                    tenant_id: tenant,
                    school_id: school,
                    item_kind: b.item_kind,
                    item_id: b.item_id,
                    target_kind: b.target_kind,
                    target_id,
                    schedule,
                    source: "admin".into(),
                    lesson_request_id: None,
                };
                let a = conn.write_tx(|conn| assign::create(conn, &new, &p.user_id))?;
                let targets = views::target_devices(conn, &a)?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                let named = assign::with_names(conn, vec![a])?.into_iter().next();
                Ok((
                    named.ok_or_else(|| ApiError::internal("the new assignment vanished"))?,
                    targets,
                ))
            },
        )
        .await?;
    // Only the target's devices can be affected by a new assignment.
    state.reconciler.devices(targets);
    Ok(a)
}

#[utoipa::path(
    get,
    path = "/api/v1/assignments",
    tag = "catalog",
    operation_id = "list_assignments",
    summary = "The assignments of the caller's scope, filtered and paged",
    params(assign::AssignmentFilter),
    responses(
        (status = 200, description = "One page of assignments", body = super::answer::AssignmentList),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list_assignments(
    caller: Caller,
    state: web::Data<AppState>,
    q: crate::error::Query<assign::AssignmentFilter>,
) -> ApiResult<HttpResponse> {
    let f = q.into_inner();
    let limit = crate::paging::limit(f.limit).map_err(|m| ApiError::invalid_field("limit", m))?;
    let scope = authz::item_scope(&caller.0);
    let page = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let page = assign::list(conn, scope.as_ref(), &f, limit)?;
            Ok(page.try_map(|l| assign::with_names(conn, l))?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::AssignmentList::from(page)))
}

async fn load_assignment(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<assign::Assignment> {
    let a = state
        .db
        .run(move |conn| assign::get(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such assignment"))?;
    authz::require(
        &caller.0,
        action,
        Place {
            tenant_id: Some(&a.tenant_id),
            school_id: a.school_id.as_deref(),
        },
    )?;
    Ok(a)
}

/// Body of `PATCH /assignments/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AssignmentPatch)]
struct AssignmentPatch {
    /// The new schedule (clock times, or the school's periods such as "Di 2-3").
    #[schema(value_type = crate::assign::schedule::ScheduleJson)]
    schedule: serde_json::Value,
}

#[utoipa::path(
    patch,
    path = "/api/v1/assignments/{id}",
    tag = "catalog",
    operation_id = "update_assignment",
    summary = "Give an assignment another schedule; the reconciler installs and removes accordingly",
    description = "Item and target stay (another item or target is another assignment). \
        Assignments of a lesson request change with the request.",
    params(("id" = String, Path, description = "Assignment id")),
    request_body = AssignmentPatch,
    responses(
        (status = 200, description = "The assignment as changed", body = assign::AssignmentView),
        (status = 400, description = "The schedule is invalid (the field names what)", body = ApiError),
        (status = 403, description = "The caller may not manage this assignment", body = ApiError),
        (status = 404, description = "No such assignment in the caller's scope", body = ApiError),
        (status = 409, description = "The assignment belongs to a lesson request", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn update_assignment(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AssignmentPatch>,
) -> ApiResult<HttpResponse> {
    let a = load_assignment(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let bad_schedule = |e: crate::assign::schedule::ScheduleError| {
        ApiError::invalid_field("schedule", e.to_string())
    };
    let spec = ScheduleSpec::parse_json(&body.schedule).map_err(bad_schedule)?;
    if let Some(request) = &a.lesson_request_id {
        return Err(ApiError::conflict(format!(
            "the assignment belongs to lesson request {request}: change or cancel the request"
        )));
    }
    let actor = caller.0.user_id.clone();
    let changed = state
        .db
        .run(move |conn| -> ApiResult<_> {
            // Checked against the periods in the transaction that writes it.
            let changed = conn.write_tx(|conn| -> ApiResult<_> {
                assign::resolve_schedule(conn, &spec, a.school_id.as_deref())?
                    .map_err(bad_schedule)?;
                Ok(assign::update_schedule(conn, &a, &spec, &actor)?)
            })?;
            assign::with_names(conn, vec![changed])?
                .pop()
                .ok_or_else(|| ApiError::internal("the changed assignment vanished"))
        })
        .await?;
    state.reconciler.all();
    Ok(HttpResponse::Ok().json(changed))
}

#[utoipa::path(
    get,
    path = "/api/v1/assignments/{id}",
    tag = "catalog",
    operation_id = "get_assignment",
    summary = "One assignment with its rollout",
    params(("id" = String, Path, description = "Assignment id")),
    responses(
        (status = 200, description = "The assignment and how far it reached its devices", body = super::answer::AssignmentDetail),
        (status = 404, description = "No such assignment in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get_assignment(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = load_assignment(&state, &caller, path.into_inner(), Action::View).await?;
    let a2 = a.clone();
    let p = caller.0.clone();
    let detail = state
        .db
        .run(move |conn| -> ApiResult<_> {
            let rollout = views::rollout(conn, &a2, chrono::Utc::now(), authz::list_scope(&p))?;
            let assignment = assign::with_names(conn, vec![a])?.into_iter().next();
            Ok(
                assignment.map(|assignment| super::answer::AssignmentDetail {
                    assignment,
                    rollout,
                }),
            )
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such assignment"))?;
    Ok(HttpResponse::Ok().json(detail))
}

#[utoipa::path(
    delete,
    path = "/api/v1/assignments/{id}",
    tag = "catalog",
    operation_id = "delete_assignment",
    summary = "Delete an assignment; its items are removed where nothing else wants them",
    params(("id" = String, Path, description = "Assignment id")),
    responses(
        (status = 204, description = "Deleted; the reconciler is started"),
        (status = 403, description = "The caller may not manage the assignment's school", body = ApiError),
        (status = 404, description = "No such assignment in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn delete_assignment(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let a = load_assignment(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| assign::delete(conn, &a, &actor))
                .map_err(ApiError::from)
        })
        .await?;
    state.reconciler.all();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CalendarQuery {
    /// Replace the stored closures instead of adding to them.
    #[serde(default)]
    replace: bool,
}

/// An iCalendar file (by its content type or its first line) or CSV lines.
fn parse_calendar(ct: &str, body: &[u8]) -> ApiResult<Calendar> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the calendar must be UTF-8"))?;
    let cal = if ct.starts_with("text/calendar") || text.trim_start().starts_with("BEGIN:VCALENDAR")
    {
        Calendar::parse_ics(text)
    } else {
        Calendar::parse_csv(text)
    };
    cal.map_err(|e| ApiError::bad_request(format!("calendar: {e}")))
}

/// Parses an uploaded calendar and stores its closures for an authority or one school.
async fn store_calendar(
    state: &AppState,
    caller: &Caller,
    tenant_id: String,
    school_id: Option<String>,
    replace: bool,
    req: &HttpRequest,
    body: &web::Bytes,
) -> ApiResult<HttpResponse> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let n = calendar_as(state, caller, tenant_id, school_id, replace, ct, body).await?;
    Ok(HttpResponse::Ok().json(super::answer::ClosuresAdded { closures: n }))
}

/// Stores an uploaded calendar's closures for an authority or one school (the caller's
/// right to manage it already checked), audited; every assignment is planned again.
pub(crate) async fn calendar_as(
    state: &AppState,
    caller: &Caller,
    tenant_id: String,
    school_id: Option<String>,
    replace: bool,
    content_type: &str,
    body: &[u8],
) -> ApiResult<usize> {
    let cal = parse_calendar(content_type, body)?;
    // Nothing but a header (or dates tafel could not read in the first line) is a
    // mistake, not a calendar; replacing with nothing is how days are cleared.
    if cal.closures().is_empty() && !replace {
        return Err(ApiError::bad_request(
            "calendar: no days found — lines are name,from,to with dates as YYYY-MM-DD (a first line whose dates do not read is taken as the header)",
        ));
    }
    let actor = caller.0.user_id.clone();
    let n = state
        .db
        .run(move |conn| {
            conn.write_tx(|conn| {
                assign::add_closures(
                    conn,
                    &tenant_id,
                    school_id.as_deref(),
                    &cal,
                    replace,
                    &actor,
                )
            })
            .map_err(ApiError::from)
        })
        .await?;
    state.reconciler.all();
    Ok(n)
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/calendar",
    tag = "catalog",
    operation_id = "upload_tenant_calendar",
    summary = "Upload an authority's calendar (holidays, closed days) for schedules",
    params(("id" = String, Path, description = "School authority (tenant) id"), CalendarQuery),
    request_body(description = "An iCalendar file (closures as events) or CSV lines `name,from,to` with ISO dates (`to` inclusive)", content((String = "text/calendar"), (String = "text/csv"))),
    responses(
        (status = 200, description = "Closures stored", body = super::answer::ClosuresAdded),
        (status = 400, description = "Not UTF-8, or an unreadable calendar", body = ApiError),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn tenant_calendar(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: crate::error::Query<CalendarQuery>,
    req: HttpRequest,
    body: crate::error::Upload,
) -> ApiResult<HttpResponse> {
    let tenant =
        super::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    store_calendar(
        &state,
        &caller,
        tenant.id,
        None,
        q.into_inner().replace,
        &req,
        &body.0,
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/schools/{id}/calendar",
    tag = "catalog",
    operation_id = "upload_school_calendar",
    summary = "Upload a school's calendar (holidays, closed days) for schedules",
    params(("id" = String, Path, description = "School id"), CalendarQuery),
    request_body(description = "An iCalendar file (closures as events) or CSV lines `name,from,to` with ISO dates (`to` inclusive)", content((String = "text/calendar"), (String = "text/csv"))),
    responses(
        (status = 200, description = "Closures stored", body = super::answer::ClosuresAdded),
        (status = 400, description = "Not UTF-8, or an unreadable calendar", body = ApiError),
        (status = 403, description = "The caller may not manage this school", body = ApiError),
        (status = 404, description = "No such school in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn school_calendar(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: crate::error::Query<CalendarQuery>,
    req: HttpRequest,
    body: crate::error::Upload,
) -> ApiResult<HttpResponse> {
    let school =
        super::org::load_school(&state, &caller, path.into_inner(), Action::ManageSchool).await?;
    store_calendar(
        &state,
        &caller,
        school.tenant_id,
        Some(school.id),
        q.into_inner().replace,
        &req,
        &body.0,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{key}/state",
    tag = "catalog",
    operation_id = "get_device_state",
    summary = "A device's desired vs actual apps and profiles",
    params(("key" = String, Path, description = "UDID or serial number")),
    responses(
        (status = 200, description = "One entry per assigned item", body = super::answer::DeviceStateList),
        (status = 404, description = "No such device in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn device_state(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key = path.into_inner();
    let items = state
        .db
        .run(move |conn| -> ApiResult<Vec<views::ItemState>> {
            let d = crate::devices::find(conn, authz::list_scope(&caller.0), &key)?
                .ok_or_else(|| ApiError::not_found(format!("no device {key}")))?;
            Ok(views::device_state(conn, &d.id, chrono::Utc::now())?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::answer::DeviceStateList::from(items)))
}

#[utoipa::path(
    post,
    path = "/api/v1/reconcile",
    tag = "catalog",
    operation_id = "reconcile_now",
    summary = "Start a reconcile run now (district admins)",
    responses(
        (status = 202, description = "Requested", body = super::answer::ReconcileRequested),
        (status = 403, description = "Only district admins", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn reconcile_now(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    state.reconciler.all();
    Ok(HttpResponse::Accepted().json(super::answer::ReconcileRequested { requested: true }))
}

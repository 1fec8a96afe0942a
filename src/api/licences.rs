//! Admin API for Apps and Books: content tokens per authority, licence counts and
//! blocked devices, sync now.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::error::{ApiError, ApiResult};
use crate::licences::{self, Licences};
use crate::state::AppState;

/// Days before expiry that a token is flagged.
const WARN_DAYS: i64 = 30;

/// A content token with a warning when it expires soon.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VppTokenView)]
pub(crate) struct TokenView {
    #[serde(flatten)]
    token: licences::TokenInfo,
    /// What to do, when the token expires within 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// The authority's content tokens.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = VppTokenList)]
pub(crate) struct TokenList {
    items: Vec<TokenView>,
}

/// Licence counts, devices waiting for a licence, and lessons that would run short.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LicenceOverview {
    /// Per app and location.
    items: Vec<licences::LicenceCount>,
    /// Devices that could not get a licence (no free one at the last try).
    blocked: Vec<licences::Blocked>,
    /// Lessons in the coming week whose apps lack licences.
    shortfalls: Vec<licences::Shortfall>,
}

/// What a licence sync did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LicenceSync {
    /// Calls made to Apple's Apps and Books API.
    api_calls: u64,
}

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/vpp-tokens", web::post().to(upload))
        .route("/tenants/{id}/vpp-tokens", web::get().to(list))
        .route("/licences", web::get().to(counts))
        .route("/licences/sync", web::post().to(sync));
}

/// Body of a token upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenUpload {
    /// The `.vpptoken` file's content (as downloaded from Apple School Manager).
    token_file: String,
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/vpp-tokens", tag = "licences", operation_id = "upload_vpp_token",
    summary = "Upload an Apps and Books content token for a location of the authority (tafel claims it)",
    params(("id" = String, Path, description = "School authority id")), request_body = TokenUpload,
    responses((status = 201, description = "The stored token (never the token itself)", body = licences::TokenInfo),
        (status = 200, description = "A renewal: the token of the same location (Apple's uId) was replaced", body = licences::TokenInfo),
        (status = 400, description = "Not a valid or current token", body = ApiError),
        (status = 403, description = "Authority admins and district admins only", body = ApiError),
        (status = 409, description = "The location is already another school authority's", body = ApiError)),
    security(("bearer" = [])))]
async fn upload(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<TokenUpload>,
) -> ApiResult<HttpResponse> {
    let up = upload_as(&state, &caller.0, path.into_inner(), &body.token_file).await?;
    Ok(if up.renewed {
        HttpResponse::Ok().json(up.token)
    } else {
        HttpResponse::Created().json(up.token)
    })
}

/// Stores (and claims) an Apps and Books content token for `caller` under the API's rules.
pub(crate) async fn upload_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    tenant: String,
    token_file: &str,
) -> ApiResult<licences::Uploaded> {
    authz::require(caller, Action::ManageTenant, Place::tenant(&tenant))?;
    let t = tenant.clone();
    state
        .db
        .run(move |conn| crate::org::tenant(conn, &t).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such school authority"))?;
    state
        .licences
        .upload(&tenant, token_file, &caller.user_id)
        .await
        .map_err(ApiError::from)
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/vpp-tokens", tag = "licences", operation_id = "list_vpp_tokens",
    summary = "The authority's content tokens, with expiry warnings",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 200, description = "Tokens", body = TokenList)), security(("bearer" = [])))]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tokens = tokens_as(&state, &caller.0, path.into_inner()).await?;
    let now = crate::db::now();
    let items = tokens
        .into_iter()
        .map(|token| {
            let days = (token.expires_at - now).num_days();
            TokenView {
                warning: (days < WARN_DAYS).then(|| format!("the content token expires in {days} days: download a new one from Apple School Manager")),
                token,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(TokenList { items }))
}

/// An authority's content tokens, for `caller` under the API's rules.
pub(crate) async fn tokens_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
    tenant: String,
) -> ApiResult<Vec<licences::TokenInfo>> {
    authz::require(caller, Action::ManageTenant, Place::tenant(&tenant))?;
    state
        .db
        .run(move |conn| Licences::tokens(conn, Some(&tenant)).map_err(ApiError::from))
        .await
}

#[utoipa::path(get, path = "/api/v1/licences", tag = "licences", operation_id = "licence_counts",
    summary = "Per app and location: owned, assigned, available, needed, missing; devices blocked for lack of a licence; lessons in the coming week that would run short",
    responses((status = 200, description = "Counts and blocked devices", body = LicenceOverview)), security(("bearer" = [])))]
async fn counts(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let (items, blocked, shortfalls) = counts_as(&state, &caller.0).await?;
    Ok(HttpResponse::Ok().json(LicenceOverview {
        items,
        blocked,
        shortfalls,
    }))
}

/// Licence counts per app and location in `caller`'s authority (district admins: all),
/// devices waiting for a licence, and lessons of the coming week that would run short.
#[allow(clippy::type_complexity)]
pub(crate) async fn counts_as(
    state: &AppState,
    caller: &crate::accounts::Principal,
) -> ApiResult<(
    Vec<licences::LicenceCount>,
    Vec<licences::Blocked>,
    Vec<licences::Shortfall>,
)> {
    super::authz::require_admin(caller, "do not manage licences")?;
    let tenant = (!super::authz::sees_district(caller))
        .then(|| caller.tenant_id.clone().unwrap_or_default());
    let blocked = state.licences.blocked();
    let p = caller.clone();
    let (items, blocked, shortfalls) = state
        .db
        .run(move |conn| -> ApiResult<_> {
            // Only the iPads the caller may see (the licence service knows them all).
            let blocked =
                crate::reports::visible_blocked(conn, super::authz::list_scope(&p), blocked)?;
            let counts = licences::counts(conn, tenant.as_deref(), &blocked)?;
            // Lessons in the coming week that would run short: warn before they start.
            let short = licences::upcoming_shortfalls(
                conn,
                tenant.as_deref(),
                chrono::Utc::now(),
                chrono::Duration::days(7),
            )?;
            Ok((counts, blocked, short))
        })
        .await?;
    Ok((items, blocked, shortfalls))
}

#[utoipa::path(post, path = "/api/v1/licences/sync", tag = "licences", operation_id = "licence_sync",
    summary = "Sync assets and Apple's licence assignments now (district admins)",
    responses((status = 200, description = "API calls made", body = LicenceSync)), security(("bearer" = [])))]
async fn sync(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    let calls = state.licences.sync().await.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(LicenceSync { api_calls: calls }))
}

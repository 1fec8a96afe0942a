//! Admin API for Automated Device Enrollment: server tokens per authority, device sync.

use actix_web::{web, HttpResponse};
use base64::Engine;
use diesel::prelude::*;
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::ade::service::{AdeServiceError, ServerToken};
use crate::db::schema::ade_tokens;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Days before expiry that a server token is flagged.
const WARN_DAYS: i64 = 30;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/ade-tokens", web::post().to(create))
        .route("/tenants/{id}/ade-tokens", web::get().to(list))
        .route("/ade-tokens/{id}/server-token", web::put().to(upload))
        .route("/ade/sync", web::post().to(sync));
}

fn ade_error(e: AdeServiceError) -> ApiError {
    match e {
        AdeServiceError::Db(e) => e.into(),
        AdeServiceError::Ade(e) if e.needs_admin() => {
            ApiError::invalid_field("p7m_base64", e.to_string())
        }
        AdeServiceError::Ade(
            e @ (crate::ade::AdeError::TokenFile(..) | crate::ade::AdeError::Openssl(..)),
        ) => ApiError::invalid_field(
            "p7m_base64",
            format!("not a server token for this MDM server's certificate: {e}"),
        ),
        AdeServiceError::Ade(e) => ApiError::new(
            crate::error::ErrorCode::Unavailable,
            format!("Apple School Manager: {e}"),
        ),
        AdeServiceError::Secret(m) => ApiError::invalid_field("p7m_base64", m),
        AdeServiceError::State(m) => ApiError::conflict(m),
    }
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/ade-tokens", tag = "ade", operation_id = "create_ade_token",
    summary = "Make a key pair for an MDM server in Apple School Manager; upload the returned certificate (PEM) there",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 201, description = "The token with the certificate to upload", body = ServerToken),
        (status = 403, description = "Authority admins and district admins only", body = ApiError)),
    security(("bearer" = [])))]
async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant =
        super::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let t = state
        .ade
        .create(&tenant.id, &caller.0.user_id)
        .await
        .map_err(ade_error)?;
    Ok(HttpResponse::Created().json(t))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/ade-tokens", tag = "ade", operation_id = "list_ade_tokens",
    summary = "The authority's ADE server tokens, with expiry warnings",
    params(("id" = String, Path, description = "School authority id")),
    responses((status = 200, description = "Tokens", body = Object)), security(("bearer" = [])))]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant =
        super::org::load_tenant(&state, &caller, path.into_inner(), Action::ManageTenant).await?;
    let rows: Vec<ServerToken> = state
        .db
        .run(move |conn| -> ApiResult<_> {
            Ok(ade_tokens::table
                .filter(ade_tokens::tenant_id.eq(&tenant.id))
                .select(ServerToken::as_select())
                .order(ade_tokens::created_at.asc())
                .load(conn)?)
        })
        .await?;
    let now = crate::db::now();
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|t| {
            let mut v = serde_json::to_value(&t).unwrap_or_default();
            if let Some(days) = t.expires_at.map(|e| (e - now).num_days()).filter(|d| *d < WARN_DAYS) {
                v["warning"] = serde_json::json!(format!("the server token expires in {days} days: download a new one in Apple School Manager and upload it"));
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Body of a server-token upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerTokenUpload {
    /// The `.p7m` file from Apple School Manager, base64.
    p7m_base64: String,
}

#[utoipa::path(put, path = "/api/v1/ade-tokens/{id}/server-token", tag = "ade", operation_id = "upload_ade_server_token",
    summary = "Upload the server token (.p7m) Apple School Manager returned; a renewed one replaces the credentials",
    params(("id" = String, Path, description = "ADE token id")), request_body = ServerTokenUpload,
    responses((status = 200, description = "The token, now active", body = ServerToken),
        (status = 400, description = "Not a server token for this key, or refused by Apple", body = ApiError)),
    security(("bearer" = [])))]
async fn upload(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ServerTokenUpload>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let i = id.clone();
    let tenant: String = state
        .db
        .run(move |conn| -> ApiResult<Option<String>> {
            Ok(ade_tokens::table
                .find(&i)
                .select(ade_tokens::tenant_id)
                .first(conn)
                .optional()?)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such ADE token"))?;
    authz::require(&caller.0, Action::ManageTenant, Place::tenant(&tenant))?;
    let raw = body.into_inner().p7m_base64;
    // Accept the file's own bytes (S/MIME text) as well as base64 of them.
    let p7m = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .unwrap_or_else(|_| raw.into_bytes());
    let t = state
        .ade
        .upload(&id, &p7m, &caller.0.user_id)
        .await
        .map_err(ade_error)?;
    Ok(HttpResponse::Ok().json(t))
}

#[utoipa::path(post, path = "/api/v1/ade/sync", tag = "ade", operation_id = "ade_sync",
    summary = "Sync devices from Apple School Manager now (district admins)",
    responses((status = 200, description = "One report per server token", body = Object)), security(("bearer" = [])))]
async fn sync(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authz::require(&caller.0, Action::ManageDistrict, Place::default())?;
    let reports = state.ade.sync().await.map_err(ade_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": reports })))
}

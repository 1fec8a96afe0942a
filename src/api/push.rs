//! Admin API for push: an authority's push certificate, and pushing devices now.

use actix_web::{web, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::error::{ApiError, ApiResult};
use crate::push::store::{self, PushCertificateInfo, UploadError};
use crate::push::PushCertificate;
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/push-certificate", web::put().to(upload))
        .route("/tenants/{id}/push-certificate", web::get().to(status))
        .route("/devices/push", web::post().to(push_now));
}

/// Body of a certificate upload: PEM (certificate and key) or PKCS#12.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PushCertificateUpload)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The certificate from Apple's Push Certificates Portal, PEM.
    pub certificate_pem: Option<String>,
    /// Its private key, PEM (unencrypted).
    pub private_key_pem: Option<String>,
    /// Or both as a PKCS#12 file, base64.
    pub pkcs12_base64: Option<String>,
    /// The PKCS#12 password.
    #[serde(default)]
    pub password: String,
    /// Replace a certificate of another topic (cuts off enrolled devices).
    #[serde(default)]
    pub force: bool,
}

async fn tenant_place(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: Action,
) -> ApiResult<String> {
    let tenant = state
        .db
        .run(move |conn| crate::org::tenant(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found("no such school authority"))?;
    authz::require(&caller.0, action, Place::tenant(&tenant.id))?;
    Ok(tenant.id)
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/push-certificate",
    tag = "push",
    operation_id = "upload_push_certificate",
    summary = "Upload (or renew) a school authority's APNs push certificate",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    request_body = Upload,
    responses(
        (status = 200, description = "The stored certificate", body = PushCertificateInfo),
        (status = 400, description = "Unreadable, mismatched or expired certificate or key", body = ApiError),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
        (status = 409, description = "The topic differs from the current certificate's (send `force: true`)", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn upload(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Upload>,
) -> ApiResult<HttpResponse> {
    let info = upload_as(&state, &caller, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(info))
}

/// Stores (or renews) an authority's push certificate for `caller` under the API's rules.
pub(crate) async fn upload_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
    u: Upload,
) -> ApiResult<store::PushCertificateInfo> {
    let tenant_id = tenant_place(state, caller, tenant, Action::ManageTenant).await?;
    let cert = match (&u.certificate_pem, &u.private_key_pem, &u.pkcs12_base64) {
        (Some(c), k, None) => {
            PushCertificate::from_pem(c.as_bytes(), k.as_deref().unwrap_or("").as_bytes())
        }
        (None, None, Some(p12)) => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(p12.trim())
                .map_err(|_| ApiError::invalid_field("pkcs12_base64", "not base64"))?;
            PushCertificate::from_pkcs12(&der, &u.password)
        }
        _ => {
            return Err(ApiError::bad_request(
                "send certificate_pem and private_key_pem, or pkcs12_base64 (and password)",
            ))
        }
    }
    .map_err(|e| {
        ApiError::invalid_field(
            if u.pkcs12_base64.is_some() {
                "pkcs12_base64"
            } else {
                "certificate_pem"
            },
            e.to_string(),
        )
    })?;
    let secrets = state.secrets.clone();
    let warn_days = state.push.warning_days();
    let (actor, force, t) = (caller.0.user_id.clone(), u.force, tenant_id.clone());
    let info = state
        .db
        .run(move |conn| {
            store::upload(conn, &secrets, &t, &cert, force, &actor, warn_days).map_err(
                |e| match e {
                    UploadError::Db(e) => ApiError::from(e),
                    UploadError::Seal(e) => ApiError::internal(e),
                    other @ UploadError::TopicChange { .. } => {
                        ApiError::conflict(other.to_string())
                    }
                    other @ UploadError::Expired(_) => {
                        ApiError::invalid_field("certificate_pem", other.to_string())
                    }
                },
            )
        })
        .await?;
    state.push.forget_client(&tenant_id);
    if let Some(w) = &info.warning {
        tracing::warn!(tenant = %tenant_id, "{w}");
    }
    Ok(info)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/push-certificate",
    tag = "push",
    operation_id = "get_push_certificate",
    summary = "A school authority's push certificate: topic and expiry",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    responses(
        (status = 200, description = "The certificate (never the key)", body = PushCertificateInfo),
        (status = 404, description = "No such school authority, or no certificate yet", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn status(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let info = status_as(&state, &caller, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("this school authority has no push certificate yet"))?;
    Ok(HttpResponse::Ok().json(info))
}

/// An authority's push certificate (none yet: `None`), for `caller` under the API's rules.
pub(crate) async fn status_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<Option<store::PushCertificateInfo>> {
    let tenant_id = tenant_place(state, caller, tenant, Action::View).await?;
    let warn_days = state.push.warning_days();
    state
        .db
        .run(move |conn| store::status(conn, &tenant_id, warn_days).map_err(ApiError::from))
        .await
}

/// Body of `POST /devices/push`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushNow {
    /// Devices to wake now.
    pub udids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/push",
    tag = "push",
    operation_id = "push_devices_now",
    summary = "Wake devices now with an APNs push",
    request_body = PushNow,
    responses(
        (status = 200, description = "What happened to each push", body = super::answer::PushNowResult),
        (status = 400, description = "No, too many, or unknown devices", body = ApiError),
        (status = 403, description = "Teachers cannot push devices", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn push_now(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<PushNow>,
) -> ApiResult<HttpResponse> {
    super::authz::require_admin(&caller.0, "cannot push devices")?;
    let udids = body.into_inner().udids;
    if udids.is_empty() || udids.len() > 10_000 {
        return Err(ApiError::invalid_field("udids", "1 to 10000 devices"));
    }
    let targets = state
        .db
        .run(move |conn| super::commands::scoped_devices(conn, &caller, &udids))
        .await?;
    let udid_of: std::collections::HashMap<String, String> = targets
        .iter()
        .map(|t| (t.id.clone(), t.udid.clone()))
        .collect();
    let results = state
        .push
        .push_now(targets.into_iter().map(|t| t.id).collect())
        .await?;
    let items: Vec<super::answer::PushNowItem> = results
        .into_iter()
        .map(|r| super::answer::PushNowItem {
            udid: udid_of.get(&r.device_id).cloned(),
            result: r.result,
            reason: r.reason,
        })
        .collect();
    Ok(HttpResponse::Ok().json(super::answer::PushNowResult::from(items)))
}

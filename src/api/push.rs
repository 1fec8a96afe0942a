//! Admin API for push: an authority's push certificate, and pushing devices now.

use actix_web::{web, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::auth::Caller;
use super::authz::{self, Action, Place};
use crate::error::{ApiError, ApiResult};
use crate::push::requests::{self, PushCertificateRequestInfo};
use crate::push::store::{self, PushCertificateInfo};
use crate::push::{PushCertificate, PushError};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/push-certificate", web::put().to(upload))
        .route("/tenants/{id}/push-certificate", web::get().to(status))
        .route(
            "/tenants/{id}/push-certificate/request",
            web::post().to(create_request),
        )
        .route(
            "/tenants/{id}/push-certificate/request",
            web::get().to(pending_request),
        )
        .route("/devices/push", web::post().to(push_now));
}

/// Body of a certificate upload: PEM (certificate and key, or only the certificate
/// Apple issued for tafel's pending certificate request) or PKCS#12.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PushCertificateUpload)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The certificate from Apple's Push Certificates Portal, PEM.
    pub certificate_pem: Option<String>,
    /// Its private key, PEM (unencrypted). Leave it out when the certificate was issued
    /// for this authority's pending certificate request: tafel holds that key.
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
        (status = 400, description = "Unreadable, mismatched, untrusted (not from Apple's push CA) or expired certificate, or no key for it", body = ApiError),
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
    let field = if u.pkcs12_base64.is_some() {
        "pkcs12_base64"
    } else {
        "certificate_pem"
    };
    let no_key = u
        .private_key_pem
        .as_deref()
        .is_none_or(|k| k.trim().is_empty());
    let (cert, from_request) = match (&u.certificate_pem, &u.pkcs12_base64) {
        (Some(c), None) if no_key && !c.contains("PRIVATE KEY") => {
            (certificate_for_request(state, &tenant_id, c).await?, true)
        }
        (Some(c), None) => (
            PushCertificate::from_pem(
                c.as_bytes(),
                u.private_key_pem.as_deref().unwrap_or("").as_bytes(),
            )
            .map_err(|e| ApiError::invalid_field(field, e.to_string()))?,
            false,
        ),
        (None, Some(p12)) if u.private_key_pem.is_none() => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(p12.trim())
                .map_err(|_| ApiError::invalid_field("pkcs12_base64", "not base64"))?;
            (
                PushCertificate::from_pkcs12(&der, &u.password)
                    .map_err(|e| ApiError::invalid_field(field, e.to_string()))?,
                false,
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "send certificate_pem (with private_key_pem, unless the certificate was issued for tafel's certificate request), or pkcs12_base64 (and password)",
            ))
        }
    };
    // The rest of an uploaded PEM chain may hold intermediates.
    let extra = u
        .certificate_pem
        .as_deref()
        .and_then(|c| openssl::x509::X509::stack_from_pem(c.as_bytes()).ok())
        .unwrap_or_default();
    match state.push.check_trust(&cert.cert, &extra) {
        Ok(None) => {}
        Ok(Some(warning)) => tracing::warn!(tenant = %tenant_id, "{warning}"),
        Err(e) => return Err(ApiError::invalid_field(field, e.to_string())),
    }
    let secrets = state.secrets.clone();
    let warn_days = state.push.warning_days();
    let (actor, force, t) = (caller.0.user_id.clone(), u.force, tenant_id.clone());
    let info = state
        .db
        .run(move |conn| {
            store::upload(
                conn,
                &secrets,
                &t,
                &cert,
                force,
                from_request,
                &actor,
                warn_days,
            )
            .map_err(ApiError::from)
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

/// The certificate Apple issued for the authority's pending request, with the request's
/// key; a clear refusal when there is no request or the certificate is for another key.
async fn certificate_for_request(
    state: &AppState,
    tenant_id: &str,
    cert_pem: &str,
) -> ApiResult<PushCertificate> {
    let secrets = state.secrets.clone();
    let t = tenant_id.to_owned();
    let pending = state
        .db
        .run(move |conn| {
            requests::pending_key(conn, &secrets, &t).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "private_key_pem",
                "the certificate comes without its private key and this school authority has no pending certificate request: send private_key_pem too, or create a certificate request in tafel (POST /api/v1/tenants/{id}/push-certificate/request), have it signed and upload the certificate Apple issues for it",
            )
        })?;
    PushCertificate::from_pem(cert_pem.as_bytes(), &pending.key_pem).map_err(|e| match e {
        PushError::KeyMismatch => ApiError::invalid_field(
            "certificate_pem",
            format!(
                "this certificate's key is neither an uploaded one nor the key of this school authority's pending certificate request (made {} UTC): upload the certificate Apple issued for that request, or send the certificate's own private key in private_key_pem",
                pending.created_at.format("%Y-%m-%d %H:%M")
            ),
        ),
        other => ApiError::invalid_field("certificate_pem", other.to_string()),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/push-certificate/request",
    tag = "push",
    operation_id = "create_push_certificate_request",
    summary = "Make a key and a certificate signing request for a school authority's push certificate",
    description = "tafel makes an RSA-2048 key, keeps it sealed, and answers the PKCS #10 request (PEM). An MDM vendor signs the request for Apple's Push Certificates Portal; the certificate Apple issues is then uploaded without a key (`PUT …/push-certificate`). A new request replaces a pending one.",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    responses(
        (status = 201, description = "The request (never the key)", body = PushCertificateRequestInfo),
        (status = 403, description = "The caller may not manage this authority", body = ApiError),
        (status = 404, description = "No such school authority in the caller's scope", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create_request(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let info = create_request_as(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Created().json(info))
}

/// Makes a push certificate request for `caller` under the API's rules.
pub(crate) async fn create_request_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<PushCertificateRequestInfo> {
    let tenant_id = tenant_place(state, caller, tenant, Action::ManageTenant).await?;
    let secrets = state.secrets.clone();
    let actor = caller.0.user_id.clone();
    state
        .db
        .run(move |conn| {
            let name = crate::org::tenant(conn, &tenant_id)?
                .map(|t| t.name)
                .unwrap_or_default();
            requests::create(conn, &secrets, &tenant_id, &name, &actor).map_err(ApiError::from)
        })
        .await
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/push-certificate/request",
    tag = "push",
    operation_id = "get_push_certificate_request",
    summary = "A school authority's pending push certificate request (the CSR again)",
    params(("id" = String, Path, description = "School authority (tenant) id")),
    responses(
        (status = 200, description = "The pending request (never the key)", body = PushCertificateRequestInfo),
        (status = 404, description = "No such school authority, or no pending request", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn pending_request(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let info = pending_request_as(&state, &caller, path.into_inner())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("this school authority has no pending push certificate request")
        })?;
    Ok(HttpResponse::Ok().json(info))
}

/// The pending push certificate request (none: `None`), for `caller` under the API's rules.
pub(crate) async fn pending_request_as(
    state: &AppState,
    caller: &Caller,
    tenant: String,
) -> ApiResult<Option<PushCertificateRequestInfo>> {
    let tenant_id = tenant_place(state, caller, tenant, Action::ManageTenant).await?;
    state
        .db
        .run(move |conn| requests::pending(conn, &tenant_id).map_err(ApiError::from))
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

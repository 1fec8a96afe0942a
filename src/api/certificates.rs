//! `GET /api/v1/certificates`: how long tafel's own certificates have left (district
//! admins) and how many device identities end soon in the caller's scope; the devices
//! themselves are `GET /api/v1/devices?identity_expires_before=…`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pki::lifecycle::{self, CertificateStatus};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/certificates", web::get().to(get));
}

/// Device identities in the caller's scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityExpiry {
    /// Active devices whose identity ends within `mdm.identity_renew_before_days` (they
    /// are being renewed; those that stay here have not answered).
    pub expiring: i64,
    /// Active devices whose identity has ended (they can no longer connect).
    pub expired: i64,
    /// The renewal horizon in days.
    pub renew_before_days: u32,
    /// Where to list them.
    pub list: String,
}

/// `GET /certificates`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Certificates {
    /// tafel's own certificates (district admins only; empty for others).
    pub certificates: Vec<CertificateStatus>,
    /// Device identities.
    pub device_identities: IdentityExpiry,
}

#[utoipa::path(
    get,
    path = "/api/v1/certificates",
    tag = "certificates",
    operation_id = "certificates",
    summary = "tafel's certificates and the device identities that end soon",
    responses(
        (status = 200, description = "Certificates and device identities", body = Certificates),
        (status = 403, description = "Teachers see no certificates", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn get(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    super::authz::require_admin(&caller.0, "see no certificates")?;
    let now = chrono::Utc::now();
    let days = state.settings.mdm.identity_renew_before_days;
    let soon = now + chrono::Duration::days(i64::from(days));
    let certificates = if super::authz::sees_district(&caller.0) {
        lifecycle::status(&state.certificates, now)
    } else {
        Vec::new()
    };
    let p = caller.0.clone();
    let (expiring, expired) = state
        .db
        .run(move |conn| {
            crate::devices::identity_expiry(
                conn,
                super::authz::list_scope(&p),
                now.naive_utc(),
                soon.naive_utc(),
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Certificates {
        certificates,
        device_identities: IdentityExpiry {
            expiring,
            expired,
            renew_before_days: days,
            list: format!(
                "/api/v1/devices?enrolled=true&identity_expires_before={}",
                soon.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        },
    }))
}

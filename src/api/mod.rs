//! The admin and teacher REST API (`/api/v1`, JSON) and the health probes.
//!
//! Each submodule exposes its routes; handlers are thin: parse, authorise, call the
//! domain module, answer.

pub mod actions;
pub mod ade;
pub(crate) mod answer;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod catalog;
pub mod certificates;
pub mod classes;
pub mod commands;
pub mod devices;
pub mod errors;
pub mod idempotency;
pub mod lessons;
pub mod licences;
pub mod openapi;
pub mod org;
pub mod passwords;
pub mod push;
pub mod reports;
pub mod users;

use actix_web::{web, HttpResponse};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// Largest JSON body the API accepts.
const MAX_JSON_BODY: usize = 4 * 1024 * 1024;

/// Registers the probes and `/api/v1`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(|err, _| {
                ApiError::bad_request(format!("invalid JSON body: {err}")).into()
            }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::bad_request(format!("invalid path: {err}")).into()),
    )
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(idempotency::middleware))
            .configure(certificates::config)
            .configure(commands::config)
            .configure(org::config)
            .configure(push::config)
            .configure(actions::config)
            .configure(devices::config)
            .configure(users::config)
            .configure(passwords::config)
            .configure(classes::config)
            .configure(audit::config)
            .configure(catalog::config)
            .configure(lessons::config)
            .configure(licences::config)
            .configure(ade::config)
            .configure(reports::config)
            .configure(openapi::config),
    )
    .default_service(web::to(not_found));
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = answer::Health))
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(answer::Health {
        status: "ok".into(),
    })
}

/// The database answers, and tafel's certificates are valid.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready (`degraded` when a certificate expires within 60 days, with the reasons)", body = answer::Ready),
        (status = 503, description = "The database cannot be reached, or a certificate has expired", body = ApiError),
    )
)]
async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    use crate::pki::lifecycle::{self, Level};
    let db = state.db.clone();
    let backend = db.backend();
    state
        .db
        .run(move |_| db.ping().map_err(ApiError::from))
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("database not ready: {}", e.message),
            )
        })?;
    let certificates = lifecycle::status(&state.certificates, chrono::Utc::now());
    let expired: Vec<&str> = certificates
        .iter()
        .filter(|c| c.level == Level::Expired)
        .map(|c| c.name.as_str())
        .collect();
    if !expired.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "certificate(s) expired: {} (tafel certs status)",
                expired.join(", ")
            ),
        ));
    }
    let reasons: Vec<String> = certificates
        .iter()
        .filter(|c| c.level != Level::Ok)
        .map(|c| {
            format!(
                "{} certificate expires in {} days: {}",
                c.name, c.days_left, c.action
            )
        })
        .collect();
    let status = if reasons.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Ok(HttpResponse::Ok().json(answer::Ready {
        status: status.into(),
        database: format!("{backend:?}").to_lowercase(),
        reasons,
    }))
}

async fn not_found() -> ApiResult<HttpResponse> {
    Err(ApiError::not_found("no such endpoint"))
}

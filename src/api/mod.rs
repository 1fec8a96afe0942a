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
            .error_handler(|err, _| match err {
                actix_web::error::JsonPayloadError::Payload(e) => {
                    crate::error::body_error(&e).into()
                }
                err => ApiError::bad_request(format!("invalid JSON body: {err}")).into(),
            }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| ApiError::bad_request(format!("invalid path: {err}")).into()),
    )
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .route("/metrics", web::get().to(metrics))
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

/// Prometheus's scrape: this node's counters and the database's figures, for the bearer
/// token in `metrics.token` (unset: off, 404).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    operation_id = "metrics",
    summary = "Prometheus metrics (text format), for the bearer token in metrics.token",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "Not the metrics token", body = ApiError),
        (status = 404, description = "Metrics are off: metrics.token is not set", body = ApiError),
    )
)]
async fn metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let Some(token) = state
        .settings
        .metrics
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::not_found(
            "metrics are off: set metrics.token in the settings and give Prometheus that bearer token",
        ));
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same =
        given.len() == token.len() && openssl::memcmp::eq(given.as_bytes(), token.as_bytes());
    if !same {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "send the metrics token (metrics.token) as a bearer token",
        ));
    }
    let snapshot = state
        .db
        .run(|conn| crate::metrics::snapshot(conn).map_err(crate::db::DbError::from))
        .await?;
    let page = crate::metrics::render(&snapshot, state.db.pool_state());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(page))
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

/// What serving needs: the database takes a write, the disks tafel writes to have
/// room, tafel's certificates can be read and are valid.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready (`degraded` when a certificate expires within 60 days, with the reasons)", body = answer::Ready),
        (status = 503, description = "Not ready, and why: the database cannot be reached or takes no writes (read-only), the disk is full (less than `health.min_free_disk_mb` free), a certificate cannot be read or has expired", body = ApiError),
    )
)]
async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    use crate::pki::lifecycle::{self, Level};
    let backend = state.db.backend();
    let not_ready = |message: String| ApiError::new(ErrorCode::Unavailable, message);
    // A write in a transaction that is rolled back: a read-only database fails here.
    state
        .db
        .run(|conn| conn.probe_write().map_err(crate::db::DbError::from))
        .await
        .map_err(|e| not_ready(format!("database not ready: {}", ApiError::from(e).message)))?;
    let settings = state.settings.clone();
    tokio::task::spawn_blocking(move || {
        crate::health::check_disks(&settings)?;
        crate::health::check_certificates(&settings)
    })
    .await
    .map_err(|_| not_ready("shutting down".into()))?
    .map_err(|reason| {
        tracing::error!(reason = %reason, "not ready");
        not_ready(reason)
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
